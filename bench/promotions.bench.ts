// docs/promotions.md: 200 Promotions across 50 Stages against a real control plane, with a driver playing the
// kubelet; and the pure pod builder on a 20-step Stage with all decorators. Writes bench/results/promotions.{json,md}.
// Run: npx tsx bench/promotions.bench.ts
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { startControlPlane } from '../src/sandbox/control-plane.ts';
import { applyCrds } from '../src/kube/apply.ts';
import { CRD_DIR } from '../src/sandbox/paths.ts';
import { createKubeClient, type Json } from '../src/kube/client.ts';
import { InformerFactory } from '../src/kube/cache.ts';
import { silentLogger } from '../src/runtime/log.ts';
import { systemClock } from '../src/runtime/clock.ts';
import { promotionConfigFrom } from '../src/config/promotions.ts';
import { startPromotionController } from '../src/promotions/controller.ts';
import { buildPromotionPod } from '../src/promotions/build.ts';
import { exited, kubelet } from '../test/fixtures/promotion-env.ts';
import { input, serviceAccount, stage as stageFixture, step } from '../test/fixtures/promotions.ts';
import { sleep } from '../src/runtime/clock.ts';

const G = '/apis/lanyard.dev/v1alpha1';
const STAGES = 50;
const PER_STAGE = 4;
const BUILDER_CALLS = 10_000;

function builderBench() {
  const steps: Record<string, Json> = {};
  const stageSteps = Array.from({ length: 20 }, (_, i) => {
    steps[`shop/s${i}`] = step(`s${i}`, 'shop', {
      image: `example.com/s${i}:1`,
      command: ['sh', '-c', 'echo ${{ config.target }} {{ vars.version }} ${{ ctx.step }}'],
      args: ['{{ config.hosts.0 }}', '{{.metadata.name}}'],
      env: [{ name: 'TARGET', value: '${{ config.target }}' }],
      ...(i % 4 === 0 ? { identity: { roleARN: `arn:aws:iam::111122223333:role/step-${i}` } } : {}),
      ...(i % 5 === 0 ? { capabilities: ['kubernetes-api'] } : {}),
    });
    return {
      as: `step number ${i}`,
      uses: `s${i}`,
      timeout: '5m',
      config: { target: 'env/${{ vars.version }}', hosts: ['a', 'b'] },
    };
  });
  const st = stageFixture({
    annotations: {
      'lanyard.dev/promotion-sa': 's3-access',
      'lanyard.dev/promotion-labels': JSON.stringify(
        Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`example.com/l${i}`, `v${i}`])),
      ),
      'lanyard.dev/promotion-annotations': JSON.stringify(
        Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`example.com/a${i}`, `value ${i}`])),
      ),
    },
    spec: {
      promotionTemplate: {
        spec: { timeout: '1h', vars: [{ name: 'version', pattern: '[0-9.]+' }], steps: stageSteps },
      },
    },
  });
  const inp = input({ stage: st, steps, sas: [serviceAccount('s3-access')] });
  const r = buildPromotionPod(inp);
  if (!r.ok) throw new Error(r.message);
  for (let i = 0; i < 500; i++) buildPromotionPod(inp); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < BUILDER_CALLS; i++) buildPromotionPod(inp);
  const ms = performance.now() - t0;
  return { calls: BUILDER_CALLS, totalMs: round(ms), perCallMs: round(ms / BUILDER_CALLS, 4) };
}

function round(n: number, d = 1): number {
  return Math.round(n * 10 ** d) / 10 ** d;
}

