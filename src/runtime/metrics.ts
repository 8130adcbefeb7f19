// Get-or-create metric helpers: components that share one registry (`lanyard run`, a new leadership term) must reuse
// the metric already registered under a name, since prom-client refuses a second registration.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The metric already registered under `name` (of the kind `make` builds), else a new one. */
function registered<M>(r: Registry, name: string, make: () => M): M {
  return (r.getSingleMetric(name) as M | undefined) ?? make();
}

export function counter<L extends string>(
  r: Registry,
  name: string,
  help: string,
  labelNames: L[] = [],
): Counter<L> {
  return registered(r, name, () => new Counter({ name, help, labelNames, registers: [r] }));
}
export function gauge<L extends string>(
  r: Registry,
  name: string,
  help: string,
  labelNames: L[] = [],
): Gauge<L> {
  return registered(r, name, () => new Gauge({ name, help, labelNames, registers: [r] }));
}
export function histogram<L extends string>(
  r: Registry,
  name: string,
  help: string,
  buckets: number[],
  labelNames: L[] = [],
): Histogram<L> {
  return registered(r, name, () => new Histogram({ name, help, labelNames, buckets, registers: [r] }));
}
