// Chaos (docs/verified-start.md#measured): 1000 Pods over 50 ServiceAccounts (25 per mode, 5 namespaces) at about 100/s; eksAuth and iam.role visibility
// 0-20 s; 5 % throttling and 1 % 5xx; the controller (a real `lanyard controller` child process) SIGKILLed at 10 s
// and restarted 2 s later. Then the same setup without the gate, counting the Pods that would have started before
// their identity worked.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../harness/context.ts';
import { freePort, spawnController, untilReady } from '../../fixtures/controller-process.ts';
import type { Json } from '../../../src/kube/client.ts';
import { InformerFactory } from '../../../src/kube/cache.ts';
import {
  CLUSTER,
  GATE,
  SECRET_PATTERNS,
  association,
  ccTrust,
  podBody,
  serviceAccount,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from './env.ts';

const NAMESPACES = 5;
const SA_PER_MODE_PER_NS = 5;
const PODS_PER_SA = 20;
const RATE_PER_S = 100;
const FAULTS = [
  { service: 'eks-auth', operation: '*', error: 'ThrottlingException', rate: 0.05 },
  { service: 'sts', operation: 'AssumeRoleWithWebIdentity', error: 'ThrottlingException', rate: 0.05 },
  { service: 'eks', operation: '*', error: 'ThrottlingException', rate: 0.05 },
  { service: 'eks-auth', operation: '*', error: 'InternalServerError', rate: 0.01 },
  { service: 'sts', operation: 'AssumeRoleWithWebIdentity', error: 'InternalServerError', rate: 0.01 },
  { service: 'eks', operation: '*', error: 'InternalServerError', rate: 0.01 },
] as const;

interface Identity {
  ns: string;
  sa: string;
  mode: 'cc' | 'wi';
  role: string;
  roleName: string;
}

/** Roles, SAs and associations for 50 identities; returns them once the webhook's cache holds every association. */
async function setupIdentities(env: VerificationEnv, tag: string): Promise<Identity[]> {
  const ids: Identity[] = [];
  for (let n = 0; n < NAMESPACES; n++) {
    const ns = await env.namespace(`chaos${tag}${n}`);
    for (let i = 0; i < SA_PER_MODE_PER_NS; i++) {
      for (const mode of ['cc', 'wi'] as const) {
        const sa = `${mode}-${i}`;
        const roleName = `${tag}-${n}-${mode}-${i}`;
        ids.push({ ns, sa, mode, roleName, role: `arn:aws:iam::${env.account}:role/chaos/${roleName}` });
      }
    }
  }
  await Promise.all(
    ids.map(async (id) => {
      await env.aws.iam.createRole({
        roleName: id.roleName,
        path: '/chaos/',
        assumeRolePolicyDocument: id.mode === 'cc' ? ccTrust() : wiTrust(env),
      });
      await serviceAccount(
        env.admin,
        id.ns,
        id.sa,
        id.mode === 'wi' ? { 'eks.amazonaws.com/role-arn': id.role } : {},
      );
      if (id.mode === 'cc') await association(env.admin, id.ns, id.sa, id.sa, id.role);
    }),
  );
  await eventually(async () => {
    const missing = ids.filter((id) => id.mode === 'cc' && !env.lookup.forPair(id.ns, id.sa));
    if (missing.length) throw new Error(`${missing.length} associations not cached`);
  }, 30_000);
  return ids;
}

/** Creates PODS_PER_SA Pods per identity at about RATE_PER_S; returns creation times. */
async function createPods(
  env: VerificationEnv,
  ids: Identity[],
): Promise<Map<string, { id: Identity; created: number; pod: Json }>> {
  const out = new Map<string, { id: Identity; created: number; pod: Json }>();
  const jobs: Array<{ id: Identity; name: string }> = [];
  for (let k = 0; k < PODS_PER_SA; k++) for (const id of ids) jobs.push({ id, name: `p-${id.sa}-${k}` });
  const start = Date.now();
  let inflight: Promise<void>[] = [];
  for (let j = 0; j < jobs.length; j++) {
    const due = start + (j * 1000) / RATE_PER_S;
    if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    const { id, name } = jobs[j]!;
    inflight.push(
      (async () => {
        const pod = await env.admin.create(`/api/v1/namespaces/${id.ns}/pods`, podBody(name, id.sa));
        out.set(`${id.ns}/${name}`, { id, created: Date.now(), pod });
      })(),
    );
    if (inflight.length >= 50) {
      await Promise.all(inflight);
      inflight = [];
    }
  }
  await Promise.all(inflight);
  return out;
}

/** When the identity first works: its role is visible (trust checks) and, for container credentials, eks-auth sees the association. */
function visibleAt(env: VerificationEnv, id: Identity, associationIds: Map<string, string>): number {
  const roleAt = Date.parse(env.sim.control.roleVisibleAt(id.roleName)!);
  if (id.mode === 'wi') return roleAt;
  const aid = associationIds.get(`${id.ns}/${id.sa}`);
  const v = aid ? env.sim.control.association(aid) : undefined;
  return v ? Math.max(roleAt, Date.parse(v.visibleAt.eksAuth!)) : Infinity;
}

describe('chaos: controller kills, AWS faults and late visibility with the gate', () => {
  let env: VerificationEnv;
  let child: ChildProcess | undefined;
  const children: ChildProcess[] = [];
  const childLogs: string[] = [];
  let metricsPort = 0;

  beforeAll(async () => {
    env = await startVerificationEnv({ seed: 13, controller: false });
    metricsPort = await freePort();
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await env?.stop();
  });

  const startChild = async () => {
    const started = spawnController({
      cluster: CLUSTER,
      sim: env.sim,
      metricsPort,
      leaseNamespace: env.systemNamespace,
      leaseName: 'chaos',
      identity: 'chaos-controller',
      flags: [
        '--leader-elect-lease-duration=4s',
        '--leader-elect-renew-deadline=3s',
        '--leader-elect-retry-period=500ms',
        '--log-level=debug',
      ],
      logs: childLogs,
    });
    child = started;
    children.push(started);
    await untilReady(metricsPort);
  };

  it('releases every Pod only after a successful exchange past visibleAt, across a controller kill', async () => {
    env.sim.control.configure({
      visibility: { eksAuth: [0, 20_000], 'iam.role': [0, 20_000] },
      faults: [...FAULTS],
    });
    await startChild();
    const ids = await setupIdentities(env, 'g');
    // Release times as seen by a watch on the test's namespaces.
    const releasedAt = new Map<string, number>();
    const watchers = new InformerFactory({ client: env.admin });
    for (const ns of new Set(ids.map((i) => i.ns)))
      watchers.view<Json>({
        path: `/api/v1/namespaces/${ns}/pods`,
        transform: (o) => ({
          metadata: {
            name: o.metadata.name,
            namespace: o.metadata.namespace,
            annotations: o.metadata.annotations,
          },
          spec: { schedulingGates: o.spec.schedulingGates },
        }),
        onUpdate: (o) => {
          const k = `${o.metadata.namespace}/${o.metadata.name}`;
          if (!releasedAt.has(k) && !(o.spec.schedulingGates ?? []).some((g: Json) => g.name === GATE))
            releasedAt.set(k, Date.now());
        },
      });

    let killedAt = 0;
    let victim: ChildProcess | undefined;
    const t0 = Date.now();
    let restart: Promise<void> | undefined;
    const killer = setTimeout(() => {
      killedAt = Date.now();
      // A real SIGKILL of the controller process itself (node runs the TypeScript directly; no wrapper process).
      victim = child!;
      victim.kill('SIGKILL');
      restart = new Promise((r) => setTimeout(r, 2_000)).then(startChild);
    }, 10_000);
    const pods = await createPods(env, ids);
    await eventually(
      async () => {
        if (!restart) throw new Error('not killed yet');
      },
      15_000,
      50,
    );
    clearTimeout(killer);
    await eventually(async () => expect(victim?.signalCode).toBe('SIGKILL'), 5_000, 20);
    expect(killedAt).toBeGreaterThan(0);
    await restart;
    const restartedAt = Date.now();
    // A Pod admitted after its identity entered the verified set carries no gate: its "release" is its admission.
    let ungated = 0;
    for (const [k, p] of pods) {
      if (!(p.pod.spec.schedulingGates ?? []).some((g: Json) => g.name === GATE)) {
        ungated++;
        releasedAt.set(k, p.created);
      }
    }

    await eventually(
      async () => {
        const pending = [...pods.keys()].filter((k) => !releasedAt.has(k));
        if (pending.length) throw new Error(`${pending.length} Pods still gated`);
      },
      60_000,
      250,
    );
    const allReleased = Date.now();
    watchers.stop();
    expect(allReleased - restartedAt).toBeLessThan(60_000);

    // Every release follows a successful exchange for the identity, made after the identity became visible.
    const associationIds = new Map<string, string>();
    for (const id of ids.filter((i) => i.mode === 'cc')) {
      const listed = await env.aws.eks.list(CLUSTER, { namespace: id.ns, serviceAccount: id.sa });
      expect(listed).toHaveLength(1); // no duplicate association
      associationIds.set(`${id.ns}/${id.sa}`, listed[0]!.associationId);
    }
    const log = env.sim.control.log();
    const successes = new Map<string, number[]>();
    for (const e of log) {
      if (e.status !== 200) continue;
      let key: string | undefined;
      if (e.service === 'eks-auth' && e.operation === 'AssumeRoleForPodIdentity')
        key = `${e.output?.namespace}/${e.output?.serviceAccount}`;
      if (e.service === 'sts' && e.operation === 'AssumeRoleWithWebIdentity') {
        const id = ids.find((i) => i.role === e.input.roleArn);
        if (id) key = `${id.ns}/${id.sa}`;
      }
      if (key) successes.set(key, [...(successes.get(key) ?? []), Date.parse(e.time)]);
    }
    let violations = 0;
    for (const [k, p] of pods) {
      const vis = visibleAt(env, p.id, associationIds);
      const ok = (successes.get(`${p.id.ns}/${p.id.sa}`) ?? []).filter(
        (t) => t >= vis && t <= releasedAt.get(k)!,
      );
      if (ok.length === 0) violations++;
    }
    expect(violations).toBe(0);
    // No exchange ever succeeded before its identity was visible (the simulator's guarantee, checked end to end).
    for (const id of ids) {
      const vis = visibleAt(env, id, associationIds);
      for (const t of successes.get(`${id.ns}/${id.sa}`) ?? []) expect(t).toBeGreaterThanOrEqual(vis);
    }

    // No `failed` annotation; every Pod says `verified`.
    for (const ns of new Set(ids.map((i) => i.ns))) {
      const list = await env.admin.get(`/api/v1/namespaces/${ns}/pods`);
      for (const p of list.items) {
        const mine = pods.get(`${ns}/${p.metadata.name}`);
        if (!mine) continue;
        const gatedAtAdmission = (mine.pod.spec.schedulingGates ?? []).length > 0;
        expect(p.metadata.annotations?.['lanyard.dev/identity-verification']).toBe(
          gatedAtAdmission ? 'verified' : undefined,
        );
      }
    }
    // The gated-Pods gauge agrees with the API server. The controller watches every namespace of the shared control
    // plane, so Pods that earlier test files left gated on purpose (denied, never proven) count too: the gauge must
    // equal the gated, undeleted, unscheduled Pods the API server holds, which no longer include a chaos Pod (checked
    // above). It is recounted every second from the watch-fed Pod view, so this waits for the view to catch up.
    await eventually(async () => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const gated = text.split('\n').filter((l) => l.startsWith('lanyard_verification_gated_pods{'));
      expect(gated.length).toBeGreaterThan(0);
      const gauged = gated.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      const all = await env.admin.get('/api/v1/pods?fieldSelector=spec.nodeName%3D');
      const held = (all.items as Json[]).filter(
        (p) =>
          !p.metadata.deletionTimestamp && (p.spec.schedulingGates ?? []).some((g: Json) => g.name === GATE),
      );
      expect(held.filter((p) => pods.has(`${p.metadata.namespace}/${p.metadata.name}`))).toEqual([]);
      expect(gauged).toBe(held.length);
    }, 15_000);
    // No issued secret, session token or Pod token in any Lanyard log.
    const allLogs = [...childLogs, ...env.logs.lines];
    expect(allLogs.filter((l) => SECRET_PATTERNS.some((re) => re.test(l)))).toEqual([]);
    const exchanges = log.filter(
      (e) => e.operation === 'AssumeRoleForPodIdentity' || e.operation === 'AssumeRoleWithWebIdentity',
    );
    const report = {
      pods: pods.size,
      admittedUngatedFromVerifiedSet: ungated,
      identities: ids.length,
      exchanges: exchanges.length,
      successfulExchanges: exchanges.filter((e) => e.status === 200).length,
      faultsInjected: log.filter((e) => e.fault).length,
      killedAfterS: (killedAt - t0) / 1000,
      releaseAfterRestartS: (allReleased - restartedAt) / 1000,
    };
    process.stderr.write(`[chaos] gate on: ${JSON.stringify(report)}\n`);
  }, 240_000);
});

