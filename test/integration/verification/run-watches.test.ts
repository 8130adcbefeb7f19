// `lanyard run` watches each resource selection once (docs/adr/0930-webhook-on-the-shared-cache-under-run.md,
// docs/adr/1000-shared-informer-cache-and-reconcilers.md): the webhook's ServiceAccount and ConfigMap caches, its
// IdentityPolicy/Namespace/VerifiedIdentity guard, the association index, the verifier, the running-Pod identity
// reconciler and the other controllers share the process's one informer cache. The run wiring (src/controller/run.ts,
// what `lanyard run` starts) runs in this process on a client that counts the watches it holds open, by selection,
// against the real API server. `lanyard webhook` alone puts its caches on one cache of its own
// (docs/adr/1080-webhook-on-the-informer-cache.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { KubeClient } from '../../../src/kube/client.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { parseRunFlags, startRun, type RunningRun } from '../../../src/controller/run.ts';
import { parseWebhookFlags } from '../../../src/config/webhook.ts';
import { startWebhookProcess } from '../../../src/webhook/command.ts';
import type { InformerFactory } from '../../../src/kube/cache.ts';
import { eventually } from '../../harness/context.ts';
import { CLUSTER, startVerificationEnv, type VerificationEnv } from './env.ts';

/** A selection as the API server sees it: path, selectors, and whether only metadata is asked for. */
const selectionOf = (path: string, q: Record<string, unknown> | undefined, accept?: string) =>
  [
    path,
    q?.labelSelector ? `labelSelector=${String(q.labelSelector)}` : '',
    q?.fieldSelector ? `fieldSelector=${String(q.fieldSelector)}` : '',
    accept?.includes('PartialObjectMetadata') ? 'metadata' : '',
  ]
    .filter(Boolean)
    .join(' ');

/** A cache's selections in the same notation (its ids are [path, labelSelector, fieldSelector, metadataOnly]). */
const selectionsOf = (cache: InformerFactory) =>
  cache.watchedSelections.map((id) => {
    const [path, labelSelector, fieldSelector, metadataOnly] = JSON.parse(id) as [
      string,
      string,
      string,
      boolean,
    ];
    return selectionOf(
      path,
      { labelSelector, fieldSelector },
      metadataOnly ? 'PartialObjectMetadata' : undefined,
    );
  });

/** The admin client, counting the watches it holds open now, by selection (test side only). */
function countingClient(inner: KubeClient) {
  const open = new Map<string, number>();
  const client: KubeClient = Object.create(inner);
  client.watch = async (path, query, onEvent, signal, accept) => {
    const k = selectionOf(path, query as Record<string, unknown> | undefined, accept);
    open.set(k, (open.get(k) ?? 0) + 1);
    try {
      return await inner.watch(path, query, onEvent, signal, accept);
    } finally {
      open.set(k, open.get(k)! - 1);
      if (open.get(k) === 0) open.delete(k);
    }
  };
  return { client, open };
}

let env: VerificationEnv;
let run: RunningRun | undefined;
let counting: ReturnType<typeof countingClient>;

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 930, webhook: false, controller: false });
  counting = countingClient(env.admin);
  const { config, webhookConfig } = parseRunFlags(
    [
      `--cluster-name=${CLUSTER}`,
      `--aws-endpoint-url=${env.sim.url}`,
      '--aws-region=us-west-2',
      `--lease-namespace=${env.systemNamespace}`,
      `--lease-name=run-watches-${env.label['lanyard-verification-test']}`,
      '--port=0',
      '--metrics-port=0',
      '--tls-mode=self-managed',
      '--tls-extra-sans=127.0.0.1',
      `--tls-secret=run-watches-${env.label['lanyard-verification-test']}`,
      '--shutdown-delay=0s',
      '--watch-config-map=true',
      `--namespace=${env.systemNamespace}`,
    ],
    { POD_NAMESPACE: env.systemNamespace },
  );
  run = await startRun(
    { kube: counting.client, log: env.logs.logger('run'), metrics: new Registry(), clock: systemClock },
    config,
    webhookConfig,
    { awsCredentials: env.sim.control.adminCredentials },
  );
  await eventually(
    async () => {
      if (!run!.webhook.ready()) throw new Error('webhook not ready');
      if (!run!.controller.ready()) throw new Error('controller not ready');
    },
    60_000,
    100,
  );
});
afterAll(async () => {
  await run?.stop();
  await env?.stop();
});

