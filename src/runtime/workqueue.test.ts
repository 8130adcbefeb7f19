import { describe, expect, it } from 'vitest';
import { backoffDelay, runControllerLoop, WorkQueue } from './workqueue.ts';

describe('backoffDelay', () => {
  const b = { initialMs: 1000, maxMs: 300_000, jitter: 0.1 };
  it.each([
    [1, 0.5, 1000],
    [2, 0.5, 2000],
    [5, 0.5, 16_000],
    [20, 0.5, 300_000],
    [1, 0, 900],
    [1, 1, 1100],
  ])('failure %i with random %f waits %i ms', (n, r, want) => {
    expect(backoffDelay(n, b, () => r)).toBe(want);
  });
});

describe('WorkQueue', () => {
  it('addAfter: when a delay is already pending, the sooner one wins', async () => {
    const q = new WorkQueue();
    q.addAfter('k', 60_000);
    q.addAfter('k', 20);
    q.addAfter('k', 30_000);
    const got = await Promise.race([q.get(), new Promise((r) => setTimeout(() => r('late'), 1000))]);
    expect(got).toBe('k');
    q.shutdown();
  });
  it('deduplicates keys waiting in the queue', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.length).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('re-runs a key added while it was processing, after it is done, never concurrently', async () => {
    const q = new WorkQueue();
    q.add('a');
    const key = await q.get();
    q.add('a');
    expect(q.length).toBe(0);
    q.done(key!);
    expect(q.length).toBe(1);
  });

  it('retries failing keys with backoff and forgets them after success', async () => {
    const q = new WorkQueue({ initialMs: 5, maxMs: 20, jitter: 0 });
    let calls = 0;
    const seen: number[] = [];
    q.add('k');
    const loop = runControllerLoop({
      name: 't',
      queue: q,
      workers: 2,
      reconcile: async () => {
        calls++;
        seen.push(q.failuresOf('k'));
        if (calls < 3) throw new Error('transient');
        q.shutdown();
      },
    });
    await loop;
    expect(calls).toBe(3);
    expect(seen).toEqual([0, 1, 2]);
    expect(q.failuresOf('k')).toBe(0);
  });
});

describe('controller and queue metrics (docs/observability.md)', () => {
  it('counts reconciles by result, errors, retries, adds and waits under controller-runtime names', async () => {
    const { Registry } = await import('prom-client');
    const metrics = new Registry();
    const q = new WorkQueue({ initialMs: 1, maxMs: 1, jitter: 0 });
    const seen: string[] = [];
    const loop = runControllerLoop({
      name: 'demo',
      queue: q,
      workers: 1,
      metrics,
      reconcile: async (key) => {
        seen.push(key);
        if (key === 'flaky' && seen.filter((k) => k === 'flaky').length === 1)
          throw new Error('first try fails');
        if (key === 'later')
          return seen.filter((k) => k === 'later').length === 1 ? { requeueAfterMs: 1 } : undefined;
      },
    });
    for (const k of ['a', 'flaky', 'later']) q.add(k);
    await expect.poll(() => seen.length).toBe(5);
    await expect
      .poll(async () =>
        (await metrics.getSingleMetric('controller_runtime_reconcile_total')!.get()).values.reduce(
          (n, v) => n + v.value,
          0,
        ),
      )
      .toBe(5);
    q.shutdown();
    await loop;
    const value = async (name: string, labels: Record<string, string>) =>
      (await metrics.getSingleMetric(name)!.get()).values.find(
        (v) =>
          Object.entries(labels).every(([k, x]) => v.labels[k] === x) &&
          !('le' in v.labels) &&
          !(v as { metricName?: string }).metricName?.endsWith('_sum'),
      )?.value;
    expect(await value('controller_runtime_reconcile_total', { controller: 'demo', result: 'success' })).toBe(
      3,
    );
    expect(await value('controller_runtime_reconcile_total', { controller: 'demo', result: 'error' })).toBe(
      1,
    );
    expect(
      await value('controller_runtime_reconcile_total', { controller: 'demo', result: 'requeue_after' }),
    ).toBe(1);
    expect(await value('controller_runtime_reconcile_errors_total', { controller: 'demo' })).toBe(1);
    expect(await value('controller_runtime_active_workers', { controller: 'demo' })).toBe(0);
    expect(await value('workqueue_adds_total', { name: 'demo' })).toBe(5);
    expect(await value('workqueue_retries_total', { name: 'demo' })).toBe(1);
    expect(await value('workqueue_depth', { name: 'demo' })).toBe(0);
    const text = await metrics.metrics();
    expect(text).toContain('controller_runtime_reconcile_time_seconds_count{controller="demo"} 5');
    expect(text).toContain('workqueue_queue_duration_seconds_count{name="demo"} 5');
    expect(text).toContain('workqueue_work_duration_seconds_count{name="demo"} 5');
  });
});
