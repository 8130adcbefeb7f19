// JSON logs through pino. Tokens and credentials never reach a log line: redaction below is a second guard behind
// code that never logs them (docs/security.md, docs/verified-start.md#how-it-works). It costs nothing on the common line whose fields
// are all plain values (docs/adr/0110-webhook-log-line.md): only a line carrying a nested object, or a sensitive key,
// is copied and censored.
import fs from 'node:fs';
import pino, { type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Keys whose values are censored wherever they appear in a line (top level or nested). */
export const SENSITIVE_KEYS: ReadonlySet<string> = new Set([
  'data',
  'token',
  'Token',
  'bearerToken',
  'credentials',
  'Credentials',
  'SecretAccessKey',
  'SessionToken',
  'secretAccessKey',
  'sessionToken',
  'authorization',
]);

export const CENSOR = '[redacted]';
const MAX_DEPTH = 8;

function needsRedaction(v: unknown, depth: number): boolean {
  if (v === null || typeof v !== 'object' || depth > MAX_DEPTH || ArrayBuffer.isView(v)) return false;
  if (Array.isArray(v)) return v.some((x) => needsRedaction(x, depth + 1));
  for (const k in v) {
    if (SENSITIVE_KEYS.has(k) || needsRedaction((v as Record<string, unknown>)[k], depth + 1)) return true;
  }
  return false;
}

function censored(v: unknown, depth: number): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (depth > MAX_DEPTH) return CENSOR;
  if (Array.isArray(v)) return v.map((x) => censored(x, depth + 1));
  if (ArrayBuffer.isView(v)) return v;
  const out: Record<string, unknown> = {};
  // An Error copied here no longer reaches pino's `err` serializer as an Error: keep what it would have kept.
  if (v instanceof Error) {
    Object.assign(out, { type: v.name, message: v.message, stack: v.stack });
    if (v.cause !== undefined) out.cause = censored(v.cause, depth + 1);
  }
  for (const k in v)
    out[k] = SENSITIVE_KEYS.has(k) ? CENSOR : censored((v as Record<string, unknown>)[k], depth + 1);
  return out;
}

/**
 * The line's fields with every sensitive key censored; the same object, untouched, when no field is an object and no
 * key is sensitive (a loop over the top-level keys: the per-admission line pays nothing more).
 */
export function redactLine(fields: Record<string, unknown>): Record<string, unknown> {
  for (const k in fields) {
    const v = fields[k];
    if (SENSITIVE_KEYS.has(k) || (v !== null && typeof v === 'object' && needsRedaction(v, 1)))
      return censored(fields, 0) as Record<string, unknown>;
  }
  return fields;
}

let stampMs = 0;
let stamp = '';
/** pino's ISO time, formatted once per millisecond: at thousands of lines a second most lines share one. */
function isoTime(): string {
  const now = Date.now();
  if (now !== stampMs) {
    stampMs = now;
    stamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return stamp;
}

/** How long a logged line may wait to be written with the lines that follow it. */
export const LOG_BATCH_MS = 10;

/** What a line batch is written to: pino's asynchronous destination (SonicBoom), or a test's stand-in. */
export interface LineSink {
  write(text: string): unknown;
  flushSync?(): void;
  flush?(cb?: (err?: Error) => void): void;
}

/**
 * Lines handed to the sink as one string at most `LOG_BATCH_MS` after the first of them was logged
 * (docs/adr/0120-webhook-log-batching.md): a line costs an array push instead of SonicBoom's per-line length scan,
 * write call and write completion. `flushSync` (at process exit) first flushes the sink's own buffer, then writes the
 * pending lines synchronously, so lines keep their order.
 */
export class BatchedLines {
  private pending: string[] = [];
  private scheduled = false;
  private readonly drain = (): void => {
    this.scheduled = false;
    const text = this.take();
    if (text) this.sink.write(text);
  };

  constructor(
    private readonly sink: LineSink,
    private readonly o: {
      /** Writes synchronously to the sink's file (used at exit, when no asynchronous write completes). */
      writeSync?: (text: string) => void;
      schedule?: (fn: () => void) => void;
    } = {},
  ) {}

  private take(): string {
    if (this.pending.length === 0) return '';
    const text = this.pending.length === 1 ? this.pending[0]! : this.pending.join('');
    this.pending = [];
    return text;
  }

  write(line: string): boolean {
    this.pending.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      if (this.o.schedule) this.o.schedule(this.drain);
      // Unreferenced: pending lines never keep the process alive; the exit hook writes them.
      else setTimeout(this.drain, LOG_BATCH_MS).unref();
    }
    return true;
  }

  flushSync(): void {
    try {
      this.sink.flushSync?.();
    } catch {
      // pino may have ended SonicBoom at 'beforeExit' (its buffer written then): only the pending lines are left.
    }
    const text = this.take();
    if (!text) return;
    if (this.o.writeSync) this.o.writeSync(text);
    else this.sink.write(text);
  }

  /** pino's `logger.flush(cb)`. */
  flush(cb?: (err?: Error) => void): void {
    this.drain();
    if (this.sink.flush) this.sink.flush(cb);
    else cb?.();
  }
}

/** Standard output as the loggers write it: asynchronous, batched per turn, flushed when the process exits. */
function stdoutLines(): BatchedLines {
  const lines = new BatchedLines(pino.destination({ fd: 1, sync: false }), {
    writeSync: (text) => {
      try {
        for (let b = Buffer.from(text); b.length;) b = b.subarray(fs.writeSync(1, b));
      } catch {
        // Standard output closed or full while the process exits: nothing is left to report it to.
      }
    },
  });
  process.once('exit', () => lines.flushSync());
  return lines;
}

export function createLogger(opts: {
  component: string;
  level?: string;
  destination?: DestinationStream;
}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { component: opts.component },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }), log: redactLine },
    },
    opts.destination ?? stdoutLines(),
  );
}

/**
 * Writes one `level` line whose fields the caller serialized (`"key":value` pairs joined by commas) through `log`'s
 * destination, as pino writes a line of a logger made by createLogger: level, time, the logger's bindings, the
 * fields, msg. For the line of every mutated Pod, where pino's generic serializer was the largest cost of the
 * webhook's own work (docs/adr/0121-mutation-line-preformatted.md). The fields skip redaction: the caller passes
 * only keys that can carry no secret.
 */
export function logPreformatted(log: Logger, level: 'info', fields: string, msg: string): void {
  if (!log.isLevelEnabled(level)) return;
  const own = log as unknown as Record<symbol, unknown>;
  const destination = own[pino.symbols.streamSym] as DestinationStream;
  destination.write(
    `{"level":"${level}"${isoTime()}${own[pino.symbols.chindingsSym] as string},${fields},"msg":${JSON.stringify(msg)}}\n`,
  );
}

/** A logger that drops everything (tests and benchmarks that do not look at logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
