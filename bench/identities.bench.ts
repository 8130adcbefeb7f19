// The running-Pod identity reconciler's cost (docs/identities.md, "Cost"): CPU and memory (RSS and heap) for 10,000
// Pods, and the time from a PodIdentityAssociation's creation to the `missing` report for a Pod created before it.
// A real control plane (etcd, kube-apiserver); the reconciler runs alone in this process, as in `lanyard controller`.
//   1. 10,000 Pods in 20 namespaces: half injected with a web identity as the webhook would (state ok), half of a
//      ServiceAccount without any identity (not reported).
//   2. Reconciler started: time until every Pod is decided; CPU time; heap after GC and RSS, minus the baseline.
//   3. The 20 unannotated ServiceAccounts get a role: time until the 5,000 Pods are `missing` (an Event each); CPU.
//   4. 20 times: a Pod, then an association for its ServiceAccount; time from the association's create to `missing`.
//      Each sample also records how long the create call itself took (the API server's answer) and how many of the
//      reconciler's Event POSTs had not been answered yet, so a slow sample says which stage was slow.
// Writes bench/results/identities.{json,md}; figures are reported, never gate a test run.
// Run: npm run bench:identities [-- --pods 10000]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Registry } from 'prom-client';
import { startControlPlane } from '../src/sandbox/control-plane.ts';
import { createKubeClient, type Json, type KubeClient } from '../src/kube/client.ts';
import { applyCrds } from '../src/kube/apply.ts';
import { CRD_DIR } from '../src/sandbox/paths.ts';
import { silentLogger } from '../src/runtime/log.ts';
import { systemClock } from '../src/runtime/clock.ts';
import { createAssociationLookup } from '../src/associations/index.ts';
import { buildPatch } from '../src/identity/patch.ts';
import { resolveIdentity } from '../src/identity/resolve.ts';
import { EMPTY_TABLE } from '../src/identity/configmap.ts';
import { applyAddPatch, TEST_FLAGS } from '../test/fixtures/identity.ts';
import { startIdentityReconciler } from '../src/identities/reconciler.ts';
import { sleep } from '../src/runtime/clock.ts';

v8.setFlagsFromString('--expose_gc');
const gc = vm.runInNewContext('gc') as () => void;

const argv = process.argv.slice(2);
const at = argv.indexOf('--pods');
const PODS = at >= 0 ? Number(argv[at + 1]) : 10_000;
const NAMESPACES = 20;
const SAMPLES = 20;
const ACCOUNT = '111122223333';

async function pool<T>(items: T[], size: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}
const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

function bare(name: string, sa: string): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      serviceAccountName: sa,
      automountServiceAccountToken: false,
      containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
    },
  };
}
/** A Pod as Lanyard's webhook stores it for an annotated ServiceAccount. */
function injected(name: string, ns: string, role: string): Json {
  const r = resolveIdentity(
    {
      namespace: ns,
      serviceAccount: 'app',
      podAnnotations: undefined,
      sa: { found: true, settings: { uid: 'x', roleARN: role } },
      inIdentitiesFile: false,
      configMap: EMPTY_TABLE,
    },
    TEST_FLAGS,
    () => 0,
  )!;
  const p = bare(name, 'app');
  return applyAddPatch(
    p,
    buildPatch(p, r.injection, {
      windows: false,
      annotationPrefix: TEST_FLAGS.annotationPrefix,
      gate: false,
    }),
  );
}

