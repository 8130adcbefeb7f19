// Get-or-create metric helpers: components that share one registry (`lanyard run`, a new leadership term) must reuse
// the metric already registered under a name, since prom-client refuses a second registration.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export function counter<L extends string>(
  r: Registry,
  name: string,
  help: string,
  labelNames: L[] = [],
): Counter<L> {
  return (
    (r.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter({ name, help, labelNames, registers: [r] })
  );
}
export function gauge<L extends string>(
  r: Registry,
  name: string,
  help: string,
  labelNames: L[] = [],
): Gauge<L> {
  return (
    (r.getSingleMetric(name) as Gauge<L> | undefined) ?? new Gauge({ name, help, labelNames, registers: [r] })
  );
}
export function histogram<L extends string>(
  r: Registry,
  name: string,
  help: string,
  buckets: number[],
  labelNames: L[] = [],
): Histogram<L> {
  return (
    (r.getSingleMetric(name) as Histogram<L> | undefined) ??
    new Histogram({ name, help, labelNames, buckets, registers: [r] })
  );
}
