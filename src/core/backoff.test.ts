import { describe, expect, it } from 'vitest';
import { backoffDelay, fullJitterDelay } from './backoff.ts';

const mid = () => 0.5; // no jitter either way
const low = () => 0; // the most negative jitter
const high = () => 0.999999; // just below the most positive jitter

describe('backoffDelay', () => {
  const b = { initialMs: 100, maxMs: 1_000, jitter: 0.2 };

  it('doubles from initialMs per failure and stops at maxMs', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, b, mid))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
  });

  it('treats zero or negative failures as the first', () => {
    expect(backoffDelay(0, b, mid)).toBe(100);
    expect(backoffDelay(-3, b, mid)).toBe(100);
  });

  it('spreads each delay by ±jitter of itself, and not at all with jitter 0', () => {
    expect(backoffDelay(3, b, low)).toBe(320);
    expect(backoffDelay(3, b, high)).toBe(480);
    expect(backoffDelay(3, { ...b, jitter: 0 }, low)).toBe(400);
    expect(backoffDelay(3, { ...b, jitter: 0 }, high)).toBe(400);
  });
});

describe('fullJitterDelay', () => {
  const b = { initialMs: 100, maxMs: 20_000 };

  it('is uniform below initialMs·2^attempt, capped at maxMs', () => {
    expect(fullJitterDelay(1, b, () => 0.5)).toBe(100);
    expect(fullJitterDelay(3, b, () => 0.5)).toBe(400);
    expect(fullJitterDelay(20, b, () => 0.5)).toBe(10_000);
    expect(fullJitterDelay(3, b, low)).toBe(0);
    expect(fullJitterDelay(3, b, high)).toBeLessThan(800);
    expect(fullJitterDelay(3, b, high)).toBeGreaterThan(799);
  });
});
