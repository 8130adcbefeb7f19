// docs/projects-and-tokens.md scenarios 1 (lifecycle), 5 (unmanaged objects), 7 (validation) and 8 (errors), plus aliases and
// output formats, against the real kube-apiserver and token controller.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeClient, Json } from '../../../src/kube/client.ts';
import { BUILTIN_ROLES } from '../../../src/projects/builtin-roles.ts';
import { REDACTED_BASE64 } from '../../../src/projects/redact.ts';
import fs from 'node:fs';
import path from 'node:path';
import { adminClient, deleteNamespaces, home, lanyard, newProject, uniqueName } from './helpers.ts';
import { controlPlane, newNamespace } from '../../harness/context.ts';

let admin: KubeClient;
const cleanup: string[] = [];
const RBAC = '/apis/rbac.authorization.k8s.io/v1';

beforeAll(async () => {
  admin = await adminClient();
});
afterAll(async () => {
  await deleteNamespaces(admin, cleanup);
  admin.close();
});

describe('lifecycle (scenario 1)', () => {
  it('creates a project, a service account, a role, grants it, mints a token, and deletes everything', async () => {
    const shop = uniqueName('shop');
    cleanup.push(shop);
    const created = await lanyard('admin', ['create', 'project', shop, '--admin-user', 'alice']);
    expect(created.stderr).toBe('');
    expect(created.stdout).toBe(
      `project/${shop} created\nrole/lanyard-admin created\nrole/lanyard-viewer created\nrole/lanyard-promoter created\n`,
    );
    expect(created.exitCode).toBe(0);
    const ns = await admin.get(`/api/v1/namespaces/${shop}`);
    expect(ns.metadata.labels['lanyard.dev/project']).toBe('true');
    for (const b of BUILTIN_ROLES) {
      const role = await admin.get(`${RBAC}/namespaces/${shop}/roles/${b.name}`);
      const sa = await admin.get(`/api/v1/namespaces/${shop}/serviceaccounts/${b.name}`);
      const rb = await admin.get(`${RBAC}/namespaces/${shop}/rolebindings/${b.name}`);
      expect(role.rules).toEqual(b.rules);
      for (const o of [role, sa, rb]) expect(o.metadata.annotations['rbac.lanyard.dev/managed']).toBe('true');
      expect(sa.automountServiceAccountToken).toBe(false);
      expect(sa.metadata.labels?.['rbac.lanyard.dev/service-account']).toBeUndefined();
      expect(rb.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: b.name });
      expect(rb.subjects[0]).toEqual({ kind: 'ServiceAccount', name: b.name, namespace: shop });
      if (b.name === 'lanyard-admin') {
        expect(rb.subjects[1]).toEqual({
          kind: 'User',
          apiGroup: 'rbac.authorization.k8s.io',
          name: 'alice',
        });
      }
    }

    const alice = (argv: string[]) => lanyard('alice', [...argv, '--project', shop]);
    expect((await alice(['create', 'sa', 'ci-bot'])).stdout).toBe('serviceaccount/ci-bot created\n');
    const sa = await admin.get(`/api/v1/namespaces/${shop}/serviceaccounts/ci-bot`);
    expect(sa.metadata.labels).toEqual({ 'rbac.lanyard.dev/service-account': 'true' });
    expect(sa.metadata.annotations).toEqual({ 'rbac.lanyard.dev/managed': 'true' });

    const role = await alice([
      'create',
      'role',
      'deployer',
      '--rule',
      'stages:get,list',
      '--rule',
      'promotions:create,get,list',
    ]);
    expect(role).toMatchObject({ stdout: 'role/deployer created\n', exitCode: 0 });
    expect((await admin.get(`${RBAC}/namespaces/${shop}/roles/deployer`)).rules).toEqual([
      { apiGroups: ['lanyard.dev'], resources: ['stages'], verbs: ['get', 'list'] },
      { apiGroups: ['lanyard.dev'], resources: ['promotions'], verbs: ['create', 'get', 'list'] },
    ]);

    expect(await alice(['grant', '--role', 'deployer', '--service-account', 'ci-bot'])).toMatchObject({
      stdout: 'role/deployer updated\n',
      exitCode: 0,
    });
    const before = await admin.get(`${RBAC}/namespaces/${shop}/rolebindings/deployer`);
    expect(before.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'deployer', namespace: shop },
      { kind: 'ServiceAccount', name: 'ci-bot', namespace: shop },
    ]);
    expect(await alice(['grant', '--role', 'deployer', '--service-account', 'ci-bot'])).toMatchObject({
      stdout: 'role/deployer unchanged\n',
      exitCode: 0,
    });
    // Unchanged means no write at all.
    expect(
      (await admin.get(`${RBAC}/namespaces/${shop}/rolebindings/deployer`)).metadata.resourceVersion,
    ).toBe(before.metadata.resourceVersion);

    const token = await alice(['create', 'sat', 'ci-token', '--service-account', 'ci-bot']);
    expect(token.exitCode).toBe(0);
    expect(token.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(token.stderr).toBe(
      `serviceaccounttoken/ci-token created for serviceaccount "ci-bot" in project "${shop}"\n` +
        'This token is shown now and never again. Put it in your secret store before closing this terminal;\n' +
        'if it is lost, delete it and create a new one.\n',
    );
    const jwt = token.stdout.trim();

    const yaml = await alice(['get', 'sats', '-o', 'yaml']);
    expect(yaml.exitCode).toBe(0);
    expect(yaml.stdout).toContain(`token: ${REDACTED_BASE64}`);
    expect(yaml.stdout).not.toContain(jwt);
    expect(yaml.stdout).not.toContain(Buffer.from(jwt).toString('base64'));
    expect(yaml.stdout).not.toContain('managedFields');
    const json = await alice(['get', 'sats', '-o', 'json']);
    const list = JSON.parse(json.stdout);
    expect(list.kind).toBe('List');
    expect(list.items[0].data.token).toBe('bGFueWFyZDpyZWRhY3RlZA==');
    expect(Buffer.from(list.items[0].data['ca.crt'], 'base64').toString()).toMatch(
      /^-----BEGIN CERTIFICATE-----\n/,
    );
    expect(json.stdout).toContain('\n  "apiVersion"');

    expect(await alice(['revoke', '--role', 'deployer', '--user', 'nobody'])).toMatchObject({
      stdout: 'role/deployer unchanged\n',
      exitCode: 0,
    });
    expect(await alice(['delete', 'role', 'deployer'])).toMatchObject({
      stdout: 'role/deployer deleted\n',
      exitCode: 0,
    });
    for (const p of [
      `${RBAC}/namespaces/${shop}/roles/deployer`,
      `${RBAC}/namespaces/${shop}/rolebindings/deployer`,
      `/api/v1/namespaces/${shop}/serviceaccounts/deployer`,
    ]) {
      expect((await admin.raw({ path: p })).status).toBe(404);
    }

    const del = await lanyard('admin', ['delete', 'project', shop, '--yes', '--wait']);
    expect(del).toMatchObject({ stdout: `project/${shop} deleted\n`, exitCode: 0 });
    // --wait returns once the namespace controller has removed the namespace.
    expect((await admin.raw({ path: `/api/v1/namespaces/${shop}` })).status).toBe(404);
  });
});

