import { describe, expect, it } from 'vitest';
import { humanAge, humanDuration } from './age.ts';

const s = 1000;
const m = 60 * s;
const h = 60 * m;
const d = 24 * h;
const y = 365 * d;

describe('humanDuration (kubectl ages)', () => {
  it.each([
    [45 * s, '45s'],
    [119 * s, '119s'],
    [2 * m, '2m'],
    [4 * m + 12 * s, '4m12s'],
    [4 * m, '4m'],
    [10 * m, '10m'],
    [95 * m, '95m'],
    [3 * h - 1 * s, '179m'],
    [3 * h, '3h'],
    [5 * h + 30 * m, '5h30m'],
    [5 * h, '5h'],
    [8 * h, '8h'],
    [31 * h, '31h'],
    [48 * h, '2d'],
    [3 * d + 4 * h, '3d4h'],
    [3 * d, '3d'],
    [8 * d, '8d'],
    [200 * d, '200d'],
    [2 * y - d, '729d'],
    [2 * y, '2y'],
    [3 * y + 12 * d, '3y12d'],
    [3 * y, '3y'],
    [8 * y, '8y'],
    [9 * y + 100 * d, '9y'],
    [0, '0s'],
    [-900, '0s'],
    [-1999, '0s'],
    [-2000, '<invalid>'],
  ])('%i ms → %s', (ms, text) => expect(humanDuration(ms)).toBe(text));

  it('reads timestamps', () => {
    const now = Date.parse('2026-08-20T10:00:00Z');
    expect(humanAge('2026-08-20T09:59:15Z', now)).toBe('45s');
    expect(humanAge('2026-08-20T10:00:05Z', now)).toBe('<invalid>');
    expect(humanAge(undefined, now)).toBe('<unknown>');
  });
});
