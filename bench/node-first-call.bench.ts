// The first-call benchmark of the real-node issue (docs/adr/0712): on a cluster with a real node and Lanyard
// installed by its chart, the time from `kubectl apply` of a Deployment whose PodIdentityAssociation is created in
// the same apply to its container's first successful AWS call (sts:GetCallerIdentity with the SDK's default chain,
// the log line's kubelet timestamp), with eks-auth seeing a new association 3-8 s after EKS returned it:
//   gate  Lanyard's identity gate: SA + association + Deployment in one apply;
//   job   seed 002's workaround: SA + association + a validation Job (backoffLimit: 4) in one wave, then, once the
//         Job completed and after Argo CD's default 2 s wave delay, the Deployment (no gate: `lanyard.dev/verify: "false"`);
//   none  no gate and no Job: the container starts at once; a failed call exits and the kubelet restarts it.
// Runs are interleaved (gate, job, none, gate, ...) on the same cluster. Writes bench/results/node-first-call.{json,md}.
// Run (root; sets up the node like the `node` test project): npm run bench:node-first-call   (BENCH_RUNS=N, default 5;
// BENCH_EKS_AUTH_LAG=min,max in ms, default 3000,8000)
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import type { Json, KubeClient } from '../src/kube/client.ts';
import { startNodeCluster } from '../test/harness/node-setup.ts';
import { newNodeNamespace, node, nodeAdmin, useNodeCluster } from '../test/harness/node-context.ts';
import {
  awsAdmin,
  configureSimulator,
  ensureLanyard,
  podIdentityTrust,
  roleArn,
  whoamiPodSpec,
} from '../test/harness/node-lanyard.ts';
import { sleep } from '../src/runtime/clock.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** How late eks-auth sees a new association, "min,max" in ms (BENCH_EKS_AUTH_LAG; default 3-8 s as in docs/gitops.md). */
const LAG = (process.env.BENCH_EKS_AUTH_LAG ?? '3000,8000').split(',').map(Number) as [number, number];
const ROLE = 'bench-first-call';
const APP = 'app';
const WAVE_DELAY_MS = 2000;
const BOUND_MS = 240_000;
const run = promisify(execFile);
const say = (l: string) => process.stderr.write(`[bench] ${l}\n`);

type Scenario = 'gate' | 'job' | 'none';
interface Result {
  scenario: Scenario;
  run: number;
  /** From the start of the first `kubectl apply` to the kubelet's timestamp of the success line. */
  firstCallMs: number;
  /** AWS calls that failed before it: failed Job Pods, and restarts of the Deployment's container. */
  failedCalls: number;
  /** job: when the Job completed; gate: when the gate was lifted (verified), relative to the apply. */
  milestoneMs?: number;
}

async function kubectlApply(ns: string, objects: Json[]): Promise<void> {
  const child = run(node().kubectl, ['--kubeconfig', node().adminKubeconfig, '-n', ns, 'apply', '-f', '-']);
  child.child.stdin!.end(objects.map((o) => stringify(o)).join('---\n'));
  await child;
}

function podTemplate(optOut: boolean, restartPolicy: string, args: string[]): Json {
  return {
    metadata: { labels: { app: APP }, ...(optOut ? { annotations: { 'lanyard.dev/verify': 'false' } } : {}) },
    spec: whoamiPodSpec(APP, args, restartPolicy),
  };
}

const identity = (): Json[] => [
  { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: APP } },
  {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'PodIdentityAssociation',
    metadata: { name: APP },
    spec: { serviceAccount: APP, roleARN: roleArn(ROLE) },
  },
];
const deployment = (optOut: boolean): Json => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: APP },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: APP } },
    template: podTemplate(optOut, 'Always', ['--stay']),
  },
});
const validationJob = (): Json => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: 'validate-identity' },
  spec: {
    backoffLimit: 4,
    template: {
      ...podTemplate(true, 'Never', []),
      metadata: { annotations: { 'lanyard.dev/verify': 'false' } },
    },
  },
});

/** The Deployment Pod's first success line: its kubelet timestamp, and the restarts before it. */
async function firstSuccess(
  admin: KubeClient,
  ns: string,
): Promise<{ at: number; restarts: number; pod: Json }> {
  const deadline = Date.now() + BOUND_MS;
  while (Date.now() < deadline) {
    const pods: Json[] = (
      await admin.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `app=${APP}` })
    ).items.filter((p: Json) => p.metadata.ownerReferences?.[0]?.kind === 'ReplicaSet');
    const status = pods[0]?.status?.containerStatuses?.[0];
    if (status?.state?.running) {
      const out = await run(node().kubectl, [
        '--kubeconfig',
        node().adminKubeconfig,
        '-n',
        ns,
        'logs',
        '--timestamps',
        pods[0]!.metadata.name,
      ]).then(
        (r) => r.stdout,
        () => '',
      );
      const line = out.split('\n').find((l) => l.includes(' assumed-role-arn '));
      if (line) return { at: Date.parse(line.split(' ')[0]!), restarts: status.restartCount, pod: pods[0]! };
    }
    await sleep(250);
  }
  throw new Error(`no successful call in ${ns} within ${BOUND_MS} ms`);
}

