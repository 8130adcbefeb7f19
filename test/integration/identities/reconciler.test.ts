// The running-Pod identity reconciler (docs/identities.md) against the real control plane (kube-apiserver, etcd,
// kube-controller-manager), the real webhook (gate on) and controller, and the AWS simulator: the exact scenarios of
// the issue — a Pod created before its ServiceAccount annotation or its PodIdentityAssociation is reported `missing`
// (Event, metric, `lanyard get identities`, the association's Ready), a repair-annotated Deployment is restarted and
// its new Pod gets the identity while a bare Pod is only reported, and `stale` and `denied` after start.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { runCli } from '../../../src/cli/run.ts';
import { controlPlane, eventually, throughout } from '../../harness/context.ts';
import { binaries } from '../../../src/sandbox/binaries.ts';
import {
  association,
  ccTrust,
  createPod,
  getPod,
  podBody,
  podEvents,
  serviceAccount,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from '../verification/env.ts';

let env: VerificationEnv;
let rolloutControllers: ChildProcess | undefined;
const suffix = randomBytes(3).toString('hex');

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 90 });
  // The shared control plane runs no workload controllers; as in test/integration/gitops, a second
  // kube-controller-manager runs the real Deployment and ReplicaSet controllers, so a rollout restart makes new Pods.
  const log = fs.openSync(
    path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'identities-kcm-')), 'kcm.log'),
    'a',
  );
  rolloutControllers = spawn(
    binaries().controllerManager,
    [
      `--kubeconfig=${controlPlane().adminKubeconfig}`,
      '--controllers=deployment,replicaset',
      '--leader-elect=false',
      '--secure-port=0',
      '--use-service-account-credentials=false',
    ],
    { stdio: ['ignore', log, log] },
  );
});
afterAll(async () => {
  if (rolloutControllers && rolloutControllers.exitCode === null) {
    const exited = new Promise((r) => rolloutControllers!.once('exit', r));
    rolloutControllers.kill('SIGTERM');
    await exited;
  }
  await env?.stop();
});

async function identities(ns: string, extra: string[] = []): Promise<Json[]> {
  const r = await runCli([
    'get',
    'identities',
    '-n',
    ns,
    '-o',
    'json',
    '--kubeconfig',
    controlPlane().adminKubeconfig,
    ...extra,
  ]);
  if (r.exitCode !== 0) throw new Error(`get identities: ${r.stderr}`);
  return r.stdout.trim() ? (JSON.parse(r.stdout).items ?? [JSON.parse(r.stdout)]) : [];
}
const rowOf = async (ns: string, pod: string) => (await identities(ns)).find((i) => i.pod === pod);
const annotateSa = (ns: string, sa: string, annotations: Record<string, string>) =>
  env.admin.patch(
    `/api/v1/namespaces/${ns}/serviceaccounts/${sa}`,
    { metadata: { annotations } },
    'application/merge-patch+json',
  );
async function eventFor(ns: string, name: string, reason: string): Promise<Json> {
  return eventually(
    async () => {
      const e = (await podEvents(env.admin, ns, name)).find((x) => x.reason === reason);
      if (!e) throw new Error(`no ${reason} Event on ${ns}/${name}`);
      return e;
    },
    30_000,
    200,
  );
}
async function gaugeValue(state: string): Promise<number> {
  const m = await env.metrics.getSingleMetric('lanyard_pod_identities')!.get();
  return m.values.find((v) => v.labels.state === state)?.value ?? 0;
}
/** A Pod released by the verifier (gate removed, annotation verified). */
async function released(ns: string, name: string): Promise<Json> {
  return eventually(
    async () => {
      const p = await getPod(env.admin, ns, name);
      if (p.metadata.annotations?.['lanyard.dev/identity-verification'] !== 'verified')
        throw new Error('not released');
      return p;
    },
    30_000,
    200,
  );
}

