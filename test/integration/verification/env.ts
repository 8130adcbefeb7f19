// A verification test environment: the AWS simulator wired to the shared control plane's issuer, the real webhook
// (gate on) behind a MutatingWebhookConfiguration scoped to this file's namespaces, and the real controller
// (verifier + association controller), both in this process. Logs are captured so tests can check for leaked secrets.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { adminClient, controlPlane, eventually, newNamespace } from '../../harness/context.ts';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { createKubeClient, isNotFound } from '../../../src/kube/client.ts';
import { createLogger, type Logger } from '../../../src/runtime/log.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import type { Deps } from '../../../src/runtime/deps.ts';
import { startAwsSimulator, type AwsSimulator } from '../../../src/sandbox/aws-sim/index.ts';
import { createAwsClients, type AwsClients } from '../../../src/aws/index.ts';
import { createAssociationLookup } from '../../../src/associations/index.ts';
import { parseControllerFlags } from '../../../src/config/controller.ts';
import { parseWebhookFlags } from '../../../src/config/webhook.ts';
import { startWebhook, type RunningWebhook } from '../../../src/webhook/index.ts';
import { createAdmissionGuard } from '../../../src/verification/admission-guard.ts';
import { startController, type RunningController } from '../../../src/controller/index.ts';

export const CLUSTER = 'lanyard-test';
export const GATE = 'lanyard.dev/identity';

export interface LogSink {
  lines: string[];
  logger(component: string): Logger;
}

export function logSink(): LogSink {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, logger: (component) => createLogger({ component, level: 'debug', destination: stream }) };
}

/** Patterns of secrets that must never reach a log line: JWTs (Pod tokens), STS keys, secret keys. */
export const SECRET_PATTERNS = [
  /eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/,
  /ASIA[A-Z2-7]{16}/,
  /"(SecretAccessKey|secretAccessKey|SessionToken|sessionToken)":"(?!\[redacted\])/,
];

export interface VerificationEnv {
  admin: KubeClient;
  sim: AwsSimulator;
  aws: AwsClients;
  account: string;
  label: Record<string, string>;
  logs: LogSink;
  metrics: Registry;
  webhook?: RunningWebhook;
  controller?: RunningController;
  systemNamespace: string;
  lookup: ReturnType<typeof createAssociationLookup>;
  /** API requests the webhook and its guard have sent (their own client), to show admission does none. */
  webhookRequests(): number;
  /** A fresh namespace the webhook serves. */
  namespace(prefix: string, labels?: Record<string, string>): Promise<string>;
  startController(extraFlags?: string[]): Promise<RunningController>;
  stopController(): Promise<void>;
  issuerKey: string;
  stop(): Promise<void>;
}

