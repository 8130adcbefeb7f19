// Shared by the projects integration tests: run the CLI in-process as a given user, with an isolated HOME so no
// Lanyard config file or ~/.kube/config of the machine leaks in.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { runCli, type RunOptions, type RunResult } from '../../../src/cli/run.ts';
import { adminClient, controlPlane, userKubeconfig } from '../../harness/context.ts';
import type { KubeClient } from '../../../src/kube/client.ts';

export const home = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-cli-home-'));

export type As = 'admin' | string;

export async function kubeconfigOf(as: As, groups: string[] = []): Promise<string> {
  return as === 'admin' ? controlPlane().adminKubeconfig : await userKubeconfig(as, groups);
}

/** `lanyard <argv>` in-process as `as` (a client-certificate user, or the cluster admin). */
export async function lanyard(as: As, argv: string[], o: RunOptions = {}): Promise<RunResult> {
  return await runCli(argv, {
    ...o,
    env: {
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      KUBECONFIG: await kubeconfigOf(as),
      ...o.env,
    },
  });
}

/** `lanyard <argv>` as a real child process (the shipped bin/lanyard.js running dist/), the way a user runs it. */
export async function lanyardProcess(argv: string[], env: Record<string, string>): Promise<RunResult> {
  const root = path.resolve(import.meta.dirname, '../../..');
  const child = spawn(process.execPath, [path.join(root, 'bin/lanyard.js'), ...argv], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exitCode = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  return { stdout, stderr, exitCode };
}

let n = 0;
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}${(n++).toString(36)}`;
}

/** Creates a project as the cluster admin; returns its name. */
export async function newProject(prefix: string, adminUsers: string[] = []): Promise<string> {
  const name = uniqueName(prefix);
  const r = await lanyard('admin', [
    'create',
    'project',
    name,
    ...adminUsers.flatMap((u) => ['--admin-user', u]),
  ]);
  if (r.exitCode !== 0) throw new Error(`create project ${name} failed: ${r.stderr}`);
  return name;
}

export async function deleteNamespaces(client: KubeClient, names: string[]): Promise<void> {
  for (const n of names) await client.delete(`/api/v1/namespaces/${n}`).catch(() => undefined);
}

export { adminClient };
