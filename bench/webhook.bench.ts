// webhook.md §14: /mutate throughput against a no-op HTTPS server (same node:https stack and TLS settings), latency
// at a fixed rate, SA cache heap with 50,000 ServiceAccounts loaded through the real list and watch, admission latency
// with 100 vs 50,000 SAs, and the pure mutation. Servers run in child processes so the load generator does not share
// their event loop. Writes bench/results/webhook.{json,md}; never fails a test run.
// Run: npm run bench:webhook   (BENCH_SECONDS=N shortens or lengthens each timed phase; default 15)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import autocannon from 'autocannon';
import { createKubeClient } from '../src/kube/client.ts';
import { silentLogger } from '../src/runtime/log.ts';
import { systemClock } from '../src/runtime/clock.ts';
import { parseWebhookFlags } from '../src/config/webhook.ts';
import { startWebhook } from '../src/webhook/index.ts';
import { ServiceAccountCache } from '../src/webhook/service-accounts.ts';
import { createWebhookMetrics } from '../src/webhook/metrics.ts';
import { tlsFilesFixture } from '../src/webhook/testing.ts';
import { resolveIdentity } from '../src/identity/resolve.ts';
import { buildPatch } from '../src/identity/patch.ts';
import { TEST_FLAGS } from '../src/identity/testing.ts';
import type { Json } from '../src/kube/client.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const ROLE = 'arn:aws:iam::111122223333:role/bench';
const CORPUS_NS = 'bench';

// ---------------------------------------------------------------- fake API server (objects generated on demand)

/** ServiceAccount i as PartialObjectMetadata: 10 % annotated, all with 2 KiB of unrelated annotations and managedFields. */
function sa(i: number): Json {
  const annotations: Record<string, string> = { 'example.com/blob': 'x'.repeat(2048) };
  if (i % 10 === 0) annotations['eks.amazonaws.com/role-arn'] = `${ROLE}-${i}`;
  return {
    apiVersion: 'meta.k8s.io/v1',
    kind: 'PartialObjectMetadata',
    metadata: {
      name: `sa-${i}`,
      namespace: i < 100 ? CORPUS_NS : `ns-${i % 500}`,
      uid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
      resourceVersion: String(1000 + i),
      creationTimestamp: '2026-01-01T00:00:00Z',
      annotations,
      managedFields: [{ manager: 'kubectl', operation: 'Update', apiVersion: 'v1', time: '2026-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:annotations': { '.': {}, 'f:example.com/blob': {} } } } }],
    },
  };
}

function fakeApi(count: number): Promise<{ url: string; close: () => void }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    if (url.pathname === '/api/v1/serviceaccounts' && url.searchParams.get('watch')) {
      res.flushHeaders(); // an open watch with no events
      return;
    }
    if (url.pathname === '/api/v1/serviceaccounts') {
      const limit = Number(url.searchParams.get('limit') ?? 500);
      const start = Number(url.searchParams.get('continue') || 0);
      const end = Math.min(count, start + limit);
      const items = [];
      for (let i = start; i < end; i++) items.push(sa(i));
      res.end(JSON.stringify({ kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: '99999', continue: end < count ? String(end) : undefined }, items }));
      return;
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'not found' }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.closeAllConnections() })));
}

// ---------------------------------------------------------------- child modes

async function serveWebhook(sas: number, idsFile: string): Promise<void> {
  const api = await fakeApi(sas);
  const kube = await createKubeClient({ server: api.url, token: 'bench', insecureSkipTlsVerify: true });
  const tls = await tlsFilesFixture();
  const config = parseWebhookFlags(
    ['--port=0', '--metrics-port=0', `--tls-cert=${tls.certFile}`, `--tls-key=${tls.keyFile}`, `--watch-container-credentials-config=${idsFile}`, '--aws-default-region=eu-west-1', '--shutdown-delay=0s', '--log-level=error'],
    { env: {}, readNamespaceFile: () => undefined },
  );
  const t0 = performance.now();
  const hook = await startWebhook(config, { kube, log: silentLogger(), metrics: new Registry(), clock: systemClock });
  while (!hook.ready()) await new Promise((r) => setTimeout(r, 10));
  process.stdout.write(JSON.stringify({ port: hook.port, readyMs: performance.now() - t0 }) + '\n');
}