describe('chaos without the gate', () => {
  let env: VerificationEnv;
  beforeAll(async () => {
    env = await startVerificationEnv({ seed: 13, gate: false, controller: false });
  });
  afterAll(async () => {
    await env?.stop();
  });

  it('counts the Pods that would have started before their identity worked', async () => {
    env.sim.control.configure({
      visibility: { eksAuth: [0, 20_000], 'iam.role': [0, 20_000] },
      faults: [...FAULTS],
    });
    await env.startController();
    const ids = await setupIdentities(env, 'n');
    const pods = await createPods(env, ids);
    for (const p of pods.values()) expect(p.pod.spec.schedulingGates ?? []).toEqual([]);
    // Every association must exist before we can know when it became visible.
    const associationIds = new Map<string, string>();
    await eventually(
      async () => {
        for (const id of ids.filter((i) => i.mode === 'cc' && !associationIds.has(`${i.ns}/${i.sa}`))) {
          const listed = await env.aws.eks.list(CLUSTER, { namespace: id.ns, serviceAccount: id.sa });
          if (listed[0]) associationIds.set(`${id.ns}/${id.sa}`, listed[0].associationId);
        }
        if (associationIds.size < ids.length / 2) throw new Error('associations not created yet');
      },
      90_000,
      500,
    );
    let early = 0;
    for (const p of pods.values()) if (p.created < visibleAt(env, p.id, associationIds)) early++;
    process.stderr.write(
      `[chaos] gate off: ${early} of ${pods.size} Pods would have started before their identity worked\n`,
    );
    expect(early).toBeGreaterThan(0);
  }, 240_000);
});
