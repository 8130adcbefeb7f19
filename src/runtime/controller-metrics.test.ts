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
    expect(
      Number(/rest_client_request_duration_seconds_sum\{verb="GET"\} (\S+)/.exec(text)?.[1]),
    ).toBeCloseTo(0.042, 6);
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
    const dashboard = JSON.parse(
      readFileSync(new URL('../../deploy/grafana/lanyard-controller.json', import.meta.url), 'utf8'),
    );
    const used = new Set<string>();
    for (const p of dashboard.panels)
      for (const t of p.targets)
        for (const m of t.expr.matchAll(
          /\b((?:controller_runtime|workqueue|leader_election|rest_client)_[a-z_]+?)(?:_bucket)?\b/g,
        ))
          used.add(m[1]);
    expect(used.size).toBeGreaterThanOrEqual(8);
    for (const name of used) expect(known, name).toContain(name);
  });
});

describe('the controller loop reports its queue and reconciles (docs/observability.md)', () => {
  it('counts keys queued before the loop started as adds, and each failure once as an error and a retry', async () => {
    const { runControllerLoop, WorkQueue } = await import('./workqueue.ts');
    const r = new Registry();
    const q = new WorkQueue({ initialMs: 1, maxMs: 1, jitter: 0 });
    // Queued by a view's first list, before the loop (and its observer) exists.
    q.add('a');
    q.add('b');
    let failed = false;
    const seen: string[] = [];
    const loop = runControllerLoop({
      name: 'test',
      queue: q,
      workers: 1,
      metrics: r,
      reconcile: async (k) => {
        seen.push(k);
        if (k === 'b' && !failed) {
          failed = true;
          throw new Error('first try fails');
        }
      },
    });
    const deadline = Date.now() + 5_000;
    while (seen.length < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
    const text = await r.metrics();
    q.shutdown();
    await loop;
    expect(seen).toEqual(['a', 'b', 'b']);
    // Two keys queued early, one retry after the failure.
    expect(text).toContain('workqueue_adds_total{name="test"} 3');
    expect(text).toContain('workqueue_queue_duration_seconds_count{name="test"} 3');
    expect(text).toContain('workqueue_retries_total{name="test"} 1');
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="test"} 1');
    expect(text).toContain('controller_runtime_reconcile_total{controller="test",result="success"} 2');
    expect(text).toContain('controller_runtime_reconcile_total{controller="test",result="error"} 1');
    expect(text).toContain('workqueue_depth{name="test"} 0');
  });
});
