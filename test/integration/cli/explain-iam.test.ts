// `lanyard explain`, `lanyard iam trust-policy|check` and `lanyard create identity` (docs/explain-and-iam.md), run as
// the shipped binary against the real API server, Lanyard's webhook and controller, and the AWS simulator (IAM, STS,
// eks-auth) reached with AWS credentials from the environment (the SDK's default chain) and --aws-endpoint-url.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, eventually } from '../../harness/context.ts';
import {
  createPod,
  getPod,
  podBody,
  podEvents,
  serviceAccount,
  startVerificationEnv,
  ccTrust,
  association,
  GATE,
  gates,
  type VerificationEnv,
} from '../verification/env.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
let env: VerificationEnv;
let home: string;

function lanyard(argv: string[], extraEnv: Record<string, string> = {}) {
  const creds = env.sim.control.adminCredentials;
  return new Promise<{ stdout: string; stderr: string; exitCode: number }>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'lanyard.js'), ...argv], {
      // Only what a user's shell would give: kubeconfig, AWS credentials for the SDK's default chain, a region.
      env: {
        PATH: process.env.PATH ?? '',
        HOME: home,
        KUBECONFIG: controlPlane().adminKubeconfig,
        AWS_ACCESS_KEY_ID: creds.accessKeyId,
        AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
        AWS_REGION: 'us-west-2',
        AWS_EC2_METADATA_DISABLED: 'true',
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      // LANYARD_EXPLAIN_DOCS=FILE records every run, for the real output shown in docs/explain-and-iam.md.
      if (process.env.LANYARD_EXPLAIN_DOCS)
        fs.appendFileSync(
          process.env.LANYARD_EXPLAIN_DOCS,
          `$ lanyard ${argv.join(' ')}\n${stdout}${stderr}[exit ${code}]\n\n`,
        );
      resolve({ stdout, stderr, exitCode: code ?? -1 });
    });
  });
}
const aws = () => ['--aws-endpoint-url', env.sim.url];
const role = (name: string) => `arn:aws:iam::${env.account}:role/${name}`;
const sub = (ns: string, sa: string) => `system:serviceaccount:${ns}:${sa}`;
/** A web-identity trust policy with one field changed. */
function wiTrustWith(o: { provider?: string; sub?: string; aud?: string }) {
  const key = o.provider ?? env.issuerKey;
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: `arn:aws:iam::${env.account}:oidc-provider/${key}` },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringEquals: { [`${key}:sub`]: o.sub ?? 'x', [`${key}:aud`]: o.aud ?? 'sts.amazonaws.com' },
        },
      },
    ],
  });
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-explain-'));
  env = await startVerificationEnv({ seed: 913 });
  env.sim.control.configure({ visibility: {} });
});
afterAll(async () => {
  await env?.stop();
  fs.rmSync(home, { recursive: true, force: true });
});

describe('lanyard iam trust-policy', () => {
  it("prints the IRSA trust policy from the API server's issuer discovery: provider, sub system:serviceaccount:NS:SA, aud", async () => {
    const r = await lanyard(['iam', 'trust-policy', '--service-account', 'team-a/uploader', ...aws()]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Federated: `arn:aws:iam::${env.account}:oidc-provider/${env.issuerKey}` },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: {
            StringEquals: {
              [`${env.issuerKey}:sub`]: 'system:serviceaccount:team-a:uploader',
              [`${env.issuerKey}:aud`]: 'sts.amazonaws.com',
            },
          },
        },
      ],
    });
    const aud = await lanyard([
      'iam',
      'trust-policy',
      '--service-account',
      'team-a/uploader',
      '--audience',
      'vault',
      '--account',
      '111122223333',
    ]);
    expect(JSON.parse(aud.stdout).Statement[0].Condition.StringEquals[`${env.issuerKey}:aud`]).toBe('vault');
    expect(JSON.parse(aud.stdout).Statement[0].Principal.Federated).toBe(
      `arn:aws:iam::111122223333:oidc-provider/${env.issuerKey}`,
    );
  });

  it('prints the Pod Identity trust policy, and refuses a malformed --service-account before any request (exit 2)', async () => {
    const r = await lanyard(
      ['iam', 'trust-policy', '--service-account', 'team-a/uploader', '--mode', 'pod-identity'],
      { KUBECONFIG: '/nonexistent' },
    );
    expect(JSON.parse(r.stdout)).toEqual(JSON.parse(ccTrust()));
    const bad = await lanyard(['iam', 'trust-policy', '--service-account', 'uploader'], {
      KUBECONFIG: '/nonexistent',
    });
    expect(bad).toMatchObject({
      exitCode: 2,
      stderr:
        'error: --service-account must be NAMESPACE/SERVICEACCOUNT, e.g. team-a/uploader (got "uploader")\n',
    });
  });

  it("the printed policy is one the simulator's STS accepts for a real Pod token", async () => {
    const ns = await env.namespace('tp');
    await serviceAccount(env.admin, ns, 'app');
    const doc = (await lanyard(['iam', 'trust-policy', '--service-account', `${ns}/app`, ...aws()])).stdout;
    await env.aws.iam.createRole({ roleName: `tp-${ns}`.slice(0, 64), assumeRolePolicyDocument: doc });
    await env.admin.patch(
      `/api/v1/namespaces/${ns}/serviceaccounts/app`,
      { metadata: { annotations: { 'eks.amazonaws.com/role-arn': role(`tp-${ns}`.slice(0, 64)) } } },
      'application/merge-patch+json',
    );
    await createPod(env.admin, ns, podBody('app', 'app'));
    await eventually(
      async () => expect(gates(await getPod(env.admin, ns, 'app'))).not.toContain(GATE),
      15_000,
      200,
    );
  });
});

