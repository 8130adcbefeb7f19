// ACK objects, association side (docs/migrate-from-ack.md): with ACK's CRD installed (no ACK controller), an ACK
// PodIdentityAssociation is read as the owner of its pair, its outcomes become Events on it, and Lanyard never
// writes it: its resourceVersion never changes. Then the documented migration: delete it, the Lanyard object adopts.
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { applyCrds } from '../../../src/kube/apply.ts';
import { adminClient, eventually, newNamespace } from '../../harness/context.ts';
import {
  CLUSTER,
  condition,
  createAssociation,
  createServiceAccount,
  hasCond,
  startController,
  startEnv,
  testConfig,
  waitFor,
  type Env,
} from './helpers.ts';

const ACK_CRD = 'podidentityassociations.eks.services.k8s.aws';
const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/ack');
let kube: KubeClient;
let env: Env;
let ns: string;
const ackPath = (n: string, name?: string) =>
  `/apis/eks.services.k8s.aws/v1alpha1/namespaces/${n}/podidentityassociations${name ? `/${name}` : ''}`;

beforeAll(async () => {
  kube = await adminClient();
  env = await startEnv(15);
  await applyCrds(kube, FIXTURES);
  await eventually(async () => {
    const d = await kube.get('/apis/eks.services.k8s.aws/v1alpha1');
    if (!d.resources.some((r: Json) => r.name === 'podidentityassociations'))
      throw new Error('not served yet');
  }, 15_000);
  ns = await newNamespace(kube, 'a15');
});
afterAll(async () => {
  await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  await kube
    .delete(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${ACK_CRD}`)
    .catch(() => undefined);
  await env?.close();
  kube?.close();
});

it('an ACK object is observed, never written; migration by deleting it adopts the association', async () => {
  const role = await env.createRole('a15-app');
  await createServiceAccount(kube, ns, 'app');
  // What ACK would have done: the association in EKS and the object with its status.
  const inEks = await env.aws.eks.createPodIdentityAssociation({
    clusterName: CLUSTER,
    namespace: ns,
    serviceAccount: 'app',
    roleArn: role,
    tags: {},
    clientRequestToken: `ack-${ns}`.slice(0, 64),
  });
  const ack = await kube.create(ackPath(ns), {
    apiVersion: 'eks.services.k8s.aws/v1alpha1',
    kind: 'PodIdentityAssociation',
    metadata: { name: 'app-ack', annotations: { 'services.k8s.aws/deletion-policy': 'retain' } },
    spec: { clusterName: CLUSTER, namespace: ns, serviceAccount: 'app', roleARN: role },
  });
  const withStatus = await kube.patch(
    `${ackPath(ns, 'app-ack')}/status`,
    { status: { associationID: inEks.associationId, associationARN: inEks.associationArn } },
    'application/merge-patch+json',
  );
  const rv = withStatus.metadata.resourceVersion;

  const ctrl = await startController(kube, env, testConfig({ observeAck: 'auto' }));
  try {
    expect(ctrl.lookup.ackObserved()).toBe(true);
    const owner = ctrl.lookup.forPair(ns, 'app');
    expect(owner).toMatchObject({
      kind: 'ack',
      uid: ack.metadata.uid,
      objectName: 'app-ack',
      namespace: ns,
      serviceAccount: 'app',
      roleARN: role,
      associationID: inEks.associationId,
    });

    // A Lanyard object for the same pair, created later (timestamps have second resolution), is a Duplicate and
    // never calls EKS.
    await new Promise((r) =>
      setTimeout(r, Math.max(0, Date.parse(ack.metadata.creationTimestamp) + 2000 - Date.now())),
    );
    await createAssociation(kube, ns, 'app', { serviceAccount: 'app', roleARN: role });
    const dup = await waitFor(kube, ns, 'app', hasCond('Synced', 'False', 'Duplicate'), 20_000, 'Duplicate');
    expect(condition(dup, 'Synced').message).toContain(`ACK PodIdentityAssociation ${ns}/app-ack`);

    // Verification outcomes become Events on the ACK object.
    ctrl.recordVerification({ association: owner!, result: 'CredentialsMatch', message: `returned ${role}` });
    ctrl.recordVerification({
      association: owner!,
      result: 'ExchangeFailed',
      message: 'AccessDeniedException: trust',
    });
    await eventually(async () => {
      const list = await kube.get(`/apis/events.k8s.io/v1/namespaces/${ns}/events`);
      const mine = list.items.filter((e: Json) => e.regarding?.uid === ack.metadata.uid);
      expect(mine.map((e: Json) => `${e.type}/${e.reason}`).sort()).toEqual([
        'Normal/IdentityVerified',
        'Warning/IdentityNotVerified',
      ]);
      expect(mine.every((e: Json) => e.reportingController === 'lanyard.dev/associations')).toBe(true);
    });

    // Two resyncs later nothing has touched the ACK object, and EKS saw no call for the pair from Lanyard.
    await new Promise((r) => setTimeout(r, 4_500));
    const still = await kube.get(ackPath(ns, 'app-ack'));
    expect(still.metadata.resourceVersion).toBe(rv);
    expect(still.metadata.finalizers).toBeUndefined();
    const lanyardCalls = env.sim.control
      .log({ service: 'eks' })
      .filter((e) => e.input.namespace === ns || e.input.associationId === inEks.associationId)
      .filter(
        (e) =>
          !(
            e.operation === 'CreatePodIdentityAssociation' &&
            e.input.clientRequestToken === `ack-${ns}`.slice(0, 64)
          ),
      );
    expect(lanyardCalls).toEqual([]);

    // Migration (docs/migrate-from-ack.md): ACK deletion policy retain, delete the ACK object; Lanyard adopts.
    await kube.delete(ackPath(ns, 'app-ack'));
    const adopted = await waitFor(
      kube,
      ns,
      'app',
      hasCond('Synced', 'True', 'InSync'),
      20_000,
      'adopted after migration',
    );
    expect(adopted.status.associationID).toBe(inEks.associationId);
    expect(ctrl.lookup.forPair(ns, 'app')).toMatchObject({
      kind: 'lanyard',
      associationID: inEks.associationId,
    });
    expect(await env.aws.eks.list(CLUSTER, { namespace: ns, serviceAccount: 'app' })).toHaveLength(1);
  } finally {
    await ctrl.stop();
  }
});
