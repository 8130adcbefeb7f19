// ServiceAccount cache and live lookup (docs/webhook.md#serviceaccounts-that-are-not-cached-yet). The store keeps only parsed `<prefix>/` settings (SAs
// without them share one value); a miss triggers a bounded, shared, concurrency-limited metadata GET. The store is a
// view of the process's informer cache (docs/adr/1080-webhook-on-the-informer-cache.md).
import type { KubeObject } from '../core/kube-object.ts';
import type { KubeClient } from '../kube/client.ts';
import { isNotFound, resourcePath } from '../kube/client.ts';
import type { CacheView, InformerFactory } from '../kube/cache.ts';
import type { Logger } from '../runtime/log.ts';
import { parseServiceAccount, type RoleComposition, type SaSettings } from '../identity/annotations.ts';
import type { WebhookMetrics } from './metrics.ts';
import { errorMessage } from '../core/errors.ts';

export type SaResult =
  | { found: true; settings: SaSettings; result: 'hit' | 'fetched' }
  | { found: false; result: 'miss' | 'not_found' | 'timeout' | 'error' | 'not_synced'; cause: string };

export interface ServiceAccountCacheOptions {
  kube: KubeClient;
  /** The process's informer cache: the ServiceAccount watch is one of its selections. */
  cache: InformerFactory;
  log: Logger;
  metrics: WebhookMetrics;
  prefix: string;
  composition?: RoleComposition;
  gracePeriodMs: number;
  resyncPeriodMs: number;
  now: () => number;
  maxInFlight?: number;
}

const META_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';

