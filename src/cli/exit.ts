// Exit codes of every command, one table so no two meanings share a code (resource verbs and doctor: projects.md §6;
// promotions; verify). Commands throw CliError; main maps it.
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  forbidden: 4,
  refused: 5,
  timedOut: 6,
  doctorErrors: 7,
  promotionFailed: 10,
  promotionErrored: 11,
  promotionAborted: 12,
  // `lanyard verify` (docs/verified-start.md): its own outcomes, apart from the shared codes above.
  identityMismatch: 20,
  noIdentity: 21,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Prints the error line once and returns the exit code to use. */
export function exitCodeOf(e: unknown, stderr: (s: string) => void = (s) => process.stderr.write(s)): number {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string' &&
      String((e as { code: string }).code).startsWith('commander.')) {
    // commander already printed its usage error
    const code = (e as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : EXIT.usage;
  }
  if (e instanceof CliError) {
    if (e.message) stderr(`error: ${e.message}\n`);
    return e.exitCode;
  }
  stderr(`error: ${e instanceof Error ? e.message : String(e)}\n`);
  return EXIT.failure;
}
