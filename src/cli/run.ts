// Running the CLI: against the real process (the `lanyard` binary, src/main.ts) or in-process with captured output
// (tests, benchmarks). Both build a fresh command tree per run, so no state leaks between invocations.
import { nodeFs, type CliEnv } from '../config/cli.ts';
import { systemClock } from '../runtime/clock.ts';
import type { CliIO } from './framework.ts';
import { buildProgram } from './program.ts';
import { exitCodeOf } from './exit.ts';
import { moveGlobalFlags } from './argv.ts';
import { complete } from './completion.ts';

/**
 * Runs `lanyard <argv...>` (the user's arguments) with `io`; returns the exit code. `name` is the program's name in
 * usage lines (`kubectl lanyard` as a kubectl plugin).
 */
export async function execute(io: CliIO, argv: readonly string[], name = 'lanyard'): Promise<number> {
  if (argv[0] === '__complete') {
    // The completion scripts' callback (completion.ts): candidates for the last word, one per line.
    const words = argv.slice(1);
    const program = await buildProgram(io, { name, argv: moveGlobalFlags(words.slice(0, -1)) });
    const candidates = complete(program, words);
    io.stdout(candidates.map((c) => c + '\n').join(''));
    return 0;
  }
  const args = moveGlobalFlags(argv);
  try {
    const program = await buildProgram(io, { name, argv: args });
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (e) {
    return exitCodeOf(e, io.stderr);
  }
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface RunOptions {
  env?: CliEnv;
  stdinIsTTY?: boolean;
  stderrIsTTY?: boolean;
  /** Lines typed at prompts, in order. */
  input?: string[];
  /** Everything piped to stdin. */
  stdin?: string;
  /** Overrides of the IO (client factory, request hook, clock, fs). */
  io?: Partial<CliIO>;
}

/** Runs `lanyard <argv...>` in-process and returns what it printed and its exit code. */
export async function runCli(argv: string[], o: RunOptions = {}): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const input = [...(o.input ?? [])];
  const io: CliIO = {
    env: o.env ?? {},
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
    stdinIsTTY: o.stdinIsTTY ?? false,
    stderrIsTTY: o.stderrIsTTY ?? false,
    async readLine(prompt) {
      stderr += prompt;
      return input.shift();
    },
    readStdin: async () => o.stdin ?? '',
    clock: systemClock,
    fs: nodeFs,
    // The client (and node:https) is loaded by the first command that talks to a server, not by --help or version.
    createClient: async (opts) => (await import('../kube/client.ts')).createKubeClient(opts),
    ...o.io,
  };
  const exitCode = await execute(io, argv);
  return { stdout, stderr, exitCode };
}
