// Exit codes and CliError live in src/core/exit.ts (neutral: config/ and capabilities use them without importing cli/).
import { CliError, EXIT } from '../core/exit.ts';
import { errorMessage } from '../core/errors.ts';

export { CliError, EXIT };

/** Prints the error line once and returns the exit code to use. */
export function exitCodeOf(e: unknown, stderr: (s: string) => void = (s) => process.stderr.write(s)): number {
  if (
    e &&
    typeof e === 'object' &&
    'code' in e &&
    typeof (e as { code: unknown }).code === 'string' &&
    String((e as { code: string }).code).startsWith('commander.')
  ) {
    // commander already printed its usage error
    const code = (e as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : EXIT.usage;
  }
  if (e instanceof CliError) {
    if (e.message) stderr(`error: ${e.message}\n`);
    return e.exitCode;
  }
  stderr(`error: ${errorMessage(e)}\n`);
  return EXIT.failure;
}
