// Admission of hostile Pods (issue: ReDoS in IdentityPolicy matching; docs/verified-start.md, "Role ARNs"): a Pod
// carrying a 100 KB annotation, a 100 KB env value, a 100 KB AWS_ROLE_ARN, or using a ServiceAccount whose role-arn
// annotation is 100 KB, under a policy whose pattern (`*-*-reader`) made a backtracking matcher cubic. Goal: each
// admission < 10 ms in the webhook, and none delays a concurrent ordinary admission.
// What ships is measured: the real `lanyard webhook --identity-gate` process (bin/lanyard.js, default flags and log
// level, logs to bench/results/admission-hostile-webhook.log), two ways, side by side in one run: (1) its /mutate over
// HTTPS with the AdmissionReview the API server would send (webhook time only), (2) Pod creates through the real
// kube-apiserver and its MutatingWebhookConfiguration (end to end), ordinary Pods alone and while hostile creates run
// alongside.
// (3) "never delays a concurrent admission": ordinary admissions timed while 4 loops send nothing, ordinary Pods, harmless
// 100 KB Pods (a big annotation or env value) or hostile 100 KB Pods (a 100 KB AWS_ROLE_ARN, a ServiceAccount with a
// 100 KB role-arn) alongside, the four conditions interleaved in rounds within one run. Any request delays the next one
// on a busy core by the time it takes to read and parse its bytes; the promise is that hostile content adds nothing to
// that, so the figure is hostile / harmless of the same size (1.0 = no extra delay). (4) "/mutate p99 at 500 req/s and throughput change by less than 10 % against the previous figures": this
// build and the build before the security fixes of issue 9 (BENCH_BEFORE_REF, default 456b83d, the last commit before
// docs/security.md's first version), both with default flags, the same ordinary review, servers pinned to core 0 and
// wrk / bench/fixed-rate.go to core 1, interleaved rounds, medians. Every figure carries the 1-minute load average.
// Writes bench/results/admission-hostile.{json,md}; never fails a test run.
// Run: npm run bench:hostile
//   BENCH_N=60                 admissions per case (and per condition in (3))
//   BENCH_ROUNDS=5             interleaved rounds in (3) and (4)
//   BENCH_SECONDS=5            length of each wrk and 500 req/s run in (4)
//   BENCH_BEFORE_REF=456b83d   the "previous figures" build for (4); BENCH_BEFORE_REF= (empty) skips (4)
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { freePort, startControlPlane, type ControlPlane } from '../src/sandbox/control-plane.ts';
import { createKubeClient, KubeApiError, type Json, type KubeClient } from '../src/kube/client.ts';
import { applyCrds } from '../src/kube/apply.ts';
import { CRD_DIR } from '../src/sandbox/paths.ts';
import { tlsFilesFixture } from '../test/fixtures/webhook.ts';
import { sleep } from '../src/runtime/clock.ts';
import { beforeCheckout } from './lib/before-checkout.ts';
import { review } from './lib/admission-load.mjs';
import { staticKubeconfig } from '../src/kube/kubeconfig.ts';
import { SERVER_CPU, ensureWrk, fixedRate, load1, pinned, wrk, wrkScript } from './lib/load.ts';

const N = Number(process.env.BENCH_N ?? 60);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const BEFORE_REF = process.env.BENCH_BEFORE_REF ?? '456b83d';
const CACHE = path.join(os.homedir(), '.cache', 'lanyard', 'bench');
const ROOT = path.resolve(import.meta.dirname, '..');
const KB100 = 100 * 1024;
const ROLE = 'arn:aws:iam::111122223333:role/app-x-reader';
const HOSTILE_ARN = `arn:aws:iam::${':role/-'.repeat(Math.ceil(KB100 / 7))}x`;
const BLOB = 'x'.repeat(KB100);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const summary = (xs: number[]) => ({
  n: xs.length,
  p50: round(pct(xs, 50)),
  p95: round(pct(xs, 95)),
  max: round(Math.max(...xs)),
});
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const log = (line: string) => process.stderr.write(`[bench:hostile] ${line}\n`);

