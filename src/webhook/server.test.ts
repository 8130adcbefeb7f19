// The HTTPS server in-process against a fake API: the wire contract of docs/webhook.md#admission-answers, readiness, metrics, debug
// routes, the SA miss path, and the fuzz test (≥ 10,000 random and mutated reviews: never a 500, always well-formed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import tls from 'node:tls';
import { Registry } from 'prom-client';
import fc from 'fast-check';
import type { Json } from '../kube/client.ts';
import { silentLogger } from '../runtime/log.ts';
import { systemClock } from '../runtime/clock.ts';
import { parseWebhookFlags } from '../config/webhook.ts';
import { applyAddPatch } from '../../test/fixtures/identity.ts';
import { startWebhook, type RunningWebhook } from './index.ts';
import { fakeKube, serviceAccount, tlsFilesFixture, type FakeKube } from '../../test/fixtures/webhook.ts';

const ROLE = 'arn:aws:iam::111122223333:role/uploader';
let hook: RunningWebhook;
let kube: FakeKube;
let caPem: string;
let tlsFiles: { certFile: string; keyFile: string };
let registry: Registry;
let agent: https.Agent;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Json;
}

function send(opts: {
  method?: string;
  path?: string;
  body?: string | Buffer;
  contentType?: string | null;
  port?: number;
  agent?: https.Agent;
}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.contentType !== null) headers['content-type'] = opts.contentType ?? 'application/json';
    const req = https.request(
      {
        host: '127.0.0.1',
        port: opts.port ?? hook.port,
        path: opts.path ?? '/mutate?timeout=10s',
        method: opts.method ?? 'POST',
        ca: caPem,
        agent: opts.agent ?? agent,
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: Json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode!, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function metricsText(): Promise<string> {
  return await (await fetch(`http://127.0.0.1:${hook.metricsPort}/metrics`)).text();
}

function review(object: Json, over: Json = {}): Json {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'uid-1',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: 'team-a',
      object,
      ...over,
    },
  };
}
const podOf = (sa: string, spec: Json = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-7d9f', namespace: 'team-a' },
  spec: { serviceAccountName: sa, containers: [{ name: 'app' }], ...spec },
});
const decodePatch = (r: Reply): Json[] | undefined =>
  r.json.response.patch ? JSON.parse(Buffer.from(r.json.response.patch, 'base64').toString()) : undefined;

beforeAll(async () => {
  const tls = await tlsFilesFixture();
  caPem = tls.caPem;
  tlsFiles = tls;
  kube = fakeKube([
    serviceAccount('team-a', 'uploader', { 'eks.amazonaws.com/role-arn': ROLE }),
    serviceAccount('team-a', 'default'),
  ]);
  registry = new Registry();
  agent = new https.Agent({ keepAlive: true, maxSockets: 16 });
  const config = parseWebhookFlags(
    [
      '--port=0',
      '--metrics-port=0',
      `--tls-cert=${tls.certFile}`,
      `--tls-key=${tls.keyFile}`,
      '--enable-debugging-handlers',
      '--max-request-bytes=262144',
      '--service-account-lookup-grace-period=300ms',
      '--shutdown-delay=0s',
    ],
    { env: {}, readNamespaceFile: () => undefined },
  );
  hook = await startWebhook(config, {
    kube,
    log: silentLogger(),
    metrics: registry,
    clock: systemClock,
    random: () => 0.5,
  });
  for (let i = 0; i < 100 && !hook.ready(); i++) await new Promise((r) => setTimeout(r, 50));
});

afterAll(async () => {
  await hook?.stop();
  agent?.destroy();
});

