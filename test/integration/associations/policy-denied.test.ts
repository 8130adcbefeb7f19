// An association no IdentityPolicy allows is not usable (docs/adr/0202-denied-associations.md): after a policy is
// tightened the association is removed from EKS, so eks-auth refuses the ServiceAccount's Pod-bound token; with
// --denied-association-action=preview it stays and is reported; a new denied association is never created. Runs the
// controller in-process against the real API server and the AWS simulator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { AwsError } from '../../../src/aws/index.ts';
import { adminClient, eventually, newNamespace } from '../../harness/context.ts';
import {
  CLUSTER,
  condition,
  createAssociation,
  createServiceAccount,
  eventsFor,
  hasCond,
  startController,
  startEnv,
  testConfig,
  waitFor,
  type Env,
} from './helpers.ts';

let kube: KubeClient;
let env: Env;
const namespaces: string[] = [];
const policies: string[] = [];

beforeAll(async () => {
  kube = await adminClient();
  env = await startEnv(31);
});
afterAll(async () => {
  for (const p of policies)
    await kube.delete(`/apis/lanyard.dev/v1alpha1/identitypolicies/${p}`).catch(() => undefined);
  for (const ns of namespaces) await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  await env?.close();
  kube?.close();
});

const POLICIES = '/apis/lanyard.dev/v1alpha1/identitypolicies';

/** A namespace whose own IdentityPolicy allows `roles` (ARN globs) for every ServiceAccount. */
async function governedNamespace(prefix: string, roles: string[]): Promise<{ ns: string; policy: string }> {
  const team = `${prefix}-${Date.now().toString(36)}`;
  const ns = await newNamespace(kube, prefix, { team });
  namespaces.push(ns);
  const policy = `${ns}`.slice(0, 63);
  await kube.create(POLICIES, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'IdentityPolicy',
    metadata: { name: policy },
    spec: { rules: [{ namespaceSelector: { matchLabels: { team } }, serviceAccounts: ['*'], roles }] },
  });
  policies.push(policy);
  return { ns, policy };
}

async function setRoles(policy: string, roles: string[]): Promise<void> {
  const p = await kube.get(`${POLICIES}/${policy}`);
  p.spec.rules[0].roles = roles;
  await kube.update(`${POLICIES}/${policy}`, p);
}

/** A Pod of the ServiceAccount (never scheduled: no kubelet here) and a token bound to it for eks-auth. */
async function podToken(ns: string, sa: string): Promise<string> {
  const pod = await kube.create(`/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: `${sa}-` },
    spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
  });
  const r = await kube.create(`/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      audiences: ['pods.eks.amazonaws.com'],
      expirationSeconds: 600,
      boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
    },
  });
  return r.status.token;
}

async function exchangeError(token: string): Promise<AwsError> {
  try {
    await env.aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token });
  } catch (e) {
    if (e instanceof AwsError) return e;
    throw e;
  }
  throw new Error('eks-auth issued credentials');
}

const eksCallsFor = (ns: string, sa: string) =>
  env.sim.control
    .log({ service: 'eks' })
    .filter((e) => e.input.namespace === ns && e.input.serviceAccount === sa);

async function warning(ns: string, name: string, contains: string): Promise<Json> {
  return await eventually(async () => {
    const ev = (await eventsFor(kube, ns, name)).find(
      (e) => e.reason === 'PolicyDenied' && String(e.note).includes(contains),
    );
    expect(ev?.type).toBe('Warning');
    return ev!;
  });
}

