// docs/projects-and-tokens.md scenarios 3 (escalation refused by Kubernetes itself) and 4 (cascade on service-account delete).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { eventually } from '../../harness/context.ts';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { adminClient, deleteNamespaces, lanyard, newProject, uniqueName } from './helpers.ts';

const RBAC = '/apis/rbac.authorization.k8s.io/v1';
let admin: KubeClient;
const cleanup: string[] = [];
beforeAll(async () => {
  admin = await adminClient();
});
afterAll(async () => {
  await deleteNamespaces(admin, cleanup);
  admin.close();
});

describe('escalation (scenario 3)', () => {
  it("is refused by the kube-apiserver because every write uses the caller's credentials", async () => {
    const shop = await newProject('esc', ['alice']);
    cleanup.push(shop);
    await admin.create(`${RBAC}/namespaces/${shop}/roles`, {
      metadata: { name: 'mallory-limited' },
      rules: [
        {
          apiGroups: ['rbac.authorization.k8s.io'],
          resources: ['rolebindings'],
          verbs: ['get', 'list', 'update', 'patch'],
        },
        { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles'], verbs: ['get', 'list', 'create'] },
        { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['get', 'list'] },
      ],
    });
    await admin.create(`${RBAC}/namespaces/${shop}/rolebindings`, {
      metadata: { name: 'mallory-limited' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'mallory-limited' },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'mallory' }],
    });
    const rbPath = `${RBAC}/namespaces/${shop}/rolebindings/lanyard-admin`;
    const before = (await admin.get(rbPath)).metadata.resourceVersion;
    const grant = await lanyard('mallory', [
      'grant',
      '--role',
      'lanyard-admin',
      '--user',
      'mallory',
      '-p',
      shop,
    ]);
    expect(grant).toMatchObject({
      exitCode: 4,
      stdout: '',
      stderr: `error: forbidden: Kubernetes refused to update rolebinding "lanyard-admin" in project "${shop}" because it would grant permissions you do not hold yourself\n`,
    });
    expect((await admin.get(rbPath)).metadata.resourceVersion).toBe(before);
    // -v adds the server's own words on a second line.
    const verbose = await lanyard('mallory', [
      'grant',
      '--role',
      'lanyard-admin',
      '--user',
      'mallory',
      '-p',
      shop,
      '-v',
    ]);
    expect(verbose.stderr).toMatch(
      /\nserver said: .*attempting to grant RBAC permissions not currently held/,
    );

    const root = await lanyard('mallory', ['create', 'role', 'root', '--rule', 'secrets:get', '-p', shop]);
    expect(root).toMatchObject({
      exitCode: 4,
      stderr: `error: forbidden: Kubernetes refused to create role "root" in project "${shop}" because it would grant permissions you do not hold yourself\n`,
    });
    for (const p of [
      `${RBAC}/namespaces/${shop}/roles/root`,
      `${RBAC}/namespaces/${shop}/rolebindings/root`,
      `/api/v1/namespaces/${shop}/serviceaccounts/root`,
    ]) {
      expect((await admin.raw({ path: p })).status).toBe(404);
    }
    // A plain forbidden is reported with the request Lanyard made and what it was for.
    expect(await lanyard('mallory', ['create', 'sa', 'x', '-p', shop])).toMatchObject({
      exitCode: 4,
      stderr: `error: forbidden: you may not create serviceaccounts in project "${shop}" (needed to create serviceaccount "x")\n`,
    });
    expect(await lanyard('mallory', ['get', 'projects'])).toMatchObject({
      exitCode: 4,
      stderr:
        'error: forbidden: you may not list namespaces, so projects cannot be listed; name a project with --project instead\n',
    });

    // Control: alice holds lanyard-admin and may grant lanyard-viewer.
    expect(
      await lanyard('alice', ['grant', '--role', 'lanyard-viewer', '--user', 'bob', '-p', shop]),
    ).toMatchObject({
      exitCode: 0,
      stdout: 'role/lanyard-viewer updated\n',
    });
  });
});

