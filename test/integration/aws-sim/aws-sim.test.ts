// src/aws driven through the real SDK against the AWS simulator, with real service-account tokens from the shared
// control plane (docs/aws-simulator.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { adminClient, controlPlane, newNamespace } from '../../harness/context.ts';
import type { KubeClient } from '../../../src/kube/client.ts';
import { silentLogger } from '../../../src/runtime/log.ts';
import { AwsError, createAwsClients, roleArnMatches, type AwsClients } from '../../../src/aws/index.ts';
import { startAwsSimulator, type AwsSimulator } from '../../../src/sandbox/aws-sim/index.ts';

const CLUSTER = 'sim-cluster';
const PODS_TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: { Service: 'pods.eks.amazonaws.com' },
      Action: ['sts:AssumeRole', 'sts:TagSession'],
    },
  ],
});

let sim: AwsSimulator;
let aws: AwsClients;
let kube: KubeClient;
let ns: string;
let uniq = 0;
const name = (p: string) => `${p}-${Date.now().toString(36)}-${uniq++}`;

async function caught(p: Promise<unknown>): Promise<AwsError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AwsError) return e;
    throw e;
  }
  throw new Error('expected an AwsError');
}

/** A ServiceAccount and a Pod of it (never scheduled: no kubelet), for Pod-bound tokens. */
async function podOf(sa: string): Promise<{ name: string; uid: string }> {
  await kube
    .create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: sa },
    })
    .catch((e: { status?: number }) => {
      if (e.status !== 409) throw e;
    });
  const pod = (await kube.create(`/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: `${sa}-` },
    spec: {
      serviceAccountName: sa,
      automountServiceAccountToken: false,
      containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }],
    },
  })) as { metadata: { name: string; uid: string } };
  return pod.metadata;
}

async function tokenFor(
  sa: string,
  audience: string,
  pod?: { name: string; uid: string },
  expirationSeconds = 600,
): Promise<string> {
  const r = (await kube.create(`/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: {
      audiences: [audience],
      expirationSeconds,
      ...(pod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid } } : {}),
    },
  })) as { status: { token: string } };
  return r.status.token;
}

function clients(extra: Partial<Parameters<typeof createAwsClients>[0]> = {}): AwsClients {
  return createAwsClients({
    region: 'us-west-2',
    endpointUrl: sim.url,
    credentials: sim.control.adminCredentials,
    log: silentLogger(),
    ...extra,
  });
}

beforeAll(async () => {
  sim = await startAwsSimulator({ port: 0, seed: 7 });
  sim.control.registerCluster({
    name: CLUSTER,
    issuer: controlPlane().issuer,
    caBundle: controlPlane().caPem,
  });

  aws = clients();
  kube = await adminClient();
  ns = await newNamespace(kube, 'awssim');
});

afterAll(async () => {
  aws?.destroy();
  await sim?.close();
  if (ns) await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
});

describe('IAM', () => {
  it('creates, reads and deletes roles, keeping paths and decoding trust documents', async () => {
    const roleName = name('pathed');
    const role = await aws.iam.createRole({
      roleName,
      path: '/team-a/',
      assumeRolePolicyDocument: PODS_TRUST,
    });
    expect(role.arn).toBe(`arn:aws:iam::123456789012:role/team-a/${roleName}`);
    expect(role.roleId).toMatch(/^AROA[A-Z2-7]{17}$/);
    const got = await aws.iam.getRole(roleName);
    expect(JSON.parse(got.assumeRolePolicyDocument)).toEqual(JSON.parse(PODS_TRUST));
    expect(got.path).toBe('/team-a/');
    const dup = await caught(aws.iam.createRole({ roleName, assumeRolePolicyDocument: PODS_TRUST }));
    expect([dup.code, dup.httpStatus, dup.retryable]).toEqual(['EntityAlreadyExists', 409, false]);
    await aws.iam.deleteRole(roleName);
    const gone = await caught(aws.iam.getRole(roleName));
    expect([gone.code, gone.httpStatus]).toEqual(['NoSuchEntity', 404]);
  });

  it('rejects malformed trust documents on write', async () => {
    const e = await caught(
      aws.iam.createRole({
        roleName: name('bad'),
        assumeRolePolicyDocument: '{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}',
      }),
    );
    expect(e.code).toBe('MalformedPolicyDocument');
    expect(e.message).toMatch(/Principal/);
  });

  it('manages OpenID Connect providers', async () => {
    const url = `https://oidc.example.com/id/${name('x')}`;
    const { arn } = await aws.iam.createOpenIDConnectProvider({
      url,
      clientIds: ['sts.amazonaws.com'],
      thumbprints: ['9e99a48a9960b14926bb7f3b02e22da2b0ab7280'],
    });
    expect(arn).toBe(`arn:aws:iam::123456789012:oidc-provider/${url.slice(8)}`);
    expect(await aws.iam.listOpenIDConnectProviders()).toContain(arn);
    expect((await caught(aws.iam.createOpenIDConnectProvider({ url, clientIds: ['x'] }))).code).toBe(
      'EntityAlreadyExists',
    );
    await aws.iam.deleteOpenIDConnectProvider(arn);
    expect(await aws.iam.listOpenIDConnectProviders()).not.toContain(arn);
    expect((await caught(aws.iam.deleteOpenIDConnectProvider(arn))).code).toBe('NoSuchEntity');
  });
});