describe('AdmissionReview contract (docs/webhook.md#admission-answers)', () => {
  it("mutates an annotated ServiceAccount's Pod and echoes uid, apiVersion and kind (v1 and v1beta1)", async () => {
    for (const apiVersion of ['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']) {
      const r = await send({ body: JSON.stringify({ ...review(podOf('uploader')), apiVersion }) });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.json).toMatchObject({
        apiVersion,
        kind: 'AdmissionReview',
        response: { uid: 'uid-1', allowed: true, patchType: 'JSONPatch' },
      });
      const ops = decodePatch(r)!;
      const env = ops.flatMap((o) => (Array.isArray(o.value) ? o.value : [o.value]));
      expect(env).toContainEqual({ name: 'AWS_ROLE_ARN', value: ROLE });
    }
  });

  it('answers 64 reviews sent at once on 64 connections, each with its own uid, counting each once written (docs/adr/0122-answers-written-per-turn.md)', async () => {
    const count = async () =>
      Number(
        /^http_request_count\{verb="POST",path="\/mutate",code="200"\} (\d+)$/m.exec(
          await metricsText(),
        )?.[1] ?? 0,
      );
    const before = await count();
    const burst = new https.Agent({ keepAlive: true, maxSockets: 64 });
    try {
      const uids = Array.from({ length: 64 }, (_, i) => `burst-${i}`);
      const replies = await Promise.all(
        uids.map((uid) => send({ body: JSON.stringify(review(podOf('uploader'), { uid })), agent: burst })),
      );
      expect(replies.map((r) => [r.status, r.json.response.uid, r.json.response.patchType])).toEqual(
        uids.map((uid) => [200, uid, 'JSONPatch']),
      );
      expect(await count()).toBe(before + 64);
    } finally {
      burst.destroy();
    }
  });

  it('answers a Pod with no identity with allowed:true and no patch', async () => {
    const r = await send({ body: JSON.stringify(review(podOf('default'))) });
    expect(r.json.response).toEqual({ uid: 'uid-1', allowed: true });
  });

  it.each<[string, Parameters<typeof send>[0], number, string]>([
    ['GET', { method: 'GET', body: undefined }, 405, 'MethodNotAllowed'],
    ['text/plain', { contentType: 'text/plain', body: '{}' }, 415, 'UnsupportedMediaType'],
    ['no content type', { contentType: null, body: '{}' }, 415, 'UnsupportedMediaType'],
    [
      'latin-1 charset',
      { contentType: 'application/json; charset=iso-8859-1', body: '{}' },
      415,
      'UnsupportedMediaType',
    ],
    ['empty body', { body: '' }, 400, 'BadRequest'],
    ['invalid JSON', { body: '{"kind":' }, 400, 'BadRequest'],
    ['wrong kind', { body: JSON.stringify({ ...review(podOf('x')), kind: 'Pod' }) }, 400, 'BadRequest'],
    [
      'wrong apiVersion',
      { body: JSON.stringify({ ...review(podOf('x')), apiVersion: 'admission.k8s.io/v2' }) },
      400,
      'BadRequest',
    ],
    [
      'no request',
      { body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }) },
      400,
      'BadRequest',
    ],
    ['empty uid', { body: JSON.stringify(review(podOf('x'), { uid: '' })) }, 400, 'BadRequest'],
    ['too large', { body: 'x'.repeat(300_000) }, 413, 'RequestEntityTooLarge'],
  ])('%s gives its status and a JSON Status', async (_n, opts, status, reason) => {
    const r = await send(opts);
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.json).toMatchObject({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      code: status,
      reason,
    });
    if (status === 405) expect(r.headers.allow).toBe('POST');
    if (status === 413) expect(r.json.message).toContain('262144');
  });

  it('answers a Pod carrying a 100 KB annotation and a 100 KB env value like any other', async () => {
    const big = 'x'.repeat(100 * 1024);
    const pod: Json = podOf('uploader', {
      containers: [{ name: 'app', env: [{ name: 'BLOB', value: big }] }],
    });
    pod.metadata.annotations = { 'example.com/blob': big };
    const r = await send({ body: JSON.stringify(review(pod)) });
    expect(r.status).toBe(200);
    expect(r.json.response.patchType).toBe('JSONPatch');
    // The patch only adds; nothing of the large values is echoed back.
    expect(r.text.length).toBeLessThan(4096);
  });

  it('accepts application/json with case and a UTF-8 charset', async () => {
    const r = await send({
      contentType: 'Application/JSON; charset=UTF-8',
      body: JSON.stringify(review(podOf('default'))),
    });
    expect(r.status).toBe(200);
  });

  it.each<[string, Json, boolean, number | undefined]>([
    ['UPDATE', { operation: 'UPDATE' }, true, undefined],
    [
      'a Deployment',
      { resource: { group: 'apps', version: 'v1', resource: 'deployments' } },
      true,
      undefined,
    ],
    ['a subresource', { subResource: 'ephemeralcontainers' }, true, undefined],
    [
      'an unreadable Pod',
      { object: podOf('uploader', { containers: [{ name: 'a' }, { name: 'b', env: 'x' }] }) },
      false,
      400,
    ],
  ])('%s', async (_n, over, allowed, code) => {
    const r = await send({ body: JSON.stringify(review(podOf('uploader'), over)) });
    expect(r.status).toBe(200);
    expect(r.json.response.uid).toBe('uid-1');
    expect(r.json.response.allowed).toBe(allowed);
    expect(r.json.response.patch).toBeUndefined();
    if (code) {
      expect(r.json.response.status.code).toBe(code);
      expect(r.json.response.status.message).toBe(
        'lanyard: cannot read Pod "team-a/web-7d9f": spec.containers[1].env must be an array',
      );
    }
  });

  it('keeps unknown fields byte-for-byte: only adds are emitted', async () => {
    const object = podOf('uploader', {
      containers: [
        { name: 'app', futureField: { a: [1, 2] }, livenessProbe: { quantumProbe: { qubits: 3 } } },
      ],
    });
    const r = await send({ body: JSON.stringify(review(object)) });
    const patched = applyAddPatch(object, decodePatch(r)!);
    expect(JSON.stringify(patched.spec.containers[0].futureField)).toBe('{"a":[1,2]}');
    expect(JSON.stringify(patched.spec.containers[0].livenessProbe)).toBe('{"quantumProbe":{"qubits":3}}');
    // Re-invocation: the patched Pod gives no patch.
    const again = await send({ body: JSON.stringify(review(patched)) });
    expect(again.json.response).toEqual({ uid: 'uid-1', allowed: true });
  });
});