export async function startVerificationEnv(o: {
  seed: number;
  webhook?: boolean;
  gate?: boolean;
  controller?: boolean;
  controllerFlags?: string[];
  observeAck?: 'true' | 'false';
}): Promise<VerificationEnv> {
  const admin = await adminClient();
  const cp = controlPlane();
  const logs = logSink();
  const metrics = new Registry();
  const runId = randomBytes(4).toString('hex');
  const label = { 'lanyard-verification-test': runId };
  const sim = await startAwsSimulator({ port: 0, seed: o.seed });
  sim.control.registerCluster({ name: CLUSTER, issuer: cp.issuer, caBundle: cp.caPem });
  const aws = createAwsClients({
    region: 'us-west-2',
    endpointUrl: sim.url,
    credentials: sim.control.adminCredentials,
    log: logs.logger('test-aws'),
  });
  await aws.iam.createOpenIDConnectProvider({ url: cp.issuer, clientIds: ['sts.amazonaws.com'] });
  const systemNamespace = await newNamespace(admin, 'lanyard-sys');
  const deps = (component: string): Deps => ({
    kube: admin,
    log: logs.logger(component),
    metrics,
    clock: systemClock,
  });
  const lookup = createAssociationLookup(deps('lookup'), {
    clusterName: CLUSTER,
    observeAck: o.observeAck ?? 'false',
  });

  let webhookRequestCount = 0;
  const webhookKube = await createKubeClient({
    kubeconfig: cp.adminKubeconfig,
    onRequest: () => {
      webhookRequestCount++;
    },
  });
  let webhook: RunningWebhook | undefined;
  let guard: ReturnType<typeof createAdmissionGuard> | undefined;
  let mwcName: string | undefined;
  if (o.webhook !== false) {
    const wcfg = parseWebhookFlags(
      [
        '--port=0',
        '--metrics-port=0',
        '--tls-mode=self-managed',
        '--tls-extra-sans=127.0.0.1,localhost',
        `--tls-secret=lanyard-verif-${runId}`,
        '--shutdown-delay=0s',
        `--cluster-name=${CLUSTER}`,
        `--identity-gate=${o.gate !== false}`,
      ],
      { env: { POD_NAMESPACE: systemNamespace } },
    );
    guard = createAdmissionGuard(
      { ...deps('guard'), kube: webhookKube },
      { gateEnabled: wcfg.identityGate, allowOptOut: true },
    );
    webhook = await startWebhook(wcfg, {
      ...deps('webhook'),
      kube: webhookKube,
      associations: lookup,
      guard,
    });
    await eventually(async () => {
      if (!webhook!.ready()) throw new Error('webhook not ready');
    }, 30_000);
    mwcName = `lanyard-verification-${runId}`;
    await admin.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: mwcName },
      webhooks: [
        {
          name: 'pod-identity.lanyard.dev',
          clientConfig: {
            url: `https://127.0.0.1:${webhook.port}/mutate`,
            caBundle: Buffer.from(webhook.caPem!).toString('base64'),
          },
          rules: [
            { operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] },
            {
              operations: ['UPDATE'],
              apiGroups: [''],
              apiVersions: ['v1'],
              resources: ['pods/ephemeralcontainers'],
            },
          ],
          namespaceSelector: { matchLabels: label },
          // As the chart: the reference's opt-out label keeps the API server from calling the webhook.
          objectSelector: {
            matchExpressions: [
              { key: 'eks.amazonaws.com/skip-pod-identity-webhook', operator: 'DoesNotExist' },
            ],
          },
          failurePolicy: 'Fail',
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          reinvocationPolicy: 'IfNeeded',
          timeoutSeconds: 10,
        },
      ],
    });
    // The API server picks up a new webhook configuration asynchronously: wait until it calls ours.
    const probeNs = await newNamespace(admin, 'lanyard-probe', label);
    await serviceAccount(admin, probeNs, 'probe', {
      'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/probe',
    });
    await eventually(
      async () => {
        const p = await admin.create(`/api/v1/namespaces/${probeNs}/pods`, {
          ...podBody(`probe-${Date.now()}`, 'probe', { annotations: { 'lanyard.dev/verify': 'false' } }),
        });
        if (!JSON.stringify(p.spec.containers[0].env ?? []).includes('AWS_ROLE_ARN'))
          throw new Error('webhook not called yet');
      },
      30_000,
      200,
    );
    await admin.delete(`/api/v1/namespaces/${probeNs}`);
  }

  const env: VerificationEnv = {
    admin,
    sim,
    aws,
    account: sim.control.account,
    label,
    logs,
    metrics,
    webhook,
    systemNamespace,
    lookup,
    webhookRequests: () => webhookRequestCount,
    issuerKey: cp.issuer.replace(/^https:\/\//, '').replace(/\/+$/, ''),
    namespace: (prefix, labels = {}) => newNamespace(admin, prefix, { ...label, ...labels }),
    async startController(extra = []) {
      const { config } = parseControllerFlags(
        [
          `--cluster-name=${CLUSTER}`,
          `--aws-endpoint-url=${sim.url}`,
          '--aws-region=us-west-2',
          '--metrics-port=0',
          `--lease-namespace=${systemNamespace}`,
          `--lease-name=lanyard-${runId}`,
          '--verify-deadline=10s',
          '--association-resync=2s',
          ...(o.controllerFlags ?? []),
          ...extra,
        ],
        { env: {} },
      );
      env.controller = await startController(deps('controller'), config, {
        awsCredentials: sim.control.adminCredentials,
        lookup,
        serveMetrics: false,
      });
      await eventually(
        async () => {
          if (!env.controller!.ready()) throw new Error('controller not ready');
        },
        60_000,
        50,
      );
      return env.controller;
    },
    async stopController() {
      await env.controller?.stop();
      env.controller = undefined;
    },
    async stop() {
      if (process.env.LANYARD_TEST_LOGS)
        (await import('node:fs')).writeFileSync(process.env.LANYARD_TEST_LOGS, logs.lines.join(''));
      await env.controller?.stop();
      if (mwcName)
        await admin
          .delete(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${mwcName}`)
          .catch(() => undefined);
      await webhook?.stop();
      await guard?.stop();
      await lookup.stop();
      webhookKube.close();
      aws.destroy();
      await sim.close();
      admin.close();
    },
  };
  if (o.controller !== false) await env.startController();
  return env;
}

// ---- Small helpers shared by the files ----

export const ccTrust = () =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'pods.eks.amazonaws.com' },
        Action: ['sts:AssumeRole', 'sts:TagSession'],
      },
    ],
  });
export const wiTrust = (env: VerificationEnv, sub = 'system:serviceaccount:*') =>
  JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: `arn:aws:iam::${env.account}:oidc-provider/${env.issuerKey}` },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: {
          StringLike: { [`${env.issuerKey}:sub`]: sub },
          StringEquals: { [`${env.issuerKey}:aud`]: 'sts.amazonaws.com' },
        },
      },
    ],
  });

export async function serviceAccount(
  admin: KubeClient,
  ns: string,
  name: string,
  annotations: Record<string, string> = {},
): Promise<Json> {
  return admin.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name, annotations },
  });
}

export function podBody(
  name: string,
  sa: string,
  extra: { annotations?: Record<string, string>; gates?: string[] } = {},
): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: {
      serviceAccountName: sa,
      automountServiceAccountToken: false,
      ...(extra.gates ? { schedulingGates: extra.gates.map((g) => ({ name: g })) } : {}),
      containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
    },
  };
}

export async function createPod(admin: KubeClient, ns: string, body: Json): Promise<Json> {
  return admin.create(`/api/v1/namespaces/${ns}/pods`, body);
}

export async function getPod(admin: KubeClient, ns: string, name: string): Promise<Json> {
  return admin.get(`/api/v1/namespaces/${ns}/pods/${name}`);
}

/** Pods released by the outage policy on an earlier proof so far (docs/adr/0309-gate-outage-policy.md), all modes. */
export async function outageReleases(env: VerificationEnv): Promise<number> {
  const m = await env.metrics.getSingleMetric('lanyard_verification_outage_releases_total')?.get();
  return (m?.values ?? []).reduce((n, v) => n + v.value, 0);
}

export const gates = (pod: Json): string[] => (pod.spec?.schedulingGates ?? []).map((g: Json) => g.name);

export async function podEvents(admin: KubeClient, ns: string, pod: string): Promise<Json[]> {
  const list = await admin.get(`/apis/events.k8s.io/v1/namespaces/${ns}/events`);
  return (list.items ?? []).filter((e: Json) => e.regarding?.name === pod);
}

export async function association(
  admin: KubeClient,
  ns: string,
  name: string,
  sa: string,
  roleARN: string,
): Promise<Json> {
  return admin.create(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations`, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'PodIdentityAssociation',
    metadata: { name },
    spec: { serviceAccount: sa, roleARN },
  });
}

export async function deleteQuietly(admin: KubeClient, path: string): Promise<void> {
  try {
    await admin.delete(path);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}
