// The association index shared by the webhook, the verifier and the association controller (docs/associations.md,
// docs/verified-start.md): views of Lanyard and, when observed, ACK PodIdentityAssociation objects, indexed by
// (cluster, namespace, serviceAccount). The oldest non-deleting object of a pair is its owner.
import type { APIResourceList } from 'kubernetes-types/meta/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
import { sharedOrOwnCache } from '../kube/cache.ts';
import type { CacheView, InformerFactory } from '../kube/cache.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import type { Logger } from '../runtime/log.ts';
import type { AckPodIdentityAssociation, PodIdentityAssociation } from './types.ts';
import type { AssociationLookup } from '../identity/sources.ts';
import {
  ACK_GROUP,
  GROUP,
  PLURAL,
  VERSION,
  ackRecord,
  lanyardRecord,
  pairKey,
  type AssociationRecord,
} from './model.ts';
import { selectOwner } from './decide.ts';
import { sleep } from '../runtime/clock.ts';

export type { AssociationRecord } from './model.ts';

export interface AssociationChange {
  before?: AssociationRecord;
  after?: AssociationRecord;
}

export interface AssociationIndex extends AssociationLookup {
  /** The owner of a pair in any cluster (the controller manages associations of other clusters too). */
  ownerOf(cluster: string, namespace: string, serviceAccount: string): AssociationRecord | undefined;
  /** Every record of a pair, owner first. */
  recordsFor(cluster: string, namespace: string, serviceAccount: string): AssociationRecord[];
  lanyardRecords(): Iterable<AssociationRecord>;
  /** Called for every add, update and delete of either kind (after the index is updated). */
  subscribe(fn: (c: AssociationChange) => void): () => void;
  ackObserved(): boolean;
  waitForSync(timeoutMs: number): Promise<boolean>;
}

export interface LookupOptions {
  clusterName: string;
  observeAck: 'auto' | 'true' | 'false';
  /** How often `auto` checks whether a CRD is served (default 60 s). */
  discoveryIntervalMs?: number;
}

const RECHECK_MS = 60_000;

/** Watches one kind while it is served (discovery), so a missing CRD reads as "no objects" instead of an error. */
class ServedKind<O extends KubeObject = AckPodIdentityAssociation> {
  view?: CacheView<AssociationRecord>;
  private checked = false;
  constructor(
    readonly group: string,
    private readonly always: boolean,
    private readonly deps: Pick<Deps, 'kube' | 'log'> & { cache: InformerFactory },
    private readonly transform: (o: O) => AssociationRecord,
    private readonly onAdd: (r: AssociationRecord) => void,
    private readonly onUpdate: (r: AssociationRecord, old: AssociationRecord) => void,
    private readonly onDelete: (r: AssociationRecord) => void,
  ) {}

  get synced(): boolean {
    if (this.view) return this.view.synced;
    return this.checked && !this.always;
  }

  async check(): Promise<void> {
    let served = this.always;
    if (!served) {
      try {
        const res = await this.deps.kube.raw<APIResourceList | undefined>({
          path: `/apis/${this.group}/${VERSION}`,
        });
        served = res.status === 200 && (res.body?.resources ?? []).some((r) => r.name === PLURAL);
        if (res.status !== 200 && res.status !== 404) throw new Error(`discovery answered ${res.status}`);
      } catch (e) {
        // Keep the current state on a transient discovery error.
        this.deps.log.warn({ err: e, group: this.group }, 'association discovery failed');
        return;
      }
    }
    if (served && !this.view) {
      this.deps.log.info({ group: this.group }, 'watching PodIdentityAssociation objects');
      this.view = this.deps.cache.view<AssociationRecord, O>({
        path: `/apis/${this.group}/${VERSION}/${PLURAL}`,
        transform: this.transform,
        onAdd: (r) => this.onAdd(r),
        onUpdate: (r, old) => this.onUpdate(r, old),
        onDelete: (r) => this.onDelete(r),
      });
    } else if (!served && this.view) {
      this.deps.log.info(
        { group: this.group },
        'PodIdentityAssociation CRD no longer served; forgetting its objects',
      );
      const view = this.view;
      this.view = undefined;
      view.close();
      for (const r of view.values()) this.onDelete(r);
    }
    this.checked = true;
  }

  stop(): void {
    this.view?.close();
  }
}

type Listener = (c: AssociationChange) => void;

/** The records of both kinds by (cluster, namespace, serviceAccount), and who listens to their changes. */
class PairIndex {
  private readonly byPair = new Map<string, Map<string, AssociationRecord>>();
  private readonly listeners = new Set<Listener>();
  constructor(private readonly log: Logger) {}

  add(r: AssociationRecord): void {
    this.index(r);
    this.notify({ after: r });
  }

  update(r: AssociationRecord, old: AssociationRecord): void {
    this.unindex(old);
    this.index(r);
    this.notify({ before: old, after: r });
  }

  remove(r: AssociationRecord): void {
    this.unindex(r);
    this.notify({ before: r });
  }

