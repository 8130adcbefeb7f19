// The raw client against a small local HTTP server that misbehaves on purpose: watch streams cut in the middle of a
// multi-byte character, and 429 answers with Retry-After. The real API server cannot be made to do either on demand.
import http from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import tls from 'node:tls';
import { tlsFilesFixture } from '../../test/fixtures/webhook.ts';
import { createKubeClient, parseRetryAfter, type WatchEvent } from './client.ts';
import { InformerFactory } from './cache.ts';

let server: http.Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function serve(handler: http.RequestListener): Promise<string> {
  server = http.createServer(handler);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe('watch stream decoding', () => {
  it('keeps a multi-byte character intact when a network chunk ends in the middle of it', async () => {
    const line = Buffer.from(
      JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'cm' }, data: { note: 'café ☕ 𝄞' } } }) +
        '\n',
    );
    const splits = [
      line.indexOf(Buffer.from('é')) + 1,
      line.indexOf(Buffer.from('☕')) + 2,
      line.indexOf(Buffer.from('𝄞')) + 3,
    ];
    const url = await serve(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      let from = 0;
      for (const at of splits) {
        res.write(line.subarray(from, at));
        from = at;
        // Separate writes with a pause so the client really receives separate chunks.
        await new Promise((r) => setTimeout(r, 20));
      }
      res.end(line.subarray(from));
    });
    const client = await createKubeClient({ server: url, token: 't', insecureSkipTlsVerify: true });
    const events: WatchEvent[] = [];
    await client.watch('/api/v1/configmaps', {}, (e) => events.push(e));
    client.close();
    expect(events.map((e) => e.object.data.note)).toEqual(['café ☕ 𝄞']);
  });
});

describe('429 retries', () => {
  it("waits for the server's Retry-After before retrying", async () => {
    const arrivals: number[] = [];
    const url = await serve((_req, res) => {
      arrivals.push(Date.now());
      if (arrivals.length === 1) {
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', reason: 'TooManyRequests', message: 'slow down' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"kind":"ConfigMap"}');
    });
    const client = await createKubeClient({ server: url, token: 't', insecureSkipTlsVerify: true });
    const body = await client.get('/api/v1/namespaces/x/configmaps/y');
    client.close();
    expect(body).toEqual({ kind: 'ConfigMap' });
    expect(arrivals).toHaveLength(2);
    // Without Retry-After the first retry comes after 200 ms; the server asked for a full second.
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(950);
  });
});

describe('parseRetryAfter', () => {
  it.each([
    ['3', 3],
    [' 0 ', 0],
    ['', undefined],
    ['soon', undefined],
    [undefined, undefined],
  ])('reads delta-seconds %j as %j', (value, seconds) => {
    expect(parseRetryAfter(value)).toBe(seconds);
  });

  it('reads an HTTP date as the seconds until it, and a past date as zero', () => {
    const now = Date.parse('2026-12-02T10:00:00Z');
    expect(parseRetryAfter('Wed, 02 Dec 2026 10:00:05 GMT', now)).toBe(5);
    expect(parseRetryAfter('Wed, 02 Dec 2026 09:00:00 GMT', now)).toBe(0);
  });
});

describe('informer retries', () => {
  it('backs off exponentially while the API server keeps failing, instead of retrying at a fixed pace', async () => {
    const arrivals: number[] = [];
    const url = await serve((_req, res) => {
      arrivals.push(Date.now());
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"kind":"Status","reason":"InternalError"}');
    });
    const client = await createKubeClient({ server: url, token: 't', insecureSkipTlsVerify: true });
    const factory = new InformerFactory({ client, retryDelayMs: 50, onError: () => {} });
    factory.view({ path: '/api/v1/configmaps' });
    await vi.waitFor(() => expect(arrivals.length).toBeGreaterThanOrEqual(5), { timeout: 10_000 });
    factory.stop();
    client.close();
    const gaps = arrivals.slice(1, 5).map((t, i) => t - arrivals[i]!);
    // 50, 100, 200, 400 ms with ±20 % jitter add up to at least 600 ms; a fixed 50 ms pace would take about 200.
    expect(gaps.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(600);
    expect(gaps[3]!).toBeGreaterThanOrEqual(320);
  });
});

describe('trusting only the cluster CA (docs/adr/0706-trust-only-the-cluster-ca.md)', () => {
  it("makes the configuration's CA the process's default trust only when asked, and never for an insecure one", async () => {
    const before = tls.getCACertificates('default');
    const { caPem } = await tlsFilesFixture();
    const caData = Buffer.from(caPem).toString('base64');
    const server = 'https://127.0.0.1:1';
    try {
      (await createKubeClient({ server, token: 't', caData })).close();
      expect(tls.getCACertificates('default')).toEqual(before);
      const insecure = { server, token: 't', caData, insecureSkipTlsVerify: true, trustOnlyClusterCa: true };
      (await createKubeClient(insecure)).close();
      expect(tls.getCACertificates('default')).toEqual(before);
      (await createKubeClient({ server, token: 't', caData, trustOnlyClusterCa: true })).close();
      expect(tls.getCACertificates('default').map((c) => c.trim())).toEqual([caPem.trim()]);
    } finally {
      tls.setDefaultCACertificates(before);
    }
  });
});
