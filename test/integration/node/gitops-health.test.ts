// The seed 002 flow of docs/gitops.md on a real node: the ServiceAccount, the PodIdentityAssociation and the
// Deployment applied together (one sync wave, no wave delay, no validation Job) against Lanyard installed by its
// chart, with eks-auth seeing a new association 3-8 s late as EKS does. Argo CD's own health evaluation
// (tools/argocd-health, docs/adr/0800) of the live objects is sampled over time: the Deployment goes Progressing ->
// Healthy once its Pod, released from the gate, runs and its first AWS call returned the declared role; with a wrong
// trust policy the Pod never starts and the Deployment turns Degraded at its progress deadline, until IAM is fixed.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { eventually } from '../../harness/context.ts';
import { BUILD_TIMEOUT_MS, argocdHealth, argocdHealthBinary, type Health } from '../gitops/argocd.ts';
import { newNodeNamespace, node, nodeAdmin, podLogs } from '../../harness/node-context.ts';
import {
  ACCOUNT,
  GATE,
  awsAdmin,
  configureSimulator,
  ensureLanyard,
  podIdentityTrust,
  roleArn,
  whoamiPodSpec,
} from '../../harness/node-lanyard.ts';

const APP = 'argo-ack-eks-static';
const API = '/apis/lanyard.dev/v1alpha1';

let admin: KubeClient;
let simConfigBefore: Json;
beforeAll(async () => {
  argocdHealthBinary();
  admin = await nodeAdmin();
  const aws = awsAdmin();
  try {
    await aws.iam.createRole({ roleName: 'node-gitops-app', assumeRolePolicyDocument: podIdentityTrust() });
    // Trusts EC2 instead of EKS Pod Identity: no exchange can succeed until it is fixed.
    await aws.iam.createRole({
      roleName: 'node-gitops-wrong',
      assumeRolePolicyDocument: podIdentityTrust('ec2.amazonaws.com'),
    });
  } finally {
    aws.destroy();
  }
  await ensureLanyard();
  simConfigBefore = (await (await fetch(`${node().simulatorUrl}/_sim/config`)).json()) as Json;
  await configureSimulator({ visibility: { eksAuth: [3000, 8000] } });
}, BUILD_TIMEOUT_MS);
afterAll(async () => {
  if (simConfigBefore) await configureSimulator(simConfigBefore);
  admin?.close();
});

/** The seed's chart with Lanyard's association: one wave; the workload calls AWS once at start, then stays up. */
function manifests(role: string, progressDeadlineSeconds?: number): Json[] {
  const labels = { app: APP };
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: APP } },
    {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PodIdentityAssociation',
      metadata: { name: APP },
      spec: { serviceAccount: APP, roleARN: roleArn(role) },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: APP, labels },
      spec: {
        replicas: 1,
        ...(progressDeadlineSeconds ? { progressDeadlineSeconds } : {}),
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: whoamiPodSpec(APP, ['--stay'], 'Always') },
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
  for (const o of objects) await admin.create(paths[o.kind]!, o);
}

interface Sample {
  atMs: number;
  health: Health[];
  gated: boolean;
  /** Containers started so far (running or terminated), over all Pods. */
  started: number;
}

async function live(ns: string): Promise<{ objects: Json[]; pods: Json[] }> {
  const [a, d, rs, pods] = await Promise.all([
    admin.get(`${API}/namespaces/${ns}/podidentityassociations/${APP}`),
    admin.get(`/apis/apps/v1/namespaces/${ns}/deployments/${APP}`),
    admin.get(`/apis/apps/v1/namespaces/${ns}/replicasets`, { labelSelector: `app=${APP}` }),
    admin.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `app=${APP}` }),
  ]);
  const withKind = (items: Json[], kind: string, apiVersion: string) =>
    items.map((i) => ({ apiVersion, kind, ...i }));
  return {
    objects: [a, d, ...withKind(rs.items, 'ReplicaSet', 'apps/v1'), ...withKind(pods.items, 'Pod', 'v1')],
    pods: pods.items,
  };
}

/** Samples Argo CD's health every 500 ms until `done` holds; keeps each distinct state once. */
async function sample(
  ns: string,
  done: (s: Sample) => boolean,
  boundMs: number,
  start = Date.now(),
): Promise<Sample[]> {
  const seen: Sample[] = [];
  const key = (x: Sample) =>
    JSON.stringify([x.health.map((h) => [h.kind, h.status, h.message]), x.gated, x.started]);
  while (Date.now() - start < boundMs) {
    const { objects, pods } = await live(ns);
    const s: Sample = {
      atMs: Date.now() - start,
      health: argocdHealth(objects),
      gated: pods.some((p) => (p.spec.schedulingGates ?? []).some((g: Json) => g.name === GATE)),
      started: pods
        .flatMap((p) => p.status?.containerStatuses ?? [])
        .filter((c: Json) => c.state?.running || c.state?.terminated).length,
    };
    if (seen.length === 0 || key(seen.at(-1)!) !== key(s)) seen.push(s);
    if (done(s)) return seen;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`no final state within ${boundMs} ms; states seen:\n${JSON.stringify(seen, null, 1)}`);
}

/** The container's output once it printed something: Running (and so Healthy) comes before its first call returns. */
async function firstOutput(ns: string, pod: string): Promise<string> {
  return await eventually(
    async () => {
      const out = (await podLogs(ns, pod)).trim();
      if (!out) throw new Error(`${pod} printed nothing yet`);
      return out;
    },
    30_000,
    250,
  );
}

