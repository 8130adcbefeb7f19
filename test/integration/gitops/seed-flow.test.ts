// The Argo CD flow of docs/gitops.md, end to end with the real webhook and the real controller (and the AWS simulator,
// whose role and association visibility lags like IAM's and EKS's): the ServiceAccount, the PodIdentityAssociation and
// the Deployment are applied together, as one sync wave with no delay and no validation Job. Argo CD's own health
// evaluation (tools/argocd-health) is sampled over time on the live objects. With a correct trust policy the
// association goes Progressing -> Healthy while the Pod waits at the identity gate, then the gate opens; with a wrong
// one the association shows the exchange's error and the Pod stays gated until the trust policy is fixed.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { binaries } from '../../../src/sandbox/binaries.ts';
import { controlPlane } from '../../harness/context.ts';
import { ccTrust, GATE, startVerificationEnv, type VerificationEnv } from '../verification/env.ts';
import { BUILD_TIMEOUT_MS, argocdHealth, argocdHealthBinary, type Health } from './argocd.ts';

const APP = 'argo-ack-eks-static';
const API = '/apis/lanyard.dev/v1alpha1';

let env: VerificationEnv;
let rolloutControllers: ChildProcess | undefined;
beforeAll(async () => {
  argocdHealthBinary();
  env = await startVerificationEnv({ seed: 1402 });
  // The shared control plane runs no workload controllers; this file adds the real Deployment and ReplicaSet
  // controllers (a second kube-controller-manager), so the Deployment makes its Pods as in a cluster.
  const log = fs.openSync(path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'gitops-kcm-')), 'kcm.log'), 'a');
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
  // EKS Pod Identity's eventual consistency, as seed 002 meets it: eks-auth sees a new association 3-8 s after
  // CreatePodIdentityAssociation returns.
  env.sim.control.configure({ visibility: { eksAuth: [3000, 8000] } });
}, BUILD_TIMEOUT_MS);
afterAll(async () => {
  if (rolloutControllers && rolloutControllers.exitCode === null) {
    const exited = new Promise((r) => rolloutControllers!.once('exit', r));
    rolloutControllers.kill('SIGTERM');
    await exited;
  }
  await env?.stop();
});

/** The seed's chart, as Lanyard objects: one wave, no hook weights, no Job. */
function manifests(roleARN: string): Json[] {
  const labels = { app: APP };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: APP } },
    {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PodIdentityAssociation',
      metadata: { name: APP },
      spec: { serviceAccount: APP, roleARN },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: APP, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: APP,
            containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
          },
        },
      },
    },
  ];
}

/** Creates the objects in the order Argo CD applies one wave (kind order: ServiceAccount, custom resources, Deployment). */
async function applyWave(ns: string, objects: Json[]): Promise<void> {
  const paths: Record<string, string> = {
    ServiceAccount: `/api/v1/namespaces/${ns}/serviceaccounts`,
    PodIdentityAssociation: `${API}/namespaces/${ns}/podidentityassociations`,
    Deployment: `/apis/apps/v1/namespaces/${ns}/deployments`,
  };
  for (const o of objects) await env.admin.create(paths[o.kind]!, o);
}

interface Sample {
  atMs: number;
  health: Health[];
  gated: boolean;
}

/** The live objects Argo CD would assess: the association, the Deployment, its ReplicaSet and Pods. */
async function live(ns: string): Promise<{ objects: Json[]; pods: Json[] }> {
  const [a, d, rs, pods] = await Promise.all([
    env.admin.get(`${API}/namespaces/${ns}/podidentityassociations/${APP}`),
    env.admin.get(`/apis/apps/v1/namespaces/${ns}/deployments/${APP}`),
    env.admin.get(`/apis/apps/v1/namespaces/${ns}/replicasets`, { labelSelector: `app=${APP}` }),
    env.admin.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `app=${APP}` }),
  ]);
  const withKind = (items: Json[], kind: string, apiVersion: string) =>
    items.map((i) => ({ apiVersion, kind, ...i }));
  return {
    objects: [a, d, ...withKind(rs.items, 'ReplicaSet', 'apps/v1'), ...withKind(pods.items, 'Pod', 'v1')],
    pods: pods.items,
  };
}

/** Samples Argo CD's health every 200 ms until `done` holds (or the bound passes); keeps each distinct state once. */
async function sample(ns: string, done: (s: Sample) => boolean, boundMs: number): Promise<Sample[]> {
  const start = Date.now();
  const seen: Sample[] = [];
  while (Date.now() - start < boundMs) {
    const { objects, pods } = await live(ns);
    const s: Sample = {
      atMs: Date.now() - start,
      health: argocdHealth(objects),
      gated: pods.some((p) => (p.spec.schedulingGates ?? []).some((g: Json) => g.name === GATE)),
    };
    const key = (x: Sample) => JSON.stringify([x.health.map((h) => [h.kind, h.status, h.message]), x.gated]);
    if (seen.length === 0 || key(seen[seen.length - 1]!) !== key(s)) seen.push(s);
    if (done(s)) return seen;
    await new Promise((r) => setTimeout(r, 200));
  }
  record(`unfinished-${Date.now()}`, seen);
  throw new Error(`no final state within ${boundMs} ms; states seen:\n${JSON.stringify(seen, null, 1)}`);
}

