// The attacker's side of the security tests (docs/security.md §1): a client-certificate user with exactly the rights
// of a namespace user, an IdentityPolicy that allows `sec-allowed-*` roles only, roles in the simulator whose trust
// admits any ServiceAccount of the cluster (the misconfiguration that makes a policy bypass worth something), and the
// ValidatingAdmissionPolicy installed as the chart does, bound to this file's namespaces.
import { randomBytes } from 'node:crypto';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { KubeApiError, createKubeClient } from '../../../src/kube/client.ts';
import { ADMIN_USER } from '../../../src/sandbox/control-plane.ts';
import { identityAdmissionPolicy } from '../../../src/verification/admission-policy.ts';
import { eventually, newNamespace, userKubeconfig } from '../../harness/context.ts';
import {
  GATE,
  createPod,
  gates,
  getPod,
  podEvents,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from '../verification/env.ts';

export { GATE, gates, getPod, podEvents };
export const WI_DIR = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
export const CC_DIR = '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount';
const ADMISSION = '/apis/admissionregistration.k8s.io/v1';
const POLICIES = '/apis/lanyard.dev/v1alpha1/identitypolicies';

export interface SecurityEnv {
  env: VerificationEnv;
  admin: KubeClient;
  runId: string;
  /** A role the policy allows, and one it denies; both trust every ServiceAccount of the cluster. */
  allowedRole: string;
  otherAllowedRole: string;
  deniedRole: string;
  /** A namespace served by the webhook and the admission policy, with the attacker bound in it. */
  namespace(prefix: string): Promise<string>;
  /** A namespace the webhook does not serve (as if it were skipped or down); the admission policy still applies. */
  unservedNamespace(prefix: string): Promise<string>;
  /** The attacker's client (client certificate, exactly the rights of docs/security.md §1 attacker A1). */
  attacker: KubeClient;
  stop(): Promise<void>;
}

/** The namespace user's rights in the threat model, nothing more. */
const ATTACKER_RULES = [
  { apiGroups: [''], resources: ['pods'], verbs: ['create', 'update', 'patch'] },
  { apiGroups: [''], resources: ['pods/ephemeralcontainers'], verbs: ['update', 'patch'] },
  { apiGroups: [''], resources: ['serviceaccounts', 'configmaps'], verbs: ['update'] },
];

export async function startSecurityEnv(seed: number): Promise<SecurityEnv> {
  const env = await startVerificationEnv({ seed });
  const admin = env.admin;
  const runId = randomBytes(4).toString('hex');
  const vapLabel = { 'lanyard-security-test': runId };
  const user = `mallory-${runId}`;
  const attacker = await createKubeClient({ kubeconfig: await userKubeconfig(user, [`team-${runId}`]) });

  const role = async (name: string) =>
    (await env.aws.iam.createRole({ roleName: `${name}-${runId}`, assumeRolePolicyDocument: wiTrust(env) }))
      .arn;
  const [allowedRole, otherAllowedRole, deniedRole] = [
    await role('sec-allowed-a'),
    await role('sec-allowed-b'),
    await role('sec-denied'),
  ];
  const policyName = `security-${runId}`;
  await admin.create(POLICIES, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'IdentityPolicy',
    metadata: { name: policyName },
    spec: {
      rules: [
        {
          namespaceSelector: { matchLabels: vapLabel },
          serviceAccounts: ['*'],
          roles: [`arn:aws:iam::${env.account}:role/sec-allowed-*`],
        },
      ],
    },
  });

  // The chart's policy with this run's name, bound to this run's namespaces; Lanyard runs as the admin user here.
  const vap = identityAdmissionPolicy({
    name: `lanyard-identity-${runId}`,
    releasers: [ADMIN_USER],
    namespaceSelector: { matchLabels: vapLabel },
  });
  await admin.create(`${ADMISSION}/validatingadmissionpolicies`, vap.policy);
  await admin.create(`${ADMISSION}/validatingadmissionpolicybindings`, vap.binding);

  const bindAttacker = async (ns: string) => {
    await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'namespace-user' },
      rules: ATTACKER_RULES,
    });
    await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'namespace-user' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'namespace-user' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
    });
    return ns;
  };
  const sec: SecurityEnv = {
    env,
    admin,
    runId,
    allowedRole,
    otherAllowedRole,
    deniedRole,
    attacker,
    namespace: async (prefix) => bindAttacker(await env.namespace(prefix, vapLabel)),
    unservedNamespace: async (prefix) => bindAttacker(await newNamespace(admin, prefix, vapLabel)),
    async stop() {
      attacker.close();
      await admin
        .delete(`${ADMISSION}/validatingadmissionpolicybindings/${vap.binding.metadata.name}`)
        .catch(() => undefined);
      await admin
        .delete(`${ADMISSION}/validatingadmissionpolicies/${vap.policy.metadata.name}`)
        .catch(() => undefined);
      await admin.delete(`${POLICIES}/${policyName}`).catch(() => undefined);
      await env.stop();
    },
  };
  // Both admission layers pick up new configuration asynchronously: wait until the policy denies a skip-labelled
  // Pod with AWS credentials in a probe namespace, and the guard sees the IdentityPolicy.
  const probe = await sec.unservedNamespace('sec-probe');
  await eventually(
    async () => {
      const e = await refusal(
        createPod(
          admin,
          probe,
          pod(`probe-${Date.now()}`, 'default', {
            labels: { 'eks.amazonaws.com/skip-pod-identity-webhook': 'true' },
            containers: [{ name: 'c', image: 'x', env: [{ name: 'AWS_ROLE_ARN', value: deniedRole }] }],
          }),
        ),
      );
      if (e.status !== 403) throw new Error(`admission policy not in force yet: ${e.status}`);
    },
    30_000,
    200,
  );
  await admin.delete(`/api/v1/namespaces/${probe}`);
  return sec;
}

/** Expects the request to be refused and returns the error. */
export async function refusal(p: Promise<unknown>): Promise<KubeApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KubeApiError) return e;
    throw e;
  }
  throw new Error('expected the request to be refused, but it was accepted');
}

export function tokenVolume(name: string, audience: string, path = 'token'): Json {
  return {
    name,
    projected: { sources: [{ serviceAccountToken: { audience, expirationSeconds: 3600, path } }] },
  };
}

export function wiEnv(role: string, file = `${WI_DIR}/token`): Json[] {
  return [
    { name: 'AWS_ROLE_ARN', value: role },
    { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: file },
  ];
}

/** A Pod body; `automountServiceAccountToken: false` keeps the default token out of the way. */
export function pod(
  name: string,
  sa: string,
  o: {
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    containers?: Json[];
    initContainers?: Json[];
    volumes?: Json[];
  } = {},
): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      ...(o.labels ? { labels: o.labels } : {}),
      ...(o.annotations ? { annotations: o.annotations } : {}),
    },
    spec: {
      serviceAccountName: sa,
      automountServiceAccountToken: false,
      ...(o.initContainers ? { initContainers: o.initContainers } : {}),
      containers: o.containers ?? [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
      ...(o.volumes ? { volumes: o.volumes } : {}),
    },
  };
}

export const container = (name: string, extra: Json = {}): Json => ({
  name,
  image: 'registry.k8s.io/pause:3.10',
  ...extra,
});
