// The HTTPS listener of /mutate (docs/webhook.md#connections): connection cap, read and idle timeouts, bounded body
// reading, and answers written as one string with Content-Length (no chunked encoding, Nagle off), the admission
// answers of one event-loop turn together.
import https from 'node:https';
import type http from 'node:http';
import type { Socket } from 'node:net';
import { statusError } from './codec.ts';

const UNTIL_FIRST_REQUEST = Symbol('socket timeout until the first request');

export interface ConnectionLimits {
  /** Open connections beyond this are closed at once (`--max-connections`). */
  maxConnections: number;
  /** TLS handshake, then each request's headers and body, must arrive within this (`--read-timeout`). */
  readTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (`--idle-timeout`). */
  idleTimeoutMs: number;
}

/**
 * An HTTPS server with the limits applied. Node checks the header and request deadlines on a timer; it runs every
 * quarter of the read timeout (at most every second), so a stalled connection is cut within 1.25× the timeout.
 */
export function createAdmissionServer(
  tls: https.ServerOptions,
  limits: ConnectionLimits,
  onDrop: () => void,
): https.Server {
  const checkEvery = Math.max(50, Math.min(1000, Math.floor(limits.readTimeoutMs / 4)));
  const server = https.createServer({
    ...tls,
    handshakeTimeout: limits.readTimeoutMs,
    headersTimeout: limits.readTimeoutMs,
    requestTimeout: limits.readTimeoutMs,
    connectionsCheckingInterval: checkEvery,
    keepAliveTimeout: limits.idleTimeoutMs,
  });
  server.maxConnections = limits.maxConnections;
  server.on('drop', onDrop);
  // A connection that completes the handshake and then sends nothing has no request for the deadlines above to
  // measure; its socket times out instead, until the first request begins (Node then manages the timeout).
  // (Nagle is off by default on node:https servers; passing `noDelay` explicitly stops this socket timeout firing.)
  server.on('secureConnection', (socket: Socket & { [UNTIL_FIRST_REQUEST]?: boolean }) => {
    socket.setNoDelay(true);
    socket[UNTIL_FIRST_REQUEST] = true;
    socket.setTimeout(limits.readTimeoutMs, () => socket.destroy());
  });
  // Only the first request of a connection clears it: later ones find no timeout to clear (a timer per request).
  server.on('request', (req: http.IncomingMessage) => {
    const socket = req.socket as Socket & { [UNTIL_FIRST_REQUEST]?: boolean };
    if (socket[UNTIL_FIRST_REQUEST]) {
      socket[UNTIL_FIRST_REQUEST] = false;
      socket.setTimeout(0);
    }
  });
  return server;
}

const JSON_TYPE = 'application/json';

/**
 * Writes a JSON answer with its length and no chunked encoding. Given as a string, Node sends the body in the same chunk
 * as the headers.
 */
export function sendText(
  res: http.ServerResponse,
  status: number,
  body: string,
  headers?: Record<string, string>,
): void {
  const h: Record<string, string | number> = {
    'content-type': JSON_TYPE,
    'content-length': Buffer.byteLength(body),
  };
  if (headers) Object.assign(h, headers);
  res.writeHead(status, h);
  res.end(body);
}

/** How long an answer may wait for the others decided in the same turn of the event loop (docs/adr/0122). */
const ANSWER_WAIT_MS = 1;

interface QueuedAnswer {
  res: http.ServerResponse;
  status: number;
  body: string;
  headers: Record<string, string> | undefined;
  written: (() => void) | undefined;
}

/**
 * Admission answers decided in one turn of the event loop, written together once the turn's I/O callbacks are done
 * (docs/adr/0122-answers-written-per-turn.md): reviews read in one turn are answered in one burst, so a client that is
 * asleep is woken once for the burst rather than once per answer. The first answer of a burst waits at most
 * `maxWaitMs` (the burst is written at once when a later answer finds it older).
 */
export class AnswerBatch {
  private queued: QueuedAnswer[] = [];
  private firstAt = 0;
  private readonly flushNow = (): void => this.flush();
  private readonly onError: (e: unknown) => void;
  private readonly maxWaitMs: number;
  private readonly now: () => number;
  private readonly schedule: (fn: () => void) => void;

  constructor(o: {
    /** An answer that could not be written, or whose `written` failed (the others are written all the same). */
    onError: (e: unknown) => void;
    maxWaitMs?: number;
    now?: () => number;
    /** Runs the flush once the turn's I/O callbacks are done; setImmediate by default. */
    schedule?: (fn: () => void) => void;
  }) {
    this.onError = o.onError;
    this.maxWaitMs = o.maxWaitMs ?? ANSWER_WAIT_MS;
    this.now = o.now ?? (() => performance.now());
    this.schedule = o.schedule ?? setImmediate;
  }

  /** Queues a JSON answer (as sendText writes it); `written` runs once it is handed to the socket. */
  send(
    res: http.ServerResponse,
    status: number,
    body: string,
    headers?: Record<string, string>,
    written?: () => void,
  ): void {
    const now = this.now();
    if (this.queued.length === 0) {
      this.firstAt = now;
      this.schedule(this.flushNow);
    }
    this.queued.push({ res, status, body, headers, written });
    if (now - this.firstAt >= this.maxWaitMs) this.flush();
  }

  /** Writes every queued answer, in the order they were decided. */
  flush(): void {
    const answers = this.queued;
    if (answers.length === 0) return;
    this.queued = [];
    for (const a of answers) {
      try {
        sendText(a.res, a.status, a.body, a.headers);
        a.written?.();
      } catch (e) {
        this.onError(e);
      }
    }
  }
}

export function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers?: Record<string, string>,
): void {
  sendText(res, status, JSON.stringify(body), headers);
}

export type Body = Buffer | 'too_large' | 'aborted';

/** Reads the body up to `limit` bytes: the body, or why there is none (a 413 is already sent when too large). */
export function readBody(req: http.IncomingMessage, res: http.ServerResponse, limit: number): Promise<Body> {
  const tooLarge = () => {
    sendJson(
      res,
      413,
      statusError(
        413,
        'RequestEntityTooLarge',
        `request body exceeds the limit of ${limit} bytes (--max-request-bytes)`,
      ),
      {
        connection: 'close',
      },
    );
    res.on('finish', () => req.socket.destroy());
  };
  const declared = Number(req.headers['content-length']);
  if (declared > limit) {
    tooLarge();
    return Promise.resolve('too_large');
  }
  return new Promise((resolve) => {
    let first: Buffer | undefined;
    let chunks: Buffer[] | undefined;
    let size = 0;
    let settled = false;
    const settle = (v: Body) => {
      if (settled) return;
      settled = true;
      resolve(v);
    };
    req.on('data', (c: Buffer) => {
      if (settled) return;
      size += c.length;
      if (size > limit) {
        tooLarge();
        settle('too_large');
        return;
      }
      // The common review arrives in one chunk: no copy then.
      if (!first) first = c;
      else (chunks ??= [first]).push(c);
    });
    req.on('end', () => settle(chunks ? Buffer.concat(chunks, size) : (first ?? Buffer.alloc(0))));
    // A client that goes away mid-body must not leave the handler waiting forever.
    req.on('error', () => settle('aborted'));
    req.on('close', () => settle('aborted'));
  });
}
