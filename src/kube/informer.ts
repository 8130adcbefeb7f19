// List-then-watch of one resource. `ListWatch` is the loop: it lists in pages, watches with bookmarks, re-lists when
// the watch expires (410 Gone), and backs off with jitter after errors. Every reader (controllers, the webhook's
// caches, the certificate reconciler) shares one `ListWatch` per selection through the informer factory, which keeps
// the stores (src/kube/cache.ts,
// docs/adr/1000-shared-informer-cache-and-reconcilers.md, docs/adr/1080-webhook-on-the-informer-cache.md).
import type { Json, KubeClient, KubeObject, WatchEvent } from './client.ts';
import type { KubeList } from '../core/kube-object.ts';
import type { Status } from 'kubernetes-types/meta/v1.js';
import { KubeApiError } from './client.ts';
import { backoffDelay, type Backoff } from '../core/backoff.ts';
import { sleep } from '../runtime/clock.ts';

/** What to list and watch: a collection path and the server-side selection. */
export interface ResourceSelection {
  /** Collection path, e.g. /api/v1/serviceaccounts or /apis/lanyard.dev/v1alpha1/namespaces/x/stages. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Ask for PartialObjectMetadata instead of full objects. */
  metadataOnly?: boolean;
}

/**
 * `L`: what a list keeps of each object (`projectListed`'s answer; the object itself without one); `O`: the watched
 * kind as the API server sends it.
 */
export interface ListWatchOptions<L = Json, O extends KubeObject = Json> extends ResourceSelection {
  client: KubeClient;
  pageSize?: number;
  /**
   * A full list is about to be requested (the shared cache starts afresh and notes which views it projects for: a
   * failed list leaves nothing).
   */
  onListStart?: () => void;
  /** A full (re)list: every object the server holds now (as `projectListed` returned them, when given). */
  onList: (items: L[]) => void;
  /**
   * Applied to each listed object as its page arrives, so that a list of 50,000 objects never holds every raw object
   * at once: a consumer keeping a small projection (the webhook's ServiceAccount cache) passes it here
   * (docs/adr/0111-webhook-memory-and-start-up.md). Returning undefined keeps nothing in the list's items (the
   * consumer stored the projection itself).
   */
  projectListed?: (item: O) => L | undefined;
  /** One watch event (bookmarks included, so the caller may ignore them). */
  onEvent: (e: WatchEvent<O>) => void;
  onError?: (e: unknown) => void;
  /** Called when a watch request is sent (instrumentation: watches per process). */
  onWatch?: () => void;
  /** First pause before retrying after an error (ms); doubles per consecutive error up to 30 s, with jitter. */
  retryDelayMs?: number;
}

export function objectKey(obj: KubeObject | undefined): string {
  const ns = obj?.metadata?.namespace;
  // join() makes one flat string; a template literal of 13 characters or more is a V8 cons string that keeps both
  // parts (each a separate string from JSON.parse) alive: 2.4 MB more heap per 50,000 cached keys (docs/adr/0705).
  return ns ? [ns, obj?.metadata?.name].join('/') : String(obj?.metadata?.name);
}

const META_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
const META_ACCEPT_WATCH = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

/** The list/watch loop of one resource selection. It keeps no objects: `onList` and `onEvent` do. */
export class ListWatch<L = Json, O extends KubeObject = Json> {
  private resourceVersion = '';
  private readonly abort = new AbortController();
  /** Aborts the watch in flight when a re-list is requested. */
  private cycle = new AbortController();
  private running = false;
  private relistRequested = false;

  constructor(private readonly opts: ListWatchOptions<L, O>) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  stop(): void {
    this.running = false;
    this.abort.abort();
    this.cycle.abort();
  }

  /** Lists now, outside the loop (debug cache clear); the watch continues from where it was. */
  async relist(): Promise<void> {
    await this.list();
  }

  /** Ends the watch in flight and lists again before the next watch (a new consumer needs every object). */
  restart(): void {
    this.relistRequested = true;
    this.cycle.abort();
  }

  private async loop(): Promise<void> {
    // Consecutive failures: a watch that ends normally (server timeout) or a good list resets the count, so a
    // flapping API server is retried at growing, jittered intervals instead of every second by every process.
    let failures = 0;
    const backoff: Backoff = { initialMs: this.opts.retryDelayMs ?? 1000, maxMs: 30_000, jitter: 0.2 };
    while (this.running) {
      if (this.cycle.signal.aborted) this.cycle = new AbortController();
      if (this.relistRequested) {
        this.relistRequested = false;
        this.resourceVersion = '';
      }
      try {
        if (!this.resourceVersion) {
          await this.list();
          failures = 0;
        }
        await this.watchOnce();
        failures = 0;
      } catch (e) {
        if (!this.running) return;
        if (this.cycle.signal.aborted) continue;
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
    const items: L[] = [];
    let cont: string | undefined;
    let rv = '';
    this.opts.onListStart?.();
    do {
      const page = await this.opts.client.request<KubeList<O>>({
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
      const project = this.opts.projectListed;
      for (const item of page.items ?? []) {
        const kept: L | undefined = project ? project(item) : (item as unknown as L);
        if (kept !== undefined) items.push(kept);
      }
      cont = page.metadata?.continue || undefined;
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont);
    this.opts.onList(items);
    this.resourceVersion = rv;
  }

  private async watchOnce(): Promise<void> {
    let gone = false;
    this.opts.onWatch?.();
    const signal = this.cycle.signal;
    await this.opts.client.watch<O>(
      this.opts.path,
      {
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: 300 + Math.floor(Math.random() * 60),
        labelSelector: this.opts.labelSelector,
        fieldSelector: this.opts.fieldSelector,
      },
      (e) => {
        if (signal.aborted) return;
        if (e.type === 'ERROR') {
          const status = e.object as Status | undefined;
          if (status?.code === 410) gone = true;
          else this.opts.onError?.(new Error(`watch ${this.opts.path}: ${status?.message ?? 'error event'}`));
          return;
        }
        const rv = e.object?.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        this.opts.onEvent(e);
      },
      AbortSignal.any([this.abort.signal, signal]),
      this.opts.metadataOnly ? META_ACCEPT_WATCH : undefined,
    );
    if (gone) this.resourceVersion = '';
  }
}

/** A promise for "synced", resolved through `waiters` when the first list lands, or false at the timeout or abort. */
export function waitUntilSynced(
  synced: () => boolean,
  waiters: Array<() => void>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<boolean> {
  if (synced()) return Promise.resolve(true);
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (v: boolean) => {
      if (timer) clearTimeout(timer);
      resolve(v);
    };
    waiters.push(() => done(true));
    if (Number.isFinite(timeoutMs)) timer = setTimeout(() => done(false), timeoutMs);
    signal?.addEventListener('abort', () => done(false), { once: true });
  });
}
