// The association reconciler (docs/associations.md#what-the-controller-does): the controller runs in-process against
// the real API server and the AWS simulator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { verifiedIdentityName, fingerprintOf } from '../../../src/verification/verified-identity.ts';
import { adminClient, eventually, newNamespace } from '../../harness/context.ts';
import {
  CLUSTER,
  condition,
  createAssociation,
  createServiceAccount,
  eventsFor,
  hasCond,
  lpiaPath,
  probePods,
  startController,
  startEnv,
  testConfig,
  waitFor,
  type Env,
} from './helpers.ts';
import type { AssociationController } from '../../../src/associations/index.ts';

let kube: KubeClient;
let env: Env;
let ctrl: AssociationController;
const namespaces: string[] = [];

beforeAll(async () => {
  kube = await adminClient();
  env = await startEnv(7);
  ctrl = await startController(kube, env, testConfig());
});
afterAll(async () => {
  await ctrl?.stop();
  for (const ns of namespaces) await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  await env?.close();
  kube?.close();
});

async function namespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const ns = await newNamespace(kube, prefix, labels);
  namespaces.push(ns);
  return ns;
}

/** What the verifier does after a successful exchange for the pair's owner (docs/associations.md#how-verified-is-obtained). */
function reportVerified(
  ns: string,
  sa: string,
  result: 'CredentialsMatch' | 'RoleMismatch' = 'CredentialsMatch',
) {
  const association = ctrl.lookup.forPair(ns, sa);
  if (!association) throw new Error(`no owner association for ${ns}/${sa} in the lookup`);
  ctrl.recordVerification({ association, result, message: `test report ${result}` });
}

