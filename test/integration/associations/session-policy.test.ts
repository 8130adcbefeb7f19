// spec.policy, the association's inline session policy (docs/associations.md): created with the association, updated
// and removed in place, drift-corrected, and a document EKS refuses is reported naming the field. The controller runs
// in-process against the real API server and the AWS simulator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeClient } from '../../../src/kube/client.ts';
import { adminClient, eventually, newNamespace } from '../../harness/context.ts';
import type { AssociationController } from '../../../src/associations/index.ts';
import {
  CLUSTER,
  condition,
  createAssociation,
  eventsFor,
  hasCond,
  lpiaPath,
  startController,
  startEnv,
  testConfig,
  waitFor,
  type Env,
} from './helpers.ts';

let kube: KubeClient;
let env: Env;
let ctrl: AssociationController;
const namespaces: string[] = [];

beforeAll(async () => {
  kube = await adminClient();
  env = await startEnv(41);
  ctrl = await startController(kube, env, testConfig({ probe: false }));
});
afterAll(async () => {
  await ctrl?.stop();
  for (const ns of namespaces) await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  await env?.close();
  kube?.close();
});

async function namespace(prefix: string): Promise<string> {
  const ns = await newNamespace(kube, prefix);
  namespaces.push(ns);
  return ns;
}

