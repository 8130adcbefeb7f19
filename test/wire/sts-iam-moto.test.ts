// moto as a second peer (docs/aws-simulator.md): one STS/IAM sequence through src/aws against moto (server mode,
// loopback) and against the simulator; status codes, XML element paths, ARN formats and the shared error codes
// must agree. moto checks neither tokens nor trust, so only shapes are compared.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, controlPlane, newNamespace } from '../harness/context.ts';
import { silentLogger } from '../../src/runtime/log.ts';
import { AwsError, createAwsClients, type AwsClients } from '../../src/aws/index.ts';
import { startAwsSimulator, type AwsSimulator } from '../../src/sandbox/aws-sim/index.ts';
import { motoMissing, recordingProxy, startMoto, type Exchange } from './peers.ts';

/** Paths of the elements that carry text, e.g. CreateRoleResponse/CreateRoleResult/Role/Arn. */
function leafPaths(xml: string): string[] {
  const paths = new Set<string>();
  const stack: string[] = [];
  const re = /<(\/?)([A-Za-z_][\w.-]*)([^>]*?)(\/?)>([^<]*)/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const [, closing, name, , selfClosing, text] = m;
    if (name!.startsWith('?')) continue;
    if (closing) {
      stack.pop();
      continue;
    }
    if (selfClosing) continue;
    stack.push(name!);
    if (text!.trim() !== '') paths.add(stack.join('/').replace(/\/member\//g, '/member/'));
  }
  return [...paths].sort();
}

/** Elements only moto sends: a lower-case duplicate of Error/Message, empty role fields, PackedPolicySize (AWS: only with session policies or tags). */
const MOTO_ONLY = [
  /\/Error\/message$/,
  /\/RoleLastUsed/,
  /\/Tags\//,
  /\/Description$/,
  /\/PackedPolicySize$/,
];
/** Elements real STS documents for AssumeRoleWithWebIdentity that moto omits; the simulator sends them. */
const AWS_ONLY = [/WithWebIdentityResult\/(SubjectFromWebIdentityToken|Provider|Audience)$/];

interface Step {
  name: string;
  status: number;
  paths: string[];
  code?: string;
  arns: Record<string, string>;
}

const issuerKey = () =>
  controlPlane()
    .issuer.replace(/^https:\/\//, '')
    .replace(/\/$/, '');

async function runSequence(
  aws: AwsClients,
  proxy: { last(): Exchange },
  token: string,
  roleName: string,
  ignore: RegExp[],
): Promise<Step[]> {
  const steps: Step[] = [];
  const step = async (name: string, fn: () => Promise<Record<string, string>>) => {
    let arns: Record<string, string> = {};
    let code: string | undefined;
    try {
      arns = await fn();
    } catch (e) {
      if (!(e instanceof AwsError)) throw e;
      code = e.code;
    }
    const ex = proxy.last();
    steps.push({
      name,
      status: ex.status,
      paths: leafPaths(ex.body).filter((p) => !ignore.some((r) => r.test(p))),
      ...(code ? { code } : {}),
      arns,
    });
  };
  const trust = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: `arn:aws:iam::123456789012:oidc-provider/${issuerKey()}` },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${issuerKey()}:aud`]: 'sts.amazonaws.com' } },
      },
    ],
  });
  let roleArn = '';
  await step('CreateRole', async () => {
    const r = await aws.iam.createRole({ roleName, path: '/wire/', assumeRolePolicyDocument: trust });
    roleArn = r.arn;
    return { role: r.arn };
  });
  await step('CreateRole (again)', async () => ({
    role: (await aws.iam.createRole({ roleName, assumeRolePolicyDocument: trust })).arn,
  }));
  let providerArn = '';
  await step('CreateOpenIDConnectProvider', async () => {
    providerArn = (
      await aws.iam.createOpenIDConnectProvider({
        url: controlPlane().issuer,
        clientIds: ['sts.amazonaws.com'],
        thumbprints: ['9e99a48a9960b14926bb7f3b02e22da2b0ab7280'],
      })
    ).arn;
    return { provider: providerArn };
  });
  await step('AssumeRoleWithWebIdentity', async () => ({
    assumed: (
      await aws.sts.assumeRoleWithWebIdentity({
        roleArn,
        sessionName: 'wire-session',
        token,
        durationSeconds: 900,
      })
    ).assumedRoleArn,
  }));
  await step('GetCallerIdentity', async () => ({ caller: (await aws.sts.getCallerIdentity()).arn }));
  await step('DeleteRole', async () => {
    await aws.iam.deleteRole(roleName);
    return {};
  });
  await step('DeleteRole (again)', async () => {
    await aws.iam.deleteRole(roleName);
    return {};
  });
  await aws.iam.deleteOpenIDConnectProvider(providerArn);
  return steps;
}

describe.skipIf(Boolean(motoMissing))(
  `STS/IAM wire shapes: simulator vs moto${motoMissing ? ` (skipped: ${motoMissing})` : ''}`,
  () => {
    let moto: { url: string; stop(): void } | undefined;
    let motoUrl = '';
    let sim: AwsSimulator;
    let token = '';
    let ns = '';

    beforeAll(async () => {
      moto = await startMoto();
      motoUrl = moto.url;
      sim = await startAwsSimulator({ port: 0, seed: 11 });
      // The simulator fetches the issuer's JWKS over https: it must trust the control plane's CA (moto never fetches).
      sim.control.registerCluster({
        name: 'wire',
        issuer: controlPlane().issuer,
        caBundle: controlPlane().caPem,
      });
      const kube = await adminClient();
      ns = await newNamespace(kube, 'wire');
      await kube.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'app' },
      });
      const pod = (await kube.create(`/api/v1/namespaces/${ns}/pods`, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'app' },
        spec: {
          serviceAccountName: 'app',
          automountServiceAccountToken: false,
          containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }],
        },
      })) as { metadata: { name: string; uid: string } };
      const tr = (await kube.create(`/api/v1/namespaces/${ns}/serviceaccounts/app/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          audiences: ['sts.amazonaws.com'],
          expirationSeconds: 600,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
        },
      })) as { status: { token: string } };
      token = tr.status.token;
    });

    afterAll(async () => {
      if (ns) await (await adminClient()).delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
      moto?.stop();
      await sim?.close();
    });

    it('answers the same sequence with the same statuses, element paths, ARN formats and error codes', async () => {
      const run = async (
        endpoint: string,
        credentials: { accessKeyId: string; secretAccessKey: string },
        ignore: RegExp[],
      ) => {
        const proxy = await recordingProxy(endpoint);
        const aws = createAwsClients({
          region: 'us-east-1',
          endpointUrl: proxy.url,
          credentials,
          log: silentLogger(),
          maxAttempts: 1,
        });
        try {
          return await runSequence(aws, proxy, token, `wire-${Date.now().toString(36)}`, ignore);
        } finally {
          aws.destroy();
          await proxy.close();
        }
      };
      const onSim = await run(sim.url, sim.control.adminCredentials, AWS_ONLY);
      const onMoto = await run(
        motoUrl,
        { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
        MOTO_ONLY,
      );

      expect(onSim.map((s) => s.name)).toEqual(onMoto.map((s) => s.name));
      for (const [i, s] of onSim.entries()) {
        const m = onMoto[i]!;
        expect({ step: s.name, status: s.status, code: s.code, paths: s.paths }).toEqual({
          step: m.name,
          status: m.status,
          code: m.code,
          paths: m.paths,
        });
      }
      expect(onSim.map((s) => s.code)).toEqual([
        undefined,
        'EntityAlreadyExists',
        undefined,
        undefined,
        undefined,
        undefined,
        'NoSuchEntity',
      ]);

      const formats = (peer: 'sim' | 'moto'): Record<string, RegExp> => ({
        role: /^arn:aws:iam::\d{12}:role\/wire\/wire-[a-z0-9]+$/,
        provider: new RegExp(`^arn:aws:iam::\\d{12}:oidc-provider/${issuerKey().replace(/[.]/g, '\\.')}$`),
        assumed: /^arn:aws:sts::\d{12}:assumed-role\/wire-[a-z0-9]+\/wire-session$/,
        // AWS answers arn:aws:iam::<account>:user/<name> for an IAM user; moto, with no such user, answers a fixed
        // arn:aws:sts::<account>:user/moto (a known moto quirk), so only the simulator is held to the AWS form.
        caller:
          peer === 'sim'
            ? /^arn:aws:iam::\d{12}:user\/lanyard-sim-admin$/
            : /^arn:aws:(iam|sts)::\d{12}:user\/[\w+=,.@-]+$/,
      });
      for (const [peer, steps] of [
        ['sim', onSim],
        ['moto', onMoto],
      ] as const) {
        for (const s of steps)
          for (const [k, v] of Object.entries(s.arns))
            expect(v, `${peer} ${s.name} ${k}`).toMatch(formats(peer)[k]!);
      }
      expect(onSim.flatMap((s) => Object.keys(s.arns))).toEqual(onMoto.flatMap((s) => Object.keys(s.arns)));
    });
  },
);
