// JSON logs through pino. Tokens and credentials never reach a log line: the redaction paths below are a second
// guard behind code that never logs them (projects.md §5, verification.md §9.2).
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  '*.data',
  '*.token',
  '*.Token',
  '*.bearerToken',
  '*.credentials',
  '*.Credentials',
  '*.SecretAccessKey',
  '*.SessionToken',
  '*.secretAccessKey',
  '*.sessionToken',
  'req.headers.authorization',
  '*.headers.authorization',
  '*.authorization',
];

export function createLogger(opts: {
  component: string;
  level?: string;
  destination?: DestinationStream;
}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { component: opts.component },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    opts.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that drops everything (tests and benchmarks that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
