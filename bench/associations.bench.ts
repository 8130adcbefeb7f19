// docs/verified-start.md#measured, association convergence: 5,000 PodIdentityAssociations applied at once against the AWS simulator
// (no delays, no faults); time until every one is Synced=True (goal < 60 s) and until every one is Ready=True.
//   full (default): what `lanyard run` does — the webhook (gate on) and `lanyard controller` (association controller,
//                   probe Pods, verifier) in this process; every association is verified by a real eks-auth exchange.
//   --synced-only:  the association controller alone, probe Pods off (Synced only).
// Writes bench/results/associations[-synced-only].{json,md}; figures are reported, never gate a test run.
// Run: npx tsx bench/associations.bench.ts [--count 5000] [--synced-only]
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { startControlPlane } from '../src/sandbox/control-plane.ts';
import { createKubeClient, type Json, type KubeClient } from '../src/kube/client.ts';
import { applyCrds } from '../src/kube/apply.ts';
import { InformerFactory } from '../src/kube/cache.ts';
import { CRD_DIR } from '../src/sandbox/paths.ts';
import { startAwsSimulator } from '../src/sandbox/aws-sim/index.ts';
import { createAwsClients } from '../src/aws/index.ts';
import { silentLogger } from '../src/runtime/log.ts';
import { systemClock } from '../src/runtime/clock.ts';
import type { Running } from '../src/runtime/deps.ts';
import { createAssociationLookup, startAssociationController } from '../src/associations/index.ts';
import { parseWebhookFlags } from '../src/config/webhook.ts';
import { parseControllerFlags } from '../src/config/controller.ts';
import { startWebhook } from '../src/webhook/index.ts';
import { createAdmissionGuard } from '../src/verification/admission-guard.ts';
import { startController } from '../src/controller/index.ts';
import { sleep } from '../src/runtime/clock.ts';

const CLUSTER = 'bench';
const WORKERS = 16;
const NAMESPACES = 50;
const GOAL_SYNCED_MS = 60_000;
const TIMEOUT_MS = 300_000;
const POD_TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: { Service: 'pods.eks.amazonaws.com' },
      Action: ['sts:AssumeRole', 'sts:TagSession'],
    },
  ],
});

interface Result {
  mode: 'full' | 'synced-only';
  associations: number;
  namespaces: number;
  workers: number;
  applyMs: number;
  allSyncedMs: number | null;
  allReadyMs: number | null;
  syncedAtEnd: number;
  readyAtEnd: number;
  eksCalls: Record<string, number>;
  eksAuthExchanges: number;
  reconciles: Record<string, number>;
  loadAverage: number[];
  pass: boolean;
}

const condTrue = (o: Json, type: string) =>
  (o?.status?.conditions ?? []).some(
    (c: Json) => c.type === type && c.status === 'True' && c.observedGeneration === o.metadata.generation,
  );

