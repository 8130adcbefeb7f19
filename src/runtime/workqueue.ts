// A deduplicating work queue with per-key exponential backoff: controllers reconcile keys, not events.
// A key is never processed by two workers at once; a key added while it is processing runs again afterwards.
// Given a registry, runControllerLoop reports controller-runtime's queue and reconcile metrics (docs/observability.md).
import type { Registry } from 'prom-client';
import {
  queueMetrics,
  reconcileMetrics,
  type QueueObserver,
  type ReconcileOutcome,
} from './controller-metrics.ts';
import { backoffDelay, type Backoff } from '../core/backoff.ts';

// The formula lives in src/core/backoff.ts; re-exported for callers that import it from here.
export { backoffDelay, type Backoff };

export const DEFAULT_BACKOFF: Backoff = { initialMs: 1000, maxMs: 300_000, jitter: 0.1 };

export type ReconcileResult = void | { requeueAfterMs?: number };

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; at: number }>();
  private waiters: Array<() => void> = [];
  private shuttingDown = false;
  private observer?: QueueObserver;
  /** When each queued key was added (only while observed). */
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();

  constructor(private readonly backoff: Backoff = DEFAULT_BACKOFF) {}

  get length(): number {
    return this.queue.length;
  }

  /**
   * Reports adds, depth, waits, work time and retries to `o` from now on. Keys queued before (a view's first list
   * enqueues before the loop starts) count as added now, so `workqueue_adds_total` never trails the keys taken.
   */
  observe(o: QueueObserver): void {
    this.observer = o;
    const now = performance.now();
    for (const key of this.queue) {
      this.addedAt.set(key, now);
      o.added();
    }
    o.depth(this.queue.length);
  }

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    if (this.observer) {
      this.addedAt.set(key, performance.now());
      this.observer.added();
      this.observer.depth(this.queue.length);
    }
    this.waiters.shift()?.();
  }

  /** Adds the key after a delay; when a delay is already pending for the key, the sooner one wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing) {
      if (existing.at <= at) return;
      clearTimeout(existing.timer);
    }
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    t.unref?.();
    this.timers.set(key, { timer: t, at });
  }

  /** Requeues with per-key exponential backoff; returns the delay used. */
  addRateLimited(key: string, backoff: Backoff = this.backoff): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    this.observer?.retried();
    const delay = backoffDelay(n, backoff);
    const existing = this.timers.get(key);
    if (existing) {
      clearTimeout(existing.timer);
      this.timers.delete(key);
    }
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  async get(): Promise<string | undefined> {
    while (this.queue.length === 0) {
      if (this.shuttingDown) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const key = this.queue.shift()!;
    this.queued.delete(key);
    this.processing.add(key);
    if (this.observer) {
      const now = performance.now();
      this.observer.depth(this.queue.length);
      this.observer.started(now - (this.addedAt.get(key) ?? now));
      this.addedAt.delete(key);
      this.startedAt.set(key, now);
    }
    return key;
  }

  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    if (started !== undefined) {
      this.startedAt.delete(key);
      this.observer?.finished(performance.now() - started);
    }
    if (this.dirty.delete(key)) this.add(key);
  }

  shutdown(): void {
    this.shuttingDown = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w();
  }
}

export interface ControllerLoopOptions {
  name: string;
  queue: WorkQueue;
  workers: number;
  reconcile: (key: string) => Promise<ReconcileResult>;
  onError?: (key: string, e: unknown, retryInMs: number) => void;
  /** Where to report `workqueue_*{name}` and `controller_runtime_reconcile_*{controller=name}`; none: no metrics. */
  metrics?: Registry;
}

/** Runs `workers` loops that take keys and reconcile them; errors requeue with backoff. */
export function runControllerLoop(o: ControllerLoopOptions): Promise<void> {
  if (o.metrics) o.queue.observe(queueMetrics(o.metrics, o.name));
  const observer = o.metrics ? reconcileMetrics(o.metrics, o.name) : undefined;
  const worker = async () => {
    for (;;) {
      const key = await o.queue.get();
      if (key === undefined) return;
      const started = performance.now();
      let outcome: ReconcileOutcome = 'success';
      observer?.active(1);
      try {
        const r = await o.reconcile(key);
        o.queue.forget(key);
        if (r && r.requeueAfterMs !== undefined) {
          outcome = 'requeue_after';
          o.queue.addAfter(key, r.requeueAfterMs);
        }
      } catch (e) {
        outcome = 'error';
        const delay = o.queue.addRateLimited(key);
        o.onError?.(key, e, delay);
      } finally {
        observer?.active(-1);
        observer?.reconciled(outcome, performance.now() - started);
        o.queue.done(key);
      }
    }
  };
  return Promise.all(Array.from({ length: o.workers }, worker)).then(() => undefined);
}
