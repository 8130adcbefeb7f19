// The CLI against kubectl on the same real API server: whole processes, paired and interleaved runs, medians of wall
// time, CPU (user + sys) and peak RSS (GNU time). Runs the shipped bin/lanyard.js (dist/, built by `npm run
// bench:cli`). Goal: lanyard's wall time at most 1.5x kubectl's (docs/adr/0701). Writes bench/results/cli.{json,md}.
// Run: npm run bench:cli [-- --rounds 15]
// kubectl is built once from the control plane's Go module into the same cache as kube-apiserver:
//   cd tools/k8s-testbin && GOTOOLCHAIN=local CGO_ENABLED=0 go build -mod=mod -o ~/.cache/lanyard/k8s/v1.36.3/kubectl k8s.io/kubernetes/cmd/kubectl
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startControlPlane } from '../src/sandbox/control-plane.ts';
import { createKubeClient } from '../src/kube/client.ts';
import { runCli } from '../src/cli/run.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const VERSION = process.env.LANYARD_K8S_VERSION ?? 'v1.36.3';
const CACHE = process.env.LANYARD_K8S_CACHE ?? path.join(os.homedir(), '.cache', 'lanyard', 'k8s');
const KUBECTL = process.env.KUBECTL ?? path.join(CACHE, VERSION, 'kubectl');
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 15;
const TIME = '/usr/bin/time';

for (const [file, how] of [
  [
    KUBECTL,
    `build it: cd tools/k8s-testbin && GOTOOLCHAIN=local CGO_ENABLED=0 go build -mod=mod -o ${KUBECTL} k8s.io/kubernetes/cmd/kubectl (or set KUBECTL)`,
  ],
  [TIME, 'install GNU time: apt-get install time'],
  [path.join(ROOT, 'dist', 'lanyard.cjs'), 'build it: npm run build'],
] as const) {
  if (!fs.existsSync(file)) {
    console.error(`${file} is missing; ${how}`);
    process.exit(2);
  }
}

interface Sample {
  wallMs: number;
  cpuMs: number;
  rssMiB: number;
}

/** Runs one whole process under GNU time; fails on a non-zero exit. */
function measure(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  const out = path.join(os.tmpdir(), `lanyard-cli-bench-${process.pid}.time`);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(TIME, ['-f', '%U %S %M', '-o', out, cmd, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += String(c)));
    child.on('close', (code) => {
      const wallMs = performance.now() - t0;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr}`));
      const [user, sys, rssKiB] = fs
        .readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .pop()!
        .split(' ')
        .map(Number);
      resolve({ wallMs, cpuMs: (user! + sys!) * 1000, rssMiB: rssKiB! / 1024 });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

const cp = await startControlPlane();
try {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-cli-bench-home-'));
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_CONFIG_HOME: path.join(home, '.config'),
    KUBECONFIG: cp.adminKubeconfig,
  };
  const created = await runCli(['create', 'project', 'shop'], { env });
  if (created.exitCode !== 0) throw new Error(created.stderr);
  const admin = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
  for (let i = 0; i < 20; i++) {
    await admin.create('/api/v1/namespaces/shop/serviceaccounts', {
      metadata: {
        name: `app-${i}`,
        labels: { 'rbac.lanyard.dev/service-account': 'true' },
        annotations: { 'rbac.lanyard.dev/managed': 'true' },
      },
    });
  }
  admin.close();

  const lanyard = (args: string[]) =>
    measure(process.execPath, [path.join(ROOT, 'bin', 'lanyard.js'), ...args], env);
  const kubectl = (args: string[]) => measure(KUBECTL, args, env);
  const cases: { name: string; lanyard: string[]; kubectl: string[] }[] = [
    { name: '--help', lanyard: ['--help'], kubectl: ['--help'] },
    { name: 'version', lanyard: ['version'], kubectl: ['version', '--client'] },
    {
      name: 'get sas -p shop',
      lanyard: ['get', 'sas', '-p', 'shop'],
      kubectl: ['get', 'serviceaccounts', '-n', 'shop', '-l', 'rbac.lanyard.dev/service-account=true'],
    },
  ];
  const loadBefore = load();
  const rows = [];
  for (const c of cases) {
    // Warm-up: the OS page cache, Node's compile cache and kubectl's discovery cache, as on a user's machine.
    for (let i = 0; i < 2; i++) {
      await lanyard(c.lanyard);
      await kubectl(c.kubectl);
    }
    const l: Sample[] = [];
    const k: Sample[] = [];
    // Paired rounds; the order inside a pair alternates so neither side always runs second.
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2) {
        k.push(await kubectl(c.kubectl));
        l.push(await lanyard(c.lanyard));
      } else {
        l.push(await lanyard(c.lanyard));
        k.push(await kubectl(c.kubectl));
      }
    }
    const m = (xs: Sample[], f: keyof Sample) => median(xs.map((x) => x[f]));
    const row = {
      command: c.name,
      lanyard: { wallMs: m(l, 'wallMs'), cpuMs: m(l, 'cpuMs'), rssMiB: m(l, 'rssMiB') },
      kubectl: { wallMs: m(k, 'wallMs'), cpuMs: m(k, 'cpuMs'), rssMiB: m(k, 'rssMiB') },
      // Per-pair ratios, then their median: robust to load changing between rounds.
      wallRatio: median(l.map((x, i) => x.wallMs / k[i]!.wallMs)),
      load: load(),
    };
    rows.push(row);
    console.log(
      `${c.name.padEnd(16)} lanyard ${row.lanyard.wallMs.toFixed(0)} ms wall, ${row.lanyard.cpuMs.toFixed(0)} ms CPU, ${row.lanyard.rssMiB.toFixed(0)} MiB | ` +
        `kubectl ${row.kubectl.wallMs.toFixed(0)} ms, ${row.kubectl.cpuMs.toFixed(0)} ms, ${row.kubectl.rssMiB.toFixed(0)} MiB | wall ratio ${row.wallRatio.toFixed(2)} (goal <= 1.5) | load ${row.load}`,
    );
  }
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    rounds: ROUNDS,
    loadBefore,
    loadAfter: load(),
    cpus: os.cpus().length,
    rows,
  };
  const dir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'cli.json'), JSON.stringify(result, null, 2) + '\n');
  const md = [
    `# CLI vs kubectl (${result.date}, Node ${result.node}, ${result.cpus} CPUs, ${ROUNDS} paired rounds, load ${loadBefore} -> ${result.loadAfter})`,
    '',
    '| command | lanyard wall / CPU / RSS | kubectl wall / CPU / RSS | wall ratio (goal <= 1.5) | load |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| \`${r.command}\` | ${r.lanyard.wallMs.toFixed(0)} ms / ${r.lanyard.cpuMs.toFixed(0)} ms / ${r.lanyard.rssMiB.toFixed(0)} MiB | ` +
        `${r.kubectl.wallMs.toFixed(0)} ms / ${r.kubectl.cpuMs.toFixed(0)} ms / ${r.kubectl.rssMiB.toFixed(0)} MiB | ${r.wallRatio.toFixed(2)} | ${r.load} |`,
    ),
    '',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'cli.md'), md);
  fs.rmSync(home, { recursive: true, force: true });
} finally {
  await cp.stop();
  fs.rmSync(cp.dir, { recursive: true, force: true });
}