describe('STS', () => {
  it('maps the admin key to the admin user; unknown keys and bad signatures are refused', async () => {
    expect(await aws.sts.getCallerIdentity()).toEqual({
      arn: 'arn:aws:iam::123456789012:user/lanyard-sim-admin',
      account: '123456789012',
      userId: expect.any(String),
    });
    const unknown = clients({
      credentials: { accessKeyId: 'AKIAUNKNOWNUNKNOWN22', secretAccessKey: 'x'.repeat(40) },
      maxAttempts: 1,
    });
    const e1 = await caught(unknown.sts.getCallerIdentity());
    expect([e1.code, e1.httpStatus]).toEqual(['InvalidClientTokenId', 403]);
    const wrong = clients({
      credentials: { ...sim.control.adminCredentials, secretAccessKey: 'y'.repeat(40) },
      maxAttempts: 1,
    });
    const e2 = await caught(wrong.sts.getCallerIdentity());
    expect([e2.code, e2.httpStatus]).toEqual(['SignatureDoesNotMatch', 403]);
    unknown.destroy();
    wrong.destroy();
  });

  it('AssumeRoleWithWebIdentity with a real token: provider, audience, trust, visibility, validation', async () => {
    const issuer = controlPlane().issuer;
    const key = issuer.replace(/^https:\/\//, '').replace(/\/$/, '');
    const pod = await podOf('web');
    const token = await tokenFor('web', 'sts.amazonaws.com', pod);
    const roleName = name('web');
    const trust = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Federated: `arn:aws:iam::123456789012:oidc-provider/${key}` },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: {
            StringEquals: {
              [`${key}:sub`]: `system:serviceaccount:${ns}:web`,
              [`${key}:aud`]: 'sts.amazonaws.com',
            },
          },
        },
      ],
    });
    const role = await aws.iam.createRole({ roleName, path: '/apps/', assumeRolePolicyDocument: trust });
    const input = {
      roleArn: role.arn,
      sessionName: `lanyard-verify-${pod.uid}`,
      token,
      durationSeconds: 900,
    };

    const noProvider = await caught(aws.sts.assumeRoleWithWebIdentity(input));
    expect(noProvider.code).toBe('InvalidIdentityToken');
    expect(noProvider.message).toContain('No OpenIDConnect provider found');

    const { arn: providerArn } = await aws.iam.createOpenIDConnectProvider({
      url: issuer,
      clientIds: ['sts.amazonaws.com'],
    });
    const ok = await aws.sts.assumeRoleWithWebIdentity(input);
    expect(ok.assumedRoleArn).toBe(
      `arn:aws:sts::123456789012:assumed-role/${roleName}/lanyard-verify-${pod.uid}`,
    );
    expect(roleArnMatches(role.arn, ok.assumedRoleArn)).toBe(true);
    expect(Object.keys(ok)).toEqual(['assumedRoleArn']);

    const otherPod = await podOf('other');
    const otherToken = await tokenFor('other', 'sts.amazonaws.com', otherPod);
    const denied = await caught(aws.sts.assumeRoleWithWebIdentity({ ...input, token: otherToken }));
    expect([denied.code, denied.httpStatus]).toEqual(['AccessDenied', 403]);

    const wrongAud = await caught(
      aws.sts.assumeRoleWithWebIdentity({ ...input, token: await tokenFor('web', 'other-aud', pod) }),
    );
    expect(wrongAud.code).toBe('InvalidIdentityToken');

    const badDuration = await caught(aws.sts.assumeRoleWithWebIdentity({ ...input, durationSeconds: 100 }));
    expect([badDuration.code, badDuration.httpStatus]).toEqual(['ValidationError', 400]);

    const forged =
      token.slice(0, token.lastIndexOf('.') + 1) + 'A'.repeat(token.length - token.lastIndexOf('.') - 1);
    expect((await caught(aws.sts.assumeRoleWithWebIdentity({ ...input, token: forged }))).code).toBe(
      'InvalidIdentityToken',
    );

    // iam.role delays when STS sees a new role.
    sim.control.configure({ visibility: { 'iam.role': [60_000, 60_000] } });
    const late = await aws.iam.createRole({ roleName: name('late'), assumeRolePolicyDocument: trust });
    sim.control.configure({});
    expect((await caught(aws.sts.assumeRoleWithWebIdentity({ ...input, roleArn: late.arn }))).code).toBe(
      'AccessDenied',
    );
    expect(Date.parse(sim.control.roleVisibleAt(late.roleName)!)).toBeGreaterThan(Date.now() + 50_000);
    sim.control.makeRoleVisible(late.roleName);
    expect(
      (await aws.sts.assumeRoleWithWebIdentity({ ...input, roleArn: late.arn })).assumedRoleArn,
    ).toContain(`assumed-role/${late.roleName}/`);
    await aws.iam.deleteOpenIDConnectProvider(providerArn);
  });
});

