// Compiles src/ into dist/lanyard.cjs: the JavaScript that bin/lanyard.js, the image and the npm package run (no
// TypeScript compilation at run time). One CommonJS bundle of our own code and the start path's packages:
// each module in it is evaluated only when first imported, a package outside it is required only then, and one file
// holds one V8 code cache for bin/lanyard.js to keep (docs/adr/0709-one-bundle-and-a-code-cache.md). Other npm
// dependencies stay external, resolved from node_modules. The git commit is embedded for `lanyard version`
// (docs/cli.md).
// Usage: node scripts/build.mjs [--without-sandbox]   (npm start / npm test run it when dist/ is missing or stale: scripts/ensure-build.mjs)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = path.join(ROOT, 'dist');
/** Written last by a successful build: its mtime is the build time, its content the embedded commit. */
export const STAMP = path.join(DIST, '.build-stamp.json');
/** The bundle bin/lanyard.js runs. */
export const BUNDLE = 'lanyard.cjs';

/** The commit to embed: LANYARD_COMMIT (image builds without .git), else git's HEAD, else "unknown". */
export function currentCommit() {
  if (process.env.LANYARD_COMMIT) return process.env.LANYARD_COMMIT;
  try {
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
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
    b.onResolve({ filter: /sandbox\/up\.ts$/ }, (a) => ({
      path: path.join(a.resolveDir, a.path),
      namespace: 'without-sandbox',
    }));
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

/**
 * commander requires node:child_process at load time for executable subcommands, which Lanyard never uses: it gets an
 * object that loads the module on first use (7 ms of CPU at every CLI start, docs/adr/0704). Every other built-in
 * module is an ordinary `require`.
 */
const lazyChildProcessForCommander = {
  name: 'lazy-child-process-for-commander',
  setup(b) {
    b.onResolve({ filter: /^node:child_process$|^child_process$/ }, (a) =>
      a.importer.includes(`${path.sep}node_modules${path.sep}commander${path.sep}`)
        ? { path: 'node:child_process', namespace: 'lazy-builtin' }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (a) => ({
      contents: `let m;\nmodule.exports = new Proxy({}, { get: (_, k) => (m ??= process.getBuiltinModule(${JSON.stringify(a.path)}))[k] });`,
      loader: 'js',
    }));
  },
};

/**
 * npm packages on the start path of every command are bundled (with their own dependencies): loading a package file
 * by file through Node's resolver costs 3–4× the time and ~13 MB more resident memory (docs/adr/0703). Every other
 * package stays external, resolved from node_modules when (and only when) a command imports it: the AWS SDK,
 * client-node, x509, jose.
 */
export const BUNDLED_PACKAGES = new Set([
  'commander',
  'pino',
  'prom-client',
  'yaml',
  'jsonpath-plus',
  'js-yaml',
]);
const packagesExternalButStartPath = {
  name: 'packages-external-but-start-path',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (a) => {
      // A bundled package's own dependencies are bundled with it.
      if (a.importer.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const pkg = a.path
        .split('/')
        .slice(0, a.path.startsWith('@') ? 2 : 1)
        .join('/');
      return BUNDLED_PACKAGES.has(pkg) ? undefined : { path: a.path, external: true };
    });
  },
};

/**
 * prom-client's index also loads its cluster aggregator (node:cluster, child_process) and Pushgateway (http, https,
 * zlib), which Lanyard never uses: 40 ms of CPU and 10 MB of resident memory at every start, against 20 ms and 4 MB
 * for the classes below (docs/adr/0703). A name used from prom-client that is not listed here fails the build.
 */
const promClientWithoutCluster = {
  name: 'prom-client-without-cluster',
  setup(b) {
    b.onResolve({ filter: /^prom-client$/ }, (a) =>
      a.namespace === 'prom-client' ? undefined : { path: 'prom-client', namespace: 'prom-client' },
    );
    b.onLoad({ filter: /.*/, namespace: 'prom-client' }, () => ({
      resolveDir: ROOT,
      loader: 'js',
      contents: [
        ...[
          ['Registry', 'registry'],
          ['Counter', 'counter'],
          ['Gauge', 'gauge'],
          ['Histogram', 'histogram'],
        ].map(([name, file]) => `export { default as ${name} } from 'prom-client/lib/${file}.js';`),
        // The process metrics and their eight modules are evaluated on the first call, not at import: a webhook
        // registers them once it is listening, off the path to its first answer (docs/adr/0707-webhook-start-path.md).
        `export function collectDefaultMetrics(config) { return require('prom-client/lib/defaultMetrics.js')(config); }`,
      ].join('\n'),
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
    outfile: path.join(out, BUNDLE),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node24',
    // Whitespace and syntax minified, identifiers left as written: functions and classes keep their own names (stack
    // traces, pino's error `type`) without `keepNames`, whose helper ran at every closure created, on every admission
    // (docs/adr/0709-one-bundle-and-a-code-cache.md). The source map beside the bundle maps lines back to src/.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    // Licence texts of bundled packages are kept, in dist/lanyard.cjs.LEGAL.txt.
    legalComments: 'linked',
    // `import.meta` has no meaning in CommonJS: the few modules using it see the bundle's own location.
    banner: { js: "var __import_meta_url=require('node:url').pathToFileURL(__filename).href;" },
    define: {
      __LANYARD_COMMIT__: JSON.stringify(commit),
      'import.meta.url': '__import_meta_url',
      'import.meta.dirname': '__dirname',
      'import.meta.filename': '__filename',
    },
    logLevel: 'warning',
    plugins: [
      lazyChildProcessForCommander,
      promClientWithoutCluster,
      packagesExternalButStartPath,
      ...(sandbox ? [] : [withoutSandbox]),
    ],
  });
  // bin/lanyard.js reads the bundle as latin1 (one byte per character, no UTF-8 decoding): esbuild writes ASCII only
  // (non-ASCII characters escaped, comments dropped); a byte above 127 would be read wrongly, so it fails the build.
  const bytes = fs.readFileSync(path.join(out, BUNDLE));
  const nonAscii = bytes.findIndex((b) => b > 127);
  if (nonAscii >= 0)
    throw new Error(
      `${BUNDLE}: byte ${nonAscii} is not ASCII: ${bytes.subarray(nonAscii - 40, nonAscii + 20)}`,
    );
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
