// The controller's watches and memory in a populated cluster (docs/adr/1000-shared-informer-cache-and-reconcilers.md):
// a real control plane with BENCH_PODS unbound Pods (default 10,000) and BENCH_ASSOCIATIONS PodIdentityAssociations
// (default 5,000), then the real `lanyard controller` process (bin/lanyard.js, AWS simulator) for each variant.
// Reported per variant, once the controller is ready and has run BENCH_SETTLE_SECONDS (default 20):
//   - watches: watch requests the API server holds open for the controller (apiserver_longrunning_requests{verb=WATCH},
//     before and after the controller started), by resource;
//   - RSS (from /proc) and V8 heap used (the controller's own /metrics).
//   BENCH_BEFORE_REF=<git ref>  also measures that ref (exported to ~/.cache/lanyard/bench/before), side by side.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeCheckout } from './lib/before-checkout.ts';
import { freePort, startControlPlane, type ControlPlane } from '../src/sandbox/control-plane.ts';
import { createKubeClient, type KubeClient } from '../src/kube/client.ts';
import { applyCrds } from '../src/kube/apply.ts';
import { CRD_DIR } from '../src/sandbox/paths.ts';
import { startAwsSimulator } from '../src/sandbox/aws-sim/index.ts';
import { sleep } from '../src/runtime/clock.ts';

const PODS = Number(process.env.BENCH_PODS ?? 10_000);
const ASSOCIATIONS = Number(process.env.BENCH_ASSOCIATIONS ?? 5_000);
const SETTLE_S = Number(process.env.BENCH_SETTLE_SECONDS ?? 20);
const BEFORE_REF = process.env.BENCH_BEFORE_REF;
const ROOT = path.resolve(import.meta.dirname, '..');
const CACHE = path.join(os.homedir(), '.cache', 'lanyard', 'bench');
const CLUSTER = 'bench';
const ROLE = 'arn:aws:iam::111122223333:role/bench';

const log = (s: string) => process.stderr.write(`[bench:controller-cache] ${s}\n`);
const load = () => os.loadavg().map((l) => Math.round(l * 100) / 100);
const mib = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Open WATCH requests the API server serves now, by resource. */
async function openWatches(kube: KubeClient): Promise<Map<string, number>> {
  const text = String((await kube.raw({ path: '/metrics', accept: 'text/plain' })).body);
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_longrunning_requests{') || !line.includes('verb="WATCH"')) continue;
    const resource = /resource="([^"]*)"/.exec(line)?.[1] ?? '?';
    const group = /group="([^"]*)"/.exec(line)?.[1] ?? '';
    const key = group ? `${resource}.${group}` : resource;
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

