// Where the control-plane binaries live; scripts/build-control-plane.sh builds them there when missing.
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';

export const K8S_VERSION = 'v1.36.3';
export const ETCD_VERSION = 'v3.6.13';

export function binaryDir(env: NodeJS.ProcessEnv = process.env): string {
  const root = env.LANYARD_K8S_CACHE ?? path.join(os.homedir(), '.cache', 'lanyard', 'k8s');
  return path.join(root, env.LANYARD_K8S_VERSION ?? K8S_VERSION);
}

export function binaries(dir = binaryDir()) {
  return {
    etcd: path.join(dir, 'etcd'),
    apiserver: path.join(dir, 'kube-apiserver'),
    controllerManager: path.join(dir, 'kube-controller-manager'),
  };
}

export function missingBinaries(dir = binaryDir()): string[] {
  return Object.values(binaries(dir)).filter((b) => !fs.existsSync(b));
}

export const HELM_VERSION = 'v3.22.0';

/** helm, built by scripts/build-control-plane.sh beside the control plane (used by the chart tests). */
export function helmBinary(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(
    binaryDir(env),
    '..',
    '..',
    'tools',
    `helm-${env.LANYARD_HELM_VERSION ?? HELM_VERSION}`,
    'helm',
  );
}
