// Lanyard installed the way its users install it: `helm install` of deploy/helm/lanyard with the locally built
// image and the chart's own defaults, on a cluster with a real node. Workloads then use their identity for
// real: the AWS SDK in the container reads the injected token or container credentials and calls STS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { eventually } from '../../harness/context.ts';
import {
  kubectl,
  newNodeNamespace,
  node,
  nodeAdmin,
  podLogs,
  waitForPodPhase,
} from '../../harness/node-context.ts';
import {
  ACCOUNT,
  GATE,
  RELEASE_NS,
  awsAdmin,
  ensureLanyard,
  oidcProviderArn,
  podIdentityTrust,
  roleArn,
  webIdentityTrust,
  whoamiPodSpec,
} from '../../harness/node-lanyard.ts';

const PROMOTION_SA = `node-promoter-${process.pid}`;

let admin: KubeClient;
let ns: string;

async function createRoles(namespace: string): Promise<void> {
  const aws = awsAdmin();
  try {
    const provider = await oidcProviderArn(aws);
    await aws.iam.createRole({
      roleName: 'node-irsa-reader',
      assumeRolePolicyDocument: webIdentityTrust(provider, `system:serviceaccount:${namespace}:reader`),
    });
    // Trusts another ServiceAccount only: a Pod of `intruder` declaring it can never be verified.
    await aws.iam.createRole({
      roleName: 'node-irsa-other',
      assumeRolePolicyDocument: webIdentityTrust(provider, `system:serviceaccount:${namespace}:someone-else`),
    });
    await aws.iam.createRole({
      roleName: 'node-promotion-step',
      assumeRolePolicyDocument: webIdentityTrust(
        provider,
        `system:serviceaccount:lanyard-promotions:${PROMOTION_SA}`,
        'lanyard-promotion-step',
      ),
    });
    await aws.iam.createRole({
      roleName: 'node-pod-identity-reporter',
      assumeRolePolicyDocument: podIdentityTrust(),
    });
  } finally {
    aws.destroy();
  }
}

/** A Pod running the aws-whoami image as ServiceAccount `sa`; STS is the simulator, as a private endpoint would be. */
function whoamiPod(name: string, sa: string): Json {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: whoamiPodSpec(sa) };
}

beforeAll(async () => {
  admin = await nodeAdmin();
  ns = await newNodeNamespace(admin, 'workloads');
  await createRoles(ns);
  // Installed here unless an earlier node test file did (test/harness/node-lanyard.ts); the cluster goes away
  // with the project's global teardown.
  await ensureLanyard();
}, 300_000);

afterAll(() => admin?.close());

