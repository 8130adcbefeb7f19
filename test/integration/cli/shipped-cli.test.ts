// The shipped CLI (bin/lanyard.js running dist/) as a user runs it, against the real API server: global flags before
// the verb, -o jsonpath and custom-columns, version, completion and the kubectl plugin entry.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { KubeClient } from '../../../src/kube/client.ts';
import { controlPlane } from '../../harness/context.ts';
import { adminClient, deleteNamespaces, home, newProject } from '../projects/helpers.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');

function run(bin: 'lanyard' | 'kubectl-lanyard', argv: string[], env: Record<string, string> = {}) {
  return new Promise<{ stdout: string; stderr: string; exitCode: number }>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', `${bin}.js`), ...argv], {
      env: { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ stdout, stderr, exitCode: code ?? -1 }));
  });
}

let admin: KubeClient;
let shop: string;
let kubeconfig: string;
let adminContext: string;
beforeAll(async () => {
  admin = await adminClient();
  shop = await newProject('clishop');
  for (const name of ['api', 'worker']) {
    await admin.create(`/api/v1/namespaces/${shop}/serviceaccounts`, {
      metadata: {
        name,
        labels: { 'rbac.lanyard.dev/service-account': 'true', team: name === 'api' ? 'web' : 'batch' },
        annotations: { 'rbac.lanyard.dev/managed': 'true' },
      },
    });
  }
  // A kubeconfig whose current context points nowhere; the admin context is chosen with --context.
  const doc = parse(fs.readFileSync(controlPlane().adminKubeconfig, 'utf8'));
  adminContext = doc['current-context'];
  doc.clusters.push({ name: 'nowhere', cluster: { server: 'https://127.0.0.1:1' } });
  doc.contexts.push({ name: 'nowhere', context: { cluster: 'nowhere', user: doc.contexts[0].context.user } });
  doc['current-context'] = 'nowhere';
  kubeconfig = path.join(home, 'two-contexts.kubeconfig');
  fs.writeFileSync(kubeconfig, stringify(doc), { mode: 0o600 });
});
afterAll(async () => {
  await deleteNamespaces(admin, [shop]);
  admin.close();
});