function pod(
  name: string,
  sa: string,
  extra: { annotations?: Record<string, string>; env?: Json[] } = {},
): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: {
      serviceAccountName: sa,
      automountServiceAccountToken: false,
      containers: [
        { name: 'app', image: 'registry.k8s.io/pause:3.10', ...(extra.env ? { env: extra.env } : {}) },
      ],
    },
  };
}

type Case = { name: string; sa: string; extra: Parameters<typeof pod>[2] };
const CASES: Case[] = [
  { name: 'ordinary', sa: 'app', extra: {} },
  { name: '100 KB annotation', sa: 'app', extra: { annotations: { 'example.com/blob': BLOB } } },
  { name: '100 KB env value', sa: 'app', extra: { env: [{ name: 'BLOB', value: BLOB }] } },
  {
    name: '100 KB AWS_ROLE_ARN env',
    sa: 'app',
    extra: {
      env: [
        { name: 'AWS_ROLE_ARN', value: HOSTILE_ARN },
        {
          name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
          value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
        },
      ],
    },
  },
  { name: '100 KB role-arn on the ServiceAccount', sa: 'evil', extra: {} },
];

async function ns(kube: KubeClient, name: string, labels: Record<string, string>) {
  await kube.create('/api/v1/namespaces', { metadata: { name, labels } });
  for (let i = 0; i < 100; i++) {
    try {
      await kube.get(`/api/v1/namespaces/${name}/serviceaccounts/default`);
      return;
    } catch {
      await sleep(100);
    }
  }
}

