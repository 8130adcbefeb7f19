// Admission of hostile Pods (issue: ReDoS in IdentityPolicy matching; docs/verified-start.md, "Role ARNs"): a Pod
// carrying a 100 KB annotation, a 100 KB env value, a 100 KB AWS_ROLE_ARN, or using a ServiceAccount whose role-arn
// annotation is 100 KB, under a policy whose pattern (`*-*-reader`) made a backtracking matcher cubic. Goal: each
// admission < 10 ms in the webhook, and none delays a concurrent ordinary admission.
// What ships is measured: the real `lanyard webhook --identity-gate` process (bin/lanyard.js, default flags and log
// level, logs to bench/results/admission-hostile-webhook.log), two ways, side by side in one run: (1) its /mutate over
// HTTPS with the AdmissionReview the API server would send (webhook time only), (2) Pod creates through the real
// kube-apiserver and its MutatingWebhookConfiguration (end to end), ordinary Pods alone and while hostile creates run
// alongside.
// Writes bench/results/admission-hostile.{json,md}; never fails a test run.
// Run: npm run bench:hostile   (BENCH_N=N admissions per case; default 60)
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { freePort, startControlPlane } from '../src/sandbox/control-plane.ts';
import { createKubeClient, KubeApiError, type Json, type KubeClient } from '../src/kube/client.ts';
import { applyCrds } from '../src/kube/apply.ts';
import { CRD_DIR } from '../src/sandbox/paths.ts';
import { tlsFilesFixture } from '../test/fixtures/webhook.ts';
import { sleep } from '../src/runtime/clock.ts';

const N = Number(process.env.BENCH_N ?? 60);
const KB100 = 100 * 1024;
const ROLE = 'arn:aws:iam::111122223333:role/app-x-reader';
const HOSTILE_ARN = `arn:aws:iam::${':role/-'.repeat(Math.ceil(KB100 / 7))}x`;
const BLOB = 'x'.repeat(KB100);

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const summary = (xs: number[]) => ({ n: xs.length, p50: round(pct(xs, 50)), p95: round(pct(xs, 95)), max: round(Math.max(...xs)) });

function pod(name: string, sa: string, extra: { annotations?: Record<string, string>; env?: Json[] } = {}): Json {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { serviceAccountName: sa, automountServiceAccountToken: false,
      containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', ...(extra.env ? { env: extra.env } : {}) }] },
  };
}