describe('cascade on delete (scenario 4)', () => {
  it('removes the account from managed bindings, deletes its managed tokens, warns about the rest', async () => {
    const shop = await newProject('casc');
    cleanup.push(shop);
    const run = (argv: string[]) => lanyard('admin', [...argv, '-p', shop]);
    expect((await run(['create', 'sa', 'ci-bot'])).exitCode).toBe(0);
    expect((await run(['create', 'role', 'deployer', '--rule', 'stages:get'])).exitCode).toBe(0);
    expect((await run(['grant', '--role', 'deployer', '--service-account', 'ci-bot'])).exitCode).toBe(0);
    expect((await run(['grant', '--role', 'lanyard-viewer', '--service-account', 'ci-bot'])).exitCode).toBe(
      0,
    );
    expect((await run(['create', 'sat', 'tok-1', '--service-account', 'ci-bot'])).exitCode).toBe(0);
    expect((await run(['create', 'sat', 'tok-2', '--service-account', 'ci-bot'])).exitCode).toBe(0);
    const sa = await admin.get(`/api/v1/namespaces/${shop}/serviceaccounts/ci-bot`);
    await admin.create(`/api/v1/namespaces/${shop}/secrets`, {
      metadata: {
        name: 'gitops-token',
        labels: { 'rbac.lanyard.dev/service-account-token': 'true' },
        annotations: {
          'kubernetes.io/service-account.name': 'ci-bot',
          'kubernetes.io/service-account.uid': sa.metadata.uid,
        },
      },
      type: 'kubernetes.io/service-account-token',
    });
    await admin.create(`${RBAC}/namespaces/${shop}/roles`, { metadata: { name: 'legacy' }, rules: [] });
    await admin.create(`${RBAC}/namespaces/${shop}/rolebindings`, {
      metadata: { name: 'legacy' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'legacy' },
      subjects: [{ kind: 'ServiceAccount', name: 'ci-bot', namespace: shop }],
    });
    const wide = await run(['get', 'sa', 'ci-bot', '-o', 'wide']);
    expect(wide.stdout).toMatch(/\nci-bot\s+true\s+3\s+deployer,lanyard-viewer,legacy\s+\d+s\n$/);
    const tokens = await run(['get', 'sats', '--service-account', 'ci-bot']);
    expect(tokens.stdout).toMatch(
      /^NAME\s+SERVICE ACCOUNT\s+MANAGED\s+AGE\ngitops-token\s+ci-bot\s+false\s+\d+s\ntok-1\s+ci-bot\s+true/,
    );

    const del = await run(['delete', 'sa', 'ci-bot']);
    expect(del).toMatchObject({
      exitCode: 0,
      stdout:
        'role/deployer updated\nrole/lanyard-viewer updated\nserviceaccounttoken/tok-1 deleted\nserviceaccounttoken/tok-2 deleted\nserviceaccount/ci-bot deleted\n',
      stderr:
        `warning: rolebinding "legacy" in project "${shop}" still lists serviceaccount "ci-bot"; it is not managed by Lanyard, remove the subject where the binding is declared\n` +
        'warning: serviceaccounttoken "gitops-token" is not managed by Lanyard; Kubernetes removes it with the account\n',
    });
    const bindings = (await admin.get(`${RBAC}/namespaces/${shop}/rolebindings`)).items as Json[];
    const listing = bindings.filter((b) =>
      (b.subjects ?? []).some((s: Json) => s.kind === 'ServiceAccount' && s.name === 'ci-bot'),
    );
    expect(listing.map((b) => b.metadata.name)).toEqual(['legacy']);
    await eventually(
      async () => {
        const secrets = (await admin.get(`/api/v1/namespaces/${shop}/secrets`)).items as Json[];
        expect(
          secrets.filter((s) => s.metadata.annotations?.['kubernetes.io/service-account.name'] === 'ci-bot'),
        ).toEqual([]);
      },
      10_000,
      200,
    );
  });
});

describe('ClusterRole lanyard-project-creator (chart)', () => {
  it('lets its holder create a project without escalate or bind; without it the namespace create is forbidden', async () => {
    const file = path.resolve(
      import.meta.dirname,
      '../../../deploy/helm/lanyard/templates/projects-project-creator.yaml',
    );
    const tpl = parse(
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => !l.includes('{{'))
        .join('\n'),
    );
    // The chart's rules under a unique name: the control plane is shared by every test file.
    const name = uniqueName('project-creator');
    const user = uniqueName('carol');
    await admin.create(`${RBAC}/clusterroles`, { metadata: { name }, rules: tpl.rules });
    await admin.create(`${RBAC}/clusterrolebindings`, {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: user }],
    });
    try {
      const project = uniqueName('carol-shop');
      cleanup.push(project);
      expect(await lanyard('dave', ['create', 'project', project])).toMatchObject({
        exitCode: 4,
        stderr: `error: forbidden: you may not create namespaces (needed to create project "${project}")\n`,
      });
      const r = await eventually(
        async () => {
          const x = await lanyard(user, ['create', 'project', project, '--admin-user', user]);
          expect(x.exitCode).toBe(0);
          return x;
        },
        5_000,
        200,
      );
      expect(r.stdout).toBe(
        `project/${project} created\nrole/lanyard-admin created\nrole/lanyard-viewer created\nrole/lanyard-promoter created\n`,
      );
    } finally {
      await admin.delete(`${RBAC}/clusterrolebindings/${name}`).catch(() => undefined);
      await admin.delete(`${RBAC}/clusterroles/${name}`).catch(() => undefined);
    }
  });
});

describe('create project rollback', () => {
  it('deletes the namespace it made when a built-in Role is refused, and reports that error', async () => {
    const name = uniqueName('ns-only');
    const user = uniqueName('erin');
    // May manage namespaces, but holds none of the lanyard-admin rules.
    await admin.create(`${RBAC}/clusterroles`, {
      metadata: { name },
      rules: [
        { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
      ],
    });
    await admin.create(`${RBAC}/clusterrolebindings`, {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: user }],
    });
    try {
      const project = uniqueName('half');
      cleanup.push(project);
      const r = await eventually(
        async () => {
          const x = await lanyard(user, ['create', 'project', project]);
          // RBAC bindings reach the authorizer's cache shortly after creation.
          expect(x.stderr).not.toMatch(/you may not create namespaces/);
          return x;
        },
        5_000,
        200,
      );
      expect(r).toMatchObject({
        exitCode: 4,
        stdout: '',
        stderr: `error: forbidden: you may not create roles in project "${project}" (needed to create role "lanyard-admin")\n`,
      });
      const ns = await admin.raw({ path: `/api/v1/namespaces/${project}` });
      expect(ns.status === 404 || ns.body.status.phase === 'Terminating').toBe(true);
    } finally {
      await admin.delete(`${RBAC}/clusterrolebindings/${name}`).catch(() => undefined);
      await admin.delete(`${RBAC}/clusterroles/${name}`).catch(() => undefined);
    }
  });
});
