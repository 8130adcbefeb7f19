import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from './duration.ts';

describe('parseDuration reads Go durations into milliseconds', () => {
  it.each<[string, number | undefined]>([
    ['0', 0],
    ['500ms', 500],
    ['2s', 2000],
    ['1m30s', 90_000],
    ['2160h', 2160 * 3600_000],
    ['1.5s', 1500],
    ['100us', 0.1],
    ['100µs', 0.1],
    ['1000000ns', 1],
    ['.5s', 500],
    ['1.s', 1000],
    ['+2s', 2000],
    ['-1s', -1000],
    ['1m1h', 3_660_000],
    ['', undefined],
    ['5', undefined],
    ['s', undefined],
    ['1d', undefined],
    ['10 s', undefined],
    ['-', undefined],
    ['1.5.3s', undefined],
  ])('%j → %j', (s, ms) => expect(parseDuration(s)).toBe(ms));

  it.each([
    ['10s', 10_000],
    ['2m', 120_000],
    ['1m30s', 90_000],
    ['500ms', 500],
    ['1.5s', 1500],
    ['1h', 3_600_000],
  ])('a non-negative shape still reads %s as %i ms', (t, ms) =>
    expect(parseDuration(t, { negative: false })).toBe(ms),
  );
  it.each(['', '10', 's', '-1s', '10 s', '1d'])('a non-negative shape refuses %j', (t) =>
    expect(parseDuration(t, { negative: false })).toBeUndefined(),
  );
});

describe('Stage timeouts: whole hours, minutes and seconds', () => {
  const stage = { units: ['h', 'm', 's'], fractions: false, negative: false } as const;
  it.each([
    ['30s', 30],
    ['2m', 120],
    ['1h30m', 5400],
    ['6h', 21600],
    ['1h2m3s', 3723],
  ])('%s is %i s and formats back', (text, secs) => {
    expect(parseDuration(text, stage)).toBe(secs * 1000);
    expect(formatDuration(secs * 1000)).toBe(text);
  });
  it.each(['', 'abc', '10', '1.5m', '-1s', 'm', '500ms'])('%j is refused', (t) =>
    expect(parseDuration(t, stage)).toBeUndefined(),
  );
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [-5, '0s'],
    [1499, '1s'],
    [1500, '2s'],
    [3_600_000, '1h'],
    [3_601_000, '1h1s'],
  ])('%i ms → %s', (ms, text) => expect(formatDuration(ms)).toBe(text));
});