const of = (s: Sample, kind: string) =>
  s.health.find((h) => h.kind === kind) ?? { kind, name: '', status: 'Missing', message: '' };

function record(name: string, samples: Sample[]): void {
  // For docs/gitops.md: LANYARD_GITOPS_TIMELINE=dir writes each timeline as it was observed.
  const dir = process.env.LANYARD_GITOPS_TIMELINE;
  if (dir) fs.writeFileSync(`${dir}/node-${name}.json`, JSON.stringify(samples, null, 1));
}

describe('Argo CD health of the seed 002 flow on a real node', () => {
  it('shows the Deployment Progressing while its Pod waits at the gate, then Healthy once the Pod runs with its declared role', async () => {
    const ns = await newNodeNamespace(admin, 'gitops-ok');
    const t0 = Date.now();
    await applyWave(ns, manifests('node-gitops-app'));
    const samples = await sample(
      ns,
      (s) => of(s, 'Deployment').status === 'Healthy' && of(s, 'PodIdentityAssociation').status === 'Healthy',
      180_000,
      t0,
    );
    record('correct-trust', samples);

    // While any Pod was gated, the Deployment was Progressing and no container had started.
    const gated = samples.filter((s) => s.gated);
    expect(gated.length).toBeGreaterThan(0);
    for (const s of gated)
      expect({ deployment: of(s, 'Deployment').status, started: s.started }).toEqual({
        deployment: 'Progressing',
        started: 0,
      });
    // Nothing turned Degraded on the way (eks-auth's lag shows as a retried exchange, not as a failure).
    for (const s of samples) expect(s.health.filter((h) => h.status === 'Degraded')).toEqual([]);
    const last = samples.at(-1)!;
    expect(of(last, 'Pod').status).toBe('Healthy');
    expect(last.gated).toBe(false);

    // The container's first AWS call returned the declared role: one line, no error, no restart.
    const pods: Json[] = (await admin.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `app=${APP}` }))
      .items;
    expect(pods).toHaveLength(1);
    expect(pods[0].metadata.annotations['lanyard.dev/identity-verification']).toBe('verified');
    expect(await firstOutput(ns, pods[0].metadata.name)).toMatch(
      new RegExp(`^assumed-role-arn arn:aws:sts::${ACCOUNT}:assumed-role/node-gitops-app/[^\\n]+$`),
    );
    const restarts = (await admin.get(`/api/v1/namespaces/${ns}/pods/${pods[0].metadata.name}`)).status
      .containerStatuses[0].restartCount;
    expect(restarts).toBe(0);
    process.stderr.write(
      `[gitops-health] Healthy after ${(last.atMs / 1000).toFixed(1)}s: ${samples
        .map(
          (s) =>
            `${(s.atMs / 1000).toFixed(1)}s ${s.gated ? 'gated' : 'released'} ` +
            `PIA=${of(s, 'PodIdentityAssociation').status} Deployment=${of(s, 'Deployment').status}`,
        )
        .join('; ')}\n`,
    );
  });

  it('turns the Deployment Degraded at its progress deadline while a wrong trust policy keeps the Pod gated, and Healthy once IAM is fixed', async () => {
    const ns = await newNodeNamespace(admin, 'gitops-wrong');
    const t0 = Date.now();
    await applyWave(ns, manifests('node-gitops-wrong', 20));
    const failing = await sample(ns, (s) => of(s, 'Deployment').status === 'Degraded', 120_000, t0);
    record('wrong-trust', failing);
    const degraded = failing.at(-1)!;
    expect(of(degraded, 'Deployment').message).toMatch(/exceeded its progress deadline/);
    // The Pod never started: held at the gate the whole time.
    for (const s of failing)
      expect({ gated: s.gated || !s.health.some((h) => h.kind === 'Pod'), started: s.started }).toEqual({
        gated: true,
        started: 0,
      });
    // The association shows why (its own Degraded waits for the verify deadline, docs/gitops.md).
    expect(of(degraded, 'PodIdentityAssociation')).toMatchObject({ status: 'Progressing' });
    expect(
      failing.some((s) =>
        /trust policy does not allow pods\.eks\.amazonaws\.com/.test(of(s, 'PodIdentityAssociation').message),
      ),
    ).toBe(true);

    // Fixing the trust policy in IAM (not in Git) releases the Pod; the Deployment turns Healthy with no sync.
    const aws = awsAdmin();
    try {
      await aws.iam.updateAssumeRolePolicy('node-gitops-wrong', podIdentityTrust());
    } finally {
      aws.destroy();
    }
    const healing = await sample(ns, (s) => of(s, 'Deployment').status === 'Healthy', 180_000, t0);
    record('wrong-trust-fixed', healing);
    expect(healing.at(-1)!.gated).toBe(false);
    const pod: Json = (await admin.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: `app=${APP}` }))
      .items[0];
    expect(await firstOutput(ns, pod.metadata.name)).toMatch(
      new RegExp(`^assumed-role-arn arn:aws:sts::${ACCOUNT}:assumed-role/node-gitops-wrong/[^\\n]+$`),
    );
    process.stderr.write(
      `[gitops-health] wrong trust: Degraded at ${(degraded.atMs / 1000).toFixed(1)}s, Healthy after the fix at ${(healing.at(-1)!.atMs / 1000).toFixed(1)}s\n`,
    );
  });
});