describe('missing (docs/identities.md, "States")', () => {
  it('a Pod created before its ServiceAccount annotation is reported missing: Event on the Pod, metric, get identities', async () => {
    const ns = await env.namespace('idsa');
    await serviceAccount(env.admin, ns, 'app');
    const early = await createPod(env.admin, ns, podBody('early', 'app'));
    expect(JSON.stringify(early.spec.containers[0].env ?? [])).not.toContain('AWS_ROLE_ARN');
    // Nothing declared, nothing used: not reported at all.
    expect(await rowOf(ns, 'early')).toBeUndefined();

    const missingBefore = await gaugeValue('missing');
    const role = await env.aws.iam.createRole({
      roleName: `idsa-${suffix}`,
      assumeRolePolicyDocument: wiTrust(env),
    });
    await annotateSa(ns, 'app', { 'eks.amazonaws.com/role-arn': role.arn });

    const ev = await eventFor(ns, 'early', 'IdentityMissing');
    expect(ev.type).toBe('Warning');
    expect(ev.reportingController).toBe('lanyard.dev/identities');
    expect(ev.note).toContain(`declares WebIdentity ${role.arn} (the ServiceAccount annotation)`);
    expect(await gaugeValue('missing')).toBeGreaterThanOrEqual(missingBefore + 1);
    expect(await rowOf(ns, 'early')).toMatchObject({
      state: 'missing',
      source: 'service_account',
      role: null,
      declaredRole: role.arn,
      workload: null,
    });

    // A Pod created now gets the identity, is proven, and is ok.
    await createPod(env.admin, ns, podBody('late', 'app'));
    await released(ns, 'late');
    await eventually(
      async () =>
        expect(await rowOf(ns, 'late')).toMatchObject({
          state: 'ok',
          role: role.arn,
          source: 'service_account',
        }),
      15_000,
      200,
    );
    const table = await runCli([
      'get',
      'identities',
      '-n',
      ns,
      '--kubeconfig',
      controlPlane().adminKubeconfig,
    ]);
    expect(table.stdout).toMatch(
      new RegExp(`early\\s+app\\s+WebIdentity\\s+<none>\\s+serviceaccount\\s+missing`),
    );
    expect(table.stdout).toMatch(
      new RegExp(
        `late\\s+app\\s+WebIdentity\\s+${role.arn.replace(/[/.]/g, '\\$&')}\\s+serviceaccount\\s+ok`,
      ),
    );
  });

  it("a Pod created before its PodIdentityAssociation is missing, and the association's Ready counts it until it goes", async () => {
    const ns = await env.namespace('idpia');
    await serviceAccount(env.admin, ns, 'uploader');
    await createPod(env.admin, ns, podBody('before', 'uploader'));
    const role = await env.aws.iam.createRole({
      roleName: `idpia-${suffix}`,
      assumeRolePolicyDocument: ccTrust(),
    });
    await association(env.admin, ns, 'uploader', 'uploader', role.arn);

    const ev = await eventFor(ns, 'before', 'IdentityMissing');
    expect(ev.note).toContain(`PodIdentityAssociation ${ns}/uploader`);
    const ready = async () =>
      (
        await env.admin.get(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations/uploader`)
      ).status?.conditions?.find((c: Json) => c.type === 'Ready');
    await eventually(
      async () => {
        const c = await ready();
        expect(c?.status).toBe('True');
        expect(c?.message).toContain(
          `1 running Pod of ServiceAccount ${ns}/uploader started before the association and run without its identity`,
        );
      },
      45_000,
      250,
    );
    expect(await rowOf(ns, 'before')).toMatchObject({
      state: 'missing',
      source: 'association',
      mode: 'ContainerCredentials',
    });

    await env.admin.delete(`/api/v1/namespaces/${ns}/pods/before`);
    await eventually(
      async () => {
        const c = await ready();
        expect(c?.status).toBe('True');
        expect(c?.message).toBe('synced and verified');
      },
      30_000,
      250,
    );
  });
});

describe('denied before start (docs/identities.md, "States")', () => {
  it('a Pod created before an association no IdentityPolicy allows is denied with reason PolicyDenied, not missing, and not counted in Ready', async () => {
    const ns = await env.namespace('iddenpia', { team: `idy-${suffix}` });
    await serviceAccount(env.admin, ns, 'uploader');
    await createPod(env.admin, ns, podBody('before', 'uploader'));
    const policy = `iddenpia-${suffix}`;
    await env.admin.create('/apis/lanyard.dev/v1alpha1/identitypolicies', {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'IdentityPolicy',
      metadata: { name: policy },
      spec: {
        rules: [
          {
            namespaceSelector: { matchLabels: { team: `idy-${suffix}` } },
            serviceAccounts: ['*'],
            roles: ['arn:aws:iam::*:role/other-*'],
          },
        ],
      },
    });
    try {
      const role = await env.aws.iam.createRole({
        roleName: `iddenpia-${suffix}`,
        assumeRolePolicyDocument: ccTrust(),
      });
      await association(env.admin, ns, 'uploader', 'uploader', role.arn);
      // The associations controller's own verdict on the same policy decision.
      await eventually(
        async () => {
          const a = await env.admin.get(
            `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations/uploader`,
          );
          const ready = a.status?.conditions?.find((c: Json) => c.type === 'Ready');
          expect(ready).toMatchObject({ status: 'False', reason: 'PolicyDenied' });
          expect(ready.message).not.toContain('started before the association');
        },
        30_000,
        250,
      );

      const ev = await eventFor(ns, 'before', 'IdentityDenied');
      expect(ev.note).toContain(
        `PolicyDenied: ServiceAccount ${ns}/uploader declares ContainerCredentials ${role.arn} (PodIdentityAssociation ${ns}/uploader), ` +
          'which no IdentityPolicy allows',
      );
      expect(await rowOf(ns, 'before')).toMatchObject({
        state: 'denied',
        reason: 'PolicyDenied',
        source: 'association',
        role: null,
        declaredRole: role.arn,
      });
      expect((await podEvents(env.admin, ns, 'before')).map((e) => e.reason)).not.toContain(
        'IdentityMissing',
      );
      expect(await gaugeValue('denied')).toBeGreaterThanOrEqual(1);
    } finally {
      await env.admin.delete(`/apis/lanyard.dev/v1alpha1/identitypolicies/${policy}`);
    }
  });
});

describe('repair (docs/identities.md, "Repair")', () => {
  it('a repair-annotated Deployment is restarted once and its new Pod gets the identity; a bare Pod is only reported', async () => {
    const ns = await env.namespace('idfix');
    await env.admin.patch(
      `/api/v1/namespaces/${ns}`,
      { metadata: { annotations: { 'lanyard.dev/identity-repair': 'restart' } } },
      'application/merge-patch+json',
    );
    await serviceAccount(env.admin, ns, 'web');
    await env.admin.create(`/apis/apps/v1/namespaces/${ns}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        replicas: 1,
        strategy: { type: 'Recreate' },
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { ...podBody('x', 'web').spec } },
      },
    });
    const lonelyPod = await createPod(env.admin, ns, podBody('lonely', 'web'));
    const podsOf = async () =>
      ((await env.admin.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'app=web' })).items ??
        []) as Json[];
    const [old] = await eventually(
      async () => {
        const p = await podsOf();
        if (p.length !== 1) throw new Error('no Deployment Pod yet');
        return p;
      },
      30_000,
      200,
    );
    expect(JSON.stringify(old!.spec.containers[0].env ?? [])).not.toContain('AWS_ROLE_ARN');

    const role = await env.aws.iam.createRole({
      roleName: `idfix-${suffix}`,
      assumeRolePolicyDocument: wiTrust(env),
    });
    await annotateSa(ns, 'web', { 'eks.amazonaws.com/role-arn': role.arn });

    const restartedAt = await eventually(
      async () => {
        const d = await env.admin.get(`/apis/apps/v1/namespaces/${ns}/deployments/web`);
        const a = d.spec.template.metadata.annotations ?? {};
        if (!a['lanyard.dev/identity-restarted-at']) throw new Error('not restarted');
        expect(a['kubectl.kubernetes.io/restartedAt']).toBe(a['lanyard.dev/identity-restarted-at']);
        return a['lanyard.dev/identity-restarted-at'] as string;
      },
      30_000,
      200,
    );
    const repair = await eventually(
      async () => {
        const list = await env.admin.get(`/apis/events.k8s.io/v1/namespaces/${ns}/events`);
        const e = (list.items as Json[]).find(
          (x) => x.reason === 'IdentityRepair' && x.regarding?.kind === 'Deployment',
        );
        if (!e) throw new Error('no IdentityRepair Event');
        return e;
      },
      15_000,
      200,
    );
    expect(repair.note).toContain('rollout restart: 1 Pod(s) lack the identity');

    // The new Pod is injected with the role declared now, proven, and ok; the old one is gone.
    const fresh = await eventually(
      async () => {
        const p = await podsOf();
        if (p.length !== 1 || p[0]!.metadata.uid === old!.metadata.uid) throw new Error('rollout not done');
        return p[0]!;
      },
      45_000,
      250,
    );
    expect(fresh.spec.containers[0].env).toContainEqual({ name: 'AWS_ROLE_ARN', value: role.arn });
    await released(ns, fresh.metadata.name);
    await eventually(
      async () =>
        expect(await rowOf(ns, fresh.metadata.name)).toMatchObject({
          state: 'ok',
          workload: 'deployment/web',
        }),
      15_000,
      200,
    );

    // The bare Pod has no workload: reported, never restarted or deleted.
    const lonely = await rowOf(ns, 'lonely');
    expect(lonely).toMatchObject({ state: 'missing', workload: null });
    expect((await getPod(env.admin, ns, 'lonely')).metadata.uid).toBe(lonelyPod.metadata.uid);
    await eventFor(ns, 'lonely', 'IdentityMissing');
    // One restart only.
    await throughout(
      "the restarted Deployment's new Pods are reconciled within it, and a second restart would come from them",
      2_000,
      async () => {
        const d = await env.admin.get(`/apis/apps/v1/namespaces/${ns}/deployments/web`);
        expect(d.spec.template.metadata.annotations['lanyard.dev/identity-restarted-at']).toBe(restartedAt);
      },
    );
  });

  it('without the annotation nothing is restarted', async () => {
    const ns = await env.namespace('idnofix');
    await serviceAccount(env.admin, ns, 'web');
    await env.admin.create(`/apis/apps/v1/namespaces/${ns}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web' } },
        template: { metadata: { labels: { app: 'web' } }, spec: { ...podBody('x', 'web').spec } },
      },
    });
    const pod = await eventually(
      async () => {
        const p = (await env.admin.get(`/api/v1/namespaces/${ns}/pods`)).items ?? [];
        if (p.length !== 1) throw new Error('no Pod yet');
        return p[0] as Json;
      },
      30_000,
      200,
    );
    const role = await env.aws.iam.createRole({
      roleName: `idnofix-${suffix}`,
      assumeRolePolicyDocument: wiTrust(env),
    });
    await annotateSa(ns, 'web', { 'eks.amazonaws.com/role-arn': role.arn });
    await eventFor(ns, pod.metadata.name, 'IdentityMissing');
    // The Deployment got the Warning too, and was left alone.
    await eventually(
      async () => {
        const list = await env.admin.get(`/apis/events.k8s.io/v1/namespaces/${ns}/events`);
        const e = (list.items as Json[]).find(
          (x) => x.reason === 'IdentityMissing' && x.regarding?.kind === 'Deployment',
        );
        expect(e?.note).toContain(`Pod ${pod.metadata.name}:`);
      },
      15_000,
      200,
    );
    const d = await env.admin.get(`/apis/apps/v1/namespaces/${ns}/deployments/web`);
    expect(d.spec.template.metadata.annotations?.['lanyard.dev/identity-restarted-at']).toBeUndefined();
    expect(await rowOf(ns, pod.metadata.name)).toMatchObject({
      state: 'missing',
      workload: 'deployment/web',
    });
  });
});

describe('after start (docs/identities.md, "States")', () => {
  it("stale: the ServiceAccount's role changed after the Pod was proven", async () => {
    const ns = await env.namespace('idstale');
    const a = await env.aws.iam.createRole({
      roleName: `idstale-a-${suffix}`,
      assumeRolePolicyDocument: wiTrust(env),
    });
    const b = await env.aws.iam.createRole({
      roleName: `idstale-b-${suffix}`,
      assumeRolePolicyDocument: wiTrust(env),
    });
    await serviceAccount(env.admin, ns, 'app', { 'eks.amazonaws.com/role-arn': a.arn });
    await createPod(env.admin, ns, podBody('p', 'app'));
    await released(ns, 'p');
    await eventually(async () => expect((await rowOf(ns, 'p'))?.state).toBe('ok'), 15_000, 200);
    await annotateSa(ns, 'app', { 'eks.amazonaws.com/role-arn': b.arn });
    const ev = await eventFor(ns, 'p', 'IdentityStale');
    expect(ev.note).toContain(`now declares WebIdentity ${b.arn}`);
    expect(ev.note).toContain(`but the Pod uses WebIdentity ${a.arn}`);
    expect(await rowOf(ns, 'p')).toMatchObject({ state: 'stale', role: a.arn, declaredRole: b.arn });
  });

  it("denied: an IdentityPolicy that no longer allows the running Pod's role", async () => {
    const ns = await env.namespace('iddeny', { team: `idz-${suffix}` });
    const a = await env.aws.iam.createRole({
      roleName: `iddeny-${suffix}`,
      assumeRolePolicyDocument: wiTrust(env),
    });
    await serviceAccount(env.admin, ns, 'app', { 'eks.amazonaws.com/role-arn': a.arn });
    await createPod(env.admin, ns, podBody('p', 'app'));
    await released(ns, 'p');
    const name = `iddeny-${suffix}`;
    await env.admin.create('/apis/lanyard.dev/v1alpha1/identitypolicies', {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'IdentityPolicy',
      metadata: { name },
      spec: {
        rules: [
          {
            namespaceSelector: { matchLabels: { team: `idz-${suffix}` } },
            serviceAccounts: ['*'],
            roles: ['arn:aws:iam::*:role/other-*'],
          },
        ],
      },
    });
    try {
      const ev = await eventFor(ns, 'p', 'IdentityDenied');
      expect(ev.note).toContain(
        `no IdentityPolicy allows namespace "${ns}" ServiceAccount "app" to use role "${a.arn}"`,
      );
      expect(await rowOf(ns, 'p')).toMatchObject({ state: 'denied', role: a.arn });
      expect(await gaugeValue('denied')).toBeGreaterThanOrEqual(1);
    } finally {
      await env.admin.delete(`/apis/lanyard.dev/v1alpha1/identitypolicies/${name}`);
    }
  });
});