describe('PodIdentityAssociation reconciler', () => {
  it('creates once with clientRequestToken = uid, records id and ARN, probes, and becomes Ready', async () => {
    // Enforcing the restricted Pod Security level: the probe must be valid under it.
    const ns = await namespace('a1', { 'pod-security.kubernetes.io/enforce': 'restricted' });
    const role = await env.createRole('a1-uploader');
    await createServiceAccount(kube, ns, 'uploader');
    const created = await createAssociation(kube, ns, 'uploader', {
      serviceAccount: 'uploader',
      roleARN: role,
      tags: { team: 'a' },
    });
    const uid = created.metadata.uid;

    const synced = await waitFor(
      kube,
      ns,
      'uploader',
      hasCond('Synced', 'True', 'InSync'),
      20_000,
      'Synced=True',
    );
    expect(synced.metadata.finalizers).toContain('lanyard.dev/pod-identity-association');
    expect(synced.status.associationID).toMatch(/^a-[0-9a-z]{17}$/);
    expect(synced.status.associationARN).toBe(
      `arn:aws:eks:${env.sim.control.region}:${env.sim.control.account}:podidentityassociation/${CLUSTER}/${synced.status.associationID}`,
    );
    expect(synced.status.clusterName).toBe(CLUSTER);
    expect(synced.status.externalID).toMatch(/^[0-9a-f-]{36}$/);
    const creates = env.sim.control
      .log({ service: 'eks', operation: 'CreatePodIdentityAssociation' })
      .filter((e) => e.input.namespace === ns);
    expect(creates).toHaveLength(1);
    expect(creates[0]!.input.clientRequestToken).toBe(uid);
    const inSim = await env.aws.eks.describe(CLUSTER, synced.status.associationID);
    expect(inSim).toMatchObject({ roleArn: role, namespace: ns, serviceAccount: 'uploader' });
    expect(inSim.tags).toEqual({ team: 'a', 'lanyard.dev/managed-by': 'lanyard', 'lanyard.dev/uid': uid });

    // Verification waits for the probe: a gated Pod of the pair, owned by the association, that never runs.
    expect(condition(synced, 'Verified')).toMatchObject({ status: 'Unknown', reason: 'Verifying' });
    expect(condition(synced, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'Verifying' });
    const [probe] = await eventually(async () => {
      const p = await probePods(kube, ns);
      if (p.length !== 1) throw new Error(`${p.length} probes`);
      return p;
    });
    expect(probe.metadata.generateName).toBe('lanyard-probe-');
    expect(probe.metadata.ownerReferences[0]).toMatchObject({
      kind: 'PodIdentityAssociation',
      name: 'uploader',
      uid,
    });
    expect(probe.spec).toMatchObject({
      serviceAccountName: 'uploader',
      automountServiceAccountToken: false,
      restartPolicy: 'Never',
      schedulingGates: [{ name: 'lanyard.dev/probe' }],
    });
    expect(probe.spec.containers).toHaveLength(1);
    expect(probe.spec.containers[0]).toMatchObject({
      name: 'probe',
      image: 'registry.k8s.io/pause:3.10',
      resources: { requests: { cpu: '1m', memory: '4Mi' }, limits: { cpu: '1m', memory: '4Mi' } },
    });

    reportVerified(ns, 'uploader');
    const ready = await waitFor(
      kube,
      ns,
      'uploader',
      hasCond('Ready', 'True', 'Ready'),
      15_000,
      'Ready=True',
    );
    expect(condition(ready, 'Verified')).toMatchObject({ status: 'True', reason: 'CredentialsMatch' });
    expect(Date.parse(ready.status.lastVerifiedTime)).toBeGreaterThan(0);
    await eventually(async () => expect(await probePods(kube, ns)).toHaveLength(0));

    const table = await kube.request({
      path: lpiaPath(ns),
      accept: 'application/json;as=Table;g=meta.k8s.io;v=v1',
    });
    const names = table.columnDefinitions.map((c: Json) => c.name);
    const row = Object.fromEntries(names.map((n: string, i: number) => [n, table.rows[0].cells[i]]));
    expect(row).toMatchObject({
      Name: 'uploader',
      ServiceAccount: 'uploader',
      Role: role,
      Synced: 'True',
      Verified: 'True',
      Ready: 'True',
      Cluster: CLUSTER,
      Association: ready.status.associationID,
    });
    const reasons = (await eventsFor(kube, ns, 'uploader')).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['Created', 'Verified']));
    const metrics = await (
      ctrl as unknown as { metrics: { getSingleMetricAsString(n: string): Promise<string> } }
    ).metrics.getSingleMetricAsString('lanyard_association_reconciles_total');
    expect(metrics).toMatch(/result="created"} [1-9]/);
  });

  it('adopts an association made outside Lanyard and sets its role back to the spec', async () => {
    const ns = await namespace('a3');
    const role = await env.createRole('a3-desired');
    const other = await env.createRole('a3-other');
    const direct = await env.aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: 'app',
      roleArn: other,
      tags: { legacy: 'yes' },
      clientRequestToken: `direct-${ns}`.slice(0, 64),
    });
    await createAssociation(kube, ns, 'app', { serviceAccount: 'app', roleARN: role });
    const synced = await waitFor(kube, ns, 'app', hasCond('Synced', 'True', 'InSync'), 20_000, 'Synced=True');
    expect(synced.status.associationID).toBe(direct.associationId);
    const now = await env.aws.eks.describe(CLUSTER, direct.associationId);
    expect(now.roleArn).toBe(role);
    expect(now.tags).toEqual({ 'lanyard.dev/managed-by': 'lanyard', 'lanyard.dev/uid': synced.metadata.uid });
    const reasons = (await eventsFor(kube, ns, 'app')).map((e) => e.reason);
    expect(reasons).toContain('Adopted');
    expect(reasons).toContain('TagsUpdated');
    // Adoption changes the role through Update, never a second association.
    const all = await env.aws.eks.list(CLUSTER, { namespace: ns, serviceAccount: 'app' });
    expect(all).toHaveLength(1);
  });

  it("corrects drift within one resync, warns DriftCorrected and drops the pair's VerifiedIdentity", async () => {
    const ns = await namespace('a4');
    const role = await env.createRole('a4-app');
    const other = await env.createRole('a4-other');
    await createServiceAccount(kube, ns, 'app');
    await createAssociation(kube, ns, 'app', { serviceAccount: 'app', roleARN: role });
    let obj = await waitFor(kube, ns, 'app', hasCond('Synced', 'True', 'InSync'), 20_000, 'Synced=True');
    reportVerified(ns, 'app');
    obj = await waitFor(kube, ns, 'app', hasCond('Ready', 'True'), 15_000, 'Ready=True');

    // The verified set entry the verifier would have written for this identity.
    const viName = verifiedIdentityName({
      mode: 'ContainerCredentials',
      serviceAccount: 'app',
      roleARN: role,
      audience: 'pods.eks.amazonaws.com',
    });
    const now = Date.now();
    await kube.create(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/verifiedidentities`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'VerifiedIdentity',
      metadata: { name: viName },
      spec: {
        serviceAccount: 'app',
        mode: 'ContainerCredentials',
        roleARN: role,
        audience: 'pods.eks.amazonaws.com',
        fingerprint: fingerprintOf({
          source: 'association',
          uid: obj.metadata.uid,
          associationID: obj.status.associationID,
          roleARN: role,
          disableSessionTags: false,
        }),
        assumedRoleARN: `arn:aws:sts::${env.sim.control.account}:assumed-role/a4-app/eks-x`,
        verifiedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + 600_000).toISOString(),
        verifiedWith: 'Pod/x',
      },
    });

    await env.aws.eks.update({
      clusterName: CLUSTER,
      associationId: obj.status.associationID,
      roleArn: other,
      targetRoleArn: '',
      disableSessionTags: false,
      clientRequestToken: `drift-${ns}`.slice(0, 64),
    });
    const t0 = Date.now();
    await eventually(async () => {
      const a = await env.aws.eks.describe(CLUSTER, obj.status.associationID);
      if (a.roleArn !== role) throw new Error('not corrected yet');
    }, 10_000);
    // Resync is 2 s: corrected within one resync (plus one reconcile).
    expect(Date.now() - t0).toBeLessThan(5_000);
    await eventually(async () => {
      const ev = (await eventsFor(kube, ns, 'app')).find((e) => e.reason === 'DriftCorrected');
      expect(ev?.type).toBe('Warning');
      expect(ev?.note).toContain(`roleARN: observed "${other}", desired "${role}"`);
    });
    await eventually(async () => {
      const r = await kube.raw({
        path: `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/verifiedidentities/${viName}`,
      });
      expect(r.status).toBe(404);
    });
    // The status write follows the deletion of the verified set within the same reconcile.
    obj = await waitFor(
      kube,
      ns,
      'app',
      (o) => condition(o, 'Verified')?.status !== 'True',
      10_000,
      'Verified no longer True after the correction',
    );
    expect(condition(obj, 'Verified')).toMatchObject({ status: 'Unknown' });
    reportVerified(ns, 'app');
    await waitFor(
      kube,
      ns,
      'app',
      hasCond('Verified', 'True', 'CredentialsMatch'),
      15_000,
      'Verified=True again',
    );
  });

  it('a spec change updates the association in place; removing targetRoleARN clears it in EKS', async () => {
    const ns = await namespace('upd');
    const role = await env.createRole('upd-app');
    const target = await env.createRole('upd-target');
    const next = await env.createRole('upd-next');
    await createServiceAccount(kube, ns, 'app');
    await createAssociation(kube, ns, 'app', { serviceAccount: 'app', roleARN: role, targetRoleARN: target });
    const first = await waitFor(kube, ns, 'app', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    expect((await env.aws.eks.describe(CLUSTER, first.status.associationID)).targetRoleArn).toBe(target);
    reportVerified(ns, 'app');
    await waitFor(kube, ns, 'app', hasCond('Ready', 'True'), 15_000, 'Ready=True');

    await kube.patch(lpiaPath(ns, 'app'), [
      { op: 'replace', path: '/spec/roleARN', value: next },
      { op: 'remove', path: '/spec/targetRoleARN' },
    ]);
    const updated = await waitFor(
      kube,
      ns,
      'app',
      hasCond('Synced', 'True'),
      20_000,
      'Synced=True for generation 2',
    );
    expect(updated.metadata.generation).toBe(2);
    expect(updated.status.associationID).toBe(first.status.associationID);
    const inEks = await env.aws.eks.describe(CLUSTER, first.status.associationID);
    expect(inEks.roleArn).toBe(next);
    expect(inEks.targetRoleArn).toBeUndefined();
    // A new generation needs a new exchange: the earlier report no longer counts, a new probe is made.
    expect(condition(updated, 'Verified')).toMatchObject({
      status: 'Unknown',
      reason: 'Verifying',
      observedGeneration: 2,
    });
    expect(condition(updated, 'Ready')?.status).toBe('Unknown');
    await eventually(async () =>
      expect(
        (await probePods(kube, ns)).map((p) => p.metadata.annotations['lanyard.dev/probe-generation']),
      ).toEqual(['2']),
    );
    const ev = (await eventsFor(kube, ns, 'app')).find((e) => e.reason === 'Updated');
    expect(ev?.note).toContain(`roleARN: observed "${role}", desired "${next}"`);
    expect(ev?.note).toContain(`targetRoleARN: observed "${target}", desired ""`);
    expect((await eventsFor(kube, ns, 'app')).some((e) => e.reason === 'DriftCorrected')).toBe(false);
  });

  it('a role IAM has not propagated yet is retried (RolePropagating), then InSync, never terminal', async () => {
    const ns = await namespace('a5');
    env.sim.control.configure({ visibility: { 'iam.role': [5000, 5000] } });
    try {
      const role = await env.createRole('a5-new');
      await createAssociation(kube, ns, 'app', { serviceAccount: 'app', roleARN: role });
      const seen = new Set<string>();
      await eventually(
        async () => {
          const o = await kube.get(lpiaPath(ns, 'app'));
          const s = condition(o, 'Synced');
          if (s) seen.add(s.reason);
          if (s?.reason !== 'InSync') throw new Error('not in sync');
        },
        30_000,
        100,
      );
      expect(seen).toContain('RolePropagating');
      expect(seen).not.toContain('RoleNotFound');
      expect([...seen].every((r) => ['RolePropagating', 'InSync', 'Reconciling'].includes(r))).toBe(true);
      const reasons = (await eventsFor(kube, ns, 'app')).map((e) => e.reason);
      expect(reasons).toContain('RolePropagating');
      expect(reasons).toContain('Created');
    } finally {
      env.sim.control.configure({ visibility: {} });
    }
  });

  it('a role that never appears ends RoleNotFound after --role-propagation-timeout', async () => {
    const ns = await namespace('a5b');
    // One controller at a time: this one gives up after 2.5 s instead of 2 min.
    await ctrl.stop();
    const short = await startController(kube, env, testConfig({ rolePropagationTimeoutMs: 2500 }));
    try {
      await createAssociation(kube, ns, 'app', {
        serviceAccount: 'app',
        roleARN: env.roleArn('a5b-missing'),
      });
      const o = await waitFor(
        kube,
        ns,
        'app',
        hasCond('Synced', 'False', 'RoleNotFound'),
        20_000,
        'RoleNotFound',
      );
      expect(condition(o, 'Synced').message).toContain('Role provided in the request does not exist');
      expect(condition(o, 'Ready')).toMatchObject({ status: 'False', reason: 'NotSynced' });
    } finally {
      await short.stop();
      ctrl = await startController(kube, env, testConfig());
    }
  });

  it('deletion deletes the association; with deletion-policy retain it stays', async () => {
    const ns = await namespace('a6');
    const role = await env.createRole('a6-app');
    await createAssociation(kube, ns, 'gone', { serviceAccount: 'gone', roleARN: role });
    await createAssociation(
      kube,
      ns,
      'kept',
      { serviceAccount: 'kept', roleARN: role },
      {
        annotations: { 'lanyard.dev/deletion-policy': 'retain' },
      },
    );
    const gone = await waitFor(kube, ns, 'gone', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    const kept = await waitFor(kube, ns, 'kept', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    await kube.delete(lpiaPath(ns, 'gone'));
    await kube.delete(lpiaPath(ns, 'kept'));
    for (const name of ['gone', 'kept']) {
      await eventually(
        async () => expect((await kube.raw({ path: lpiaPath(ns, name) })).status).toBe(404),
        15_000,
      );
    }
    await expect(env.aws.eks.describe(CLUSTER, gone.status.associationID)).rejects.toMatchObject({
      code: 'ResourceNotFoundException',
    });
    expect((await env.aws.eks.describe(CLUSTER, kept.status.associationID)).roleArn).toBe(role);
    const deletes = env.sim.control.log({ service: 'eks', operation: 'DeletePodIdentityAssociation' });
    expect(deletes.filter((e) => e.input.associationId === kept.status.associationID)).toHaveLength(0);
  });

  it('recreates an association deleted out of band (Warning Recreated)', async () => {
    const ns = await namespace('rec');
    const role = await env.createRole('rec-app');
    await createAssociation(kube, ns, 'app', { serviceAccount: 'app', roleARN: role });
    const first = await waitFor(kube, ns, 'app', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    await env.aws.eks.delete(CLUSTER, first.status.associationID);
    const again = await waitFor(
      kube,
      ns,
      'app',
      (o) =>
        !!o.status?.associationID &&
        o.status.associationID !== first.status.associationID &&
        hasCond('Synced', 'True')(o),
      15_000,
      'recreated',
    );
    expect((await env.aws.eks.describe(CLUSTER, again.status.associationID)).roleArn).toBe(role);
    const tokens = env.sim.control
      .log({ service: 'eks', operation: 'CreatePodIdentityAssociation' })
      .filter((e) => e.input.namespace === ns && e.status === 200)
      .map((e) => e.input.clientRequestToken);
    expect([...new Set(tokens)]).toEqual([
      first.metadata.uid,
      `${first.metadata.uid}-${first.status.associationID}`,
    ]);
    await eventually(async () =>
      expect((await eventsFor(kube, ns, 'app')).map((e) => e.reason)).toContain('Recreated'),
    );
  });

  it('a second object for the same pair is a Duplicate naming the owner and never reaches EKS', async () => {
    const ns = await namespace('dup');
    const role = await env.createRole('dup-app');
    await createAssociation(kube, ns, 'first', { serviceAccount: 'app', roleARN: role });
    await waitFor(kube, ns, 'first', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    await createAssociation(kube, ns, 'second', { serviceAccount: 'app', roleARN: role });
    const dup = await waitFor(
      kube,
      ns,
      'second',
      hasCond('Synced', 'False', 'Duplicate'),
      20_000,
      'Duplicate',
    );
    expect(condition(dup, 'Synced').message).toContain(`PodIdentityAssociation ${ns}/first`);
    expect(condition(dup, 'Ready')).toMatchObject({ status: 'False', reason: 'NotSynced' });
    expect(dup.metadata.finalizers ?? []).toEqual([]);
    // Deleting the owner hands the pair over: the second adopts the existing association.
    const owner = await kube.get(lpiaPath(ns, 'first'));
    await kube.patch(
      lpiaPath(ns, 'first'),
      { metadata: { annotations: { 'lanyard.dev/deletion-policy': 'retain' } } },
      'application/merge-patch+json',
    );
    await kube.delete(lpiaPath(ns, 'first'));
    const adopted = await waitFor(
      kube,
      ns,
      'second',
      hasCond('Synced', 'True'),
      20_000,
      'adopted by the second',
    );
    expect(adopted.status.associationID).toBe(owner.status.associationID);
  });

  it('a probe that cannot be created gives Verified=Unknown ProbeFailed with the API error', async () => {
    const ns = await namespace('pf');
    const role = await env.createRole('pf-app');
    // No ServiceAccount "ghost": the API server refuses Pods that name it.
    await createAssociation(kube, ns, 'ghost', { serviceAccount: 'ghost', roleARN: role });
    const o = await waitFor(
      kube,
      ns,
      'ghost',
      hasCond('Verified', 'Unknown', 'ProbeFailed'),
      20_000,
      'ProbeFailed',
    );
    expect(condition(o, 'Verified').message).toContain('cannot create the probe Pod');
    expect(condition(o, 'Verified').message).toContain('ghost');
    expect(condition(o, 'Synced')).toMatchObject({ status: 'True', reason: 'InSync' });
    expect(condition(o, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'Verifying' });
    // Fixed: the probe is made at the next resync.
    await createServiceAccount(kube, ns, 'ghost');
    await eventually(async () => expect(await probePods(kube, ns)).toHaveLength(1), 10_000);
    await waitFor(
      kube,
      ns,
      'ghost',
      hasCond('Verified', 'Unknown', 'Verifying'),
      10_000,
      'Verifying after the fix',
    );
  });

  it('a fresh VerifiedIdentity of the association verifies it without a probe exchange', async () => {
    const ns = await namespace('vi');
    const role = await env.createRole('vi-app');
    await createServiceAccount(kube, ns, 'app');
    await createAssociation(kube, ns, 'app', { serviceAccount: 'app', roleARN: role });
    const o = await waitFor(kube, ns, 'app', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    await eventually(async () => expect(await probePods(kube, ns)).toHaveLength(1));
    const at = new Date().toISOString();
    await kube.create(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/verifiedidentities`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'VerifiedIdentity',
      metadata: {
        name: verifiedIdentityName({
          mode: 'ContainerCredentials',
          serviceAccount: 'app',
          roleARN: role,
          audience: 'pods.eks.amazonaws.com',
        }),
      },
      spec: {
        serviceAccount: 'app',
        mode: 'ContainerCredentials',
        roleARN: role,
        audience: 'pods.eks.amazonaws.com',
        fingerprint: fingerprintOf({
          source: 'association',
          uid: o.metadata.uid,
          associationID: o.status.associationID,
          roleARN: role,
          disableSessionTags: false,
        }),
        verifiedAt: at,
        expiresAt: new Date(Date.now() + 600_000).toISOString(),
      },
    });
    const ready = await waitFor(
      kube,
      ns,
      'app',
      hasCond('Ready', 'True'),
      15_000,
      'Ready from the verified set',
    );
    expect(condition(ready, 'Verified')).toMatchObject({ status: 'True', reason: 'CredentialsMatch' });
    expect(ready.status.lastVerifiedTime).toBe(at);
    await eventually(async () => expect(await probePods(kube, ns)).toHaveLength(0));
  });

  it('verifier reports: at most one status write per association per 5 s, the latest wins', async () => {
    const ns = await namespace('rate');
    const role = await env.createRole('rate-app');
    await createServiceAccount(kube, ns, 'app');
    await createAssociation(kube, ns, 'app', { serviceAccount: 'app', roleARN: role });
    await waitFor(kube, ns, 'app', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    // The write of this first report happens after t0, so the next may not happen before t0 + 5 s.
    const t0 = Date.now();
    reportVerified(ns, 'app');
    const first = await waitFor(kube, ns, 'app', hasCond('Verified', 'True'), 4_000, 'Verified=True');
    reportVerified(ns, 'app', 'RoleMismatch');
    reportVerified(ns, 'app', 'CredentialsMatch');
    reportVerified(ns, 'app', 'RoleMismatch');
    const versions = new Set<string>([first.metadata.resourceVersion]);
    let o = first;
    while (Date.now() - t0 < 4_700) {
      o = await kube.get(lpiaPath(ns, 'app'));
      versions.add(o.metadata.resourceVersion);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Reports within 5 s of the last write wait: nothing written yet.
    expect(versions.size).toBe(1);
    const after = await waitFor(
      kube,
      ns,
      'app',
      hasCond('Verified', 'False', 'RoleMismatch'),
      10_000,
      'latest report',
    );
    expect(condition(after, 'Ready')).toMatchObject({ status: 'False', reason: 'NotVerified' });
    await eventually(async () => {
      const ev = (await eventsFor(kube, ns, 'app')).find((e) => e.reason === 'VerificationFailed');
      expect(ev?.type).toBe('Warning');
    });
  });

  it('a successor waits while its predecessor deletes the association, then creates its own', async () => {
    const ns = await namespace('succ');
    const role = await env.createRole('succ-app');
    await createAssociation(kube, ns, 'first', { serviceAccount: 'app', roleARN: role });
    const first = await waitFor(kube, ns, 'first', hasCond('Synced', 'True'), 20_000, 'Synced=True');
    await createAssociation(kube, ns, 'second', { serviceAccount: 'app', roleARN: role });
    await waitFor(kube, ns, 'second', hasCond('Synced', 'False', 'Duplicate'), 20_000, 'Duplicate');
    env.sim.control.configure({
      faults: [{ service: 'eks', operation: 'DeletePodIdentityAssociation', latencyMs: 1500 }],
    });
    try {
      await kube.delete(lpiaPath(ns, 'first'));
      const waiting = await waitFor(
        kube,
        ns,
        'second',
        hasCond('Synced', 'Unknown', 'Reconciling'),
        10_000,
        'waiting',
      );
      expect(condition(waiting, 'Synced').message).toContain(`PodIdentityAssociation ${ns}/first`);
      const second = await waitFor(kube, ns, 'second', hasCond('Synced', 'True'), 20_000, 'own association');
      expect(second.status.associationID).not.toBe(first.status.associationID);
      expect(await env.aws.eks.list(CLUSTER, { namespace: ns, serviceAccount: 'app' })).toHaveLength(1);
    } finally {
      env.sim.control.configure({ faults: [] });
    }
  });

  it('a role no IdentityPolicy allows is PolicyDenied with zero EKS writes', async () => {
    const ns = await namespace('a8', { team: 'a' });
    const policyName = `a8-${ns}`.slice(0, 63);
    await kube.create('/apis/lanyard.dev/v1alpha1/identitypolicies', {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'IdentityPolicy',
      metadata: { name: policyName },
      spec: {
        rules: [
          {
            namespaceSelector: { matchLabels: { team: 'a' } },
            serviceAccounts: ['*'],
            roles: [`arn:aws:iam::${env.sim.control.account}:role/team-a-*`],
          },
        ],
      },
    });
    try {
      const admin = await env.createRole('admin-a8');
      const allowed = await env.createRole('team-a-a8');
      await createAssociation(kube, ns, 'admin', { serviceAccount: 'admin', roleARN: admin });
      await createAssociation(kube, ns, 'ok', { serviceAccount: 'ok', roleARN: allowed });
      const denied = await waitFor(
        kube,
        ns,
        'admin',
        hasCond('Synced', 'False', 'PolicyDenied'),
        20_000,
        'PolicyDenied',
      );
      expect(condition(denied, 'Synced').message).toBe(
        `lanyard: no IdentityPolicy allows namespace "${ns}" ServiceAccount "admin" to use role "${admin}"; no association is created in EKS`,
      );
      expect(denied.metadata.finalizers ?? []).toEqual([]);
      const ok = await waitFor(kube, ns, 'ok', hasCond('Synced', 'True'), 20_000, 'allowed one in sync');
      // The denied pair never had an association, so any EKS call for it would carry its namespace and name.
      expect(
        env.sim.control
          .log({ service: 'eks' })
          .filter((e) => e.input.namespace === ns && e.input.serviceAccount === 'admin'),
      ).toEqual([]);
      expect(ok.status.associationID).toMatch(/^a-[0-9a-z]{17}$/);
      await eventually(async () => {
        const ev = (await eventsFor(kube, ns, 'admin')).find((e) => e.reason === 'PolicyDenied');
        expect(ev?.type).toBe('Warning');
      });
      // Deleting the policy (no policies: everything allowed) lets it through.
    } finally {
      await kube.delete(`/apis/lanyard.dev/v1alpha1/identitypolicies/${policyName}`).catch(() => undefined);
    }
    await waitFor(kube, ns, 'admin', hasCond('Synced', 'True'), 20_000, 'allowed once no policy exists');
  });
});