describe('ServiceAccount misses (docs/webhook.md#serviceaccounts-that-are-not-cached-yet)', () => {
  it('fetches an SA missing from the cache, shares concurrent GETs, and keeps it provisionally', async () => {
    kube.serviceAccounts.set(
      'team-a/late',
      serviceAccount('team-a', 'late', { 'eks.amazonaws.com/role-arn': ROLE }),
    );
    const before = kube.gets;
    kube.getDelayMs = 100;
    const rs = await Promise.all([1, 2, 3].map(() => send({ body: JSON.stringify(review(podOf('late'))) })));
    kube.getDelayMs = 0;
    for (const r of rs) expect(r.json.response.patchType).toBe('JSONPatch');
    expect(kube.gets - before).toBe(1);
    await send({ body: JSON.stringify(review(podOf('late'))) });
    expect(kube.gets - before).toBe(1);
    const text = await metricsText();
    expect(text).toMatch(/lanyard_webhook_sa_lookups_total\{result="fetched"\} 3\n/);
    expect(text).toMatch(/lanyard_webhook_sa_fetch_duration_seconds_count 1\n/);
  });

  it('admits unmutated after the grace period when the GET hangs, counting the miss', async () => {
    kube.hangGets = true;
    try {
      kube.serviceAccounts.set(
        'team-a/hung',
        serviceAccount('team-a', 'hung', { 'eks.amazonaws.com/role-arn': ROLE }),
      );
      const started = Date.now();
      const r = await send({ body: JSON.stringify(review(podOf('hung'))) });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(r.json.response).toEqual({ uid: 'uid-1', allowed: true });
      const text = await metricsText();
      expect(text).toMatch(/lanyard_webhook_sa_lookups_total\{result="timeout"\} 1/);
      expect(text).toMatch(/pod_identity_webhook_missing_sa_count \d+/);
    } finally {
      kube.hangGets = false;
    }
  });

  it('a 404 counts as not_found and leaves nothing behind', async () => {
    const r = await send({ body: JSON.stringify(review(podOf('ghost'))) });
    expect(r.json.response).toEqual({ uid: 'uid-1', allowed: true });
    expect(await metricsText()).toMatch(/lanyard_webhook_sa_lookups_total\{result="not_found"\} 1/);
  });
});