/** The upper bound: same node:https stack and TLS settings, reads the whole body, returns a fixed review. */
async function serveNoop(): Promise<void> {
  const tls = await tlsFilesFixture();
  const fixed = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'u', allowed: true } });
  const server = https.createServer(
    { cert: fs.readFileSync(tls.certFile), key: fs.readFileSync(tls.keyFile), minVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'], keepAliveTimeout: 120_000 },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        Buffer.concat(chunks);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(fixed)) });
        res.end(fixed);
      });
    },
  );
  server.listen(0, () => process.stdout.write(JSON.stringify({ port: (server.address() as { port: number }).port }) + '\n'));
}

async function measureHeap(sas: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const api = await fakeApi(sas);
  const kube = await createKubeClient({ server: api.url, token: 'bench', insecureSkipTlsVerify: true });
  const metrics = createWebhookMetrics(new Registry());
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 50));
    }
    return process.memoryUsage();
  };
  const base = await settle();
  const t0 = performance.now();
  const cache = new ServiceAccountCache({ kube, log: silentLogger(), metrics, prefix: 'eks.amazonaws.com', gracePeriodMs: 2000, resyncPeriodMs: 60_000, now: () => Date.now() }).start();
  await cache.informer.waitForSync();
  const readyMs = performance.now() - t0;
  const after = await settle();
  process.stdout.write(
    JSON.stringify({ entries: cache.size, readyMs, heapMB: (after.heapUsed - base.heapUsed) / 2 ** 20, rssMB: after.rss / 2 ** 20, baseRssMB: base.rss / 2 ** 20 }) + '\n',
  );
  cache.stop();
  api.close();
  kube.close();
  process.exit(0);
}

// ---------------------------------------------------------------- load generation

function corpus(): { bodies: string[]; idsFile: string } {
  // 40 % web identity (annotated SAs sa-0, sa-10, …), 20 % container credentials (identities file), 40 % none.
  const idsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-bench-')), 'identities.json');
  const cc: Array<{ namespace: string; serviceAccount: string }> = [];
  const bodies: string[] = [];
  for (let i = 0; i < 200; i++) {
    const kind = i % 5 < 2 ? 'wi' : i % 5 === 2 ? 'cc' : 'none';
    // Every corpus SA is among the first 100, so the 100-SA and 50,000-SA runs resolve the same keys from the cache.
    const saName = `sa-${(i * 10) % 100 + (kind === 'wi' ? 0 : kind === 'cc' ? 1 : 3)}`;
    if (kind === 'cc') cc.push({ namespace: CORPUS_NS, serviceAccount: saName });
    const containers = Array.from({ length: 1 + (i % 10) }, (_, c) => ({ name: `c${c}`, image: 'registry.invalid/app:1', env: [{ name: 'LOG', value: String(c) }], resources: { requests: { cpu: '100m' } } }));
    bodies.push(
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: { uid: `uid-${i}`, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', namespace: CORPUS_NS, object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${i}`, namespace: CORPUS_NS, labels: { app: 'bench' } }, spec: { serviceAccountName: saName, containers } } },
      }),
    );
  }
  fs.writeFileSync(idsFile, JSON.stringify({ identities: cc }));
  return { bodies, idsFile };
}

function child(args: string[], nodeArgs: string[] = []): Promise<{ proc: ChildProcess; info: Json }> {
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', import.meta.filename, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (c) => {
      buf += String(c);
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve({ proc, info: JSON.parse(buf.slice(0, nl)) });
    });
    proc.on('exit', (code) => reject(new Error(`child ${args.join(' ')} exited ${code}`)));
  });
}

