// Durations, one grammar for every flag, setting and Stage field: Go's time.ParseDuration (`300ms`, `1.5h`, `2h45m`,
// units ns, us/µs, ms, s, m, h), always read into milliseconds (docs/adr/1010-one-of-each.md). Pure.

export type DurationUnit = 'ns' | 'us' | 'ms' | 's' | 'm' | 'h';

/** Narrows Go's grammar for a field whose documented form is smaller (a Stage timeout is whole `h`/`m`/`s`). */
export interface DurationShape {
  /** Units allowed (default: all of Go's; `us` also allows `µs` and `μs`). */
  units?: readonly DurationUnit[];
  /** Decimal numbers such as `1.5s` (default true). */
  fractions?: boolean;
  /** A leading `-` (default true, as Go; a leading `+` is always accepted). */
  negative?: boolean;
}

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const UNIT_RE = 'ns|us|µs|μs|ms|s|m|h';
const GRAMMAR = new RegExp(`^([+-])?(?:(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:${UNIT_RE}))+$`);
const PART = new RegExp(`(\\d+(?:\\.\\d*)?|\\.\\d+)(${UNIT_RE})`, 'g');

/** Milliseconds, or undefined when `text` is not a Go duration (of the given shape). `0` alone is zero, as in Go. */
export function parseDuration(text: string, shape: DurationShape = {}): number | undefined {
  if (text === '0') return 0;
  const m = GRAMMAR.exec(text);
  if (!m) return undefined;
  if (m[1] === '-' && shape.negative === false) return undefined;
  let total = 0;
  for (const [, num, unit] of text.matchAll(PART)) {
    if (shape.fractions === false && num!.includes('.')) return undefined;
    const base = unit === 'µs' || unit === 'μs' ? 'us' : unit!;
    if (shape.units && !shape.units.includes(base as DurationUnit)) return undefined;
    total += Number(num) * UNIT_MS[unit!]!;
  }
  return m[1] === '-' ? -total : total;
}

/** `2m`, `15m`, `1h30m`, `2s`, `0s`: whole seconds in the shortest form parseDuration reads back. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s === 0) return '0s';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${r ? `${r}s` : ''}`;
}
