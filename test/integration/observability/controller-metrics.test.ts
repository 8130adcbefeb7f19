// docs/observability.md, "Controllers and work queues": every reconciler of a real `lanyard controller` process
// (bin/lanyard.js, a child process) reports controller-runtime's reconcile metrics and its work queue's metrics under
// its own name, with values that agree with one another, and the scrape carries no credential.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, newNamespace } from '../../harness/context.ts';
import { freePort, spawnController, untilReady } from '../../fixtures/controller-process.ts';
import type { Json } from '../../../src/kube/client.ts';
import {
  CLUSTER,
  GATE,
  SECRET_PATTERNS,
  association,
  ccTrust,
  deleteQuietly,
  gates,
  getPod,
  podBody,
  serviceAccount,
  startVerificationEnv,
  type VerificationEnv,
} from '../verification/env.ts';

const G = '/apis/lanyard.dev/v1alpha1';

/** Every work-queue loop `lanyard controller` runs (self-managed certificates aside: not a queue). */
const CONTROLLERS = [
  'identities',
  'associations',
  'association-probes',
  'verifier',
  'identitypolicy-status',
  'promotions',
  'projects-housekeeping',
] as const;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, enough for this test: one sample per line, `name{a="b",…} value`. */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The one sample of `name` whose labels include `labels`; throws when there is none. */
function one(samples: Sample[], name: string, labels: Record<string, string>): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`);
  return found[0]!.value;
}

describe('reconcile and work-queue metrics of a lanyard controller process', () => {
  let env: VerificationEnv;
  let child: ChildProcess | undefined;
  const childLogs: string[] = [];
  let metricsPort = 0;
  let ns = '';
  let project = '';
  let agentNs = '';
  const policy = `metrics-${Date.now().toString(36)}`;
  const scrape = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();

  beforeAll(async () => {
    env = await startVerificationEnv({ seed: 1021, controller: false, webhook: false });
    metricsPort = await freePort();
    ns = await env.namespace('metrics');
    project = await newNamespace(env.admin, 'metrics-project', { 'lanyard.dev/project': 'true' });
    agentNs = await newNamespace(env.admin, 'metrics-agent', {});
    await env.admin.create(`/api/v1/namespaces/${agentNs}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'lanyard-promotion-orchestrator' },
    });
    child = spawnController({
      cluster: CLUSTER,
      sim: env.sim,
      metricsPort,
      leaseNamespace: env.systemNamespace,
      leaseName: 'metrics',
      identity: 'metrics-controller',
      flags: [`--promotion-namespace=${agentNs}`, '--association-resync=2s'],
      logs: childLogs,
    });
    await untilReady(metricsPort);
  });

  afterAll(async () => {
    child?.kill('SIGTERM');
    if (child && child.exitCode === null) await new Promise((r) => child!.once('exit', r));
    await deleteQuietly(env.admin, `${G}/identitypolicies/${policy}`);
    for (const n of [project, agentNs]) await deleteQuietly(env.admin, `/api/v1/namespaces/${n}`);
    await env?.stop();
  });

  it('counts reconciles, errors, retries and queue depth per controller, and the scrape holds no credential', async () => {
    // Something for every controller: an IdentityPolicy allowing this file's namespace (identitypolicy-status; an
    // allow rule, so earlier files' policies cannot deny the association below), an association and its probe Pod
    // (associations, association-probes), a gated Pod declaring no identity (verifier, identities), a Stage
    // (promotions) in a project namespace (projects-housekeeping).
    await env.admin.create(`${G}/identitypolicies`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'IdentityPolicy',
      metadata: { name: policy },
      spec: {
        rules: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
            serviceAccounts: ['*'],
            roles: [`arn:aws:iam::${env.account}:role/*`],
          },
        ],
      },
    });
    const roleName = `metrics-${Date.now().toString(36)}`;
    await env.aws.iam.createRole({ roleName, assumeRolePolicyDocument: ccTrust() });
    await serviceAccount(env.admin, ns, 'app');
    await association(env.admin, ns, 'app', 'app', `arn:aws:iam::${env.account}:role/${roleName}`);
    await serviceAccount(env.admin, ns, 'plain');
    await env.admin.create(`/api/v1/namespaces/${ns}/pods`, podBody('plain', 'plain', { gates: [GATE] }));
    await env.admin.create(`${G}/namespaces/${project}/promotionsteps`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PromotionStep',
      metadata: { name: 'hello' },
      spec: { image: 'example.com/hello:1', command: ['true'] },
    });
    await env.admin.create(`${G}/namespaces/${project}/stages`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'Stage',
      metadata: { name: 'metrics' },
      spec: { promotionTemplate: { spec: { steps: [{ as: 'one', uses: 'hello' }] } } },
    });

    // What each of them wrote, seen through the API server.
    await eventually(
      async () => {
        const p = await env.admin.get(`${G}/identitypolicies/${policy}`);
        expect((p.status?.conditions ?? []).map((c: Json) => c.type)).toContain('Accepted');
        const a = await env.admin.get(`${G}/namespaces/${ns}/podidentityassociations/app`);
        expect((a.status?.conditions ?? []).find((c: Json) => c.type === 'Synced')?.status).toBe('True');
        const probes = await env.admin.get(`/api/v1/namespaces/${ns}/pods`, {
          labelSelector: 'lanyard.dev/probe=true',
        });
        expect(probes.items.length).toBeGreaterThan(0);
        expect(gates(await getPod(env.admin, ns, 'plain'))).not.toContain(GATE);
        const s = await env.admin.get(`${G}/namespaces/${project}/stages/metrics`);
        expect((s.status?.conditions ?? []).find((c: Json) => c.type === 'Valid')?.observedGeneration).toBe(
          s.metadata.generation,
        );
      },
      30_000,
      200,
    );

    // Every controller has reconciled at least once, as the process reports it.
    let samples: Sample[] = [];
    await eventually(
      async () => {
        samples = parseMetrics(await scrape());
        for (const c of CONTROLLERS) {
          const done = ['success', 'error', 'requeue_after'].reduce(
            (n, result) => n + one(samples, 'controller_runtime_reconcile_total', { controller: c, result }),
            0,
          );
          expect(done, `${c} reconciles`).toBeGreaterThan(0);
        }
      },
      30_000,
      200,
    );

    // One consistent scrape: the values of one controller agree with one another.
    for (const c of CONTROLLERS) {
      const total = (result: string) =>
        one(samples, 'controller_runtime_reconcile_total', { controller: c, result });
      const finished = total('success') + total('error') + total('requeue_after');
      const errors = one(samples, 'controller_runtime_reconcile_errors_total', { controller: c });
      expect(errors, `${c} errors`).toBe(total('error'));
      // A failed reconcile is requeued with backoff, counted once as a retry.
      expect(one(samples, 'workqueue_retries_total', { name: c }), `${c} retries`).toBe(errors);
      expect(
        one(samples, 'controller_runtime_reconcile_time_seconds_count', { controller: c }),
        `${c} timed`,
      ).toBe(finished);
      expect(
        one(samples, 'controller_runtime_reconcile_time_seconds_sum', { controller: c }),
      ).toBeGreaterThan(0);
      // Every key a worker took was added first; a worker takes a key before it finishes it.
      const adds = one(samples, 'workqueue_adds_total', { name: c });
      const taken = one(samples, 'workqueue_queue_duration_seconds_count', { name: c });
      expect(adds, `${c} adds`).toBeGreaterThanOrEqual(taken);
      expect(taken, `${c} taken`).toBeGreaterThanOrEqual(finished);
      expect(one(samples, 'workqueue_work_duration_seconds_count', { name: c })).toBe(finished);
      const depth = one(samples, 'workqueue_depth', { name: c });
      expect(Number.isInteger(depth) && depth >= 0 && depth <= adds, `${c} depth ${depth}`).toBe(true);
      const active = one(samples, 'controller_runtime_active_workers', { controller: c });
      expect(
        Number.isInteger(active) && active >= 0 && active <= taken - finished,
        `${c} active ${active}`,
      ).toBe(true);
    }
    expect(one(samples, 'leader_election_master_status', { name: 'metrics' })).toBe(1);

    // No credential reaches the scrape: the AWS keys the process holds, Pod tokens, STS keys, private keys.
    const text = await scrape();
    const creds = env.sim.control.adminCredentials;
    expect(text).not.toContain(creds.accessKeyId);
    expect(text).not.toContain(creds.secretAccessKey);
    expect(SECRET_PATTERNS.filter((re) => re.test(text))).toEqual([]);
    expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE|[Bb]earer /);
    expect(childLogs.filter((l) => SECRET_PATTERNS.some((re) => re.test(l)))).toEqual([]);
  });
});
