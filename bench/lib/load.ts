// Load generators shared by the webhook benchmarks (bench:webhook, bench:hostile): wrk for throughput and
// bench/fixed-rate.go for latency at a fixed rate, pinned to the client core while servers run on the other.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const SERVER_CPU = '0';
export const CLIENT_CPU = '1';
const BENCH_DIR = path.resolve(import.meta.dirname, '..');
const BINARY_CACHE = path.join(os.homedir(), '.cache', 'lanyard', 'bench');

/** Builds bench/`source` (a Go main package of one file) once per source version into the cache; returns the binary. */
export function goBinary(source: string, log: (s: string) => void): string {
  const src = path.join(BENCH_DIR, source);
  const hash = createHash('sha256').update(fs.readFileSync(src)).digest('hex').slice(0, 12);
  const bin = path.join(BINARY_CACHE, `${path.basename(source, '.go')}-${hash}`);
  if (!fs.existsSync(bin)) {
    log(`building bench/${source} with Go`);
    fs.mkdirSync(BINARY_CACHE, { recursive: true });
    execFileSync('go', ['build', '-o', bin, src], { stdio: 'inherit', cwd: BINARY_CACHE });
  }
  return bin;
}

/** The Go webhook Lanyard replaces, at the version the figures were taken with. */
export const REFERENCE_WEBHOOK_MODULE = 'github.com/aws/amazon-eks-pod-identity-webhook@v0.6.17';

/**
 * Builds aws/amazon-eks-pod-identity-webhook from the Go module proxy once into the cache (about a minute the first
 * time); returns the binary. The benchmarks measure it as a peer in the same rounds, so its figures and Lanyard's
 * share the machine's load.
 */
export function referenceWebhookBinary(log: (s: string) => void): string {
  const version = REFERENCE_WEBHOOK_MODULE.split('@')[1]!;
  const dir = path.join(BINARY_CACHE, `amazon-eks-pod-identity-webhook-${version}`);
  const bin = path.join(dir, 'amazon-eks-pod-identity-webhook');
  if (!fs.existsSync(bin)) {
    log(`building ${REFERENCE_WEBHOOK_MODULE} with Go (go install through the module proxy)`);
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('go', ['install', REFERENCE_WEBHOOK_MODULE], {
      stdio: 'inherit',
      cwd: dir,
      env: { ...process.env, GOBIN: dir },
    });
  }
  return bin;
}

/** The 1-minute load average, printed beside every figure (the machines are shared). */
export const load1 = (): number => Math.round(os.loadavg()[0]! * 100) / 100;

/** Installs wrk (Debian package) when missing; another process may hold the dpkg lock on a shared machine. */
export function ensureWrk(log: (s: string) => void): void {
  if (spawnSync('wrk', ['--version']).error === undefined) return;
  log('installing wrk (Debian package)');
  for (let attempt = 0; attempt < 10; attempt++) {
    const upd = attempt === 0 ? spawnSync('apt-get', ['update'], { stdio: 'inherit' }) : { status: 0 };
    const inst =
      upd.status === 0 ? spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit' }) : upd;
    if (inst.status === 0) return;
    execFileSync('sleep', ['10']);
  }
  throw new Error('could not install wrk with apt-get');
}

/** `cmd args` under taskset on `cpu` (taskset execs, so the pid is the command's). */
export function pinned(
  cpu: string,
  cmd: string,
  args: string[],
  stdout: 'pipe' | number,
  stderr: 'inherit' | number = 'inherit',
): ChildProcess {
  return spawn('taskset', ['-c', cpu, cmd, ...args], { stdio: ['ignore', stdout, stderr] });
}

/** wrk's POST script for `body`, written under `dir`. */
export function wrkScript(dir: string, body: string): string {
  const file = path.join(dir, 'wrk-post.lua');
  fs.writeFileSync(
    file,
    `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [==[${body}]==]\n`,
  );
  return file;
}

/** Requests per second; `bad` counts non-2xx answers and socket errors, `slow` requests wrk gave up on after 2 s. */
export function wrk(
  port: number,
  connections: number,
  seconds: number,
  script: string,
): Promise<{ rps: number; bad: number; slow: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn('taskset', [
      '-c',
      CLIENT_CPU,
      'wrk',
      '-t1',
      `-c${connections}`,
      `-d${seconds}s`,
      '-s',
      script,
      `https://127.0.0.1:${port}/mutate?timeout=10s`,
    ]);
    let out = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (out += c));
    p.on('exit', () => {
      const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const bad = non2xx + (sock ? sock.slice(1, 4).reduce((a, b) => a + Number(b), 0) : 0);
      const slow = sock ? Number(sock[4]) : 0;
      if (Number.isNaN(rps)) reject(new Error(`wrk output not understood:\n${out}`));
      else resolve({ rps, bad, slow });
    });
  });
}

/** Latency quantiles (ms) of `rate` POSTs per second for `seconds`, open loop (bench/fixed-rate.go). */
export function fixedRate(
  port: number,
  bodyFile: string,
  rate: number,
  seconds: number,
  log: (s: string) => void = () => {},
): Promise<{ p50: number; p90: number; p99: number; p999: number; max: number; errors: number }> {
  const bin = goBinary('fixed-rate.go', log);
  return new Promise((resolve, reject) => {
    const p = spawn('taskset', [
      '-c',
      CLIENT_CPU,
      bin,
      `https://127.0.0.1:${port}/mutate?timeout=10s`,
      bodyFile,
      String(rate),
      String(seconds),
    ]);
    let out = '';
    let err = '';
    p.stdout.on('data', (c) => (out += c));
    p.stderr.on('data', (c) => (err += c));
    p.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`fixed-rate exited ${code}: ${err}`)),
    );
  });
}