/** The selections the webhook's side watches (its caches, the association source and the guard). */
const webhookSelections = (sys: string) => [
  '/api/v1/serviceaccounts metadata',
  `/api/v1/namespaces/${sys}/configmaps fieldSelector=metadata.name=pod-identity-webhook`,
  '/apis/lanyard.dev/v1alpha1/identitypolicies',
  '/api/v1/namespaces metadata',
  '/apis/lanyard.dev/v1alpha1/verifiedidentities',
  '/apis/lanyard.dev/v1alpha1/podidentityassociations',
];

describe('lanyard run: one watch per selection', () => {
  it("the webhook's ServiceAccounts, ConfigMap, IdentityPolicies, Namespaces, VerifiedIdentities and associations are each watched once", async () => {
    const sys = env.systemNamespace;
    const shared = [
      ...webhookSelections(sys),
      // The running-Pod identity reconciler's own selections, now on the same cache.
      '/api/v1/pods fieldSelector=status.phase!=Succeeded,status.phase!=Failed',
      '/apis/apps/v1/replicasets metadata',
    ];
    const cacheSelections = () => selectionsOf(run!.cache);
    // A view attached after the first list restarts its watch (one list again): wait until the process settles.
    const snapshot = await eventually(
      async () => {
        const now = Object.fromEntries(counting.open);
        for (const s of shared) expect(now[s], s).toBe(1);
        // No selection is watched twice, and every watch the process holds is one of the cache's selections, the
        // webhook certificate reconciler's Secret included.
        expect(Object.entries(now).filter(([, n]) => n !== 1)).toEqual([]);
        expect(Object.keys(now).sort()).toEqual(cacheSelections().sort());
        return now;
      },
      30_000,
      200,
    );
    const selections = cacheSelections().length;
    // Figures for docs/adr/0930 (open watches by selection).
    process.stderr.write(
      `[run-watches] ${Object.keys(snapshot).length} open watches, ${selections} shared selections:\n` +
        Object.entries(snapshot)
          .map(([s, n]) => `  ${n}  ${s}`)
          .join('\n') +
        '\n',
    );
  });

  it('`lanyard webhook` alone puts its ServiceAccount and ConfigMap caches, the association source and the guard on one informer cache of its own: each selection watched once', async () => {
    const alone = countingClient(env.admin);
    const sys = env.systemNamespace;
    const cfg = parseWebhookFlags(
      [
        '--port=0',
        '--metrics-port=0',
        '--tls-mode=self-managed',
        '--tls-extra-sans=127.0.0.1',
        `--tls-secret=run-watches-alone-${env.label['lanyard-verification-test']}`,
        '--shutdown-delay=0s',
        '--watch-config-map=true',
        `--namespace=${sys}`,
      ],
      { env: { POD_NAMESPACE: sys } },
    );
    // What `lanyard webhook` runs (src/webhook/command.ts), on the counting client.
    const proc = await startWebhookProcess(cfg, {
      kube: alone.client,
      log: env.logs.logger('webhook-alone'),
      metrics: new Registry(),
      clock: systemClock,
    });
    try {
      await eventually(
        async () => {
          const now = Object.fromEntries(alone.open);
          for (const s of webhookSelections(sys)) expect(now[s], s).toBe(1);
          expect(Object.entries(now).filter(([, n]) => n !== 1)).toEqual([]);
          // Every watch, the certificate reconciler's Secret included, is one of the process cache's selections.
          expect(Object.keys(now).sort()).toEqual(selectionsOf(proc.cache).sort());
        },
        30_000,
        200,
      );
    } finally {
      await proc.stop();
    }
    // Stopped: the process's cache holds no watch open.
    await eventually(
      async () => expect(Object.keys(Object.fromEntries(alone.open))).toEqual([]),
      10_000,
      100,
    );
  });
});