describe('associations an IdentityPolicy denies', () => {
  it('tightening the policy removes the association from EKS: eks-auth refuses the token; loosening recreates it', async () => {
    const role = await env.createRole('reporter-d3');
    const { ns, policy } = await governedNamespace('d3-delete', [role]);
    await createServiceAccount(kube, ns, 'reporter');
    const ctrl = await startController(kube, env, testConfig({ probe: false }));
    try {
      await createAssociation(kube, ns, 'reporter', { serviceAccount: 'reporter', roleARN: role });
      const synced = await waitFor(kube, ns, 'reporter', hasCond('Synced', 'True'), 20_000, 'Synced=True');
      const id = synced.status.associationID as string;
      const token = await podToken(ns, 'reporter');
      const ok = await env.aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token });
      expect(ok.associationId).toBe(id);

      // The attack's precondition: the policy no longer allows the role.
      await setRoles(policy, [env.roleArn('someone-else')]);
      const denied = await waitFor(
        kube,
        ns,
        'reporter',
        (o) => hasCond('Ready', 'False', 'PolicyDenied')(o) && !o.status.associationID,
        20_000,
        'Ready=False PolicyDenied and the association removed',
      );
      const message = `lanyard: no IdentityPolicy allows namespace "${ns}" ServiceAccount "reporter" to use role "${role}"; removed association ${id} from EKS (1 running Pod of ServiceAccount ${ns}/reporter used it; they get no new credentials)`;
      expect(condition(denied, 'Synced')).toMatchObject({ status: 'False', reason: 'PolicyDenied', message });
      expect(condition(denied, 'Ready')?.message).toBe(message);
      expect(condition(denied, 'Verified')).toMatchObject({ status: 'Unknown', reason: 'NotSynced' });
      expect(denied.status.removedAssociationID).toBe(id);
      expect(denied.status.associationARN).toBeUndefined();
      await warning(ns, 'reporter', `removed association ${id} from EKS`);

      // Not usable any more: gone from EKS, and eks-auth gives the SA's Pod-bound token nothing.
      await expect(env.aws.eks.describe(CLUSTER, id)).rejects.toMatchObject({
        code: 'ResourceNotFoundException',
      });
      expect((await exchangeError(token)).code).toBe('ResourceNotFoundException');
      expect(env.sim.control.association(id)?.deleted).toBe(true);

      // Allowed again: a new association, made with a token derived from the removed one (the uid alone would make
      // EKS answer with the deleted association).
      await setRoles(policy, [role]);
      const back = await waitFor(
        kube,
        ns,
        'reporter',
        hasCond('Synced', 'True'),
        20_000,
        'Synced=True again',
      );
      expect(back.status.associationID).toMatch(/^a-[0-9a-z]{17}$/);
      expect(back.status.associationID).not.toBe(id);
      expect(back.status.removedAssociationID).toBeUndefined();
      const creates = eksCallsFor(ns, 'reporter').filter(
        (e) => e.operation === 'CreatePodIdentityAssociation',
      );
      expect(creates.map((e) => e.input.clientRequestToken)).toEqual([
        back.metadata.uid,
        `${back.metadata.uid}-${id}`,
      ]);
      expect(
        (await env.aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token })).associationId,
      ).toBe(back.status.associationID);
    } finally {
      await ctrl.stop();
    }
  });

  it('preview: the association stays usable, Ready=False PolicyDenied and a Warning say what delete would do', async () => {
    const role = await env.createRole('reporter-pv');
    const { ns, policy } = await governedNamespace('d3-preview', [role]);
    await createServiceAccount(kube, ns, 'reporter');
    let ctrl = await startController(kube, env, testConfig({ probe: false }));
    let id: string;
    let token: string;
    try {
      await createAssociation(kube, ns, 'reporter', { serviceAccount: 'reporter', roleARN: role });
      id = (await waitFor(kube, ns, 'reporter', hasCond('Synced', 'True'), 20_000, 'Synced=True')).status
        .associationID;
      token = await podToken(ns, 'reporter');
      await podToken(ns, 'reporter');
    } finally {
      await ctrl.stop();
    }
    ctrl = await startController(kube, env, testConfig({ probe: false, deniedAssociationAction: 'preview' }));
    try {
      await setRoles(policy, [env.roleArn('someone-else')]);
      const message = `lanyard: no IdentityPolicy allows namespace "${ns}" ServiceAccount "reporter" to use role "${role}"; would remove association ${id} from EKS, not done because --denied-association-action=preview; 2 running Pods of ServiceAccount ${ns}/reporter use it`;
      const denied = await waitFor(
        kube,
        ns,
        'reporter',
        hasCond('Ready', 'False', 'PolicyDenied'),
        20_000,
        'Ready=False PolicyDenied',
      );
      expect(condition(denied, 'Synced')).toMatchObject({ status: 'False', reason: 'PolicyDenied', message });
      expect(denied.status.associationID).toBe(id);
      await warning(ns, 'reporter', 'would remove association');
      // Still there and still usable: preview changes nothing in EKS.
      expect((await env.aws.eks.describe(CLUSTER, id)).roleArn).toBe(role);
      expect(
        (await env.aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token })).associationId,
      ).toBe(id);
      expect(
        eksCallsFor(ns, 'reporter').filter((e) => e.operation === 'DeletePodIdentityAssociation'),
      ).toEqual([]);

      // A new denied association is not created in preview mode either.
      await createServiceAccount(kube, ns, 'newcomer');
      await createAssociation(kube, ns, 'newcomer', { serviceAccount: 'newcomer', roleARN: role });
      const fresh = await waitFor(
        kube,
        ns,
        'newcomer',
        hasCond('Ready', 'False', 'PolicyDenied'),
        20_000,
        'denied',
      );
      expect(condition(fresh, 'Synced')?.message).toBe(
        `lanyard: no IdentityPolicy allows namespace "${ns}" ServiceAccount "newcomer" to use role "${role}"; no association is created in EKS`,
      );
      expect(fresh.metadata.finalizers ?? []).toEqual([]);
      expect(eksCallsFor(ns, 'newcomer')).toEqual([]);
    } finally {
      await ctrl.stop();
    }

    // Switching to delete (the operator reviewed the preview) removes it.
    ctrl = await startController(kube, env, testConfig({ probe: false }));
    try {
      await waitFor(kube, ns, 'reporter', (o) => o.status.removedAssociationID === id, 20_000, 'removed');
      expect((await exchangeError(token)).code).toBe('ResourceNotFoundException');
      expect(eksCallsFor(ns, 'newcomer')).toEqual([]);
    } finally {
      await ctrl.stop();
    }
  });

  it('a denied association is never created, even by a controller that starts before it has read the policies', async () => {
    const role = await env.createRole('admin-d3');
    const { ns } = await governedNamespace('d3-new', [env.roleArn('team-*')]);
    await createServiceAccount(kube, ns, 'admin');
    await createAssociation(kube, ns, 'admin', { serviceAccount: 'admin', roleARN: role });
    // Started after the object exists: its first reconcile races the IdentityPolicy list.
    const ctrl = await startController(kube, env, testConfig({ probe: false }));
    try {
      const denied = await waitFor(
        kube,
        ns,
        'admin',
        hasCond('Synced', 'False', 'PolicyDenied'),
        20_000,
        'denied',
      );
      expect(condition(denied, 'Ready')).toMatchObject({ status: 'False', reason: 'PolicyDenied' });
      expect(condition(denied, 'Synced')?.message).toMatch(/; no association is created in EKS$/);
      await warning(ns, 'admin', 'no association is created in EKS');
      expect(eksCallsFor(ns, 'admin')).toEqual([]);
      expect(await env.aws.eks.list(CLUSTER, { namespace: ns, serviceAccount: 'admin' })).toEqual([]);
    } finally {
      await ctrl.stop();
    }
  });
});
