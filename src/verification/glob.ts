// IdentityPolicy patterns (docs/verified-start.md, "IdentityPolicy"): `*` matches any run of characters (including
// `/` and `:`), everything else is literal; anchored and case-sensitive. Matched in time linear in the pattern plus
// the value, never with a regular expression: a backtracking engine is cubic on patterns like `*-*-reader` against a
// long value, which let one namespace stall admission for all others. Pure.

/** Counts the character comparisons a match makes, so tests can check the complexity bound. */
export interface StepMeter {
  steps: number;
}

export interface Glob {
  readonly pattern: string;
  matches(value: string, meter?: StepMeter): boolean;
}

/** A literal run between two `*`, with its Knuth-Morris-Pratt failure table. */
interface Segment {
  text: string;
  failure: Int32Array;
}

function failureTable(s: string): Int32Array {
  const f = new Int32Array(s.length);
  let k = 0;
  for (let i = 1; i < s.length; i++) {
    while (k > 0 && s.charCodeAt(i) !== s.charCodeAt(k)) k = f[k - 1]!;
    if (s.charCodeAt(i) === s.charCodeAt(k)) k++;
    f[i] = k;
  }
  return f;
}

/** Leftmost start of `seg` in value[from, to), or -1. Each value character is read once, plus bounded fallbacks. */
function find(seg: Segment, value: string, from: number, to: number, meter: StepMeter): number {
  const { text, failure } = seg;
  let k = 0;
  for (let i = from; i < to; i++) {
    const c = value.charCodeAt(i);
    meter.steps++;
    while (k > 0 && c !== text.charCodeAt(k)) {
      k = failure[k - 1]!;
      meter.steps++;
    }
    if (c === text.charCodeAt(k)) k++;
    if (k === text.length) return i - k + 1;
  }
  return -1;
}

const unmetered: StepMeter = { steps: 0 };

export function compileGlob(pattern: string): Glob {
  const parts = pattern.split('*');
  if (parts.length === 1) {
    return {
      pattern,
      matches: (value, meter = unmetered) => {
        meter.steps += Math.min(value.length, pattern.length);
        return value === pattern;
      },
    };
  }
  const prefix = parts[0]!;
  const suffix = parts[parts.length - 1]!;
  const middle: Segment[] = parts
    .slice(1, -1)
    .filter((p) => p !== '')
    .map((text) => ({ text, failure: failureTable(text) }));
  const minLength = prefix.length + suffix.length + middle.reduce((n, s) => n + s.text.length, 0);
  return {
    pattern,
    matches(value, meter = unmetered) {
      if (value.length < minLength) return false;
      meter.steps += prefix.length + suffix.length;
      if (!value.startsWith(prefix) || !value.endsWith(suffix)) return false;
      // Leftmost-first placement of each literal run is optimal for `*`-only patterns: a later placement can only
      // leave less room for the runs after it, so no choice is ever revisited.
      let at = prefix.length;
      const end = value.length - suffix.length;
      for (const seg of middle) {
        const i = find(seg, value, at, end, meter);
        if (i < 0) return false;
        at = i + seg.text.length;
      }
      return true;
    },
  };
}

export function globMatches(pattern: string, value: string): boolean {
  return compileGlob(pattern).matches(value);
}