async function throughput(port: number, bodies: string[], seconds: number): Promise<{ rps: number; errors: number; non2xx: number }> {
  const r = await autocannon({
    url: `https://127.0.0.1:${port}/mutate`,
    connections: 64,
    duration: seconds,
    requests: bodies.map((body) => ({ method: 'POST', path: '/mutate', headers: { 'content-type': 'application/json' }, body })),
  });
  return { rps: r.requests.average, errors: r.errors, non2xx: r.non2xx };
}

/** Open-loop load at a fixed rate with sub-millisecond timing. */
async function fixedRate(port: number, bodies: string[], rate: number, seconds: number): Promise<{ sent: number; errors: number; p50: number; p99: number; max: number }> {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 32, rejectUnauthorized: false });
  const latencies: number[] = [];
  let errors = 0;
  const total = rate * seconds;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const body = bodies[i % bodies.length]!;
    const t0 = performance.now();
    inflight.push(
      new Promise<void>((resolve) => {
        const req = https.request({ host: '127.0.0.1', port, path: '/mutate', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) errors++;
            latencies.push(performance.now() - t0);
            resolve();
          });
        });
        req.on('error', () => {
          errors++;
          resolve();
        });
        req.end(body);
      }),
    );
  }
  await Promise.all(inflight);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return { sent: total, errors, p50: q(0.5), p99: q(0.99), max: latencies[latencies.length - 1]! };
}

function pureMutation(seconds: number): { opsPerSec: number; p99us: number; loopDelayP99ms: number } {
  const pods: Json[] = [];
  for (let i = 0; i < 100; i++) {
    const n = 1 + ((i * 7) % 50);
    pods.push({
      metadata: { name: `p${i}` },
      spec: { containers: Array.from({ length: n }, (_, c) => ({ name: `c${c}`, env: Array.from({ length: (i * 13 + c) % 101 }, (_, e) => ({ name: `V${e}`, value: 'x' })) })) },
    });
  }
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const samples: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < deadline) {
    const pod = pods[n % pods.length];
    const t0 = performance.now();
    const r = resolveIdentity(
      { namespace: 'bench', serviceAccount: 'sa', podAnnotations: undefined, sa: { found: true, settings: { uid: 'u', roleARN: ROLE } }, inIdentitiesFile: n % 3 === 0, configMap: new Map() },
      { ...TEST_FLAGS, awsDefaultRegion: 'eu-west-1' },
      Math.random,
    )!;
    buildPatch(pod, r.injection, { gate: false, windows: false, annotationPrefix: 'eks.amazonaws.com' });
    samples.push(performance.now() - t0);
    n++;
  }
  h.disable();
  samples.sort((a, b) => a - b);
  return { opsPerSec: n / seconds, p99us: samples[Math.floor(samples.length * 0.99)]! * 1000, loopDelayP99ms: h.percentile(99) / 1e6 };
}

// ---------------------------------------------------------------- main

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const r2 = (n: number) => Math.round(n * 100) / 100;

