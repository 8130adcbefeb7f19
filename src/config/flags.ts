// One pflag-compatible command-line parser for the long-running commands (`lanyard webhook`, `lanyard controller`,
// `lanyard run`): `--flag=value`, `--flag value`, bare booleans, `--` ends the flags, one-letter shorthands (`-h`,
// `-v 4`, `-v=4`, `-v4`), klog's single-dash flags accepted and ignored. Each flag carries its type, description
// and default, so `--help` is rendered from the same table the parser reads (docs/adr/1010-one-of-each.md). Pure.
import { parseGoBool } from '../identity/annotations.ts';

/** A bad command line: exit code 2 with this one line (docs/webhook.md, command line). */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

export type FlagType = 'string' | 'strings' | 'bool' | 'int' | 'duration';

export interface Flag<C> {
  type: FlagType;
  /** What the flag does, for --help. */
  usage: string;
  /** The default as --help shows it ('' shows none). */
  default: string;
  /** Applies a value; absent for flags accepted only for compatibility (klog's), which are reported as ignored. */
  set?: (c: C, value: string, flag: string) => void;
  /** One-letter alias written with one dash (`-h`, `-v`). */
  shorthand?: string;
  /** Also accepted with one dash (klog writes `-logtostderr`). */
  singleDash?: boolean;
}

export type Flags<C> = Readonly<Record<string, Flag<C>>>;

export interface ParseOptions {
  /** The command, for messages (`lanyard webhook takes flags only`). */
  command: string;
  /**
   * Flags another part of the same process understands (`lanyard run`: the webhook's). Those this set does not know
   * are returned in `rest` instead of being refused; shared ones are both applied and returned.
   */
  passThrough?: ReadonlySet<string>;
}

export interface ParseResult {
  /** Arguments of pass-through flags, as given. */
  rest: string[];
  /** Compatibility flags that were given and ignored, in order, without duplicates. */
  ignored: string[];
  /** Every flag given, by its long name. */
  given: Set<string>;
}

interface Use {
  name: string;
  value: string;
  raw: string[];
}

/** Splits argv into flag uses without applying any. Throws FlagError naming the argument. */
function tokenize<C>(flags: Flags<C>, argv: readonly string[], o: ParseOptions): Use[] {
  const uses: Use[] = [];
  const byShorthand = new Map(
    Object.entries(flags)
      .filter(([, f]) => f.shorthand)
      .map(([n, f]) => [f.shorthand!, n]),
  );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (!arg.startsWith('-') || arg === '-')
      throw new FlagError(`unexpected argument "${arg}": lanyard ${o.command} takes flags only`);
    const long = arg.startsWith('--');
    const body = arg.slice(long ? 2 : 1);
    const eq = body.indexOf('=');
    let name = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    if (!long) {
      const short = byShorthand.get(name);
      if (short) name = short;
      else if (
        value === undefined &&
        byShorthand.has(name[0]!) &&
        flags[byShorthand.get(name[0]!)!]!.type !== 'bool'
      ) {
        // pflag: `-v4` is `-v=4` for a shorthand that takes a value.
        value = name.slice(1);
        name = byShorthand.get(name[0]!)!;
      } else if (!flags[name]?.singleDash) throw new FlagError(`unknown shorthand flag: "${arg}"`);
    }
    const flag = flags[name];
    const shared = o.passThrough?.has(name) ?? false;
    if (!flag && !shared) throw new FlagError(`unknown flag: --${name}`);
    // A pass-through flag this set does not know takes the next argument unless that is another flag.
    const isBool = flag ? flag.type === 'bool' : argv[i + 1] === undefined || argv[i + 1]!.startsWith('-');
    const raw = [arg];
    if (value === undefined) {
      if (isBool) value = 'true';
      else {
        const next = argv[i + 1];
        if (next === undefined) throw new FlagError(`flag needs an argument: --${name}`);
        value = next;
        raw.push(next);
        i++;
      }
    }
    uses.push({ name, value, raw });
  }
  return uses;
}

/**
 * Applies argv to `target` through the flags' setters, in order (a later flag wins). Throws FlagError naming the
 * flag on the first bad argument.
 */
export function parseFlags<C>(
  flags: Flags<C>,
  argv: readonly string[],
  target: C,
  o: ParseOptions,
): ParseResult {
  const result: ParseResult = { rest: [], ignored: [], given: new Set() };
  for (const use of tokenize(flags, argv, o)) {
    const flag = flags[use.name];
    if (flag) {
      result.given.add(use.name);
      if (flag.set) flag.set(target, use.value, use.name);
      else {
        if (flag.type === 'bool') boolValue(use.name, use.value);
        if (!result.ignored.includes(use.name)) result.ignored.push(use.name);
      }
    }
    if (o.passThrough?.has(use.name)) result.rest.push(...use.raw);
  }
  return result;
}

/**
 * `help` or `version` when argv asks for one of them, checked before any value is validated (pflag: `--help` wins
 * over a missing required flag), else undefined. A malformed command line still throws.
 */
export function wantsHelpOrVersion<C>(
  flags: Flags<C>,
  argv: readonly string[],
  o: ParseOptions,
): 'help' | 'version' | undefined {
  const uses = tokenize(flags, argv, o);
  const on = (name: string) => uses.some((u) => u.name === name && parseGoBool(u.value) === true);
  if (flags.help && on('help')) return 'help';
  if (flags.version && on('version')) return 'version';
  return undefined;
}

export function boolValue(flag: string, v: string): boolean {
  const b = parseGoBool(v);
  if (b === undefined) throw new FlagError(`invalid argument "${v}" for "--${flag}": must be a boolean`);
  return b;
}

/** `v` when it is one of `allowed`, else pflag's invalid-argument error naming them ("must be a, b or c"). */
export function oneOfValue<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(v)) return v as T;
  const names = allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}` : allowed[0];
  throw new FlagError(`invalid argument "${v}" for "--${flag}": must be ${names}`);
}

/** A comma-separated flag value: each entry trimmed, empty entries dropped. */
export function listValue(v: string): string[] {
  return v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

/** The `Flags:` block of --help, pflag's layout: `  -v, --v int   usage (default 0)`; ignored flags on one line. */
export function renderFlagHelp<C>(flags: Flags<C>): string[] {
  const rows: Array<[string, string]> = [];
  const ignored: string[] = [];
  for (const [name, f] of Object.entries(flags)) {
    if (!f.set) {
      ignored.push(`--${name}`);
      continue;
    }
    const type = f.type === 'bool' ? '' : ` ${f.type}`;
    const left = `${f.shorthand ? `-${f.shorthand}, ` : ''}--${name}${type}`;
    rows.push([left, f.default === '' ? f.usage : `${f.usage} (default ${f.default})`]);
  }
  if (ignored.length) rows.push([ignored.join(', '), 'accepted for compatibility (klog) and ignored']);
  const width = Math.max(...rows.filter(([l]) => l.length < 60).map(([l]) => l.length));
  return rows.map(([l, d]) =>
    l.length > width ? `  ${l}\n  ${''.padEnd(width)}  ${d}` : `  ${l.padEnd(width)}  ${d}`,
  );
}