describe('aliases and output formats', () => {
  let shop: string;
  beforeAll(async () => {
    shop = await newProject('fmt');
    cleanup.push(shop);
    await lanyard('admin', ['create', 'sa', 'b-bot', '-p', shop]);
    await lanyard('admin', ['create', 'sa', 'a-bot', '-p', shop, '--description', 'first bot']);
  });

  it('accepts every alias of every noun', async () => {
    for (const noun of ['serviceaccount', 'serviceaccounts', 'sa', 'sas']) {
      const r = await lanyard('admin', ['get', noun, '-p', shop, '--no-headers']);
      expect(r.stdout).toMatch(/^a-bot\s+true\s+\d+s\nb-bot\s+true\s+\d+s\n$/);
    }
    for (const noun of ['serviceaccounttoken', 'serviceaccounttokens', 'sat', 'sats']) {
      const r = await lanyard('admin', ['get', noun, '-p', shop]);
      expect(r).toMatchObject({
        stdout: '',
        stderr: `No service account tokens found in project "${shop}".\n`,
        exitCode: 0,
      });
    }
    for (const noun of ['role', 'roles']) {
      expect((await lanyard('admin', ['get', noun, '-p', shop, '-o', 'name'])).stdout).toBe(
        'role/lanyard-admin\nrole/lanyard-promoter\nrole/lanyard-viewer\n',
      );
    }
    for (const noun of ['project', 'projects']) {
      expect((await lanyard('admin', ['get', noun, shop])).stdout).toMatch(
        new RegExp(`^NAME\\s+STATUS\\s+AGE\\n${shop}\\s+Active\\s+\\d+s\\n$`),
      );
    }
    const created = await lanyard('admin', [
      'create',
      'sat',
      'tok',
      '--service-account',
      'a-bot',
      '-p',
      shop,
    ]);
    expect(created.exitCode).toBe(0);
    expect((await lanyard('admin', ['delete', 'sats', 'tok', '-p', shop])).stdout).toBe(
      'serviceaccounttoken/tok deleted\n',
    );
  });

  it('prints tables with kubectl column spacing, wide columns, single objects and Lists', async () => {
    const table = await lanyard('admin', ['get', 'sas', '-p', shop]);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toBe('NAME    MANAGED   AGE');
    expect(lines[1]).toMatch(/^a-bot   true      \d+s$/);
    const wide = await lanyard('admin', ['get', 'sa', '-p', shop, '-o', 'wide']);
    expect(wide.stdout.split('\n')[0]).toBe('NAME    MANAGED   TOKENS   ROLES    AGE');
    expect(wide.stdout.split('\n')[1]).toMatch(/^a-bot   true      0        <none>   \d+s$/);
    const one = JSON.parse((await lanyard('admin', ['get', 'sa', 'a-bot', '-p', shop, '-o', 'json'])).stdout);
    expect(one.kind).toBe('ServiceAccount');
    expect(one.metadata.annotations['lanyard.dev/description']).toBe('first bot');
    const two = JSON.parse(
      (await lanyard('admin', ['get', 'sa', 'a-bot', 'b-bot', '-p', shop, '-o', 'json'])).stdout,
    );
    expect(two.kind).toBe('List');
    expect(two.items.map((i: Json) => i.metadata.name)).toEqual(['a-bot', 'b-bot']);
    const roles = await lanyard('admin', ['get', 'roles', '-p', shop]);
    expect(roles.stdout).toMatch(/^NAME\s+MANAGED\s+SUBJECTS\s+AGE\nlanyard-admin\s+true\s+0\s+\d+s\n/);
    const view = JSON.parse(
      (await lanyard('admin', ['get', 'role', 'lanyard-promoter', '-p', shop, '-o', 'json'])).stdout,
    );
    expect(view).toMatchObject({
      apiVersion: 'rbac.lanyard.dev/v1alpha1',
      kind: 'Role',
      managed: true,
      builtIn: true,
      subjects: [],
    });
    expect(view.rules).toEqual(BUILTIN_ROLES.find((r) => r.name === 'lanyard-promoter')!.rules);
  });

  it('reads the project from LANYARD_PROJECT and from the Lanyard config file', async () => {
    expect(
      (await lanyard('admin', ['get', 'sa', 'a-bot', '-o', 'name'], { env: { LANYARD_PROJECT: shop } }))
        .stdout,
    ).toBe('serviceaccount/a-bot\n');
    const viaFlag = await lanyard(
      'admin',
      ['get', 'sa', 'a-bot', '-o', 'name', '-p', shop, '--kubeconfig', controlPlane().adminKubeconfig],
      {
        env: { KUBECONFIG: '' },
      },
    );
    expect(viaFlag).toMatchObject({ exitCode: 0, stdout: 'serviceaccount/a-bot\n' });
    expect(await lanyard('admin', ['get', 'sas', '-p', shop], { env: { KUBECONFIG: '' } })).toMatchObject({
      exitCode: 2,
      stderr: expect.stringMatching(/^error: no credentials: set LANYARD_SERVER and LANYARD_TOKEN/),
    });
    const cfgDir = fs.mkdtempSync(path.join(home, 'proj-'));
    fs.mkdirSync(path.join(cfgDir, 'lanyard'));
    fs.writeFileSync(path.join(cfgDir, 'lanyard', 'config'), `project: ${shop}\n`);
    expect(
      (await lanyard('admin', ['get', 'sa', 'a-bot', '-o', 'name'], { env: { XDG_CONFIG_HOME: cfgDir } }))
        .stdout,
    ).toBe('serviceaccount/a-bot\n');
    const noProject = await lanyard('admin', ['get', 'sas']);
    expect(noProject).toMatchObject({
      exitCode: 2,
      stderr: 'error: no project given: pass --project or set "project" in the Lanyard config\n',
    });
  });
});

