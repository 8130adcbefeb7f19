// Files-mode TLS (webhook.md §7.1): the pair is re-read on any event in either directory and on every poll, resolving
// symlinks afresh; a pair is installed only when both parse and the key matches the certificate.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../runtime/log.ts';
import type { WebhookMetrics } from './metrics.ts';

export interface LoadedPair {
  certPem: string;
  keyPem: string;
  notAfter: Date;
}

/** Pure check of a PEM pair; returns the reason it is unusable, or the pair. */
export function checkPair(certPem: string, keyPem: string): LoadedPair | string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (e) {
    return `certificate does not parse: ${(e as Error).message}`;
  }
  try {
    const key = createPrivateKey(keyPem);
    if (!cert.checkPrivateKey(key)) return 'private key does not match the certificate';
  } catch (e) {
    return `private key does not parse: ${(e as Error).message}`;
  }
  return { certPem, keyPem, notAfter: new Date(cert.validTo) };
}

export class TlsFiles {
  private watchers: FSWatcher[] = [];
  private timer?: NodeJS.Timeout;
  private current?: LoadedPair;
  private reading = false;
  private lastError = '';
  private waiters: Array<(p: LoadedPair) => void> = [];

  constructor(
    private readonly o: {
      certFile: string;
      keyFile: string;
      pollIntervalMs: number;
      log: Logger;
      metrics: WebhookMetrics;
      onPair: (p: LoadedPair) => void;
    },
  ) {}

  firstPair(): Promise<LoadedPair> {
    if (this.current) return Promise.resolve(this.current);
    return new Promise((r) => this.waiters.push(r));
  }

  async start(): Promise<void> {
    await this.reload();
    for (const dir of new Set([path.dirname(this.o.certFile), path.dirname(this.o.keyFile)])) {
      try {
        const w = fsWatch(dir, () => void this.reload());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch (e) {
        this.o.log.warn({ dir, err: String(e) }, 'cannot watch the TLS directory; polling only');
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
        [certPem, keyPem] = await Promise.all([readFile(this.o.certFile, 'utf8'), readFile(this.o.keyFile, 'utf8')]);
      } catch (e) {
        return this.fail(`cannot read the TLS files: ${(e as Error).message}`);
      }
      if (this.current && this.current.certPem === certPem && this.current.keyPem === keyPem) return;
      const r = checkPair(certPem, keyPem);
      if (typeof r === 'string') return this.fail(r);
      this.current = r;
      this.lastError = '';
      this.o.metrics.configReloads.inc({ source: 'tls', result: 'applied' });
      this.o.log.info({ cert: this.o.certFile, notAfter: r.notAfter.toISOString() }, 'TLS certificate loaded');
      this.o.onPair(r);
      for (const w of this.waiters.splice(0)) w(r);
    } finally {
      this.reading = false;
    }
  }

  private fail(reason: string): void {
    // Logged once per distinct problem, so a missing file does not flood the log at every poll.
    if (reason === this.lastError) return;
    this.lastError = reason;
    this.o.metrics.configReloads.inc({ source: 'tls', result: 'invalid' });
    this.o.log.warn({ cert: this.o.certFile, key: this.o.keyFile, reason }, this.current ? 'TLS reload failed; keeping the current pair' : 'no usable TLS pair yet');
  }
}
