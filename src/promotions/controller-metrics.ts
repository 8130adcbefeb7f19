// The promotion controller's own metrics (docs/promotions.md), beside the shared loop's reconcile and work-queue
// metrics (docs/observability.md). Registered per start and removed on stop, so a restarted controller owns them again.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isTerminal } from './status.ts';
import type { Promotion } from './types.ts';

export interface PromotionMetrics {
  /** A Promotion reached a terminal phase; `createdMs` is NaN when its creation time is unknown. */
  finished(phase: string, createdMs: number, nowMs: number): void;
  /** Removes the metrics from the registry. */
  remove(): void;
}

const NAMES = [
  'lanyard_promotions_total',
  'lanyard_promotion_duration_seconds',
  'lanyard_promotions_pending',
];

export function promotionMetrics(
  registry: Registry,
  promotions: () => Iterable<Promotion>,
): PromotionMetrics {
  const total = new Counter({
    name: 'lanyard_promotions_total',
    help: 'Promotions that reached a terminal phase.',
    labelNames: ['phase'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'lanyard_promotion_duration_seconds',
    help: 'Time from creation of a Promotion to its terminal phase.',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 21600],
    registers: [registry],
  });
  new Gauge({
    name: 'lanyard_promotions_pending',
    help: 'Promotions waiting for their Stage (phase Pending or not yet reconciled).',
    registers: [registry],
    collect() {
      let n = 0;
      for (const p of promotions()) if (!isTerminal(p.status?.phase) && p.status?.phase !== 'Running') n++;
      this.set(n);
    },
  });
  return {
    finished(phase, createdMs, nowMs) {
      total.inc({ phase });
      if (Number.isFinite(createdMs)) duration.observe(Math.max(0, (nowMs - createdMs) / 1000));
    },
    remove: () => {
      for (const m of NAMES) registry.removeSingleMetric(m);
    },
  };
}
