// `lanyard grant` / `revoke` as a project admin against the real API server: `updated` only when the RoleBinding
// really changed, `unchanged` (and no write) otherwise, judged by what a subject grants rather than its spelling.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
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

describe('grant and revoke report what changed', () => {
  it('prints unchanged, and writes nothing, when the project admin grants what the role already grants', async () => {
    const alice = uniqueName('alice');
    const shop = await newProject('grant', [alice]);
    cleanup.push(shop);
    const as = (argv: string[]) => lanyard(alice, [...argv, '--project', shop]);
    const binding = (role: string): Promise<Json> =>
      admin.get(`${RBAC}/namespaces/${shop}/rolebindings/${role}`);

    // Alice is already an admin: granting herself the role changes nothing.
    const before = await binding('lanyard-admin');
    expect(await as(['grant', '--role', 'lanyard-admin', '--user', alice])).toMatchObject({
      stdout: 'role/lanyard-admin unchanged\n',
      exitCode: 0,
    });
    expect((await binding('lanyard-admin')).metadata.resourceVersion).toBe(before.metadata.resourceVersion);

    expect(await as(['grant', '--role', 'lanyard-admin', '--user', 'bob'])).toMatchObject({
      stdout: 'role/lanyard-admin updated\n',
      exitCode: 0,
    });
    const granted = await binding('lanyard-admin');
    expect(granted.subjects.map((s: Json) => s.name)).toEqual(['lanyard-admin', alice, 'bob']);
    expect(await as(['grant', '--role', 'lanyard-admin', '--user', `bob,${alice}`])).toMatchObject({
      stdout: 'role/lanyard-admin unchanged\n',
      exitCode: 0,
    });
    expect((await binding('lanyard-admin')).metadata.resourceVersion).toBe(granted.metadata.resourceVersion);
  });

  it("treats a ServiceAccount subject without a namespace as the project's: grant is unchanged, revoke removes it", async () => {
    const alice = uniqueName('alice');
    const shop = await newProject('grantns', [alice]);
    cleanup.push(shop);
    const as = (argv: string[]) => lanyard(alice, [...argv, '--project', shop]);
    const path = `${RBAC}/namespaces/${shop}/rolebindings/lanyard-viewer`;
    expect((await as(['create', 'sa', 'ci-bot'])).exitCode).toBe(0);
    // Written by hand (kubectl edit): RBAC reads a missing namespace as the binding's own.
    const rb = await admin.get(path);
    await admin.update(path, {
      ...rb,
      subjects: [...rb.subjects, { kind: 'ServiceAccount', name: 'ci-bot' }],
    });
    const stored = await admin.get(path);
    expect(stored.subjects.at(-1)).toEqual({ kind: 'ServiceAccount', name: 'ci-bot' });

    expect(await as(['grant', '--role', 'lanyard-viewer', '--service-account', 'ci-bot'])).toMatchObject({
      stdout: 'role/lanyard-viewer unchanged\n',
      exitCode: 0,
    });
    expect((await admin.get(path)).metadata.resourceVersion).toBe(stored.metadata.resourceVersion);

    expect(await as(['revoke', '--role', 'lanyard-viewer', '--service-account', 'ci-bot'])).toMatchObject({
      stdout: 'role/lanyard-viewer updated\n',
      exitCode: 0,
    });
    expect((await admin.get(path)).subjects).toEqual([
      { kind: 'ServiceAccount', name: 'lanyard-viewer', namespace: shop },
    ]);
    expect(await as(['revoke', '--role', 'lanyard-viewer', '--service-account', 'ci-bot'])).toMatchObject({
      stdout: 'role/lanyard-viewer unchanged\n',
      exitCode: 0,
    });
  });
});
