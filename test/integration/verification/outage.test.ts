// The gate's outage policy (docs/verified-start.md, "When AWS is down"; docs/adr/0309), with the real webhook and
// controller and the simulator injecting faults: under --verify-outage-policy=release-recently-proven a Pod whose
// identity was proven within the grace window is released while eks-auth throttles or answers 5xx, and marked by
// annotation, Warning Event and metric; an identity never proven stays held; AccessDenied never releases.
// --verified-ttl=2s keeps every proof below admission's 5 s margin, so each new Pod is gated and must be proven.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { eventually, throughout } from '../../harness/context.ts';
import {
  GATE,
  association,
  ccTrust,
  createPod,
  gates,
  getPod,
  podBody,
  podEvents,
  serviceAccount,
  outageReleases,
  startVerificationEnv,
  type VerificationEnv,
} from './env.ts';

let env: VerificationEnv;
const ANNOTATION = 'lanyard.dev/identity-verification';

beforeAll(async () => {
  env = await startVerificationEnv({
    seed: 309,
    controllerFlags: [
      '--verify-outage-policy=release-recently-proven',
      '--verify-outage-grace=1h',
      '--verified-ttl=2s',
    ],
  });
  env.sim.control.configure({ visibility: {} });
});
afterAll(async () => {
  env?.sim.control.configure({ faults: [] });
  await env?.stop();
});

async function provenIdentity(ns: string, sa: string): Promise<string> {
  const role = await env.aws.iam.createRole({
    roleName: `${sa}-${ns}`.slice(0, 64),
    assumeRolePolicyDocument: ccTrust(),
  });
  await serviceAccount(env.admin, ns, sa);
  await association(env.admin, ns, sa, sa, role.arn);
  // The association's probe proves the identity: its VerifiedIdentity exists.
  await eventually(
    async () => {
      const list = await env.admin.get(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/verifiedidentities`);
      if (!(list.items as Json[]).some((v) => v.spec.serviceAccount === sa))
        throw new Error('not proven yet');
    },
    30_000,
    200,
  );
  return `${sa}-${ns}`.slice(0, 64);
}

describe('--verify-outage-policy=release-recently-proven', () => {
  it.each([['ThrottlingException'], ['ServiceUnavailable']] as const)(
    'releases a recently proven identity while eks-auth answers %s, and marks the Pod',
    async (error) => {
      const ns = await env.namespace(`outage-${error.slice(0, 8).toLowerCase()}`);
      await provenIdentity(ns, 'app');
      const before = await outageReleases(env);
      const since = new Date().toISOString();
      env.sim.control.configure({ faults: [{ service: 'eks-auth', operation: '*', error, rate: 1 }] });
      try {
        const pod = await createPod(env.admin, ns, podBody('during-outage', 'app'));
        expect(gates(pod)).toContain(GATE);
        const released = await eventually(
          async () => {
            const p = await getPod(env.admin, ns, 'during-outage');
            if (gates(p).includes(GATE)) throw new Error('still gated');
            return p;
          },
          30_000,
          200,
        );
        expect(released.metadata.annotations[ANNOTATION]).toBe('released-during-outage');
        await eventually(async () => {
          const ev = (await podEvents(env.admin, ns, 'during-outage')).find(
            (e) => e.reason === 'IdentityReleasedDuringOutage',
          );
          expect(ev).toMatchObject({ type: 'Warning' });
          expect(ev!.note).toContain(`failed (${error}`);
          expect(ev!.note).toContain('released by --verify-outage-policy=release-recently-proven');
        });
        expect(await outageReleases(env)).toBe(before + 1);
        // The exchange was tried and failed, and none succeeded: the release rests on the earlier proof only.
        const log = env.sim.control.log({ service: 'eks-auth', since });
        expect(log.filter((e) => e.status !== 200).length).toBeGreaterThanOrEqual(1);
        expect(log.filter((e) => e.status === 200)).toEqual([]);
      } finally {
        env.sim.control.configure({ faults: [] });
      }
    },
  );

  it('holds an identity never proven, whatever the outage', async () => {
    const ns = await env.namespace('outage-never');
    env.sim.control.configure({
      faults: [{ service: 'eks-auth', operation: '*', error: 'ThrottlingException', rate: 1 }],
    });
    try {
      const role = await env.aws.iam.createRole({
        roleName: `never-${ns}`.slice(0, 64),
        assumeRolePolicyDocument: ccTrust(),
      });
      await serviceAccount(env.admin, ns, 'fresh');
      await association(env.admin, ns, 'fresh', 'fresh', role.arn);
      await eventually(async () => {
        if (!env.lookup.forPair(ns, 'fresh')) throw new Error('not cached');
      });
      await createPod(env.admin, ns, podBody('never-proven', 'fresh'));
      // Several throttled attempts, then still held, with the AWS error said on the Pod.
      await eventually(
        async () => {
          const ev = (await podEvents(env.admin, ns, 'never-proven')).find(
            (e) => e.reason === 'IdentityNotVerified',
          );
          expect(ev?.note).toContain('ThrottlingException');
        },
        20_000,
        200,
      );
      await throughout(
        'the verifier retries at most 500 ms apart (the default of --verify-backoff-max), so 2 s spans at least four attempts that could have released it',
        2_000,
        async () => {
          const p = await getPod(env.admin, ns, 'never-proven');
          expect(gates(p)).toContain(GATE);
          expect(p.metadata.annotations?.[ANNOTATION]).not.toBe('released-during-outage');
        },
      );
    } finally {
      env.sim.control.configure({ faults: [] });
    }
  });

  it('holds on AccessDenied even when the identity was proven a moment ago', async () => {
    const ns = await env.namespace('outage-denied');
    const roleName = await provenIdentity(ns, 'revoked');
    // The trust policy no longer allows EKS Pod Identity: AWS answers, and its answer is no.
    await env.aws.iam.updateAssumeRolePolicy(
      roleName,
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'ec2.amazonaws.com' },
            Action: 'sts:AssumeRole',
          },
        ],
      }),
    );
    const before = await outageReleases(env);
    await createPod(env.admin, ns, podBody('denied', 'revoked'));
    await eventually(
      async () => {
        const ev = (await podEvents(env.admin, ns, 'denied')).find((e) => e.reason === 'IdentityNotVerified');
        expect(ev?.note).toContain('AccessDenied');
      },
      20_000,
      200,
    );
    await throughout(
      'the verifier retries at most 500 ms apart (the default of --verify-backoff-max), so 2 s spans at least four attempts that could have released it',
      2_000,
      async () => {
        const p = await getPod(env.admin, ns, 'denied');
        expect(gates(p)).toContain(GATE);
        expect(await outageReleases(env)).toBe(before);
      },
    );
  });
});
