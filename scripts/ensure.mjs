// Runs before `npm test` and `npm start` on whatever Node the machine has (20 here): installs the npm
// dependencies when they are missing (they bring Node 24, which the scripts then run on), compiles src/ into dist/
// when it is missing or stale, and builds the control-plane binaries when the cache lacks them. Each step runs only
// when needed.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

const marker = path.join(root, 'node_modules', '.package-lock.json');
const lock = path.join(root, 'package-lock.json');
const stale = !existsSync(marker) || statSync(lock).mtimeMs > statSync(marker).mtimeMs + 1000;
if (
  !existsSync(path.join(root, 'node_modules', '.bin', 'vitest')) ||
  !existsSync(path.join(root, 'node_modules', 'node', 'bin', 'node')) ||
  stale
) {
  console.error('[lanyard] installing npm dependencies (npm ci; brings Node 24 as a devDependency)');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
run(process.execPath, [path.join(root, 'scripts', 'ensure-build.mjs')]);
run(process.execPath, [path.join(root, 'scripts', 'ensure-control-plane.mjs')]);
if (process.env.npm_lifecycle_event === 'pretest')
  run('bash', [path.join(root, 'scripts', 'build-argocd-health.sh')]);
