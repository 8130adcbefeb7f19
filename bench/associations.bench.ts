// verification.md §16, association convergence: 5,000 PodIdentityAssociations applied at once against the AWS
// simulator (no delays, no faults); time until every one is Synced=True (goal < 60 s), and Ready=True when a
// verifier runs alongside (bench/verification.bench.ts passes `waitReady`). Writes bench/results/associations.{json,md}.
// Run: npx tsx bench/associations.bench.ts [--count 5000] [--probe]   (figures are reported, never gate a test run)
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { startControlPlane, type ControlPlane } from '../src/sandbox/control-plane.ts';
import { createKubeClient, type Json, type KubeClient } from '../src/kube/client.ts';
import { applyCrds } from '../src/kube/apply.ts';
import { Informer } from '../src/kube/informer.ts';
import { CRD_DIR } from '../src/sandbox/paths.ts';
import { startAwsSimulator } from '../src/sandbox/aws-sim/index.ts';
import { createAwsClients } from '../src/aws/index.ts';
import { silentLogger } from '../src/runtime/log.ts';
import { systemClock } from '../src/runtime/clock.ts';
import { startAssociationController, type AssociationController } from '../src/associations/index.ts';

export interface ConvergenceOptions {
  cp: Pick<ControlPlane, 'issuer' | 'caPem'>;
  kube: KubeClient;
  count: number;
  namespaces: number;
  probe: boolean;
  /** Also wait for Ready=True (needs a verifier reporting to the controller). */
  waitReady?: boolean;
  /** Started with the controller, e.g. the verifier wired to controller.recordVerification. */
  alongside?: (c: AssociationController, aws: ReturnType<typeof createAwsClients>, simUrl: string) => Promise<{ stop(): Promise<void> }>;
  timeoutMs?: number;
}

export interface ConvergenceResult {
  associations: number;
  namespaces: number;
  probe: boolean;
  workers: number;
  applyMs: number;
  allSyncedMs: number | null;
  allReadyMs: number | null;
  syncedAtEnd: number;
  readyAtEnd: number;
  eksCalls: Record<string, number>;
  reconciles: Record<string, number>;
  goalSyncedMs: number;
  pass: boolean;
}

const CLUSTER = 'bench';
const WORKERS = 16;

const condTrue = (o: Json, type: string) =>
  (o?.status?.conditions ?? []).some(
    (c: Json) => c.type === type && c.status === 'True' && c.observedGeneration === o.metadata.generation,
  );