describe('EKS associations', () => {
  it('create, describe, list, update, tag, delete with real shapes', async () => {
    const role = await aws.iam.createRole({
      roleName: name('assoc'),
      path: '/team-a/',
      assumeRolePolicyDocument: PODS_TRUST,
    });
    const role2 = await aws.iam.createRole({
      roleName: name('assoc2'),
      assumeRolePolicyDocument: PODS_TRUST,
    });
    const sa = name('sa');
    const a = await aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: sa,
      roleArn: role.arn,
      tags: { 'lanyard.dev/managed-by': 'lanyard' },
      clientRequestToken: 'uid-1-' + sa,
    });
    expect(a.associationId).toMatch(/^a-[0-9a-z]{17}$/);
    expect(a.associationArn).toBe(
      `arn:aws:eks:us-west-2:123456789012:podidentityassociation/${CLUSTER}/${a.associationId}`,
    );
    expect(a.externalId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a).toMatchObject({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: sa,
      roleArn: role.arn,
      disableSessionTags: false,
      tags: { 'lanyard.dev/managed-by': 'lanyard' },
    });

    // Same token and input: the same association; other input: InvalidRequestException.
    const again = await aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: sa,
      roleArn: role.arn,
      tags: { 'lanyard.dev/managed-by': 'lanyard' },
      clientRequestToken: 'uid-1-' + sa,
    });
    expect(again.associationId).toBe(a.associationId);
    expect(
      (
        await caught(
          aws.eks.createPodIdentityAssociation({
            clusterName: CLUSTER,
            namespace: ns,
            serviceAccount: sa,
            roleArn: role2.arn,
            tags: {},
            clientRequestToken: 'uid-1-' + sa,
          }),
        )
      ).code,
    ).toBe('InvalidRequestException');
    const dup = await caught(
      aws.eks.createPodIdentityAssociation({
        clusterName: CLUSTER,
        namespace: ns,
        serviceAccount: sa,
        roleArn: role.arn,
        tags: {},
        clientRequestToken: 'uid-2-' + sa,
      }),
    );
    expect([dup.code, dup.httpStatus, dup.message]).toEqual([
      'ResourceInUseException',
      409,
      `Association already exists: ${a.associationId}`,
    ]);

    expect(await aws.eks.describe(CLUSTER, a.associationId)).toEqual(a);
    expect(await aws.eks.list(CLUSTER, { namespace: ns, serviceAccount: sa })).toEqual([
      {
        associationId: a.associationId,
        associationArn: a.associationArn,
        clusterName: CLUSTER,
        namespace: ns,
        serviceAccount: sa,
      },
    ]);

    const updated = await aws.eks.update({
      clusterName: CLUSTER,
      associationId: a.associationId,
      roleArn: role.arn,
      targetRoleArn: role2.arn,
      disableSessionTags: true,
      clientRequestToken: 'u1-' + sa,
    });
    expect(updated).toMatchObject({ targetRoleArn: role2.arn, disableSessionTags: true });
    const noChange = await caught(
      aws.eks.update({
        clusterName: CLUSTER,
        associationId: a.associationId,
        roleArn: role.arn,
        targetRoleArn: role2.arn,
        disableSessionTags: true,
        clientRequestToken: 'u2-' + sa,
      }),
    );
    expect(noChange.code).toBe('InvalidParameterException');
    const cleared = await aws.eks.update({
      clusterName: CLUSTER,
      associationId: a.associationId,
      roleArn: role.arn,
      targetRoleArn: '',
      disableSessionTags: true,
      clientRequestToken: 'u3-' + sa,
    });
    expect(cleared.targetRoleArn).toBeUndefined();

    await aws.eks.tagResource(a.associationArn, { team: 'a', x: '1' });
    await aws.eks.untagResource(a.associationArn, ['x']);
    expect((await aws.eks.describe(CLUSTER, a.associationId)).tags).toEqual({
      'lanyard.dev/managed-by': 'lanyard',
      team: 'a',
    });

    await aws.eks.delete(CLUSTER, a.associationId);
    const gone = await caught(aws.eks.describe(CLUSTER, a.associationId));
    expect([gone.code, gone.httpStatus, gone.retryable]).toEqual(['ResourceNotFoundException', 404, false]);
    expect((await caught(aws.eks.delete(CLUSTER, a.associationId))).code).toBe('ResourceNotFoundException');
  });

  it('refuses unknown clusters, missing roles and bad input', async () => {
    const role = await aws.iam.createRole({ roleName: name('r'), assumeRolePolicyDocument: PODS_TRUST });
    const base = {
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: name('sa'),
      roleArn: role.arn,
      tags: {},
      clientRequestToken: name('t'),
    };
    const noCluster = await caught(aws.eks.createPodIdentityAssociation({ ...base, clusterName: 'nope' }));
    expect([noCluster.code, noCluster.httpStatus]).toEqual(['ResourceNotFoundException', 404]);
    const noRole = await caught(
      aws.eks.createPodIdentityAssociation({
        ...base,
        roleArn: 'arn:aws:iam::123456789012:role/does-not-exist',
      }),
    );
    expect([noRole.code, noRole.message]).toEqual([
      'InvalidParameterException',
      'Role provided in the request does not exist',
    ]);
    // A role ARN with the wrong path names no role.
    expect(
      (
        await caught(
          aws.eks.createPodIdentityAssociation({
            ...base,
            roleArn: role.arn.replace('role/', 'role/other/'),
          }),
        )
      ).code,
    ).toBe('InvalidParameterException');
    // iam.role visibility: EKS does not see a new role yet.
    sim.control.configure({ visibility: { 'iam.role': [60_000, 60_000] } });
    const fresh = await aws.iam.createRole({ roleName: name('fresh'), assumeRolePolicyDocument: PODS_TRUST });
    sim.control.configure({});
    expect(
      (await caught(aws.eks.createPodIdentityAssociation({ ...base, roleArn: fresh.arn }))).message,
    ).toBe('Role provided in the request does not exist');
    sim.control.makeRoleVisible(fresh.roleName);
    expect((await aws.eks.createPodIdentityAssociation({ ...base, roleArn: fresh.arn })).roleArn).toBe(
      fresh.arn,
    );
  });

  it('lists over every page', async () => {
    const role = await aws.iam.createRole({ roleName: name('many'), assumeRolePolicyDocument: PODS_TRUST });
    const manyNs = name('many-ns');
    await Promise.all(
      Array.from({ length: 105 }, (_, i) =>
        aws.eks.createPodIdentityAssociation({
          clusterName: CLUSTER,
          namespace: manyNs,
          serviceAccount: `sa-${i}`,
          roleArn: role.arn,
          tags: {},
          clientRequestToken: `${manyNs}-${i}`,
        }),
      ),
    );
    const all = await aws.eks.list(CLUSTER, { namespace: manyNs });
    expect(all).toHaveLength(105);
    expect(new Set(all.map((a) => a.serviceAccount)).size).toBe(105);
    const calls = sim.control
      .log({ operation: 'ListPodIdentityAssociations' })
      .filter((e) => e.input.namespace === manyNs);
    expect(calls).toHaveLength(2);
  });
});