/** The documented example: an S3 reader limited to one prefix of one bucket. */
const readerOf = (prefix: string) =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::reports/${prefix}/*` },
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: 'arn:aws:s3:::reports',
        Condition: { StringLike: { 's3:prefix': `${prefix}/*` } },
      },
    ],
  });

const merge = 'application/merge-patch+json';

describe('spec.policy', () => {
  it('is sent on Create, changed and removed by Update, and shown in the wide table', async () => {
    const ns = await namespace('sp-life');
    const role = await env.createRole('sp-reader');
    const first = readerOf('team-a');
    await createAssociation(kube, ns, 'reader', {
      serviceAccount: 'reader',
      roleARN: role,
      disableSessionTags: true,
      policy: first,
    });
    const created = await waitFor(kube, ns, 'reader', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    const id = created.status.associationID as string;
    expect((await env.aws.eks.describe(CLUSTER, id)).policy).toBe(first);

    const table = await kube.request({
      path: lpiaPath(ns),
      accept: 'application/json;as=Table;g=meta.k8s.io;v=v1',
    });
    const col = table.columnDefinitions.findIndex((c: { name: string }) => c.name === 'Policy');
    expect(table.columnDefinitions[col].priority).toBe(1);
    expect(table.rows[0].cells[col]).toBe(first);

    // Reformatting the same document is no change for EKS: no Update.
    const pretty = JSON.stringify(JSON.parse(first), null, 2);
    await kube.patch(lpiaPath(ns, 'reader'), { spec: { policy: pretty } }, merge);
    await waitFor(
      kube,
      ns,
      'reader',
      (o) => o.status.observedGeneration === 2 && hasCond('Synced', 'True')(o),
    );
    const updatesOf = () =>
      env.sim.control
        .log({ service: 'eks', operation: 'UpdatePodIdentityAssociation' })
        .filter((e) => e.input.associationId === id);
    expect(updatesOf()).toEqual([]);

    const second = readerOf('team-b');
    await kube.patch(lpiaPath(ns, 'reader'), { spec: { policy: second } }, merge);
    await eventually(async () => expect((await env.aws.eks.describe(CLUSTER, id)).policy).toBe(second));
    const updated = await waitFor(
      kube,
      ns,
      'reader',
      (o) => o.status.observedGeneration === 3 && hasCond('Synced', 'True')(o),
    );
    expect(updated.status.associationID).toBe(id);
    await eventually(async () => {
      const ev = (await eventsFor(kube, ns, 'reader')).find(
        (e) => e.reason === 'Updated' && String(e.note).includes('policy: observed'),
      );
      expect(ev?.type).toBe('Normal');
    });

    await kube.patch(lpiaPath(ns, 'reader'), [{ op: 'remove', path: '/spec/policy' }]);
    await eventually(async () => expect((await env.aws.eks.describe(CLUSTER, id)).policy).toBeUndefined());
    expect(updatesOf()).toHaveLength(2);
  });

  it('a policy changed outside Lanyard is set back within one resync (Warning DriftCorrected naming policy)', async () => {
    const ns = await namespace('sp-drift');
    const role = await env.createRole('sp-drift');
    const desired = readerOf('team-a');
    await createAssociation(kube, ns, 'reader', {
      serviceAccount: 'reader',
      roleARN: role,
      disableSessionTags: true,
      policy: desired,
    });
    const synced = await waitFor(kube, ns, 'reader', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    const id = synced.status.associationID as string;
    const wider = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }],
    });
    await env.aws.eks.update({
      clusterName: CLUSTER,
      associationId: id,
      roleArn: role,
      targetRoleArn: '',
      disableSessionTags: true,
      policy: wider,
      clientRequestToken: 'out-of-band-widening',
    });
    await eventually(
      async () => expect((await env.aws.eks.describe(CLUSTER, id)).policy).toBe(desired),
      15_000,
    );
    await eventually(async () => {
      const ev = (await eventsFor(kube, ns, 'reader')).find((e) => e.reason === 'DriftCorrected');
      expect(ev?.type).toBe('Warning');
      expect(ev?.note).toContain(
        'policy: observed "{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"',
      );
    });
    // Removing the policy outside Lanyard is drift too.
    await env.aws.eks.update({
      clusterName: CLUSTER,
      associationId: id,
      roleArn: role,
      targetRoleArn: '',
      disableSessionTags: true,
      policy: '',
      clientRequestToken: 'out-of-band-removal',
    });
    await eventually(
      async () => expect((await env.aws.eks.describe(CLUSTER, id)).policy).toBe(desired),
      15_000,
    );
  });

  it('a document EKS refuses is Synced=False InvalidSpec naming spec.policy; fixing it syncs', async () => {
    const ns = await namespace('sp-refused');
    const role = await env.createRole('sp-refused');
    // Valid JSON and accepted by the CRD, but a session policy may not name a Principal: EKS refuses it.
    const withPrincipal = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: '*' }],
    });
    await createAssociation(kube, ns, 'reader', {
      serviceAccount: 'reader',
      roleARN: role,
      disableSessionTags: true,
      policy: withPrincipal,
    });
    const refused = await waitFor(
      kube,
      ns,
      'reader',
      hasCond('Synced', 'False', 'InvalidSpec'),
      20_000,
      'InvalidSpec',
    );
    expect(condition(refused, 'Synced')?.message).toMatch(
      /^spec\.policy: EKS refused the session policy: .*InvalidParameterException.*a session policy must not specify a Principal/,
    );
    expect(condition(refused, 'Ready')).toMatchObject({ status: 'False', reason: 'NotSynced' });
    expect(await env.aws.eks.list(CLUSTER, { namespace: ns, serviceAccount: 'reader' })).toEqual([]);

    // Not JSON at all: the controller says so before calling EKS.
    await kube.patch(lpiaPath(ns, 'reader'), { spec: { policy: '{"Statement": [' } }, merge);
    const notJson = await waitFor(
      kube,
      ns,
      'reader',
      (o) => o.status.observedGeneration === 2 && hasCond('Synced', 'False', 'InvalidSpec')(o),
    );
    expect(condition(notJson, 'Synced')?.message).toMatch(/^spec\.policy: not valid JSON \(/);
    // Over more than one resync (2 s here, each a new reconcile of generation 2), no EKS call is made for it.
    const since = new Date().toISOString();
    const windowEnd = Date.now() + 2_500;
    while (Date.now() < windowEnd) {
      expect(env.sim.control.log({ service: 'eks', since }).filter((e) => e.input.namespace === ns)).toEqual(
        [],
      );
      await new Promise((r) => setTimeout(r, 250));
    }

    const fixed = readerOf('team-a');
    await kube.patch(lpiaPath(ns, 'reader'), { spec: { policy: fixed } }, merge);
    const ok = await waitFor(kube, ns, 'reader', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    expect((await env.aws.eks.describe(CLUSTER, ok.status.associationID)).policy).toBe(fixed);
  });
});

describe('spec checks before any EKS call', () => {
  it("a role ARN beyond IAM's limits that the CRD lets through is InvalidSpec naming the field", async () => {
    const ns = await namespace('sp-arn');
    // 65 characters: inside the CRD's pattern and length, outside IAM's role name limit.
    const role = `arn:aws:iam::${env.sim.control.account}:role/${'n'.repeat(65)}`;
    await createAssociation(kube, ns, 'long', { serviceAccount: 'long', roleARN: role });
    const refused = await waitFor(
      kube,
      ns,
      'long',
      hasCond('Synced', 'False', 'InvalidSpec'),
      20_000,
      'InvalidSpec',
    );
    expect(condition(refused, 'Synced')?.message).toBe(
      'spec.roleARN: role name is 65 characters; IAM allows at most 64',
    );
    expect(refused.metadata.finalizers ?? []).toEqual([]);
    expect(env.sim.control.log({ service: 'eks' }).filter((e) => e.input.namespace === ns)).toEqual([]);
  });
});
