// The identity reconciler's apply step (docs/identities.md): a pass's decisions (decide-pass.ts) turned into the gauge
// `lanyard_pod_identities`, the association controller's `missingFor` subscribers, Warning Events on the Pod and its
// workload, the log, and a workload's rollout restart with its Event and `lanyard_identity_repairs_total`.
import type { Counter, Gauge, Registry } from 'prom-client';
import type { DaemonSet, Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
import type { KubeClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import type { Logger } from '../runtime/log.ts';
import { counter, gauge } from '../runtime/metrics.ts';
import { IDENTITY_STATES, type PodView, type WorkloadKind } from './decide.ts';
import type { PodEffects, PodRow, RepairPlan, RepairTarget } from './decide-pass.ts';
import { workloadPath } from './gather.ts';
import type { IdentityMemory } from './memory.ts';

export interface IdentityMetrics {
  pods: Gauge<'state'>;
  repairs: Counter<'result'>;
}

/** The reconciler's metrics (docs/identities.md, "Events, metrics"); every state starts at 0. */
export function identityMetrics(registry: Registry): IdentityMetrics {
  const pods = gauge(
    registry,
    'lanyard_pod_identities',
    'Pending and running Pods by identity state (docs/identities.md).',
    ['state'],
  );
  const repairs = counter(
    registry,
    'lanyard_identity_repairs_total',
    'Rollout restarts for Pods missing their identity, by result.',
    ['result'],
  );
  for (const s of IDENTITY_STATES) pods.set({ state: s }, 0);
  return { pods, repairs };
}

/** What the apply step writes through. */
export interface IdentityWriter {
  kube: KubeClient;
  log: Logger;
  events: EventRecorder;
  metrics: IdentityMetrics;
  memory: IdentityMemory;
  /** Called with a pair whose count of Pods `missing` its association changed. */
  subscribers: Set<(namespace: string, serviceAccount: string) => void>;
  enqueue(key: string): void;
}

const podRef = (ns: string, name: string, uid: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace: ns, name, uid },
});
const workloadRef = (kind: WorkloadKind, ns: string, name: string, uid?: string): KubeObject => ({
  apiVersion: 'apps/v1',
  kind,
  metadata: { namespace: ns, name, ...(uid ? { uid } : {}) },
});

/** Keeps the Pod's new row (undefined: none) and moves the gauge and the association's count with it. */
export function recordRow(w: IdentityWriter, key: string, next: PodRow | undefined): void {
  const change = w.memory.setRow(key, next);
  if (change.left) w.metrics.pods.dec({ state: change.left });
  if (change.entered) w.metrics.pods.inc({ state: change.entered });
  for (const pair of [change.missing?.from, change.missing?.to]) {
    if (!pair) continue;
    const [ns = '', sa = ''] = pair.split('/');
    for (const fn of w.subscribers) fn(ns, sa);
  }
}

/** A decided Pod's Events, log line, proof and repair look, in that order. */
export function reportPod(w: IdentityWriter, pod: PodView, row: PodRow, e: PodEffects): void {
  if (e.podWarning)
    w.events.warning(podRef(pod.namespace, pod.name, pod.uid), e.podWarning.reason, e.podWarning.message);
  if (e.ownerProblem) w.memory.addOwnerProblem(e.ownerProblem);
  if (e.workloadWarning && row.workloadKind && row.workloadName)
    w.events.warning(
      workloadRef(row.workloadKind, pod.namespace, row.workloadName),
      e.workloadWarning.reason,
      e.workloadWarning.message,
    );
  if (e.changed)
    w.log.info(
      {
        namespace: pod.namespace,
        pod: pod.name,
        state: row.state,
        source: row.source,
        role: row.role || undefined,
      },
      'Pod identity state',
    );
  if (e.prove) w.memory.prove(pod.uid);
  if (e.repairKey) w.enqueue(e.repairKey);
}

/** A workload's restart, or its IdentityRepairIneffective Warning (once per restart). */
export async function applyRepair(
  w: IdentityWriter,
  key: string,
  t: RepairTarget,
  workload: Deployment | StatefulSet | DaemonSet,
  plan: RepairPlan,
  problemPods: number,
): Promise<void> {
  const ref = workloadRef(t.kind, t.namespace, t.name, workload?.metadata?.uid);
  if (plan.kind === 'restart') {
    await w.kube.patch(workloadPath(t), plan.patch, 'application/merge-patch+json');
    w.metrics.repairs.inc({ result: 'restarted' });
    w.events.normal(ref, 'IdentityRepair', plan.note);
    w.log.info({ ...t, pods: problemPods }, 'rollout restart for Pods missing their identity');
  } else if (plan.kind === 'ineffective') {
    w.memory.ineffective.set(key, plan.restartMs);
    w.metrics.repairs.inc({ result: 'ineffective' });
    w.events.warning(ref, 'IdentityRepairIneffective', plan.message);
  }
}
