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
