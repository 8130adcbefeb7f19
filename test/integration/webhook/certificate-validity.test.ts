// Files-mode TLS refuses certificates outside their validity (docs/adr/0103-serving-certificate-validity.md): an
// expired or not-yet-valid pair is never installed, a good pair keeps being served, and a served pair that expires
// turns readiness false with an error log and a metric. The webhook runs in-process on real files and sockets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Registry } from 'prom-client';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { parseWebhookFlags } from '../../../src/config/webhook.ts';
import { startWebhook, type RunningWebhook } from '../../../src/webhook/index.ts';
import { generateCa, issueServing } from '../../../src/webhook/certificates.ts';
import { adminClient, eventually } from '../../harness/context.ts';
import { logSink, type LogSink } from './helpers.ts';

const HOUR = 3600_000;
let admin: KubeClient;
let ca: { certPem: string; keyPem: string };

beforeAll(async () => {
  admin = await adminClient();
  ca = await generateCa('files', new Date(Date.now() - 48 * HOUR));
});
afterAll(() => admin?.close());

/** A TLS directory written the way kubelet projects Secrets: versioned directories behind a `..data` symlink. */
function tlsDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-tlsvalid-'));
  let n = 0;
  return {
    dir,
    /** Installs a pair issued at `issuedAt` (minus the 5-minute backdate) for `validityMs`; returns its serial. */
    async install(issuedAt: number, validityMs: number): Promise<string> {
      const pair = await issueServing(
        ca,
        { namespace: 'files', serviceName: 'wh', extraSans: ['127.0.0.1', 'localhost'], validityMs },
        new Date(issuedAt),
      );
      const version = `..v${n++}`;
      fs.mkdirSync(path.join(dir, version));
      fs.writeFileSync(path.join(dir, version, 'tls.crt'), pair.certPem);
      fs.writeFileSync(path.join(dir, version, 'tls.key'), pair.keyPem);
      fs.symlinkSync(version, path.join(dir, '..tmp'));
      fs.renameSync(path.join(dir, '..tmp'), path.join(dir, '..data'));
      for (const f of ['tls.crt', 'tls.key'])
        if (!fs.existsSync(path.join(dir, f))) fs.symlinkSync(`..data/${f}`, path.join(dir, f));
      return new X509Certificate(pair.certPem).serialNumber;
    },
  };
}

function start(dir: string, logs: LogSink, metrics: Registry): Promise<RunningWebhook> {
  const config = parseWebhookFlags(
    [
      '--port=0',
      '--metrics-port=0',
      `--tls-cert=${dir}/tls.crt`,
      `--tls-key=${dir}/tls.key`,
      '--config-poll-interval=200ms',
      '--shutdown-delay=0s',
    ],
    { env: {}, readNamespaceFile: () => undefined },
  );
  return startWebhook(config, { kube: admin, log: logs.logger, metrics, clock: systemClock });
}

/** Serial number of the certificate served on 127.0.0.1:port (expired or not: this only looks). */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.end();
    });
    s.on('error', reject);
  });
}

async function tlsReloads(metrics: Registry, result: string): Promise<number> {
  const m = (await metrics.getSingleMetric('lanyard_webhook_config_reloads_total')?.get()) as
    { values: Array<{ labels: Json; value: number }> } | undefined;
  return (m?.values ?? [])
    .filter((v) => v.labels.source === 'tls' && v.labels.result === result)
    .reduce((a, v) => a + v.value, 0);
}

const readyz = async (hook: RunningWebhook) => {
  const r = await fetch(`http://127.0.0.1:${hook.metricsPort}/readyz`);
  return { status: r.status, body: (await r.json()) as Json };
};

