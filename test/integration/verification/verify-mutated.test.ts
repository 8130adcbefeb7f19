// `lanyard verify` with no flags in Pods the real webhook mutated (docs/adr/0921-verify-expected-role.md): the
// environment is the stored Pod's container env, created through the API server, with only what a node would
// provide swapped in (the token file from a TokenRequest bound to that Pod, the agent URL on the simulator). And
// `verify` names the caller whatever it finds, like `aws sts get-caller-identity`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../harness/context.ts';
import type { Json } from '../../../src/kube/client.ts';
import {
  CLUSTER,
  association,
  ccTrust,
  createPod,
  podBody,
  serviceAccount,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from './env.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
let env: VerificationEnv;
let ns: string;
let dir: string;

beforeAll(async () => {
  // The webhook (gate on) mutates; no controller: the Pods stay gated, which changes nothing for their env.
  env = await startVerificationEnv({ seed: 921, controller: false });
  env.sim.control.configure({ visibility: {} });
  ns = await env.namespace('verify-mut');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-verify-mut-'));
});
afterAll(async () => {
  await env?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The Pod through the API server (so the webhook mutates it) and its first container's env as a map. */
async function mutatedPod(name: string, sa: string): Promise<{ pod: Json; vars: Record<string, string> }> {
  const pod = await eventually(() => createPod(env.admin, ns, podBody(name, sa)), 15_000, 200);
  const vars = Object.fromEntries((pod.spec.containers[0].env ?? []).map((e: Json) => [e.name, e.value]));
  return { pod, vars };
}

/** What the kubelet would mount: a token for the Pod's ServiceAccount, bound to that Pod, with the volume's audience. */
async function tokenFileFor(pod: Json): Promise<string> {
  const volume = pod.spec.volumes.find((v: Json) => v.projected?.sources?.[0]?.serviceAccountToken);
  const tr = await env.admin.create(
    `/api/v1/namespaces/${ns}/serviceaccounts/${pod.spec.serviceAccountName}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: [volume.projected.sources[0].serviceAccountToken.audience],
        expirationSeconds: 600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
      },
    },
  );
  const f = path.join(dir, pod.metadata.name);
  fs.writeFileSync(f, tr.status.token);
  return f;
}

function verify(
  args: string[],
  extraEnv: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/lanyard.js'), 'verify', ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        AWS_REGION: 'us-west-2',
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_ENDPOINT_URL_STS: env.sim.url,
        ...extraEnv,
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('lanyard verify with no flags in a mutated Pod', () => {
  it('Pod Identity: the webhook injects LANYARD_EXPECTED_ROLE from the association, and verify matches it (exit 0)', async () => {
    const role = await env.aws.iam.createRole({
      roleName: 'uploader',
      path: '/team-a/',
      assumeRolePolicyDocument: ccTrust(),
    });
    await serviceAccount(env.admin, ns, 'uploader');
    await association(env.admin, ns, 'uploader', 'uploader', role.arn);
    await env.aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: 'uploader',
      roleArn: role.arn,
      tags: {},
      clientRequestToken: 'v921-1',
    });
    // The webhook sees the association object through its cache: retry until the Pod comes out injected.
    let n = 0;
    const { pod, vars } = await eventually(
      async () => {
        const m = await mutatedPod(`cc-${n++}`, 'uploader');
        if (!m.vars.AWS_CONTAINER_CREDENTIALS_FULL_URI)
          throw new Error('association not seen by the webhook yet');
        return m;
      },
      15_000,
      200,
    );
    expect(vars.LANYARD_EXPECTED_ROLE).toBe(role.arn);
    const r = await verify(['--timeout', '20s', '-o', 'json'], {
      ...vars,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${env.sim.url}/v1/credentials`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: await tokenFileFor(pod),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      result: 'verified',
      mode: 'ContainerCredentials',
      expected: role.arn,
      actual: expect.stringMatching(/^arn:aws:sts::\d{12}:assumed-role\/uploader\/eks-lanyard-test-/),
    });
    expect(r.stdout + r.stderr).not.toMatch(/eyJ|ASIA[A-Z2-7]{16}/);
    const text = await verify(['--timeout', '20s'], {
      ...vars,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${env.sim.url}/v1/credentials`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: await tokenFileFor(pod),
    });
    expect(text.stderr).toMatch(
      new RegExp(
        `^verified: ContainerCredentials arn:aws:sts::\\d{12}:assumed-role/uploader/eks-lanyard-test-cc-\\d+-\\S+ matches ${role.arn.replace(/[/]/g, '\\/')} \\(1 attempt, [\\d.]+s\\)\n$`,
      ),
    );
  });

  it('Pod Identity: when EKS answers with another role than the association object declares, verify with no flags says so (exit 20)', async () => {
    const declared = await env.aws.iam.createRole({
      roleName: 'declared',
      assumeRolePolicyDocument: ccTrust(),
    });
    const other = await env.aws.iam.createRole({ roleName: 'other', assumeRolePolicyDocument: ccTrust() });
    await serviceAccount(env.admin, ns, 'drifted');
    await association(env.admin, ns, 'drifted', 'drifted', declared.arn);
    await env.aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: 'drifted',
      roleArn: other.arn,
      tags: {},
      clientRequestToken: 'v921-2',
    });
    let n = 0;
    const { pod, vars } = await eventually(
      async () => {
        const m = await mutatedPod(`drift-${n++}`, 'drifted');
        if (!m.vars.LANYARD_EXPECTED_ROLE) throw new Error('association not seen by the webhook yet');
        return m;
      },
      15_000,
      200,
    );
    const r = await verify(['--timeout', '2s'], {
      ...vars,
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${env.sim.url}/v1/credentials`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: await tokenFileFor(pod),
    });
    expect(r.code).toBe(20);
    expect(r.stderr).toMatch(
      new RegExp(
        `^mismatch: expected ${declared.arn.replace(/[/]/g, '\\/')}, actual arn:aws:sts::\\d{12}:assumed-role/other/`,
      ),
    );
  });

  it("IRSA: the webhook's AWS_ROLE_ARN is the expectation (exit 0, no flags)", async () => {
    const role = await env.aws.iam.createRole({
      roleName: 'reader',
      path: '/team-a/',
      assumeRolePolicyDocument: wiTrust(env),
    });
    await serviceAccount(env.admin, ns, 'reader', { 'eks.amazonaws.com/role-arn': role.arn });
    let n = 0;
    const { pod, vars } = await eventually(
      async () => {
        const m = await mutatedPod(`wi-${n++}`, 'reader');
        if (!m.vars.AWS_ROLE_ARN) throw new Error('not injected yet');
        return m;
      },
      15_000,
      200,
    );
    expect(vars.LANYARD_EXPECTED_ROLE).toBeUndefined();
    const r = await verify(['--timeout', '20s'], {
      ...vars,
      AWS_WEB_IDENTITY_TOKEN_FILE: await tokenFileFor(pod),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        `^verified: WebIdentity arn:aws:sts::\\d{12}:assumed-role/reader/\\S+ matches ${role.arn.replace(/[/]/g, '\\/')} \\(1 attempt, `,
      ),
    );
  });

  it('static keys and no declared identity: exit 21 naming the caller ARN and where it came from, never the keys', async () => {
    const keys = env.sim.control.adminCredentials;
    const r = await verify(['-o', 'json'], {
      AWS_ACCESS_KEY_ID: keys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    });
    expect(r.code).toBe(21);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      result: 'no_identity',
      actual: `arn:aws:iam::${env.account}:user/lanyard-sim-admin`,
    });
    const text = await verify([], {
      AWS_ACCESS_KEY_ID: keys.accessKeyId,
      AWS_SECRET_ACCESS_KEY: keys.secretAccessKey,
    });
    expect(text.code).toBe(21);
    expect(text.stderr).toContain(
      `; the caller is arn:aws:iam::${env.account}:user/lanyard-sim-admin (static keys from AWS_ACCESS_KEY_ID, which the SDK credential chain uses first)`,
    );
    for (const printed of [r.stdout, r.stderr, text.stdout, text.stderr]) {
      expect(printed).not.toContain(keys.secretAccessKey);
      expect(printed).not.toContain(keys.accessKeyId);
    }
  });

  it('no credentials at all: exit 21 saying none were found', async () => {
    const r = await verify([], {});
    expect(r.code).toBe(21);
    expect(r.stderr).toMatch(/^no identity: neither .*; no AWS credentials were found either \(\S+: /);
  });
});
