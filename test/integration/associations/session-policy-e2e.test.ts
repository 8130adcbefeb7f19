// A changed session policy is verified again before new Pods start with it (docs/associations.md): with the real
// webhook (gate on) and the real controller (verifier and association controller), the VerifiedIdentity of an
// association is bound to its policy, so after spec.policy changes a new Pod is gated until a fresh exchange, and the
// association is Ready again only through an exchange made after the change.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { fingerprintOf } from '../../../src/verification/verified-identity.ts';
import { eventually } from '../../harness/context.ts';
import {
  GATE,
  ccTrust,
  createPod,
  gates,
  podBody,
  serviceAccount,
  startVerificationEnv,
  type VerificationEnv,
} from '../verification/env.ts';
import { condition, hasCond, lpiaPath, waitFor } from './helpers.ts';

let env: VerificationEnv;
beforeAll(async () => {
  env = await startVerificationEnv({ seed: 43 });
});
afterAll(async () => {
  await env?.stop();
});

const readerOf = (prefix: string) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::reports/${prefix}/*` }],
  });

it('a policy change invalidates the verified set: the next Pod is gated and a new exchange makes it Ready', async () => {
  const ns = await env.namespace('sp-e2e');
  const role = await env.aws.iam.createRole({ roleName: 'sp-e2e', assumeRolePolicyDocument: ccTrust() });
  await serviceAccount(env.admin, ns, 'reader');
  const first = readerOf('team-a');
  await env.admin.create(lpiaPath(ns), {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'PodIdentityAssociation',
    metadata: { name: 'reader' },
    spec: { serviceAccount: 'reader', roleARN: role.arn, disableSessionTags: true, policy: first },
  });
  const ready = await waitFor(
    env.admin,
    ns,
    'reader',
    hasCond('Ready', 'True', 'Ready'),
    30_000,
    'Ready=True',
  );
  const fingerprint = (policy: string) =>
    fingerprintOf({
      source: 'association',
      uid: ready.metadata.uid,
      associationID: ready.status.associationID,
      roleARN: role.arn,
      disableSessionTags: true,
      policy,
    });
  const entries = async (): Promise<Json[]> =>
    (await env.admin.get(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/verifiedidentities`)).items;
  expect((await entries()).map((v) => v.spec.fingerprint)).toEqual([fingerprint(first)]);

  // Verified: a Pod of the ServiceAccount starts ungated.
  await eventually(
    async () => {
      const p = await createPod(env.admin, ns, podBody(`before-${Date.now()}`, 'reader'));
      if (gates(p).includes(GATE)) {
        await env.admin.delete(`/api/v1/namespaces/${ns}/pods/${p.metadata.name}`);
        throw new Error('still gated: VerifiedIdentity not cached yet');
      }
    },
    15_000,
    200,
  );

  const changedAt = new Date().toISOString();
  const second = readerOf('team-b');
  await env.admin.patch(lpiaPath(ns, 'reader'), { spec: { policy: second } }, 'application/merge-patch+json');
  // The next Pod cannot ride on the old proof: the webhook's fingerprint now includes the new policy.
  await eventually(
    async () => {
      const p = await createPod(env.admin, ns, podBody(`after-${Date.now()}`, 'reader'));
      if (!gates(p).includes(GATE)) {
        await env.admin.delete(`/api/v1/namespaces/${ns}/pods/${p.metadata.name}`);
        throw new Error('not gated yet: the webhook has not seen the policy change');
      }
    },
    15_000,
    200,
  );

  const again = await waitFor(
    env.admin,
    ns,
    'reader',
    (o) => o.metadata.generation === 2 && hasCond('Ready', 'True', 'Ready')(o),
    30_000,
    'Ready=True for the new policy',
  );
  expect(condition(again, 'Verified')).toMatchObject({
    status: 'True',
    reason: 'CredentialsMatch',
    observedGeneration: 2,
  });
  expect((await env.aws.eks.describe('lanyard-test', again.status.associationID)).policy).toBe(second);
  // A real exchange after the change, and the verified set now vouches only for the new policy.
  const exchanges = env.sim.control
    .log({ service: 'eks-auth', since: changedAt })
    .filter((e) => e.status === 200 && e.output?.namespace === ns);
  expect(exchanges.length).toBeGreaterThanOrEqual(1);
  await eventually(async () => {
    const fps = (await entries()).map((v) => v.spec.fingerprint);
    expect(fps.length).toBeGreaterThanOrEqual(1);
    expect(new Set(fps)).toEqual(new Set([fingerprint(second)]));
  }, 15_000);
});
