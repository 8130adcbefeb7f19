// One keyed, read-only store of a resource selection, for the webhook's caches and the admission guard
// (docs/adr/0930-webhook-on-the-shared-cache-under-run.md): a view of the process's shared informer cache when the
// process has one (`lanyard run`, where the controller watches the same selections), else an `Informer` of its own
// (`lanyard webhook`), whose lists are projected page by page so 50,000 ServiceAccounts are never all held as raw
// objects (docs/adr/0111-webhook-memory-and-start-up.md). Either way the store keeps only the caller's projection.
import type { Json, KubeClient, KubeObject } from './client.ts';
import type { InformerFactory } from './cache.ts';
import { Informer, type InformerOptions } from './informer.ts';

/**
 * `T`: what the store keeps of each object; `O`: the watched kind as the API server sends it. The informer's options
 * but its client and pacing (the store's caller chooses neither); `onError` is heard only with an informer of its own
 * (the shared cache reports its errors once, for every view).
 */
export type StoreOptions<T, O extends KubeObject = Json> = Omit<
  InformerOptions<T, O>,
  'client' | 'pageSize' | 'retryDelayMs'
>;

export interface Store<T> {
  get(key: string): T | undefined;
  has(key: string): boolean;
  values(): IterableIterator<T>;
  keys(): IterableIterator<string>;
  readonly size: number;
  readonly synced: boolean;
  waitForSync(timeoutMs?: number): Promise<boolean>;
  /** Own informer: a fresh list now (debug cache clear). A shared view is listed by its watch: nothing to do. */
  relist(): Promise<void>;
  stop(): void;
  /** True when the store is a view of the process's shared cache. */
  readonly shared: boolean;
  /**
   * Own informer only: holds watch events back until `resume` (the webhook's admission test). Throws on a shared
   * view, whose watch other components read too.
   */
  pause(): void;
  resume(): void;
}

/** A started store: a view of `cache` when given, else an informer of its own on `client`. */
export function openStore<T = Json, O extends KubeObject = Json>(
  client: KubeClient,
  cache: InformerFactory | undefined,
  o: StoreOptions<T, O>,
): Store<T> {
  if (cache) {
    const view = cache.view<T, O>({
      path: o.path,
      labelSelector: o.labelSelector,
      fieldSelector: o.fieldSelector,
      metadataOnly: o.metadataOnly,
      transform: o.transform,
      onAdd: o.onAdd,
      onUpdate: o.onUpdate,
      onDelete: o.onDelete,
      onSynced: o.onSynced,
    });
    const noHold = () => {
      throw new Error(`the watch of ${o.path} is the process's shared one: it cannot be paused`);
    };
    return {
      get: (k) => view.get(k),
      has: (k) => view.has(k),
      values: () => view.values(),
      keys: () => view.keys(),
      get size() {
        return view.size;
      },
      get synced() {
        return view.synced;
      },
      waitForSync: (ms) => view.waitForSync(ms),
      relist: async () => undefined,
      stop: () => view.close(),
      shared: true,
      pause: noHold,
      resume: noHold,
    };
  }
  const inf = new Informer<T, O>({ ...o, client }).start();
  return {
    get: (k) => inf.store.get(k),
    has: (k) => inf.store.has(k),
    values: () => inf.store.values(),
    keys: () => inf.store.keys(),
    get size() {
      return inf.store.size;
    },
    get synced() {
      return inf.synced;
    },
    waitForSync: (ms) => inf.waitForSync(ms),
    relist: () => inf.relist(),
    stop: () => inf.stop(),
    shared: false,
    pause: () => inf.pause(),
    resume: () => inf.resume(),
  };
}
