import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compileGlob, globMatches, type StepMeter } from './glob.ts';

/** Obviously correct and exponential-free reference: dynamic programming over (pattern, value) prefixes. */
function reference(pattern: string, value: string): boolean {
  let row = new Array<boolean>(value.length + 1).fill(false);
  row[0] = true;
  for (const p of pattern) {
    const next = new Array<boolean>(value.length + 1).fill(false);
    if (p === '*') {
      next[0] = row[0]!;
      for (let j = 1; j <= value.length; j++) next[j] = row[j]! || next[j - 1]!;
    } else {
      for (let j = 1; j <= value.length; j++) next[j] = row[j - 1]! && value[j - 1] === p;
    }
    row = next;
  }
  return row[value.length]!;
}

describe('glob matching', () => {
  it.each([
    ['arn:aws:iam::*:role/team-a-*', 'arn:aws:iam::111122223333:role/team-a-writer', true],
    ['arn:aws:iam::*:role/team-a-*', 'arn:aws:iam::111122223333:role/team-b-writer', false],
    ['*', '', true],
    ['', '', true],
    ['', 'x', false],
    ['a*', 'a', true],
    ['*a', 'ba', true],
    ['*a', 'ab', false],
    ['a*a', 'a', false],
    ['a*b*a', 'abba', true],
    ['*aab*', 'aaab', true],
    ['**', 'anything/with:colons', true],
    ['arn:aws:iam::*:role/*-*-reader', 'arn:aws:iam::1:role/x-y-reader', true],
    ['Role', 'role', false],
    ['a.b', 'axb', false],
  ])('%j against %j is %s', (p, v, want) => {
    expect(globMatches(p, v)).toBe(want);
    expect(reference(p, v)).toBe(want);
  });

  it('agrees with the reference matcher on small patterns and values', () => {
    const text = (chars: string[], max: number) =>
      fc.array(fc.constantFrom(...chars), { maxLength: max }).map((a) => a.join(''));
    fc.assert(
      fc.property(text(['a', 'b', '-', '*'], 8), text(['a', 'b', '-'], 14), (p, v) => {
        expect(compileGlob(p).matches(v)).toBe(reference(p, v));
      }),
      { numRuns: 5_000 },
    );
  });

  const stepsFor = (pattern: string, value: string) => {
    const meter: StepMeter = { steps: 0 };
    expect(compileGlob(pattern).matches(value, meter)).toBe(false);
    return meter.steps;
  };

  it('refuses the ReDoS value of the attack in a handful of steps', () => {
    // The pattern and value that stalled a backtracking regular expression for seconds.
    const value = `arn:aws:iam::${':role/-'.repeat(15_000)}x`;
    expect(stepsFor('arn:aws:iam::*:role/*-*-reader', value)).toBeLessThan(100);
  });

  it('matches an adversarial 100 KB value in steps linear in its length', () => {
    // Every literal run but the last is found early; the last is absent, so the whole value is scanned.
    const pattern = '*:role/*-*-*-*-reader-*';
    const hostile = (n: number) => ':role/-'.repeat(Math.ceil(n / 7));
    const small = hostile(10_000);
    const large = hostile(100_000);
    const s = stepsFor(pattern, small);
    const l = stepsFor(pattern, large);
    // Linear: ten times the input costs about ten times the steps (a backtracking engine grows ~1000×), and each
    // character is compared a small constant number of times.
    expect(l / s).toBeLessThan(15);
    expect(l).toBeGreaterThan(large.length / 2);
    expect(l).toBeLessThan(3 * (large.length + pattern.length));
  });

  it('matches a value of many near-misses of a long literal run in linear steps', () => {
    const run = 'a'.repeat(50) + 'b';
    const value = 'a'.repeat(100_000);
    const meter: StepMeter = { steps: 0 };
    expect(compileGlob(`*${run}*`).matches(value, meter)).toBe(false);
    expect(meter.steps).toBeLessThan(3 * value.length);
  });
});