async function inBatches<T>(items: T[], size: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export async function associationConvergence(o: ConvergenceOptions): Promise<ConvergenceResult> {
  const sim = await startAwsSimulator({ port: 0, seed: 1 });
  sim.control.registerCluster({ name: CLUSTER, issuer: o.cp.issuer, caBundle: o.cp.caPem });
  const aws = createAwsClients({
    region: sim.control.region,
    endpointUrl: sim.url,
    credentials: sim.control.adminCredentials,
    log: silentLogger(),
  });
  const roles: string[] = [];
  for (let i = 0; i < 50; i++) {
    const name = `bench-role-${i}`;
    await aws.iam.createRole({
      roleName: name,
      assumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: ['sts:AssumeRole', 'sts:TagSession'] }],
      }),
    });
    roles.push(`arn:aws:iam::${sim.control.account}:role/${name}`);
  }
  const stamp = Date.now().toString(36);
  const nsNames = Array.from({ length: o.namespaces }, (_, i) => `bench-${stamp}-${i}`);
  for (const ns of nsNames) {
    await o.kube.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }
  const items = Array.from({ length: o.count }, (_, i) => ({
    ns: nsNames[i % o.namespaces]!,
    name: `sa-${i}`,
    role: roles[i % roles.length]!,
  }));
  if (o.probe) {
    await inBatches(items, 32, (it) =>
      o.kube.create(`/api/v1/namespaces/${it.ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: it.name } }),
    );
  }

  const metrics = new Registry();
  const controller = await startAssociationController(
    { kube: o.kube, log: silentLogger(), metrics, clock: systemClock, aws },
    {
      clusterName: CLUSTER,
      workers: WORKERS,
      resyncMs: 600_000,
      rolePropagationTimeoutMs: 120_000,
      observeAck: 'false',
      probe: o.probe,
      probeImage: 'registry.k8s.io/pause:3.10',
    },
  );
  await controller.waitForSync(30_000);
  const extra = o.alongside ? await o.alongside(controller, aws, sim.url) : undefined;

  // Counts come from a watch, as a user's `kubectl get lpia -A -w` would see them.
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
  const watch = new Informer<Json>({
    client: o.kube,
    path: '/apis/lanyard.dev/v1alpha1/podidentityassociations',
    onAdd: track,
    onUpdate: (obj, _old, key) => track(obj, key),
  }).start();
  await watch.waitForSync(30_000);

  const t0 = performance.now();
  await inBatches(items, 64, (it) =>
    o.kube.create(`/apis/lanyard.dev/v1alpha1/namespaces/${it.ns}/podidentityassociations`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PodIdentityAssociation',
      metadata: { name: it.name },
      spec: { serviceAccount: it.name, roleARN: it.role },
    }),
  );
  const applyMs = performance.now() - t0;
  const deadline = t0 + (o.timeoutMs ?? 180_000);
  let allSyncedMs: number | null = null;
  let allReadyMs: number | null = null;
  while (performance.now() < deadline) {
    if (allSyncedMs === null && synced >= o.count) allSyncedMs = performance.now() - t0;
    if (allReadyMs === null && ready >= o.count) allReadyMs = performance.now() - t0;
    if (allSyncedMs !== null && (!o.waitReady || allReadyMs !== null)) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const eksCalls: Record<string, number> = {};
  for (const e of sim.control.log({ service: 'eks' })) eksCalls[`${e.operation} ${e.status}`] = (eksCalls[`${e.operation} ${e.status}`] ?? 0) + 1;
  const reconciles: Record<string, number> = {};
  const m = await metrics.getSingleMetric('lanyard_association_reconciles_total')?.get();
  for (const v of m?.values ?? []) reconciles[String(v.labels.result)] = v.value;

  watch.stop();
  await extra?.stop();
  await controller.stop();
  aws.destroy();
  await sim.close();
  const goalSyncedMs = 60_000;
  return {
    associations: o.count,
    namespaces: o.namespaces,
    probe: o.probe,
    workers: WORKERS,
    applyMs: Math.round(applyMs),
    allSyncedMs: allSyncedMs === null ? null : Math.round(allSyncedMs),
    allReadyMs: allReadyMs === null ? null : Math.round(allReadyMs),
    syncedAtEnd: synced,
    readyAtEnd: ready,
    eksCalls,
    reconciles,
    goalSyncedMs,
    pass: allSyncedMs !== null && allSyncedMs < goalSyncedMs,
  };
}

export function convergenceMarkdown(r: ConvergenceResult): string {
  const s = (ms: number | null) => (ms === null ? 'not reached' : `${(ms / 1000).toFixed(1)} s`);
  return [
    '# Association convergence (verification.md §16)',
    '',
    `${r.associations} PodIdentityAssociations over ${r.namespaces} namespaces, applied at once (64 concurrent creates);`,
    `AWS simulator without delays or faults; controller in-process with ${r.workers} workers; probe Pods ${r.probe ? 'on' : 'off'}.`,
    '',
    '| Measure | Value | Goal |',
    '|---|---|---|',
    `| apply (all creates answered) | ${s(r.applyMs)} | |`,
    `| first create to all Synced=True | ${s(r.allSyncedMs)} | < ${r.goalSyncedMs / 1000} s ${r.pass ? '(ok)' : '(MISSED)'} |`,
    `| first create to all Ready=True | ${r.allReadyMs === null ? `not reached (${r.readyAtEnd} Ready; needs a verifier reporting exchanges)` : s(r.allReadyMs)} | reported |`,
    '',
    `EKS calls: ${Object.entries(r.eksCalls).map(([k, v]) => `${k}: ${v}`).join(', ')}.`,
    `Reconciles: ${Object.entries(r.reconciles).map(([k, v]) => `${k}: ${v}`).join(', ')}.`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const count = Number(argv[argv.indexOf('--count') + 1] ?? 5000) || 5000;
  const probe = argv.includes('--probe');
  const cp = await startControlPlane();
  const kube = await createKubeClient({ kubeconfig: cp.adminKubeconfig, defaultTimeoutMs: 30_000 });
  try {
    await applyCrds(kube, CRD_DIR);
    const r = await associationConvergence({ cp, kube, count: argv.includes('--count') ? count : 5000, namespaces: 50, probe });
    const out = path.resolve(import.meta.dirname, 'results');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'associations.json'), JSON.stringify({ at: new Date().toISOString(), result: r }, null, 2) + '\n');
    const md = convergenceMarkdown(r);
    fs.writeFileSync(path.join(out, 'associations.md'), md);
    process.stdout.write(md);
  } finally {
    kube.close();
    await cp.stop();
    fs.rmSync(cp.dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