describe('the Helm chart on a real node', () => {
  it('runs two Ready webhook Pods and two Ready controller Pods, one of which leads', async () => {
    for (const component of ['webhook', 'controller']) {
      const d = await admin.get(`/apis/apps/v1/namespaces/${RELEASE_NS}/deployments/lanyard-${component}`);
      expect({ component, ready: d.status.readyReplicas }).toEqual({ component, ready: 2 });
    }
    const leases: Json[] = (await admin.get(`/apis/coordination.k8s.io/v1/namespaces/${RELEASE_NS}/leases`))
      .items;
    const holders = leases.map((l) => l.spec.holderIdentity).filter(Boolean);
    const pods: string[] = (
      await admin.get(`/api/v1/namespaces/${RELEASE_NS}/pods`, {
        labelSelector: 'app.kubernetes.io/component=controller',
      })
    ).items.map((p: Json) => p.metadata.name);
    expect(holders.some((h: string) => pods.some((p) => h.includes(p)))).toBe(true);
  });

  it('has the API server call the webhook through its Service: a new Pod is mutated and gated', async () => {
    const cfg = await admin.get(
      '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/lanyard-pod-identity',
    );
    expect(cfg.webhooks[0].clientConfig.service).toMatchObject({
      name: 'lanyard-webhook',
      namespace: RELEASE_NS,
    });
    // Self-managed TLS (docs/webhook.md#tls): every webhook's caBundle is the CA of the chart's Secret, base64 as the
    // Secret's ca.crt holds it.
    const tls = await admin.get(`/api/v1/namespaces/${RELEASE_NS}/secrets/lanyard-webhook-tls`);
    const ca: string = tls.data['ca.crt'];
    expect(Buffer.from(ca, 'base64').toString()).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(cfg.webhooks.map((w: Json) => w.clientConfig.caBundle)).toEqual(cfg.webhooks.map(() => ca));
  });

  it('IRSA: the workload prints its declared role on its first call, after the gate lifts', async () => {
    await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      metadata: {
        name: 'reader',
        annotations: { 'eks.amazonaws.com/role-arn': roleArn('node-irsa-reader') },
      },
    });
    const created = await admin.create(`/api/v1/namespaces/${ns}/pods`, whoamiPod('irsa', 'reader'));
    expect(created.spec.schedulingGates).toContainEqual({ name: GATE });
    expect(created.spec.containers[0].env.map((e: Json) => e.name)).toContain('AWS_WEB_IDENTITY_TOKEN_FILE');
    const pod = await waitForPodPhase(admin, ns, 'irsa', ['Succeeded', 'Failed']);
    const out = await podLogs(ns, 'irsa');
    expect(out).toMatch(
      new RegExp(`^assumed-role-arn arn:aws:sts::${ACCOUNT}:assumed-role/node-irsa-reader/`, 'm'),
    );
    expect(pod.status.phase).toBe('Succeeded');
    expect(pod.metadata.annotations['lanyard.dev/identity-verification']).toMatch(/verified/);
  });

  it('EKS Pod Identity: the workload gets container credentials from 169.254.170.23 and prints its role', async () => {
    await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: 'reporter' } });
    await admin.create(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PodIdentityAssociation',
      metadata: { name: 'reporter' },
      spec: { serviceAccount: 'reporter', roleARN: roleArn('node-pod-identity-reporter') },
    });
    // The webhook injects container credentials once it has seen the association.
    await eventually(
      async () => {
        const a = await admin.get(
          `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations/reporter`,
        );
        if (!a.status?.associationID)
          throw new Error(`association not reconciled yet: ${JSON.stringify(a.status)}`);
      },
      60_000,
      500,
    );
    const created = await eventually(
      async () => {
        const p = await admin.create(`/api/v1/namespaces/${ns}/pods`, {
          ...whoamiPod('pod-identity', 'reporter'),
          metadata: { generateName: 'pod-identity-' },
        });
        if (!p.spec.containers[0].env?.some((e: Json) => e.name === 'AWS_CONTAINER_CREDENTIALS_FULL_URI')) {
          await admin.delete(`/api/v1/namespaces/${ns}/pods/${p.metadata.name}`);
          throw new Error('the webhook has not seen the association yet');
        }
        return p;
      },
      30_000,
      500,
    );
    const name = created.metadata.name;
    const pod = await waitForPodPhase(admin, ns, name, ['Succeeded', 'Failed']);
    const out = await podLogs(ns, name);
    expect(out).toMatch(
      new RegExp(`^assumed-role-arn arn:aws:sts::${ACCOUNT}:assumed-role/node-pod-identity-reporter/`, 'm'),
    );
    expect(pod.status.phase).toBe('Succeeded');
  });

  it('keeps a Pod whose identity cannot be verified at the gate: its container never starts', async () => {
    await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
      metadata: {
        name: 'intruder',
        annotations: { 'eks.amazonaws.com/role-arn': roleArn('node-irsa-other') },
      },
    });
    await admin.create(`/api/v1/namespaces/${ns}/pods`, whoamiPod('intruder', 'intruder'));
    // The controller has tried the exchange and refused to release the Pod.
    await eventually(
      async () => {
        const events: Json[] = (
          await admin.get(`/api/v1/namespaces/${ns}/events`, {
            fieldSelector: 'involvedObject.name=intruder',
          })
        ).items;
        if (!events.some((e) => e.reason === 'IdentityNotVerified'))
          throw new Error('no IdentityNotVerified event yet');
      },
      60_000,
      500,
    );
    const pod = await admin.get(`/api/v1/namespaces/${ns}/pods/intruder`);
    expect(pod.spec.schedulingGates).toContainEqual({ name: GATE });
    expect(pod.spec.nodeName).toBeUndefined();
    expect(pod.status.containerStatuses).toBeUndefined();
    expect(await kubectl(['-n', ns, 'get', 'pod', 'intruder', '--no-headers'])).toMatch(/SchedulingGated/);
  });

  // Exit codes as docs/cli.md documents them: 0 the expected role, 20 another role.
  it('runs `lanyard verify` in a Job: exit 0 for the declared role, 20 for another', async () => {
    const job = (name: string, expected: string): Json => ({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name },
      spec: {
        backoffLimit: 0,
        template: {
          spec: {
            serviceAccountName: 'reader',
            restartPolicy: 'Never',
            containers: [
              {
                name: 'verify',
                image: node().images.lanyard,
                imagePullPolicy: 'Never',
                args: ['verify', `--expected-role=${expected}`, '--timeout=30s'],
                env: [{ name: 'AWS_ENDPOINT_URL_STS', value: node().simulatorUrl }],
              },
            ],
          },
        },
      },
    });
    await admin.create(`/apis/batch/v1/namespaces/${ns}/jobs`, job('verify-ok', roleArn('node-irsa-reader')));
    await admin.create(
      `/apis/batch/v1/namespaces/${ns}/jobs`,
      job('verify-wrong', roleArn('node-irsa-other')),
    );
    const finished = async (name: string) =>
      await eventually(
        async () => {
          const j = await admin.get(`/apis/batch/v1/namespaces/${ns}/jobs/${name}`);
          const done = (j.status?.conditions ?? []).find(
            (c: Json) => ['Complete', 'Failed'].includes(c.type) && c.status === 'True',
          );
          if (!done) throw new Error(`job ${name} still running`);
          return done.type as string;
        },
        150_000,
        500,
      );
    expect(await finished('verify-ok')).toBe('Complete');
    expect(await finished('verify-wrong')).toBe('Failed');
    const pods: Json[] = (
      await admin.get(`/api/v1/namespaces/${ns}/pods`, { labelSelector: 'job-name=verify-wrong' })
    ).items;
    expect(pods[0].status.containerStatuses[0].state.terminated.exitCode).toBe(20);
  });

  it('runs a promotion to Succeeded: each step a real container, in order, with its outputs and its own role', async () => {
    const project = await newNodeNamespace(admin, 'shop', { 'lanyard.dev/project': 'true' });
    await admin.create('/api/v1/namespaces/lanyard-promotions/serviceaccounts', {
      metadata: { name: PROMOTION_SA, annotations: { 'lanyard.dev/allowed-projects': project } },
    });
    const steps = '/apis/lanyard.dev/v1alpha1/namespaces/' + project;
    await admin.create(`${steps}/promotionsteps`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PromotionStep',
      metadata: { name: 'whoami' },
      spec: {
        image: node().images.awsWhoami,
        command: ['node', '/opt/aws-whoami/whoami.mjs'],
        args: ['--output'],
        env: [{ name: 'AWS_ENDPOINT_URL_STS', value: node().simulatorUrl }],
        identity: { roleARN: roleArn('node-promotion-step') },
      },
    });
    await admin.create(`${steps}/promotionsteps`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'PromotionStep',
      metadata: { name: 'publish' },
      spec: {
        image: node().images.awsWhoami,
        command: ['sh', '-c'],
        args: ['echo "version={{ vars.version }}" > /dev/termination-log; echo "published at $(date +%s%N)"'],
      },
    });
    await admin.create(`${steps}/stages`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'Stage',
      metadata: { name: 'prod', annotations: { 'lanyard.dev/promotion-sa': PROMOTION_SA } },
      spec: {
        promotionTemplate: {
          spec: { vars: [{ name: 'version' }], steps: [{ as: 'who', uses: 'whoami' }, { uses: 'publish' }] },
        },
      },
    });
    const p = await admin.create(`${steps}/promotions`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'Promotion',
      metadata: { generateName: 'prod-' },
      spec: { stage: 'prod', vars: [{ name: 'version', value: '1.4.2' }] },
    });
    const done = await eventually(
      async () => {
        const cur = await admin.get(`${steps}/promotions/${p.metadata.name}`);
        if (!['Succeeded', 'Failed', 'Errored'].includes(cur.status?.phase))
          throw new Error(`promotion is ${cur.status?.phase}: ${cur.status?.message}`);
        return cur;
      },
      150_000,
      500,
    );
    expect({ phase: done.status.phase, message: done.status.message }).toMatchObject({ phase: 'Succeeded' });
    const [who, publish] = done.status.steps;
    expect(who.output.arn).toMatch(new RegExp(`^arn:aws:sts::${ACCOUNT}:assumed-role/node-promotion-step/`));
    expect(publish.output).toEqual({ version: '1.4.2' });
    // In order: the second step started after the first one finished.
    expect(Date.parse(publish.startedAt)).toBeGreaterThanOrEqual(Date.parse(who.finishedAt));
  });

  it('hands the lead over within the lease duration when the leader Pod is deleted, losing no gated Pod', async () => {
    const lease = async () =>
      (await admin.get(`/apis/coordination.k8s.io/v1/namespaces/${RELEASE_NS}/leases/lanyard-controller`))
        .spec;
    const before = await lease();
    const leaderPod = before.holderIdentity.split('_')[0] as string;
    expect(leaderPod).toMatch(/^lanyard-controller-/);
    // A Pod created just before the leader goes must still be verified and released, by the next leader.
    await admin.create(`/api/v1/namespaces/${ns}/pods`, whoamiPod('handover', 'reader'));
    const deletedAt = Date.now();
    await admin.delete(`/api/v1/namespaces/${RELEASE_NS}/pods/${leaderPod}`);
    const after = await eventually(
      async () => {
        const l = await lease();
        if (!l.holderIdentity || l.holderIdentity.startsWith(leaderPod))
          throw new Error(`still held by ${l.holderIdentity}`);
        return l;
      },
      60_000,
      200,
    );
    const handoverMs = Date.now() - deletedAt;
    expect(handoverMs).toBeLessThanOrEqual(before.leaseDurationSeconds * 1000 + 2000);
    expect(after.holderIdentity).toMatch(/^lanyard-controller-/);
    const pod = await waitForPodPhase(admin, ns, 'handover', ['Succeeded', 'Failed']);
    expect(pod.status.phase).toBe('Succeeded');
    expect(await podLogs(ns, 'handover')).toMatch(/assumed-role\/node-irsa-reader\//);
  });

  it('admits every Pod created while the webhook Deployment restarts', { timeout: 240_000 }, async () => {
    const stream = await newNodeNamespace(admin, 'stream');
    const webhook = `/apis/apps/v1/namespaces/${RELEASE_NS}/deployments/lanyard-webhook`;
    const before = await admin.get(webhook);
    await kubectl(['-n', RELEASE_NS, 'rollout', 'restart', 'deployment/lanyard-webhook']);
    const failures: string[] = [];
    let created = 0;
    let rolledOut = false;
    const rollout = kubectl([
      '-n',
      RELEASE_NS,
      'rollout',
      'status',
      'deployment/lanyard-webhook',
      '--timeout=170s',
    ]).finally(() => {
      rolledOut = true;
    });
    // A steady stream (one Pod every 250 ms) for the whole rollout. Admission is what is tested: the Pods
    // select no node, so they never load the node that is starting the new webhook Pods.
    while (!rolledOut) {
      const name = `p-${created++}`;
      await admin
        .create(`/api/v1/namespaces/${stream}/pods`, {
          metadata: { name },
          spec: {
            nodeSelector: { 'lanyard.dev/no-such-node': 'true' },
            containers: [{ name: 'c', image: node().images.pause }],
          },
        })
        .catch((e: Error) => failures.push(`${name}: ${e.message}`));
      await new Promise((r) => setTimeout(r, 250));
    }
    await rollout;
    const after = await admin.get(webhook);
    expect(after.metadata.generation).toBeGreaterThan(before.metadata.generation);
    expect(after.status.updatedReplicas).toBe(2);
    expect(created).toBeGreaterThan(20);
    expect(failures).toEqual([]);
    await admin.delete(`/api/v1/namespaces/${stream}`);
  });
});
