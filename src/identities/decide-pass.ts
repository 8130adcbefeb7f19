// The identity reconciler's pass decisions (docs/identities.md), pure: from a Pod's decision (decide.ts) and what the
// reconciler remembers, the row it keeps, what changes in its counts, which Events and log line the pass writes, and
// whether a workload is restarted. Table-tested in decide-pass.test.ts; the gather step reads the inputs
// (gather.ts), the apply step performs the outputs (apply.ts).
import type { Deployment, StatefulSet, DaemonSet } from 'kubernetes-types/apps/v1.js';
import {
  EVENT_REASONS,
  PROBLEM_STATES,
  REPAIRABLE_STATES,
  REPAIR_ANNOTATION,
  RESTARTED_AT_ANNOTATION,
  decideRepair,
  repairEnabled,
  restartPatch,
  type IdentityState,
  type PodIdentity,
  type PodView,
  type WorkloadKind,
} from './decide.ts';
import { identityRow, type IdentityRow } from './snapshot.ts';

/** A Pod's last decision, with what the repair step and the workload Events need. */
export type PodRow = IdentityRow & { creationMs: number; workloadKind?: WorkloadKind; workloadName?: string };

export interface Workload {
  kind: WorkloadKind;
  name: string;
}

/** The row the reconciler keeps for a Pod it decided. */
export function podRow(d: PodIdentity, pod: PodView, workload: Workload | undefined): PodRow {
  return {
    ...identityRow(d, pod, workload, new Date(pod.creationMs).toISOString()),
    creationMs: pod.creationMs,
    ...(workload ? { workloadKind: workload.kind, workloadName: workload.name } : {}),
  };
}

/** The row as `stateOf` hands it out: what `lanyard get identities` prints. */
export function publicRow(r: PodRow): IdentityRow {
  const { creationMs: _c, workloadKind: _k, workloadName: _n, ...row } = r;
  return row;
}

/** The key of a workload's count of Pods in one problem state. */
const ownerKey = (kind: WorkloadKind, namespace: string, name: string | undefined, state: IdentityState) =>
  `${kind}/${namespace}/${name}/${state}`;

/** The pair a row counts in `missingFor`: a Pod `missing` the identity its association declares. */
const missingPair = (r: IdentityRow) =>
  r.state === 'missing' && r.source === 'association' ? `${r.namespace}/${r.serviceAccount}` : undefined;

/** What replacing a Pod's row changes in the counts. */
export interface RowChange {
  /** The state the Pod leaves (gauge down), and the state it enters (gauge up). */
  left?: IdentityState;
  entered?: IdentityState;
  /** The workload's problem count the old row was in. */
  ownerLeft?: string;
  /** The pair whose `missing` count goes down (`from`) or up (`to`); only when they differ. */
  missing?: { from?: string; to?: string };
}

export function rowChange(prev: PodRow | undefined, next: PodRow | undefined): RowChange {
  const change: RowChange = {};
  if (prev) {
    change.left = prev.state;
    if (prev.workloadKind && PROBLEM_STATES.has(prev.state))
      change.ownerLeft = ownerKey(prev.workloadKind, prev.namespace, prev.workloadName, prev.state);
  }
  if (next) change.entered = next.state;
  const from = prev && missingPair(prev);
  const to = next && missingPair(next);
  if (from !== to) change.missing = { from, to };
  return change;
}

export interface Warning {
  reason: string;
  message: string;
}

/** What a pass writes and remembers for a Pod it decided. */
export interface PodEffects {
  /** The state or the message changed: logged, and for a problem state a Warning on the Pod. */
  changed: boolean;
  podWarning?: Warning;
  /** A Warning on the workload: its first Pod in that problem state (not one per Pod). */
  workloadWarning?: Warning;
  /** The workload's count of Pods in this problem state goes up by one. */
  ownerProblem?: string;
  /** A fresh VerifiedIdentity vouches for the Pod: remembered past the entry's expiry (docs/adr/0900). */
  prove: boolean;
  /** The workload to look at for a repair (`missing`, `stale`). */
  repairKey?: string;
}