describe('start-up (docs/adr/0111-webhook-memory-and-start-up.md)', () => {
  it('answers a mutating review from a live GET while the first ServiceAccount list is still running, and is not ready', async () => {
    const slow = fakeKube([serviceAccount('team-a', 'uploader', { 'eks.amazonaws.com/role-arn': ROLE })]);
    let releaseList!: () => void;
    const listHeld = new Promise<void>((r) => (releaseList = r));
    const request = slow.request.bind(slow);
    slow.request = (async (req: Parameters<typeof slow.request>[0]) => {
      if (req.path === '/api/v1/serviceaccounts') await listHeld;
      return await request(req);
    }) as typeof slow.request;
    const config = parseWebhookFlags(
      [
        '--port=0',
        '--metrics-port=0',
        `--tls-cert=${tlsFiles.certFile}`,
        `--tls-key=${tlsFiles.keyFile}`,
        '--shutdown-delay=0s',
      ],
      { env: {}, readNamespaceFile: () => undefined },
    );
    const early = await startWebhook(config, {
      kube: slow,
      log: silentLogger(),
      metrics: new Registry(),
      clock: systemClock,
      random: () => 0.5,
    });
    try {
      const r = await send({ port: early.port, body: JSON.stringify(review(podOf('uploader'))) });
      expect(decodePatch(r)).toEqual(
        expect.arrayContaining([expect.objectContaining({ op: 'add', path: '/spec/containers/0/env' })]),
      );
      expect(slow.gets).toBe(1);
      expect(early.ready()).toBe(false);
      expect((await fetch(`http://127.0.0.1:${early.metricsPort}/readyz`)).status).toBe(503);
      releaseList();
      for (let i = 0; i < 100 && !early.ready(); i++) await new Promise((res) => setTimeout(res, 20));
      expect(early.ready()).toBe(true);
    } finally {
      releaseList();
      await early.stop();
    }
  });
});

describe('health, metrics and debug routes (docs/webhook.md#health-readiness-and-shutdown)', () => {
  it('serves /healthz and /readyz on both ports', async () => {
    expect((await send({ method: 'GET', path: '/healthz' })).status).toBe(200);
    const ready = await send({ method: 'GET', path: '/readyz' });
    expect(ready.json).toEqual({
      ready: true,
      checks: { serviceAccounts: true, certificate: true, notShuttingDown: true },
    });
    expect((await fetch(`http://127.0.0.1:${hook.metricsPort}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${hook.metricsPort}/readyz`)).status).toBe(200);
  });

  it('exports the reference counter names and sub-millisecond buckets', async () => {
    const text = await metricsText();
    for (const name of [
      'http_request_count',
      'pod_identity_webhook_pod_count',
      'pod_identity_webhook_used',
      'lanyard_webhook_admissions_total',
      'lanyard_webhook_ready',
    ])
      expect(text).toContain(name);
    expect(text).toContain(
      'lanyard_webhook_request_duration_seconds_bucket{le="0.0001",path="/mutate",code="200"}',
    );
    expect(text).toMatch(/pod_identity_webhook_pod_count\{method="sts_web_identity"\} \d+/);
  });

  it('dumps and re-lists the caches; deny and 500 exercise failure handling', async () => {
    const dump = (await (
      await fetch(`http://127.0.0.1:${hook.metricsPort}/debug/alpha/cache`)
    ).json()) as Json;
    expect(dump.serviceAccounts['team-a/uploader']).toMatchObject({ roleARN: ROLE });
    expect(dump).toMatchObject({ configMap: null, identitiesFile: null, associations: null });
    const clear = await fetch(`http://127.0.0.1:${hook.metricsPort}/debug/alpha/cache/clear`, {
      method: 'POST',
    });
    expect(clear.status).toBe(200);
    const after = (await (
      await fetch(`http://127.0.0.1:${hook.metricsPort}/debug/alpha/cache`)
    ).json()) as Json;
    expect(after.serviceAccounts['team-a/uploader']).toMatchObject({ roleARN: ROLE });
    expect((await send({ path: '/debug/alpha/500', body: '' })).status).toBe(500);
    const deny = await send({ path: '/debug/alpha/deny', body: '' });
    expect(deny.json.response.uid).toBeUndefined();
  });
});

