// Argument handling before commander sees the command line: the global flags of the resource verbs may be written
// before the verb (`lanyard --context prod get projects`, as with kubectl), and the command path tells which
// capabilities to load (src/cli/program.ts).

/** The global flags of the resource verbs (framework.ts adds them to every leaf) and whether each takes a value. */
export const GLOBAL_FLAGS: readonly { long: string; short?: string; value: boolean }[] = [
  { long: '--project', short: '-p', value: true },
  { long: '--output', short: '-o', value: true },
  { long: '--no-headers', value: false },
  { long: '--kubeconfig', value: true },
  { long: '--context', value: true },
  { long: '--request-timeout', value: true },
  { long: '--verbose', short: '-v', value: false },
];

/** How many arguments the global flag at argv[i] spans (1 or 2), or 0 when argv[i] is not a global flag. */
function globalFlagSpan(argv: readonly string[], i: number): number {
  const a = argv[i]!;
  if (a.startsWith('--')) {
    const eq = a.indexOf('=');
    const f = GLOBAL_FLAGS.find((g) => g.long === (eq < 0 ? a : a.slice(0, eq)));
    if (!f) return 0;
    return f.value && eq < 0 ? 2 : 1;
  }
  const f = GLOBAL_FLAGS.find((g) => g.short !== undefined && a.startsWith(g.short));
  if (!f) return 0;
  if (a.length === 2) return f.value ? 2 : 1;
  return f.value ? 1 : 0; // `-oyaml` carries its value; `-vx` is not ours
}

/**
 * Moves global flags written before the command to after it (before a `--`, if any), where the leaf commands
 * define them. Anything else is left where it is, so `lanyard --help` and unknown flags behave as before.
 */
export function moveGlobalFlags(argv: readonly string[]): string[] {
  let i = 0;
  for (let span; i < argv.length && (span = globalFlagSpan(argv, i)) > 0;) i += span;
  if (i === 0) return [...argv];
  const leading = argv.slice(0, Math.min(i, argv.length));
  const rest = argv.slice(i);
  const dashdash = rest.indexOf('--');
  return dashdash < 0
    ? [...rest, ...leading]
    : [...rest.slice(0, dashdash), ...leading, ...rest.slice(dashdash)];
}

/** The command words at the start of argv (`get sas` of `get sas -p shop`); `help get` names `get`. */
export function commandPath(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-')) break;
    words.push(a);
  }
  return words[0] === 'help' ? words.slice(1) : words;
}