/**
 * The effects of a Pod's new row. `ownerProblems` is the workload's count for the row's state once the Pod's previous
 * row was taken out of it.
 */
export function podEffects(
  prev: PodRow | undefined,
  row: PodRow,
  ownerProblems: (key: string) => number,
): PodEffects {
  const changed = !prev || prev.state !== row.state || prev.message !== row.message;
  const reason = EVENT_REASONS[row.state];
  const kind = row.workloadKind;
  const owner =
    kind && PROBLEM_STATES.has(row.state)
      ? ownerKey(kind, row.namespace, row.workloadName, row.state)
      : undefined;
  return {
    changed,
    ...(changed && reason ? { podWarning: { reason, message: row.message } } : {}),
    ...(changed && reason && owner && ownerProblems(owner) === 0
      ? { workloadWarning: { reason, message: `Pod ${row.pod}: ${row.message}` } }
      : {}),
    ...(owner ? { ownerProblem: owner } : {}),
    prove: row.proven === true,
    ...(kind && REPAIRABLE_STATES.has(row.state)
      ? { repairKey: repairKey({ kind, namespace: row.namespace, name: row.workloadName ?? '' }) }
      : {}),
  };
}

// ---- Repairs (docs/identities.md, "Repair") --------------------------------------------------------------------------

const REPAIR = 'repair:';

/** A workload to repair, as its queue key names it. */
export interface RepairTarget {
  kind: WorkloadKind;
  namespace: string;
  name: string;
}

export const repairKey = (t: RepairTarget) => `${REPAIR}${t.kind}/${t.namespace}/${t.name}`;
export const isRepairKey = (key: string) => key.startsWith(REPAIR);
export function parseRepairKey(key: string): RepairTarget {
  const [kind, namespace, name] = key.slice(REPAIR.length).split('/') as [WorkloadKind, string, string];
  return { kind, namespace, name };
}

/** The workloads the periodic look covers: those with a Pod a restart could fix (their own annotation is not watched). */
export function repairResyncKeys(rows: Iterable<PodRow>): string[] {
  const keys: string[] = [];
  for (const r of rows)
    if (r.workloadKind && REPAIRABLE_STATES.has(r.state))
      keys.push(repairKey({ kind: r.workloadKind, namespace: r.namespace, name: r.workloadName ?? '' }));
  return keys;
}

export interface RepairInput {
  /** Creation times of the workload's Pods in a repairable state. */
  problemPods: readonly number[];
  /** The workload as read: only its metadata and Pod template's annotations are read. */
  workload: Deployment | StatefulSet | DaemonSet;
  /** `lanyard.dev/identity-repair` on the Namespace. */
  namespaceRepair: string | undefined;
  /** The restart an IdentityRepairIneffective Event was already written for. */
  reportedIneffective: number | undefined;
  now: Date;
}

export type RepairPlan =
  | { kind: 'restart'; patch: ReturnType<typeof restartPatch>; note: string }
  /** Once per restart: the periodic look at the workload must not repeat it. */
  | { kind: 'ineffective'; restartMs: number; message: string }
  | { kind: 'none' };

export function planRepair(i: RepairInput): RepairPlan {
  const w = i.workload;
  const enabled = repairEnabled(w?.metadata?.annotations?.[REPAIR_ANNOTATION], i.namespaceRepair);
  const last = Date.parse(w?.spec?.template?.metadata?.annotations?.[RESTARTED_AT_ANNOTATION] ?? '');
  const d = decideRepair({
    enabled,
    problemPods: i.problemPods,
    lastRestartMs: Number.isFinite(last) ? last : undefined,
  });
  if (d.kind === 'restart')
    return {
      kind: 'restart',
      patch: restartPatch(i.now),
      note:
        `rollout restart: ${i.problemPods.length} Pod(s) lack the identity their ServiceAccount declares now ` +
        `(${REPAIR_ANNOTATION}: restart)`,
    };
  if (d.kind === 'ineffective' && i.reportedIneffective !== last)
    return { kind: 'ineffective', restartMs: last, message: d.message };
  return { kind: 'none' };
}
