// `npm start` on the real node (docs/adr/0714): the shipped `lanyard up` (bin/lanyard.js on the project's Node 24,
// as `npm start` runs it) in a child process with its own control plane and node. Once it says it is ready, the
// API server must show the demo Pods Running on its node, each container's log must hold the assumed-role ARN of
// the role its ServiceAccount declares, and the sample promotion must have Succeeded; Ctrl-C must then stop it and
// leave no network namespace, process, Pod network namespace or run directory behind (docs/adr/0712).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubeClient, type Json, type KubeClient } from '../../../src/kube/client.ts';
import { PACKAGE_ROOT } from '../../../src/sandbox/paths.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-up-node-'));
const kubeconfig = path.join(dir, 'kubeconfig');
let child: ChildProcess;
let printed = '';
let exit: Promise<number | null>;
let kube: KubeClient;
let nodeName = '';
let netns = '';
let readySeconds = 0;

/** Processes of this sandbox: in its network namespace, started from its run directories, and their descendants. */
interface Owned {
  pids: Map<number, string>;
  dirs: string[];
  podNetns: string[];
}

/** A process's start time, which with its pid names it; undefined once it exited (a zombie has exited too). */
function procStart(pid: number): string | undefined {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').at(-1)!.split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

function ownedBySandbox(): Owned {
  const nsIno = fs.statSync(`/run/netns/${netns}`).ino;
  const procs = fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        return [
          {
            pid: Number(d),
            ppid: Number(fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ').at(-1)!.split(' ')[1]),
            netns: fs.statSync(`/proc/${d}/ns/net`).ino,
            cmdline: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').replaceAll('\0', ' '),
            root: fs.readlinkSync(`/proc/${d}/root`),
          },
        ];
      } catch {
        return [];
      }
    });
  const members = procs.filter((p) => p.netns === nsIno);
  const runDir = new RegExp(
    `${os.tmpdir().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/lanyard-(?:node|cp)-[A-Za-z0-9]+`,
    'g',
  );
  const dirs = [...new Set(members.flatMap((p) => p.cmdline.match(runDir) ?? []))];
  const under = (x: string) => dirs.some((d) => x.includes(`${d}/`) || x === d);
  const owned = procs.filter((p) => p.netns === nsIno || under(p.cmdline) || under(p.root));
  // Containers: descendants of containerd's shims (their root, in their own mount namespace, reads as /).
  for (let grew = true; grew;) {
    const pids = new Set(owned.map((p) => p.pid));
    const more = procs.filter((p) => !pids.has(p.pid) && pids.has(p.ppid) && p.ppid > 1);
    owned.push(...more);
    grew = more.length > 0;
  }
  const podInodes = new Set(owned.map((p) => p.netns).filter((i) => i !== nsIno));
  const podNetns = fs
    .readdirSync('/run/netns')
    .filter((n) => n.startsWith('cni-') && podInodes.has(fs.statSync(`/run/netns/${n}`).ino));
  return { pids: new Map(owned.map((p) => [p.pid, procStart(p.pid) ?? ''])), dirs, podNetns };
}

/** What a terminal does on Ctrl-C: SIGINT to every process of the foreground process group, not only to `lanyard up`. */
function ctrlC(): void {
  process.kill(-child.pid!, 'SIGINT');
}

