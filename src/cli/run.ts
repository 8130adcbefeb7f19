// Running the CLI: against the real process (the `lanyard` binary) or in-process with captured output (tests,
// benchmarks). Both build a fresh command tree per run, so no state leaks between invocations.
import { createKubeClient } from '../kube/client.ts';
import { nodeFs, type CliEnv } from '../config/cli.ts';
import { systemClock } from '../runtime/clock.ts';
import type { CliIO } from './framework.ts';
import { buildProgram } from './program.ts';
import { exitCodeOf } from './exit.ts';

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
    createClient: createKubeClient,
    ...o.io,
  };
  const program = buildProgram(io);
  let exitCode = 0;
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    exitCode = exitCodeOf(e, io.stderr);
  }
  return { stdout, stderr, exitCode };
}