type Case = { name: string; sa: string; extra: Parameters<typeof pod>[2] };
const CASES: Case[] = [
  { name: 'ordinary', sa: 'app', extra: {} },
  { name: '100 KB annotation', sa: 'app', extra: { annotations: { 'example.com/blob': BLOB } } },
  { name: '100 KB env value', sa: 'app', extra: { env: [{ name: 'BLOB', value: BLOB }] } },
  { name: '100 KB AWS_ROLE_ARN env', sa: 'app', extra: { env: [{ name: 'AWS_ROLE_ARN', value: HOSTILE_ARN },
    { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token' }] } },
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
function mutate(port: number, ca: string, agent: https.Agent, namespace: string, object: Json): Promise<{ ms: number; allowed: boolean }> {
  const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: {
    uid: randomUUID(), kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' },
    requestKind: { group: '', version: 'v1', kind: 'Pod' }, requestResource: { group: '', version: 'v1', resource: 'pods' },
    name: object.metadata.name, namespace, operation: 'CREATE', userInfo: { username: 'bench' },
    object: { ...object, metadata: { ...object.metadata, namespace } }, dryRun: false, options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' } } });
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = https.request({ host: '127.0.0.1', port, path: '/mutate?timeout=10s', method: 'POST', ca, agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const ms = performance.now() - started;
        try {
          resolve({ ms, allowed: JSON.parse(Buffer.concat(chunks).toString('utf8')).response?.allowed === true });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function create(kube: KubeClient, namespace: string, object: Json): Promise<{ ms: number; outcome: string }> {
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
async function spawnWebhook(kubeconfig: string): Promise<{ port: number; caPem: string; proc: ChildProcess; stop(): Promise<void> }> {
  const tls = await tlsFilesFixture();
  const [port, metricsPort] = [await freePort(), await freePort()];
  fs.mkdirSync(RESULTS, { recursive: true });
  const fd = fs.openSync(path.join(RESULTS, 'admission-hostile-webhook.log'), 'w');
  const proc = spawn(process.execPath, [path.join(import.meta.dirname, '..', 'bin', 'lanyard.js'), 'webhook', `--kubeconfig=${kubeconfig}`,
    `--port=${port}`, `--metrics-port=${metricsPort}`, `--tls-cert=${tls.certFile}`, `--tls-key=${tls.keyFile}`, '--cluster-name=bench',
    '--identity-gate'], { stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(50)) {
    if (proc.exitCode !== null) throw new Error(`lanyard webhook exited with ${proc.exitCode}; see bench/results/admission-hostile-webhook.log`);
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) return { port, caPem: tls.caPem, proc, stop };
  }
  await stop();
  throw new Error('lanyard webhook not ready within 120 s');
}

async function main() {
  const t0 = Date.now();
  const cp = await startControlPlane({ log: () => undefined });
  const kube = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
  await applyCrds(kube, CRD_DIR);
  await ns(kube, 'lanyard-system', {});
  const label = { 'lanyard-bench': 'hostile' };
  await ns(kube, 'victim', label);
  await ns(kube, 'attacker', label);
  await kube.create('/apis/lanyard.dev/v1alpha1/identitypolicies', { apiVersion: 'lanyard.dev/v1alpha1', kind: 'IdentityPolicy', metadata: { name: 'readers' },
    spec: { rules: [{ namespaceSelector: {}, serviceAccounts: ['*'], roles: ['arn:aws:iam::*:role/*-*-reader'] }] } });
  for (const n of ['victim', 'attacker']) {
    await kube.create(`/api/v1/namespaces/${n}/serviceaccounts`, { metadata: { name: 'app', annotations: { 'eks.amazonaws.com/role-arn': ROLE } } });
  }
  await kube.create('/api/v1/namespaces/attacker/serviceaccounts', { metadata: { name: 'evil', annotations: { 'eks.amazonaws.com/role-arn': HOSTILE_ARN } } });

  const webhook = await spawnWebhook(cp.adminKubeconfig);
  await kube.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
    metadata: { name: 'lanyard-bench-hostile' },
    webhooks: [{ name: 'pod-identity.lanyard.dev', clientConfig: { url: `https://127.0.0.1:${webhook.port}/mutate`, caBundle: Buffer.from(webhook.caPem).toString('base64') },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }], namespaceSelector: { matchLabels: label },
      failurePolicy: 'Fail', sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 10 }],
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
      const r = await mutate(webhook.port, webhook.caPem, agent, c.sa === 'evil' ? 'attacker' : 'victim', pod(`d-${i}`, c.sa, c.extra));
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
      const r = await create(kube, c.sa === 'evil' ? 'attacker' : 'victim', pod(`e-${c.name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}-${i}`.replace(/-+/g, '-'), c.sa, c.extra));
      ms.push(r.ms);
      outcome = r.outcome;
    }
    e2e[c.name] = { outcome, ...summary(ms) };
  }
  /**
   * Ordinary admissions measured one at a time while 4 loops send `background` cases alongside (none: alone).
   * `send` is either the API server (end to end) or the webhook directly.
   */
  const alongside = async (label: string, background: Case[], send: (ns: string, p: Json) => Promise<{ ms: number }>) => {
    let running = true;
    let sent = 0;
    const loops = background.length === 0 ? [] : Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; running; i++) {
        const c = background[(i + w) % background.length]!;
        await send(c.sa === 'evil' ? 'attacker' : 'victim', pod(`${label}-bg-${w}-${i}`, c.sa, c.extra));
        sent++;
      }
    });
    const ms: number[] = [];
    for (let i = 0; i < N; i++) ms.push((await send('victim', pod(`${label}-${i}`, 'app'))).ms);
    running = false;
    await Promise.all(loops);
    return { ...summary(ms), alongside: sent };
  };
  const hostile = CASES.slice(1);
  const ordinary = [CASES[0]!];
  const viaApi = (ns: string, p: Json) => create(kube, ns, p);
  const viaWebhook = (ns: string, p: Json) => mutate(webhook.port, webhook.caPem, agent, ns, p);
  const concurrent = {
    webhook: {
      alone: await alongside('wa', [], viaWebhook),
      withOrdinary: await alongside('wo', ordinary, viaWebhook),
      withHostile: await alongside('wh', hostile, viaWebhook),
    },
    endToEnd: {
      alone: await alongside('ea', [], viaApi),
      withOrdinary: await alongside('eo', ordinary, viaApi),
      withHostile: await alongside('eh', hostile, viaApi),
    },
  };

  const result = {
    when: new Date().toISOString(), host: { cpus: os.cpus().length, loadavg: os.loadavg().map((l) => round(l)) }, n: N,
    webhookMutateMs: direct, endToEndCreateMs: e2e,
    concurrentOrdinaryMs: concurrent,
    totalSeconds: round((Date.now() - t0) / 1000, 1),
  };
  fs.writeFileSync(path.join(RESULTS, 'admission-hostile.json'), `${JSON.stringify(result, null, 2)}\n`);
  const rows = (o: Record<string, Json>, extra: string) => Object.entries(o).map(([k, v]) => `| ${k} | ${v[extra]} | ${v.p50} | ${v.p95} | ${v.max} |`).join('\n');
  const md = [
    `# Hostile admission benchmark (${result.when}; ${result.host.cpus} CPUs, load ${result.host.loadavg.join(' ')}; n=${N})`,
    '', '## Webhook /mutate over HTTPS (ms)', '', '| case | allowed | p50 | p95 | max |', '|---|---|---|---|---|', rows(direct, 'allowed'),
    '', '## Pod create through kube-apiserver and the webhook (ms)', '', '| case | outcome | p50 | p95 | max |', '|---|---|---|---|---|', rows(e2e, 'outcome'),
    '', '## Ordinary admissions with 4 loops of other admissions alongside (ms)', '',
    '| path | alongside | sent alongside | p50 | p95 | max |', '|---|---|---|---|---|---|',
    ...(['webhook', 'endToEnd'] as const).flatMap((where) => (['alone', 'withOrdinary', 'withHostile'] as const).map((k) => {
      const v = concurrent[where][k];
      return `| ${where === 'webhook' ? '/mutate' : 'kube-apiserver'} | ${k === 'alone' ? 'nothing' : k === 'withOrdinary' ? 'ordinary Pods' : 'hostile Pods (4 cases)'} | ${v.alongside} | ${v.p50} | ${v.p95} | ${v.max} |`;
    })),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(RESULTS, 'admission-hostile.md'), md);
  process.stdout.write(`${md}\n`);
  agent.destroy();
  await webhook.stop();
  kube.close();
  await cp.stop();
}

main().then(() => process.exit(0), (e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
