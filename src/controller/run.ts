// `lanyard run`: the webhook (identity gate on) and every reconciler in one process, on one informer cache
// (docs/adr/1000-shared-informer-cache-and-reconcilers.md, docs/adr/0930-webhook-on-the-shared-cache-under-run.md).
// The webhook's ServiceAccount and ConfigMap caches, its IdentityPolicy/Namespace/VerifiedIdentity guard and the
// association index are views of the same factory as the controller's, so each selection is watched once.
import { CliError, EXIT } from '../core/exit.ts';
import { parseControllerFlags, type ControllerConfig } from '../config/controller.ts';
import { FlagError, parseWebhookFlags, WEBHOOK_FLAG_NAMES, type WebhookConfig } from '../config/webhook.ts';
import type { AwsCredentials } from '../aws/index.ts';
import { InformerFactory } from '../kube/cache.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import { createAdmissionGuard } from '../verification/admission-guard.ts';
import { startWebhook, type RunningWebhook } from '../webhook/index.ts';
import { startController, type RunningController } from './index.ts';

export interface RunningRun extends Running {
  webhook: RunningWebhook;
  controller: RunningController;
  /** The process's one informer cache. */
  cache: InformerFactory;
}

/**
 * `lanyard run`'s flags: the controller's, and the webhook's passed through to it with the identity gate on (the
 * controller that lifts it runs in the same process; a later `--identity-gate=false` turns it off).
 */
export function parseRunFlags(
  argv: string[],
  env?: Record<string, string | undefined>,
): { config: ControllerConfig; webhookConfig: WebhookConfig } {
  const { config, rest } = parseControllerFlags(argv, {
    passThrough: new Set(WEBHOOK_FLAG_NAMES),
    ...(env ? { env } : {}),
  });
  try {
    return {
      config,
      webhookConfig: parseWebhookFlags(['--identity-gate=true', ...rest], env ? { env } : {}),
    };
  } catch (e) {
    if (e instanceof FlagError) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
}

export async function startRun(
  deps: Deps,
  config: ControllerConfig,
  webhookConfig: WebhookConfig,
  o: { awsCredentials?: AwsCredentials } = {},
): Promise<RunningRun> {
  const log = deps.log;
  const cache =
    deps.cache ??
    new InformerFactory({
      client: deps.kube,
      onError: (sel, e) => log.warn({ err: e, path: sel.path }, 'watch failed; retrying'),
    });
  const shared = { ...deps, cache };
  const stops: Running[] = [];
  try {
    const controller = await startController(shared, config, {
      serveMetrics: false,
      certificates: false,
      awsCredentials: o.awsCredentials,
    });
    stops.unshift(controller);
    const guard = createAdmissionGuard(shared, {
      gateEnabled: webhookConfig.identityGate,
      allowOptOut: webhookConfig.identityGateAllowOptOut,
    });
    stops.unshift(guard);
    const webhook = await startWebhook(webhookConfig, { ...shared, associations: controller.lookup, guard });
    stops.unshift(webhook);
    return {
      webhook,
      controller,
      cache,
      async stop() {
        // Webhook first (readiness fails, the server drains), then the guard, then the controller; the cache last.
        for (const p of stops) await p.stop().catch((e: unknown) => log.warn({ err: e }, 'stop failed'));
        if (!deps.cache) cache.stop();
      },
    };
  } catch (e) {
    for (const p of stops) await p.stop().catch(() => undefined);
    if (!deps.cache) cache.stop();
    throw e;
  }
}