async function clusterBench() {
  const cp = await startControlPlane({ log: () => undefined });
  const admin = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
  const calls = new Map<string, number>();
  const ctrlClient = await createKubeClient({
    kubeconfig: cp.adminKubeconfig,
    onRequest: (r) => {
      const kind = `${r.method} ${r.path.replace(/\/namespaces\/[^/]+/, '').replace(/\/[^/]*-[^/]*(\/|$)/, '/NAME$1')} ${r.status}`;
      calls.set(kind, (calls.get(kind) ?? 0) + 1);
    },
  });
  const driverClient = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
  try {
    await applyCrds(admin, CRD_DIR);
    for (const ns of ['lanyard-promotions', 'shop'])
      await admin.create('/api/v1/namespaces', { metadata: { name: ns } });
    await admin.create('/api/v1/namespaces/lanyard-promotions/serviceaccounts', {
      metadata: { name: 'lanyard-promotion-orchestrator' },
    });
    await admin.create(`${G}/namespaces/shop/promotionsteps`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PromotionStep',
      metadata: { name: 'work' },
      spec: { image: 'example.com/w:1', command: ['w'] },
    });
    await Promise.all(
      Array.from({ length: STAGES }, (_, i) =>
        admin.create(`${G}/namespaces/shop/stages`, {
          apiVersion: 'lanyard.dev/v1alpha1',
          kind: 'Stage',
          metadata: { name: `stage-${i}` },
          spec: { promotionTemplate: { spec: { steps: [{ uses: 'work' }, { uses: 'work' }] } } },
        }),
      ),
    );
    // The CRDs' established condition and the stages must be visible before the clock starts.
    await sleep(500);

    const config = promotionConfigFrom({ 'promotion-pod-retention': '1h' });
    const controller = await startPromotionController(
      { kube: ctrlClient, log: silentLogger(), metrics: new Registry(), clock: systemClock },
      config,
    );

    const podCreated = new Map<string, number>(); // promotion name -> ms
    const podOrder = new Map<string, string[]>(); // stage -> promotion names in pod-creation order
    const watches = new InformerFactory({ client: driverClient });
    const pods = watches.view<Json>({
      path: '/api/v1/namespaces/lanyard-promotions/pods',
      onAdd: (pod) => {
        const promo = pod.metadata.labels['lanyard.dev/promotion'];
        const stage = pod.metadata.labels['lanyard.dev/stage'];
        if (podCreated.has(promo)) return;
        podCreated.set(promo, performance.now());
        podOrder.set(stage, [...(podOrder.get(stage) ?? []), promo]);
        // The kubelet: both steps and `done` exit 0 as soon as the pod appears.
        void kubelet(driverClient, 'lanyard-promotions', pod.metadata.name, {
          phase: 'Succeeded',
          init: { 'step-1': exited(0), 'step-2': exited(0, 'ok=1') },
          done: exited(0),
        }).catch((e) => console.error('kubelet', e));
      },
    });
    await pods.waitForSync();
    const succeeded = new Map<string, number>();
    let allDone: () => void;
    const finished = new Promise<void>((r) => (allDone = r));
    const promotions = watches.view<Json>({
      path: `${G}/namespaces/shop/promotions`,
      onUpdate: (p) => {
        if (
          p.status?.phase &&
          ['Succeeded', 'Failed', 'Errored', 'Aborted'].includes(p.status.phase) &&
          !succeeded.has(p.metadata.name)
        ) {
          if (p.status.phase !== 'Succeeded')
            console.error(`${p.metadata.name}: ${p.status.phase}: ${p.status.message}`);
          succeeded.set(p.metadata.name, performance.now());
          if (succeeded.size === STAGES * PER_STAGE) allDone();
        }
      },
    });
    await promotions.waitForSync();

    const t0 = performance.now();
    const created = await Promise.all(
      Array.from({ length: STAGES * PER_STAGE }, (_, i) =>
        admin.create(`${G}/namespaces/shop/promotions`, {
          apiVersion: 'lanyard.dev/v1alpha1',
          kind: 'Promotion',
          metadata: { generateName: `stage-${i % STAGES}-` },
          spec: { stage: `stage-${i % STAGES}` },
        }),
      ),
    );
    const tCreated = performance.now();
    await Promise.race([
      finished,
      new Promise((_, rej) =>
        setTimeout(() => rej(new Error(`only ${succeeded.size} finished in 120s`)), 120_000),
      ),
    ]);
    const tDone = performance.now();

    // Queue order per Stage: creationTimestamp, then name.
    let outOfOrder = 0;
    for (let s = 0; s < STAGES; s++) {
      const expected = created
        .filter((p) => p.spec.stage === `stage-${s}`)
        .sort((a, b) =>
          a.metadata.creationTimestamp === b.metadata.creationTimestamp
            ? a.metadata.name < b.metadata.name
              ? -1
              : 1
            : a.metadata.creationTimestamp < b.metadata.creationTimestamp
              ? -1
              : 1,
        )
        .map((p) => p.metadata.name);
      if (JSON.stringify(expected) !== JSON.stringify(podOrder.get(`stage-${s}`))) outOfOrder++;
    }
    const firstPods = [...podOrder.values()].map((names) => podCreated.get(names[0]!)!);
    const result = {
      promotions: STAGES * PER_STAGE,
      stages: STAGES,
      workers: config.workers,
      createMs: round(tCreated - t0),
      allSucceededMs: round(tDone - t0),
      podsCreated: podCreated.size,
      allSucceeded: [...succeeded.keys()].length,
      firstPodEveryStageAfterLastCreateMs: round(Math.max(...firstPods) - tCreated),
      stagesOutOfOrder: outOfOrder,
      controllerRequests: [...calls.values()].reduce((a, b) => a + b, 0),
      controllerRequestsByKind: Object.fromEntries([...calls.entries()].sort((a, b) => b[1] - a[1])),
    };
    watches.stop();
    await controller.stop();
    return result;
  } finally {
    admin.close();
    ctrlClient.close();
    driverClient.close();
    await cp.stop();
  }
}

const builder = builderBench();
console.log('builder', builder);
const cluster = await clusterBench();
console.log('cluster', cluster);
const out = {
  date: new Date().toISOString(),
  node: process.version,
  builder,
  cluster,
  targets: { allSucceededMs: 10_000, firstPodEveryStageAfterLastCreateMs: 3_000, perCallMs: 1 },
};
fs.mkdirSync(path.join(import.meta.dirname, 'results'), { recursive: true });
fs.writeFileSync(
  path.join(import.meta.dirname, 'results', 'promotions.json'),
  JSON.stringify(out, null, 2) + '\n',
);
fs.writeFileSync(
  path.join(import.meta.dirname, 'results', 'promotions.md'),
  `# Promotions benchmark (docs/promotions.md)

Run: \`npx tsx bench/promotions.bench.ts\` (${out.date}, Node ${out.node}, shared 2-core machine)

| Measure | Result | Target |
|---|---|---|
| ${cluster.promotions} Promotions over ${cluster.stages} Stages: all pods created and all Succeeded | ${cluster.allSucceededMs} ms (${cluster.podsCreated} pods, ${cluster.allSucceeded} finished) | < 10,000 ms |
| first pod of every Stage, after the last create | ${cluster.firstPodEveryStageAfterLastCreateMs} ms | < 3,000 ms |
| Stages whose pods did not follow queue order | ${cluster.stagesOutOfOrder} | 0 |
| creating the 200 Promotions (client side) | ${cluster.createMs} ms | - |
| pure builder + validator, 20 steps, all decorators | ${builder.perCallMs} ms/call over ${builder.calls} calls | < 1 ms |
`,
);
process.exit(0);
