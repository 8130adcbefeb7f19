// A webhook under test: started in-process in self-managed mode on https://127.0.0.1:<port>/mutate, registered by a
// MutatingWebhookConfiguration (docs/webhook.md#quick-start rewritten to `url`) scoped to namespaces carrying this run's label.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { createLogger, type Logger } from '../../../src/runtime/log.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { parseWebhookFlags } from '../../../src/config/webhook.ts';
import { startWebhook, type RunningWebhook, type WebhookDeps } from '../../../src/webhook/index.ts';
import { eventually, newNamespace } from '../../harness/context.ts';
import { podIdentityWebhookConfiguration, type Webhook } from '../../../src/sandbox/webhook-configuration.ts';

export const MWC_PATH = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';

export interface LogSink {
  lines: Json[];
  logger: Logger;
}

export function logSink(level = 'debug'): LogSink {
  const lines: Json[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: createLogger({ component: 'webhook', level, destination }) };
}

export interface TestWebhook {
  hook: RunningWebhook;
  id: string;
  label: Record<string, string>;
  mwcName: string;
  systemNamespace: string;
  metrics: Registry;
  logs: LogSink;
  /** A fresh namespace the webhook serves. */
  namespace(prefix?: string): Promise<string>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

/** The product's registration (src/sandbox/webhook-configuration.ts) scoped to namespaces carrying `label`. */
export function mwc(
  name: string,
  port: number,
  caPem: string | undefined,
  label: Record<string, string>,
  extra: Partial<Webhook> = {},
): Json {
  return podIdentityWebhookConfiguration({
    name,
    url: `https://127.0.0.1:${port}/mutate`,
    caPem,
    namespaceSelector: { matchLabels: label },
    overrides: extra,
  });
}

export async function startTestWebhook(
  admin: KubeClient,
  flags: string[] = [],
  o: { kube?: KubeClient; register?: boolean; systemNamespace?: string } = {},
): Promise<TestWebhook> {
  const id = randomBytes(4).toString('hex');
  const label = { 'lanyard.dev/test-webhook': id };
  const systemNamespace = o.systemNamespace ?? (await newNamespace(admin, 'wh-sys'));
  const mwcName = `lanyard-test-webhook-${id}`;
  const metrics = new Registry();
  const logs = logSink();
  const config = parseWebhookFlags(
    [
      '--port=0',
      '--metrics-port=0',
      '--tls-mode=self-managed',
      '--tls-extra-sans=127.0.0.1,localhost',
      `--tls-secret=webhook-${id}`,
      '--shutdown-delay=0s',
      '--config-poll-interval=500ms',
      ...flags,
    ],
    { env: { POD_NAMESPACE: systemNamespace }, readNamespaceFile: () => undefined },
  );
  const deps: WebhookDeps = { kube: o.kube ?? admin, log: logs.logger, metrics, clock: systemClock };
  const hook = await startWebhook(config, deps);
  await eventually(
    async () => {
      if (!hook.ready()) throw new Error('webhook not ready');
    },
    30_000,
    50,
  );
  if (o.register !== false) await admin.create(MWC_PATH, mwc(mwcName, hook.port, hook.caPem, label));
  return {
    hook,
    id,
    label,
    mwcName,
    systemNamespace,
    metrics,
    logs,
    namespace: (prefix = 'wh') => newNamespace(admin, prefix, label),
    async metric(name, labels = {}) {
      const m = (await metrics.getSingleMetric(name)?.get()) as
        { values: Array<{ labels: Record<string, unknown>; value: number }> } | undefined;
      return (m?.values ?? [])
        .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
        .reduce((a, v) => a + v.value, 0);
    },
    async stop() {
      await admin.delete(`${MWC_PATH}/${mwcName}`).catch(() => undefined);
      await hook.stop();
    },
  };
}

export function podSpec(name: string, serviceAccountName: string, extra: Json = {}): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      serviceAccountName,
      containers: [{ name: 'app', image: 'registry.invalid/app:1', env: [{ name: 'LOG', value: '1' }] }],
      ...extra,
    },
  };
}

/** Creates a Pod (dry-run unless `persist`) and returns the object the API server would store. */
export async function createPod(admin: KubeClient, ns: string, pod: Json, persist = false): Promise<Json> {
  return await admin.create(`/api/v1/namespaces/${ns}/pods`, pod, persist ? undefined : { dryRun: 'All' });
}

export async function createSa(
  admin: KubeClient,
  ns: string,
  name: string,
  annotations: Record<string, string> = {},
): Promise<Json> {
  return await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name, annotations },
  });
}

export const envOf = (pod: Json, container = 0): Record<string, string> =>
  Object.fromEntries((pod.spec.containers[container].env ?? []).map((e: Json) => [e.name, e.value]));
