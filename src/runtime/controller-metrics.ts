// Controller and work-queue metrics under controller-runtime's names, so dashboards written for Go controllers read
// Lanyard's too (docs/observability.md). One registration style for the whole repo: the get-or-create helpers of
// src/runtime/metrics.ts on the registry passed in (no default registry, no module state).
import type { Registry } from 'prom-client';
import { counter, gauge, histogram } from './metrics.ts';

/** What a WorkQueue reports; prom-client stays out of the queue itself. */
export interface QueueObserver {
  added(): void;
  depth(n: number): void;
  /** A key left the queue for a worker after waiting `ms`. */
  started(waitMs: number): void;
  /** A worker finished a key after `ms`. */
  finished(workMs: number): void;
  retried(): void;
}

export type ReconcileOutcome = 'success' | 'error' | 'requeue_after';

export interface ReconcileObserver {
  reconciled(outcome: ReconcileOutcome, ms: number): void;
  /** A worker started (+1) or finished (-1) a reconcile. */
  active(delta: 1 | -1): void;
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const QUEUE_SECONDS = [1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000];

/** The work-queue metrics of queue `name` (controller-runtime's `workqueue_*`). */
export function queueMetrics(r: Registry, name: string): QueueObserver {
  const depth = gauge(r, 'workqueue_depth', 'Current depth of the work queue', ['name']);
  const adds = counter(r, 'workqueue_adds_total', 'Keys added to the work queue', ['name']);
  const wait = histogram(
    r,
    'workqueue_queue_duration_seconds',
    'Seconds a key waits in the queue before a worker takes it',
    QUEUE_SECONDS,
    ['name'],
  );
  const work = histogram(
    r,
    'workqueue_work_duration_seconds',
    'Seconds a worker spends on one key',
    QUEUE_SECONDS,
    ['name'],
  );
  const retries = counter(r, 'workqueue_retries_total', 'Keys requeued with backoff after a failure', [
    'name',
  ]);
  const l = { name };
  depth.set(l, 0);
  adds.inc(l, 0);
  retries.inc(l, 0);
  return {
    added: () => adds.inc(l),
    depth: (n) => depth.set(l, n),
    started: (ms) => wait.observe(l, ms / 1000),
    finished: (ms) => work.observe(l, ms / 1000),
    retried: () => retries.inc(l),
  };
}

/** The reconcile metrics of controller `name` (controller-runtime's `controller_runtime_reconcile_*`). */
export function reconcileMetrics(r: Registry, name: string): ReconcileObserver {
  const total = counter(r, 'controller_runtime_reconcile_total', 'Reconciles per controller and result', [
    'controller',
    'result',
  ]);
  const errors = counter(
    r,
    'controller_runtime_reconcile_errors_total',
    'Reconciles that failed, per controller',
    ['controller'],
  );
  const time = histogram(
    r,
    'controller_runtime_reconcile_time_seconds',
    'Seconds per reconcile, per controller',
    SECONDS,
    ['controller'],
  );
  const workers = gauge(
    r,
    'controller_runtime_active_workers',
    'Workers reconciling right now, per controller',
    ['controller'],
  );
  for (const result of ['success', 'error', 'requeue_after'] as const)
    total.inc({ controller: name, result }, 0);
  errors.inc({ controller: name }, 0);
  workers.set({ controller: name }, 0);
  return {
    reconciled(outcome, ms) {
      total.inc({ controller: name, result: outcome });
      if (outcome === 'error') errors.inc({ controller: name });
      time.observe({ controller: name }, ms / 1000);
    },
    active: (delta) => workers.inc({ controller: name }, delta),
  };
}

/** `leader_election_master_status{name}`: 1 while this process holds the Lease, else 0 (client-go's name). */
export function leaderMetrics(r: Registry, name: string): (leading: boolean) => void {
  const g = gauge(
    r,
    'leader_election_master_status',
    '1 while this process is the leader of the named Lease, else 0',
    ['name'],
  );
  g.set({ name }, 0);
  return (leading) => g.set({ name }, leading ? 1 : 0);
}

/** Kubernetes client requests by verb and HTTP code (client-go's `rest_client_*`), fed by KubeClient's onRequest. */
export function kubeRequestMetrics(
  r: Registry,
): (entry: { method: string; status: number; durationMs: number }) => void {
  const requests = counter(r, 'rest_client_requests_total', 'Kubernetes API requests by verb and HTTP code', [
    'method',
    'code',
  ]);
  const latency = histogram(
    r,
    'rest_client_request_duration_seconds',
    'Kubernetes API request latency by verb',
    SECONDS,
    ['verb'],
  );
  return (e) => {
    requests.inc({ method: e.method, code: String(e.status) });
    latency.observe({ verb: e.method }, e.durationMs / 1000);
  };
}