describe('unmanaged objects (scenario 5)', () => {
  it('shows a labelled, unannotated account as MANAGED false, refuses to delete it, and mints tokens for it', async () => {
    const shop = await newProject('unm');
    cleanup.push(shop);
    await admin.create(`/api/v1/namespaces/${shop}/serviceaccounts`, {
      metadata: { name: 'gitops-bot', labels: { 'rbac.lanyard.dev/service-account': 'true' } },
    });
    const before = await admin.get(`/api/v1/namespaces/${shop}/serviceaccounts/gitops-bot`);
    expect((await lanyard('admin', ['get', 'sas', '-p', shop])).stdout).toMatch(
      /^NAME\s+MANAGED\s+AGE\ngitops-bot\s+false\s+/,
    );
    const del = await lanyard('admin', ['delete', 'sa', 'gitops-bot', '-p', shop]);
    expect(del).toMatchObject({
      exitCode: 5,
      stdout: '',
      stderr: `error: serviceaccount "gitops-bot" in project "${shop}" is not managed by Lanyard (serviceaccount "gitops-bot" has no rbac.lanyard.dev/managed: "true" annotation); change it where it is declared, for example in Git\n`,
    });
    const after = await admin.get(`/api/v1/namespaces/${shop}/serviceaccounts/gitops-bot`);
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    const tok = await lanyard('admin', [
      'create',
      'sat',
      'g-token',
      '--service-account',
      'gitops-bot',
      '-p',
      shop,
    ]);
    expect(tok.exitCode).toBe(0);
    expect(tok.stdout).toMatch(/^eyJ/);
    // An unmanaged role (RoleBinding without the annotation) is refused with the reason.
    await admin.create(`${RBAC}/namespaces/${shop}/roles`, {
      metadata: { name: 'deployers', annotations: { 'rbac.lanyard.dev/managed': 'true' } },
      rules: [],
    });
    await admin.create(`/api/v1/namespaces/${shop}/serviceaccounts`, {
      metadata: { name: 'deployers', annotations: { 'rbac.lanyard.dev/managed': 'true' } },
    });
    await admin.create(`${RBAC}/namespaces/${shop}/rolebindings`, {
      metadata: { name: 'deployers' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'deployers' },
      subjects: [{ kind: 'ServiceAccount', name: 'deployers', namespace: shop }],
    });
    expect(
      await lanyard('admin', ['grant', '--role', 'deployers', '--group', 'devs', '-p', shop]),
    ).toMatchObject({
      exitCode: 5,
      stderr: `error: role "deployers" in project "${shop}" is not managed by Lanyard (rolebinding "deployers" has no rbac.lanyard.dev/managed: "true" annotation); change it where it is declared, for example in Git\n`,
    });
    expect(await lanyard('admin', ['delete', 'role', 'lanyard-admin', '-p', shop])).toMatchObject({
      exitCode: 5,
      stderr: `error: role "lanyard-admin" in project "${shop}" is built in and cannot be deleted; delete the project instead\n`,
    });
  });
});

