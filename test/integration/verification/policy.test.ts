// IdentityPolicy (docs/verified-start.md#identitypolicy) at admission through the real webhook; the Accepted condition; the
// verifier keeping a Pod gated when a policy lands after admission; `lanyard doctor` warnings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { controlPlane, eventually } from '../../harness/context.ts';
import { KubeApiError } from '../../../src/kube/client.ts';
import { runCli } from '../../../src/cli/run.ts';
import {
  GATE,
  association,
  ccTrust,
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
import { startHoldingProxy, type HoldingProxy } from './holding-proxy.ts';

let env: VerificationEnv;
/** Between the controller and the simulator, so a test can hold an exchange in flight. */
let proxy: HoldingProxy;
const created: string[] = [];
const suffix = randomBytes(3).toString('hex');
const POLICIES = '/apis/lanyard.dev/v1alpha1/identitypolicies';

async function policy(name: string, rules: unknown[]): Promise<string> {
  const full = `${name}-${suffix}`;
  await env.admin.create(POLICIES, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'IdentityPolicy',
    metadata: { name: full },
    spec: { rules },
  });
  created.push(full);
  return full;
}
async function dropPolicies() {
  for (const n of created.splice(0)) await env.admin.delete(`${POLICIES}/${n}`).catch(() => undefined);
}
const refusal = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as KubeApiError;
  }
  throw new Error('expected the create to be refused');
};

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 5, controller: false });
  env.sim.control.configure({ visibility: {} });
  proxy = await startHoldingProxy(env.sim.url);
  await env.startController([`--aws-endpoint-url=${proxy.url}`]);
});
afterAll(async () => {
  await dropPolicies();
  await env?.stop();
  await proxy?.close();
});

describe('association, gate, then a forbidding policy', () => {
  it('injects and gates, then refuses the create under the policy', async () => {
    // eks-auth sees the association only after 10 s, so the association's probe Pod cannot warm the verified set first.
    env.sim.control.configure({ visibility: { eksAuth: [10_000, 10_000] } });
    const ns = await env.namespace('a5', { team: 'b' });
    await env.aws.iam.createRole({ roleName: 'a5', assumeRolePolicyDocument: ccTrust() });
    await serviceAccount(env.admin, ns, 'uploader');
    await association(env.admin, ns, 'uploader', 'uploader', `arn:aws:iam::${env.account}:role/a5`);
    await eventually(async () => {
      if (!env.lookup.forPair(ns, 'uploader')) throw new Error('not cached');
    });
    const pod = await createPod(env.admin, ns, podBody('first', 'uploader'));
    expect(gates(pod)).toContain(GATE);
    expect(JSON.stringify(pod.spec.containers[0].env)).toContain('AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE');
    await policy('a5', [
      {
        namespaceSelector: { matchLabels: { team: 'a' } },
        serviceAccounts: ['*'],
        roles: ['arn:aws:iam::*:role/team-a-*'],
      },
    ]);
    const want = `lanyard: no IdentityPolicy allows namespace "${ns}" ServiceAccount "uploader" to use role "arn:aws:iam::${env.account}:role/a5"`;
    await eventually(async () => {
      const e = await refusal(createPod(env.admin, ns, podBody(`second-${Date.now()}`, 'uploader')));
      expect(e.status).toBe(403);
      expect(e.serverMessage).toContain(want);
    });
    await dropPolicies();
  });
});