describe('fuzz (≥ 10,000 random and mutated reviews)', () => {
  const base = [
    review(podOf('uploader')),
    review(
      podOf('default', {
        initContainers: [{ name: 'i', env: [{ name: 'AWS_REGION', value: 'x' }] }],
        volumes: [],
      }),
    ),
    review(podOf('late', { nodeSelector: { 'kubernetes.io/os': 'windows' } })),
  ];
  const paths = (v: Json, prefix: string[] = []): string[][] => {
    if (v === null || typeof v !== 'object') return [prefix];
    return [prefix, ...Object.keys(v).flatMap((k) => paths(v[k], [...prefix, k]))];
  };
  const mutate = (doc: Json, pick: number, value: Json, mode: number): string => {
    const copy = structuredClone(doc);
    const all = paths(copy).filter((p) => p.length > 0);
    const p = all[pick % all.length]!;
    let parent = copy;
    for (const s of p.slice(0, -1)) parent = parent[s];
    const last = p[p.length - 1]!;
    if (mode === 0) delete parent[last];
    else parent[last] = value;
    const text = JSON.stringify(copy);
    return mode === 2 ? text.slice(0, pick % text.length) : text;
  };

  it('never answers 500 and always answers well-formed', async () => {
    const bodies = fc.sample(
      fc.oneof(
        {
          weight: 6,
          arbitrary: fc
            .tuple(
              fc.constantFrom(...base),
              fc.nat(),
              fc.jsonValue({ maxDepth: 3 }),
              fc.integer({ min: 0, max: 2 }),
            )
            .map(([d, n, v, m]) => mutate(d, n, v, m)),
        },
        { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(review(v))) },
        { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
        {
          weight: 1,
          arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1')),
        },
      ),
      { numRuns: 10_000, seed: 20261123 },
    );
    expect(bodies.length).toBeGreaterThanOrEqual(10_000);
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const r = await send({ body });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        expect([200, 400, 413], body.slice(0, 200)).toContain(r.status);
        expect(r.headers['content-type']).toBe('application/json');
        expect(r.json, r.text).toBeTypeOf('object');
        if (r.status === 200) {
          const sent = JSON.parse(body);
          expect(r.json.apiVersion).toBe(sent.apiVersion);
          expect(r.json.kind).toBe('AdmissionReview');
          expect(r.json.response.uid).toBe(sent.request.uid);
          expect(typeof r.json.response.allowed).toBe('boolean');
          if (r.json.response.allowed === false) expect(r.json.response.status.code).not.toBe(500);
          const ops = r.json.response.patch ? decodePatch(r)! : undefined;
          if (ops) {
            expect(r.json.response.patchType).toBe('JSONPatch');
            expect(() => applyAddPatch(sent.request.object, ops)).not.toThrow();
          }
        } else expect(r.json).toMatchObject({ kind: 'Status', code: r.status });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    expect(statuses.get(200)).toBeGreaterThan(1000);
    // Still serving after all of it.
    const ok = await send({ body: JSON.stringify(review(podOf('uploader'))) });
    expect(ok.json.response.allowed).toBe(true);
  }, 120_000);
});

