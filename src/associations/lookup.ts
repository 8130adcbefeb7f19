// The association index shared by the webhook, the verifier and the association controller (docs/associations.md,
// docs/verified-start.md): views of Lanyard and, when observed, ACK PodIdentityAssociation objects, indexed by
// (cluster, namespace, serviceAccount). The oldest non-deleting object of a pair is its owner.
import type { Json } from '../kube/client.ts';
import { sharedOrOwnCache } from '../kube/cache.ts';
import type { CacheView, InformerFactory } from '../kube/cache.ts';
import type { Deps, Running } from '../runtime/deps.ts';
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
class ServedKind {
  view?: CacheView<AssociationRecord>;
  private checked = false;
  constructor(
    readonly group: string,
    private readonly always: boolean,
    private readonly deps: Pick<Deps, 'kube' | 'log'> & { cache: InformerFactory },
    private readonly transform: (o: Json) => AssociationRecord,
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
        const res = await this.deps.kube.raw({ path: `/apis/${this.group}/${VERSION}` });
        served = res.status === 200 && (res.body?.resources ?? []).some((r: Json) => r.name === PLURAL);
        if (res.status !== 200 && res.status !== 404) throw new Error(`discovery answered ${res.status}`);
      } catch (e) {
        // Keep the current state on a transient discovery error.
        this.deps.log.warn({ err: e, group: this.group }, 'association discovery failed');
        return;
      }
    }
    if (served && !this.view) {
      this.deps.log.info({ group: this.group }, 'watching PodIdentityAssociation objects');
      this.view = this.deps.cache.view<AssociationRecord>({
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

export function createAssociationLookup(
  deps: Pick<Deps, 'kube' | 'log' | 'cache'>,
  opts: LookupOptions,
): AssociationIndex & Running {
  const { cache, release: releaseCache } = sharedOrOwnCache(deps, (sel, e) =>
    deps.log.warn({ err: e, path: sel.path }, 'association watch error'),
  );
  const byPair = new Map<string, Map<string, AssociationRecord>>();
  const listeners = new Set<(c: AssociationChange) => void>();
  const warnedClusterRef = new Set<string>();
  const id = (r: AssociationRecord) => `${r.kind}/${r.objectNamespace}/${r.objectName}`;

  const index = (r: AssociationRecord) => {
    if (!r.cluster) return;
    const k = pairKey(r.cluster, r.namespace, r.serviceAccount);
    let m = byPair.get(k);
    if (!m) byPair.set(k, (m = new Map()));
    m.set(id(r), r);
  };
  const unindex = (r: AssociationRecord) => {
    if (!r.cluster) return;
    const k = pairKey(r.cluster, r.namespace, r.serviceAccount);
    const m = byPair.get(k);
    m?.delete(id(r));
    if (m?.size === 0) byPair.delete(k);
  };
  const notify = (c: AssociationChange) => {
    for (const l of listeners) {
      try {
        l(c);
      } catch (e) {
        deps.log.error({ err: e }, 'association change listener failed');
      }
    }
  };
  const ackTransform = (o: Json) => {
    const r = ackRecord(o);
    if (!r.cluster && !warnedClusterRef.has(r.uid)) {
      warnedClusterRef.add(r.uid);
      deps.log.warn(
        { object: `${r.objectNamespace}/${r.objectName}` },
        'ACK PodIdentityAssociation sets only clusterRef; Lanyard ignores it (set spec.clusterName)',
      );
    }
    return r;
  };
  const handlers = [
    (r: AssociationRecord) => {
      index(r);
      notify({ after: r });
    },
    (r: AssociationRecord, old: AssociationRecord) => {
      unindex(old);
      index(r);
      notify({ before: old, after: r });
    },
    (r: AssociationRecord) => {
      unindex(r);
      notify({ before: r });
    },
  ] as const;

  const lanyardKind = new ServedKind(
    GROUP,
    false,
    { ...deps, cache },
    (o) => lanyardRecord(o, opts.clusterName),
    ...handlers,
  );
  const ackKind =
    opts.observeAck === 'false'
      ? undefined
      : new ServedKind(ACK_GROUP, opts.observeAck === 'true', { ...deps, cache }, ackTransform, ...handlers);

  const check = async () => {
    await Promise.all([lanyardKind.check(), ackKind?.check()]);
  };
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const started = check().finally(() => {
    if (stopped) return;
    timer = setInterval(() => void check(), opts.discoveryIntervalMs ?? RECHECK_MS);
    timer.unref?.();
  });

  const recordsFor = (cluster: string, ns: string, sa: string) => {
    const all = [...(byPair.get(pairKey(cluster, ns, sa))?.values() ?? [])];
    const owner = selectOwner(all);
    return owner ? [owner, ...all.filter((r) => r !== owner)] : all;
  };
  const ownerOf = (cluster: string, ns: string, sa: string) =>
    selectOwner(byPair.get(pairKey(cluster, ns, sa))?.values() ?? []);
  const synced = () => lanyardKind.synced && (ackKind?.synced ?? true);

  return {
    // The record itself (an AssociationIdentity with bookkeeping): records are never mutated, and the admission
    // path calls this for every Pod, so no copy.
    forPair: (namespace, serviceAccount) => ownerOf(opts.clusterName, namespace, serviceAccount),
    synced,
    ownerOf,
    recordsFor,
    lanyardRecords: () => lanyardKind.view?.values() ?? [],
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    ackObserved: () => !!ackKind?.view,
    async waitForSync(timeoutMs: number): Promise<boolean> {
      const deadline = Date.now() + timeoutMs;
      await Promise.race([started, new Promise((r) => setTimeout(r, timeoutMs).unref?.())]);
      while (!synced()) {
        if (Date.now() >= deadline) return false;
        await sleep(20);
      }
      return true;
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      lanyardKind.stop();
      ackKind?.stop();
      releaseCache();
    },
  };
}