/** One /mutate call over HTTPS with a keep-alive agent, as the API server makes it; returns ms and the answer. */
function mutate(
  port: number,
  ca: string,
  agent: https.Agent,
  namespace: string,
  object: Json,
): Promise<{ ms: number; allowed: boolean }> {
  const body = JSON.stringify(review(namespace, object));
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate?timeout=10s',
        method: 'POST',
        ca,
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const ms = performance.now() - started;
          try {
            resolve({
              ms,
              allowed: JSON.parse(Buffer.concat(chunks).toString('utf8')).response?.allowed === true,
            });
          } catch (e) {
            reject(e);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function create(
  kube: KubeClient,
  namespace: string,
  object: Json,
): Promise<{ ms: number; outcome: string }> {
  const started = performance.now();
  try {
    await kube.create(`/api/v1/namespaces/${namespace}/pods`, object);
    return { ms: performance.now() - started, outcome: 'created' };
  } catch (e) {
    if (!(e instanceof KubeApiError)) throw e;
    return { ms: performance.now() - started, outcome: `refused ${e.status}` };
  }
}

const RESULTS = path.join(import.meta.dirname, 'results');

/**
 * Starts `lanyard webhook --identity-gate` from bin/lanyard.js with default flags apart from ports, kubeconfig, the
 * serving pair and the cluster name; resolves once /readyz answers 200 (caches synced, IdentityPolicy guard on).
 */
async function spawnWebhook(
  kubeconfig: string,
): Promise<{ port: number; caPem: string; proc: ChildProcess; stop(): Promise<void> }> {
  const tls = await tlsFilesFixture();
  const [port, metricsPort] = [await freePort(), await freePort()];
  fs.mkdirSync(RESULTS, { recursive: true });
  const fd = fs.openSync(path.join(RESULTS, 'admission-hostile-webhook.log'), 'w');
  const proc = spawn(
    process.execPath,
    [
      path.join(import.meta.dirname, '..', 'bin', 'lanyard.js'),
      'webhook',
      `--kubeconfig=${kubeconfig}`,
      `--port=${port}`,
      `--metrics-port=${metricsPort}`,
      `--tls-cert=${tls.certFile}`,
      `--tls-key=${tls.keyFile}`,
      '--cluster-name=bench',
      '--identity-gate',
    ],
    { stdio: ['ignore', fd, fd] },
  );
  fs.closeSync(fd);
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(50)) {
    if (proc.exitCode !== null)
      throw new Error(
        `lanyard webhook exited with ${proc.exitCode}; see bench/results/admission-hostile-webhook.log`,
      );
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return { port, caPem: tls.caPem, proc, stop };
  }
  await stop();
  throw new Error('lanyard webhook not ready within 120 s');
}

const CONDITIONS = ['alone', 'withOrdinary', 'withLarge', 'withHostile'] as const;
type Condition = (typeof CONDITIONS)[number];
const CONDITION_LABEL: Record<Condition, string> = {
  alone: 'nothing',
  withOrdinary: 'ordinary Pods',
  withLarge: '100 KB Pods, harmless (annotation, env value)',
  withHostile: '100 KB Pods, hostile (AWS_ROLE_ARN, SA role-arn)',
};
type Concurrent = Record<Condition, ReturnType<typeof summary> & { alongside: number; load: number }> & {
  ratios?: Record<
    'hostileOverLarge' | 'hostileOverOrdinary' | 'hostileOverAlone',
    { p50: number; p95: number }
  >;
};

interface BuildFigures {
  rps: number[];
  p50: number[];
  p99: number[];
  loads: number[];
  errors: number;
}
type BeforeAfter = {
  ref: string;
  commit: string;
  seconds: number;
  rounds: number;
  builds: Record<'now' | 'before', BuildFigures>;
  /** Per round, this build's figure over the other's, taken back to back: robust to the load changing between rounds. */
  ratios: { rps: number[]; p99: number[] };
};

/**
 * (4) `lanyard webhook` of this build and of `ref`, both with default flags (the lanyard.dev CRDs and the IdentityPolicy
 * are installed, so both run their policy checks), pinned to the server core: per round and build, wrk with 32
 * connections and 500 req/s from bench/fixed-rate.go, the build order alternating per round.
 */
async function compareBuilds(kubeconfig: string, ref: string): Promise<BeforeAfter> {
  ensureWrk(log);
  const beforeDir = beforeCheckout(ROOT, CACHE, ref);
  const commit = execFileSync('git', ['rev-parse', '--short=12', ref], {
    cwd: ROOT,
    encoding: 'utf8',
  }).trim();
  const tls = await tlsFilesFixture();
  const body = JSON.stringify(review('victim', pod('bench-review', 'app')));
  fs.mkdirSync(RESULTS, { recursive: true });
  const bodyFile = path.join(RESULTS, 'admission-hostile-review.json');
  fs.writeFileSync(bodyFile, body);
  const script = wrkScript(RESULTS, body);
  const builds: Record<'now' | 'before', { dir: string; port: number; proc: ChildProcess }> = {} as never;
  for (const [name, dir] of [
    ['now', ROOT],
    ['before', beforeDir],
  ] as const) {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const fd = fs.openSync(path.join(RESULTS, `admission-hostile-${name}.log`), 'w');
    const proc = pinned(
      SERVER_CPU,
      process.execPath,
      [
        path.join(dir, 'bin', 'lanyard.js'),
        'webhook',
        `--kubeconfig=${kubeconfig}`,
        `--port=${port}`,
        `--metrics-port=${metricsPort}`,
        `--tls-cert=${tls.certFile}`,
        `--tls-key=${tls.keyFile}`,
      ],
      fd,
    );
    fs.closeSync(fd);
    builds[name] = { dir, port, proc };
    for (const deadline = Date.now() + 180_000; ; await sleep(100)) {
      if (proc.exitCode !== null)
        throw new Error(
          `${name} webhook exited with ${proc.exitCode}; see bench/results/admission-hostile-${name}.log`,
        );
      if (
        await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
          (r) => r.status === 200,
          () => false,
        )
      )
        break;
      if (Date.now() > deadline) throw new Error(`${name} webhook not ready within 180 s`);
    }
  }
  const figures: Record<'now' | 'before', BuildFigures> = {
    now: { rps: [], p50: [], p99: [], loads: [], errors: 0 },
    before: { rps: [], p50: [], p99: [], loads: [], errors: 0 },
  };
  try {
    for (const b of Object.values(builds)) await wrk(b.port, 32, 2, script); // warm-up: JIT, TLS sessions
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of r % 2 ? (['before', 'now'] as const) : (['now', 'before'] as const)) {
        const t = await wrk(builds[name].port, 32, SECONDS, script);
        const l = await fixedRate(builds[name].port, bodyFile, 500, SECONDS);
        const f = figures[name];
        f.rps.push(round(t.rps, 0));
        f.p50.push(round(l.p50));
        f.p99.push(round(l.p99));
        f.loads.push(load1());
        f.errors += t.bad + l.errors;
        log(
          `${name}: ${Math.round(t.rps)} req/s at 32 connections, 500 req/s p50 ${round(l.p50)} ms p99 ${round(l.p99)} ms (load ${load1()})`,
        );
      }
    }
  } finally {
    for (const b of Object.values(builds)) {
      const exited = new Promise((res) => b.proc.once('exit', res));
      b.proc.kill('SIGKILL');
      await exited;
    }
  }
  const perRound = (k: 'rps' | 'p99') => figures.now[k].map((x, i) => round(x / figures.before[k][i]!));
  return {
    ref,
    commit,
    seconds: SECONDS,
    rounds: ROUNDS,
    builds: figures,
    ratios: { rps: perRound('rps'), p99: perRound('p99') },
  };
}