async function main(kube: KubeClient, kubeconfig: string) {
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `bid-${i}`);
  for (const ns of namespaces) {
    await kube.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await kube.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: {
        name: 'app',
        annotations: { 'eks.amazonaws.com/role-arn': `arn:aws:iam::${ACCOUNT}:role/${ns}` },
      },
    });
    await kube.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'late' },
    });
  }
  const work = Array.from({ length: PODS }, (_, i) => ({ ns: namespaces[i % NAMESPACES]!, i }));
  const t0 = Date.now();
  await pool(work, 32, ({ ns, i }) =>
    kube.create(
      `/api/v1/namespaces/${ns}/pods`,
      i % 2 === 0 ? injected(`p-${i}`, ns, `arn:aws:iam::${ACCOUNT}:role/${ns}`) : bare(`p-${i}`, 'late'),
    ),
  );
  const createMs = Date.now() - t0;
  process.stderr.write(`created ${PODS} Pods in ${(createMs / 1000).toFixed(1)} s\n`);

  // Baseline: this process with its own client and nothing else.
  gc();
  gc();
  const base = { heap: process.memoryUsage().heapUsed, rss: process.memoryUsage().rss };
  // Event POSTs the reconciler's client has had answered (its Warning Events are sent without waiting).
  let eventPostsAnswered = 0;
  const rkube = await createKubeClient({
    kubeconfig,
    defaultTimeoutMs: 30_000,
    onRequest: (r) => {
      if (r.method === 'POST' && r.path.includes('/events')) eventPostsAnswered++;
    },
  });
  const metrics = new Registry();
  const deps = { kube: rkube, log: silentLogger(), metrics, clock: systemClock };
  const lookup = createAssociationLookup(deps, { clusterName: 'bench', observeAck: 'false' });
  const gauge = async (state: string) =>
    (await metrics.getSingleMetric('lanyard_pod_identities')!.get()).values.find(
      (v) => v.labels.state === state,
    )?.value ?? 0;
  const cpu0 = process.cpuUsage();
  const s0 = Date.now();
  const rec = await startIdentityReconciler(
    { ...deps, associations: lookup },
    {
      namespace: 'lanyard-system',
      annotationPrefix: 'eks.amazonaws.com',
      tokenAudience: 'sts.amazonaws.com',
      stsRegionalEndpoint: false,
      watchConfigMap: false,
      containerCredentialsAudience: 'pods.eks.amazonaws.com',
    },
  );
  const half = Math.ceil(PODS / 2);
  // Every injected Pod decided (ok, or unverified for those created in the last seconds before the start).
  while ((await gauge('ok')) + (await gauge('unverified')) < half) await sleep(20);
  const initialMs = Date.now() - s0;
  const cpuInitial = process.cpuUsage(cpu0);
  gc();
  gc();
  const mem = process.memoryUsage();
  const memory = {
    heapMB: mb(mem.heapUsed - base.heap),
    rssMB: mb(mem.rss),
    rssDeltaMB: mb(mem.rss - base.rss),
    baselineHeapMB: mb(base.heap),
  };
  process.stderr.write(
    `initial decisions in ${initialMs} ms; heap +${memory.heapMB} MB; rss ${memory.rssMB} MB\n`,
  );

  // Every unannotated ServiceAccount gets a role: its Pods become missing.
  const cpu1 = process.cpuUsage();
  const s1 = Date.now();
  for (const ns of namespaces) {
    await kube.patch(
      `/api/v1/namespaces/${ns}/serviceaccounts/late`,
      {
        metadata: {
          annotations: { 'eks.amazonaws.com/role-arn': `arn:aws:iam::${ACCOUNT}:role/late-${ns}` },
        },
      },
      'application/merge-patch+json',
    );
  }
  while ((await gauge('missing')) < PODS - half) await sleep(20);
  const missingAllMs = Date.now() - s1;
  const cpuMissing = process.cpuUsage(cpu1);
  process.stderr.write(`${PODS - half} Pods missing in ${missingAllMs} ms\n`);

  // Association created after its Pod: create → missing. The association index must have found the CRD first
  // (discovery can fail under load and is retried every 60 s).
  if (!(await rec.waitForSync(180_000))) throw new Error('reconciler caches not synced');
  await kube.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'bid-pia' },
  });
  const latencies: number[] = [];
  const samples: { ms: number; createMs: number; eventPostsUnanswered: number }[] = [];
  const warned = async () => (await gauge('missing')) + (await gauge('unverified'));
  for (let i = 0; i < SAMPLES; i++) {
    const sa = `u${i}`;
    await kube.create('/api/v1/namespaces/bid-pia/serviceaccounts', {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa },
    });
    await kube.create('/api/v1/namespaces/bid-pia/pods', bare(`before-${i}`, sa));
    // Let the Pod reach the reconciler's informer first (it is not reported: nothing is declared yet).
    await sleep(200);
    const unanswered = Math.max(0, (await warned()) - eventPostsAnswered);
    const c = Date.now();
    await kube.create('/apis/lanyard.dev/v1alpha1/namespaces/bid-pia/podidentityassociations', {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PodIdentityAssociation',
      metadata: { name: sa },
      spec: { serviceAccount: sa, roleARN: `arn:aws:iam::${ACCOUNT}:role/${sa}` },
    });
    const createMs = Date.now() - c;
    while (rec.stateOf('bid-pia', `before-${i}`)?.state !== 'missing') {
      await sleep(2);
      if (Date.now() - c > 120_000) throw new Error('never missing');
    }
    latencies.push(Date.now() - c);
    samples.push({ ms: Date.now() - c, createMs, eventPostsUnanswered: unanswered });
  }
  await rec.stop();
  await lookup.stop();
  rkube.close();
  return {
    pods: PODS,
    namespaces: NAMESPACES,
    createPodsMs: createMs,
    initial: {
      ms: initialMs,
      cpuUserMs: Math.round(cpuInitial.user / 1000),
      cpuSystemMs: Math.round(cpuInitial.system / 1000),
    },
    memory,
    initialStates: { ok: await gauge('ok'), unverified: await gauge('unverified') },
    serviceAccountsAnnotated: {
      pods: PODS - half,
      ms: missingAllMs,
      cpuUserMs: Math.round(cpuMissing.user / 1000),
      cpuSystemMs: Math.round(cpuMissing.system / 1000),
    },
    associationToMissingMs: {
      samples: latencies.length,
      p50: pct(latencies, 50),
      p95: pct(latencies, 95),
      max: Math.max(...latencies),
      slowest: samples.reduce((a, b) => (b.ms > a.ms ? b : a)),
      samplesInOrder: samples,
    },
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    cpus: os.cpus().length,
    node: process.version,
  };
}