export class ServiceAccountCache {
  readonly store: CacheView<SaSettings>;
  /** Entries from live GETs, until a watch event confirms them or resync-period passes. */
  private readonly provisional = new Map<string, { settings: SaSettings; expiresAt: number }>();
  private readonly inflight = new Map<string, Promise<SaResult>>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly o: ServiceAccountCacheOptions) {
    const entries = () => o.metrics.cacheEntries.set({ cache: 'serviceAccounts' }, this.store.size);
    const onStored = (key: string) => {
      this.provisional.delete(key);
      o.metrics.used.set(1);
      if (this.store.synced) entries();
    };
    this.store = o.cache.view<SaSettings, KubeObject>({
      path: '/api/v1/serviceaccounts',
      metadataOnly: true,
      transform: (obj) => this.parse(obj),
      onAdd: (_s, key) => onStored(key),
      onUpdate: (_s, _old, key) => onStored(key),
      onDelete: (_s, key) => {
        this.provisional.delete(key);
        entries();
      },
      onSynced: entries,
    });
  }

  /** A ServiceAccount as its metadata (the watch and the GET ask for PartialObjectMetadata). */
  private parse(obj: KubeObject): SaSettings {
    const s = parseServiceAccount(obj, this.o.prefix, this.o.composition);
    const where = { namespace: obj.metadata?.namespace, serviceAccount: obj.metadata?.name };
    if (s.roleArnProblem)
      this.o.log.warn(
        { ...where, problem: s.roleArnProblem },
        'role-arn annotation is not an IAM role ARN; Pods of this ServiceAccount are refused',
      );
    if (s.invalid)
      this.o.log.debug({ ...where, annotations: s.invalid }, 'invalid ServiceAccount annotations ignored');
    return s;
  }

  /** The store's watch starts when it is made; kept so callers read `new ServiceAccountCache(...).start()`. */
  start(): this {
    return this;
  }
  stop(): void {
    this.store.close();
  }
  get synced(): boolean {
    return this.store.synced;
  }
  get size(): number {
    return this.store.size;
  }

  /** Cached settings (watch or unexpired provisional), without I/O. */
  peek(key: string): SaSettings | undefined {
    const s = this.store.get(key);
    if (s) return s;
    const p = this.provisional.get(key);
    if (!p) return undefined;
    if (p.expiresAt <= this.o.now()) {
      this.provisional.delete(key);
      return undefined;
    }
    return p.settings;
  }

  entries(): Array<[string, SaSettings]> {
    const stored = [...this.store.keys()].map((k) => [k, this.store.get(k)!] as [string, SaSettings]);
    return [
      ...stored,
      ...[...this.provisional.entries()].map(([k, v]) => [k, v.settings] as [string, SaSettings]),
    ];
  }

  async relist(): Promise<void> {
    this.provisional.clear();
    await this.store.relist();
  }

  /**
   * Resolves ns/name (docs/webhook.md#serviceaccounts-that-are-not-cached-yet) within the grace period, cut to the API server's `timeout` parameter
   * (`apiTimeoutMs`) minus 500 ms so the answer still arrives in time.
   */
  lookup(namespace: string, name: string, apiTimeoutMs?: number): SaResult | Promise<SaResult> {
    const key = `${namespace}/${name}`;
    const hit = this.peek(key);
    // A hit is answered without a promise: the hot path takes no extra turn of the microtask queue.
    if (hit) return { found: true, settings: hit, result: 'hit' };
    return this.miss(key, namespace, name, apiTimeoutMs);
  }

  private async miss(key: string, namespace: string, name: string, apiTimeoutMs?: number): Promise<SaResult> {
    const deadlineMs = Math.min(
      this.o.gracePeriodMs,
      apiTimeoutMs !== undefined ? apiTimeoutMs - 500 : Infinity,
    );
    if (deadlineMs <= 0) {
      return {
        found: false,
        result: this.store.synced ? 'miss' : 'not_synced',
        cause: 'not in the ServiceAccount cache',
      };
    }
    const deadline = this.o.now() + deadlineMs;
    // Before the first list completes a live GET answers just as correctly, and at once: start-up serves right
    // answers without waiting for a 50,000-object list (docs/adr/0111-webhook-memory-and-start-up.md).
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetch(namespace, name, deadline).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return await p;
  }

  private async slot(deadline: number): Promise<boolean> {
    if (this.running < (this.o.maxInFlight ?? 20)) {
      this.running++;
      return true;
    }
    return await new Promise<boolean>((resolve) => {
      const grant = () => {
        clearTimeout(timer);
        this.running++;
        resolve(true);
      };
      const timer = setTimeout(
        () => {
          const i = this.waiting.indexOf(grant);
          if (i >= 0) this.waiting.splice(i, 1);
          resolve(false);
        },
        Math.max(0, deadline - this.o.now()),
      );
      this.waiting.push(grant);
    });
  }

  private release(): void {
    this.running--;
    this.waiting.shift()?.();
  }

  private async fetch(namespace: string, name: string, deadline: number): Promise<SaResult> {
    const key = `${namespace}/${name}`;
    if (!(await this.slot(deadline)))
      return { found: false, result: 'timeout', cause: 'queued past the deadline' };
    const started = performance.now();
    const ac = new AbortController();
    const remaining = Math.max(1, deadline - this.o.now());
    const timer = setTimeout(() => ac.abort(), remaining);
    try {
      const obj = await this.o.kube.request<KubeObject>({
        path: resourcePath({ version: 'v1', plural: 'serviceaccounts', namespace, name }),
        accept: META_ACCEPT,
        signal: ac.signal,
      });
      const settings = this.parse(obj);
      // The watch may have stored the key meanwhile: it is authoritative.
      if (!this.store.has(key))
        this.provisional.set(key, { settings, expiresAt: this.o.now() + this.o.resyncPeriodMs });
      return { found: true, settings: this.store.get(key) ?? settings, result: 'fetched' };
    } catch (e) {
      if (isNotFound(e)) return { found: false, result: 'not_found', cause: 'ServiceAccount does not exist' };
      if (ac.signal.aborted)
        return { found: false, result: 'timeout', cause: `live GET exceeded ${remaining}ms` };
      return { found: false, result: 'error', cause: `live GET failed: ${errorMessage(e)}` };
    } finally {
      clearTimeout(timer);
      this.o.metrics.saFetchDuration.observe((performance.now() - started) / 1000);
      this.release();
    }
  }
}
