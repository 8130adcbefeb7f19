import { describe, expect, it } from 'vitest';
import { sleep } from './clock.ts';

describe('sleep', () => {
  it('resolves after at least the given time', async () => {
    const t0 = performance.now();
    await sleep(30);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(25);
  });

  it('resolves as soon as its signal aborts, and at once when it was already aborted', async () => {
    const ctl = new AbortController();
    const t0 = performance.now();
    const slept = sleep(60_000, ctl.signal);
    setTimeout(() => ctl.abort(), 10);
    await slept;
    expect(performance.now() - t0).toBeLessThan(30_000);
    const t1 = performance.now();
    await sleep(60_000, ctl.signal);
    expect(performance.now() - t1).toBeLessThan(30_000);
  });
});
