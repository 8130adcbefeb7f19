// The CRD contract (docs/associations.md#fields): validation, CEL immutability with the exact messages, printer
// columns, short name and category. Needs only the API server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeClient } from '../../../src/kube/client.ts';
import { KubeApiError } from '../../../src/kube/client.ts';
import { adminClient, newNamespace } from '../../harness/context.ts';

const ROLE = 'arn:aws:iam::111122223333:role/team-a/uploader';
let kube: KubeClient;
let ns: string;
const path = (name?: string) =>
  `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations${name ? `/${name}` : ''}`;

beforeAll(async () => {
  kube = await adminClient();
  ns = await newNamespace(kube, 'lpia-crd');
});
afterAll(async () => {
  await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  kube.close();
});

async function refused(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(KubeApiError);
    expect((e as KubeApiError).status).toBe(422);
    return (e as KubeApiError).serverMessage;
  }
  throw new Error('the API server accepted the object');
}

const body = (name: string, spec: object) => ({
  apiVersion: 'lanyard.dev/v1alpha1',
  kind: 'PodIdentityAssociation',
  metadata: { name },
  spec: { serviceAccount: 'uploader', roleARN: ROLE, ...spec },
});

describe('PodIdentityAssociation CRD', () => {
  it('serviceAccount and clusterName are immutable, with the CEL messages', async () => {
    await kube.create(path(), body('a7', { clusterName: 'prod-eu' }));
    const m1 = await refused(
      kube.patch(path('a7'), { spec: { serviceAccount: 'other' } }, 'application/merge-patch+json'),
    );
    expect(m1).toContain('spec.serviceAccount: Invalid value');
    expect(m1).toContain('serviceAccount is immutable; delete and recreate the association');
    const m2 = await refused(
      kube.patch(path('a7'), { spec: { clusterName: 'other' } }, 'application/merge-patch+json'),
    );
    expect(m2).toContain('clusterName is immutable; delete and recreate the association');
    const m3 = await refused(kube.patch(path('a7'), [{ op: 'remove', path: '/spec/clusterName' }]));
    expect(m3).toContain('clusterName is immutable; delete and recreate the association');
    // Adding a clusterName later is a change too.
    await kube.create(path(), body('a7b', {}));
    const m4 = await refused(
      kube.patch(path('a7b'), { spec: { clusterName: 'x' } }, 'application/merge-patch+json'),
    );
    expect(m4).toContain('clusterName is immutable');
    // The role may change (UpdatePodIdentityAssociation).
    const ok = await kube.patch(
      path('a7'),
      { spec: { roleARN: 'arn:aws:iam::111122223333:role/b' } },
      'application/merge-patch+json',
    );
    expect(ok.spec.roleARN).toBe('arn:aws:iam::111122223333:role/b');
    expect(ok.spec.disableSessionTags).toBe(false);
  });

  it('refuses bad input naming the field and rule, creating nothing', async () => {
    expect(
      await refused(kube.create(path(), body('bad-role', { roleARN: 'arn:aws:iam::1:user/x' }))),
    ).toContain('spec.roleARN');
    expect(await refused(kube.create(path(), body('bad-sa', { serviceAccount: 'Not_A_Name' })))).toContain(
      'spec.serviceAccount',
    );
    expect(await refused(kube.create(path(), body('bad-cluster', { clusterName: '-x' })))).toContain(
      'spec.clusterName',
    );
    expect(await refused(kube.create(path(), body('bad-tag', { tags: { 'aws:x': '1' } })))).toContain(
      'tag keys must not start with "aws:" or "lanyard.dev/"',
    );
    expect(
      await refused(kube.create(path(), body('bad-tag2', { tags: { 'lanyard.dev/uid': '1' } }))),
    ).toContain('spec.tags');
    // IAM's limit: a role ARN has at most 623 characters (name 64, path 512).
    const longRole = `arn:aws:iam::111122223333:role/${'p/'.repeat(300)}x`;
    expect(await refused(kube.create(path(), body('bad-long-role', { roleARN: longRole })))).toMatch(
      /spec\.roleARN: Too long: may not be (more than|longer than) 623/,
    );
    expect(
      await refused(kube.create(path(), body('bad-long-target', { targetRoleARN: longRole }))),
    ).toContain('spec.targetRoleARN');
    const many = Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`k${i}`, 'v']));
    expect(await refused(kube.create(path(), body('bad-tag3', { tags: many })))).toContain('spec.tags');
    const list = await kube.get(path());
    expect(list.items.map((i: { metadata: { name: string } }) => i.metadata.name)).not.toContain('bad-role');
  });

  it('spec.policy: a JSON object of at most 2048 characters, only with disableSessionTags', async () => {
    const policy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::reports/team-a/*' }],
    });
    const ok = await kube.create(path(), body('pol-ok', { policy, disableSessionTags: true }));
    expect(ok.spec.policy).toBe(policy);
    expect(await refused(kube.create(path(), body('pol-tags', { policy })))).toContain(
      'policy requires disableSessionTags true (EKS refuses a session policy with session tags)',
    );
    const notObject = await refused(
      kube.create(path(), body('pol-list', { policy: '["s3:GetObject"]', disableSessionTags: true })),
    );
    expect(notObject).toContain('spec.policy');
    expect(notObject).toContain('policy must be a JSON object (an IAM policy document)');
    const long = await refused(
      kube.create(
        path(),
        body('pol-long', { policy: `{"Sid":"${'x'.repeat(2050)}"}`, disableSessionTags: true }),
      ),
    );
    expect(long).toContain('spec.policy');
    expect(long).toMatch(/2048/);
    // Turning session tags back on while a policy is set is refused too.
    expect(
      await refused(
        kube.patch(path('pol-ok'), { spec: { disableSessionTags: false } }, 'application/merge-patch+json'),
      ),
    ).toContain('policy requires disableSessionTags true');
    const names = (await kube.get(path())).items.map((i: { metadata: { name: string } }) => i.metadata.name);
    expect(names).not.toContain('pol-tags');
    expect(names).not.toContain('pol-list');
    expect(names).not.toContain('pol-long');
  });

  it('has the printer columns, short name lpia and category lanyard', async () => {
    const table = await kube.request({
      path: path(),
      accept: 'application/json;as=Table;g=meta.k8s.io;v=v1',
    });
    const cols = table.columnDefinitions.map(
      (c: { name: string; priority: number }) => `${c.name}:${c.priority}`,
    );
    expect(cols).toEqual([
      'Name:0',
      'ServiceAccount:0',
      'Role:0',
      'Synced:0',
      'Verified:0',
      'Ready:0',
      'Age:0',
      'Cluster:1',
      'Association:1',
      'TargetRole:1',
      'Policy:1',
    ]);
    const disc = await kube.get('/apis/lanyard.dev/v1alpha1');
    const r = disc.resources.find((x: { name: string }) => x.name === 'podidentityassociations');
    expect(r.shortNames).toEqual(['lpia']);
    expect(r.categories).toEqual(['lanyard']);
    expect(r.namespaced).toBe(true);
    expect(disc.resources.some((x: { name: string }) => x.name === 'podidentityassociations/status')).toBe(
      true,
    );
  });
});