describe('validation before any request (scenario 7)', () => {
  const cases: [string[], string][] = [
    [
      ['create', 'sa', 'My_SA', '-p', 'shop'],
      'error: invalid serviceaccount name "My_SA": use at most 253 lowercase letters, digits, "-" or ".", starting and ending with a letter or digit\n',
    ],
    [
      ['create', 'role', 'deployer', '--rule', 'stage:get', '-p', 'shop'],
      'error: unknown resource "stage" in --rule "stage:get": did you mean "stages"?\n',
    ],
    [
      ['create', 'role', 'deployer', '--rule', 'stages:read', '-p', 'shop'],
      'error: unknown verb "read" in --rule "stages:read"; allowed: get, list, watch, create, update, patch, delete, deletecollection, *\n',
    ],
    [
      ['grant', '--role', 'deployer', '--user', 'a', '--group', 'b', '-p', 'shop'],
      'error: --service-account, --user and --group cannot be combined; pass one of them\n',
    ],
    [
      ['grant', '--role', 'deployer', '--service-account', 'ci-bot', '--user', 'a', '-p', 'shop'],
      'error: --service-account, --user and --group cannot be combined; pass one of them\n',
    ],
    [
      ['delete', 'project', 'x'],
      'error: refusing to delete project "x" without --yes when no terminal is attached\n',
    ],
    [
      ['grant', '--role', 'deployer', '--user', 'system:serviceaccount:shop:ci-bot', '-p', 'shop'],
      'error: use --service-account for service accounts, not --user "system:serviceaccount:shop:ci-bot"\n',
    ],
    [
      ['create', 'sat', 't', '--service-account', 'ci-bot', '-o', 'name', '-p', 'shop'],
      'error: -o name would discard the token; use the default output, -o yaml or -o json\n',
    ],
    [
      ['revoke', '--role', 'deployer', '--service-account', 'deployer', '-p', 'shop'],
      'error: serviceaccount "deployer" is role "deployer"\'s own account in project "shop" and cannot be revoked\n',
    ],
  ];
  it.each(cases)('lanyard %j exits 2 and sends nothing', async (argv, message) => {
    let requests = 0;
    let clients = 0;
    const r = await lanyard('admin', argv, {
      io: {
        onRequest: () => void requests++,
        createClient: async () => {
          clients++;
          throw new Error('no client may be created for a usage error');
        },
      },
    });
    expect(r).toMatchObject({ exitCode: 2, stderr: message, stdout: '' });
    expect(requests).toBe(0);
    expect(clients).toBe(0);
  });

  it('asks for the project name on a terminal and aborts on a mismatch', async () => {
    let requests = 0;
    const r = await lanyard('admin', ['delete', 'project', 'shop'], {
      stdinIsTTY: true,
      input: ['shpo'],
      io: { onRequest: () => void requests++ },
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe(
      'Deleting project "shop" removes its namespace and every stage, promotion, role, service account and token in it.\n' +
        'Type the project name to confirm: error: confirmation did not match; project "shop" was not deleted\n',
    );
    expect(requests).toBe(0);
  });

  it('counts the requests a valid command makes through the same hook', async () => {
    const shop = await newProject('cnt');
    cleanup.push(shop);
    const seen: string[] = [];
    const r = await lanyard('admin', ['get', 'sas', '-p', shop, '-v'], {
      io: { onRequest: (e) => void seen.push(`${e.method} ${e.path}`) },
    });
    expect(r.exitCode).toBe(0);
    // The project check and the list go out side by side (docs/cli.md#conventions), so they finish in either order.
    expect(seen.sort()).toEqual([
      `GET /api/v1/namespaces/${shop}`,
      `GET /api/v1/namespaces/${shop}/serviceaccounts`,
    ]);
    // -v logs method, path, status and duration only: never headers or bodies.
    const lines = r.stderr.split('\n');
    expect(
      lines
        .slice(0, 2)
        .map((l) => l.replace(/ in \d+ms$/, ' in Nms'))
        .sort(),
    ).toEqual([
      `GET /api/v1/namespaces/${shop} 200 in Nms`,
      `GET /api/v1/namespaces/${shop}/serviceaccounts 200 in Nms`,
    ]);
    expect(lines[2]).toMatch(/^No service accounts found/);
    expect(r.stderr).not.toMatch(/authorization|bearer/i);
  });
});

describe('errors (scenario 8)', () => {
  let shop: string;
  beforeAll(async () => {
    shop = await newProject('err');
    cleanup.push(shop);
  });

  it('reports a missing project (3) and a namespace that is not a project (5)', async () => {
    expect(await lanyard('admin', ['get', 'sas', '-p', 'no-such-project-x1'])).toMatchObject({
      exitCode: 3,
      stderr: 'error: project "no-such-project-x1" not found\n',
    });
    const plain = await newNamespace(admin, 'plain');
    cleanup.push(plain);
    expect(await lanyard('admin', ['create', 'sa', 'x', '-p', plain])).toMatchObject({
      exitCode: 5,
      stderr: `error: namespace "${plain}" is not a Lanyard project (label lanyard.dev/project is not "true")\n`,
    });
    expect(await lanyard('admin', ['create', 'project', plain])).toMatchObject({
      exitCode: 5,
      stderr: `error: namespace "${plain}" already exists; pass --adopt to make it a project\n`,
    });
    const adopted = await lanyard('admin', ['create', 'project', plain, '--adopt']);
    expect(adopted).toMatchObject({
      exitCode: 0,
      stdout: `project/${plain} adopted\nrole/lanyard-admin created\nrole/lanyard-viewer created\nrole/lanyard-promoter created\n`,
    });
    // On a terminal, typing the exact name confirms.
    const confirmed = await lanyard('admin', ['delete', 'project', plain], {
      stdinIsTTY: true,
      input: [plain],
    });
    expect(confirmed).toMatchObject({ exitCode: 0, stdout: `project/${plain} deleted\n` });
    expect(confirmed.stderr).toMatch(/Type the project name to confirm: $/);
  });

  it('answers a get with the project check when its list, sent beside the check, would succeed', async () => {
    // A plain namespace holding what each get lists: were the check's refusal lost, these would be printed.
    const plain = await newNamespace(admin, 'plain-get');
    cleanup.push(plain);
    await admin.create(`/api/v1/namespaces/${plain}/serviceaccounts`, {
      metadata: { name: 'listed', labels: { 'rbac.lanyard.dev/service-account': 'true' } },
    });
    await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${plain}/roles`, {
      metadata: { name: 'listed' },
      rules: [],
    });
    const refusal = `error: namespace "${plain}" is not a Lanyard project (label lanyard.dev/project is not "true")\n`;
    for (const noun of ['sas', 'roles', 'serviceaccounttokens']) {
      expect(await lanyard('admin', ['get', noun, '-p', plain]), noun).toEqual({
        exitCode: 5,
        stdout: '',
        stderr: refusal,
      });
    }
  });

  it('refuses duplicates (5) and unlabelled accounts for tokens (5)', async () => {
    expect((await lanyard('admin', ['create', 'sa', 'dup', '-p', shop])).exitCode).toBe(0);
    expect(await lanyard('admin', ['create', 'sa', 'dup', '-p', shop])).toMatchObject({
      exitCode: 5,
      stderr: `error: serviceaccount "dup" already exists in project "${shop}"\n`,
    });
    expect((await lanyard('admin', ['create', 'role', 'developer', '-p', shop])).exitCode).toBe(0);
    expect(await lanyard('admin', ['create', 'role', 'developer', '-p', shop])).toMatchObject({
      exitCode: 5,
      stderr: `error: role "developer" already exists in project "${shop}"\n`,
    });
    const rb = await admin.get(
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${shop}/rolebindings/developer`,
    );
    expect(
      await lanyard('admin', ['grant', '--role', 'developer', '--service-account', 'dup,ghost', '-p', shop]),
    ).toMatchObject({
      exitCode: 3,
      stderr: `error: serviceaccount "ghost" not found in project "${shop}"\n`,
    });
    // Nothing was written: not even the account that exists.
    expect(
      (await admin.get(`/apis/rbac.authorization.k8s.io/v1/namespaces/${shop}/rolebindings/developer`))
        .metadata.resourceVersion,
    ).toBe(rb.metadata.resourceVersion);
    expect(await lanyard('admin', ['grant', '--role', 'nope', '--group', 'devs', '-p', shop])).toMatchObject({
      exitCode: 3,
      stderr: `error: role "nope" not found in project "${shop}"\n`,
    });
    expect(
      await lanyard('admin', ['create', 'sat', 't', '--service-account', 'builder', '-p', shop]),
    ).toMatchObject({
      exitCode: 3,
      stderr: `error: serviceaccount "builder" not found in project "${shop}"\n`,
    });
    await admin.create(`/api/v1/namespaces/${shop}/serviceaccounts`, { metadata: { name: 'builder' } });
    expect(
      await lanyard('admin', ['create', 'sat', 't', '--service-account', 'builder', '-p', shop]),
    ).toMatchObject({
      exitCode: 5,
      stderr: `error: serviceaccount "builder" in project "${shop}" is not a Lanyard service account (label rbac.lanyard.dev/service-account is not "true")\n`,
    });
    expect((await admin.raw({ path: `/api/v1/namespaces/${shop}/secrets/t` })).status).toBe(404);
  });

  it('deletes several names in order, reports the missing one and exits with its code', async () => {
    for (const n of ['a', 'b'])
      expect((await lanyard('admin', ['create', 'sa', n, '-p', shop])).exitCode).toBe(0);
    const r = await lanyard('admin', ['delete', 'sa', 'a', 'missing', 'b', '-p', shop]);
    expect(r).toMatchObject({
      exitCode: 3,
      stdout: 'serviceaccount/a deleted\nserviceaccount/b deleted\n',
      stderr: `error: serviceaccount "missing" not found in project "${shop}"\n`,
    });
    const get = await lanyard('admin', ['get', 'sas', 'dup', 'missing', '-p', shop, '-o', 'name']);
    expect(get).toMatchObject({
      exitCode: 3,
      stdout: 'serviceaccount/dup\n',
      stderr: `error: serviceaccount "missing" not found in project "${shop}"\n`,
    });
  });

  it('reports unauthenticated credentials (4) and an unreachable server (1)', async () => {
    const bad = await lanyard('admin', ['get', 'sas', '-p', shop], {
      env: {
        LANYARD_SERVER: admin.server,
        LANYARD_TOKEN: 'not-a-token',
        LANYARD_INSECURE_SKIP_TLS_VERIFY: 'true',
      },
    });
    expect(bad).toMatchObject({
      exitCode: 4,
      stderr:
        'error: the API server rejected the credentials (401); check LANYARD_TOKEN, the Lanyard config or your kubeconfig\n',
    });
    const down = await lanyard('admin', ['get', 'sas', '-p', shop], {
      env: {
        LANYARD_SERVER: 'https://127.0.0.1:1',
        LANYARD_TOKEN: 'x',
        LANYARD_INSECURE_SKIP_TLS_VERIFY: 'true',
      },
    });
    expect(down).toMatchObject({
      exitCode: 1,
      stderr: 'error: cannot reach the API server at https://127.0.0.1:1: connect ECONNREFUSED\n',
    });
    expect(
      await lanyard('admin', ['get', 'sas', '-p', shop], { env: { LANYARD_SERVER: 'https://127.0.0.1:1' } }),
    ).toMatchObject({
      exitCode: 2,
      stderr: 'error: LANYARD_SERVER is set but LANYARD_TOKEN is not; set both or neither\n',
    });
  });
});