describe('files-mode TLS and certificate validity', () => {
  it('keeps serving the current pair when an expired or not-yet-valid one replaces it on disk', async () => {
    const files = tlsDir();
    const logs = logSink();
    const metrics = new Registry();
    const good = await files.install(Date.now(), HOUR);
    const hook = await start(files.dir, logs, metrics);
    try {
      await eventually(async () => expect((await readyz(hook)).status).toBe(200), 30_000, 100);
      expect(await servedSerial(hook.port)).toBe(good);

      await files.install(Date.now() - 3 * HOUR, HOUR);
      await eventually(async () => expect(await tlsReloads(metrics, 'expired')).toBe(1), 5000, 50);
      expect(await servedSerial(hook.port)).toBe(good);
      expect(await readyz(hook)).toMatchObject({ status: 200, body: { checks: { certificate: true } } });
      expect(
        logs.lines.find((l) => /refusing the certificate .* certificate expired at/.test(l.reason ?? '')),
      ).toMatchObject({
        msg: 'TLS reload refused; keeping the current pair',
      });

      // Issued an hour from now: its notBefore (minus the 5-minute backdate) is still ahead.
      await files.install(Date.now() + HOUR, HOUR);
      await eventually(async () => expect(await tlsReloads(metrics, 'not_yet_valid')).toBe(1), 5000, 50);
      expect(await servedSerial(hook.port)).toBe(good);
      expect((await readyz(hook)).status).toBe(200);
      expect(await tlsReloads(metrics, 'applied')).toBe(1);
    } finally {
      await hook.stop();
    }
  }, 60_000);

  it('turns readiness false, loudly, when the served certificate expires, and ready again with a valid one', async () => {
    const files = tlsDir();
    const logs = logSink();
    const metrics = new Registry();
    // Valid for ten more seconds: long enough for the ServiceAccount cache to sync first.
    await files.install(Date.now() - 5 * 60_000 + 10_000, 5 * 60_000);
    const hook = await start(files.dir, logs, metrics);
    try {
      await eventually(async () => expect((await readyz(hook)).status).toBe(200), 30_000, 100);
      await eventually(async () => expect(hook.ready()).toBe(false), 20_000, 100);
      expect(await readyz(hook)).toEqual({
        status: 503,
        body: { ready: false, checks: { serviceAccounts: true, certificate: false, notShuttingDown: true } },
      });
      await eventually(async () => expect(await tlsReloads(metrics, 'expired')).toBe(1), 5000, 50);
      const error = logs.lines.find(
        (l) =>
          l.msg === 'no valid serving certificate: the webhook is not ready until a valid pair is installed',
      );
      expect(error).toMatchObject({ level: 'error' });
      expect(error!.reason).toMatch(
        /^the served certificate from .*tls\.crt is no longer valid: certificate expired at /,
      );

      const fresh = await files.install(Date.now(), HOUR);
      await eventually(async () => expect((await readyz(hook)).status).toBe(200), 5000, 50);
      expect(await servedSerial(hook.port)).toBe(fresh);
    } finally {
      await hook.stop();
    }
  }, 60_000);

  it('does not open the HTTPS port on an expired pair, and starts once a valid pair arrives', async () => {
    const files = tlsDir();
    const logs = logSink();
    const metrics = new Registry();
    await files.install(Date.now() - 3 * HOUR, HOUR);
    let started: RunningWebhook | undefined;
    const starting = start(files.dir, logs, metrics).then((h) => (started = h));
    try {
      await eventually(async () => expect(await tlsReloads(metrics, 'expired')).toBe(1), 15_000, 50);
      expect(logs.lines.find((l) => /certificate expired at/.test(l.reason ?? ''))).toMatchObject({
        level: 'error',
        msg: 'no valid serving certificate: the webhook is not ready until a valid pair is installed',
      });
      // Still waiting for a usable pair: startWebhook has not resolved, so no HTTPS port exists.
      expect(started).toBeUndefined();
      const good = await files.install(Date.now(), HOUR);
      const hook = await starting;
      expect(await servedSerial(hook.port)).toBe(good);
      await eventually(async () => expect((await readyz(hook)).status).toBe(200), 30_000, 100);
    } finally {
      await (await starting).stop();
    }
  }, 60_000);
});
