// `lanyard explain pod|serviceaccount` (docs/explain-and-iam.md) for ACK-shaped associations, against the real API
// server: a Lanyard PodIdentityAssociation written in ACK's shape (docs/adr/0203-ack-shaped-associations.md: seed 002's
// manifest with only its apiVersion changed), and an observed ACK object of `eks.services.k8s.aws` (ACK's CRD
// installed, no ACK controller; docs/migrate-from-ack.md), which the webhook counts as an injection source. Explain
// names the object that won, its role and its kind; it filters ACK objects by `--cluster-name` and ignores those with
// only `clusterRef`, as the webhook does.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { applyCrds } from '../../../src/kube/apply.ts';
import { runCli } from '../../../src/cli/run.ts';
import { adminClient, controlPlane, eventually, newNamespace } from '../../harness/context.ts';
import { kubectlApply, seedManifests, byKind } from '../seeds/helpers.ts';

const ACK_CRD = 'podidentityassociations.eks.services.k8s.aws';
const ACK_FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/ack');
const CLUSTER = 'explain-ack';
const ROLE = 'arn:aws:iam::111122223333:role/explain-ack';
let kube: KubeClient;
const namespaces: string[] = [];

const explain = async (argv: string[]) => {
  const r = await runCli(['explain', ...argv, '--no-aws', '--kubeconfig', controlPlane().adminKubeconfig]);
  return r;
};
const ns = async (prefix: string) => {
  const n = await newNamespace(kube, prefix);
  namespaces.push(n);
  return n;
};
const ackObject = (objectNs: string, name: string, spec: Json): Json => ({
  apiVersion: 'eks.services.k8s.aws/v1alpha1',
  kind: 'PodIdentityAssociation',
  metadata: { name, namespace: objectNs },
  spec,
});

beforeAll(async () => {
  kube = await adminClient();
  await applyCrds(kube, ACK_FIXTURES);
  await eventually(async () => {
    const d = await kube.get('/apis/eks.services.k8s.aws/v1alpha1');
    if (!d.resources.some((r: Json) => r.name === 'podidentityassociations'))
      throw new Error('not served yet');
  }, 15_000);
});
afterAll(async () => {
  for (const n of namespaces) await kube.delete(`/api/v1/namespaces/${n}`).catch(() => undefined);
  await kube
    .delete(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${ACK_CRD}`)
    .catch(() => undefined);
  kube?.close();
});

describe('lanyard explain with ACK-shaped associations', () => {
  it("seed 002's association with only its apiVersion changed (spec.namespace, spec.clusterName) wins the chain for its ServiceAccount", async () => {
    const n = await ns('explain-ack-shape');
    const objs = seedManifests('002-ack-pod-identity-association.yaml', {
      NAMESPACE: n,
      CLUSTER,
      ROLE_ARN: ROLE,
    });
    for (const o of objs.filter((x) => x.kind !== 'Deployment')) await kubectlApply(kube, o);
    const sa = byKind(objs, 'ServiceAccount').metadata.name as string;
    const lpia = byKind(objs, 'PodIdentityAssociation');
    expect(lpia.spec).toMatchObject({ namespace: n, clusterName: CLUSTER });

    const r = await explain(['serviceaccount', sa, '-n', n]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`1. PodIdentityAssociation ${n}/${lpia.metadata.name}: role ${ROLE}  [WON]`);
    expect(r.stdout).toContain(`Declared identity: ContainerCredentials role ${ROLE}`);

    const j = JSON.parse((await explain(['sa', sa, '-n', n, '-o', 'json'])).stdout);
    expect(j.sources[0]).toMatchObject({
      rank: 1,
      source: `PodIdentityAssociation ${n}/${lpia.metadata.name}`,
      outcome: 'won',
    });
    expect(j.declared).toMatchObject({
      mode: 'ContainerCredentials',
      roleARN: ROLE,
      audience: 'pods.eks.amazonaws.com',
    });
  });

  it('an observed ACK object (eks.services.k8s.aws) in another namespace wins for the pair it names; --cluster-name picks its cluster', async () => {
    const n = await ns('explain-ack-obs');
    const central = await ns('explain-ack-objects');
    await kube.create(`/api/v1/namespaces/${n}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'app' },
    });
    // ACK's object names the ServiceAccount's namespace in spec.namespace and may live anywhere.
    await kube.create(
      `/apis/eks.services.k8s.aws/v1alpha1/namespaces/${central}/podidentityassociations`,
      ackObject(central, 'app', { clusterName: CLUSTER, namespace: n, serviceAccount: 'app', roleARN: ROLE }),
    );
    await kube.create(`/api/v1/namespaces/${n}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web' },
      spec: {
        serviceAccountName: 'app',
        automountServiceAccountToken: false,
        containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
      },
    });

    const sa = await explain(['serviceaccount', 'app', '-n', n, '--cluster-name', CLUSTER]);
    expect(sa.exitCode, sa.stderr).toBe(0);
    expect(sa.stdout).toContain(`1. ACK PodIdentityAssociation ${central}/app: role ${ROLE}  [WON]`);
    expect(sa.stdout).toContain(`Declared identity: ContainerCredentials role ${ROLE}`);

    // The Pod was created with no identity (no webhook here): explain says the ACK association declares one now.
    const pod = await explain(['pod', 'web', '-n', n, '--cluster-name', CLUSTER]);
    expect(pod.exitCode, pod.stderr).toBe(0);
    expect(pod.stdout).toContain(`Pod ${n}/web (ServiceAccount app)`);
    expect(pod.stdout).toContain(`1. ACK PodIdentityAssociation ${central}/app: role ${ROLE}  [WON]`);
    expect(pod.stdout).toContain('Pod spec: no AWS identity injected');
    expect(pod.stdout).toContain('MISSING: the Pod has no identity although one is declared now');

    // An ACK object for another cluster is not this cluster's: with --cluster-name the chain has no association.
    const other = await explain(['serviceaccount', 'app', '-n', n, '--cluster-name', 'another-cluster']);
    expect(other.exitCode, other.stderr).toBe(0);
    expect(other.stdout).toContain(`1. PodIdentityAssociation for ${n}/app: none  [-]`);
    expect(other.stdout).not.toContain('ACK PodIdentityAssociation');
  });

  it('an ACK object with only clusterRef (no clusterName) is ignored, as the webhook ignores it', async () => {
    const n = await ns('explain-ack-ref');
    await kube.create(`/api/v1/namespaces/${n}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'app' },
    });
    await kube.create(
      `/apis/eks.services.k8s.aws/v1alpha1/namespaces/${n}/podidentityassociations`,
      ackObject(n, 'byref', {
        clusterRef: { from: { name: 'my-cluster' } },
        namespace: n,
        serviceAccount: 'app',
        roleARN: ROLE,
      }),
    );
    const r = await explain(['serviceaccount', 'app', '-n', n]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`1. PodIdentityAssociation for ${n}/app: none  [-]`);
    expect(r.stdout).not.toContain(`${n}/byref`);
  });
});
