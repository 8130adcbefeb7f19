// docs/projects-and-tokens.md: `get sas` over 1,000 accounts, token creation with the real token controller, `get roles` over
// 200 roles. Runs the CLI in-process against a real control plane; writes bench/results/projects.{json,md}.
// Run: npx tsx bench/projects.bench.ts   (figures are reported, never gate a test run)
import fs from 'node:fs';
import path from 'node:path';
import { startControlPlane } from '../src/sandbox/control-plane.ts';
import { createKubeClient, type KubeClient } from '../src/kube/client.ts';
import { runCli } from '../src/cli/run.ts';
import { roleTrio } from '../src/projects/objects.ts';

interface Result {
  name: string;
  runs: number;
  medianMs: number;
  p95Ms: number;
  limitMs: number;
  pass: boolean;
}

function quantile(sorted: number[], q: number): number {
  const i = Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1);
  return sorted[Math.max(0, i)]!;
}

function summarize(name: string, samples: number[], limitMs: number): Result {
  const s = [...samples].sort((a, b) => a - b);
  const p95 = quantile(s, 0.95);
  return {
    name,
    runs: s.length,
    medianMs: round(quantile(s, 0.5)),
    p95Ms: round(p95),
    limitMs,
    pass: p95 < limitMs,
  };
}
const round = (n: number) => Math.round(n * 10) / 10;

async function inBatches<T>(items: T[], size: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

const cp = await startControlPlane();
const admin: KubeClient = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
const env = { HOME: cp.dir, XDG_CONFIG_HOME: path.join(cp.dir, 'xdg'), KUBECONFIG: cp.adminKubeconfig };
const cli = async (argv: string[], onRequest?: () => void) => {
  const r = await runCli(argv, { env, io: onRequest ? { onRequest } : {} });
  if (r.exitCode !== 0) throw new Error(`lanyard ${argv.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r;
};
const results: Result[] = [];
try {
  await cli(['create', 'project', 'bench']);

  // 1. get sas over 1,000 labelled ServiceAccounts.
  await inBatches([...Array(1000).keys()], 25, (i) =>
    admin.create('/api/v1/namespaces/bench/serviceaccounts', {
      metadata: {
        name: `sa-${String(i).padStart(4, '0')}`,
        labels: { 'rbac.lanyard.dev/service-account': 'true' },
        annotations: { 'rbac.lanyard.dev/managed': 'true' },
      },
    }),
  );
  const sas: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const r = await cli(['get', 'sas', '-p', 'bench']);
    sas.push(performance.now() - t0);
    if (r.stdout.split('\n').length !== 1002) throw new Error('get sas did not list 1,000 accounts');
  }
  results.push(summarize('get sas over 1,000 service accounts (20 runs)', sas, 1000));

  // 2. Token creation with the real token controller, from the first request to the token printed.
  const tokens: number[] = [];
  for (let i = 0; i < 50; i++) {
    let first = 0;
    const r = await cli(['create', 'sat', `tok-${i}`, '--service-account', 'sa-0000', '-p', 'bench'], () => {
      first ||= performance.now();
    });
    tokens.push(performance.now() - first);
    if (!r.stdout.startsWith('eyJ')) throw new Error('no token printed');
  }
  results.push(summarize('create sat with the real token controller (50 sequential)', tokens, 2000));

  // 3. get roles over 200 trios (plus the three built-in ones).
  await inBatches([...Array(200).keys()], 10, async (i) => {
    const t = roleTrio({
      project: 'bench',
      name: `role-${String(i).padStart(3, '0')}`,
      rules: [{ apiGroups: ['lanyard.dev'], resources: ['stages'], verbs: ['get'] }],
    });
    await admin.create('/apis/rbac.authorization.k8s.io/v1/namespaces/bench/roles', t.role);
    await admin.create('/api/v1/namespaces/bench/serviceaccounts', t.serviceAccount);
    await admin.create('/apis/rbac.authorization.k8s.io/v1/namespaces/bench/rolebindings', t.roleBinding);
  });
  const roles: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const r = await cli(['get', 'roles', '-p', 'bench']);
    roles.push(performance.now() - t0);
    if (r.stdout.split('\n').length !== 205) throw new Error('get roles did not list 203 roles');
  }
  results.push(summarize('get roles over 200 roles (20 runs)', roles, 1000));
} finally {
  admin.close();
  await cp.stop();
  fs.rmSync(cp.dir, { recursive: true, force: true });
}

const out = path.resolve(import.meta.dirname, 'results');
fs.mkdirSync(out, { recursive: true });
const at = new Date().toISOString();
fs.writeFileSync(path.join(out, 'projects.json'), JSON.stringify({ at, results }, null, 2) + '\n');
const md = [
  `# projects benchmarks (${at})`,
  '',
  '| target | runs | median ms | p95 ms | limit (p95) | |',
  '|---|---|---|---|---|---|',
  ...results.map(
    (r) =>
      `| ${r.name} | ${r.runs} | ${r.medianMs} | ${r.p95Ms} | < ${r.limitMs} | ${r.pass ? 'ok' : 'OVER'} |`,
  ),
  '',
].join('\n');
fs.writeFileSync(path.join(out, 'projects.md'), md);
process.stdout.write(md);
