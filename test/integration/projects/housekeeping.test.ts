// Projects housekeeping (docs/projects-and-tokens.md#1-create-a-project): drift of a built-in role is reported as a Warning Event and a gauge, never
// repaired by the controller; `lanyard doctor` reports it with the fix, and `create project --adopt` repairs it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { silentLogger } from '../../../src/runtime/log.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import type { Running } from '../../../src/runtime/deps.ts';
import { startProjectsHousekeeping } from '../../../src/projects/housekeeping.ts';
import { eventually } from '../../harness/context.ts';
import { adminClient, deleteNamespaces, lanyard, newProject } from './helpers.ts';

let admin: KubeClient;
let running: Running;
const metrics = new Registry();
const cleanup: string[] = [];

beforeAll(async () => {
  admin = await adminClient();
  // A short creation grace keeps the test fast; the default (30 s) covers slow project creation.
  running = await startProjectsHousekeeping(
    { kube: admin, log: silentLogger(), metrics, clock: systemClock },
    { creationGraceMs: 1_500 },
  );
});
afterAll(async () => {
  await running.stop();
  await deleteNamespaces(admin, cleanup);
  admin.close();
});

async function gauge(project: string): Promise<number | undefined> {
  const m = await metrics.getSingleMetric('lanyard_project_builtin_roles_drifted')!.get();
  return m.values.find((v) => v.labels.project === project)?.value;
}

describe('built-in role drift', () => {
  it('is reported by event, gauge and doctor, and repaired only by create project --adopt', async () => {
    const shop = await newProject('drift');
    cleanup.push(shop);
    await eventually(async () => expect(await gauge(shop)).toBe(0), 10_000);
    expect((await lanyard('admin', ['doctor', '-p', shop])).stdout).not.toContain(`project ${shop}`);

    const rolePath = `/apis/rbac.authorization.k8s.io/v1/namespaces/${shop}/roles/lanyard-viewer`;
    const role = await admin.get(rolePath);
    role.rules.push({ apiGroups: [''], resources: ['secrets'], verbs: ['get'] });
    const altered = await admin.update(rolePath, role);

    await eventually(async () => expect(await gauge(shop)).toBe(1), 10_000);
    await eventually(async () => {
      // A Namespace is cluster-scoped, so its events live in "default" (where kubectl describe namespace finds them).
      const list = await admin.get('/apis/events.k8s.io/v1/namespaces/default/events');
      const e = (list.items as Json[]).find(
        (i) => i.reason === 'BuiltInRoleDrift' && i.regarding?.name === shop,
      );
      expect(e).toMatchObject({
        type: 'Warning',
        reason: 'BuiltInRoleDrift',
        regarding: { kind: 'Namespace', name: shop },
        note: `built-in roles of project "${shop}" drifted: role "lanyard-viewer" rules differ from the built-in rules; run: lanyard create project ${shop} --adopt`,
      });
    }, 10_000);
    // The controller never writes RBAC.
    expect((await admin.get(rolePath)).metadata.resourceVersion).toBe(altered.metadata.resourceVersion);

    const doctor = await lanyard('admin', ['doctor', '-p', shop]);
    expect(doctor.exitCode).toBe(7);
    expect(doctor.stdout).toContain(
      `ERROR  project ${shop}  built-in role "lanyard-viewer" drifted: role "lanyard-viewer" rules differ from the built-in rules\n` +
        `       fix: lanyard create project ${shop} --adopt\n`,
    );
    expect(doctor.stdout).toMatch(/\n\d+ errors?, \d+ warnings?\n$/);

    const adopt = await lanyard('admin', ['create', 'project', shop, '--adopt']);
    expect(adopt).toMatchObject({
      exitCode: 0,
      stdout: `project/${shop} adopted\nrole/lanyard-viewer updated\n`,
    });
    await eventually(async () => expect(await gauge(shop)).toBe(0), 10_000);
    expect((await lanyard('admin', ['doctor', '-p', shop])).stdout).not.toContain(`project ${shop}`);
  });
});
