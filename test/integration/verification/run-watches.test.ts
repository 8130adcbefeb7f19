// `lanyard run` watches each resource selection once (docs/adr/0930-webhook-on-the-shared-cache-under-run.md,
// docs/adr/1000-shared-informer-cache-and-reconcilers.md): the webhook's ServiceAccount and ConfigMap caches, its
// IdentityPolicy/Namespace/VerifiedIdentity guard, the association index, the verifier, the running-Pod identity
// reconciler and the other controllers share the process's one informer cache. The run wiring (src/controller/run.ts,
// what `lanyard run` starts) runs in this process on a client that counts the watches it holds open, by selection,
// against the real API server. The webhook started alone (`lanyard webhook`) keeps watches of its own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { KubeClient } from '../../../src/kube/client.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { parseRunFlags, startRun, type RunningRun } from '../../../src/controller/run.ts';
import { parseWebhookFlags } from '../../../src/config/webhook.ts';
import { startWebhook } from '../../../src/webhook/index.ts';
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

describe('lanyard run: one watch per selection', () => {
  it("the webhook's ServiceAccounts, ConfigMap, IdentityPolicies, Namespaces, VerifiedIdentities and associations are each watched once", async () => {
    const sys = env.systemNamespace;
    const shared = [
      '/api/v1/serviceaccounts metadata',
      `/api/v1/namespaces/${sys}/configmaps fieldSelector=metadata.name=pod-identity-webhook`,
      '/apis/lanyard.dev/v1alpha1/identitypolicies',
      '/api/v1/namespaces metadata',
      '/apis/lanyard.dev/v1alpha1/verifiedidentities',
      '/apis/lanyard.dev/v1alpha1/podidentityassociations',
      // The running-Pod identity reconciler's own selections, now on the same cache.
      '/api/v1/pods fieldSelector=status.phase!=Succeeded,status.phase!=Failed',
      '/apis/apps/v1/replicasets metadata',
    ];
    // The cache's selections in the same notation ([path, labelSelector, fieldSelector, metadataOnly]).
    const cacheSelections = () =>
      run!.cache.watchedSelections.map((id) => {
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
    // A view attached after the first list restarts its watch (one list again): wait until the process settles.
    const snapshot = await eventually(
      async () => {
        const now = Object.fromEntries(counting.open);
        for (const s of shared) expect(now[s], s).toBe(1);
        // No selection is watched twice, and every watch the process holds is one of the cache's selections, except the
        // webhook's certificate Secret (its certificate reconciler; the controller runs none under `lanyard run`).
        expect(Object.entries(now).filter(([, n]) => n !== 1)).toEqual([]);
        expect(
          Object.keys(now)
            .filter((s) => !s.includes('/secrets'))
            .sort(),
        ).toEqual(cacheSelections().sort());
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

  it('the webhook alone (as `lanyard webhook`, no shared cache) watches ServiceAccounts on its own, and its watch can be held back', async () => {
    const alone = countingClient(env.admin);
    const cfg = parseWebhookFlags(
      [
        '--port=0',
        '--metrics-port=0',
        '--tls-mode=self-managed',
        '--tls-extra-sans=127.0.0.1',
        `--tls-secret=run-watches-alone-${env.label['lanyard-verification-test']}`,
        '--shutdown-delay=0s',
      ],
      { env: { POD_NAMESPACE: env.systemNamespace } },
    );
    const hook = await startWebhook(cfg, {
      kube: alone.client,
      log: env.logs.logger('webhook-alone'),
      metrics: new Registry(),
      clock: systemClock,
    });
    try {
      await eventually(
        async () => expect(alone.open.get('/api/v1/serviceaccounts metadata')).toBe(1),
        30_000,
        100,
      );
      // Its own informer: the admission test's hook still works (a shared watch would refuse it).
      expect(() => hook.pauseServiceAccountWatch()).not.toThrow();
      hook.resumeServiceAccountWatch();
      expect(() => run!.webhook.pauseServiceAccountWatch()).toThrow(/shared/);
    } finally {
      await hook.stop();
    }
  });
});
