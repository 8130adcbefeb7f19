// The kOps ConfigMap watch (docs/webhook.md#the-kops-configmap) and the container-credentials identities file (docs/webhook.md#the-identities-file-eks-pod-identity). Each keeps the
// last good state: bad input is logged once and counted, never applied, never fatal.
import type { ConfigMap } from 'kubernetes-types/core/v1.js';
import { createHash } from 'node:crypto';
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { resourcePath } from '../kube/client.ts';
import type { CacheView, InformerFactory } from '../kube/cache.ts';
import type { Logger } from '../runtime/log.ts';
import { SerialPasses } from '../runtime/serial.ts';
import {
  EMPTY_TABLE,
  parseConfigMapDocument,
  parseIdentitiesFile,
  type ConfigMapTable,
} from '../identity/configmap.ts';
import type { WebhookMetrics } from './metrics.ts';

export const KOPS_CONFIGMAP_NAME = 'pod-identity-webhook';

export class ConfigMapSource {
  private table: ConfigMapTable = EMPTY_TABLE;
  private readonly store: CacheView<{ config?: string }>;

  /** `cache`: the process's informer cache, which watches the ConfigMap (docs/adr/1080-webhook-on-the-informer-cache.md). */
  constructor(
    private readonly o: {
      cache: InformerFactory;
      log: Logger;
      metrics: WebhookMetrics;
      namespace: string;
    },
  ) {
    this.store = o.cache.view<{ config?: string }, ConfigMap>({
      path: resourcePath({ version: 'v1', plural: 'configmaps', namespace: o.namespace }),
      fieldSelector: `metadata.name=${KOPS_CONFIGMAP_NAME}`,
      // Only the document matters; the rest of the object is dropped at once.
      transform: (cm) => ({ config: typeof cm.data?.config === 'string' ? cm.data.config : undefined }),
      onAdd: (cm) => this.apply(cm.config),
      onUpdate: (cm) => this.apply(cm.config),
      onDelete: () => this.apply(undefined),
    });
  }

  /** Applies a new document (undefined: no `config` key or ConfigMap deleted). */
  apply(text: string | undefined): void {
    const where = { namespace: this.o.namespace, configMap: KOPS_CONFIGMAP_NAME };
    const r = parseConfigMapDocument(text, this.table);
    if (!r.ok) {
      this.o.log.error(
        { ...where, reason: r.error },
        'invalid kOps ConfigMap document; keeping the previous configuration',
      );
      this.o.metrics.configReloads.inc({ source: 'configmap', result: 'invalid' });
      return;
    }
    for (const w of r.warnings)
      this.o.log.warn({ ...where, key: w.key, reason: w.reason }, 'kOps ConfigMap entry skipped');
    this.table = r.table;
    this.o.metrics.configReloads.inc({ source: 'configmap', result: 'applied' });
    this.o.metrics.cacheEntries.set({ cache: 'configMap' }, r.table.size);
  }

  get current(): ConfigMapTable {
    return this.table;
  }
  get synced(): boolean {
    return this.store.synced;
  }
  /** The store's watch starts when it is made; kept so callers read `new ConfigMapSource(...).start()`. */
  start(): this {
    return this;
  }
  stop(): void {
    this.store.close();
  }
  async relist(): Promise<void> {
    await this.store.relist();
  }
}

/** Reads a file, following symlinks afresh at each open (so `..data` swaps are seen); undefined when missing. */
async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export class IdentitiesFile {
  private pairs: ReadonlySet<string> = new Set();
  private hash: string | undefined;
  private loadedOnce = false;
  private watcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  /** One reload at a time; a change during a reload reads again right after it. */
  private readonly reloads = new SerialPasses(() => this.reload());

  constructor(
    private readonly o: { file: string; log: Logger; metrics: WebhookMetrics; pollIntervalMs: number },
  ) {}

  get current(): ReadonlySet<string> {
    return this.pairs;
  }
  get loaded(): boolean {
    return this.loadedOnce;
  }

  /** First load (awaited before the listener opens), then directory watch plus poll. */
  async start(): Promise<void> {
    await this.reload();
    try {
      this.watcher = fsWatch(path.dirname(this.o.file), () => this.trigger());
      this.watcher.on('error', (e) =>
        this.o.log.warn({ file: this.o.file, err: e }, 'identities file watch failed; polling only'),
      );
    } catch (e) {
      this.o.log.warn(
        { file: this.o.file, err: e },
        'cannot watch the identities file directory; polling only',
      );
    }
    this.timer = setInterval(() => this.trigger(), this.o.pollIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }

  private trigger(): void {
    this.reloads.trigger();
  }

  async reload(): Promise<void> {
    let text: string | undefined;
    try {
      text = await readOptional(this.o.file);
    } catch (e) {
      this.o.log.error(
        { file: this.o.file, err: e },
        'cannot read the identities file; keeping the previous set',
      );
      this.o.metrics.configReloads.inc({ source: 'identities_file', result: 'invalid' });
      return;
    }
    const hash = createHash('sha256')
      .update(text ?? '\0missing')
      .digest('hex');
    if (hash === this.hash) {
      this.o.metrics.configReloads.inc({ source: 'identities_file', result: 'unchanged' });
      return;
    }
    const r = parseIdentitiesFile(text);
    if (!r.ok) {
      // Every event and poll re-reads; recording the hash logs one bad content once, not at every poll.
      this.o.log.error(
        { file: this.o.file, reason: r.error },
        'invalid identities file; keeping the previous set',
      );
      this.o.metrics.configReloads.inc({ source: 'identities_file', result: 'invalid' });
      this.loadedOnce = true;
      this.hash = hash;
      return;
    }
    for (const w of r.warnings)
      this.o.log.warn({ file: this.o.file, item: w.key, reason: w.reason }, 'identities file item skipped');
    this.pairs = r.pairs;
    this.hash = hash;
    this.loadedOnce = true;
    this.o.metrics.configReloads.inc({ source: 'identities_file', result: 'applied' });
    this.o.metrics.cacheEntries.set({ cache: 'identitiesFile' }, r.pairs.size);
    this.o.log.info({ file: this.o.file, identities: r.pairs.size }, 'identities file loaded');
  }
}