const of = (s: Sample, kind: string) => s.health.find((h) => h.kind === kind)!;

function record(name: string, samples: Sample[]): void {
  // For docs/gitops.md: LANYARD_GITOPS_TIMELINE=dir writes each timeline as it was observed.
  const dir = process.env.LANYARD_GITOPS_TIMELINE;
  if (dir) fs.writeFileSync(`${dir}/${name}.json`, JSON.stringify(samples, null, 1));
}

describe('the seed 002 flow under Argo CD: association and Deployment in one wave', () => {
  it('shows the association Progressing while the Pod waits at the gate, then Healthy once the identity is proven', async () => {
    const ns = await env.namespace('sample-argocd-ack-eks');
    const role = await env.aws.iam.createRole({
      roleName: 'sample-argocd-ack-eks-role',
      assumeRolePolicyDocument: ccTrust(),
    });
    await applyWave(ns, manifests(role.arn));

    const samples = await sample(
      ns,
      (s) =>
        of(s, 'PodIdentityAssociation').status === 'Healthy' &&
        !s.gated &&
        s.health.some((h) => h.kind === 'Pod'),
      90_000,
    );
    record('correct-trust', samples);

    // Before the identity is proven, every Pod of the Deployment is held at the gate and the association is not Healthy.
    const early = samples.filter((s) => of(s, 'PodIdentityAssociation').status !== 'Healthy');
    expect(early.length).toBeGreaterThan(0);
    for (const s of early) expect(of(s, 'PodIdentityAssociation').status).toBe('Progressing');
    expect(samples.some((s) => s.gated && of(s, 'PodIdentityAssociation').status === 'Progressing')).toBe(
      true,
    );
    // eks-auth lagging behind EKS makes the first exchanges fail: shown on the association, never Degraded.
    expect(
      samples.some((s) =>
        /^ExchangeFailed: .*ResourceNotFoundException.*\(retrying since /.test(
          of(s, 'PodIdentityAssociation').message,
        ),
      ),
    ).toBe(true);
    // The Pod left the gate because the verifier proved its own identity (the association's condition follows within
    // its 5 s write interval).
    const pods = await env.admin.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `app=${APP}` });
    expect(
      pods.items.map((p: Json) => p.metadata.annotations?.['lanyard.dev/identity-verification']),
    ).toEqual(['verified']);
    const last = samples[samples.length - 1]!;
    expect(of(last, 'PodIdentityAssociation').message).toMatch(/^CredentialsMatch: /);
    // While gated, Argo CD shows the Deployment waiting for its rollout, and the Pod Pending, never failed.
    for (const s of samples.filter((x) => x.gated)) {
      expect(of(s, 'Deployment').status).toBe('Progressing');
      expect(of(s, 'Pod').status).toBe('Progressing');
    }
  }, 150_000);

  it('shows the exchange error on the association while the Pod stays gated when the trust policy is wrong, then heals', async () => {
    const ns = await env.namespace('sample-argocd-ack-eks-bad');
    const wrong = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'ec2.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
        },
      ],
    });
    const role = await env.aws.iam.createRole({
      roleName: 'sample-argocd-ack-eks-wrong',
      assumeRolePolicyDocument: wrong,
    });
    await applyWave(ns, manifests(role.arn));

    // Within the verifier's deadline the association stays Progressing but carries the exchange error; it turns
    // Degraded once the failure outlasts the deadline (5 minutes; that transition is covered in health-states.test.ts).
    const failing = await sample(
      ns,
      (s) =>
        /^ExchangeFailed: .*AccessDenied/.test(of(s, 'PodIdentityAssociation').message) &&
        s.health.some((h) => h.kind === 'Pod'),
      90_000,
    );
    const last = of(failing[failing.length - 1]!, 'PodIdentityAssociation');
    expect(last.status).toBe('Progressing');
    expect(last.message).toMatch(/\(retrying since .*\)$/);
    for (const s of failing) {
      expect(of(s, 'PodIdentityAssociation').status).toBe('Progressing');
      expect(s.gated || !s.health.some((h) => h.kind === 'Pod')).toBe(true);
    }

    // Fixing the trust policy (in IAM, not in Git) heals it: the association turns Healthy and the Pod is released.
    await env.aws.iam.updateAssumeRolePolicy('sample-argocd-ack-eks-wrong', ccTrust());
    env.sim.control.makeRoleVisible('sample-argocd-ack-eks-wrong');
    const healing = await sample(
      ns,
      (s) =>
        of(s, 'PodIdentityAssociation').status === 'Healthy' &&
        !s.gated &&
        s.health.some((h) => h.kind === 'Pod'),
      90_000,
    );
    record('wrong-trust', [...failing, ...healing]);
    expect(of(healing[healing.length - 1]!, 'PodIdentityAssociation').message).toMatch(/^CredentialsMatch: /);
  }, 240_000);
});
