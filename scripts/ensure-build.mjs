// Rebuilds dist/ when it is missing or older than any input (src/**, package.json, the build script) or was built
// at another commit. Cheap when fresh (a walk of src/ comparing mtimes). Runs from scripts/ensure.mjs (npm start,
// npm test) and as a vitest globalSetup, so tests that spawn the shipped `lanyard` always run current code.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, currentCommit, ROOT, STAMP } from './build.mjs';

function newestInput() {
  let newest = 0;
  const visit = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
        newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  visit(path.join(ROOT, 'src'));
  for (const f of ['package.json', 'scripts/build.mjs'])
    newest = Math.max(newest, fs.statSync(path.join(ROOT, f)).mtimeMs);
  return newest;
}

/** Why dist/ must be rebuilt, or undefined when it is current. */
export function staleReason() {
  if (!fs.existsSync(STAMP)) return 'dist/ is missing';
  if (fs.statSync(STAMP).mtimeMs < newestInput()) return 'sources changed since the last build';
  const { commit } = JSON.parse(fs.readFileSync(STAMP, 'utf8'));
  if (commit !== currentCommit()) return `built at commit ${commit}`;
  return undefined;
}

export async function ensureBuild() {
  const reason = staleReason();
  if (!reason) return;
  const started = Date.now();
  const { commit } = await build();
  console.error(`[lanyard] built dist/ (${reason}; commit ${commit}) in ${Date.now() - started} ms`);
}

/** vitest globalSetup entry. */
export const setup = ensureBuild;

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await ensureBuild();
