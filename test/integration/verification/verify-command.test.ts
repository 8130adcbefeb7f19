// `lanyard verify` (docs/verified-start.md#lanyard-verify-in-a-job-or-init-container) as a child process with the environment of a mutated Pod: token files from TokenRequest,
// endpoints on the simulator (node agent for container credentials, STS for web identity and GetCallerIdentity).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newNamespace } from '../../harness/context.ts';
import {
  CLUSTER,
  ccTrust,
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
  env = await startVerificationEnv({ seed: 14, webhook: false, controller: false });
  env.sim.control.configure({ visibility: {} });
  ns = await newNamespace(env.admin, 'a14');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-a14-'));
});
afterAll(async () => {
  await env?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A Pod-bound token for `sa`, written where a projected volume would put it. */
async function tokenFile(sa: string, audience: string): Promise<string> {
  const pod = await env.admin.create(`/api/v1/namespaces/${ns}/pods`, {
    ...podBody(`${sa}-${Date.now()}`, sa),
    spec: { ...podBody('x', sa).spec, schedulingGates: [{ name: 'example.com/hold' }] },
  });
  const tr = await env.admin.create(`/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      audiences: [audience],
      expirationSeconds: 600,
      boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
    },
  });
  const f = path.join(dir, `${sa}-${audience}`);
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
        HOME: process.env.HOME,
        AWS_REGION: 'us-west-2',
        AWS_EC2_METADATA_DISABLED: 'true',
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

describe('lanyard verify', () => {
  let ccEnv: Record<string, string>;
  let ccRole: string;

  beforeAll(async () => {
    const role = await env.aws.iam.createRole({
      roleName: 'uploader',
      path: '/team-a/',
      assumeRolePolicyDocument: ccTrust(),
    });
    ccRole = role.arn;
    await serviceAccount(env.admin, ns, 'uploader');
    await env.aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: 'uploader',
      roleArn: role.arn,
      tags: {},
      clientRequestToken: 'a14-1',
    });
    ccEnv = {
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${env.sim.url}/v1/credentials`,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: await tokenFile('uploader', 'pods.eks.amazonaws.com'),
      AWS_ENDPOINT_URL_STS: env.sim.url,
    };
  });

  it('exit 0 on a match, role path included (container credentials, json output)', async () => {
    const r = await verify(['--expected-role', ccRole, '-o', 'json', '--timeout', '20s'], ccEnv);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      result: 'verified',
      mode: 'ContainerCredentials',
      expected: ccRole,
      attempts: 1,
      error: null,
    });
    expect(out.actual).toMatch(/^arn:aws:sts::\d{12}:assumed-role\/uploader\/eks-lanyard-test-/);
    expect(r.stdout + r.stderr).not.toMatch(/eyJ|ASIA[A-Z2-7]{16}/);
  });

  it('exit 0 for web identity from AWS_ROLE_ARN, text output on stderr', async () => {
    const role = await env.aws.iam.createRole({
      roleName: 'reader',
      path: '/team-a/',
      assumeRolePolicyDocument: wiTrust(env),
    });
    await serviceAccount(env.admin, ns, 'reader');
    const r = await verify(['--timeout', '20s'], {
      AWS_ROLE_ARN: role.arn,
      AWS_WEB_IDENTITY_TOKEN_FILE: await tokenFile('reader', 'sts.amazonaws.com'),
      AWS_ENDPOINT_URL_STS: env.sim.url,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /^verified: WebIdentity arn:aws:sts::\d{12}:assumed-role\/reader\/\S+ matches arn:aws:iam::\d{12}:role\/team-a\/reader \(1 attempt, /,
    );
  });

  it('exit 20 for another --expected-role', async () => {
    const r = await verify(
      ['--expected-role', `arn:aws:iam::${env.account}:role/other`, '--timeout', '2s'],
      ccEnv,
    );
    expect(r.code).toBe(20);
    expect(r.stderr).toMatch(
      /^mismatch: expected arn:aws:iam::\d+:role\/other, actual arn:aws:sts::\d+:assumed-role\/uploader\//,
    );
  });

  it('exit 20 for app against app-admin', async () => {
    const role = await env.aws.iam.createRole({ roleName: 'app-admin', assumeRolePolicyDocument: ccTrust() });
    await serviceAccount(env.admin, ns, 'app');
    await env.aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: 'app',
      roleArn: role.arn,
      tags: {},
      clientRequestToken: 'a14-2',
    });
    const r = await verify(['--expected-role', `arn:aws:iam::${env.account}:role/app`, '--timeout', '2s'], {
      ...ccEnv,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: await tokenFile('app', 'pods.eks.amazonaws.com'),
    });
    expect(r.code).toBe(20);
  });

  it('exit 21 with no identity in the environment', async () => {
    const r = await verify([], {});
    expect(r.code).toBe(21);
    expect(r.stderr).toContain('no identity: neither AWS_ROLE_ARN+AWS_WEB_IDENTITY_TOKEN_FILE nor');
  });

  it('exit 6 (timed out) when the association stays invisible past --timeout 3s', async () => {
    env.sim.control.configure({ visibility: { eksAuth: [60_000, 60_000] } });
    const role = await env.aws.iam.createRole({ roleName: 'late', assumeRolePolicyDocument: ccTrust() });
    await serviceAccount(env.admin, ns, 'late');
    await env.aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: 'late',
      roleArn: role.arn,
      tags: {},
      clientRequestToken: 'a14-3',
    });
    const t0 = Date.now();
    const r = await verify(['--expected-role', role.arn, '--timeout', '3s'], {
      ...ccEnv,
      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: await tokenFile('late', 'pods.eks.amazonaws.com'),
    });
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/^timeout after 3s: \S+: /);
    expect(Date.now() - t0).toBeLessThan(15_000);
    env.sim.control.configure({ visibility: {} });
  });

  it('exit 6 (timed out) under 100 % 5xx', async () => {
    env.sim.control.configure({
      visibility: {},
      faults: [{ service: '*', operation: '*', error: 'InternalServerError', rate: 1 }],
    });
    const r = await verify(['--expected-role', ccRole, '--timeout', '3s'], ccEnv);
    env.sim.control.configure({ visibility: {}, faults: [] });
    expect(r.code).toBe(6);
    expect(r.stderr).toMatch(/^timeout after 3s: /);
  });
});