describe('eks-auth and the node agent with real Pod-bound tokens', () => {
  it('exchanges, checks trust, target roles with externalId, visibility and token binding', async () => {
    const sa = 'pia';
    const pod = await podOf(sa);
    const token = await tokenFor(sa, 'pods.eks.amazonaws.com', pod);
    const role = await aws.iam.createRole({
      roleName: name('pia'),
      path: '/team-a/',
      assumeRolePolicyDocument: PODS_TRUST,
    });

    sim.control.configure({ visibility: { eksAuth: [60_000, 60_000] } });
    const a = await aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: sa,
      roleArn: role.arn,
      tags: {},
      clientRequestToken: name('tok'),
    });
    sim.control.configure({});
    const view = sim.control.association(a.associationId)!;
    expect(Date.parse(view.visibleAt.eksAuth!)).toBeGreaterThan(Date.now() + 50_000);
    expect(Date.parse(view.visibleAt['eks.describe']!)).toBeLessThanOrEqual(Date.now());
    const invisible = await caught(aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token }));
    expect([invisible.code, invisible.httpStatus]).toEqual(['ResourceNotFoundException', 404]);

    // The HTTP control route makes it visible now.
    const r = await fetch(`${sim.url}/_sim/associations/${a.associationId}/visible`, { method: 'POST' });
    expect(r.status).toBe(200);
    const ok = await aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token });
    expect(ok.subject).toEqual({ namespace: ns, serviceAccount: sa });
    expect(ok.associationId).toBe(a.associationId);
    expect(ok.associationArn).toBe(a.associationArn);
    expect(roleArnMatches(role.arn, ok.assumedRoleArn)).toBe(true);
    const session = ok.assumedRoleArn.split('/').at(-1)!;
    expect(session.startsWith(`eks-${CLUSTER}-${pod.name}-`)).toBe(true);
    expect(session.length).toBeLessThanOrEqual(64);
    expect(Object.keys(ok).sort()).toEqual(['associationArn', 'associationId', 'assumedRoleArn', 'subject']);

    // Trust without sts:TagSession is refused unless session tags are disabled.
    await aws.iam.updateAssumeRolePolicy(
      role.roleName,
      JSON.stringify({
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      }),
    );
    const noTag = await caught(aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token }));
    expect([noTag.code, noTag.httpStatus]).toEqual(['AccessDeniedException', 400]);
    await aws.eks.update({
      clusterName: CLUSTER,
      associationId: a.associationId,
      roleArn: role.arn,
      targetRoleArn: '',
      disableSessionTags: true,
      clientRequestToken: name('u'),
    });
    expect(
      (await aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token })).assumedRoleArn,
    ).toContain(`assumed-role/${role.roleName}/`);

    // Target role: trusted only with the association's externalId.
    const target = await aws.iam.createRole({
      roleName: name('target'),
      assumeRolePolicyDocument: PODS_TRUST,
    });
    await aws.eks.update({
      clusterName: CLUSTER,
      associationId: a.associationId,
      roleArn: role.arn,
      targetRoleArn: target.arn,
      disableSessionTags: true,
      clientRequestToken: name('u'),
    });
    const trustTarget = (externalId: string) =>
      JSON.stringify({
        Statement: [
          {
            Effect: 'Allow',
            Principal: { AWS: role.arn },
            Action: 'sts:AssumeRole',
            Condition: { StringEquals: { 'sts:ExternalId': externalId } },
          },
        ],
      });
    await aws.iam.updateAssumeRolePolicy(target.roleName, trustTarget('wrong'));
    expect((await caught(aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token }))).code).toBe(
      'AccessDeniedException',
    );
    await aws.iam.updateAssumeRolePolicy(target.roleName, trustTarget(a.externalId!));
    const chained = await aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token });
    expect(roleArnMatches(target.arn, chained.assumedRoleArn)).toBe(true);

    // Wrong audience, unbound token, unknown cluster.
    expect(
      (
        await caught(
          aws.eksAuth.assumeRoleForPodIdentity({
            clusterName: CLUSTER,
            token: await tokenFor(sa, 'sts.amazonaws.com', pod),
          }),
        )
      ).code,
    ).toBe('InvalidTokenException');
    expect(
      (
        await caught(
          aws.eksAuth.assumeRoleForPodIdentity({
            clusterName: CLUSTER,
            token: await tokenFor(sa, 'pods.eks.amazonaws.com'),
          }),
        )
      ).code,
    ).toBe('InvalidTokenException');
    expect(
      (await caught(aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token: 'not-a-jwt' }))).code,
    ).toBe('InvalidParameterException');
    expect(
      (await caught(aws.eksAuth.assumeRoleForPodIdentity({ clusterName: 'nope', token }))).httpStatus,
    ).toBe(404);

    // The node agent: SDK credential JSON; the issued key signs later calls and maps to the assumed role.
    const res = await fetch(`${sim.url}/v1/credentials`, { headers: { authorization: token } });
    expect(res.status).toBe(200);
    const creds = (await res.json()) as {
      AccessKeyId: string;
      SecretAccessKey: string;
      Token: string;
      AccountId: string;
      Expiration: string;
    };
    expect(creds.AccessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(creds.SecretAccessKey).toHaveLength(40);
    expect(creds.AccountId).toBe('123456789012');
    expect(Date.parse(creds.Expiration)).toBeGreaterThan(Date.now());
    const asPod = clients({
      credentials: {
        accessKeyId: creds.AccessKeyId,
        secretAccessKey: creds.SecretAccessKey,
        sessionToken: creds.Token,
      },
    });
    expect(roleArnMatches(target.arn, (await asPod.sts.getCallerIdentity()).arn)).toBe(true);
    const noSession = clients({
      credentials: { accessKeyId: creds.AccessKeyId, secretAccessKey: creds.SecretAccessKey },
      maxAttempts: 1,
    });
    expect((await caught(noSession.sts.getCallerIdentity())).code).toBe('InvalidClientTokenId');
    asPod.destroy();
    noSession.destroy();

    const otherPod = await podOf('unassociated');
    const missing = await fetch(`${sim.url}/v1/credentials`, {
      headers: { authorization: await tokenFor('unassociated', 'pods.eks.amazonaws.com', otherPod) },
    });
    expect(missing.status).toBe(404);
    expect(await missing.text()).toMatch(/^\[[^\]]+\]: \(ResourceNotFoundException\): .+, fault: client\n$/);

    // The log has the exchanges with their outcome, and never a token or secret.
    const exchanges = sim.control
      .log({ service: 'eks-auth', operation: 'AssumeRoleForPodIdentity' })
      .filter((e) => e.status === 200);
    expect(exchanges.at(-1)!.output).toMatchObject({
      namespace: ns,
      serviceAccount: sa,
      associationId: a.associationId,
    });
    const logText = JSON.stringify(await (await fetch(`${sim.url}/_sim/log`)).json());
    for (const secret of [token, creds.SecretAccessKey, creds.Token]) expect(logText).not.toContain(secret);
  });
});

