// The ReDoS attack of a namespace user, with their own credentials, against the real webhook, verifier and
// simulator: a 100 KB role ARN in a ServiceAccount annotation or a container's env, under a policy whose pattern
// made a backtracking matcher cubic. Admission in another namespace must not slow down or fail, and the long ARN is
// refused with a message naming the object, field and rule, never echoed in full.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { eventually, userKubeconfig } from '../../harness/context.ts';
import { createKubeClient, KubeApiError, type KubeClient } from '../../../src/kube/client.ts';
import {
  GATE,
  createPod,
  gates,
  getPod,
  podBody,
  podEvents,
  serviceAccount,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from './env.ts';

let env: VerificationEnv;
let attacker: KubeClient;
let attackerNs: string;
let victimNs: string;
const suffix = randomBytes(3).toString('hex');
const POLICY = `hostile-${suffix}`;
const POLICIES = '/apis/lanyard.dev/v1alpha1/identitypolicies';
/** The value of the report, grown to 100 KB: `arn:aws:iam::` then `:role/-` repeated, then `x`. */
const HOSTILE = `arn:aws:iam::${':role/-'.repeat(14_300)}x`;
const hostileEcho = HOSTILE.slice(0, 1_000);

async function refusal(p: Promise<unknown>): Promise<KubeApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KubeApiError) return e;
    throw e;
  }
  throw new Error('expected the request to be refused');
}

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 17 });
  attackerNs = await env.namespace('attacker');
  victimNs = await env.namespace('victim');
  // Exactly the rights of the threat model, in the attacker's namespace only.
  await env.admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${attackerNs}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'tenant' },
    rules: [
      {
        apiGroups: [''],
        resources: ['pods', 'pods/ephemeralcontainers'],
        verbs: ['get', 'create', 'update', 'patch'],
      },
      { apiGroups: [''], resources: ['serviceaccounts', 'configmaps'], verbs: ['get', 'update'] },
    ],
  });
  const user = `tenant-${suffix}`;
  await env.admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${attackerNs}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'tenant' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tenant' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
  });
  attacker = await createKubeClient({ kubeconfig: await userKubeconfig(user) });
  await serviceAccount(env.admin, attackerNs, 'evil');
  // The pattern that is cubic for a backtracking engine against HOSTILE.
  await env.admin.create(POLICIES, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'IdentityPolicy',
    metadata: { name: POLICY },
    spec: {
      rules: [{ namespaceSelector: {}, serviceAccounts: ['*'], roles: ['arn:aws:iam::*:role/*-*-reader'] }],
    },
  });
  await eventually(async () =>
    expect((await env.admin.get(`${POLICIES}/${POLICY}`)).status?.conditions?.[0]?.status).toBe('True'),
  );
});

afterAll(async () => {
  await env?.admin.delete(`${POLICIES}/${POLICY}`).catch(() => undefined);
  attacker?.close();
  await env?.stop();
});

