// The shared informer cache of one process (docs/adr/1000-shared-informer-cache-and-reconcilers.md).
//
// How to get a view: every controller receives the process's `InformerFactory` in its deps (`deps.cache`) and asks
// it for a view of a resource:
//
//     const pods = cache.view<GatedPod>({
//       path: '/api/v1/pods', fieldSelector: 'spec.nodeName=',      // what the API server sends (the watch)
//       transform: (o) => toGatedPod(o),                             // what this view keeps of each object
//       filter: (o) => !!o.metadata?.labels?.app,                     // optional client-side selection
//       indexes: { byNode: (p) => [p.node] },                         // optional: pods.byIndex('byNode', 'n1')
//       onAdd, onUpdate, onDelete,                                    // optional: enqueue keys, never reconcile here
//     });
//     await pods.waitForSync(60_000);
//     pods.get('ns/name'); pods.values(); pods.byIndex('byNode', 'n1');
//     pods.close();                                                 // on stop; the watch ends with its last view
//
// Views with the same selection (path, selectors, metadataOnly) share one list/watch: the process watches each
// selection once, whatever the number of controllers. Each view keeps its own projection (`transform`), so sharing a
// watch never keeps more of an object than its consumers asked for. Views are read-only: a controller that wrote an
// object hands the API server's answer to `recordWrite`, which is the one place where "our own write beats the cache"
// is decided.
import type { Json, KubeClient, KubeObject, WatchEvent } from './client.ts';
import { ListWatch, objectKey, waitUntilSynced, type ResourceSelection } from './informer.ts';

/** `T`: what the view keeps of each object; `O`: the watched kind as the API server sends it. */
export interface ViewOptions<T, O extends KubeObject = Json> extends ResourceSelection {
  /** What the view keeps of an object; default the object itself. */
  transform?: (obj: O) => T;
  /** Client-side selection on top of the shared watch; an object that stops matching is a delete for this view. */
  filter?: (obj: O) => boolean;
  /** Secondary indexes: name → the index values of an object (looked up with `byIndex`). */
  indexes?: Record<string, (obj: T) => string[]>;
  onAdd?: (obj: T, key: string) => void;
  onUpdate?: (obj: T, old: T, key: string) => void;
  onDelete?: (obj: T, key: string) => void;
  /** After each full (re)list has reached this view. */
  onSynced?: () => void;
}

/** A read-only, indexed view of one resource selection. */
export interface CacheView<T> {
  get(key: string): T | undefined;
  has(key: string): boolean;
  values(): IterableIterator<T>;
  keys(): IterableIterator<string>;
  readonly size: number;
  /** Objects whose index `name` holds `value`. */
  byIndex(name: string, value: string): T[];
  /** Keys of the objects whose index `name` holds `value`. */
  keysByIndex(name: string, value: string): string[];
  /** The values index `name` holds now (each with at least one object). */
  indexValues(name: string): IterableIterator<string>;
  readonly synced: boolean;
  waitForSync(timeoutMs?: number, signal?: AbortSignal): Promise<boolean>;
  /**
   * The object a write of ours returned: every view of the resource shows it until the watch delivers that exact
   * resourceVersion, the object's deletion, or the next list (which is the truth as of its snapshot).
   */
  recordWrite(obj: KubeObject): void;
  /**
   * Lists the selection again, for every view of it, and resolves once that list has reached the views (the webhook's
   * debug cache clear, docs/webhook.md#debug-routes). Views that already hold an object's version see no change.
   */
  relist(): Promise<void>;
  /** Detaches the view; the watch stops with its last view. */
  close(): void;
}

export interface InformerFactoryOptions {
  client: KubeClient;
  onError?: (selection: ResourceSelection, e: unknown) => void;
  /** First pause before retrying a failed list or watch (ms); doubles with jitter up to 30 s. */
  retryDelayMs?: number;
}

/** How long the factory remembers that the watch delivered a resourceVersion (a write recorded later is stale). */
const DELIVERED_MEMORY_MS = 120_000;

export class InformerFactory {
  private readonly informers = new Map<string, SharedInformer>();
  private watchesSent = 0;

  constructor(private readonly opts: InformerFactoryOptions) {}