describe('session policies on associations', () => {
  const POLICY = JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::reports/team-a/*' }],
  });

  it('stores, returns, updates and removes the policy; List summaries carry none, as in EKS', async () => {
    const role = await aws.iam.createRole({ roleName: name('sp'), assumeRolePolicyDocument: PODS_TRUST });
    const sa = name('sp-sa');
    const a = await aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: sa,
      roleArn: role.arn,
      disableSessionTags: true,
      policy: POLICY,
      tags: {},
      clientRequestToken: name('sp'),
    });
    expect(a.policy).toBe(POLICY);
    expect((await aws.eks.describe(CLUSTER, a.associationId)).policy).toBe(POLICY);
    const summaries = await aws.eks.list(CLUSTER, { namespace: ns, serviceAccount: sa });
    expect(summaries).toHaveLength(1);
    expect(Object.keys(summaries[0]!).sort()).toEqual([
      'associationArn',
      'associationId',
      'clusterName',
      'namespace',
      'serviceAccount',
    ]);

    const other = POLICY.replace('GetObject', 'ListBucket');
    const base = {
      clusterName: CLUSTER,
      associationId: a.associationId,
      roleArn: role.arn,
      targetRoleArn: '',
    };
    const changed = await aws.eks.update({
      ...base,
      disableSessionTags: true,
      policy: other,
      clientRequestToken: name('u'),
    });
    expect(changed.policy).toBe(other);
    // Absent keeps it: a role-only Update does not drop the policy.
    const sameAgain = await caught(
      aws.eks.update({ ...base, disableSessionTags: true, clientRequestToken: name('u') }),
    );
    expect(sameAgain.code).toBe('InvalidParameterException');
    expect((await aws.eks.describe(CLUSTER, a.associationId)).policy).toBe(other);
    // Session tags cannot come back while a policy is set.
    const tagsBack = await caught(
      aws.eks.update({ ...base, disableSessionTags: false, clientRequestToken: name('u') }),
    );
    expect([tagsBack.code, tagsBack.httpStatus]).toEqual(['InvalidParameterException', 400]);
    expect(tagsBack.message).toContain('disableSessionTags must be true when a policy is specified');
    const removed = await aws.eks.update({
      ...base,
      disableSessionTags: true,
      policy: '',
      clientRequestToken: name('u'),
    });
    expect(removed.policy).toBeUndefined();
    expect((await aws.eks.describe(CLUSTER, a.associationId)).policy).toBeUndefined();
    await aws.eks.delete(CLUSTER, a.associationId);
  });

  it.each([
    ['not JSON', '{"Statement": [', 'policy is not valid JSON'],
    ['a JSON list', '["s3:GetObject"]', 'policy must be a JSON object with a Statement'],
    ['no Statement', '{"Version":"2012-10-17"}', 'policy has no Statement'],
    [
      'a Principal',
      JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:*', Resource: '*' }] }),
      'policy Statement[0]: a session policy must not specify a Principal',
    ],
    [
      'no Resource',
      JSON.stringify({ Statement: [{ Effect: 'Allow', Action: 's3:*' }] }),
      'policy Statement[0] needs exactly one of Resource and NotResource',
    ],
    [
      'over 2048 characters',
      `{"Sid":"${'x'.repeat(2050)}"}`,
      'policy must be at most 2048 characters long (got 2060)',
    ],
    [
      'a character IAM does not accept',
      '{"Statement":"\u2603"}',
      'policy contains characters outside the range IAM accepts',
    ],
  ])('refuses a policy with %s: InvalidParameterException, nothing created', async (_t, policy, message) => {
    const role = await aws.iam.createRole({ roleName: name('bad'), assumeRolePolicyDocument: PODS_TRUST });
    const sa = name('bad-sa');
    const e = await caught(
      aws.eks.createPodIdentityAssociation({
        clusterName: CLUSTER,
        namespace: ns,
        serviceAccount: sa,
        roleArn: role.arn,
        disableSessionTags: true,
        policy,
        tags: {},
        clientRequestToken: name('bad'),
      }),
    );
    expect([e.code, e.httpStatus, e.retryable]).toEqual(['InvalidParameterException', 400, false]);
    expect(e.message).toContain(message);
    expect(await aws.eks.list(CLUSTER, { namespace: ns, serviceAccount: sa })).toEqual([]);
  });

  it('refuses a policy with session tags on', async () => {
    const role = await aws.iam.createRole({ roleName: name('tags'), assumeRolePolicyDocument: PODS_TRUST });
    const e = await caught(
      aws.eks.createPodIdentityAssociation({
        clusterName: CLUSTER,
        namespace: ns,
        serviceAccount: name('tags-sa'),
        roleArn: role.arn,
        policy: POLICY,
        tags: {},
        clientRequestToken: name('tags'),
      }),
    );
    expect([e.code, e.message]).toEqual([
      'InvalidParameterException',
      expect.stringContaining('disableSessionTags must be true when a policy is specified'),
    ]);
  });

  it('the credentials eks-auth issues carry the session policy; GetCallerIdentity is unchanged', async () => {
    const role = await aws.iam.createRole({ roleName: name('spx'), assumeRolePolicyDocument: PODS_TRUST });
    const sa = name('spx-sa');
    const pod = await podOf(sa);
    const token = await tokenFor(sa, 'pods.eks.amazonaws.com', pod);
    const a = await aws.eks.createPodIdentityAssociation({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: sa,
      roleArn: role.arn,
      disableSessionTags: true,
      policy: POLICY,
      tags: {},
      clientRequestToken: name('spx'),
    });
    const credsFor = async () => {
      const res = await fetch(`${sim.url}/v1/credentials`, { headers: { authorization: token } });
      expect(res.status).toBe(200);
      return (await res.json()) as { AccessKeyId: string; SecretAccessKey: string; Token: string };
    };
    const scoped = await credsFor();
    const view = (await (await fetch(`${sim.url}/_sim/sessions/${scoped.AccessKeyId}`)).json()) as Record<
      string,
      string
    >;
    expect(view.sessionPolicy).toBe(POLICY);
    expect(roleArnMatches(role.arn, view.arn!)).toBe(true);
    expect(JSON.stringify(view)).not.toContain(scoped.SecretAccessKey);
    const asPod = clients({
      credentials: {
        accessKeyId: scoped.AccessKeyId,
        secretAccessKey: scoped.SecretAccessKey,
        sessionToken: scoped.Token,
      },
    });
    const who = await asPod.sts.getCallerIdentity();
    expect(who.arn).toBe(view.arn);
    expect(roleArnMatches(role.arn, who.arn)).toBe(true);
    asPod.destroy();

    // Removing the policy: credentials issued afterwards carry none.
    await aws.eks.update({
      clusterName: CLUSTER,
      associationId: a.associationId,
      roleArn: role.arn,
      targetRoleArn: '',
      disableSessionTags: true,
      policy: '',
      clientRequestToken: name('u'),
    });
    const plain = await credsFor();
    expect(sim.control.session(plain.AccessKeyId)).toEqual({
      arn: expect.any(String),
      expiration: expect.any(String),
    });
    expect(sim.control.session(scoped.AccessKeyId)?.sessionPolicy).toBe(POLICY);
    expect((await fetch(`${sim.url}/_sim/sessions/ASIAUNKNOWN00000000`)).status).toBe(404);
  });
});

describe('faults and metrics', () => {
  it('retries injected 5xx and throttling inside one call, then surfaces retryable AwsErrors', async () => {
    const reg = new Registry();
    const aws = clients({ metrics: reg });
    sim.control.configure({
      faults: [{ service: 'iam', operation: 'GetRole', error: 'ServiceUnavailable', count: 2 }],
    });
    const role = await aws.iam.createRole({ roleName: name('f'), assumeRolePolicyDocument: PODS_TRUST });
    expect((await aws.iam.getRole(role.roleName)).arn).toBe(role.arn);
    expect(
      sim.control.log({ operation: 'GetRole' }).filter((e) => e.fault === 'ServiceUnavailable'),
    ).toHaveLength(2);

    sim.control.configure({
      faults: [{ service: 'eks', operation: 'Describe*', error: 'ThrottlingException', rate: 1 }],
    });
    const t = await caught(aws.eks.describe(CLUSTER, 'a-00000000000000000'));
    expect([t.code, t.httpStatus, t.retryable]).toEqual(['ThrottlingException', 429, true]);

    sim.control.configure({
      faults: [{ service: 'sts', operation: '*', error: 'InternalServerError', rate: 1 }],
    });
    const i = await caught(aws.sts.getCallerIdentity());
    expect([i.code, i.httpStatus, i.retryable]).toEqual(['InternalFailure', 500, true]);

    sim.control.configure({
      faults: [{ service: 'eks-auth', operation: '*', error: 'ServiceUnavailable', count: 3 }],
    });
    const u = await caught(aws.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token: 'a.b.c' }));
    expect([u.code, u.httpStatus, u.retryable]).toEqual(['ServiceUnavailableException', 503, true]);
    sim.control.configure({});

    const text = await reg.metrics();
    aws.destroy();
    expect(text).toMatch(/lanyard_aws_requests_total\{service="iam",operation="GetRole",code="OK"\} 1/);
    expect(text).toMatch(
      /lanyard_aws_requests_total\{service="eks",operation="DescribePodIdentityAssociation",code="ThrottlingException"\} 1/,
    );
    expect(text).toMatch(
      /lanyard_aws_requests_total\{service="eks-auth",operation="AssumeRoleForPodIdentity",code="ServiceUnavailableException"\} 1/,
    );
  });

  it('timeouts, resets and latency', async () => {
    const fast = clients({ maxAttempts: 1, requestTimeoutMs: 300 });
    sim.control.configure({
      faults: [
        { service: 'eks', operation: 'Describe*', error: 'timeout', count: 1 },
        { service: 'sts', operation: 'GetCallerIdentity', error: 'reset', count: 1 },
        { service: 'iam', operation: 'ListOpenIDConnectProviders', latencyMs: 400 },
      ],
    });
    const to = await caught(fast.eks.describe(CLUSTER, 'a-00000000000000000'));
    expect([to.httpStatus, to.retryable]).toEqual([0, true]);
    const reset = await caught(fast.sts.getCallerIdentity());
    expect([reset.httpStatus, reset.retryable]).toEqual([0, true]);
    const eksAuthTimeout = clients({ maxAttempts: 1, requestTimeoutMs: 300 });
    sim.control.configure({
      faults: [
        { service: 'eks-auth', operation: '*', error: 'timeout', count: 1 },
        { service: 'iam', operation: 'ListOpenIDConnectProviders', latencyMs: 400 },
      ],
    });
    const at = await caught(
      eksAuthTimeout.eksAuth.assumeRoleForPodIdentity({ clusterName: CLUSTER, token: 'a.b.c' }),
    );
    expect([at.code, at.retryable]).toEqual(['TimeoutError', true]);
    const started = Date.now();
    await aws.iam.listOpenIDConnectProviders();
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    sim.control.configure({});
    fast.destroy();
    eksAuthTimeout.destroy();
  });

  it('validates configuration on the HTTP control route', async () => {
    const bad = await fetch(`${sim.url}/_sim/config`, {
      method: 'PUT',
      body: JSON.stringify({ visibility: { eksAuth: [5, 1] } }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/visibility.eksAuth/);
    const badFault = await fetch(`${sim.url}/_sim/config`, {
      method: 'PUT',
      body: JSON.stringify({ faults: [{ service: 'ec2', operation: '*', error: 'timeout' }] }),
    });
    expect(badFault.status).toBe(400);
    const good = await fetch(`${sim.url}/_sim/config`, {
      method: 'PUT',
      body: JSON.stringify({ visibility: { 'eks.list': [0, 10] } }),
    });
    expect(good.status).toBe(200);
    sim.control.configure({});
  });
});
