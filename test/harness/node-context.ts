// What a node test uses: the shared cluster with a real node, kubectl/helm bound to it, Pod output.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { createKubeClient, type Json, type KubeClient } from '../../src/kube/client.ts';
import { eventually } from './context.ts';
import type { SharedNode } from './node-setup.ts';

const run = promisify(execFile);

let scriptNode: SharedNode | undefined;

/** For a script outside Vitest (bench/node-first-call.bench.ts): the cluster it started with startNodeCluster. */
export function useNodeCluster(n: SharedNode): void {
  scriptNode = n;
}

export function node(): SharedNode {
  return scriptNode ?? inject('node');
}

export async function nodeAdmin(): Promise<KubeClient> {
  return await createKubeClient({ kubeconfig: node().adminKubeconfig });
}

/** Runs kubectl against the node cluster; rejects with its stderr when it exits non-zero. */
export async function kubectl(args: string[], input?: string): Promise<string> {
  const child = run(node().kubectl, ['--kubeconfig', node().adminKubeconfig, ...args], {
    maxBuffer: 16 << 20,
  });
  if (input !== undefined) {
    child.child.stdin!.end(input);
  }
  return (await child).stdout;
}

export async function helm(args: string[]): Promise<string> {
  return (await run(node().helm, ['--kubeconfig', node().adminKubeconfig, ...args], { maxBuffer: 16 << 20 }))
    .stdout;
}

let counter = 0;
export async function newNodeNamespace(
  client: KubeClient,
  prefix = 'node',
  labels: Record<string, string> = {},
): Promise<string> {
  const name =
    `${prefix}-${process.pid.toString(36)}-${Date.now().toString(36)}-${(counter++).toString(36)}`.slice(
      0,
      63,
    );
  await client.create('/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels },
  });
  await eventually(() => client.get(`/api/v1/namespaces/${name}/serviceaccounts/default`), 15_000);
  return name;
}

/** Waits until the Pod reaches one of the phases; returns it. */
export async function waitForPodPhase(
  client: KubeClient,
  ns: string,
  name: string,
  phases: string[],
  timeoutMs = 120_000,
): Promise<Json> {
  return await eventually(
    async () => {
      const pod = await client.get(`/api/v1/namespaces/${ns}/pods/${name}`);
      if (!phases.includes(pod.status?.phase))
        throw new Error(
          `pod ${ns}/${name} is ${pod.status?.phase}: ${JSON.stringify(pod.status?.containerStatuses?.map((c: Json) => c.state))}`,
        );
      return pod;
    },
    timeoutMs,
    250,
  );
}

/** The container's output as `kubectl logs` shows it (API server -> kubelet at the node's address). */
export async function podLogs(ns: string, pod: string, container?: string): Promise<string> {
  return await kubectl(['-n', ns, 'logs', pod, ...(container ? ['-c', container] : [])]);
}