function markdown(r: Awaited<ReturnType<typeof main>>): string {
  return (
    `# Identity reconciler cost (${r.pods} Pods, ${r.namespaces} namespaces)\n\n` +
    `| Measure | Result |\n|---|---|\n` +
    `| Start to every Pod decided (list + ${r.pods} decisions) | ${r.initial.ms} ms; CPU ${r.initial.cpuUserMs} ms user + ${r.initial.cpuSystemMs} ms system |\n` +
    `| Heap after GC, minus the baseline (${r.memory.baselineHeapMB} MB) | ${r.memory.heapMB} MB |\n` +
    `| RSS of the process (change from the baseline) | ${r.memory.rssMB} MB (+${r.memory.rssDeltaMB} MB) |\n` +
    `| ${r.serviceAccountsAnnotated.pods} Pods turned missing by 20 annotations (one Warning Event each) | ${r.serviceAccountsAnnotated.ms} ms; CPU ${r.serviceAccountsAnnotated.cpuUserMs} ms user + ${r.serviceAccountsAnnotated.cpuSystemMs} ms system |\n` +
    `| Association created → Pod created before it reported missing (${r.associationToMissingMs.samples} samples) | p50 ${r.associationToMissingMs.p50} ms, p95 ${r.associationToMissingMs.p95} ms, max ${r.associationToMissingMs.max} ms (its create call ${r.associationToMissingMs.slowest.createMs} ms; ${r.associationToMissingMs.slowest.eventPostsUnanswered} Event POSTs unanswered at its start) |\n\n` +
    `Load average at the end: ${r.loadAverage.join(', ')} (${r.cpus} CPUs); Node ${r.node}.\n`
  );
}

const cp = await startControlPlane();
const kube = await createKubeClient({ kubeconfig: cp.adminKubeconfig, defaultTimeoutMs: 30_000 });
try {
  await applyCrds(kube, CRD_DIR);
  const r = await main(kube, cp.adminKubeconfig);
  const out = path.resolve(import.meta.dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(
    path.join(out, 'identities.json'),
    JSON.stringify({ at: new Date().toISOString(), result: r }, null, 2) + '\n',
  );
  fs.writeFileSync(path.join(out, 'identities.md'), markdown(r));
  process.stdout.write(markdown(r));
} finally {
  kube.close();
  await cp.stop();
  fs.rmSync(cp.dir, { recursive: true, force: true });
}
