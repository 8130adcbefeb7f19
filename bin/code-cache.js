// Runs the compiled bundle (dist/lanyard.cjs) through vm.Script with a V8 code cache written at the end of a run, so
// the cache holds every function that run compiled. Node's own compile cache keeps only what V8 compiled before a
// module ran (its top level): every function a command calls would be compiled again at every start
// (docs/adr/0709-one-bundle-and-a-code-cache.md). This file runs before any module of the product exists, so it reads
// the two environment variables it needs itself, as src/config/compile-cache.ts does for Node's cache.
const fs = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');
const vm = process.getBuiltinModule('node:vm');
const { createRequire, wrap } = process.getBuiltinModule('node:module');

/** The user's cache directory (never the shared temp directory); none without XDG_CACHE_HOME or HOME. */
export function codeCacheDir(env) {
  const cache = env.XDG_CACHE_HOME || (env.HOME ? path.join(env.HOME, '.cache') : undefined);
  return cache ? path.join(cache, 'lanyard', 'code-cache') : undefined;
}

/**
 * One cache per build of the bundle and per Node: V8 checks its own version, its flags and the source's length, not
 * the source itself, so a rebuilt bundle of the same length must never meet the previous build's cache.
 */
export function cacheName(stat) {
  return `lanyard-${process.version}-${process.arch}-${stat.size}-${Math.trunc(stat.mtimeMs)}-${stat.ino}`;
}

/** A command's first two words (verb and noun): the first run of each adds the functions it compiled to the cache. */
export function commandKey(argv) {
  return argv
    .filter((a) => !a.startsWith('-'))
    .slice(0, 2)
    .join(' ');
}

/**
 * Owned by this user and writable by nobody else. A cache is code the process runs: one planted by another user (a
 * shared XDG_CACHE_HOME, a directory made by someone else) must be neither read nor written to.
 */
const isPrivate = (stat) =>
  (process.getuid === undefined || stat.uid === process.getuid()) && (stat.mode & 0o022) === 0;

/** The cache file's bytes when it and its directory are private; otherwise none, as if it were missing. */
function readPrivate(dir, file) {
  try {
    if (!isPrivate(fs.statSync(dir))) return undefined;
    const fd = fs.openSync(file, 'r');
    try {
      return isPrivate(fs.fstatSync(fd)) ? fs.readFileSync(fd) : undefined;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

/** The commands a cache covers; none when its list is missing or damaged (the cache is then written again). */
function commandsCovered(file) {
  try {
    const list = JSON.parse(fs.readFileSync(file, 'utf8'));
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** Writes the cache and the commands it covers (each by a rename, so a reader never sees half a file). */
function save(dir, name, script, commands) {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Before making the cache (tens of milliseconds): a read-only or shared directory stops here.
    fs.accessSync(dir, fs.constants.W_OK);
    if (!isPrivate(fs.statSync(dir))) return;
    for (const [file, data] of [
      [`${name}.bin`, script.createCachedData()],
      [`${name}.json`, JSON.stringify(commands)],
    ]) {
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, data, { mode: 0o600 });
      fs.renameSync(tmp, file);
    }
    // Caches of earlier builds or Node versions not written for a day: another install used beside this one (a
    // global one and a checkout) loses its cache at most once a day.
    const dayAgo = Date.now() - 86_400_000;
    for (const f of fs.readdirSync(dir)) {
      const other = path.join(dir, f);
      if (
        f.startsWith('lanyard-') &&
        !f.startsWith(path.basename(name) + '.') &&
        fs.statSync(other).mtimeMs < dayAgo
      )
        fs.rmSync(other, { force: true });
    }
  } catch {
    // A read-only or full cache directory (a container's root filesystem): the next start compiles again.
  }
}

/** Runs `bundle` (a CommonJS file) as the main program for `argv`, with its code cache when there is one. */
export function runBundle(bundle, argv, env) {
  const fd = fs.openSync(bundle, 'r');
  const stat = fs.fstatSync(fd);
  // The build guarantees ASCII (scripts/build.mjs): latin1 makes a one-byte string without decoding UTF-8.
  const source = fs.readFileSync(fd, 'latin1');
  fs.closeSync(fd);
  const dir = codeCacheDir(env);
  const name = dir && path.join(dir, cacheName(stat));
  const cached = name && readPrivate(dir, `${name}.bin`);
  const script = new vm.Script(wrap(source), {
    filename: bundle,
    cachedData: cached,
    // `import()` inside the bundle (packages outside it) goes through Node's own ESM loader.
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const usable = cached !== undefined && !script.cachedDataRejected;
  const covered = usable ? commandsCovered(`${name}.json`) : [];
  const command = commandKey(argv);
  if (name && !covered.includes(command))
    process.once('exit', () => save(dir, name, script, [...covered, command]));
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundle), module, bundle, path.dirname(bundle));
}
