// What `lanyard up` shows of its samples (docs/adr/0714): the demo Pods from admission through the identity gate
// to Running with the ARN their AWS SDK got, and the sample promotion to its end. Each follower polls the API
// server, prints each change once, and gives up at its deadline or when the signal aborts.
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeList, Stored } from '../core/kube-object.ts';
import type { KubeClient } from '../kube/client.ts';
import type { PodIdentityAssociation } from '../associations/types.ts';
import type { Promotion } from '../promotions/types.ts';
import { sleep } from '../runtime/clock.ts';

const GATE = 'lanyard.dev/identity';
export const DEMO_APPS = ['uploader', 'reporter'] as const;

export class SandboxAborted extends Error {
  constructor() {
    super('stopped by a signal');
    this.name = 'SandboxAborted';
  }
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new SandboxAborted();
}

/** Waits `ms` (the one sleep, src/runtime/clock.ts), then throws SandboxAborted if the signal aborted meanwhile. */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  throwIfAborted(signal);
  await sleep(ms, signal);
  throwIfAborted(signal);
}

/** The demo workload Pods (probe Pods, docs/associations.md#how-verified-is-obtained, come and go on their own). */
async function demoPods(kube: KubeClient): Promise<Stored<Pod>[]> {
  const pods = await kube.get<KubeList<Stored<Pod>>>('/api/v1/namespaces/demo/pods', {
    labelSelector: '!lanyard.dev/probe',
  });
  return pods.items;
}

/** Follows the demo Pods from admission to release, printing each change; false when they are not all released in time. */
export async function showGate(
  kube: KubeClient,
  note: (l: string) => void,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const seen = new Map<string, string>();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const pods = await demoPods(kube);
    for (const p of pods) {
      const gated = (p.spec?.schedulingGates ?? []).some((g) => g.name === GATE);
      const env = (p.spec?.containers[0]?.env ?? []).map((e) => e.name);
      const mode = env.includes('AWS_ROLE_ARN')
        ? 'web identity'
        : env.includes('AWS_CONTAINER_CREDENTIALS_FULL_URI')
          ? 'container credentials'
          : 'no identity';
      const state = gated ? 'gated' : 'released';
      if (seen.get(p.metadata.name) !== state) {
        const age = ((Date.now() - Date.parse(p.metadata.creationTimestamp)) / 1000).toFixed(1);
        note(
          gated
            ? `pod demo/${p.metadata.name} (${mode}) is held at the ${GATE} scheduling gate`
            : `pod demo/${p.metadata.name} (${mode}) released ${age}s after creation: ${p.metadata.annotations?.['lanyard.dev/identity-verification'] ?? 'not gated'}`,
        );
        seen.set(p.metadata.name, state);
      }
    }
    if (pods.length >= DEMO_APPS.length && pods.every((p) => seen.get(p.metadata.name) === 'released'))
      return true;
    await pause(300, signal);
  }
  return false;
}

export async function associationReady(
  kube: KubeClient,
  namespace: string,
  name: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const a = await kube.get<PodIdentityAssociation>(
      `/apis/lanyard.dev/v1alpha1/namespaces/${namespace}/podidentityassociations/${name}`,
    );
    if ((a.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')) return true;
    await pause(300, signal);
  }
  return false;
}

/** A container that cannot start, as the kubelet reports it (e.g. ErrImageNeverPull), or undefined. */
function stuckContainer(pod: Pod): string | undefined {
  for (const c of pod.status?.containerStatuses ?? []) {
    const w = c.state?.waiting;
    if (w && !['ContainerCreating', 'PodInitializing'].includes(w.reason ?? ''))
      return `container ${c.name}: ${w.reason}${w.message ? `: ${w.message}` : ''}`;
  }
  return undefined;
}

export interface RunningDemoPod {
  app: string;
  pod: string;
  /** The first line the container printed: `assumed-role-arn <ARN>` when its first AWS call succeeded. */
  line: string;
}

/**
 * Waits until each demo workload's Pod runs and its container printed its first line (the ARN of its first
 * sts:GetCallerIdentity, read through the API server as `kubectl logs` reads it); prints it. Throws when a Pod
 * cannot start or its first call failed.
 */
export async function showRunning(
  kube: KubeClient,
  note: (l: string) => void,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<RunningDemoPod[]> {
  const deadline = Date.now() + timeoutMs;
  const done = new Map<string, RunningDemoPod>();
  let last = '';
  while (done.size < DEMO_APPS.length) {
    if (Date.now() > deadline)
      throw new Error(`the demo Pods did not run within ${timeoutMs / 1000}s (${last || 'no Pod yet'})`);
    for (const p of await demoPods(kube)) {
      const app = p.metadata.labels?.app;
      if (!app || done.has(app)) continue;
      const stuck = stuckContainer(p);
      if (stuck) throw new Error(`pod demo/${p.metadata.name} cannot start: ${stuck}`);
      last = `pod demo/${p.metadata.name} is ${p.status?.phase ?? 'new'}`;
      if (p.status?.phase !== 'Running') continue;
      const log = await kube.raw<unknown>({
        path: `/api/v1/namespaces/demo/pods/${p.metadata.name}/log`,
        query: { container: 'app' },
        accept: '*/*',
      });
      const line = log.status === 200 && typeof log.body === 'string' ? log.body.split('\n')[0]!.trim() : '';
      if (!line) continue;
      if (!line.startsWith('assumed-role-arn '))
        throw new Error(`pod demo/${p.metadata.name}: its first AWS call failed: ${line}`);
      done.set(app, { app, pod: p.metadata.name, line });
      note(`pod demo/${p.metadata.name} Running on ${p.spec?.nodeName}; its AWS SDK printed: ${line}`);
    }
    if (done.size < DEMO_APPS.length) await pause(300, signal);
  }
  return DEMO_APPS.map((a) => done.get(a)!);
}

/**
 * Follows a promotion to its end, printing each step as it finishes; returns it. `untilPod` stops at the
 * promotion Pod's creation instead (without a node the Pod never runs).
 */
export async function followPromotion(
  kube: KubeClient,
  namespace: string,
  name: string,
  o: {
    note: (l: string) => void;
    timeoutMs: number;
    untilPod: boolean;
    signal?: AbortSignal;
  },
): Promise<Stored<Promotion>> {
  const deadline = Date.now() + o.timeoutMs;
  const shown = new Set<string>();
  for (;;) {
    const cur = await kube.get<Stored<Promotion>>(
      `/apis/lanyard.dev/v1alpha1/namespaces/${namespace}/promotions/${name}`,
    );
    const phase = cur.status?.phase;
    if (['Errored', 'Failed'].includes(phase ?? ''))
      throw new Error(`promotion ${namespace}/${name} ${phase}: ${cur.status?.message}`);
    if (o.untilPod && cur.status?.pod?.name) return cur;
    for (const s of cur.status?.steps ?? []) {
      if (!s.finishedAt || shown.has(s.name)) continue;
      shown.add(s.name);
      const output = Object.entries(s.output ?? {})
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(' ');
      o.note(
        `step "${s.name}" (uses ${s.uses}, container ${s.container}) ${s.phase}${output ? `, output ${output}` : ''}`,
      );
    }
    if (phase === 'Succeeded') return cur;
    if (Date.now() > deadline) {
      throw new Error(
        `promotion ${namespace}/${name} is still ${phase ?? 'pending'} after ${o.timeoutMs / 1000}s${cur.status?.message ? `: ${cur.status.message}` : ''}`,
      );
    }
    await pause(300, o.signal);
  }
}