function beforeAfterMarkdown(b: BeforeAfter): string[] {
  const m = (k: 'rps' | 'p50' | 'p99', n: 'now' | 'before') => median(b.builds[n][k]);
  const change = (k: 'rps' | 'p99') => {
    const r = median(b.ratios[k]);
    return `${r >= 1 ? '+' : ''}${round((r - 1) * 100, 1)} % (per-round ratios ${b.ratios[k].join(', ')})`;
  };
  return [
    `## This build against ${b.ref} (before issue 9's fixes), default flags, ${b.rounds} interleaved rounds of ${b.seconds} s, medians`,
    '',
    '| build | req/s at 32 connections | p50 at 500 req/s (ms) | p99 at 500 req/s (ms) | errors | load (per round) |',
    '|---|---|---|---|---|---|',
    ...(['now', 'before'] as const).map(
      (n) =>
        `| ${n === 'now' ? 'this build' : b.ref} | ${m('rps', n)} | ${m('p50', n)} | ${m('p99', n)} | ${b.builds[n].errors} | ${b.builds[n].loads.join(', ')} |`,
    ),
    '',
    `Change, this build against ${b.ref}, median of the per-round ratios: throughput ${change('rps')}; p99 ${change('p99')}. Goal: within 10 %, or better.`,
    '',
  ];
}

/** The control plane is stopped however the run ends (a failed run left kube-apiserver and etcd running). */
async function main() {
  const cp = await startControlPlane({ log: () => undefined });
  try {
    await measure(cp);
  } finally {
    await cp.stop();
  }
}