describe('a 100 KB role ARN from a namespace user', () => {
  it('is refused at admission naming the annotation, while admission in another namespace carries on', async () => {
    const role = await env.aws.iam.createRole({
      roleName: 'app-x-reader',
      assumeRolePolicyDocument: wiTrust(env),
    });
    await serviceAccount(env.admin, victimNs, 'app', { 'eks.amazonaws.com/role-arn': role.arn });
    // The webhook has the victim's ServiceAccount once it injects its role.
    await eventually(async () =>
      expect(
        JSON.stringify(
          (await createPod(env.admin, victimNs, podBody(`warm-${Date.now()}`, 'app'))).spec.containers[0].env,
        ),
      ).toContain(role.arn),
    );
    // The attacker sets the annotation with their own update right.
    const sa = await attacker.get(`/api/v1/namespaces/${attackerNs}/serviceaccounts/evil`);
    sa.metadata.annotations = { 'eks.amazonaws.com/role-arn': HOSTILE };
    await attacker.update(`/api/v1/namespaces/${attackerNs}/serviceaccounts/evil`, sa);
    // The webhook has seen the annotation once it refuses a Pod of that ServiceAccount for it.
    const first = await eventually(async () => {
      const e = await refusal(
        attacker.create(`/api/v1/namespaces/${attackerNs}/pods`, podBody(`evil-${Date.now()}`, 'evil')),
      );
      expect(e.serverMessage).toContain(
        `ServiceAccount "${attackerNs}/evil" annotation eks.amazonaws.com/role-arn`,
      );
      return e;
    }, 15_000);
    expect(first.status).toBe(400);
    expect(first.serverMessage).toContain(`is ${HOSTILE.length} characters; an IAM role ARN has at most`);
    expect(first.serverMessage).toContain('more characters]');
    expect(first.serverMessage.length).toBeLessThan(1_000);

    // The attack: the attacker keeps creating Pods while another namespace's Pods are admitted.
    let attacking = true;
    const attacks: Promise<KubeApiError>[] = [];
    const attackLoop = (async () => {
      for (let i = 0; attacking && i < 200; i++) {
        const batch = Array.from({ length: 4 }, (_, j) =>
          refusal(
            attacker.create(`/api/v1/namespaces/${attackerNs}/pods`, podBody(`evil-${i}-${j}`, 'evil')),
          ),
        );
        attacks.push(...batch);
        await Promise.all(batch);
      }
    })();
    const victimMs: number[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const started = performance.now();
        const pod = await createPod(env.admin, victimNs, podBody(`app-${i}`, 'app'));
        victimMs.push(performance.now() - started);
        // Admitted and injected (gated, or ungated once the verifier has proven the role).
        expect(JSON.stringify(pod.spec.containers[0].env)).toContain(role.arn);
      }
    } finally {
      attacking = false;
      await attackLoop;
    }
    const refused = await Promise.all(attacks);
    expect(refused.length).toBeGreaterThan(0);
    for (const e of refused) expect(e.status).toBe(400);
    victimMs.sort((a, b) => a - b);
    // Measured, not asserted: the figures go to the report.
    process.stdout.write(
      `[hostile-arn] victim admission under attack (${refused.length} hostile creates): ` +
        `median ${victimMs[5]!.toFixed(1)} ms, max ${victimMs[9]!.toFixed(1)} ms\n`,
    );
    // The victim's Pods are still proven and released by the verifier.
    await eventually(
      async () => expect(gates(await getPod(env.admin, victimNs, 'app-9'))).not.toContain(GATE),
      20_000,
    );
    expect(env.logs.lines.some((l) => l.includes(hostileEcho))).toBe(false);
  });

  it('in a container env holds the Pod with a bounded Event and does not stall the verifier', async () => {
    // A Pod written by hand with the gate, the hostile role and a projected STS token: the webhook has no
    // identity to give it, so only the verifier judges it.
    const body = podBody('evil-env', 'default', { gates: [GATE] });
    body.spec.volumes = [
      {
        name: 'aws-iam-token',
        projected: {
          sources: [
            {
              serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 3600, path: 'token' },
            },
          ],
        },
      },
    ];
    body.spec.containers[0].env = [
      { name: 'AWS_ROLE_ARN', value: HOSTILE },
      {
        name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
        value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
      },
    ];
    body.spec.containers[0].volumeMounts = [
      { name: 'aws-iam-token', mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount' },
    ];
    const created = await attacker
      .create(`/api/v1/namespaces/${attackerNs}/pods`, body)
      .catch((e: unknown) => e);
    if (created instanceof KubeApiError) {
      // Refused at admission (the guard judges hand-set roles): bounded and naming the rule.
      expect(created.serverMessage).toContain('an IAM role ARN has at most');
      expect(created.serverMessage.length).toBeLessThan(1_000);
    } else {
      await eventually(async () => {
        const ev = await podEvents(env.admin, attackerNs, 'evil-env');
        const held = ev.find((e) => e.reason === 'IdentityNotVerified');
        expect(held?.note).toContain('env AWS_ROLE_ARN');
        expect(held?.note).toContain('an IAM role ARN has at most');
        expect(held!.note.length).toBeLessThan(1_000);
      }, 15_000);
      expect(gates(await getPod(env.admin, attackerNs, 'evil-env'))).toContain(GATE);
    }
    // Meanwhile a Pod of another namespace, of an identity not yet verified, is proven and released as usual.
    const role = await env.aws.iam.createRole({
      roleName: 'other-x-reader',
      assumeRolePolicyDocument: wiTrust(env),
    });
    await serviceAccount(env.admin, victimNs, 'other', { 'eks.amazonaws.com/role-arn': role.arn });
    const started = performance.now();
    await eventually(async () =>
      expect(
        gates(await createPod(env.admin, victimNs, podBody(`app-after-${Date.now()}`, 'other'))),
      ).toContain(GATE),
    );
    await eventually(async () => {
      const pods = await env.admin.get(`/api/v1/namespaces/${victimNs}/pods`);
      const after = pods.items.filter((p: { metadata: { name: string } }) =>
        p.metadata.name.startsWith('app-after-'),
      );
      expect(after.length).toBeGreaterThan(0);
      for (const p of after) expect(gates(p)).not.toContain(GATE);
    }, 20_000);
    process.stdout.write(
      `[hostile-arn] victim Pod admitted and released in ${(performance.now() - started).toFixed(0)} ms with the hostile Pod present\n`,
    );
    expect(env.logs.lines.some((l) => l.includes(hostileEcho))).toBe(false);
  });
});