  view<T = Json, O extends KubeObject = Json>(o: ViewOptions<T, O>): CacheView<T> {
    const selection: ResourceSelection = {
      path: o.path,
      labelSelector: o.labelSelector,
      fieldSelector: o.fieldSelector,
      metadataOnly: o.metadataOnly,
    };
    const id = JSON.stringify([o.path, o.labelSelector ?? '', o.fieldSelector ?? '', !!o.metadataOnly]);
    let inf = this.informers.get(id);
    if (!inf) {
      inf = new SharedInformer(
        this.opts,
        selection,
        () => this.watchesSent++,
        () => this.informers.delete(id),
      );
      this.informers.set(id, inf);
    }
    return inf.attach(o);
  }

  /** Selections watched now (one watch each). */
  get watchedSelections(): string[] {
    return [...this.informers.keys()];
  }

  /** Watch requests sent since the factory was made (re-watches after a timeout or error included). */
  get watchRequests(): number {
    return this.watchesSent;
  }

  stop(): void {
    for (const inf of [...this.informers.values()]) inf.stop();
    this.informers.clear();
  }
}

/** A view's filter refused the object. */
const SKIP: unique symbol = Symbol('skip');

/** One list/watch, fanned out to its views, with the own-write rule. */
class SharedInformer {
  private readonly listWatch: ListWatch<never, KubeObject>;
  /**
   * The list being received, as its pages arrive: each listed key's resourceVersion (it becomes `held`), and per view
   * of `listViews` (same order) its projections by key, which become the view's store on its first list. Nothing
   * else is kept per object: 50,000 ServiceAccounts cost the webhook what its own informer did (docs/adr/1080).
   */
  private listingRv = new Map<string, string>();
  private listingValues: Array<Map<string, unknown>> = [];
  private readonly views = new Set<View<unknown>>();
  /**
   * The views a list in flight projects for. Each page is projected as it arrives, so a list of 10,000 Pods or
   * 50,000 ServiceAccounts never holds every raw object at once (as docs/adr/0111 does for the webhook's own
   * informer); a view attached during the list has no projection of the pages already read, and waits for the
   * list that its attach requests.
   */
  private listViews: Array<View<unknown>> | undefined;
  /** The list in flight has projected an object already (a view attached now would miss it). */
  private listProjected = false;
  /** resourceVersion each view holds now, by key (equality only: resourceVersions are opaque). */
  private held = new Map<string, string>();
  /** Our writes the watch has not delivered yet: key → the resourceVersion the API server answered. */
  private readonly pending = new Map<string, string>();
  /** `key@resourceVersion` the watch delivered recently → when, oldest first. */
  private readonly delivered = new Map<string, number>();
  private listedOnce = false;
  private started = false;
  /** `relist` callers: waiting for a list to start, then for that list to end. */
  private relistWaiting: Array<() => void> = [];
  private relistListing: Array<() => void> = [];

  constructor(
    opts: InformerFactoryOptions,
    selection: ResourceSelection,
    onWatch: () => void,
    private readonly onIdle: () => void,
  ) {
    this.listWatch = new ListWatch<never, KubeObject>({
      ...selection,
      client: opts.client,
      retryDelayMs: opts.retryDelayMs,
      onWatch,
      onListStart: () => {
        this.listViews = [...this.views];
        this.listingRv = new Map();
        this.listingValues = [];
        this.listProjected = false;
        this.relistListing.push(...this.relistWaiting.splice(0));
      },
      projectListed: (item) => this.project(item),
      onList: () => this.onList(),
      onEvent: (e) => this.onEvent(e),
      onError: (e) => opts.onError?.(selection, e),
    });
  }

  attach<T, O extends KubeObject>(o: ViewOptions<T, O>): CacheView<T> {
    const view = new View<T, O>(o, this, () => {
      this.views.delete(view as View<unknown>);
      if (this.views.size === 0) {
        this.stop();
        this.onIdle();
      }
    });
    this.views.add(view as View<unknown>);
    if (!this.started) {
      this.started = true;
      this.listWatch.start();
    } else if (this.listViews && !this.listProjected) {
      // A list is in flight and no page has arrived yet: it serves this view too.
      this.listViews.push(view as View<unknown>);
    } else if (this.listedOnce || this.listViews) {
      // The objects were delivered (or are being projected) before this view existed: list again. Views already
      // synced skip what they hold.
      this.listWatch.restart();
    }
    return view;
  }

  stop(): void {
    this.listWatch.stop();
    for (const v of this.views) v.detach();
    this.views.clear();
    for (const done of [...this.relistWaiting.splice(0), ...this.relistListing.splice(0)]) done();
  }

  /** A list that starts after this call has reached the views (or the watch stopped). */
  relist(): Promise<void> {
    const listed = new Promise<void>((resolve) => this.relistWaiting.push(resolve));
    this.listWatch.restart();
    return listed;
  }