describe('lanyard iam check names the mismatching field', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await env.namespace('check');
    await serviceAccount(env.admin, ns, 'app');
    await env.aws.iam.createRole({
      roleName: `ok-${ns}`.slice(0, 64),
      assumeRolePolicyDocument: wiTrustWith({ sub: sub(ns, 'app') }),
    });
    await env.aws.iam.createRole({
      roleName: `prov-${ns}`.slice(0, 64),
      assumeRolePolicyDocument: wiTrustWith({
        provider: 'oidc.eks.eu-west-1.amazonaws.com/id/OTHER',
        sub: sub(ns, 'app'),
      }),
    });
    await env.aws.iam.createRole({
      roleName: `sub-${ns}`.slice(0, 64),
      assumeRolePolicyDocument: wiTrustWith({ sub: sub(ns, 'other') }),
    });
    await env.aws.iam.createRole({
      roleName: `aud-${ns}`.slice(0, 64),
      assumeRolePolicyDocument: wiTrustWith({ sub: sub(ns, 'app'), aud: 'vault' }),
    });
    await env.aws.iam.createRole({
      roleName: `svc-${ns}`.slice(0, 64),
      assumeRolePolicyDocument: JSON.stringify({
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'ec2.amazonaws.com' },
            Action: ['sts:AssumeRole', 'sts:TagSession'],
          },
        ],
      }),
    });
  });

  it('yes for the right trust policy (exit 0)', async () => {
    const r = await lanyard([
      'iam',
      'check',
      role(`ok-${ns}`.slice(0, 64)),
      '--service-account',
      `${ns}/app`,
      ...aws(),
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^yes: Pods of ${ns}/app can assume .*ok-`));
  });

  it.each([
    [
      'prov',
      'provider',
      /provider: Statement\[0\] trusts Federated .*id\/OTHER", but the token comes from the cluster's provider/,
    ],
    [
      'sub',
      'sub',
      /sub: Statement\[0\] requires .*:sub = "system:serviceaccount:.*:other", the token presents "system:serviceaccount:.*:app"/,
    ],
    ['aud', 'aud', /aud: Statement\[0\] requires .*:aud = "vault", the token presents "sts.amazonaws.com"/],
  ])('wrong %s: names "%s" only (exit 1)', async (prefix, field, text) => {
    const r = await lanyard([
      'iam',
      'check',
      role(`${prefix}-${ns}`.slice(0, 64)),
      '--service-account',
      `${ns}/app`,
      ...aws(),
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^no: Pods of .* cannot assume/);
    expect(r.stdout).toMatch(text);
    const fields = r.stdout
      .split('\n')
      .filter((l) => /^ {2}\w/.test(l))
      .map((l) => l.trim().split(':')[0]);
    expect(fields).toEqual([field]);
    // -o json carries the same field for scripts.
    const j = JSON.parse(
      (
        await lanyard([
          'iam',
          'check',
          role(`${prefix}-${ns}`.slice(0, 64)),
          '--service-account',
          `${ns}/app`,
          '-o',
          'json',
          ...aws(),
        ])
      ).stdout,
    );
    expect(j.comparison.mismatches.map((m: { field: string }) => m.field)).toEqual([field]);
  });

  it('Pod Identity: a wrong service principal is named "principal"; a missing role is said so', async () => {
    const r = await lanyard([
      'iam',
      'check',
      role(`svc-${ns}`.slice(0, 64)),
      '--service-account',
      `${ns}/app`,
      '--mode',
      'pod-identity',
      ...aws(),
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(
      /principal: Statement\[0\] trusts Service "ec2.amazonaws.com"; EKS Pod Identity needs Service "pods.eks.amazonaws.com"/,
    );
    const missing = await lanyard([
      'iam',
      'check',
      role('does-not-exist'),
      '--service-account',
      `${ns}/app`,
      ...aws(),
    ]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stdout).toMatch(/document: the role does not exist in IAM \(NoSuchEntity/);
  });

  it('without AWS credentials says IAM is not readable instead of guessing (exit 1)', async () => {
    const r = await lanyard(
      ['iam', 'check', role(`ok-${ns}`.slice(0, 64)), '--service-account', `${ns}/app`, ...aws()],
      { AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG1', AWS_SECRET_ACCESS_KEY: 'x'.repeat(40) },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^unknown: IAM is not readable with your AWS credentials: \w+/);
    expect(r.stdout + r.stderr).not.toContain('x'.repeat(40));
  });
});

describe('lanyard explain', () => {
  it("a Pod held at the gate by a wrong `sub`: the chain, the verifier's AWS error with its meaning, the trust field, a fix", async () => {
    const ns = await env.namespace('explain');
    const name = `sub-${ns}`.slice(0, 64);
    await env.aws.iam.createRole({
      roleName: name,
      assumeRolePolicyDocument: wiTrustWith({ sub: sub(ns, 'someone-else') }),
    });
    await serviceAccount(env.admin, ns, 'app', { 'eks.amazonaws.com/role-arn': role(name) });
    await createPod(env.admin, ns, podBody('web', 'app'));
    await eventually(
      async () => {
        expect((await podEvents(env.admin, ns, 'web')).some((e) => e.reason === 'IdentityNotVerified')).toBe(
          true,
        );
      },
      15_000,
      200,
    );
    const r = await lanyard(['explain', 'pod', 'web', '-n', ns, ...aws()]);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(`Pod ${ns}/web (ServiceAccount app)`);
    expect(r.stdout).toMatch(
      new RegExp(
        `3\\. ServiceAccount ${ns}/app annotation eks.amazonaws.com/role-arn: role ${role(name)}  \\[WON\\]`,
      ),
    );
    expect(r.stdout).toMatch(/1\. PodIdentityAssociation for .*: none  \[-\]/);
    expect(r.stdout).toContain('IdentityPolicy: no policies');
    expect(r.stdout).toContain('Gate: held (lanyard.dev/identity in spec.schedulingGates)');
    expect(r.stdout).toMatch(
      /Last verifier attempt \(.*ago\): Warning IdentityNotVerified: WebIdentity exchange for role .* failed: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity/,
    );
    expect(r.stdout).toMatch(/meaning: STS refused the role's trust policy for this token/);
    expect(r.stdout).toMatch(
      new RegExp(
        `sub: Statement\\[0\\] requires .*:sub = "${sub(ns, 'someone-else')}", the token presents "${sub(ns, 'app')}"`,
      ),
    );
    expect(r.stdout).toMatch(
      /Fix:\n {2}- fix the trust policy of .* \(sub is wrong\): `lanyard iam trust-policy --service-account/,
    );
    // No token or credential in the output.
    expect(r.stdout).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./);
    // --no-aws: the same chain, no IAM read.
    const offline = await lanyard(['explain', 'pod', 'web', '-n', ns, '--no-aws']);
    expect(offline.stdout).toContain(`Trust policy of ${role(name)}: not checked (--no-aws)`);
    expect(offline.stdout).not.toContain('sub: Statement');
  });

  it('a ServiceAccount with both an association and an annotation: the association wins, the annotation is shadowed (-o json)', async () => {
    const ns = await env.namespace('explainsa');
    const cc = `cc-${ns}`.slice(0, 64);
    await env.aws.iam.createRole({ roleName: cc, assumeRolePolicyDocument: ccTrust() });
    await serviceAccount(env.admin, ns, 'app', { 'eks.amazonaws.com/role-arn': role('ignored') });
    await association(env.admin, ns, 'app', 'app', role(cc));
    const r = await lanyard(['explain', 'sa', 'app', '-n', ns, '-o', 'json', ...aws()]);
    expect(r.exitCode).toBe(0);
    const e = JSON.parse(r.stdout);
    expect(e.sources.map((s: { rank: number; outcome: string }) => [s.rank, s.outcome])).toEqual([
      [1, 'won'],
      [2, 'unknown'],
      [3, 'shadowed'],
      [4, 'empty'],
      [5, 'empty'],
    ]);
    expect(e.sources[2].why).toBe('an association gives container credentials, which win');
    expect(e.declared).toMatchObject({
      mode: 'ContainerCredentials',
      roleARN: role(cc),
      audience: 'pods.eks.amazonaws.com',
    });
    expect(e.trust).toMatchObject({ checked: true, comparison: { allowed: true, mismatches: [] } });
    // The owning association's conditions, once the controller synced it.
    await eventually(
      async () => {
        const text = await lanyard(['explain', 'sa', 'app', '-n', ns, '--no-aws']);
        expect(text.stdout).toMatch(new RegExp(`PodIdentityAssociation ${ns}/app: Synced=True \\(InSync\\)`));
      },
      20_000,
      500,
    );
  });

  it('the kOps ConfigMap: a wildcard entry wins when nothing else declares a role', async () => {
    const ns = await env.namespace('explaincm');
    const sys = await env.namespace('explainsys');
    await serviceAccount(env.admin, ns, 'metrics');
    await env.admin.create(`/api/v1/namespaces/${sys}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'pod-identity-webhook' },
      data: {
        config: JSON.stringify({
          '*/metrics': { RoleARN: role('metrics-reader'), Audience: 'sts.amazonaws.com' },
        }),
      },
    });
    const r = await lanyard([
      'explain',
      'serviceaccount',
      'metrics',
      '-n',
      ns,
      '--system-namespace',
      sys,
      '--no-aws',
    ]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(
      `4. ConfigMap ${sys}/pod-identity-webhook entry "${ns}/metrics": no entry  [-]`,
    );
    expect(r.stdout).toContain(
      `5. ConfigMap ${sys}/pod-identity-webhook entry "*/metrics": role ${role('metrics-reader')}  [WON]`,
    );
    expect(r.stdout).toContain(
      `Declared identity: WebIdentity role ${role('metrics-reader')}, token audience "sts.amazonaws.com"`,
    );
  });

  it('a Pod created before its ServiceAccount was annotated is MISSING its identity, and names the IdentityPolicy rule', async () => {
    const ns = await env.namespace('explainmiss', { team: 'explain' });
    await serviceAccount(env.admin, ns, 'late');
    await createPod(env.admin, ns, podBody('early', 'late'));
    await env.admin.patch(
      `/api/v1/namespaces/${ns}/serviceaccounts/late`,
      { metadata: { annotations: { 'eks.amazonaws.com/role-arn': role('late') } } },
      'application/merge-patch+json',
    );
    const policy = `explain-${ns}`.slice(0, 63);
    await env.admin.create('/apis/lanyard.dev/v1alpha1/identitypolicies', {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'IdentityPolicy',
      metadata: { name: policy },
      spec: {
        rules: [
          {
            namespaceSelector: { matchLabels: { team: 'nobody' } },
            serviceAccounts: ['*'],
            roles: ['arn:aws:iam::*:role/*'],
          },
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
            serviceAccounts: ['late'],
            roles: [role('*')],
          },
        ],
      },
    });
    try {
      const r = await lanyard(['explain', 'pod', 'early', '-n', ns, '--no-aws']);
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toContain('Pod spec: no AWS identity injected');
      expect(r.stdout).toContain('MISSING: the Pod has no identity although one is declared now');
      expect(r.stdout).toContain(`IdentityPolicy: allowed (IdentityPolicy ${policy} spec.rules[1])`);
      expect(r.stdout).toMatch(/- the Pod was created before its identity was declared/);
    } finally {
      await env.admin.delete(`/apis/lanyard.dev/v1alpha1/identitypolicies/${policy}`);
    }
  });

  it('an unknown Pod is exit 3', async () => {
    const r = await lanyard(['explain', 'pod', 'ghost', '-n', 'default', '--no-aws']);
    expect(r).toMatchObject({ exitCode: 3, stderr: 'error: pod "ghost" not found in namespace "default"\n' });
  });
});

describe('lanyard create identity', () => {
  it("an IdentityPolicy that forbids the role: bind works, verify reports the webhook's refusal (exit 5), explain names the denial", async () => {
    const ns = await env.namespace('createdeny');
    const policy = `deny-${ns}`.slice(0, 63);
    await env.admin.create('/apis/lanyard.dev/v1alpha1/identitypolicies', {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'IdentityPolicy',
      metadata: { name: policy },
      spec: {
        rules: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
            serviceAccounts: ['app'],
            roles: [role('allowed-*')],
          },
        ],
      },
    });
    try {
      const r = await lanyard([
        'create',
        'identity',
        `${ns}/app`,
        '--role',
        role('admin'),
        '--phase',
        'bind,verify',
        '--timeout',
        '10s',
      ]);
      expect(r.exitCode).toBe(5);
      expect(r.stdout).toContain(
        `[bind] serviceaccount ${ns}/app annotated eks.amazonaws.com/role-arn: ${role('admin')}`,
      );
      expect(r.stderr).toContain(
        `error: [verify] the webhook refused a Pod of ${ns}/app: lanyard: no IdentityPolicy allows namespace "${ns}" ServiceAccount "app" to use role "${role('admin')}"`,
      );
      const e = await lanyard(['explain', 'sa', 'app', '-n', ns, '--no-aws']);
      expect(e.stdout).toContain(
        `IdentityPolicy: denied\n  lanyard: no IdentityPolicy allows namespace "${ns}"`,
      );
      expect(e.stdout).toMatch(/- add an IdentityPolicy rule selecting namespace/);
    } finally {
      await env.admin.delete(`/apis/lanyard.dev/v1alpha1/identitypolicies/${policy}`);
    }
  });

  it('IRSA: role created → annotation → verified; a re-run changes nothing and is verified again', async () => {
    const ns = await env.namespace('create');
    const arn = role(`created-${ns}`.slice(0, 64));
    const first = await lanyard([
      'create',
      'identity',
      `${ns}/uploader`,
      '--role',
      arn,
      '--create-role',
      '--timeout',
      '30s',
      ...aws(),
    ]);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stdout.split('\n').filter(Boolean)).toEqual([
      `[role] role ${arn} created with a trust policy for ${ns}/uploader (irsa)`,
      `[bind] serviceaccount ${ns}/uploader created`,
      `[bind] serviceaccount ${ns}/uploader annotated eks.amazonaws.com/role-arn: ${arn}`,
      expect.stringMatching(
        new RegExp(
          `^\\[verify\\] verified: the verifier exchanged a token bound to Pod lanyard-identity-check-\\w+ of ${ns}/uploader for ${arn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
        ),
      ),
    ]);
    expect(first.stderr).toMatch(/\[verify\] waiting up to 30s for the verifier/);
    // The trust policy it wrote is the one `iam trust-policy` prints.
    const created = await env.aws.iam.getRole(`created-${ns}`.slice(0, 64));
    expect(JSON.parse(created.assumeRolePolicyDocument)).toEqual(
      JSON.parse(
        (await lanyard(['iam', 'trust-policy', '--service-account', `${ns}/uploader`, '--role', arn])).stdout,
      ),
    );
    // The check Pod is gone.
    expect(
      (
        await env.admin.get(`/api/v1/namespaces/${ns}/pods`, {
          labelSelector: 'lanyard.dev/identity-check=true',
        })
      ).items,
    ).toEqual([]);

    const again = await lanyard([
      'create',
      'identity',
      `${ns}/uploader`,
      '--role',
      arn,
      '--create-role',
      '--timeout',
      '30s',
      ...aws(),
    ]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain(
      `[role] role ${arn} exists and its trust policy allows ${ns}/uploader (unchanged)`,
    );
    expect(again.stdout).toContain(
      `[bind] serviceaccount ${ns}/uploader already has eks.amazonaws.com/role-arn: ${arn} (unchanged)`,
    );
    expect(again.stdout).toMatch(
      /\[verify\] verified earlier: admitted without the gate \(VerifiedIdentity wi-[0-9a-f]{20}, arn:aws:sts::/,
    );
  });

  it('the role phase alone: refuses a wrong trust policy naming the field, then --update-trust fixes it and verify passes', async () => {
    const ns = await env.namespace('createfix');
    const name = `wrongaud-${ns}`.slice(0, 64);
    await env.aws.iam.createRole({
      roleName: name,
      assumeRolePolicyDocument: wiTrustWith({ sub: sub(ns, 'app'), aud: 'vault' }),
    });
    const refused = await lanyard([
      'create',
      'identity',
      `${ns}/app`,
      '--role',
      role(name),
      '--phase',
      'role',
      ...aws(),
    ]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toMatch(/^ {2}aud: Statement\[0\] requires .*:aud = "vault"/);
    expect(refused.stderr).toContain(
      `error: [role] the trust policy of ${role(name)} does not allow ${ns}/app: pass --update-trust`,
    );
    const fixed = await lanyard([
      'create',
      'identity',
      `${ns}/app`,
      '--role',
      role(name),
      '--phase',
      'role',
      '--update-trust',
      ...aws(),
    ]);
    expect(fixed).toMatchObject({
      exitCode: 0,
      stdout: `[role] trust policy of ${role(name)} updated: statement for ${ns}/app added (was: aud wrong)\n`,
    });
    expect(JSON.parse((await env.aws.iam.getRole(name)).assumeRolePolicyDocument).Statement).toHaveLength(2);
    const rest = await lanyard([
      'create',
      'identity',
      `${ns}/app`,
      '--role',
      role(name),
      '--phase',
      'bind,verify',
      '--timeout',
      '30s',
      ...aws(),
    ]);
    expect(rest.exitCode, rest.stderr).toBe(0);
    expect(rest.stdout).not.toContain('[role]');
    expect(rest.stdout).toMatch(/\[verify\] verified: /);
  });

  it('Pod Identity: role → PodIdentityAssociation → verified through eks-auth; re-run unchanged; a wrong trust times out with the AWS error explained', async () => {
    const ns = await env.namespace('createpi');
    const arn = role(`pi-${ns}`.slice(0, 64));
    const first = await lanyard([
      'create',
      'identity',
      `${ns}/worker`,
      '--role',
      arn,
      '--mode',
      'pod-identity',
      '--create-role',
      '--timeout',
      '40s',
      ...aws(),
    ]);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    expect(first.stdout).toContain(
      `[role] role ${arn} created with a trust policy for ${ns}/worker (pod-identity)`,
    );
    expect(first.stdout).toContain(`[bind] podidentityassociation ${ns}/worker created for ${arn}`);
    expect(first.stdout).toMatch(/\[verify\] verified/);
    const a = await env.admin.get(
      `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations/worker`,
    );
    expect(a.spec).toMatchObject({ serviceAccount: 'worker', roleARN: arn });
    const again = await lanyard([
      'create',
      'identity',
      `${ns}/worker`,
      '--role',
      arn,
      '--mode',
      'pod-identity',
      '--phase',
      'role,bind',
      ...aws(),
    ]);
    expect(again.stdout).toBe(
      `[role] role ${arn} exists and its trust policy allows ${ns}/worker (unchanged)\n[bind] podidentityassociation ${ns}/worker already binds ${arn} (unchanged)\n`,
    );

    // Another ServiceAccount bound to a role that trusts the wrong service: the verify phase reports the AWS error.
    const bad = `pibad-${ns}`.slice(0, 64);
    await env.aws.iam.createRole({
      roleName: bad,
      assumeRolePolicyDocument: JSON.stringify({
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'ec2.amazonaws.com' },
            Action: ['sts:AssumeRole', 'sts:TagSession'],
          },
        ],
      }),
    });
    await serviceAccount(env.admin, ns, 'bad');
    await association(env.admin, ns, 'bad', 'bad', role(bad));
    const r = await lanyard([
      'create',
      'identity',
      `${ns}/bad`,
      '--role',
      role(bad),
      '--mode',
      'pod-identity',
      '--phase',
      'verify',
      '--timeout',
      '6s',
      ...aws(),
    ]);
    expect(r.exitCode).toBe(6);
    expect(r.stdout).toMatch(
      /\[verify\] last verifier attempt: ContainerCredentials exchange for role .* failed: AccessDeniedException/,
    );
    expect(r.stdout).toMatch(
      /\[verify\] meaning: EKS Pod Identity could not assume the role: its trust policy must allow Service "pods.eks.amazonaws.com"/,
    );
    expect(r.stderr).toMatch(/error: \[verify\] not verified within 6s: run `lanyard iam check/);
    expect(
      (
        await env.admin.get(`/api/v1/namespaces/${ns}/pods`, {
          labelSelector: 'lanyard.dev/identity-check=true',
        })
      ).items,
    ).toEqual([]);
  });
});
