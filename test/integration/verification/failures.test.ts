// A wrong trust policy (docs/verified-start.md#troubleshooting-from-the-event-text) keeps the Pod gated, says why, marks it `failed` past the deadline (10 s here), and
// fixing IAM releases it on a following retry (retry-after-deadline shortened to 2 s for the test).
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, eventually } from '../../harness/context.ts';
import { applyCrds } from '../../../src/kube/apply.ts';
import {
  CLUSTER,
  GATE,
  association,
  createPod,
  gates,
  getPod,
  podBody,
  podEvents,
  serviceAccount,
  startVerificationEnv,
  wiTrust,
  ccTrust,
  type VerificationEnv,
} from './env.ts';

const ACK_CRD = 'podidentityassociations.eks.services.k8s.aws';
let env: VerificationEnv;
beforeAll(async () => {
  // ACK's CRD (no ACK controller) first: its objects are an identity source the verifier checks too (docs/migrate-from-ack.md).
  const admin = await adminClient();
  await applyCrds(admin, path.resolve(import.meta.dirname, '../../fixtures/ack'));
  await eventually(async () => {
    const d = await admin.get('/apis/eks.services.k8s.aws/v1alpha1');
    if (!d.resources.some((r: { name: string }) => r.name === 'podidentityassociations'))
      throw new Error('not served yet');
  }, 15_000);
  admin.close();
  env = await startVerificationEnv({
    seed: 10,
    controllerFlags: ['--verify-retry-after-deadline=2s', '--observe-ack-associations=true'],
    observeAck: 'true',
  });
  env.sim.control.configure({ visibility: {} });
});
afterAll(async () => {
  await env?.stop();
  const admin = await adminClient();
  await admin
    .delete(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${ACK_CRD}`)
    .catch(() => undefined);
  admin.close();
});

async function expectFailedThenFixed(ns: string, pod: string, code: RegExp, fix: () => Promise<void>) {
  const created = Date.parse((await getPod(env.admin, ns, pod)).metadata.creationTimestamp);
  await eventually(async () => {
    const ev = await podEvents(env.admin, ns, pod);
    const nv = ev.find((e) => e.reason === 'IdentityNotVerified');
    expect(nv?.type).toBe('Warning');
    expect(nv?.note).toMatch(code);
  }, 10_000);
  // Still gated before the deadline, and never released by a failure.
  expect(gates(await getPod(env.admin, ns, pod))).toContain(GATE);
  const failed = await eventually(
    async () => {
      const p = await getPod(env.admin, ns, pod);
      expect(p.metadata.annotations?.['lanyard.dev/identity-verification']).toBe('failed');
      return Date.now();
    },
    20_000,
    100,
  );
  expect(failed - created).toBeGreaterThanOrEqual(10_000);
  expect(gates(await getPod(env.admin, ns, pod))).toContain(GATE);
  await eventually(async () => {
    const ev = await podEvents(env.admin, ns, pod);
    const f = ev.find((e) => e.reason === 'IdentityVerificationFailed');
    expect(f?.note).toMatch(code);
  });
  const fixedAt = Date.now();
  await fix();
  const released = await eventually(
    async () => {
      const p = await getPod(env.admin, ns, pod);
      expect(gates(p)).not.toContain(GATE);
      expect(p.metadata.annotations['lanyard.dev/identity-verification']).toBe('verified');
      return Date.now();
    },
    15_000,
    100,
  );
  // Two retry periods (2 s each, ±jitter-free here) plus API latency.
  expect(released - fixedAt).toBeLessThan(6_000);
}

describe('wrong trust or a mismatched role fails verification', () => {
  it('ContainerCredentials with the wrong service principal', async () => {
    const ns = await env.namespace('a10cc');
    const bad = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'ec2.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
        },
      ],
    });
    await env.aws.iam.createRole({ roleName: 'a10-cc', assumeRolePolicyDocument: bad });
    await serviceAccount(env.admin, ns, 'uploader');
    await association(env.admin, ns, 'uploader', 'uploader', `arn:aws:iam::${env.account}:role/a10-cc`);
    await eventually(async () => {
      if (!env.lookup.forPair(ns, 'uploader')?.associationID) throw new Error('not synced');
    }, 15_000);
    await createPod(env.admin, ns, podBody('app', 'uploader'));
    await expectFailedThenFixed(ns, 'app', /AccessDeniedException/, async () => {
      await env.aws.iam.updateAssumeRolePolicy('a10-cc', ccTrust());
      env.sim.control.makeRoleVisible('a10-cc');
    });
    // The association's Verified condition reflects the final outcome.
    await eventually(async () => {
      const a = await env.admin.get(
        `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations/uploader`,
      );
      expect(a.status.conditions.find((c: { type: string }) => c.type === 'Verified')?.status).toBe('True');
    }, 15_000);
  });

  it('WebIdentity whose trust names another ServiceAccount', async () => {
    const ns = await env.namespace('a10wi');
    const role = await env.aws.iam.createRole({
      roleName: 'a10-wi',
      assumeRolePolicyDocument: wiTrust(env, `system:serviceaccount:${'x'}:other`),
    });
    await serviceAccount(env.admin, ns, 'reader', { 'eks.amazonaws.com/role-arn': role.arn });
    await createPod(env.admin, ns, podBody('app', 'reader'));
    await expectFailedThenFixed(ns, 'app', /AccessDenied/, async () => {
      await env.aws.iam.updateAssumeRolePolicy('a10-wi', wiTrust(env, `system:serviceaccount:${ns}:reader`));
      env.sim.control.makeRoleVisible('a10-wi');
    });
  });

  it('an ACK object whose declared role differs from the association EKS holds', async () => {
    const ns = await env.namespace('a10ack');
    const actual = await env.aws.iam.createRole({
      roleName: 'a10-ack-actual',
      assumeRolePolicyDocument: ccTrust(),
    });
    const declared = `arn:aws:iam::${env.account}:role/a10-ack-declared`;
    await serviceAccount(env.admin, ns, 'app');
    const inEks = await env.aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: 'app',
      roleArn: actual.arn,
      tags: {},
      clientRequestToken: `a10-ack-${ns}`.slice(0, 64),
    });
    const ackPath = `/apis/eks.services.k8s.aws/v1alpha1/namespaces/${ns}/podidentityassociations`;
    const ack = await env.admin.create(ackPath, {
      apiVersion: 'eks.services.k8s.aws/v1alpha1',
      kind: 'PodIdentityAssociation',
      metadata: { name: 'app' },
      spec: { clusterName: CLUSTER, namespace: ns, serviceAccount: 'app', roleARN: declared },
    });
    await env.admin.patch(
      `${ackPath}/app/status`,
      { status: { associationID: inEks.associationId, associationARN: inEks.associationArn } },
      'application/merge-patch+json',
    );
    await eventually(async () => {
      if (env.lookup.forPair(ns, 'app')?.associationID !== inEks.associationId) throw new Error('not cached');
    });
    const rv = (await env.admin.get(`${ackPath}/app`)).metadata.resourceVersion;
    await createPod(env.admin, ns, podBody('app', 'app'));
    await eventually(async () => {
      const ev = await podEvents(env.admin, ns, 'app');
      const nv = ev.find((e) => e.reason === 'IdentityNotVerified');
      expect(nv?.note).toContain(`expected ${declared}`);
      expect(nv?.note).toMatch(/actual arn:aws:sts::\d+:assumed-role\/a10-ack-actual\//);
    }, 10_000);
    expect(gates(await getPod(env.admin, ns, 'app'))).toContain(GATE);
    // Lanyard never writes the ACK object.
    expect((await env.admin.get(`${ackPath}/app`)).metadata.resourceVersion).toBe(rv);
    expect((await env.admin.get(`${ackPath}/app`)).metadata.uid).toBe(ack.metadata.uid);
  });
});
