// An association end to end (docs/associations.md#how-verified-is-obtained): with the real webhook (gate on) and the real controller (verifier and
// association controller composed as `lanyard controller` does), an association is created once, its probe Pod is
// injected, gated and exchanged for real, then deleted, and the object reaches Ready=True.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { InformerFactory } from '../../../src/kube/cache.ts';
import { eventually } from '../../harness/context.ts';
import {
  association,
  ccTrust,
  serviceAccount,
  startVerificationEnv,
  type VerificationEnv,
} from '../verification/env.ts';
import { condition, hasCond, lpiaPath, probePods, waitFor } from './helpers.ts';

let env: VerificationEnv;
beforeAll(async () => {
  env = await startVerificationEnv({ seed: 21 });
});
afterAll(async () => {
  await env?.stop();
});

it('probe made, injected, verified by a real exchange, deleted; Synced, Verified and Ready True', async () => {
  const ns = await env.namespace('a1e2e');
  const role = await env.aws.iam.createRole({
    roleName: 'a1-e2e',
    path: '/team-a/',
    assumeRolePolicyDocument: ccTrust(),
  });
  await serviceAccount(env.admin, ns, 'uploader');

  // Every version of the probe, from a watch started before anything exists: it may live only a few hundred ms.
  const versions: Json[] = [];
  let deleted = false;
  const watch = new InformerFactory({ client: env.admin });
  const probes = watch.view<Json>({
    path: `/api/v1/namespaces/${ns}/pods`,
    labelSelector: 'lanyard.dev/probe=true',
    onAdd: (p) => versions.push(p),
    onUpdate: (p) => versions.push(p),
    onDelete: () => (deleted = true),
  });
  try {
    await probes.waitForSync(10_000);
    const created = await association(env.admin, ns, 'uploader', 'uploader', role.arn);
    const ready = await waitFor(
      env.admin,
      ns,
      'uploader',
      hasCond('Ready', 'True', 'Ready'),
      30_000,
      'Ready=True',
    );
    await eventually(async () => expect(deleted).toBe(true), 15_000);
    expect(await probePods(env.admin, ns)).toHaveLength(0);

    // As admitted: injected by the webhook and held at both gates.
    const first = versions[0]!;
    expect(first.spec.schedulingGates.map((g: Json) => g.name)).toEqual([
      'lanyard.dev/probe',
      'lanyard.dev/identity',
    ]);
    expect(JSON.stringify(first.spec.containers[0].env)).toContain('AWS_CONTAINER_CREDENTIALS_FULL_URI');
    // Every version seen is either still held at the identity gate or released by the verifier, which removes only
    // its own gate. The controller may delete the probe as soon as the VerifiedIdentity exists (the verifier writes it
    // before releasing), so the released version itself is not always observed; the exchange below proves the release.
    for (const v of versions) {
      const gates = v.spec.schedulingGates.map((g: Json) => g.name);
      if (gates.includes('lanyard.dev/identity')) continue;
      expect(v.metadata.annotations?.['lanyard.dev/identity-verification']).toBe('verified');
      expect(gates).toEqual(['lanyard.dev/probe']);
    }

    expect(condition(ready, 'Synced')).toMatchObject({ status: 'True', reason: 'InSync' });
    expect(condition(ready, 'Verified')).toMatchObject({ status: 'True', reason: 'CredentialsMatch' });
    expect(ready.status.lastVerifiedTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    const creates = env.sim.control
      .log({ service: 'eks', operation: 'CreatePodIdentityAssociation' })
      .filter((e) => e.input.namespace === ns);
    expect(creates).toHaveLength(1);
    expect(creates[0]!.input.clientRequestToken).toBe(created.metadata.uid);
    // A real exchange returned the role.
    const exchanges = env.sim.control
      .log({ service: 'eks-auth' })
      .filter((e) => e.status === 200 && JSON.stringify(e).includes(ns));
    expect(exchanges.length).toBeGreaterThanOrEqual(1);
    const table = await env.admin.request({
      path: lpiaPath(ns),
      accept: 'application/json;as=Table;g=meta.k8s.io;v=v1',
    });
    expect((table.rows[0].cells as string[]).slice(1, 6)).toEqual([
      'uploader',
      role.arn,
      'True',
      'True',
      'True',
    ]);
  } finally {
    watch.stop();
  }
});
