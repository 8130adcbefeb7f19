// `lanyard run` as a child process: webhook (gate on by default) and controller in one process, flags routed to each.
// A web-identity Pod is gated at admission and released after a real exchange; a second Pod is admitted ungated.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlane, eventually } from '../../harness/context.ts';
import {
  CLUSTER,
  GATE,
  createPod,
  gates,
  getPod,
  podBody,
  serviceAccount,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from './env.ts';

const ROOT = path.resolve(import.meta.dirname, '../../..');
let env: VerificationEnv;
let child: ChildProcess;
const output: string[] = [];
let mwc = '';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 15, webhook: false, controller: false });
  env.sim.control.configure({ visibility: { 'iam.role': [2000, 2000] } });
  const [port, metricsPort] = [await freePort(), await freePort()];
  mwc = `lanyard-run-${env.label['lanyard-verification-test']}`;
  // Created without a caBundle: `lanyard run` keeps it current (--webhook-config-name).
  await env.admin.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: mwc },
    webhooks: [
      {
        name: 'pod-identity.lanyard.dev',
        clientConfig: { url: `https://127.0.0.1:${port}/mutate` },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        namespaceSelector: { matchLabels: env.label },
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 10,
      },
    ],
  });
  child = spawn(
    process.execPath,
    [
      path.join(ROOT, 'bin/lanyard.js'),
      'run',
      `--kubeconfig=${controlPlane().adminKubeconfig}`,
      `--port=${port}`,
      `--metrics-port=${metricsPort}`,
      '--tls-mode=self-managed',
      '--tls-extra-sans=127.0.0.1',
      '--tls-secret=lanyard-run',
      `--webhook-config-name=${mwc}`,
      '--shutdown-delay=0s',
      `--cluster-name=${CLUSTER}`,
      `--aws-endpoint-url=${env.sim.url}`,
      '--aws-region=us-west-2',
      `--lease-namespace=${env.systemNamespace}`,
      '--lease-name=run-test',
      '--verify-deadline=30s',
    ],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        POD_NAMESPACE: env.systemNamespace,
        AWS_EC2_METADATA_DISABLED: 'true',
        AWS_ACCESS_KEY_ID: env.sim.control.adminCredentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: env.sim.control.adminCredentials.secretAccessKey,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', (d) => output.push(String(d)));
  child.stderr!.on('data', (d) => output.push(String(d)));
  await eventually(
    async () => {
      const r = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
      if (r.status !== 200) throw new Error('not ready');
      const m = await env.admin.get(
        `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${mwc}`,
      );
      if (!m.webhooks[0].clientConfig.caBundle) throw new Error('no caBundle yet');
    },
    60_000,
    200,
  );
});
afterAll(async () => {
  child?.kill('SIGTERM');
  await new Promise((r) => (child ? child.once('exit', r) : r(undefined)));
  await env.admin
    .delete(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${mwc}`)
    .catch(() => undefined);
  await env?.stop();
});

describe('lanyard run', () => {
  it('gates at admission and releases after the exchange; the next Pod is admitted ungated', async () => {
    const ns = await env.namespace('run');
    const role = await env.aws.iam.createRole({ roleName: 'run', assumeRolePolicyDocument: wiTrust(env) });
    await serviceAccount(env.admin, ns, 'sa', { 'eks.amazonaws.com/role-arn': role.arn });
    // The API server may take a moment to call a new webhook: retry until the Pod comes back mutated.
    const first = await eventually(
      async () => {
        const p = await createPod(env.admin, ns, podBody(`first-${Date.now()}`, 'sa'));
        if (!gates(p).includes(GATE)) {
          await env.admin.delete(`/api/v1/namespaces/${ns}/pods/${p.metadata.name}`);
          throw new Error('not mutated yet');
        }
        return p;
      },
      15_000,
      200,
    );
    expect(JSON.stringify(first.spec.containers[0].env)).toContain(role.arn);
    await eventually(
      async () => expect(gates(await getPod(env.admin, ns, first.metadata.name))).not.toContain(GATE),
      20_000,
      100,
    );
    await eventually(
      async () => {
        const p = await createPod(env.admin, ns, podBody(`next-${Date.now()}`, 'sa'));
        expect(gates(p)).not.toContain(GATE);
      },
      10_000,
      200,
    );
    expect(output.join('')).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.|ASIA[A-Z2-7]{16}/);
  });
});
