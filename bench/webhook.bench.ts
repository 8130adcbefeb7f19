// What ships, measured: the real `lanyard webhook` process (bin/lanyard.js, default flags and log level, logs to a
// file) against the real API server (the test control plane) with 100 and 50,000 ServiceAccounts, side by side with the
// Go webhook it replaces (aws/amazon-eks-pod-identity-webhook, default flags, against the same API server), a Node no-op
// and a Go no-op HTTPS server. Servers are pinned to core 0, the load generators (wrk, and bench/fixed-rate.go
// for latency at 500 req/s) to core 1; rounds are interleaved and medians reported, each figure with the
// 1-minute load average seen while it was taken. Writes bench/results/webhook.{json,md}; never fails a test run.
//
// Run: npm run bench:webhook
//   BENCH_SECONDS=10        length of each timed run
//   BENCH_ROUNDS=3          interleaved rounds (medians over them)
//   BENCH_SAS=50000         ServiceAccounts for the large-cluster figures
//   BENCH_BEFORE_REF=main   also bench that git ref (exported to ~/.cache/lanyard/bench/before), side by side
//   BENCH_ONLY=large        only the 50,000-ServiceAccount figures (RSS, heap, first mutating answer, throughput)
// Needs wrk (installed with apt-get when missing) and Go: builds bench/noop-https.go, bench/fixed-rate.go and the
// reference webhook (go install through the Go module proxy) into ~/.cache/lanyard/bench.
import { spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { beforeCheckout } from './lib/before-checkout.ts';
import {
  CLIENT_CPU,
  SERVER_CPU,
  ensureWrk,
  REFERENCE_WEBHOOK_MODULE,
  fixedRate,
  goBinary,
  pinned,
  referenceWebhookBinary,
  wrk,
  wrkScript,
} from './lib/load.ts';
import { freePort, startControlPlane, type ControlPlane } from '../src/sandbox/control-plane.ts';
import { missingBinaries } from '../src/sandbox/binaries.ts';
import { createKubeClient, type KubeClient } from '../src/kube/client.ts';
import { imageNodeFlags } from '../test/fixtures/image.ts';
import { tlsFilesFixture } from '../test/fixtures/webhook.ts';
import { sleep } from '../src/runtime/clock.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LARGE = Number(process.env.BENCH_SAS ?? 50_000);
const BEFORE_REF = process.env.BENCH_BEFORE_REF;
const ONLY_LARGE = process.env.BENCH_ONLY === 'large';
const ROOT = path.resolve(import.meta.dirname, '..');
const CACHE = path.join(os.homedir(), '.cache', 'lanyard', 'bench');
const OUT = path.join(ROOT, 'bench', 'results');
const ROLE = 'arn:aws:iam::111122223333:role/bench';

const log = (s: string) => process.stderr.write(`[bench:webhook] ${s}\n`);
const load = () => Math.round(os.loadavg()[0]! * 100) / 100;
const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const r2 = (n: number) => Math.round(n * 100) / 100;

// ---------------------------------------------------------------- tools

// ---------------------------------------------------------------- cluster content

async function createServiceAccounts(
  kube: KubeClient,
  namespace: string,
  from: number,
  to: number,
): Promise<void> {
  const nsPath = '/api/v1/namespaces';
  await kube.raw({
    method: 'POST',
    path: nsPath,
    body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
  });
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      // Every tenth ServiceAccount has a role, like a cluster where some workloads use AWS.
      const annotations = i % 10 === 0 ? { 'eks.amazonaws.com/role-arn': `${ROLE}-${i}` } : undefined;
      const r = await kube.raw({
        method: 'POST',
        path: `${nsPath}/${namespace}/serviceaccounts`,
        body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: `sa-${i}`, annotations } },
      });
      if (r.status !== 201 && r.status !== 409)
        throw new Error(`creating ${namespace}/sa-${i}: HTTP ${r.status}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

/** The same review every request: a Pod with 2 containers and 1 init container of a ServiceAccount with a role. */
function reviewBody(namespace: string, serviceAccount: string): string {
  const container = (name: string) => ({
    name,
    image: `registry.example.com/shop/${name}:1.4.2`,
    env: [{ name: 'LOG_LEVEL', value: 'info' }],
    volumeMounts: [
      { name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
    ],
  });
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: '4b5e3d84-2a4f-4c4e-9d6a-7b1f0c2e9a11',
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace,
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { generateName: 'shop-7d9f-', namespace, labels: { app: 'shop' } },
        spec: {
          serviceAccountName: serviceAccount,
          initContainers: [container('migrate')],
          containers: [container('app'), container('proxy')],
          volumes: [
            {
              name: 'kube-api-access',
              projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] },
            },
          ],
        },
      },
    },
  });
}

// ---------------------------------------------------------------- servers

interface Server {
  name: string;
  port: number;
  metricsPort?: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await exited;
}

/** Servers that print {"port":N} on their first line. */
async function startNoop(name: string, cmd: string, args: string[]): Promise<Server> {
  const proc = pinned(SERVER_CPU, cmd, args, 'pipe');
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (c) => {
      buf += String(c);
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)).port);
    });
    proc.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { name, port, proc, stop: () => stopProc(proc) };
}

interface WebhookVariant {
  name: string;
  dir: string;
}

interface Tls {
  certFile: string;
  keyFile: string;
}

/** A webhook process under test, started. */
interface RunningWebhook extends Server {
  startedAt: number;
  logFile: string;
  /** Lanyard's /readyz; the reference has only /healthz, which answers 200 as soon as it listens. */
  ready(): Promise<boolean>;
  /** Heap in use (MB), from the process's own /metrics. */
  heapMB(): Promise<number>;
}

/** A webhook to measure: a Lanyard build, which carries the goals, or the Go reference they are read against. */
interface Subject {
  name: string;
  isReference: boolean;
  spawn(cp: ControlPlane, tls: Tls): Promise<RunningWebhook>;
}

const REFERENCE = 'go reference';

/**
 * `lanyard webhook` from a checkout, with default flags apart from ports, kubeconfig and the serving pair, started as
 * the image starts it: Node with the Node flags of the checkout's Dockerfile ENTRYPOINT.
 */
function lanyardSubject(v: WebhookVariant): Subject {
  const nodeFlags = imageNodeFlags(v.dir);
  return {
    name: v.name,
    isReference: false,
    spawn: (cp, tls) =>
      spawnWebhookProcess(
        v.name,
        [process.execPath, ...nodeFlags, path.join(v.dir, 'bin', 'lanyard.js'), 'webhook'],
        cp,
        tls,
      ).then((w) => ({
        ...w,
        ready: () => readyz(w.metricsPort),
        heapMB: () => metricMB(w.metricsPort, 'nodejs_heap_size_used_bytes'),
      })),
  };
}

/**
 * aws/amazon-eks-pod-identity-webhook with its default flags apart from ports, kubeconfig and the serving pair
 * (`--in-cluster=false` is how its own deploy/ and kOps run it: serving files, not the CSR flow).
 */
function referenceSubject(bin: string): Subject {
  return {
    name: REFERENCE,
    isReference: true,
    spawn: (cp, tls) =>
      spawnWebhookProcess(REFERENCE, [bin, '--in-cluster=false'], cp, tls).then((w) => ({
        ...w,
        ready: async () => (await httpsStatus(w.port, '/healthz')) === 200,
        heapMB: () => metricMB(w.metricsPort, 'go_memstats_heap_alloc_bytes'),
      })),
  };
}

/**
 * Starts `command` with the flags both webhooks take (Lanyard's command line is the reference's: free ports, the
 * control plane's kubeconfig, the serving pair) on the server core, stdout and stderr to
 * bench/results/webhook-NAME.log.
 */
async function spawnWebhookProcess(
  name: string,
  command: string[],
  cp: ControlPlane,
  tls: Tls,
): Promise<Server & { metricsPort: number; startedAt: number; logFile: string }> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const logFile = path.join(OUT, `webhook-${name.replace(/[^\w().-]/g, '_')}.log`);
  const fd = fs.openSync(logFile, 'a');
  const startedAt = performance.now();
  const [cmd, ...args] = [
    ...command,
    `--kubeconfig=${cp.adminKubeconfig}`,
    `--port=${port}`,
    `--metrics-port=${metricsPort}`,
    `--tls-cert=${tls.certFile}`,
    `--tls-key=${tls.keyFile}`,
  ];
  const proc = pinned(SERVER_CPU, cmd!, args, fd, fd);
  fs.closeSync(fd);
  return { name, port, metricsPort, proc, startedAt, logFile, stop: () => stopProc(proc) };
}

const insecure = new https.Agent({ keepAlive: false, rejectUnauthorized: false });

function post(port: number, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate?timeout=10s',
        method: 'POST',
        agent: insecure,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const isMutating = (r: { status: number; text: string }) => r.status === 200 && r.text.includes('"patch"');

function httpsStatus(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve) => {
    https
      .get({ host: '127.0.0.1', port, path: urlPath, agent: insecure }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', () => resolve(0));
  });
}

async function readyz(metricsPort: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

/** Milliseconds from process start to the first mutating /mutate answer, and to /readyz 200. */
async function startToAnswer(
  w: RunningWebhook,
  body: string,
): Promise<{ firstMutatingMs: number; readyMs: number; cpuMs: number }> {
  let firstMutatingMs = NaN;
  let cpuAtFirst = NaN;
  let readyMs = NaN;
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline && (Number.isNaN(firstMutatingMs) || Number.isNaN(readyMs))) {
    if (w.proc.exitCode !== null)
      throw new Error(`webhook ${w.name} exited with ${w.proc.exitCode}; see ${w.logFile}`);
    if (Number.isNaN(firstMutatingMs)) {
      try {
        if (isMutating(await post(w.port, body))) {
          firstMutatingMs = performance.now() - w.startedAt;
          cpuAtFirst = cpuMs(w.proc.pid!);
        }
      } catch {
        /* not listening yet */
      }
    }
    if (Number.isNaN(readyMs) && (await w.ready())) readyMs = performance.now() - w.startedAt;
    await sleep(5);
  }
  return { firstMutatingMs, readyMs, cpuMs: cpuAtFirst };
}

/** CPU time (user + system) the process has used, in ms: on a shared machine it varies far less than wall time. */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * (1000 / CLOCK_TICKS);
}
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Resident set (current and peak) from /proc, in MB. */
function rssMB(pid: number): { rss: number; peak: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: r2(kb('VmRSS') / 1024), peak: r2(kb('VmHWM') / 1024) };
}

/** A gauge in bytes from the process's Prometheus /metrics, in MB (NaN when absent). */
async function metricMB(metricsPort: number, name: string): Promise<number> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? r2(Number(m[1]) / 2 ** 20) : NaN;
  } catch {
    return NaN;
  }
}

// ---------------------------------------------------------------- load generators

// ---------------------------------------------------------------- main

interface Figure {
  value: number;
  load: number;
  samples: number[];
}
const figure = (samples: number[], loads: number[]): Figure => ({
  value: r2(median(samples)),
  load: r2(median(loads)),
  samples: samples.map(r2),
});

async function main(): Promise<void> {
  fs.mkdirSync(OUT, { recursive: true });
  for (const f of fs.readdirSync(OUT))
    if (f.startsWith('webhook-') && f.endsWith('.log')) fs.rmSync(path.join(OUT, f));
  ensureWrk(log);
  const goBin = goBinary('noop-https.go', log);
  const referenceBin = referenceWebhookBinary(log);
  if (missingBinaries().length)
    execFileSync('bash', [path.join(ROOT, 'scripts', 'build-control-plane.sh')], { stdio: 'inherit' });
  const variants: WebhookVariant[] = [{ name: 'now', dir: ROOT }];
  if (BEFORE_REF)
    variants.push({
      name: `before(${BEFORE_REF})`.replace(/[^\w().-]/g, '_'),
      dir: beforeCheckout(ROOT, CACHE, BEFORE_REF),
    });

  // A checkout with compiled output runs dist/ from bin/lanyard.js: build it when missing or stale, as npm start does.
  for (const v of variants) {
    const ensureBuild = path.join(v.dir, 'scripts', 'ensure-build.mjs');
    if (fs.existsSync(ensureBuild))
      execFileSync(process.execPath, [ensureBuild], { cwd: v.dir, stdio: 'inherit' });
  }
  const subjects: Subject[] = [...variants.map(lanyardSubject), referenceSubject(referenceBin)];
  const tls = await tlsFilesFixture();
  log('starting the control plane');
  const cp = await startControlPlane();
  const kube = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
  const results: Record<string, unknown> = {
    at: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    seconds: SECONDS,
    rounds: ROUNDS,
    variants: variants.map((v) => v.name),
    reference: REFERENCE_WEBHOOK_MODULE,
  };
  try {
    await createServiceAccounts(kube, 'bench', 0, 100);
    const body = reviewBody('bench', 'sa-0');
    const bodyFile = path.join(OUT, 'review.json');
    fs.writeFileSync(bodyFile, body);
    const script = wrkScript(OUT, body);
    const sasSmall = ((await kube.get('/api/v1/serviceaccounts', { limit: 1000 })) as { items: unknown[] })
      .items.length;
    results.review = { bytes: Buffer.byteLength(body), serviceAccountsSmall: sasSmall };
    log(`review ${Buffer.byteLength(body)} bytes; ${sasSmall} ServiceAccounts in the cluster`);

    if (!ONLY_LARGE) {
      // Cold start with the small cluster, and memory when fresh.
      const cold: Record<
        string,
        { start: number[]; ready: number[]; rss: number[]; heap: number[]; cpu: number[]; loads: number[] }
      > = {};
      // The floor in the same rounds: a Node no-op HTTPS server from spawn to its first answer (CPU and RSS too).
      const noopStart = {
        ms: [] as number[],
        cpu: [] as number[],
        rss: [] as number[],
        loads: [] as number[],
      };
      for (let r = 0; r < ROUNDS; r++) {
        const t0 = performance.now();
        const noop = await startNoop('node-noop', process.execPath, [
          path.join(ROOT, 'bench', 'noop-https.mjs'),
          tls.certFile,
          tls.keyFile,
        ]);
        await post(noop.port, body);
        noopStart.ms.push(performance.now() - t0);
        noopStart.cpu.push(cpuMs(noop.proc.pid!));
        noopStart.rss.push(rssMB(noop.proc.pid!).rss);
        noopStart.loads.push(load());
        await noop.stop();
        for (const subject of subjects) {
          const w = await subject.spawn(cp, tls);
          const t = await startToAnswer(w, body);
          const cpuAtAnswer = t.cpuMs;
          await sleep(1000);
          const c = (cold[w.name] ??= { start: [], ready: [], rss: [], heap: [], cpu: [], loads: [] });
          c.cpu.push(cpuAtAnswer);
          c.start.push(t.firstMutatingMs);
          c.ready.push(t.readyMs);
          c.rss.push(rssMB(w.proc.pid!).rss);
          c.heap.push(await w.heapMB());
          c.loads.push(load());
          await w.stop();
        }
      }
      results.coldStart = Object.fromEntries(
        Object.entries(cold).map(([k, c]) => [
          k,
          {
            firstMutatingMs: figure(c.start, c.loads),
            readyMs: figure(c.ready, c.loads),
            rssFreshMB: figure(c.rss, c.loads),
            heapFreshMB: figure(c.heap, c.loads),
            cpuMs: figure(c.cpu, c.loads),
          },
        ]),
      );
      results.coldStartFloor = {
        nodeNoopFirstAnswerMs: figure(noopStart.ms, noopStart.loads),
        nodeNoopCpuMs: figure(noopStart.cpu, noopStart.loads),
        nodeNoopRssMB: figure(noopStart.rss, noopStart.loads),
      };
      log(`cold start: ${JSON.stringify(results.coldStart)}`);
    }

    // Throughput and latency, interleaved rounds over every server.
    const throughputRun = async (label: string, servers: Server[], conns: number[]) => {
      for (const s of servers) await wrk(s.port, 32, 2, script); // warm-up (JIT, TLS sessions)
      const acc: Record<string, { rps: number[]; loads: number[]; bad: number; slow: number }> = {};
      for (let r = 0; r < ROUNDS; r++) {
        for (const c of conns) {
          for (const s of servers) {
            const t = await wrk(s.port, c, SECONDS, script);
            const a = (acc[`${s.name} c${c}`] ??= { rps: [], loads: [], bad: 0, slow: 0 });
            a.rps.push(t.rps);
            a.loads.push(load());
            a.bad += t.bad;
            a.slow += t.slow;
            log(`${label} ${s.name} c${c}: ${Math.round(t.rps)} req/s (load ${load()})`);
          }
        }
      }
      return Object.fromEntries(
        Object.entries(acc).map(([k, a]) => [k, { ...figure(a.rps, a.loads), errors: a.bad, slow: a.slow }]),
      );
    };

    const nodeNoop = await startNoop('node-noop', process.execPath, [
      path.join(ROOT, 'bench', 'noop-https.mjs'),
      tls.certFile,
      tls.keyFile,
    ]);
    const goNoop = await startNoop('go-noop', goBin, [tls.certFile, tls.keyFile]);
    if (!ONLY_LARGE) {
      const hooks = [];
      for (const subject of subjects) {
        const w = await subject.spawn(cp, tls);
        await startToAnswer(w, body);
        hooks.push(w);
      }
      const servers: Server[] = [nodeNoop, goNoop, ...hooks];
      results.throughputSmall = await throughputRun(`${sasSmall} SAs`, servers, [32, 128]);

      const lat: Record<string, { p50: number[]; p99: number[]; loads: number[]; errors: number }> = {};
      for (let r = 0; r < ROUNDS; r++) {
        for (const s of servers) {
          const t = await fixedRate(s.port, bodyFile, 500, SECONDS);
          const a = (lat[s.name] ??= { p50: [], p99: [], loads: [], errors: 0 });
          a.p50.push(t.p50);
          a.p99.push(t.p99);
          a.loads.push(load());
          a.errors += t.errors;
          log(`500 req/s ${s.name}: p50 ${r2(t.p50)} ms, p99 ${r2(t.p99)} ms (load ${load()})`);
        }
      }
      results.latency500 = Object.fromEntries(
        Object.entries(lat).map(([k, a]) => [
          k,
          { p50: figure(a.p50, a.loads), p99: figure(a.p99, a.loads), errors: a.errors },
        ]),
      );
      results.memoryAfterLoadSmall = Object.fromEntries(
        await Promise.all(
          hooks.map(async (h) => [h.name, { ...rssMB(h.proc.pid!), heapMB: await h.heapMB(), load: load() }]),
        ),
      );
      for (const h of hooks) await h.stop();
    }

    // The large cluster.
    log(`creating ${LARGE} ServiceAccounts`);
    const t0 = performance.now();
    const perNs = 1000;
    for (let ns = 0; ns * perNs < LARGE - 100; ns++)
      await createServiceAccounts(kube, `tenant-${ns}`, ns * perNs, Math.min((ns + 1) * perNs, LARGE - 100));
    const sasLarge = LARGE + sasSmall - 100;
    log(`created in ${Math.round((performance.now() - t0) / 1000)} s`);
    results.serviceAccountsLarge = sasLarge;

    // The ServiceAccount listed last, so a webhook that answers only from a synced cache shows its whole list time.
    const lastNs = Math.ceil((LARGE - 100) / perNs) - 1;
    const lastAnnotated = Math.floor((LARGE - 101) / 10) * 10;
    const largeBody = reviewBody(`tenant-${lastNs}`, `sa-${lastAnnotated}`);
    const large: Record<
      string,
      { first: number[]; ready: number[]; rss: number[]; heap: number[]; cpu: number[]; loads: number[] }
    > = {};
    for (let r = 0; r < ROUNDS; r++) {
      for (const subject of subjects) {
        const w = await subject.spawn(cp, tls);
        const t = await startToAnswer(w, largeBody);
        await sleep(1000);
        const c = (large[w.name] ??= { first: [], ready: [], rss: [], heap: [], cpu: [], loads: [] });
        c.cpu.push(t.cpuMs);
        c.first.push(t.firstMutatingMs);
        c.ready.push(t.readyMs);
        c.rss.push(rssMB(w.proc.pid!).rss);
        c.heap.push(await w.heapMB());
        c.loads.push(load());
        log(
          `${sasLarge} SAs ${w.name}: first mutating ${Math.round(t.firstMutatingMs)} ms, ready ${Math.round(t.readyMs)} ms, RSS ${rssMB(w.proc.pid!).rss} MB`,
        );
        await w.stop();
      }
    }
    results.largeCluster = Object.fromEntries(
      Object.entries(large).map(([k, c]) => [
        k,
        {
          firstMutatingMs: figure(c.first, c.loads),
          readyMs: figure(c.ready, c.loads),
          rssMB: figure(c.rss, c.loads),
          heapMB: figure(c.heap, c.loads),
          cpuMs: figure(c.cpu, c.loads),
        },
      ]),
    );

    const bigHooks = [];
    for (const subject of subjects) {
      const w = await subject.spawn(cp, tls);
      await startToAnswer(w, body);
      bigHooks.push(w);
    }
    results.throughputLarge = await throughputRun(`${sasLarge} SAs`, [nodeNoop, ...bigHooks], [32]);
    results.memoryAfterLoadLarge = Object.fromEntries(
      await Promise.all(
        bigHooks.map(async (h) => [
          h.name,
          { ...rssMB(h.proc.pid!), heapMB: await h.heapMB(), load: load() },
        ]),
      ),
    );
    for (const s of [...bigHooks, nodeNoop, goNoop]) await s.stop();
  } finally {
    kube.close();
    await cp.stop();
    fs.rmSync(cp.dir, { recursive: true, force: true });
  }
  fs.writeFileSync(path.join(OUT, 'webhook.json'), JSON.stringify(results, null, 2) + '\n');
  const md = report(results as unknown as Results, subjects);
  fs.writeFileSync(path.join(OUT, 'webhook.md'), md);
  process.stdout.write(md);
}

type F = Figure;
interface Results {
  at: string;
  reference: string;
  cpus: number;
  seconds: number;
  rounds: number;
  review: { bytes: number; serviceAccountsSmall: number };
  serviceAccountsLarge: number;
  coldStart?: Record<string, { firstMutatingMs: F; readyMs: F; rssFreshMB: F; heapFreshMB: F; cpuMs: F }>;
  coldStartFloor: { nodeNoopFirstAnswerMs: F; nodeNoopCpuMs: F; nodeNoopRssMB: F };
  throughputSmall?: Record<string, F & { errors: number; slow: number }>;
  throughputLarge: Record<string, F & { errors: number; slow: number }>;
  latency500?: Record<string, { p50: F; p99: F; errors: number }>;
  memoryAfterLoadSmall: Record<string, { rss: number; peak: number; heapMB: number; load: number }>;
  largeCluster: Record<string, { firstMutatingMs: F; readyMs: F; rssMB: F; heapMB: F; cpuMs: F }>;
  memoryAfterLoadLarge: Record<string, { rss: number; peak: number; heapMB: number; load: number }>;
}

/**
 * 1.2× the Go reference's 11,373 req/s at 128 connections, as a share of a Node no-op: in the run that measured the
 * reference, it answered 10,707 req/s at 32 connections, 0.34× the Node no-op there (31,491 req/s), so 11,373 was 0.361×
 * that no-op and 1.2× of it is 0.43×.
 */
const GOAL_128 = '≥ 0.43× node no-op at 32 (1.2× the Go reference, 11,373 = 0.361× its no-op at 32)';

function report(r: Results, subjects: Subject[]): string {
  const f = (x: F | undefined, unit = '') => (x ? `${x.value}${unit} (load ${x.load})` : 'n/a');
  const rows: string[] = [];
  const row = (what: string, name: string, value: string, goal: string) =>
    rows.push(`| ${what} | ${name} | ${value} | ${goal} |`);
  const lanyards = subjects.filter((s) => !s.isReference);
  /** ` = 0.9× the reference` for a Lanyard figure, nothing for the reference's own row. */
  const vsRef = (s: Subject, x: number | undefined, ref: number | undefined) =>
    !s.isReference && x !== undefined && ref ? ` = **${r2(x / ref)}× the reference**` : '';
  /** Lanyard ÷ reference in each round (the rounds are interleaved, so each pair shares the machine's load). */
  const perRound = (x: F, ref: F | undefined) =>
    ref ? `; per round ${x.samples.map((v, i) => r2(v / ref.samples[i]!)).join(', ')}` : '';

  const ts = r.throughputSmall ?? {};
  for (const c of r.throughputSmall ? [32, 128] : []) {
    const node = ts[`node-noop c${c}`]!;
    const go = ts[`go-noop c${c}`];
    const ref = ts[`${REFERENCE} c${c}`];
    row(`/mutate req/s, ${c} connections, ${r.review.serviceAccountsSmall} SAs`, 'node no-op', f(node), '');
    row('', 'go no-op', `${f(go)} = ${r2(go!.value / node.value)}× node no-op`, '');
    for (const s of subjects) {
      const x = ts[`${s.name} c${c}`]!;
      // The issue gives its Node no-op only at 32 connections, so the 128-connection share is also read against that.
      const at32 = c === 32 ? '' : `, ${r2(x.value / ts['node-noop c32']!.value)}× node no-op at 32`;
      const goal =
        c === 32 ? '≥ 1.2× the reference; ≥ 0.40× node no-op' : `≥ 1.2× the reference; ${GOAL_128}`;
      row(
        '',
        s.name,
        `${f(x)}${vsRef(s, x.value, ref?.value)}, ${r2(x.value / node.value)}× node no-op${at32}, ${x.errors} errors, ${x.slow} over 2 s${s.isReference ? '' : perRound(x, ref)}`,
        s.isReference ? '' : goal,
      );
    }
  }
  const lat = r.latency500 ?? {};
  const refP99 = lat[REFERENCE]?.p99;
  const goP99 = lat['go-noop']?.p99.value;
  for (const [name, l] of Object.entries(lat)) {
    const isLanyard = lanyards.some((s) => s.name === name);
    const vs =
      isLanyard && refP99
        ? ` = **${r2(l.p99.value / refP99.value)}× the reference's p99**${perRound(l.p99, refP99)}`
        : '';
    const vsGo = name !== 'go-noop' && goP99 ? `; ${r2(l.p99.value / goP99)}× go no-op's` : '';
    row(
      'p50 / p99 at 500 req/s (ms)',
      name,
      `${l.p50.value} / **${l.p99.value}**${vs}${vsGo} (load ${l.p99.load}), ${l.errors} errors`,
      isLanyard ? "p99 ≤ the reference's (1.24 in the issue's run)" : '',
    );
  }
  const cold = r.coldStart;
  for (const s of cold ? subjects : []) {
    const c = cold![s.name]!;
    row(
      `RSS fresh, ${r.review.serviceAccountsSmall} SAs (MB)`,
      s.name,
      `**${f(c.rssFreshMB)}**${vsRef(s, c.rssFreshMB.value, cold![REFERENCE]?.rssFreshMB.value)}, heap used ${c.heapFreshMB.value} MB`,
      s.isReference ? '' : '≤ 80',
    );
  }
  for (const s of cold ? subjects : []) {
    const c = cold![s.name]!;
    const fl = r.coldStartFloor;
    row(
      `process start to first mutating /mutate, ${r.review.serviceAccountsSmall} SAs (ms)`,
      s.name,
      `**${f(c.firstMutatingMs)}** = ${r2(c.firstMutatingMs.value / fl.nodeNoopFirstAnswerMs.value)}× a Node no-op HTTPS server's start to first answer (${fl.nodeNoopFirstAnswerMs.value} ms); CPU ${c.cpuMs.value} ms (no-op ${fl.nodeNoopCpuMs.value} ms, RSS ${fl.nodeNoopRssMB.value} MB); ready ${c.readyMs.value} ms`,
      s.isReference ? '' : '≤ 300',
    );
  }
  for (const s of cold ? subjects : []) {
    const m = r.memoryAfterLoadSmall[s.name]!;
    row(
      `RSS after the load runs, ${r.review.serviceAccountsSmall} SAs (MB)`,
      s.name,
      `${m.rss} (peak ${m.peak}), heap used ${m.heapMB} MB (load ${m.load})`,
      '',
    );
  }
  const large = r.largeCluster;
  for (const s of subjects) {
    const c = large[s.name]!;
    row(
      `RSS with ${r.serviceAccountsLarge} SAs cached (MB)`,
      s.name,
      `**${f(c.rssMB)}**${vsRef(s, c.rssMB.value, large[REFERENCE]?.rssMB.value)}, heap used ${c.heapMB.value} MB`,
      s.isReference ? '' : '≤ 117',
    );
  }
  for (const s of subjects) {
    const c = large[s.name]!;
    row(
      `time to the first mutating /mutate, ${r.serviceAccountsLarge} SAs (ms)`,
      s.name,
      `**${f(c.firstMutatingMs)}**${vsRef(s, c.firstMutatingMs.value, large[REFERENCE]?.firstMutatingMs.value)}, CPU ${c.cpuMs.value} ms; ready ${c.readyMs.value} ms`,
      s.isReference ? '' : '≤ 900',
    );
  }
  for (const s of subjects) {
    const m = r.memoryAfterLoadLarge[s.name]!;
    row(
      `RSS after load, ${r.serviceAccountsLarge} SAs (MB)`,
      s.name,
      `${m.rss} (peak ${m.peak}), heap used ${m.heapMB} MB (load ${m.load})`,
      '',
    );
  }
  const tl = r.throughputLarge;
  for (const s of subjects) {
    const x = tl[`${s.name} c32`]!;
    row(
      `/mutate req/s, 32 connections, ${r.serviceAccountsLarge} SAs`,
      s.name,
      `${f(x)}${vsRef(s, x.value, tl[`${REFERENCE} c32`]?.value)}, ${r2(x.value / tl['node-noop c32']!.value)}× node no-op`,
      '',
    );
  }
  return [
    `# Webhook benchmark (${r.at})`,
    '',
    `${r.cpus} CPUs; servers on core ${SERVER_CPU}, load generators on core ${CLIENT_CPU}; ${r.rounds} interleaved rounds of ${r.seconds} s, medians;`,
    `review ${r.review.bytes} bytes (Pod with 2 containers and 1 init container, mutated); \`lanyard webhook\` with default flags and log level;`,
    `"${REFERENCE}" is ${r.reference} (aws/amazon-eks-pod-identity-webhook, the Go webhook Lanyard replaces) with its default flags, in the same rounds.`,
    'Load is the 1-minute load average (median over the rounds) while the figure was taken.',
    '',
    '| Figure | Server | Result | Goal |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

await main();
process.exit(0);
