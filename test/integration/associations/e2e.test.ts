// A1 end to end (verification.md §10, §15): with the real webhook (gate on) and the real controller (verifier and
// association controller composed as `lanyard controller` does), an association is created once, its probe Pod is
// injected, gated and exchanged for real, then deleted, and the object reaches Ready=True.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { eventually } from '../../harness/context.ts';
import { association, ccTrust, serviceAccount, startVerificationEnv, type VerificationEnv } from '../verification/env.ts';
import { condition, hasCond, lpiaPath, probePods, waitFor } from './helpers.ts';

let env: VerificationEnv;
beforeAll(async () => {
  env = await startVerificationEnv({ seed: 21 });
});
afterAll(async () => {
  await env?.stop();
});

it('A1: probe made, injected, verified by a real exchange, deleted; Synced, Verified and Ready True', async () => {
  const ns = await env.namespace('a1e2e');
  const role = await env.aws.iam.createRole({ roleName: 'a1-e2e', path: '/team-a/', assumeRolePolicyDocument: ccTrust() });
  await serviceAccount(env.admin, ns, 'uploader');
  const created = await association(env.admin, ns, 'uploader', 'uploader', role.arn);

  // The probe as the API server stored it: mutated by the webhook (container credentials) and held at both gates.
  const probe: Json = await eventually(async () => {
    const [p] = await probePods(env.admin, ns);
    if (!p) throw new Error('no probe yet');
    return p;
  }, 20_000, 50);
  expect(probe.spec.schedulingGates.map((g: Json) => g.name)).toEqual(expect.arrayContaining(['lanyard.dev/probe', 'lanyard.dev/identity']));
  expect(JSON.stringify(probe.spec.containers[0].env)).toContain('AWS_CONTAINER_CREDENTIALS_FULL_URI');

  const ready = await waitFor(env.admin, ns, 'uploader', hasCond('Ready', 'True', 'Ready'), 30_000, 'Ready=True');
  expect(condition(ready, 'Synced')).toMatchObject({ status: 'True', reason: 'InSync' });
  expect(condition(ready, 'Verified')).toMatchObject({ status: 'True', reason: 'CredentialsMatch' });
  expect(ready.status.lastVerifiedTime).toBeTruthy();
  const creates = env.sim.control.log({ service: 'eks', operation: 'CreatePodIdentityAssociation' }).filter((e) => e.input.namespace === ns);
  expect(creates).toHaveLength(1);
  expect(creates[0]!.input.clientRequestToken).toBe(created.metadata.uid);
  // A real exchange for the probe Pod returned the role.
  const exchanges = env.sim.control.log({ service: 'eks-auth' }).filter((e) => e.status === 200 && JSON.stringify(e).includes(ns));
  expect(exchanges.length).toBeGreaterThanOrEqual(1);
  await eventually(async () => expect(await probePods(env.admin, ns)).toHaveLength(0), 15_000);
  const table = await env.admin.request({ path: lpiaPath(ns), accept: 'application/json;as=Table;g=meta.k8s.io;v=v1' });
  const cells = table.rows[0].cells as string[];
  expect(cells.slice(1, 6)).toEqual(['uploader', role.arn, 'True', 'True', 'True']);
});
