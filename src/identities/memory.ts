// What the identity reconciler keeps between passes (docs/identities.md): the last row per Pod, the Pods of each pair
// and namespace (so a source change requeues only its Pods), the counts the association controller and the workload
// Events read, and the proof this process saw (docs/adr/0900-running-pod-identity-reconciler.md). In memory only, one
// per start; nothing here does I/O: the apply step turns each change into the gauge and the subscribers' calls.
import { REPAIRABLE_STATES, type PodView } from './decide.ts';
import type { ViewChange } from './views.ts';
import { rowChange, type PodRow, type RowChange, type RepairTarget } from './decide-pass.ts';

function addTo(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}
function removeFrom(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (s) {
    s.delete(v);
    if (s.size === 0) m.delete(k);
  }
}
/** Adds `d` to a count; a count that reaches 0 is removed. Returns the new count. */
function bump(m: Map<string, number>, k: string, d: number): number {
  const n = (m.get(k) ?? 0) + d;
  if (n <= 0) m.delete(k);
  else m.set(k, n);
  return n;
}

/** Pods by pair (`namespace/serviceAccount`) and by namespace. */
class PodIndex {
  private readonly byPair = new Map<string, Set<string>>();
  private readonly byNamespace = new Map<string, Set<string>>();
  private readonly pods = new Map<string, { pair: string; namespace: string; uid: string }>();

  /** Indexes the Pod under `key`; returns the uid of an older Pod of that name it replaced, if any. */
  track(key: string, pod: PodView): string | undefined {
    const pair = `${pod.namespace}/${pod.serviceAccount}`;
    const indexed = this.pods.get(key);
    let replaced: string | undefined;
    if (indexed && (indexed.uid !== pod.uid || indexed.pair !== pair)) {
      // The name was reused by a new Pod (perhaps of another ServiceAccount): forget the old one's index.
      this.forget(key);
      replaced = indexed.uid;
    }
    if (!this.pods.has(key)) {
      this.pods.set(key, { pair, namespace: pod.namespace, uid: pod.uid });
      addTo(this.byPair, pair, key);
      addTo(this.byNamespace, pod.namespace, key);
    }
    return replaced;
  }

  /** Drops the Pod under `key`; returns its uid when it was indexed. */
  forget(key: string): string | undefined {
    const indexed = this.pods.get(key);
    if (!indexed) return undefined;
    removeFrom(this.byPair, indexed.pair, key);
    removeFrom(this.byNamespace, indexed.namespace, key);
    this.pods.delete(key);
    return indexed.uid;
  }

  /** The Pods a change of the views concerns. */
  keysFor(c: ViewChange): Iterable<string> {
    switch (c.kind) {
      case 'pod':
        return [c.key];
      case 'pair':
        return this.byPair.get(`${c.namespace}/${c.serviceAccount}`) ?? [];
      case 'namespace':
      case 'replicaset':
        return this.byNamespace.get(c.namespace) ?? [];
      case 'all':
        return this.pods.keys();
    }
  }
}

export class IdentityMemory {
  readonly index = new PodIndex();
  private readonly rows = new Map<string, PodRow>();
  /** Pods of a pair reported `missing` because of an association, by `namespace/serviceAccount`. */
  private readonly missing = new Map<string, number>();
  /** Pods in a problem state per workload and state (`Kind/namespace/name/state`): its Event is for the first one. */
  private readonly ownerProblems = new Map<string, number>();
  /** Pods (by uid) a fresh VerifiedIdentity vouched for while this process watched: proof that outlives the entry. */
  private readonly proven = new Set<string>();
  /** The restart (its time) each workload's IdentityRepairIneffective Event was written for: once per restart. */
  readonly ineffective = new Map<string, number>();

  row(key: string): PodRow | undefined {
    return this.rows.get(key);
  }
  rowValues(): Iterable<PodRow> {
    return this.rows.values();
  }
  missingFor(pair: string): number {
    return this.missing.get(pair) ?? 0;
  }
  ownerProblemCount(ownerKey: string): number {
    return this.ownerProblems.get(ownerKey) ?? 0;
  }
  addOwnerProblem(ownerKey: string): void {
    bump(this.ownerProblems, ownerKey, 1);
  }
  isProven(uid: string): boolean {
    return this.proven.has(uid);
  }
  prove(uid: string): void {
    this.proven.add(uid);
  }

  /** Follows the Pod under `key` (a reused name forgets the older Pod's proof). */
  track(key: string, pod: PodView): void {
    const replaced = this.index.track(key, pod);
    if (replaced !== undefined) this.proven.delete(replaced);
  }

  /** The Pod is gone: its index entry and its proof go too. */
  forget(key: string): void {
    const uid = this.index.forget(key);
    if (uid !== undefined) this.proven.delete(uid);
  }

  /** Replaces the Pod's row (undefined: none) and its counts; the change says what the gauge and subscribers see. */
  setRow(key: string, next: PodRow | undefined): RowChange {
    const change = rowChange(this.rows.get(key), next);
    if (change.ownerLeft) bump(this.ownerProblems, change.ownerLeft, -1);
    if (next) this.rows.set(key, next);
    else this.rows.delete(key);
    if (change.missing?.from) bump(this.missing, change.missing.from, -1);
    if (change.missing?.to) bump(this.missing, change.missing.to, 1);
    return change;
  }

  /** Creation times of the workload's Pods in a state a restart can fix. */
  problemPods(t: RepairTarget): number[] {
    const out: number[] = [];
    for (const r of this.rows.values()) {
      if (
        r.workloadKind === t.kind &&
        r.namespace === t.namespace &&
        r.workloadName === t.name &&
        REPAIRABLE_STATES.has(r.state)
      )
        out.push(r.creationMs);
    }
    return out;
  }
}
