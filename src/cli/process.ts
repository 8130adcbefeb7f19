// The `lanyard` command line as a process: the real IO, then the command. src/main.ts loads this one module for every
// command but `webhook` (docs/adr/0708), which never evaluates it.
import { moveGlobalFlags } from './argv.ts';
import { processIO } from './io.ts';
import { execute } from './run.ts';

/** Runs `argv` (the words after `lanyard`) as `name`; resolves to the exit code. */
export async function runCliProcess(argv: string[], name: string): Promise<number> {
  return await execute(processIO(moveGlobalFlags(argv)[0]), argv, name);
}