async function populate(kube: KubeClient): Promise<void> {
  const namespaces = Array.from({ length: 10 }, (_, i) => `bench-cc-${i}`);
  for (const ns of namespaces) await kube.create('/api/v1/namespaces', { metadata: { name: ns } });
  const started = Date.now();
  await pool(
    Array.from({ length: ASSOCIATIONS }, (_, i) => i),
    32,
    (i) =>
      kube.create(`/apis/lanyard.dev/v1alpha1/namespaces/${namespaces[i % 10]}/podidentityassociations`, {
        apiVersion: 'lanyard.dev/v1alpha1',
        kind: 'PodIdentityAssociation',
        metadata: { name: `sa-${i}` },
        spec: { serviceAccount: `sa-${i}`, roleARN: ROLE },
      }),
  );
  log(`${ASSOCIATIONS} associations in ${Math.round((Date.now() - started) / 1000)} s`);
  await pool(
    Array.from({ length: PODS }, (_, i) => i),
    32,
    (i) =>
      kube.create(`/api/v1/namespaces/${namespaces[i % 10]}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `pod-${i}`, labels: { app: `app-${i % 100}` } },
        spec: {
          containers: [
            { name: 'app', image: 'registry.invalid/app:1', env: [{ name: 'N', value: String(i) }] },
          ],
        },
      }),
  );
  log(`${PODS} Pods in ${Math.round((Date.now() - started) / 1000)} s`);
}

interface Measured {
  variant: string;
  watches: number;
  watchesByResource: Record<string, number>;
  rssMiB: number;
  heapUsedMiB: number;
  readyAfterS: number;
  loadavg: number[];
}

async function measure(
  name: string,
  dir: string,
  cp: ControlPlane,
  kube: KubeClient,
  sim: { url: string; creds: { accessKeyId: string; secretAccessKey: string } },
): Promise<Measured> {
  const baseline = await openWatches(kube);
  const metricsPort = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      path.join(dir, 'bin', 'lanyard.js'),
      'controller',
      `--kubeconfig=${cp.adminKubeconfig}`,
      `--cluster-name=${CLUSTER}`,
      `--aws-endpoint-url=${sim.url}`,
      '--aws-region=us-west-2',
      `--metrics-port=${metricsPort}`,
      '--leader-elect=false',
      '--log-level=error',
    ],
    {
      cwd: dir,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        AWS_ACCESS_KEY_ID: sim.creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: sim.creds.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: 'true',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  try {
    const t0 = Date.now();
    for (;;) {
      if (Date.now() - t0 > 300_000) throw new Error(`${name}: controller not ready within 300 s`);
      const ok = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      await sleep(250);
    }
    const readyAfterS = Math.round((Date.now() - t0) / 100) / 10;
    await sleep(SETTLE_S * 1000);
    const now = await openWatches(kube);
    const byResource: Record<string, number> = {};
    for (const [k, v] of now) if (v - (baseline.get(k) ?? 0) > 0) byResource[k] = v - (baseline.get(k) ?? 0);
    const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const heapUsed = Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(metrics)?.[1] ?? NaN);
    return {
      variant: name,
      watches: Object.values(byResource).reduce((a, b) => a + b, 0),
      watchesByResource: byResource,
      rssMiB: mib(rssKb * 1024),
      heapUsedMiB: mib(heapUsed),
      readyAfterS,
      loadavg: load(),
    };
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // The API server notices the closed watches within a moment; the next variant's baseline must not count them.
    await sleep(3_000);
  }
}

const variants: Array<{ name: string; dir: string }> = [];
if (BEFORE_REF)
  variants.push({ name: `before(${BEFORE_REF})`, dir: beforeCheckout(ROOT, CACHE, BEFORE_REF) });
variants.push({ name: 'now', dir: ROOT });
for (const v of variants) {
  const ensureBuild = path.join(v.dir, 'scripts', 'ensure-build.mjs');
  if (fs.existsSync(ensureBuild))
    execFileSync(process.execPath, [ensureBuild], { cwd: v.dir, stdio: 'inherit' });
}
log('starting the control plane');
const cp = await startControlPlane();
const kube = await createKubeClient({ kubeconfig: cp.adminKubeconfig, defaultTimeoutMs: 60_000 });
const aws = await startAwsSimulator({ port: 0, seed: 1 });
aws.control.registerCluster({ name: CLUSTER, issuer: cp.issuer, caBundle: cp.caPem });
try {
  await applyCrds(kube, CRD_DIR);
  await populate(kube);
  const results: Measured[] = [];
  for (const v of variants) {
    log(`measuring ${v.name} (load ${load().join(' ')})`);
    results.push(
      await measure(v.name, v.dir, cp, kube, { url: aws.url, creds: aws.control.adminCredentials }),
    );
  }
  const lines = [
    `controller watches and memory, ${PODS} Pods and ${ASSOCIATIONS} PodIdentityAssociations, ${SETTLE_S} s after ready`,
    '',
    '| variant | watches | RSS MiB | heap used MiB | ready after s | load avg (1/5/15) |',
    '|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.variant} | ${r.watches} | ${r.rssMiB} | ${r.heapUsedMiB} | ${r.readyAfterS} | ${r.loadavg.join(' / ')} |`,
    ),
    '',
    ...results.map((r) => `${r.variant} watches by resource: ${JSON.stringify(r.watchesByResource)}`),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const out = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(
    path.join(out, 'controller-cache.json'),
    JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2) + '\n',
  );
} finally {
  kube.close();
  await aws.close();
  await cp.stop();
  fs.rmSync(cp.dir, { recursive: true, force: true });
}