  recordWrite(obj: KubeObject): void {
    const rv = obj?.metadata?.resourceVersion;
    if (!rv) return;
    const key = objectKey(obj);
    // Already delivered by the watch: the views hold it or something newer.
    if (this.held.get(key) === rv || this.delivered.has(`${key}@${rv}`)) return;
    this.pending.set(key, rv);
    this.deliver('MODIFIED', key, obj);
  }

  private onEvent(e: WatchEvent<KubeObject>): void {
    if (e.type === 'BOOKMARK') return;
    const key = objectKey(e.object);
    const rv = e.object?.metadata?.resourceVersion ?? '';
    this.remember(`${key}@${rv}`);
    const p = this.pending.get(key);
    if (p && e.type !== 'DELETED' && p !== rv) {
      // Watch events arrive in order, and ours has not come yet: this one is older than our write.
      return;
    }
    this.pending.delete(key);
    // Our own write arriving: the views show it already, so their handlers do not run twice for one change.
    if (p && e.type !== 'DELETED') return;
    this.deliver(e.type, key, e.object);
  }

  private project(item: KubeObject): undefined {
    this.listProjected = true;
    const key = objectKey(item);
    this.listingRv.set(key, item?.metadata?.resourceVersion ?? '');
    (this.listViews ?? []).forEach((v, i) => {
      const value = v.project(item, SKIP);
      const mine = (this.listingValues[i] ??= new Map());
      if (value !== SKIP) mine.set(key, value);
    });
    return undefined;
  }

  private onList(): void {
    // A list is the truth as of its snapshot, and the watch that follows it delivers every later change, our own
    // writes included. ResourceVersions are never ordered, so a write of ours recorded before or during the list
    // cannot be told newer or older than what the list returned: the list wins, and a newer write of ours comes back
    // through the watch. Keeping the write instead could hold an older version for good, since every later event
    // for that object would look older than a write the watch never delivers (docs/adr/1000).
    this.pending.clear();
    const listedRv = this.listingRv;
    const values = this.listingValues;
    this.listingRv = new Map();
    this.listingValues = [];
    const projected = this.listViews ?? [];
    this.listViews = undefined;
    const unchanged = (key: string) => {
      const rv = listedRv.get(key);
      return rv !== undefined && this.held.get(key) === rv;
    };
    // Views attached during this list were not projected for: they wait for the list their attach requested.
    for (const v of this.views) {
      const slot = projected.indexOf(v);
      if (slot >= 0) v.replace(values[slot] ?? new Map(), unchanged);
    }
    this.held = listedRv;
    this.listedOnce = true;
    for (const done of this.relistListing.splice(0)) done();
  }

  private deliver(type: WatchEvent['type'], key: string, obj: KubeObject): void {
    if (type === 'DELETED') this.held.delete(key);
    else this.held.set(key, obj?.metadata?.resourceVersion ?? '');
    for (const v of this.views) v.apply(type, key, obj);
  }

  private remember(id: string): void {
    const now = Date.now();
    this.delivered.delete(id);
    this.delivered.set(id, now);
    for (const [k, at] of this.delivered) {
      if (now - at < DELIVERED_MEMORY_MS) break;
      this.delivered.delete(k);
    }
  }
}

/** One consumer's view; the raw objects its informer hands it are of the kind `O` its selection watches. */
class View<T, O extends KubeObject = KubeObject> implements CacheView<T> {
  private store = new Map<string, T>();
  private readonly index = new Map<string, Map<string, Set<string>>>();
  private syncedOnce = false;
  private readonly syncWaiters: Array<() => void> = [];
  private attached = true;

