// Builds the test control plane only when its binaries are missing from the cache (docs/adr/0001).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const version = process.env.LANYARD_K8S_VERSION ?? 'v1.36.3';
const dir = path.join(
  process.env.LANYARD_K8S_CACHE ?? path.join(os.homedir(), '.cache', 'lanyard', 'k8s'),
  version,
);
const helm = path.join(
  dir,
  '..',
  '..',
  'tools',
  `helm-${process.env.LANYARD_HELM_VERSION ?? 'v3.22.0'}`,
  'helm',
);
const needed = ['etcd', 'kube-apiserver', 'kube-controller-manager']
  .filter((b) => !existsSync(path.join(dir, b)))
  .concat(existsSync(helm) ? [] : ['helm']);
if (needed.length === 0) process.exit(0);
console.error(
  `[lanyard] control-plane binaries missing in ${dir} (${needed.join(', ')}); building them once from the upstream Go modules`,
);
const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'build-control-plane.sh');
const r = spawnSync('bash', [script], { stdio: 'inherit' });
process.exit(r.status ?? 1);
