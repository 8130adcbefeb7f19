// Exit codes of every command, one table so no two meanings share a code (docs/cli.md, exit codes: resource verbs, doctor,
// promotions; verify). Commands throw CliError; src/cli/exit.ts maps it to the process exit code. Neutral: config/
// and every capability may import it (docs/adr/1011-import-boundaries.md).
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