  constructor(
    private readonly o: ViewOptions<T, O>,
    private readonly informer: { recordWrite(obj: KubeObject): void; relist(): Promise<void> },
    private readonly onClose: () => void,
  ) {
    for (const name of Object.keys(o.indexes ?? {})) this.index.set(name, new Map());
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }
  has(key: string): boolean {
    return this.store.has(key);
  }
  values(): IterableIterator<T> {
    return this.store.values();
  }
  keys(): IterableIterator<string> {
    return this.store.keys();
  }
  get size(): number {
    return this.store.size;
  }
  byIndex(name: string, value: string): T[] {
    const keys = this.index.get(name)?.get(value);
    if (!keys) return [];
    return [...keys].map((k) => this.store.get(k)).filter((v): v is T => v !== undefined);
  }
  keysByIndex(name: string, value: string): string[] {
    return [...(this.index.get(name)?.get(value) ?? [])];
  }
  indexValues(name: string): IterableIterator<string> {
    return (this.index.get(name) ?? new Map<string, Set<string>>()).keys();
  }
  get synced(): boolean {
    return this.syncedOnce;
  }
  waitForSync(timeoutMs = Infinity, signal?: AbortSignal): Promise<boolean> {
    return waitUntilSynced(() => this.syncedOnce, this.syncWaiters, timeoutMs, signal);
  }
  recordWrite(obj: KubeObject): void {
    if (this.attached) this.informer.recordWrite(obj);
  }
  relist(): Promise<void> {
    return this.attached ? this.informer.relist() : Promise.resolve();
  }
  close(): void {
    if (!this.attached) return;
    this.detach();
    this.onClose();
  }
  detach(): void {
    this.attached = false;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  apply(type: WatchEvent['type'], key: string, raw: KubeObject): void {
    if (!this.attached) return;
    const obj = raw as O;
    const old = this.store.get(key);
    if (type === 'DELETED' || (this.o.filter && !this.o.filter(obj))) {
      if (old === undefined) return;
      this.remove(key, old);
      this.o.onDelete?.(old, key);
      return;
    }
    this.put(key, obj, old);
  }

  /** What this view keeps of a listed object, or `skip` when its filter refuses it. */
  project<S>(raw: KubeObject, skip: S): T | S {
    const obj = raw as O;
    if (this.o.filter && !this.o.filter(obj)) return skip;
    return this.keep(obj);
  }

  /** What the view keeps of an object: its transform's answer, or the object itself. */
  private keep(obj: O): T {
    return this.o.transform ? this.o.transform(obj) : (obj as unknown as T);
  }

  /**
   * A full list, projected page by page: `listed` holds this view's projection of every object its filter kept;
   * `unchanged` says the view already holds the listed version of a key. The view takes `listed` over.
   */
  replace(listed: Map<string, unknown>, unchanged: (key: string) => boolean): void {
    if (!this.attached) return;
    const values = listed as Map<string, T>;
    if (this.store.size === 0) {
      // The first list (or a list after every object went): the listed map becomes the store, without a copy.
      this.store = values;
      for (const [key, value] of values) this.added(key, value, undefined);
    } else {
      for (const [key, old] of [...this.store]) {
        if (values.has(key)) continue;
        this.remove(key, old);
        this.o.onDelete?.(old, key);
      }
      for (const [key, value] of values) {
        const old = this.store.get(key);
        if (old !== undefined && this.syncedOnce && unchanged(key)) continue;
        this.store.set(key, value);
        this.added(key, value, old);
      }
    }
    this.o.onSynced?.();
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private put(key: string, raw: O, old: T | undefined): void {
    const obj = this.keep(raw);
    this.store.set(key, obj);
    this.added(key, obj, old);
  }

  /** Indexes and announces an object just stored under `key` (`old`: what was there). */
  private added(key: string, obj: T, old: T | undefined): void {
    if (old !== undefined) this.unindex(key, old);
    this.indexObject(key, obj);
    if (old === undefined) this.o.onAdd?.(obj, key);
    else this.o.onUpdate?.(obj, old, key);
  }

  private remove(key: string, old: T): void {
    this.unindex(key, old);
    this.store.delete(key);
  }

  private indexObject(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.o.indexes ?? {})) {
      const idx = this.index.get(name)!;
      for (const value of fn(obj)) {
        let set = idx.get(value);
        if (!set) idx.set(value, (set = new Set()));
        set.add(key);
      }
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of Object.entries(this.o.indexes ?? {})) {
      const idx = this.index.get(name)!;
      for (const value of fn(obj)) {
        const set = idx.get(value);
        if (!set) continue;
        set.delete(key);
        if (set.size === 0) idx.delete(value);
      }
    }
  }
}

/**
 * The process's factory when the caller passed one (`lanyard controller`, `lanyard run`), else one of the
 * component's own (a component started alone, as tests and benchmarks do); `release` stops only an own factory.
 */
export function sharedOrOwnCache(
  deps: { kube: KubeClient; cache?: InformerFactory },
  onError?: InformerFactoryOptions['onError'],
): {
  cache: InformerFactory;
  release(): void;
} {
  if (deps.cache) return { cache: deps.cache, release: () => undefined };
  const own = new InformerFactory({ client: deps.kube, onError });
  return { cache: own, release: () => own.stop() };
}
