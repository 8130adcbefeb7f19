// Seed 001 (docs/projects-and-tokens.md, "Kargo's label"): a ServiceAccount GitOps'd with Kargo's label
// rbac.kargo.akuity.io/service-account applies unchanged and is a project service account: listed, granted a role,
// given a token that works with kubectl's API; the CLI warns and the controller emits a Warning Event suggesting
// Lanyard's label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { createKubeClient } from '../../../src/kube/client.ts';
import { silentLogger } from '../../../src/runtime/log.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import type { Running } from '../../../src/runtime/deps.ts';
import { startProjectsHousekeeping } from '../../../src/projects/housekeeping.ts';
import { controlPlane, eventually } from '../../harness/context.ts';
import { adminClient, deleteNamespaces, lanyard, newProject } from '../projects/helpers.ts';
import { kubectlApply, seedManifests } from './helpers.ts';

let admin: KubeClient;
let running: Running;
let project: string;
const NOTICE = (p: string) =>
  `serviceaccount "my-sa" in project "${p}" is marked by Kargo's label rbac.kargo.akuity.io/service-account; ` +
  'Lanyard accepts it, but rename it to rbac.lanyard.dev/service-account: "true"';

beforeAll(async () => {
  admin = await adminClient();
  running = await startProjectsHousekeeping({
    kube: admin,
    log: silentLogger(),
    metrics: new Registry(),
    clock: systemClock,
  });
  project = await newProject('my-project');
  for (const o of seedManifests('001-kargo-serviceaccount.yaml', { PROJECT: project }))
    await kubectlApply(admin, o);
});
afterAll(async () => {
  await running?.stop();
  await deleteNamespaces(admin, [project]);
  admin.close();
});

describe('seed 001 applied unchanged', () => {
  it("lists the account as a project service account, with a warning naming Lanyard's label", async () => {
    const r = await lanyard('admin', ['get', 'serviceaccounts', '--project', project]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^NAME\s+MANAGED\s+AGE\nmy-sa\s+false\s+\S+\n$/);
    expect(r.stderr).toBe(`warning: ${NOTICE(project)}\n`);
  });

  it('grants it a role and makes it a token that authenticates as the account', async () => {
    const role = await lanyard('admin', ['create', 'role', 'developer', '--project', project]);
    expect(role.exitCode, role.stderr).toBe(0);
    const grant = await lanyard('admin', [
      'grant',
      '--project',
      project,
      '--role',
      'developer',
      '--service-account',
      'my-sa',
    ]);
    expect(grant.exitCode, grant.stderr).toBe(0);
    expect(grant.stdout).toBe('role/developer updated\n');

    const tok = await lanyard('admin', [
      'create',
      'serviceaccounttoken',
      '--project',
      project,
      '--service-account',
      'my-sa',
      'my-sa-token',
    ]);
    expect(tok.exitCode, tok.stderr).toBe(0);
    expect(tok.stderr).toContain(`warning: ${NOTICE(project)}`);
    const token = tok.stdout.trim();
    expect(token).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
    // The token works with any Kubernetes client: it authenticates as the account.
    const cp = controlPlane();
    const asSa = await createKubeClient({
      server: cp.server,
      caData: Buffer.from(cp.caPem).toString('base64'),
      token: token!,
    });
    try {
      const review = await asSa.create('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'SelfSubjectReview',
      });
      expect(review.status.userInfo.username).toBe(`system:serviceaccount:${project}:my-sa`);
    } finally {
      asSa.close();
    }
  });

  it('gets a Warning Event DeprecatedLabel from the controller', async () => {
    await eventually(async () => {
      const list = await admin.get(`/apis/events.k8s.io/v1/namespaces/${project}/events`);
      const ev = (list.items as Json[]).find(
        (e) => e.regarding?.kind === 'ServiceAccount' && e.regarding?.name === 'my-sa',
      );
      expect(ev).toMatchObject({ type: 'Warning', reason: 'DeprecatedLabel', note: NOTICE(project) });
    }, 15_000);
  });
});