if (arg('serve') === 'webhook') await serveWebhook(Number(arg('sas')), arg('ids')!);
else if (arg('serve') === 'noop') await serveNoop();
else if (arg('heap')) await measureHeap(Number(arg('heap')));
else {
  const { bodies, idsFile } = corpus();
  const results: Record<string, Json> = { seconds: SECONDS, cpus: os.cpus().length, node: process.version };

  const noop = await child(['--serve=noop']);
  const hook = await child(['--serve=webhook', '--sas=1000', `--ids=${idsFile}`]);
  await throughput(hook.info.port, bodies, 2); // warm-up
  await throughput(noop.info.port, bodies, 2);
  // Alternating rounds, so load from elsewhere on a shared machine hits both servers alike.
  const rounds = 3;
  const tNoop = { rps: 0, errors: 0, non2xx: 0 };
  const tHook = { rps: 0, errors: 0, non2xx: 0 };
  for (let i = 0; i < rounds; i++) {
    for (const [acc, port] of [[tNoop, noop.info.port], [tHook, hook.info.port]] as const) {
      const t = await throughput(port, bodies, Math.max(2, Math.round(SECONDS / rounds)));
      acc.rps += t.rps / rounds;
      acc.errors += t.errors;
      acc.non2xx += t.non2xx;
    }
  }
  results.throughput = { noopRps: r2(tNoop.rps), webhookRps: r2(tHook.rps), ratio: r2(tHook.rps / tNoop.rps), webhookErrors: tHook.errors + tHook.non2xx, goal: '>= 0.85' };
  results.latency500 = { ...(await fixedRate(hook.info.port, bodies, 500, SECONDS)), goal: 'p99 < 2 ms, no errors' };
  noop.proc.kill();
  hook.proc.kill();

  const heap = await child(['--heap=50000'], ['--expose-gc']);
  results.saCacheHeap = { ...heap.info, goal: '< 100 MB heap for the cache' };

  const small = await child(['--serve=webhook', '--sas=100', `--ids=${idsFile}`]);
  const smallLat = await fixedRate(small.info.port, bodies, 500, Math.max(5, Math.round(SECONDS / 2)));
  small.proc.kill();
  const large = await child(['--serve=webhook', '--sas=50000', `--ids=${idsFile}`]);
  const largeLat = await fixedRate(large.info.port, bodies, 500, Math.max(5, Math.round(SECONDS / 2)));
  large.proc.kill();
  results.admissionBySaCount = { sas100: smallLat, sas50000: { ...largeLat, readyMs: large.info.readyMs } };

  results.pureMutation = pureMutation(Math.max(3, Math.round(SECONDS / 3)));

  const out = path.resolve(import.meta.dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'webhook.json'), JSON.stringify({ at: new Date().toISOString(), ...results }, null, 2) + '\n');
  const t = results.throughput;
  const l = results.latency500;
  const hp = results.saCacheHeap;
  const a = results.admissionBySaCount;
  const pm = results.pureMutation;
  const md = [
    `# Webhook benchmarks (${new Date().toISOString()}, ${results.cpus} CPUs shared, ${SECONDS} s phases, load average ${os.loadavg()[0]!.toFixed(1)})`,
    '',
    '| Measure | Result | Goal |',
    '|---|---|---|',
    `| /mutate throughput, 64 connections | ${t.webhookRps} req/s vs no-op ${t.noopRps} req/s = **${Math.round(t.ratio * 100)} %**, ${t.webhookErrors} errors | ≥ 85 % |`,
    `| /mutate latency at 500 req/s | p50 ${r2(l.p50)} ms, **p99 ${r2(l.p99)} ms**, max ${r2(l.max)} ms, ${l.errors} errors of ${l.sent} | p99 < 2 ms, no errors |`,
    `| SA cache, 50,000 SAs (10 % annotated, 2 KiB + managedFields each) | **${r2(hp.heapMB)} MB heap**, RSS ${r2(hp.rssMB)} MB, ready in ${Math.round(hp.readyMs)} ms | < 100 MB |`,
    `| Admission latency, 100 SAs | p50 ${r2(a.sas100.p50)} ms, p99 ${r2(a.sas100.p99)} ms | reported |`,
    `| Admission latency, 50,000 SAs | p50 ${r2(a.sas50000.p50)} ms, p99 ${r2(a.sas50000.p99)} ms | reported |`,
    `| Pure mutation (1-50 containers, 0-100 env) | ${Math.round(pm.opsPerSec)} ops/s, p99 ${r2(pm.p99us)} µs, event-loop delay p99 ${r2(pm.loopDelayP99ms)} ms | reported |`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(out, 'webhook.md'), md);
  process.stdout.write(md);
  process.exit(0);
}
