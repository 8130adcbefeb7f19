// Compiles src/ into dist/: the JavaScript that bin/lanyard.js, the image and the npm package run (no TypeScript
// compilation at run time). One esbuild bundle of our own code with code splitting, so every subcommand's
// `import()` becomes a chunk that is loaded only when that subcommand runs; npm dependencies stay external and are
// resolved from node_modules. The git commit is embedded for `lanyard version` (docs/cli.md).
// Usage: node scripts/build.mjs [--without-sandbox]   (npm start / npm test run it when dist/ is missing or stale: scripts/ensure-build.mjs)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = path.join(ROOT, 'dist');
/** Written last by a successful build: its mtime is the build time, its content the embedded commit. */
export const STAMP = path.join(DIST, '.build-stamp.json');

/** The commit to embed: LANYARD_COMMIT (image builds without .git), else git's HEAD, else "unknown". */
export function currentCommit() {
  if (process.env.LANYARD_COMMIT) return process.env.LANYARD_COMMIT;
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
    return head.toString().trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * `--without-sandbox` (the image): `lanyard up` and everything only it imports (the local control plane, the AWS
 * simulator) are left out; the command stays and says where it is available.
 */
const withoutSandbox = {
  name: 'without-sandbox',
  setup(b) {
    b.onResolve({ filter: /sandbox\/up\.ts$/ }, (a) => ({ path: path.join(a.resolveDir, a.path), namespace: 'without-sandbox' }));
    b.onLoad({ filter: /.*/, namespace: 'without-sandbox' }, () => ({
      resolveDir: path.join(ROOT, 'src', 'sandbox'),
      loader: 'ts',
      contents: `
        import type { Command } from 'commander';
        import { CliError, EXIT } from '../cli/exit.ts';
        export function registerUpCommand(program: Command): void {
          program.command('up').description('Start the local sandbox (not part of this build: run it from a source checkout with npm start)')
            .allowUnknownOption(true).allowExcessArguments(true)
            .action(() => { throw new CliError('lanyard up is not part of this build; run it from a source checkout: npm start', EXIT.usage); });
        }`,
    }));
  },
};

export async function build({ sandbox = true } = {}) {
  const { build: esbuild } = await import('esbuild');
  const commit = currentCommit();
  // Built beside dist/ and swapped in, so a process running the previous build never sees a half-written one.
  const out = `${DIST}.tmp-${process.pid}`;
  fs.rmSync(out, { recursive: true, force: true });
  await esbuild({
    absWorkingDir: ROOT,
    entryPoints: ['src/main.ts'],
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    packages: 'external',
    chunkNames: 'chunks/[name]-[hash]',
    define: { __LANYARD_COMMIT__: JSON.stringify(commit) },
    logLevel: 'warning',
    plugins: sandbox ? [] : [withoutSandbox],
  });
  fs.writeFileSync(path.join(out, path.basename(STAMP)), JSON.stringify({ commit }) + '\n');
  // Two renames, so dist/ is missing only between them; the old build is removed afterwards.
  const old = `${DIST}.old-${process.pid}`;
  if (fs.existsSync(DIST)) fs.renameSync(DIST, old);
  fs.renameSync(out, DIST);
  fs.rmSync(old, { recursive: true, force: true });
  return { commit };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  const { commit } = await build({ sandbox: !process.argv.includes('--without-sandbox') });
  console.error(`[lanyard] built dist/ (commit ${commit}) in ${Date.now() - started} ms`);
}