async function measure(cp: ControlPlane) {
  const t0 = Date.now();
  const kube = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
  await applyCrds(kube, CRD_DIR);
  await ns(kube, 'lanyard-system', {});
  const label = { 'lanyard-bench': 'hostile' };
  await ns(kube, 'victim', label);
  await ns(kube, 'attacker', label);
  await kube.create('/apis/lanyard.dev/v1alpha1/identitypolicies', {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'IdentityPolicy',
    metadata: { name: 'readers' },
    spec: {
      rules: [{ namespaceSelector: {}, serviceAccounts: ['*'], roles: ['arn:aws:iam::*:role/*-*-reader'] }],
    },
  });
  for (const n of ['victim', 'attacker']) {
    await kube.create(`/api/v1/namespaces/${n}/serviceaccounts`, {
      metadata: { name: 'app', annotations: { 'eks.amazonaws.com/role-arn': ROLE } },
    });
  }
  await kube.create('/api/v1/namespaces/attacker/serviceaccounts', {
    metadata: { name: 'evil', annotations: { 'eks.amazonaws.com/role-arn': HOSTILE_ARN } },
  });

  const webhook = await spawnWebhook(cp.adminKubeconfig);
  await kube.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
    metadata: { name: 'lanyard-bench-hostile' },
    webhooks: [
      {
        name: 'pod-identity.lanyard.dev',
        clientConfig: {
          url: `https://127.0.0.1:${webhook.port}/mutate`,
          caBundle: Buffer.from(webhook.caPem).toString('base64'),
        },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        namespaceSelector: { matchLabels: label },
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 10,
      },
    ],
  });
  // The API server calls the webhook once it has loaded the configuration: an ordinary Pod then comes back mutated.
  for (let i = 0; ; i++) {
    const p = await kube.create('/api/v1/namespaces/victim/pods', pod(`warm-${i}`, 'app'));
    if (JSON.stringify(p.spec.containers[0].env ?? []).includes('AWS_ROLE_ARN')) break;
    await sleep(200);
  }

  // ---- (1) the webhook alone: /mutate over HTTPS ----
  const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
  const direct: Record<string, { allowed: boolean } & ReturnType<typeof summary>> = {};
  for (const c of CASES) {
    const ms: number[] = [];
    let allowed = false;
    for (let i = 0; i < N + 5; i++) {
      const r = await mutate(
        webhook.port,
        webhook.caPem,
        agent,
        c.sa === 'evil' ? 'attacker' : 'victim',
        pod(`d-${i}`, c.sa, c.extra),
      );
      if (i >= 5) ms.push(r.ms);
      allowed = r.allowed;
    }
    direct[c.name] = { allowed, ...summary(ms) };
  }

  // ---- (2) end to end through kube-apiserver: ordinary Pods alone, then with hostile creates alongside ----
  const e2e: Record<string, { outcome: string } & ReturnType<typeof summary>> = {};
  for (const c of CASES) {
    const ms: number[] = [];
    let outcome = '';
    for (let i = 0; i < N; i++) {
      const r = await create(
        kube,
        c.sa === 'evil' ? 'attacker' : 'victim',
        pod(`e-${c.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${i}`.replace(/-+/g, '-'), c.sa, c.extra),
      );
      ms.push(r.ms);
      outcome = r.outcome;
    }
    e2e[c.name] = { outcome, ...summary(ms) };
  }
  /**
   * Ordinary admissions measured one at a time while 4 loops send `background` cases alongside (none: alone), `count`
   * of them. `send` is either the API server (end to end) or the webhook directly; the loops run in their own process
   * (bench/lib/admission-load.mjs), so their client work never delays the measuring client.
   */
  const apiAuth: { ca?: Buffer; headers?: Record<string, string> } = {};
  await (await staticKubeconfig(cp.adminKubeconfig))!.auth.applyToHTTPSOptions(
    apiAuth as https.RequestOptions,
  );
  const apiUrl = new URL(cp.server);
  const alongside = async (
    label: string,
    count: number,
    background: readonly Case[],
    to: 'webhook' | 'api',
    send: (ns: string, p: Json) => Promise<{ ms: number }>,
  ) => {
    let loader: ChildProcess | undefined;
    let out = '';
    if (background.length > 0) {
      const config = path.join(RESULTS, `admission-load-${label}.json`);
      const target =
        to === 'webhook'
          ? { host: '127.0.0.1', port: webhook.port, ca: webhook.caPem }
          : {
              host: apiUrl.hostname,
              port: Number(apiUrl.port),
              ca: String(apiAuth.ca),
              authorization: apiAuth.headers?.authorization,
            };
      fs.writeFileSync(
        config,
        JSON.stringify({
          to,
          ...target,
          prefix: `${label}-bg`,
          cases: background.map((c) => ({
            namespace: c.sa === 'evil' ? 'attacker' : 'victim',
            pod: pod('x', c.sa, c.extra),
          })),
        }),
      );
      loader = spawn(
        process.execPath,
        [path.join(import.meta.dirname, 'lib', 'admission-load.mjs'), config],
        { stdio: ['pipe', 'pipe', 'inherit'] },
      );
      loader.stdout!.on('data', (d) => (out += String(d)));
      for (const deadline = Date.now() + 30_000; !out.includes('ready'); await sleep(10)) {
        if (Date.now() > deadline || loader.exitCode !== null)
          throw new Error(`admission-load did not start: ${out}`);
      }
    }
    const ms: number[] = [];
    for (let i = 0; i < count; i++) ms.push((await send('victim', pod(`${label}-${i}`, 'app'))).ms);
    let sent = 0;
    if (loader) {
      const exited = new Promise((r) => loader.once('exit', r));
      loader.stdin!.end();
      await exited;
      sent = (JSON.parse(out.split('\n').find((l) => l.startsWith('{')) ?? '{"sent":0}') as { sent: number })
        .sent;
    }
    return { ms, sent };
  };
  const viaApi = (ns: string, p: Json) => create(kube, ns, p);
  const viaWebhook = (ns: string, p: Json) => mutate(webhook.port, webhook.caPem, agent, ns, p);
  const conditions: Record<Condition, readonly Case[]> = {
    alone: [],
    withOrdinary: [CASES[0]!],
    withLarge: CASES.slice(1, 3),
    withHostile: CASES.slice(3),
  };
  /**
   * The three conditions interleaved: each round measures N/ROUNDS ordinary admissions under each, in an order that
   * rotates per round, so load changes on the shared machine fall on all three alike.
   */
  const interleaved = async (
    where: 'webhook' | 'endToEnd',
    send: (ns: string, p: Json) => Promise<{ ms: number }>,
  ): Promise<Concurrent> => {
    const to = where === 'webhook' ? 'webhook' : 'api';
    const acc = Object.fromEntries(
      CONDITIONS.map((k) => [k, { ms: [] as number[], sent: 0, loads: [] as number[] }]),
    ) as Record<Condition, { ms: number[]; sent: number; loads: number[] }>;
    for (let r = 0; r < ROUNDS; r++) {
      for (let j = 0; j < CONDITIONS.length; j++) {
        const k = CONDITIONS[(j + r) % CONDITIONS.length]!;
        const got = await alongside(
          `${where === 'webhook' ? 'w' : 'e'}${r}-${k.toLowerCase()}`,
          Math.ceil(N / ROUNDS),
          conditions[k],
          to,
          send,
        );
        acc[k].ms.push(...got.ms);
        acc[k].sent += got.sent;
        acc[k].loads.push(load1());
      }
    }
    const out = Object.fromEntries(
      CONDITIONS.map((k) => [
        k,
        { ...summary(acc[k].ms), alongside: acc[k].sent, load: round(median(acc[k].loads)) },
      ]),
    ) as unknown as Concurrent;
    const ratio = (a: Condition, b: Condition) => ({
      p50: round(out[a].p50 / out[b].p50),
      p95: round(out[a].p95 / out[b].p95),
    });
    out.ratios = {
      hostileOverLarge: ratio('withHostile', 'withLarge'),
      hostileOverOrdinary: ratio('withHostile', 'withOrdinary'),
      hostileOverAlone: ratio('withHostile', 'alone'),
    };
    log(
      `${where}: ordinary admissions p50 ${out.alone.p50} / ${out.withOrdinary.p50} / ${out.withLarge.p50} / ${out.withHostile.p50} ms (nothing / ordinary / 100 KB harmless / 100 KB hostile alongside); hostile/harmless p50 ${out.ratios.hostileOverLarge.p50}, p95 ${out.ratios.hostileOverLarge.p95} (load ${load1()})`,
    );
    return out;
  };
  const concurrent = {
    webhook: await interleaved('webhook', viaWebhook),
    endToEnd: await interleaved('endToEnd', viaApi),
  };
  agent.destroy();
  await webhook.stop();

  // ---- (4) this build and the build before issue 9's fixes, default flags, side by side ----
  const beforeAfter = BEFORE_REF ? await compareBuilds(cp.adminKubeconfig, BEFORE_REF) : undefined;

  const result = {
    when: new Date().toISOString(),
    host: { cpus: os.cpus().length, loadavg: os.loadavg().map((l) => round(l)) },
    n: N,
    webhookMutateMs: direct,
    endToEndCreateMs: e2e,
    concurrentOrdinaryMs: concurrent,
    beforeAfter,
    totalSeconds: round((Date.now() - t0) / 1000, 1),
  };
  fs.writeFileSync(path.join(RESULTS, 'admission-hostile.json'), `${JSON.stringify(result, null, 2)}\n`);
  const rows = (o: Record<string, Json>, extra: string) =>
    Object.entries(o)
      .map(([k, v]) => `| ${k} | ${v[extra]} | ${v.p50} | ${v.p95} | ${v.max} |`)
      .join('\n');
  const md = [
    `# Hostile admission benchmark (${result.when}; ${result.host.cpus} CPUs, load ${result.host.loadavg.join(' ')}; n=${N})`,
    '',
    '## Webhook /mutate over HTTPS (ms)',
    '',
    '| case | allowed | p50 | p95 | max |',
    '|---|---|---|---|---|',
    rows(direct, 'allowed'),
    '',
    '## Pod create through kube-apiserver and the webhook (ms)',
    '',
    '| case | outcome | p50 | p95 | max |',
    '|---|---|---|---|---|',
    rows(e2e, 'outcome'),
    '',
    `## Ordinary admissions with 4 loops of other admissions alongside (ms; ${ROUNDS} interleaved rounds)`,
    '',
    '| path | alongside | sent alongside | p50 | p95 | max | load |',
    '|---|---|---|---|---|---|---|',
    ...(['webhook', 'endToEnd'] as const).flatMap((where) =>
      CONDITIONS.map((k) => {
        const v = concurrent[where][k];
        return `| ${where === 'webhook' ? '/mutate' : 'kube-apiserver'} | ${CONDITION_LABEL[k]} | ${v.alongside} | ${v.p50} | ${v.p95} | ${v.max} | ${v.load} |`;
      }),
    ),
    '',
    'Goal "never delays a concurrent admission": hostile content costs a concurrent admission nothing beyond its bytes,',
    'so the figure is hostile / harmless Pods of the same size alongside (1.0 = no extra delay; docs/security.md).',
    '',
    '| path | p50 hostile / harmless 100 KB | p95 | p50 hostile / ordinary | p95 | p50 hostile / alone | p95 |',
    '|---|---|---|---|---|---|---|',
    ...(['webhook', 'endToEnd'] as const).map((where) => {
      const r = concurrent[where].ratios!;
      return `| ${where === 'webhook' ? '/mutate' : 'kube-apiserver'} | **${r.hostileOverLarge.p50}** | **${r.hostileOverLarge.p95}** | ${r.hostileOverOrdinary.p50} | ${r.hostileOverOrdinary.p95} | ${r.hostileOverAlone.p50} | ${r.hostileOverAlone.p95} |`;
    }),
    '',
    ...(beforeAfter ? beforeAfterMarkdown(beforeAfter) : []),
  ].join('\n');
  fs.writeFileSync(path.join(RESULTS, 'admission-hostile.md'), md);
  process.stdout.write(`${md}\n`);
  kube.close();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
