// Files-mode TLS (docs/webhook.md, "TLS"): the pair is re-read on any event in either directory and on every poll,
// resolving symlinks afresh; a pair is installed only when both parse, the key matches the certificate and the
// certificate is valid now (docs/adr/0103-serving-certificate-validity.md).
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../runtime/log.ts';
import type { WebhookMetrics } from './metrics.ts';
import { errorMessage } from '../core/errors.ts';

export interface LoadedPair {
  certPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

type ValidityProblem = { result: 'expired' | 'not_yet_valid'; reason: string };

/** Why a certificate cannot be served at `now`, or undefined while `now` lies within its validity. */
export function validityProblem(
  cert: { notBefore: Date; notAfter: Date },
  now: number,
): ValidityProblem | undefined {
  // No "now" in the text: problems are reported once per distinct reason.
  if (now < cert.notBefore.getTime()) {
    return {
      result: 'not_yet_valid',
      reason: `certificate is not valid before ${cert.notBefore.toISOString()}`,
    };
  }
  // X.509 validity includes notAfter itself.
  if (now > cert.notAfter.getTime())
    return { result: 'expired', reason: `certificate expired at ${cert.notAfter.toISOString()}` };
  return undefined;
}

/** Pure check of a PEM pair; returns the reason it is unusable, or the pair. */
export function checkPair(certPem: string, keyPem: string): LoadedPair | string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    return `certificate does not parse: ${errorMessage(e)}`;
  }
  try {
    const key = createPrivateKey(keyPem);
    if (!cert.checkPrivateKey(key)) return 'private key does not match the certificate';
  } catch (e) {
    return `private key does not parse: ${errorMessage(e)}`;
  }
  return { certPem, keyPem, notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

export class TlsFiles {
  private watchers: FSWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private current?: LoadedPair;
  private reading = false;
  private lastProblem = '';
  private waiters: Array<(p: LoadedPair) => void> = [];
  private readonly now: () => number;

  constructor(
    private readonly o: {
      certFile: string;
      keyFile: string;
      pollIntervalMs: number;
      log: Logger;
      metrics: WebhookMetrics;
      onPair: (p: LoadedPair) => void;
      now?: () => number;
    },
  ) {
    this.now = o.now ?? Date.now;
  }

  firstPair(): Promise<LoadedPair> {
    if (this.current) return Promise.resolve(this.current);
    return new Promise((r) => this.waiters.push(r));
  }

  /** A pair is installed and valid now: the readiness check. */
  usable(): boolean {
    return this.current !== undefined && validityProblem(this.current, this.now()) === undefined;
  }

  async start(): Promise<void> {
    await this.reload();
    for (const dir of new Set([path.dirname(this.o.certFile), path.dirname(this.o.keyFile)])) {
      try {
        const w = fsWatch(dir, () => void this.reload());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch (e) {
        this.o.log.warn({ dir, err: e }, 'cannot watch the TLS directory; polling only');
      }
    }
    this.timer = setInterval(() => void this.reload(), this.o.pollIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    for (const w of this.watchers) w.close();
    if (this.timer) clearInterval(this.timer);
  }

  async reload(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      let certPem: string;
      let keyPem: string;
      try {
        [certPem, keyPem] = await Promise.all([
          readFile(this.o.certFile, 'utf8'),
          readFile(this.o.keyFile, 'utf8'),
        ]);
      } catch (e) {
        return this.problem('invalid', `cannot read the TLS files: ${errorMessage(e)}`);
      }
      if (this.current && this.current.certPem === certPem && this.current.keyPem === keyPem)
        return this.checkCurrent();
      const r = checkPair(certPem, keyPem);
      if (typeof r === 'string') return this.problem('invalid', r);
      const invalid = validityProblem(r, this.now());
      if (invalid)
        return this.problem(
          invalid.result,
          `refusing the certificate in ${this.o.certFile}: ${invalid.reason}`,
        );
      this.current = r;
      this.lastProblem = '';
      this.o.metrics.configReloads.inc({ source: 'tls', result: 'applied' });
      this.o.log.info(
        { cert: this.o.certFile, notBefore: r.notBefore.toISOString(), notAfter: r.notAfter.toISOString() },
        'TLS certificate loaded',
      );
      this.o.onPair(r);
      for (const w of this.waiters.splice(0)) w(r);
    } finally {
      this.reading = false;
    }
  }

  /** The pair being served can outlive its validity when nothing replaces it: readiness turns false, loudly. */
  private checkCurrent(): void {
    const invalid = this.current && validityProblem(this.current, this.now());
    if (invalid)
      this.problem(
        invalid.result,
        `the served certificate from ${this.o.certFile} is no longer valid: ${invalid.reason}`,
      );
  }

  private problem(result: 'invalid' | ValidityProblem['result'], reason: string): void {
    // Reported once per distinct problem, so a missing or stale file does not flood the log at every poll.
    if (reason === this.lastProblem) return;
    this.lastProblem = reason;
    this.o.metrics.configReloads.inc({ source: 'tls', result });
    const fields = { cert: this.o.certFile, key: this.o.keyFile, reason };
    if (this.usable()) this.o.log.warn(fields, 'TLS reload refused; keeping the current pair');
    else if (result === 'invalid' && !this.current) this.o.log.warn(fields, 'no usable TLS pair yet');
    else
      this.o.log.error(
        fields,
        'no valid serving certificate: the webhook is not ready until a valid pair is installed',
      );
  }
}