async function pool<T>(items: T[], size: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function run(
  kube: KubeClient,
  cp: { issuer: string; caPem: string },
  count: number,
  full: boolean,
): Promise<Result> {
  const metrics = new Registry();
  const log = silentLogger();
  const deps = { kube, log, metrics, clock: systemClock };
  const sim = await startAwsSimulator({ port: 0, seed: 1 });
  sim.control.registerCluster({ name: CLUSTER, issuer: cp.issuer, caBundle: cp.caPem });
  const aws = createAwsClients({
    region: sim.control.region,
    endpointUrl: sim.url,
    credentials: sim.control.adminCredentials,
    log,
  });
  const roles: string[] = [];
  for (let i = 0; i < 50; i++) {
    const role = await aws.iam.createRole({
      roleName: `bench-role-${i}`,
      assumeRolePolicyDocument: POD_TRUST,
    });
    roles.push(role.arn);
  }
  const label = { 'lanyard-bench': 'associations' };
  const stamp = Date.now().toString(36);
  const nsNames = Array.from({ length: NAMESPACES }, (_, i) => `bench-${stamp}-${i}`);
  for (const ns of nsNames)
    await kube.create('/api/v1/namespaces', { metadata: { name: ns, labels: label } });
  const items = Array.from({ length: count }, (_, i) => ({
    ns: nsNames[i % NAMESPACES]!,
    name: `sa-${i}`,
    role: roles[i % 50]!,
  }));

  const parts: Running[] = [];
  let mwc: string | undefined;
  if (full) {
    // Probe Pods need their ServiceAccounts; the webhook injects and gates them, the verifier exchanges their tokens.
    await pool(items, 32, (it) =>
      kube.create(`/api/v1/namespaces/${it.ns}/serviceaccounts`, { metadata: { name: it.name } }),
    );
    await kube.create('/api/v1/namespaces', { metadata: { name: `lanyard-${stamp}` } });
    const lookup = createAssociationLookup(deps, { clusterName: CLUSTER, observeAck: 'false' });
    parts.push(lookup);
    const wcfg = parseWebhookFlags(
      [
        '--port=0',
        '--metrics-port=0',
        '--tls-mode=self-managed',
        '--tls-extra-sans=127.0.0.1',
        `--tls-secret=bench-${stamp}`,
        '--shutdown-delay=0s',
        `--cluster-name=${CLUSTER}`,
        '--identity-gate',
      ],
      { env: { POD_NAMESPACE: `lanyard-${stamp}` } },
    );
    const guard = createAdmissionGuard(deps, { gateEnabled: true, allowOptOut: true });
    parts.push(guard);
    const webhook = await startWebhook(wcfg, { ...deps, associations: lookup, guard });
    parts.push(webhook);
    while (!webhook.ready()) await sleep(50);
    mwc = `lanyard-bench-${stamp}`;
    await kube.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      metadata: { name: mwc },
      webhooks: [
        {
          name: 'pod-identity.lanyard.dev',
          clientConfig: {
            url: `https://127.0.0.1:${webhook.port}/mutate`,
            caBundle: Buffer.from(webhook.caPem!).toString('base64'),
          },
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
          namespaceSelector: { matchLabels: label },
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          timeoutSeconds: 10,
        },
      ],
    });
    const { config } = parseControllerFlags(
      [
        `--cluster-name=${CLUSTER}`,
        `--aws-endpoint-url=${sim.url}`,
        '--aws-region=us-west-2',
        '--metrics-port=0',
        '--leader-elect=false',
        `--association-workers=${WORKERS}`,
      ],
      { env: {} },
    );
    const controller = await startController(deps, config, {
      awsCredentials: sim.control.adminCredentials,
      lookup,
      serveMetrics: false,
    });
    parts.unshift(controller);
    while (!controller.ready()) await sleep(50);
  } else {
    const controller = await startAssociationController(
      { ...deps, aws },
      {
        clusterName: CLUSTER,
        workers: WORKERS,
        resyncMs: 600_000,
        rolePropagationTimeoutMs: 120_000,
        observeAck: 'false',
        probe: false,
        probeImage: 'registry.k8s.io/pause:3.10',
        deniedAssociationAction: 'delete',
      },
    );
    parts.push(controller);
    await controller.waitForSync(30_000);
  }

  // Counted from a watch, as `kubectl get lpia -A -w` would see them.
  let synced = 0;
  let ready = 0;
  const state = new Map<string, { s: boolean; r: boolean }>();
  const track = (obj: Json, key: string) => {
    const prev = state.get(key) ?? { s: false, r: false };
    const next = { s: condTrue(obj, 'Synced'), r: condTrue(obj, 'Ready') };
    synced += Number(next.s) - Number(prev.s);
    ready += Number(next.r) - Number(prev.r);
    state.set(key, next);
  };
  const watch = new InformerFactory({ client: kube });
  const associations = watch.view<Json>({
    path: '/apis/lanyard.dev/v1alpha1/podidentityassociations',
    onAdd: track,
    onUpdate: (obj, _old, key) => track(obj, key),
  });
  await associations.waitForSync(30_000);

  const t0 = performance.now();
  await pool(items, 64, (it) =>
    kube.create(`/apis/lanyard.dev/v1alpha1/namespaces/${it.ns}/podidentityassociations`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PodIdentityAssociation',
      metadata: { name: it.name },
      spec: { serviceAccount: it.name, roleARN: it.role },
    }),
  );
  const applyMs = performance.now() - t0;
  let allSyncedMs: number | null = null;
  let allReadyMs: number | null = null;
  while (performance.now() - t0 < TIMEOUT_MS) {
    if (allSyncedMs === null && synced >= count) allSyncedMs = performance.now() - t0;
    if (allReadyMs === null && ready >= count) allReadyMs = performance.now() - t0;
    if (allSyncedMs !== null && (!full || allReadyMs !== null)) break;
    await sleep(100);
  }

  const eksCalls: Record<string, number> = {};
  for (const e of sim.control.log({ service: 'eks' })) {
    const k = `${e.operation} ${e.status}`;
    eksCalls[k] = (eksCalls[k] ?? 0) + 1;
  }
  const eksAuthExchanges = sim.control.log({ service: 'eks-auth' }).filter((e) => e.status === 200).length;
  const reconciles: Record<string, number> = {};
  const m = await metrics.getSingleMetric('lanyard_association_reconciles_total')?.get();
  for (const v of m?.values ?? []) reconciles[String(v.labels.result)] = v.value;

  watch.stop();
  for (const p of parts) await p.stop();
  if (mwc) await kube.delete(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${mwc}`);
  aws.destroy();
  await sim.close();
  const ms = (x: number | null) => (x === null ? null : Math.round(x));
  return {
    mode: full ? 'full' : 'synced-only',
    associations: count,
    namespaces: NAMESPACES,
    workers: WORKERS,
    applyMs: Math.round(applyMs),
    allSyncedMs: ms(allSyncedMs),
    allReadyMs: ms(allReadyMs),
    syncedAtEnd: synced,
    readyAtEnd: ready,
    eksCalls,
    eksAuthExchanges,
    reconciles,
    loadAverage: (await import('node:os')).loadavg().map((x) => Math.round(x * 10) / 10),
    pass: allSyncedMs !== null && allSyncedMs < GOAL_SYNCED_MS,
  };
}

function markdown(r: Result): string {
  const s = (ms: number | null) =>
    ms === null ? `not reached within ${TIMEOUT_MS / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
  return [
    `# Association convergence (docs/verified-start.md#measured), ${r.mode}`,
    '',
    `${r.associations} PodIdentityAssociations over ${r.namespaces} namespaces, applied at once (64 concurrent creates);`,
    `AWS simulator without delays or faults; ${
      r.mode === 'full'
        ? `webhook (gate on) and \`lanyard controller\` (association controller with probe Pods, verifier) in-process`
        : 'association controller alone, probe Pods off'
    }; ${r.workers} association workers. Load average at the end: ${r.loadAverage.join(', ')} (shared 2-core machine).`,
    '',
    '| Measure | Value | Goal |',
    '|---|---|---|',
    `| apply (all creates answered) | ${s(r.applyMs)} | |`,
    `| first create to all Synced=True | ${s(r.allSyncedMs)} (${r.syncedAtEnd} Synced) | < ${GOAL_SYNCED_MS / 1000} s ${r.pass ? '(ok)' : '(MISSED)'} |`,
    r.mode === 'full'
      ? `| first create to all Ready=True | ${s(r.allReadyMs)} (${r.readyAtEnd} Ready) | reported |`
      : '| first create to all Ready=True | not measured (no verifier) | |',
    '',
    `EKS calls: ${Object.entries(r.eksCalls)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')}; successful eks-auth exchanges: ${r.eksAuthExchanges}.`,
    `Reconciles: ${Object.entries(r.reconciles)
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ')}.`,
    '',
  ].join('\n');
}

const argv = process.argv.slice(2);
const countAt = argv.indexOf('--count');
const count = countAt >= 0 ? Number(argv[countAt + 1]) : 5000;
const full = !argv.includes('--synced-only');
const cp = await startControlPlane();
const kube = await createKubeClient({ kubeconfig: cp.adminKubeconfig, defaultTimeoutMs: 30_000 });
try {
  await applyCrds(kube, CRD_DIR);
  const r = await run(kube, cp, count, full);
  const out = path.resolve(import.meta.dirname, 'results');
  const base = full ? 'associations' : 'associations-synced-only';
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(
    path.join(out, `${base}.json`),
    JSON.stringify({ at: new Date().toISOString(), result: r }, null, 2) + '\n',
  );
  fs.writeFileSync(path.join(out, `${base}.md`), markdown(r));
  process.stdout.write(markdown(r));
} finally {
  kube.close();
  await cp.stop();
  fs.rmSync(cp.dir, { recursive: true, force: true });
}
