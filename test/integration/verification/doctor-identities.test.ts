// `lanyard doctor` on identities (docs/verified-start.md, "lanyard doctor"), against real objects: a Pod the verifier
// gave up on at its deadline (annotation `failed`, the AWS error only in an Event), a Pod carrying static AWS keys, an
// association an IdentityPolicy keeps from being Ready, a Pod created before its ServiceAccount's annotation (the
// running-Pod reconciler's `missing`), and a verified Pod that must not be reported.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, eventually } from '../../harness/context.ts';
import { runCli } from '../../../src/cli/run.ts';
import {
  association,
  createPod,
  getPod,
  podBody,
  serviceAccount,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from './env.ts';

let env: VerificationEnv;
let ns: string;
const POLICY = `doctor-${randomBytes(3).toString('hex')}`;
const POLICIES = '/apis/lanyard.dev/v1alpha1/identitypolicies';
const kubeconfig = () => ({ KUBECONFIG: controlPlane().adminKubeconfig });

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 922 });
  env.sim.control.configure({ visibility: {} });
  // A project (so `doctor -p` scopes to it), served by this file's webhook.
  ns = `doc-${randomBytes(3).toString('hex')}`;
  const made = await runCli(['create', 'project', ns], { env: kubeconfig() });
  expect(made.exitCode, made.stderr).toBe(0);
  await env.admin.patch(
    `/api/v1/namespaces/${ns}`,
    { metadata: { labels: env.label } },
    'application/merge-patch+json',
  );
  await env.admin.create(POLICIES, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'IdentityPolicy',
    metadata: { name: POLICY },
    spec: {
      rules: [
        {
          namespaceSelector: { matchLabels: env.label },
          serviceAccounts: ['*'],
          roles: ['arn:aws:iam::*:role/doctor-*'],
        },
      ],
    },
  });
});
afterAll(async () => {
  await env?.admin.delete(`${POLICIES}/${POLICY}`).catch(() => undefined);
  await env?.stop();
});

describe('lanyard doctor: identities', () => {
  let out: { exitCode: number; stdout: string; stderr: string };

  beforeAll(async () => {
    // Verified and released: must not be reported.
    const good = await env.aws.iam.createRole({
      roleName: 'doctor-good',
      assumeRolePolicyDocument: wiTrust(env),
    });
    await serviceAccount(env.admin, ns, 'good', { 'eks.amazonaws.com/role-arn': good.arn });
    await eventually(() => createPod(env.admin, ns, podBody('fine', 'good')), 15_000, 200);
    // Allowed by the policy, but its trust policy names another ServiceAccount: AccessDenied until the deadline (10 s).
    const wrong = await env.aws.iam.createRole({
      roleName: 'doctor-wrong-trust',
      assumeRolePolicyDocument: wiTrust(env, `system:serviceaccount:${ns}:someone-else`),
    });
    await serviceAccount(env.admin, ns, 'held', { 'eks.amazonaws.com/role-arn': wrong.arn });
    await createPod(env.admin, ns, podBody('held', 'held'));
    // Static keys, a literal and a Secret reference, in a Pod with no identity.
    await serviceAccount(env.admin, ns, 'plain');
    await createPod(env.admin, ns, {
      ...podBody('keys', 'plain'),
      spec: {
        ...podBody('keys', 'plain').spec,
        containers: [
          {
            name: 'app',
            image: 'registry.k8s.io/pause:3.10',
            env: [
              { name: 'AWS_ACCESS_KEY_ID', value: 'AKIAIOSFODNN7EXAMPLE' },
              {
                name: 'AWS_SECRET_ACCESS_KEY',
                valueFrom: { secretKeyRef: { name: 'aws-keys', key: 'secret' } },
              },
            ],
          },
        ],
      },
    });
    // Created before its ServiceAccount declared a role: the running-Pod reconciler's `missing` (it runs as the node).
    await serviceAccount(env.admin, ns, 'late');
    await createPod(env.admin, ns, podBody('early', 'late'));
    await env.admin.patch(
      `/api/v1/namespaces/${ns}/serviceaccounts/late`,
      { metadata: { annotations: { 'eks.amazonaws.com/role-arn': good.arn } } },
      'application/merge-patch+json',
    );
    // An association for a role the policy does not allow: Synced=False PolicyDenied, so never Ready.
    await serviceAccount(env.admin, ns, 'nobody');
    await association(env.admin, ns, 'forbidden', 'nobody', `arn:aws:iam::${env.account}:role/admin`);

    await eventually(
      async () => {
        const held = await getPod(env.admin, ns, 'held');
        if (held.metadata.annotations?.['lanyard.dev/identity-verification'] !== 'failed')
          throw new Error('not failed yet');
        const fine = await getPod(env.admin, ns, 'fine');
        if (fine.metadata.annotations?.['lanyard.dev/identity-verification'] !== 'verified')
          throw new Error('not verified yet');
        const a = await env.admin.get(
          `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations/forbidden`,
        );
        if (
          !a.status?.conditions?.some(
            (c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'False',
          )
        )
          throw new Error('association not judged yet');
      },
      45_000,
      500,
    );
    out = await runCli(['doctor', '-p', ns], { env: kubeconfig() });
  }, 90_000);

  it("reports the Pod failed at the gate as an error with the verifier's AWS error and a fix for it", () => {
    expect(out.stdout).toMatch(
      new RegExp(
        `^ERROR  pod ${ns}/held  held at the lanyard\\.dev/identity gate for \\d+s: identity not verified within the deadline \\(still retrying\\); ` +
          `last attempt: WebIdentity exchange for role arn:aws:iam::\\d{12}:role/doctor-wrong-trust failed: AccessDenied: `,
        'm',
      ),
    );
    expect(out.stdout).toMatch(/^ {7}fix: the role's trust policy does not admit this ServiceAccount: /m);
  });

  it('reports the static keys with their container and Secret, never their values', () => {
    expect(out.stdout).toContain(
      `WARN   pod ${ns}/keys  container "app" sets AWS_ACCESS_KEY_ID (a literal value) and AWS_SECRET_ACCESS_KEY (from Secret "aws-keys" key "secret"): ` +
        'static AWS keys, which are no identity obtained through the cluster',
    );
    expect(out.stdout + out.stderr).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });

  it('reports the association that is not Ready, naming the failing condition', () => {
    expect(out.stdout).toMatch(
      new RegExp(
        `^ERROR  podidentityassociation ${ns}/forbidden  not Ready: Synced=False PolicyDenied: `,
        'm',
      ),
    );
  });

  it('reports the Pod the running-Pod reconciler finds missing its identity (created before the annotation)', () => {
    expect(out.stdout).toMatch(
      new RegExp(
        `^ERROR  pod ${ns}/early  identity missing: ServiceAccount ${ns}/late declares WebIdentity arn:aws:iam::\\d{12}:role/doctor-good `,
        'm',
      ),
    );
  });

  it('leaves the verified Pod out and exits 7 for the errors', () => {
    expect(out.stdout).not.toContain(`pod ${ns}/fine`);
    expect(out.stdout).toMatch(/^3 errors, 1 warning$/m);
    expect(out.exitCode).toBe(7);
  });
});
