// Where Node keeps V8's compiled code between runs of the CLI (docs/adr/0704-cli-get-path.md): the user's
// cache directory, kept across reboots and never shared with another user (the OS temp directory is both), unless
// NODE_COMPILE_CACHE names another. No directory (no HOME): Node's own default.

/** The compile cache directory for `env`, or undefined for Node's default (NODE_COMPILE_CACHE, else the temp dir). */
export function compileCacheDir(env: Readonly<Record<string, string | undefined>>): string | undefined {
  if (env.NODE_COMPILE_CACHE) return undefined;
  const cache = env.XDG_CACHE_HOME || (env.HOME ? `${env.HOME}/.cache` : undefined);
  return cache ? `${cache}/lanyard/compile-cache` : undefined;
}

/** Turns the compile cache on for every module loaded after this call; silently off where nothing is writable. */
export function enableCompileCache(): void {
  const module = process.getBuiltinModule('node:module');
  module.enableCompileCache?.(compileCacheDir(process.env));
}
