// Shared setup of the association integration tests: the AWS simulator, IAM roles in it, and the association
// controller running in-process against the shared control plane.
import { Registry } from 'prom-client';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { silentLogger } from '../../../src/runtime/log.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { createAwsClients, type AwsClients } from '../../../src/aws/index.ts';
import { startAwsSimulator, type AwsSimulator } from '../../../src/sandbox/aws-sim/index.ts';
import { startAssociationController, type AssociationController } from '../../../src/associations/index.ts';
import type { AssociationConfig } from '../../../src/config/associations.ts';
import type { AssociationControllerDeps } from '../../../src/associations/controller.ts';
import { controlPlane, eventually } from '../../harness/context.ts';

export const CLUSTER = 'lanyard-test';

export const POD_TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Principal: { Service: 'pods.eks.amazonaws.com' },
      Action: ['sts:AssumeRole', 'sts:TagSession'],
    },
  ],
});

export interface Env {
  sim: AwsSimulator;
  aws: AwsClients;
  roleArn(name: string): string;
  createRole(name: string): Promise<string>;
  close(): Promise<void>;
}

export async function startEnv(seed: number): Promise<Env> {
  const sim = await startAwsSimulator({ port: 0, seed });
  const cp = controlPlane();
  sim.control.registerCluster({ name: CLUSTER, issuer: cp.issuer, caBundle: cp.caPem });
  const aws = createAwsClients({
    region: sim.control.region,
    endpointUrl: sim.url,
    credentials: sim.control.adminCredentials,
    log: silentLogger(),
  });
  const roleArn = (name: string) => `arn:aws:iam::${sim.control.account}:role/${name}`;
  return {
    sim,
    aws,
    roleArn,
    async createRole(name: string) {
      await aws.iam.createRole({ roleName: name, assumeRolePolicyDocument: POD_TRUST });
      return roleArn(name);
    },
    async close() {
      aws.destroy();
      await sim.close();
    },
  };
}

export function testConfig(over: Partial<AssociationConfig> = {}): AssociationConfig {
  return {
    clusterName: CLUSTER,
    workers: 4,
    resyncMs: 2000,
    rolePropagationTimeoutMs: 120_000,
    observeAck: 'false',
    probe: true,
    probeImage: 'registry.k8s.io/pause:3.10',
    deniedAssociationAction: 'delete',
    ...over,
  };
}

export async function startController(
  kube: KubeClient,
  env: Env,
  config: AssociationConfig,
  extra: Partial<AssociationControllerDeps> = {},
): Promise<AssociationController & { metrics: Registry }> {
  const metrics = new Registry();
  const c = await startAssociationController(
    { kube, log: silentLogger(), metrics, clock: systemClock, aws: env.aws, ...extra },
    config,
  );
  if (!(await c.waitForSync(20_000))) throw new Error('association controller caches did not sync');
  return Object.assign(c, { metrics });
}

export const lpiaPath = (ns: string, name?: string) =>
  `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations${name ? `/${name}` : ''}`;

export async function createServiceAccount(kube: KubeClient, ns: string, name: string): Promise<void> {
  await kube.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name },
  });
}

export async function createAssociation(
  kube: KubeClient,
  ns: string,
  name: string,
  spec: Record<string, unknown>,
  metadata: Record<string, unknown> = {},
): Promise<Json> {
  return await kube.create(lpiaPath(ns), {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'PodIdentityAssociation',
    metadata: { name, ...metadata },
    spec,
  });
}

export function condition(obj: Json, type: string): Json | undefined {
  return (obj?.status?.conditions ?? []).find((c: Json) => c.type === type);
}

/** Polls the object until `check` passes; returns the object. */
export async function waitFor(
  kube: KubeClient,
  ns: string,
  name: string,
  check: (o: Json) => boolean,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<Json> {
  let last: Json;
  try {
    return await eventually(
      async () => {
        last = await kube.get(lpiaPath(ns, name));
        if (!check(last)) throw new Error('not yet');
        return last;
      },
      timeoutMs,
      100,
    );
  } catch {
    throw new Error(`${ns}/${name}: ${what} not reached; status ${JSON.stringify(last?.status)}`);
  }
}

export const hasCond = (type: string, status: string, reason?: string) => (o: Json) => {
  const c = condition(o, type);
  return (
    !!c &&
    c.status === status &&
    (reason === undefined || c.reason === reason) &&
    c.observedGeneration === o.metadata.generation
  );
};

export async function eventsFor(kube: KubeClient, ns: string, name: string): Promise<Json[]> {
  const list = await kube.get(`/apis/events.k8s.io/v1/namespaces/${ns}/events`);
  return list.items.filter(
    (e: Json) => e.regarding?.name === name && e.regarding?.kind === 'PodIdentityAssociation',
  );
}

export async function probePods(kube: KubeClient, ns: string): Promise<Json[]> {
  return (await kube.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'lanyard.dev/probe=true' })).items;
}
