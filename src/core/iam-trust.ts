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

/**
 * IAM's wildcards: `*` any run, `?` one character; anchored; every other character literal. Matched without a regular
 * expression, in at most (pattern × value) steps: a backtracking engine takes time exponential in the number of `*` on
 * a pattern like `*a*a*a*b` against a long value, and a trust policy or a Pod's claims are not ours to bound.
 */
export function iamGlob(pattern: string, value: string, ignoreCase = false): boolean {
  const pat = ignoreCase ? pattern.toLowerCase() : pattern;
  const val = ignoreCase ? value.toLowerCase() : value;
  let p = 0;
  let v = 0;
  // The last `*` seen and the value position it was tried at: on a mismatch it takes one more character.
  let star = -1;
  let starAt = 0;
  while (v < val.length) {
    const c = pat[p];
    if (c === '*') {
      star = p++;
      starAt = v;
    } else if (c !== undefined && (c === '?' || c === val[v])) {
      p++;
      v++;
    } else if (star >= 0) {
      p = star + 1;
      v = ++starAt;
    } else return false;
  }
  while (pat[p] === '*') p++;
  return p === pat.length;
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