async function measure(admin: KubeClient, scenario: Scenario, i: number): Promise<Result> {
  const ns = await newNodeNamespace(admin, `bench-${scenario}`);
  const t0 = Date.now();
  let milestoneMs: number | undefined;
  let failedJobPods = 0;
  if (scenario === 'job') {
    await kubectlApply(ns, [...identity(), validationJob()]);
    // Argo CD waits for the wave's resources to be healthy (a Job: Complete) before the next wave.
    for (;;) {
      const j = await admin.get(`/apis/batch/v1/namespaces/${ns}/jobs/validate-identity`);
      const c = (j.status?.conditions ?? []).find(
        (x: Json) => ['Complete', 'Failed'].includes(x.type) && x.status === 'True',
      );
      if (c?.type === 'Failed') throw new Error(`validation Job failed: ${c.message}`);
      if (c) {
        milestoneMs = Date.now() - t0;
        failedJobPods = j.status.failed ?? 0;
        break;
      }
      if (Date.now() - t0 > BOUND_MS) throw new Error('validation Job did not complete');
      await sleep(250);
    }
    await sleep(WAVE_DELAY_MS);
    await kubectlApply(ns, [deployment(true)]);
  } else {
    await kubectlApply(ns, [...identity(), deployment(scenario === 'none')]);
  }
  const s = await firstSuccess(admin, ns);
  if (scenario === 'gate') {
    const verified = s.pod.metadata.annotations?.['lanyard.dev/identity-verification'];
    if (verified !== 'verified') throw new Error(`gate run ${ns}: the Pod was not verified (${verified})`);
    const released = (s.pod.status.conditions ?? []).find(
      (c: Json) => c.type === 'PodScheduled',
    )?.lastTransitionTime;
    if (released) milestoneMs = Date.parse(released) - t0;
  }
  void admin.delete(`/api/v1/namespaces/${ns}`).catch(() => {});
  return { scenario, run: i, firstCallMs: s.at - t0, failedCalls: failedJobPods + s.restarts, milestoneMs };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { n: s.length, min: s[0]!, p50: q(0.5), max: s.at(-1)! };
};
const secs = (ms: number) => (ms / 1000).toFixed(1);

async function main(): Promise<void> {
  const started = Date.now();
  const loadBefore = os.loadavg();
  const { shared, teardown } = await startNodeCluster(say);
  useNodeCluster(shared);
  const results: Result[] = [];
  try {
    const t = Date.now();
    await ensureLanyard();
    say(`Lanyard installed by its chart in ${secs(Date.now() - t)}s`);
    const aws = awsAdmin();
    try {
      await aws.iam.createRole({ roleName: ROLE, assumeRolePolicyDocument: podIdentityTrust() });
    } finally {
      aws.destroy();
    }
    await configureSimulator({ visibility: { eksAuth: LAG } });
    const admin = await nodeAdmin();
    try {
      for (let i = 0; i < RUNS; i++) {
        for (const scenario of ['gate', 'job', 'none'] as const) {
          const r = await measure(admin, scenario, i);
          results.push(r);
          say(
            `${scenario} #${i}: first successful call ${secs(r.firstCallMs)}s after the apply, ${r.failedCalls} failed call(s) before it` +
              (r.milestoneMs !== undefined
                ? `; ${scenario === 'job' ? 'Job complete' : 'released'} at ${secs(r.milestoneMs)}s`
                : '') +
              ` (load ${os
                .loadavg()
                .map((l) => l.toFixed(1))
                .join(' ')})`,
          );
        }
      }
    } finally {
      admin.close();
    }
  } finally {
    await teardown();
  }
  const loadAfter = os.loadavg();
  const summary = (['gate', 'job', 'none'] as const).map((scenario) => {
    const rs = results.filter((r) => r.scenario === scenario);
    return {
      scenario,
      firstCall: stats(rs.map((r) => r.firstCallMs)),
      failedCalls: rs.reduce((a, r) => a + r.failedCalls, 0),
    };
  });
  const out = {
    when: new Date().toISOString(),
    cpus: os.cpus().length,
    eksAuthLagMs: LAG,
    loadBefore,
    loadAfter,
    runs: RUNS,
    wallSeconds: (Date.now() - started) / 1000,
    summary,
    results,
  };
  const dir = path.resolve(import.meta.dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'node-first-call.json'), JSON.stringify(out, null, 2));
  const md = [
    `# First successful AWS call on a real node (${out.when}; ${out.cpus} CPUs; load ${loadBefore.map((l) => l.toFixed(1)).join(' ')} before, ${loadAfter.map((l) => l.toFixed(1)).join(' ')} after)`,
    '',
    `From \`kubectl apply\` of the ServiceAccount, PodIdentityAssociation and Deployment to the container's first successful \`sts:GetCallerIdentity\`; eks-auth sees a new association ${LAG[0] / 1000}-${LAG[1] / 1000} s late.`,
    '',
    '| scenario | runs | min | p50 | max | failed calls (all runs) |',
    '|---|---|---|---|---|---|',
    ...summary.map(
      (s) =>
        `| ${s.scenario} | ${s.firstCall.n} | ${secs(s.firstCall.min)} s | ${secs(s.firstCall.p50)} s | ${secs(s.firstCall.max)} s | ${s.failedCalls} |`,
    ),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'node-first-call.md'), md);
  process.stdout.write(md);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
