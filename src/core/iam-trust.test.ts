// IAM's wildcard and string-condition rules shared by `lanyard explain` and the AWS simulator (src/core/iam-trust.ts).
import { describe, expect, it } from 'vitest';
import { STRING_OPERATORS, iamGlob, stringConditionHolds } from './iam-trust.ts';

describe('iamGlob', () => {
  it.each([
    ['sts:AssumeRole*', 'sts:AssumeRoleWithWebIdentity', false, true],
    ['sts:*', 'sts:TagSession', false, true],
    ['a?c', 'abc', false, true],
    ['a?c', 'abbc', false, false],
    ['a.b*', 'axbcd', false, false],
    ['a', 'ab', false, false],
    ['(x)+[y]', '(x)+[y]', false, true],
    ['STS:AssumeRole', 'sts:assumerole', true, true],
    ['STS:AssumeRole', 'sts:assumerole', false, false],
    ['system:serviceaccount:team-a:*', 'system:serviceaccount:team-a:app\nx', false, true],
    ['a*', 'a*b', false, true],
    ['*', '', false, true],
    ['a**b', 'ab', false, true],
    ['*?', '', false, false],
    ['*b*c', 'abxbxc', false, true],
    ['*b*c', 'abxbxd', false, false],
  ])('%s against %s (ignore case %s) is %s', (pattern, value, ignoreCase, want) => {
    expect(iamGlob(pattern, value, ignoreCase)).toBe(want);
  });
});

describe('iamGlob on adversarial patterns', () => {
  it('answers *a*a*…*b against 20,000 a in a bounded number of steps (a backtracking regex needs years)', () => {
    const pattern = '*a'.repeat(12) + '*b';
    const value = 'a'.repeat(20_000);
    const started = performance.now();
    expect(iamGlob(pattern, value)).toBe(false);
    expect(iamGlob(pattern, value + 'b')).toBe(true);
    // pattern × value is 500,000 comparisons; a generous wall-clock bound for a loaded machine.
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe('stringConditionHolds', () => {
  it.each([
    ['stringequals', ['a', 'b'], ['b'], true],
    ['stringequals', ['a'], ['A'], false],
    ['stringequals', ['a'], [], false],
    ['stringlike', ['system:serviceaccount:*:app'], ['system:serviceaccount:x:app'], true],
    ['stringlike', ['App*'], ['app1'], false],
    ['stringnotequals', ['a'], ['b'], true],
    ['stringnotequals', ['a'], ['a'], false],
    ['stringnotequals', ['a'], [], true],
    ['stringnotlike', ['a*'], ['abc'], false],
    ['stringnotlike', ['a*'], ['xbc'], true],
  ] as const)('%s %j with %j holds: %s', (op, wanted, actual, want) => {
    expect(stringConditionHolds(op, wanted, actual)).toBe(want);
  });

  it('knows exactly the four string operators, lower-case', () => {
    expect([...STRING_OPERATORS].sort()).toEqual([
      'stringequals',
      'stringlike',
      'stringnotequals',
      'stringnotlike',
    ]);
  });
});
