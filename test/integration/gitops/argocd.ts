// Runs tools/argocd-health: Argo CD's own health evaluation and diff, built from the Argo CD Go module by
// scripts/build-argocd-health.sh (cached; built only when missing). See docs/gitops.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Json } from '../../../src/kube/client.ts';
import { PACKAGE_ROOT } from '../../../src/sandbox/paths.ts';

export const ARGOCD_DIR = path.join(PACKAGE_ROOT, 'deploy/argocd');
export const ARGOCD_CM = path.join(ARGOCD_DIR, 'argocd-cm.yaml');

/** A cold build takes minutes; `npm test` runs it before vitest (scripts/ensure.mjs), so this is the cache hit. */
export const BUILD_TIMEOUT_MS = 45 * 60_000;

let binary: string | undefined;
export function argocdHealthBinary(): string {
  binary ??= execFileSync('bash', [path.join(PACKAGE_ROOT, 'scripts/build-argocd-health.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: BUILD_TIMEOUT_MS,
  }).trim();
  return binary;
}

export interface Health {
  kind: string;
  name: string;
  status: string;
  message: string;
}

const list = (items: Json[]) => JSON.stringify({ apiVersion: 'v1', kind: 'List', items });

/** Argo CD's health of each object, with the health scripts of deploy/argocd/argocd-cm.yaml. */
export function argocdHealth(objects: Json[], argocdCm = ARGOCD_CM): Health[] {
  const out = execFileSync(argocdHealthBinary(), ['health', '--argocd-cm', argocdCm, '--object', '-'], {
    input: list(objects),
    encoding: 'utf8',
  });
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Health);
}

export interface Diff {
  kind: string;
  name: string;
  modified: boolean;
  normalizedLive?: Json;
  predictedLive?: Json;
}

/** Argo CD's diff (argo.StateDiffs) of desired against live objects under an Application's ignoreDifferences. */
export function argocdDiff(application: Json, desired: Json[], live: Json[]): Diff[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'argocd-diff-'));
  try {
    const write = (name: string, body: string) => {
      fs.writeFileSync(path.join(dir, name), body);
      return path.join(dir, name);
    };
    const out = execFileSync(
      argocdHealthBinary(),
      [
        'diff',
        '--application',
        write('app.json', JSON.stringify(application)),
        '--desired',
        write('desired.json', list(desired)),
        '--live',
        write('live.json', list(live)),
      ],
      { encoding: 'utf8' },
    );
    return out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Diff);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