  subscribe(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  ownerOf(cluster: string, ns: string, sa: string): AssociationRecord | undefined {
    return selectOwner(this.byPair.get(pairKey(cluster, ns, sa))?.values() ?? []);
  }

  /** Every record of a pair, owner first. */
  recordsFor(cluster: string, ns: string, sa: string): AssociationRecord[] {
    const all = [...(this.byPair.get(pairKey(cluster, ns, sa))?.values() ?? [])];
    const owner = selectOwner(all);
    return owner ? [owner, ...all.filter((r) => r !== owner)] : all;
  }

  private static id(r: AssociationRecord): string {
    return `${r.kind}/${r.objectNamespace}/${r.objectName}`;
  }

  private index(r: AssociationRecord): void {
    if (!r.cluster) return;
    const k = pairKey(r.cluster, r.namespace, r.serviceAccount);
    let m = this.byPair.get(k);
    if (!m) this.byPair.set(k, (m = new Map()));
    m.set(PairIndex.id(r), r);
  }

  private unindex(r: AssociationRecord): void {
    if (!r.cluster) return;
    const k = pairKey(r.cluster, r.namespace, r.serviceAccount);
    const m = this.byPair.get(k);
    m?.delete(PairIndex.id(r));
    if (m?.size === 0) this.byPair.delete(k);
  }

  private notify(c: AssociationChange): void {
    for (const l of this.listeners) {
      try {
        l(c);
      } catch (e) {
        this.log.error({ err: e }, 'association change listener failed');
      }
    }
  }
}

/** ACK objects as records, warning once per object that sets only `clusterRef` (which Lanyard ignores). */
function ackTransform(log: Logger): (o: AckPodIdentityAssociation) => AssociationRecord {
  const warnedClusterRef = new Set<string>();
  return (o) => {
    const r = ackRecord(o);
    if (!r.cluster && !warnedClusterRef.has(r.uid)) {
      warnedClusterRef.add(r.uid);
      log.warn(
        { object: `${r.objectNamespace}/${r.objectName}` },
        'ACK PodIdentityAssociation sets only clusterRef; Lanyard ignores it (set spec.clusterName)',
      );
    }
    return r;
  };
}

/** Checks at once, then every interval, which kinds are served; `started` settles after the first check. */
function startDiscovery(
  kinds: { check(): Promise<void> }[],
  intervalMs: number,
): { started: Promise<void>; stop(): void } {
  const check = async () => {
    await Promise.all(kinds.map((k) => k.check()));
  };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const started = check().finally(() => {
    if (stopped) return;
    timer = setInterval(() => void check(), intervalMs);
    timer.unref?.();
  });
  return {
    started,
    stop() {
      stopped = true;
      if (timer) clearInterval(timer);
    },
  };
}

/** Waits for the first discovery (at most `timeoutMs`), then until every watched kind has listed. */
async function waitForSync(
  started: Promise<void>,
  synced: () => boolean,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  await Promise.race([started, new Promise((r) => setTimeout(r, timeoutMs).unref?.())]);
  while (!synced()) {
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

export function createAssociationLookup(
  deps: Pick<Deps, 'kube' | 'log' | 'cache'>,
  opts: LookupOptions,
): AssociationIndex & Running {
  const { cache, release: releaseCache } = sharedOrOwnCache(deps, (sel, e) =>
    deps.log.warn({ err: e, path: sel.path }, 'association watch error'),
  );
  const pairs = new PairIndex(deps.log);
  const handlers = [
    (r: AssociationRecord) => pairs.add(r),
    (r: AssociationRecord, old: AssociationRecord) => pairs.update(r, old),
    (r: AssociationRecord) => pairs.remove(r),
  ] as const;
  const kindDeps = { ...deps, cache };
  const lanyardKind = new ServedKind<PodIdentityAssociation>(
    GROUP,
    false,
    kindDeps,
    (o) => lanyardRecord(o, opts.clusterName),
    ...handlers,
  );
  const ackKind =
    opts.observeAck === 'false'
      ? undefined
      : new ServedKind(ACK_GROUP, opts.observeAck === 'true', kindDeps, ackTransform(deps.log), ...handlers);
  const discovery = startDiscovery(
    ackKind ? [lanyardKind, ackKind] : [lanyardKind],
    opts.discoveryIntervalMs ?? RECHECK_MS,
  );
  const synced = () => lanyardKind.synced && (ackKind?.synced ?? true);
  const ownerOf = (cluster: string, ns: string, sa: string) => pairs.ownerOf(cluster, ns, sa);

  return {
    // The record itself (an AssociationIdentity with bookkeeping): records are never mutated, and the admission
    // path calls this for every Pod, so no copy.
    forPair: (namespace, serviceAccount) => ownerOf(opts.clusterName, namespace, serviceAccount),
    synced,
    ownerOf,
    recordsFor: (cluster, ns, sa) => pairs.recordsFor(cluster, ns, sa),
    lanyardRecords: () => lanyardKind.view?.values() ?? [],
    subscribe: (fn) => pairs.subscribe(fn),
    ackObserved: () => !!ackKind?.view,
    waitForSync: (timeoutMs: number) => waitForSync(discovery.started, synced, timeoutMs),
    async stop() {
      discovery.stop();
      lanyardKind.stop();
      ackKind?.stop();
      releaseCache();
    },
  };
}