describe('connection limits and timeouts (docs/webhook.md#connections)', () => {
  const READ_TIMEOUT_MS = 500;
  // Node checks the deadlines every quarter of the timeout: a cut comes within 1.25× it, plus scheduling slack on a
  // loaded machine; far below the 2-minute idle timeout, the only other thing that closes a connection.
  const CUT_WITHIN_MS = READ_TIMEOUT_MS * 1.25 + 4000;
  let small: RunningWebhook;
  let smallRegistry: Registry;

  beforeAll(async () => {
    const pair = await tlsFilesFixture();
    smallRegistry = new Registry();
    const config = parseWebhookFlags(
      [
        '--port=0',
        '--metrics-port=0',
        `--tls-cert=${pair.certFile}`,
        `--tls-key=${pair.keyFile}`,
        '--max-connections=3',
        `--read-timeout=${READ_TIMEOUT_MS}ms`,
        '--shutdown-delay=0s',
      ],
      { env: {}, readNamespaceFile: () => undefined },
    );
    small = await startWebhook(config, {
      kube: fakeKube([serviceAccount('team-a', 'uploader', { 'eks.amazonaws.com/role-arn': ROLE })]),
      log: silentLogger(),
      metrics: smallRegistry,
      clock: systemClock,
    });
    smallCa = pair.caPem;
  });
  let smallCa: string;
  afterAll(async () => {
    await small?.stop();
  });

  const openOnce = () =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: small.port, ca: smallCa });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
      s.once('close', () => reject(new Error('closed before the handshake completed')));
    });
  /** A connection; the server frees a slot only once it sees a close, so retry briefly while the cap is full. */
  const open = async () => {
    for (let i = 0; ; i++) {
      try {
        return await openOnce();
      } catch (e) {
        if (i >= 40) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  /** Milliseconds until the server closes the socket (the client never closes it). */
  const closedAfter = (s: tls.TLSSocket, since: number) =>
    new Promise<number>((resolve) => {
      s.on('error', () => undefined);
      s.once('close', () => resolve(Date.now() - since));
    });
  const request = (body: string) =>
    `POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const reply = (s: tls.TLSSocket) =>
    new Promise<string>((resolve) => {
      let text = '';
      const onData = (c: Buffer) => {
        text += c;
        const head = text.indexOf('\r\n\r\n');
        const len = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? NaN);
        if (head >= 0 && text.length - head - 4 >= len) {
          s.off('data', onData);
          resolve(text);
        }
      };
      s.on('data', onData);
    });

  it('cuts off a client that sends its headers byte by byte', async () => {
    const s = await open();
    const started = Date.now();
    const closed = closedAfter(s, started);
    const text = request(JSON.stringify(review(podOf('uploader'))));
    let i = 0;
    const drip = setInterval(() => {
      if (!s.destroyed && i < text.length) s.write(text[i++]!);
    }, 20);
    const ms = await closed;
    clearInterval(drip);
    expect(ms).toBeGreaterThanOrEqual(READ_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
    // At one byte per 20 ms the request needed far longer than the timeout: it never completed.
    expect(i).toBeLessThan(text.indexOf('\r\n\r\n'));
  });

  it('cuts off a client that never finishes its body', async () => {
    const s = await open();
    const started = Date.now();
    const closed = closedAfter(s, started);
    let received = '';
    s.on('data', (c: Buffer) => (received += c));
    s.write(
      'POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"kind":',
    );
    const ms = await closed;
    expect(ms).toBeGreaterThanOrEqual(READ_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
    // Node may answer 408 Request Timeout as it closes; never an admission answer.
    expect(received).not.toContain('AdmissionReview');
  });

  it('cuts off a client that completes the handshake and sends nothing', async () => {
    const s = await open();
    const ms = await closedAfter(s, Date.now());
    expect(ms).toBeGreaterThanOrEqual(READ_TIMEOUT_MS - 50);
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
  });

  it('keeps an idle keep-alive connection open past the read timeout, for the API server to reuse', async () => {
    const s = await open();
    const body = JSON.stringify(review(podOf('uploader')));
    s.write(request(body));
    expect(await reply(s)).toMatch(/^HTTP\/1.1 200 OK/);
    // Idle for twice the read timeout: only --idle-timeout (2 min) may close it.
    await new Promise((r) => setTimeout(r, READ_TIMEOUT_MS * 2));
    expect(s.destroyed).toBe(false);
    s.write(request(body));
    const second = await reply(s);
    expect(second).toMatch(/^HTTP\/1.1 200 OK/);
    expect(second).toMatch(/"patchType":"JSONPatch"/);
    s.destroy();
  });

  it('closes connections beyond --max-connections at once, counts them, and serves again once one closes', async () => {
    const body = JSON.stringify(review(podOf('uploader')));
    const held = [await open(), await open(), await open()];
    for (const s of held) {
      s.write(request(body));
      await reply(s);
    }
    await expect(openOnce()).rejects.toThrow();
    const metrics = await (await fetch(`http://127.0.0.1:${small.metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/lanyard_webhook_connections_dropped_total [1-9]/);
    held[0]!.destroy();
    const again = await open();
    again.write(request(body));
    expect(await reply(again)).toMatch(/^HTTP\/1.1 200 OK/);
    for (const s of [again, ...held]) s.destroy();
  });

  it('answers in one write with Content-Length and no chunked encoding', async () => {
    const s = await open();
    let writes = 0;
    s.on('data', () => writes++);
    s.write(request(JSON.stringify(review(podOf('uploader')))));
    const text = await reply(s);
    expect(text).toMatch(/\r\ncontent-length: \d+\r\n/i);
    expect(text).not.toMatch(/transfer-encoding/i);
    expect(writes).toBe(1);
    s.destroy();
  });
});
