// A checkout of a git ref beside this one, for benchmarks that run "before" and "now" side by side.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Exports `ref` into `<cache>/before/<commit>` once and links this checkout's node_modules into it (every time). */
export function beforeCheckout(root: string, cache: string, ref: string): string {
  const commit = execFileSync('git', ['rev-parse', ref], { cwd: root, encoding: 'utf8' }).trim();
  const dir = path.join(cache, 'before', commit.slice(0, 12));
  if (!fs.existsSync(path.join(dir, 'bin', 'lanyard.js'))) {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C ${JSON.stringify(dir)}`], { cwd: root });
  }
  // Always this checkout's: a link left by another checkout (a removed worktree) dangles, and existsSync follows links.
  const link = path.join(dir, 'node_modules');
  try {
    fs.unlinkSync(link); // rmSync({ force }) leaves a dangling link in place
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.symlinkSync(path.join(root, 'node_modules'), link);
  return dir;
}
