// `lanyard up --no-node` end to end: its own control plane, the simulator, Lanyard in-process and the samples. The
// demo Pods must come out mutated, gated and then released by a verified exchange; the promotion Pod must exist; the
// commands the sandbox prints must work against it. On the real node: test/integration/node/sandbox-up.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../../src/sandbox/up.ts';
import { runCli } from '../../../src/cli/run.ts';

let sandbox: Sandbox;
let printed = '';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-up-'));

beforeAll(async () => {
  const out = new PassThrough();
  out.on('data', (c) => (printed += c));
  sandbox = await startSandbox(
    {
      kubeconfig: path.join(dir, 'kubeconfig'),
      logFile: path.join(dir, 'lanyard.log'),
      stayUp: false,
      visibilityDelayMs: 3000,
      node: false,
    },
    out as unknown as NodeJS.WriteStream,
  );
}, 180_000);

afterAll(async () => {
  await sandbox?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('lanyard up', () => {
  it('prints progress and how to use the sandbox', () => {
    expect(printed).toContain('✔ starting kube-apiserver, etcd and kube-controller-manager');
    expect(printed).toContain('is held at the lanyard.dev/identity scheduling gate');
    expect(printed).toContain(`export KUBECONFIG=${path.join(dir, 'kubeconfig')}`);
    expect(printed).toContain('Lanyard sandbox is up, without a node (started with --no-node)');
  });

  it('runs the demo Pods mutated and released only after verification', async () => {
    const pods = (
      await sandbox.kube.get('/api/v1/namespaces/demo/pods', { labelSelector: '!lanyard.dev/probe' })
    ).items;
    const byApp = Object.fromEntries(
      pods.map((p: { metadata: { labels: { app: string } } }) => [p.metadata.labels.app, p]),
    );
    const env = (p: { spec: { containers: Array<{ env?: Array<{ name: string; value?: string }> }> } }) =>
      Object.fromEntries((p.spec.containers[0]!.env ?? []).map((e) => [e.name, e.value]));
    expect(env(byApp.uploader).AWS_ROLE_ARN).toBe('arn:aws:iam::123456789012:role/demo/uploader');
    expect(env(byApp.reporter).AWS_CONTAINER_CREDENTIALS_FULL_URI).toBe(
      'http://169.254.170.23/v1/credentials',
    );
    for (const app of ['uploader', 'reporter']) {
      expect(byApp[app].metadata.annotations['lanyard.dev/identity-verification']).toBe('verified');
      expect(byApp[app].spec.schedulingGates ?? []).toEqual([]);
    }
    const lpia = await sandbox.kube.get(
      '/apis/lanyard.dev/v1alpha1/namespaces/demo/podidentityassociations/reporter',
    );
    expect(lpia.status.associationID).toMatch(/^a-[0-9a-z]{17}$/);
  });

  it('promotes shop/prod into a promotion Pod with the decorators and the per-step role', async () => {
    const pod = await sandbox.kube.get(`/api/v1/namespaces/lanyard-promotions/pods/${sandbox.promotionPod}`);
    expect(pod.spec.serviceAccountName).toBe('deployer');
    expect(pod.metadata.labels.team).toBe('payments');
    expect(pod.metadata.annotations['example.com/cost-center']).toBe('cc-1234');
    const step1 = pod.spec.initContainers[0];
    expect(step1.command).toEqual(['node', '/opt/aws-whoami/whoami.mjs']);
    expect(step1.env.find((e: { name: string }) => e.name === 'AWS_ROLE_ARN').value).toBe(
      'arn:aws:iam::123456789012:role/shop-deployer',
    );
    expect(pod.spec.initContainers[1].args).toEqual([
      'echo "version=1.4.2" > /dev/termination-log; echo "published shop-1.4.2.tar.gz 1.4.2"',
    ]);
  });

  it('is doctor-clean: the sample project holds its built-in roles and every sample identity is verified (docs/cli.md, doctor)', async () => {
    const r = await runCli(['doctor'], { env: { KUBECONFIG: sandbox.kubeconfig } });
    expect(r.stdout).toBe('0 errors, 0 warnings\n');
    expect(r.exitCode).toBe(0);
  });

  it('answers the lanyard commands it prints', async () => {
    const r = await runCli(['get', 'stages', '--project', 'shop'], {
      env: { KUBECONFIG: sandbox.kubeconfig },
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^NAME\s+STEPS/);
    expect(r.stdout).toContain('prod');
  });
});
