import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { kubeRequestMetrics, leaderMetrics } from './controller-metrics.ts';

describe('leader and Kubernetes client metrics (docs/observability.md)', () => {
  it('leader_election_master_status is 0 until the Lease is held, 1 while held, 0 after', async () => {
    const r = new Registry();
    const set = leaderMetrics(r, 'lanyard-controller');
    expect(await r.metrics()).toContain('leader_election_master_status{name="lanyard-controller"} 0');
    set(true);
    expect(await r.metrics()).toContain('leader_election_master_status{name="lanyard-controller"} 1');
    set(false);
    expect(await r.metrics()).toContain('leader_election_master_status{name="lanyard-controller"} 0');
  });

  it('counts requests by verb and code and times them by verb', async () => {
    const r = new Registry();
    const observe = kubeRequestMetrics(r);
    observe({ method: 'GET', status: 200, durationMs: 12 });
    observe({ method: 'GET', status: 200, durationMs: 30 });
    observe({ method: 'PATCH', status: 409, durationMs: 5 });
    const text = await r.metrics();
    expect(text).toContain('rest_client_requests_total{method="GET",code="200"} 2');
    expect(text).toContain('rest_client_requests_total{method="PATCH",code="409"} 1');
    expect(text).toContain('rest_client_request_duration_seconds_count{verb="GET"} 2');
    expect(Number(/rest_client_request_duration_seconds_sum\{verb="GET"\} (\S+)/.exec(text)?.[1])).toBeCloseTo(0.042, 6);
  });

  it('a second registration on the same registry reuses the metric (lanyard run, a new leadership term)', async () => {
    const r = new Registry();
    leaderMetrics(r, 'a')(true);
    leaderMetrics(r, 'b');
    const text = await r.metrics();
    expect(text).toContain('leader_election_master_status{name="a"} 1');
    expect(text).toContain('leader_election_master_status{name="b"} 0');
  });
});

describe('the sample Grafana dashboard (deploy/grafana/lanyard-controller.json)', () => {
  it('queries only metrics this module registers', async () => {
    const { readFileSync } = await import('node:fs');
    const { queueMetrics, reconcileMetrics } = await import('./controller-metrics.ts');
    const r = new Registry();
    queueMetrics(r, 'q');
    reconcileMetrics(r, 'c');
    leaderMetrics(r, 'l');
    kubeRequestMetrics(r)({ method: 'GET', status: 200, durationMs: 1 });
    const known = new Set((await r.getMetricsAsJSON()).map((m) => m.name));
    const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/lanyard-controller.json', import.meta.url), 'utf8'));
    const used = new Set<string>();
    for (const p of dashboard.panels) for (const t of p.targets) for (const m of t.expr.matchAll(/\b((?:controller_runtime|workqueue|leader_election|rest_client)_[a-z_]+?)(?:_bucket)?\b/g)) used.add(m[1]);
    expect(used.size).toBeGreaterThanOrEqual(8);
    for (const name of used) expect(known, name).toContain(name);
  });
});
