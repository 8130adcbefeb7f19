// Lanyard installed on the test node the way its users install it (docs/adr/0710, 0711): `helm install` of
// deploy/helm/lanyard with the locally built image and the chart's own defaults. The install is shared by every
// node test file: the first file that needs it installs it, the others reuse the running release (the cluster,
// and with it the release, goes away at the node project's global teardown). Also: the simulated IAM roles the
// node tests declare, and the workload Pods that use them.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import type { Json } from '../../src/kube/client.ts';
import { createAwsClients, type AwsClients } from '../../src/aws/index.ts';
import { ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY } from '../../src/sandbox/aws-sim/index.ts';
import { createLogger } from '../../src/runtime/log.ts';
import { PACKAGE_ROOT } from '../../src/sandbox/paths.ts';
import { NODE_CLUSTER } from './node-setup.ts';
import { helm, node } from './node-context.ts';

export const RELEASE_NS = 'lanyard-system';
export const ACCOUNT = '123456789012';
export const GATE = 'lanyard.dev/identity';
export const roleArn = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;

/** The AWS clients of the simulator's administrator (what a user's IAM set-up would do). */
export function awsAdmin(): AwsClients {
  return createAwsClients({
    region: node().region,
    endpointUrl: node().simulatorUrl,
    credentials: { accessKeyId: ADMIN_ACCESS_KEY_ID, secretAccessKey: ADMIN_SECRET_ACCESS_KEY },
    log: createLogger({ component: 'test', level: 'silent' }),
  });
}

/** The IAM OIDC provider of the node cluster's issuer, created by the first file that asks. */
export async function oidcProviderArn(aws: AwsClients): Promise<string> {
  const host = node()
    .issuer.replace(/^https:\/\//, '')
    .replace(/\/$/, '');
  const existing = (await aws.iam.listOpenIDConnectProviders()).find((arn) =>
    arn.endsWith(`:oidc-provider/${host}`),
  );
  if (existing) return existing;
  return (
    await aws.iam.createOpenIDConnectProvider({
      url: node().issuer,
      clientIds: ['sts.amazonaws.com', 'lanyard-promotion-step'],
    })
  ).arn;
}

/** An IRSA trust policy for one ServiceAccount subject. */
export function webIdentityTrust(providerArn: string, sub: string, aud = 'sts.amazonaws.com'): string {
  const host = node()
    .issuer.replace(/^https:\/\//, '')
    .replace(/\/$/, '');
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: providerArn },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${host}:sub`]: sub, [`${host}:aud`]: aud } },
      },
    ],
  });
}

/** EKS Pod Identity's trust policy; `service` other than pods.eks.amazonaws.com makes it wrong. */
export function podIdentityTrust(service = 'pods.eks.amazonaws.com'): string {
  return JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Allow', Principal: { Service: service }, Action: ['sts:AssumeRole', 'sts:TagSession'] },
    ],
  });
}

/** Sets the simulator's behaviour (e.g. eks-auth's visibility lag) through its control endpoint. */
export async function configureSimulator(config: Json): Promise<void> {
  const r = await fetch(`${node().simulatorUrl}/_sim/config`, {
    method: 'PUT',
    body: JSON.stringify(config),
  });
  if (!r.ok) throw new Error(`simulator config: ${r.status} ${await r.text()}`);
}

/** A Pod spec running the aws-whoami image as ServiceAccount `sa`; STS is the simulator, as a private endpoint would be. */
export function whoamiPodSpec(sa: string, args: string[] = [], restartPolicy = 'Never'): Json {
  return {
    serviceAccountName: sa,
    restartPolicy,
    containers: [
      {
        name: 'app',
        image: node().images.awsWhoami,
        imagePullPolicy: 'Never',
        args,
        env: [{ name: 'AWS_ENDPOINT_URL_STS', value: node().simulatorUrl }],
      },
    ],
  };
}

/** The chart's values for this cluster: only what a cluster without EKS needs; everything else is the default. */
function chartValues(): Json {
  const image = node().images.lanyard;
  return {
    image: {
      repository: image.slice(0, image.lastIndexOf(':')),
      tag: image.split(':').at(-1),
      pullPolicy: 'Never',
    },
    clusterName: NODE_CLUSTER,
    aws: { region: node().region, endpointUrl: node().simulatorUrl },
    webhook: { awsDefaultRegion: node().region },
    controller: {
      // The release namespace is outside the webhook's reach, so no IRSA for the controller here: static keys.
      extraEnv: [
        { name: 'AWS_ACCESS_KEY_ID', value: ADMIN_ACCESS_KEY_ID },
        { name: 'AWS_SECRET_ACCESS_KEY', value: ADMIN_SECRET_ACCESS_KEY },
      ],
      associations: { probeImage: node().images.pause },
    },
  };
}

const run = promisify(execFile);

/**
 * `helm install --wait` of the chart unless this cluster already runs the release (installed by an earlier node
 * test file); returns whether this call installed it.
 */
export async function ensureLanyard(): Promise<boolean> {
  const status = await run(node().helm, [
    '--kubeconfig',
    node().adminKubeconfig,
    'status',
    'lanyard',
    '--namespace',
    RELEASE_NS,
    '-o',
    'json',
  ]).then(
    (r) => JSON.parse(r.stdout) as Json,
    () => undefined,
  );
  if (status?.info?.status === 'deployed') {
    // Installed by an earlier file; a rollout that file started may still be finishing.
    for (const d of ['webhook', 'controller']) {
      await run(node().kubectl, [
        '--kubeconfig',
        node().adminKubeconfig,
        '-n',
        RELEASE_NS,
        'rollout',
        'status',
        `deployment/lanyard-${d}`,
        '--timeout=4m',
      ]);
    }
    return false;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-values-'));
  try {
    const file = path.join(dir, 'values.yaml');
    fs.writeFileSync(file, stringify(chartValues()));
    await helm([
      'install',
      'lanyard',
      path.join(PACKAGE_ROOT, 'deploy/helm/lanyard'),
      '--namespace',
      RELEASE_NS,
      '--create-namespace',
      '--values',
      file,
      '--wait',
      '--timeout',
      '4m',
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return true;
}