async function waitForOutput(text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!printed.includes(text)) {
    if (child.exitCode !== null)
      throw new Error(`lanyard up exited with code ${child.exitCode} before saying "${text}":\n${printed}`);
    if (Date.now() > deadline)
      throw new Error(`lanyard up did not say "${text}" within ${timeoutMs / 1000}s:\n${printed}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  const t0 = Date.now();
  // `npm start` is `node bin/lanyard.js up` with node_modules/.bin first on the PATH: the project's Node 24.
  child = spawn(
    path.join(PACKAGE_ROOT, 'node_modules', '.bin', 'node'),
    [
      path.join(PACKAGE_ROOT, 'bin', 'lanyard.js'),
      'up',
      `--kubeconfig=${kubeconfig}`,
      `--log-file=${path.join(dir, 'lanyard.log')}`,
      '--visibility-delay=3000',
    ],
    // A process group of its own, as a terminal gives `npm start`: Ctrl-C is then sent to the whole group.
    { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  child.stdout!.on('data', (c: Buffer) => (printed += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (printed += c.toString()));
  exit = new Promise((r) => child.once('exit', (code) => r(code)));
  await waitForOutput('Press Ctrl-C to stop everything.', 280_000);
  readySeconds = (Date.now() - t0) / 1000;
  process.stderr.write(`[sandbox-up] lanyard up ready in ${readySeconds.toFixed(1)}s\n`);
  const m = /Pods run on node (\S+) \(network namespace (\S+)\)/.exec(printed);
  if (!m) throw new Error(`lanyard up did not run on its node:\n${printed}`);
  [, nodeName, netns] = m as unknown as [string, string, string];
  kube = await createKubeClient({ kubeconfig });
}, 300_000);

afterAll(async () => {
  kube?.close();
  if (child && child.exitCode === null) {
    ctrlC();
    await exit;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('npm start (lanyard up) on the real node', () => {
  it('says it is ready on its node, after the Running Pods, their ARNs and the finished promotion', () => {
    expect(printed).not.toMatch(/^! no node/m);
    expect(printed).toMatch(
      /its AWS SDK printed: assumed-role-arn arn:aws:sts::123456789012:assumed-role\/uploader\//,
    );
    expect(printed).toMatch(/promotion shop\/prod-\S+ Succeeded/);
    expect(printed).toContain(`export KUBECONFIG=${kubeconfig}`);
  });

  it('runs the demo Pods on its node: Running, released from the gate, verified', async () => {
    const pods: Json[] = (await kube.get('/api/v1/namespaces/demo/pods', { labelSelector: 'app' })).items;
    expect(pods.map((p) => p.metadata.labels.app).sort()).toEqual(['reporter', 'uploader']);
    for (const p of pods) {
      expect({ pod: p.metadata.name, phase: p.status.phase, node: p.spec.nodeName }).toEqual({
        pod: p.metadata.name,
        phase: 'Running',
        node: nodeName,
      });
      expect(p.spec.schedulingGates ?? []).toEqual([]);
      expect(p.metadata.annotations['lanyard.dev/identity-verification']).toBe('verified');
    }
  });

  it('has each demo container log the assumed-role ARN of the role its ServiceAccount declares (IRSA and Pod Identity)', async () => {
    const sa = await kube.get('/api/v1/namespaces/demo/serviceaccounts/uploader');
    const association = await kube.get(
      '/apis/lanyard.dev/v1alpha1/namespaces/demo/podidentityassociations/reporter',
    );
    const declared: Record<string, string> = {
      uploader: sa.metadata.annotations['eks.amazonaws.com/role-arn'],
      reporter: association.spec.roleARN,
    };
    for (const [app, roleArn] of Object.entries(declared)) {
      const [pod] = (await kube.get('/api/v1/namespaces/demo/pods', { labelSelector: `app=${app}` })).items;
      const log = await kube.raw<string>({
        path: `/api/v1/namespaces/demo/pods/${pod.metadata.name}/log`,
        query: { container: 'app' },
        accept: '*/*',
      });
      expect(log.status).toBe(200);
      // arn:aws:iam::A:role/[path/]NAME assumed becomes arn:aws:sts::A:assumed-role/NAME/SESSION (no path).
      const [, account, name] = /^arn:aws:iam::(\d+):role\/(?:.*\/)?([^/]+)$/.exec(roleArn)!;
      expect(log.body).toMatch(
        new RegExp(`^assumed-role-arn arn:aws:sts::${account}:assumed-role/${name}/\\S+$`, 'm'),
      );
    }
  });

  it('ran the sample promotion to Succeeded, its first step with the per-step role', async () => {
    const promotions: Json[] = (await kube.get('/apis/lanyard.dev/v1alpha1/namespaces/shop/promotions'))
      .items;
    expect(promotions).toHaveLength(1);
    const [p] = promotions;
    expect({ phase: p!.status.phase, message: p!.status.message }).toMatchObject({ phase: 'Succeeded' });
    const step = await kube.get('/apis/lanyard.dev/v1alpha1/namespaces/shop/promotionsteps/aws-whoami');
    const roleName = (step.spec.identity.roleARN as string).split('/').at(-1);
    expect(p!.status.steps.map((s: Json) => [s.name, s.phase])).toEqual([
      ['whoami', 'Succeeded'],
      ['publish', 'Succeeded'],
    ]);
    expect(p!.status.steps[0].output.arn).toMatch(
      new RegExp(`^arn:aws:sts::123456789012:assumed-role/${roleName}/`),
    );
    expect(p!.status.steps[1].output).toEqual({ version: '1.4.2' });
  });

  it('stops on Ctrl-C (SIGINT to its whole process group) with exit code 0, leaving no namespace, process, Pod network or run directory (docs/adr/0712)', async () => {
    const owned = ownedBySandbox();
    // The control plane, containerd, the kubelet, kube-proxy, kube-scheduler, shims and the two demo containers at least.
    expect(owned.pids.size).toBeGreaterThanOrEqual(9);
    expect(owned.dirs.length).toBe(2);
    expect(owned.podNetns.length).toBeGreaterThanOrEqual(2);
    const t0 = Date.now();
    ctrlC();
    expect(await exit).toBe(0);
    process.stderr.write(`[sandbox-up] stopped in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
    expect(printed).toContain(`sandbox stopped: node ${nodeName} and network namespace ${netns} removed`);
    expect(fs.existsSync(`/run/netns/${netns}`)).toBe(false);
    expect(fs.existsSync(`/run/lanyard-node/${netns}.json`)).toBe(false);
    const alive = [...owned.pids].filter(([pid, start]) => procStart(pid) === start && start !== '');
    expect(alive).toEqual([]);
    expect(owned.podNetns.filter((n) => fs.existsSync(`/run/netns/${n}`))).toEqual([]);
    expect(owned.dirs.filter((d) => fs.existsSync(d))).toEqual([]);
  });
});
