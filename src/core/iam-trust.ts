// IAM's matching rules for trust policies, shared by `lanyard explain` / `lanyard iam check` (src/explain/trust.ts,
// docs/explain-and-iam.md) and the AWS simulator (src/sandbox/aws-sim/trust.ts, docs/aws-simulator.md, "Trust
// policies"): `*`/`?` wildcards, and the four string condition operators. Pure; in src/core/ so both can import it.

/** The condition operators both evaluate, lower-case. */
export const STRING_OPERATORS: ReadonlySet<string> = new Set([
  'stringequals',
  'stringlike',
  'stringnotequals',
  'stringnotlike',
]);

/** IAM's wildcards: `*` any run, `?` one character; anchored; every other character literal. */
export function iamGlob(pattern: string, value: string, ignoreCase = false): boolean {
  const re =
    '^' +
    pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.') +
    '$';
  return new RegExp(re, ignoreCase ? 'is' : 's').test(value);
}

/**
 * Whether a string condition holds: `operator` is one of STRING_OPERATORS (lower-case); the condition's values are
 * ORed; `actual` is what the request presents for the key (empty when it presents nothing). `*Like` compares with
 * wildcards, case-sensitively; `*Not*` holds when no value matches.
 */
export function stringConditionHolds(
  operator: string,
  wanted: readonly string[],
  actual: readonly string[],
): boolean {
  const like = operator.endsWith('like');
  const hit = actual.some((a) => wanted.some((w) => (like ? iamGlob(w, a) : w === a)));
  return operator.includes('not') ? !hit : hit;
}
