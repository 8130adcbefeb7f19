// The gate's outage policy when AWS does not answer at all (docs/verified-start.md, "When AWS is down";
// docs/adr/0309): the simulator blackholes STS (fault `timeout`: the request is never answered), the verifier gives
// up after --verify-request-timeout (1 s here, 5 s by default) and counts that as an outage. Under
// release-recently-proven a WebIdentity proven a moment ago releases its new Pod, marked by annotation, Warning Event
// and counter; an AccessDenied from STS never releases; after a controller restart with --verify-outage-policy=hold
// the same blackhole keeps the new Pod gated. test/integration/verification/outage.test.ts covers throttling and 5xx.
// --verified-ttl=2s keeps every proof below admission's 5 s margin, so each new Pod is gated and must be proven.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { eventually, throughout } from '../../harness/context.ts';
import {
  GATE,
  createPod,
  gates,
  getPod,
  podBody,
  podEvents,
  serviceAccount,
  outageReleases,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from './env.ts';

let env: VerificationEnv;
const ANNOTATION = 'lanyard.dev/identity-verification';
const BLACKHOLE = {
  service: 'sts',
  operation: 'AssumeRoleWithWebIdentity',
  error: 'timeout' as const,
  rate: 1,
};

beforeAll(async () => {
  env = await startVerificationEnv({
    seed: 3091,
    controllerFlags: [
      '--verify-outage-policy=release-recently-proven',
      '--verify-outage-grace=1h',
      '--verified-ttl=2s',
      '--verify-request-timeout=1s',
    ],
  });
  env.sim.control.configure({ visibility: {} });
});
afterAll(async () => {
  env?.sim.control.configure({ faults: [] });
  await env?.stop();
});

/** A WebIdentity ServiceAccount whose first Pod was released by a real exchange: its VerifiedIdentity is the proof. */
async function provenWebIdentity(ns: string, sa: string): Promise<string> {
  const roleName = `${sa}-${ns}`.slice(0, 64);
  const role = await env.aws.iam.createRole({
    roleName,
    assumeRolePolicyDocument: wiTrust(env, `system:serviceaccount:${ns}:${sa}`),
  });
  await serviceAccount(env.admin, ns, sa, { 'eks.amazonaws.com/role-arn': role.arn });
  await createPod(env.admin, ns, podBody('first', sa));
  const first = await released(ns, 'first');
  expect(first.metadata.annotations[ANNOTATION]).toBe('verified');
  return roleName;
}

async function released(ns: string, pod: string): Promise<Json> {
  return eventually(
    async () => {
      const p = await getPod(env.admin, ns, pod);
      if (gates(p).includes(GATE)) throw new Error('still gated');
      return p;
    },
    30_000,
    200,
  );
}

/** Several failed attempts said on the Pod, and still gated a while after: the verifier held it. */
async function expectHeld(ns: string, pod: string, error: RegExp): Promise<void> {
  await eventually(
    async () => {
      const ev = (await podEvents(env.admin, ns, pod)).find((e) => e.reason === 'IdentityNotVerified');
      expect(ev?.note).toMatch(error);
    },
    20_000,
    200,
  );
  await throughout(
    'the verifier retries at most 500 ms apart (the default of --verify-backoff-max), so 2.5 s spans at least four attempts that could have released it',
    2_500,
    async () => {
      const p = await getPod(env.admin, ns, pod);
      expect(gates(p)).toContain(GATE);
      expect(p.metadata.annotations?.[ANNOTATION]).not.toBe('released-during-outage');
    },
  );
}

describe('STS does not answer (timeout)', () => {
  it('release-recently-proven: a WebIdentity proven a moment ago releases its new Pod, marked by annotation, Event and counter', async () => {
    const ns = await env.namespace('outage-timeout');
    await provenWebIdentity(ns, 'app');
    await new Promise((r) => setTimeout(r, 2_100)); // the proof is past --verified-ttl: a new Pod needs an exchange
    const before = await outageReleases(env);
    const since = new Date().toISOString();
    env.sim.control.configure({ faults: [BLACKHOLE] });
    try {
      const started = Date.now();
      const pod = await createPod(env.admin, ns, podBody('during-outage', 'app'));
      expect(gates(pod)).toContain(GATE);
      const p = await released(ns, 'during-outage');
      // One attempt waits --verify-request-timeout (1 s), not the SDK's 10 s × 3.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(p.metadata.annotations[ANNOTATION]).toBe('released-during-outage');
      await eventually(async () => {
        const ev = (await podEvents(env.admin, ns, 'during-outage')).find(
          (e) => e.reason === 'IdentityReleasedDuringOutage',
        );
        expect(ev).toMatchObject({ type: 'Warning' });
        expect(ev!.note).toMatch(
          /^WebIdentity exchange for role arn:aws:iam::\d+:role\/app-outage-timeout-\S+ failed \(/,
        );
        expect(ev!.note).toContain('released by --verify-outage-policy=release-recently-proven');
      });
      expect(await outageReleases(env)).toBe(before + 1);
      // STS was called and never answered: the release rests on the earlier proof only.
      const log = env.sim.control.log({ service: 'sts', since });
      expect(log.filter((e) => e.fault === 'timeout').length).toBeGreaterThanOrEqual(1);
      expect(log.filter((e) => e.status === 200)).toEqual([]);
    } finally {
      env.sim.control.configure({ faults: [] });
    }
  });

  it('release-recently-proven: an AccessDenied from STS never releases, even for an identity proven a moment ago', async () => {
    const ns = await env.namespace('outage-denied-wi');
    const roleName = await provenWebIdentity(ns, 'revoked');
    // The trust policy now names another ServiceAccount: STS answers, and its answer is no.
    await env.aws.iam.updateAssumeRolePolicy(roleName, wiTrust(env, `system:serviceaccount:${ns}:other`));
    await new Promise((r) => setTimeout(r, 2_100));
    const before = await outageReleases(env);
    await createPod(env.admin, ns, podBody('denied', 'revoked'));
    await expectHeld(ns, 'denied', /AccessDenied/);
    expect(await outageReleases(env)).toBe(before);
  });

  it('hold (after a controller restart with that policy): the same blackhole keeps a recently proven identity gated', async () => {
    const ns = await env.namespace('outage-hold');
    await provenWebIdentity(ns, 'app');
    await env.stopController();
    await env.startController(['--verify-outage-policy=hold']);
    await new Promise((r) => setTimeout(r, 2_100));
    const before = await outageReleases(env);
    env.sim.control.configure({ faults: [BLACKHOLE] });
    try {
      await createPod(env.admin, ns, podBody('held', 'app'));
      await expectHeld(ns, 'held', /TimeoutError|timed? ?out|no answer/i);
      expect(await outageReleases(env)).toBe(before);
    } finally {
      env.sim.control.configure({ faults: [] });
    }
    // AWS answers again: the held Pod is proven and released the ordinary way.
    const p = await released(ns, 'held');
    expect(p.metadata.annotations[ANNOTATION]).toBe('verified');
  });

  it('release-recently-proven, a Pod with two identities: released on an old proof for one of them, it is marked whichever is decided last', async () => {
    // One worker, so the two identities are decided one after the other; the first STS call is blackholed (count 1):
    // the first identity is released on its proof, the second proven by a real exchange, which releases the Pod.
    await env.stopController();
    await env.startController(['--verify-outage-policy=release-recently-proven', '--verify-workers=1']);
    const ns = await env.namespace('outage-two');
    const roles: string[] = [];
    for (const r of ['main', 'side']) {
      const role = await env.aws.iam.createRole({
        roleName: `${r}-${ns}`.slice(0, 64),
        assumeRolePolicyDocument: wiTrust(env, `system:serviceaccount:${ns}:app`),
      });
      roles.push(role.arn);
    }
    await serviceAccount(env.admin, ns, 'app', { 'eks.amazonaws.com/role-arn': roles[0]! });
    // The webhook gives `main` the ServiceAccount's role; `side` (skipped by the webhook) reads its own role, with a
    // projected token of STS's audience, as a promotion step with identity.roleARN does (docs/promotions.md).
    const twoRoles = (name: string) => {
      const body = podBody(name, 'app', { annotations: { 'eks.amazonaws.com/skip-containers': 'side' } });
      body.spec.containers.push({
        name: 'side',
        image: 'registry.k8s.io/pause:3.10',
        env: [
          { name: 'AWS_ROLE_ARN', value: roles[1] },
          { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/var/run/secrets/side/token' },
        ],
        volumeMounts: [{ name: 'side-token', mountPath: '/var/run/secrets/side', readOnly: true }],
      });
      body.spec.volumes = [
        {
          name: 'side-token',
          projected: {
            sources: [
              {
                serviceAccountToken: {
                  audience: 'sts.amazonaws.com',
                  expirationSeconds: 3600,
                  path: 'token',
                },
              },
            ],
          },
        },
      ];
      return body;
    };
    await createPod(env.admin, ns, twoRoles('first'));
    expect((await released(ns, 'first')).metadata.annotations[ANNOTATION]).toBe('verified');
    await new Promise((r) => setTimeout(r, 2_100));
    const before = await outageReleases(env);
    const since = new Date().toISOString();
    env.sim.control.configure({ faults: [{ ...BLACKHOLE, count: 1 }] });
    try {
      await createPod(env.admin, ns, twoRoles('during-outage'));
      const p = await released(ns, 'during-outage');
      const log = env.sim.control.log({ service: 'sts', since });
      // One exchange blackholed, the other answered: the Pod rests partly on an old proof, and says so.
      expect(log.filter((e) => e.fault === 'timeout')).toHaveLength(1);
      expect(log.filter((e) => e.status === 200)).toHaveLength(1);
      expect(p.metadata.annotations[ANNOTATION]).toBe('released-during-outage');
      await eventually(async () => {
        const ev = (await podEvents(env.admin, ns, 'during-outage')).find(
          (e) => e.reason === 'IdentityReleasedDuringOutage',
        );
        expect(ev?.type).toBe('Warning');
        expect(ev!.note).toContain('released by --verify-outage-policy=release-recently-proven');
      });
      expect(await outageReleases(env)).toBe(before + 1);
    } finally {
      env.sim.control.configure({ faults: [] });
    }
  });
});