describe('IdentityPolicy at admission (webhook side)', () => {
  it('denies a forbidden SA-annotation role with the documented denial message (docs/verified-start.md#identitypolicy), allows it with no policies', async () => {
    const ns = await env.namespace('a8', { team: 'a' });
    await serviceAccount(env.admin, ns, 'sa', {
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/admin',
    });
    const name = await policy('a8', [
      {
        namespaceSelector: { matchLabels: { team: 'a' } },
        serviceAccounts: ['*'],
        roles: ['arn:aws:iam::111122223333:role/team-a-*'],
      },
    ]);
    await eventually(async () => {
      const e = await refusal(createPod(env.admin, ns, podBody(`denied-${Date.now()}`, 'sa')));
      expect(e.serverMessage).toContain(
        `lanyard: no IdentityPolicy allows namespace "${ns}" ServiceAccount "sa" to use role "arn:aws:iam::111122223333:role/admin"`,
      );
    });
    // Accepted condition written by the controller.
    await eventually(async () => {
      const p = await env.admin.get(`${POLICIES}/${name}`);
      expect(p.status.conditions[0]).toMatchObject({
        type: 'Accepted',
        status: 'True',
        reason: 'Accepted',
        observedGeneration: 1,
      });
    });
    // The allowed prefix passes.
    await env.admin.patch(
      `/api/v1/namespaces/${ns}/serviceaccounts/sa`,
      {
        metadata: {
          annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/team-a-writer' },
        },
      },
      'application/merge-patch+json',
    );
    await eventually(async () => {
      await createPod(env.admin, ns, podBody(`allowed-${Date.now()}`, 'sa'));
    });
    await dropPolicies();
    await env.admin.patch(
      `/api/v1/namespaces/${ns}/serviceaccounts/sa`,
      { metadata: { annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/admin' } } },
      'application/merge-patch+json',
    );
    await eventually(async () => {
      await createPod(env.admin, ns, podBody(`nopolicy-${Date.now()}`, 'sa'));
    });
  });

  it('an invalid pattern makes the policy Accepted=False, InvalidPattern, naming the entry', async () => {
    // The CRD's schema refuses the bad role pattern; a bad ServiceAccount pattern passes the schema but not the compiler.
    const name = await policy('bad', [
      { namespaceSelector: {}, serviceAccounts: ['Upper_Case'], roles: ['arn:aws:iam::*:role/*'] },
    ]);
    await eventually(async () => {
      const p = await env.admin.get(`${POLICIES}/${name}`);
      expect(p.status.conditions[0]).toMatchObject({
        type: 'Accepted',
        status: 'False',
        reason: 'InvalidPattern',
      });
      expect(p.status.conditions[0].message).toContain('spec.rules[0].serviceAccounts[0] "Upper_Case"');
    });
    const e = await refusal(
      env.admin.create(POLICIES, {
        apiVersion: 'lanyard.dev/v1alpha1',
        kind: 'IdentityPolicy',
        metadata: { name: `schema-${suffix}` },
        spec: { rules: [{ namespaceSelector: {}, serviceAccounts: ['*'], roles: ['arn:aws:s3:::bucket'] }] },
      }),
    );
    expect(e.status).toBe(422);
    expect(e.serverMessage).toContain('spec.rules[0].roles[0]');
    await dropPolicies();
  });

  it('lanyard doctor warns when no IdentityPolicy exists, and previews denials', async () => {
    const ns = await env.namespace('a8doc', { team: 'z' });
    await serviceAccount(env.admin, ns, 'risky', {
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/admin',
    });
    const r = await runCli(['doctor', '--kubeconfig', controlPlane().adminKubeconfig]);
    expect(r.stdout).toContain(
      'WARN   identitypolicies  no IdentityPolicy exists: any namespace may use any role',
    );
    const p = await runCli(['doctor', '--policy-preview', '--kubeconfig', controlPlane().adminKubeconfig]);
    expect(p.stdout).toContain(
      `serviceaccount ${ns}/risky  would be denied: no IdentityPolicy allows namespace "${ns}" ServiceAccount "risky" to use role "arn:aws:iam::111122223333:role/admin"`,
    );
  });
});

describe('verifier: a policy that lands after admission', () => {
  it('keeps the Pod gated with PolicyDenied and releases it once allowed', async () => {
    // The role stays invisible until the test says so: the Pod cannot be released before the policy lands.
    env.sim.control.configure({ visibility: { 'iam.role': [120_000, 120_000] } });
    const ns = await env.namespace('vpol', { team: 'c' });
    const role = await env.aws.iam.createRole({ roleName: 'vpol', assumeRolePolicyDocument: wiTrust(env) });
    await serviceAccount(env.admin, ns, 'sa', { 'eks.amazonaws.com/role-arn': role.arn });
    const pod = await createPod(env.admin, ns, podBody('app', 'sa'));
    expect(gates(pod)).toContain(GATE);
    const name = await policy('vpol', [
      {
        namespaceSelector: { matchLabels: { team: 'other' } },
        serviceAccounts: ['*'],
        roles: ['arn:aws:iam::*:role/*'],
      },
    ]);
    // The controller has seen the policy once it wrote Accepted; only then may the exchange start to succeed.
    await eventually(async () =>
      expect((await env.admin.get(`${POLICIES}/${name}`)).status?.conditions?.[0]?.status).toBe('True'),
    );
    env.sim.control.makeRoleVisible('vpol');
    await eventually(async () => {
      const ev = await podEvents(env.admin, ns, 'app');
      expect(ev.some((e) => e.reason === 'IdentityNotVerified' && e.note.includes('PolicyDenied'))).toBe(
        true,
      );
    }, 15_000);
    expect(gates(await getPod(env.admin, ns, 'app'))).toContain(GATE);
    await dropPolicies();
    await eventually(
      async () => expect(gates(await getPod(env.admin, ns, 'app'))).not.toContain(GATE),
      10_000,
    );
  });
});

describe('verifier: a policy that lands while an exchange is in flight', () => {
  it('keeps the Pod gated although the exchange it judged before the policy succeeds', async () => {
    env.sim.control.configure({ visibility: {} });
    const ns = await env.namespace('vrace', { team: 'c' });
    const role = await env.aws.iam.createRole({ roleName: 'vrace', assumeRolePolicyDocument: wiTrust(env) });
    await serviceAccount(env.admin, ns, 'sa', { 'eks.amazonaws.com/role-arn': role.arn });
    const exchange = proxy.hold(
      (form) => form.get('Action') === 'AssumeRoleWithWebIdentity' && form.get('RoleArn') === role.arn,
    );
    try {
      const pod = await createPod(env.admin, ns, podBody('app', 'sa'));
      expect(gates(pod)).toContain(GATE);
      // No policy exists yet: the verifier's attempt passed its policy check and its exchange is now held.
      await exchange.arrived;
      const name = await policy('vrace', [
        {
          namespaceSelector: { matchLabels: { team: 'other' } },
          serviceAccounts: ['*'],
          roles: ['arn:aws:iam::*:role/*'],
        },
      ]);
      // Accepted is written from the controller's policy cache: the verifier now sees the denying policy.
      await eventually(async () =>
        expect((await env.admin.get(`${POLICIES}/${name}`)).status?.conditions?.[0]?.status).toBe('True'),
      );
    } finally {
      exchange.release();
    }
    // The held exchange itself succeeds: only the policy can stop the release.
    await eventually(async () =>
      expect(
        env.sim.control
          .log({ operation: 'AssumeRoleWithWebIdentity' })
          .some((e) => e.input.roleArn === role.arn && e.status === 200),
      ).toBe(true),
    );
    // That attempt ends in PolicyDenied; a release would have come first (the attempt's own, or a later one's).
    await eventually(async () => {
      const ev = await podEvents(env.admin, ns, 'app');
      expect(ev.some((e) => e.reason === 'IdentityNotVerified' && e.note.includes('PolicyDenied'))).toBe(
        true,
      );
    }, 15_000);
    expect(gates(await getPod(env.admin, ns, 'app'))).toContain(GATE);
    expect((await podEvents(env.admin, ns, 'app')).map((e) => e.reason)).not.toContain('IdentityVerified');
    await dropPolicies();
    await eventually(
      async () => expect(gates(await getPod(env.admin, ns, 'app'))).not.toContain(GATE),
      10_000,
    );
  });
});