describe('the shipped lanyard binary', () => {
  it('takes global flags before the verb as after it', async () => {
    const before = await run('lanyard', [
      '--kubeconfig',
      kubeconfig,
      '--context',
      adminContext,
      '-o',
      'name',
      'get',
      'sas',
      '-p',
      shop,
    ]);
    expect(before).toMatchObject({ exitCode: 0, stdout: 'serviceaccount/api\nserviceaccount/worker\n' });
    const after = await run('lanyard', [
      'get',
      'sas',
      '-p',
      shop,
      '-o',
      'name',
      '--kubeconfig',
      kubeconfig,
      '--context',
      adminContext,
    ]);
    expect(after.stdout).toBe(before.stdout);
    // Without --context the kubeconfig's current context (nowhere) is used.
    const nowhere = await run('lanyard', ['--kubeconfig', kubeconfig, 'get', 'sas', '-p', shop]);
    expect(nowhere.exitCode).toBe(1);
    expect(nowhere.stderr).toMatch(/cannot reach the API server at https:\/\/127\.0\.0\.1:1/);
  });

  it('prints -o jsonpath with kubectl template syntax, for a list and for one named object', async () => {
    const env = { KUBECONFIG: controlPlane().adminKubeconfig };
    expect(
      await run('lanyard', ['get', 'sas', '-p', shop, '-o', 'jsonpath={.items[*].metadata.name}'], env),
    ).toMatchObject({ exitCode: 0, stdout: 'api worker' });
    const ranged = await run(
      'lanyard',
      [
        'get',
        'sas',
        '-p',
        shop,
        '-o',
        'jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.team}{"\\n"}{end}',
      ],
      env,
    );
    expect(ranged.stdout).toBe('api=web\nworker=batch\n');
    expect(
      (await run('lanyard', ['get', 'sa', 'api', '-p', shop, '-o', 'jsonpath={.metadata.namespace}'], env))
        .stdout,
    ).toBe(shop);
  });

  it('prints -o custom-columns, and refuses a bad template before sending anything (exit 2)', async () => {
    const env = { KUBECONFIG: controlPlane().adminKubeconfig };
    const r = await run(
      'lanyard',
      [
        'get',
        'sas',
        '-p',
        shop,
        '-o',
        'custom-columns=NAME:.metadata.name,TEAM:.metadata.labels.team,OWNER:.metadata.labels.owner',
      ],
      env,
    );
    expect(r).toMatchObject({
      exitCode: 0,
      stdout: 'NAME     TEAM    OWNER\napi      web     <none>\nworker   batch   <none>\n',
    });
    const bad = await run('lanyard', ['get', 'sas', '-p', shop, '-o', 'jsonpath={.items'], {
      KUBECONFIG: '/nonexistent',
    });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('unclosed "{" in template "{.items"');
    const unknown = await run('lanyard', ['get', 'sas', '-p', shop, '-o', 'xml'], env);
    expect(unknown).toMatchObject({ exitCode: 2 });
    expect(unknown.stderr).toContain('invalid -o "xml"');
  });

  it('prefixes every error with "error: ", whether commander, the framework or a server call found it', async () => {
    const env = { KUBECONFIG: controlPlane().adminKubeconfig };
    const unknownFlag = await run('lanyard', ['get', 'sas', '--bogus'], env);
    expect(unknownFlag).toMatchObject({ exitCode: 2, stderr: "error: unknown option '--bogus'\n" });
    const noProject = await run('lanyard', ['get', 'sas'], env);
    expect(noProject).toMatchObject({
      exitCode: 2,
      stderr: 'error: no project given: pass --project or set "project" in the Lanyard config\n',
    });
    const missing = await run('lanyard', ['get', 'sa', 'ghost', '-p', shop], env);
    expect(missing).toMatchObject({
      exitCode: 3,
      stderr: `error: serviceaccount "ghost" not found in project "${shop}"\n`,
    });
    const badFlag = await run('lanyard', ['controller', '--verify-qps=many'], env);
    expect(badFlag.exitCode).toBe(2);
    expect(badFlag.stderr).toMatch(/^error: invalid argument "many" for "--verify-qps"/);
  });

  it('reports its version and commit, as text and JSON', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    const stamp = JSON.parse(fs.readFileSync(path.join(ROOT, 'dist', '.build-stamp.json'), 'utf8'));
    const json = await run('lanyard', ['version', '-o', 'json']);
    expect(JSON.parse(json.stdout)).toEqual({
      version: pkg.version,
      commit: stamp.commit,
      node: process.version,
      platform: `${process.platform}/${process.arch}`,
    });
    expect((await run('lanyard', ['version'])).stdout).toBe(
      `lanyard ${pkg.version} (commit ${stamp.commit}, node ${process.version}, ${process.platform}/${process.arch})\n`,
    );
  });

  it('runs as the kubectl plugin kubectl-lanyard, naming itself "kubectl lanyard"', async () => {
    const r = await run('kubectl-lanyard', ['get', 'sas', '-p', shop, '-o', 'name'], {
      KUBECONFIG: controlPlane().adminKubeconfig,
    });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'serviceaccount/api\nserviceaccount/worker\n' });
    expect((await run('kubectl-lanyard', ['--help'])).stdout).toMatch(/^Usage: kubectl lanyard /);
  });

  it('completes commands, nouns and flags in bash through the generated script', async () => {
    const bin = fs.mkdtempSync(path.join(home, 'bin-'));
    fs.symlinkSync(path.join(ROOT, 'bin', 'lanyard.js'), path.join(bin, 'lanyard'));
    const script = (await run('lanyard', ['completion', 'bash'])).stdout;
    const complete = (line: string[]) =>
      spawnSync(
        'bash',
        [
          '-c',
          `${script}\nCOMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${line.length - 1}; _lanyard; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        {
          env: { PATH: `${bin}:${path.dirname(process.execPath)}:${process.env.PATH}`, HOME: home },
          encoding: 'utf8',
        },
      ).stdout;
    expect(complete(['lanyard', 'get', 'serviceacc'])).toBe('serviceaccount\nserviceaccounttoken\n');
    expect(complete(['lanyard', 'get', 'sas', '--out'])).toBe('--output\n');
  });
});
