// List-then-watch cache of one resource. Lists in pages, watches with bookmarks, re-lists when the watch
// expires (410 Gone), and keeps a map keyed by namespace/name. A transform strips objects to what the caller
// needs, so a 50,000-object cache stays small.
import type { Json, KubeClient, WatchEvent } from './client.ts';
import { KubeApiError } from './client.ts';
import { backoffDelay, type Backoff } from '../runtime/workqueue.ts';

export interface InformerOptions<T> {
  client: KubeClient;
  /** Collection path, e.g. /api/v1/serviceaccounts or /apis/lanyard.dev/v1alpha1/namespaces/x/stages. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Ask for PartialObjectMetadata instead of full objects. */
  metadataOnly?: boolean;
  pageSize?: number;
  transform?: (obj: Json) => T;
  onAdd?: (obj: T, key: string) => void;
  onUpdate?: (obj: T, old: T, key: string) => void;
  onDelete?: (obj: T, key: string) => void;
  /** Called after each full (re)list, once the store holds the listed objects (vanished ones already deleted). */
  onSynced?: () => void;
  onError?: (e: unknown) => void;
  /** First pause before retrying after an error (ms); doubles per consecutive error up to 30 s, with jitter. */
  retryDelayMs?: number;
}

export function objectKey(obj: Json): string {
  const ns = obj?.metadata?.namespace;
  return ns ? `${ns}/${obj.metadata.name}` : String(obj?.metadata?.name);
}

const META_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const META_ACCEPT_WATCH = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

export class Informer<T = Json> {
  readonly store = new Map<string, T>();
  private resourceVersion = '';
  private readonly abort = new AbortController();
  private syncedOnce = false;
  private readonly syncWaiters: Array<() => void> = [];
  private running = false;
  /** Test hook: while paused, watch events are held back (webhook A2 holds back the SA watch). */
  private paused = false;
  private held: WatchEvent[] = [];

  constructor(private readonly opts: InformerOptions<T>) {}

  get synced(): boolean {
    return this.syncedOnce;
  }

  /** Resolves once the first list is in the store, or when the timeout passes (returns false then). */
  waitForSync(timeoutMs = Infinity, signal?: AbortSignal): Promise<boolean> {
    if (this.syncedOnce) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (v: boolean) => {
        if (timer) clearTimeout(timer);
        resolve(v);
      };
      this.syncWaiters.push(() => done(true));
      if (Number.isFinite(timeoutMs)) timer = setTimeout(() => done(false), timeoutMs);
      signal?.addEventListener('abort', () => done(false), { once: true });
    });
  }

  start(): this {
    if (this.running) return this;
    this.running = true;
    void this.loop();
    return this;
  }

  stop(): void {
    this.running = false;
    this.abort.abort();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const e of held) this.apply(e);
  }

  /** Forces a fresh list (debug cache clear). */
  async relist(): Promise<void> {
    await this.list();
  }

  private async loop(): Promise<void> {
    // Consecutive failures: a watch that ends normally (server timeout) or a good list resets the count, so a
    // flapping API server is retried at growing, jittered intervals instead of every second by every process.
    let failures = 0;
    const backoff: Backoff = { initialMs: this.opts.retryDelayMs ?? 1000, maxMs: 30_000, jitter: 0.2 };
    while (this.running) {
      try {
        if (!this.resourceVersion) {
          await this.list();
          failures = 0;
        }
        await this.watchOnce();
        failures = 0;
      } catch (e) {
        if (!this.running) return;
        if (e instanceof KubeApiError && e.status === 410) {
          this.resourceVersion = '';
          continue;
        }
        this.opts.onError?.(e);
        failures++;
        await sleep(backoffDelay(failures, backoff), this.abort.signal);
      }
    }
  }

  private async list(): Promise<void> {
    const seen = new Map<string, T>();
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.opts.client.request({
        path: this.opts.path,
        accept: this.opts.metadataOnly ? META_ACCEPT : undefined,
        query: {
          limit: this.opts.pageSize ?? 500,
          continue: cont,
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
        },
        signal: this.abort.signal,
      });
      for (const item of page.items ?? []) {
        const key = objectKey(item);
        seen.set(key, this.transform(item));
      }
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont);
    // Replace the store, firing the events a watcher would have seen.
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        this.opts.onDelete?.(old, key);
      }
    }
    for (const [key, obj] of seen) {
      const old = this.store.get(key);
      this.store.set(key, obj);
      if (old === undefined) this.opts.onAdd?.(obj, key);
      else this.opts.onUpdate?.(obj, old, key);
    }
    this.resourceVersion = rv;
    this.opts.onSynced?.();
    if (!this.syncedOnce) {
      this.syncedOnce = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private async watchOnce(): Promise<void> {
    let gone = false;
    await this.opts.client.watch(
      this.opts.path,
      {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: 300 + Math.floor(Math.random() * 60),
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      },
      (e) => {
        if (e.type === 'ERROR') {
          if (e.object?.code === 410) gone = true;
          else this.opts.onError?.(new Error(`watch ${this.opts.path}: ${e.object?.message ?? 'error event'}`));
          return;
        }
        if (this.paused && e.type !== 'BOOKMARK') {
          this.held.push(e);
          return;
        }
        this.apply(e);
      },
      this.abort.signal,
      this.opts.metadataOnly ? META_ACCEPT_WATCH : undefined,
    );
    if (gone) this.resourceVersion = '';
  }

  private apply(e: WatchEvent): void {
    const rv = e.object?.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (e.type === 'BOOKMARK') return;
    const key = objectKey(e.object);
    const old = this.store.get(key);
    if (e.type === 'DELETED') {
      this.store.delete(key);
      if (old !== undefined) this.opts.onDelete?.(old, key);
      return;
    }
    const obj = this.transform(e.object);
    this.store.set(key, obj);
    if (old === undefined) this.opts.onAdd?.(obj, key);
    else this.opts.onUpdate?.(obj, old, key);
  }

  private transform(obj: Json): T {
    return this.opts.transform ? this.opts.transform(obj) : (obj as T);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
