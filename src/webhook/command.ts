// `lanyard webhook`: the reference's command line (pflag syntax, parsed by src/config/webhook.ts, not commander, so
// existing Deployments keep their args), wiring of the real I/O, signals and graceful shutdown (docs/webhook.md#health-readiness-and-shutdown).
import type { Command } from 'commander';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { CliError, EXIT, exitCodeOf } from '../cli/exit.ts';
import { BUILD_INFO } from '../core/build-info.ts';
import { FlagError, parseWebhookFlags, webhookFlagHelp, type WebhookConfig } from '../config/webhook.ts';
import { createKubeClient } from '../kube/client.ts';
import { createLogger } from '../runtime/log.ts';
import { systemClock } from '../runtime/clock.ts';
import { createAssociationLookup } from '../associations/lookup.ts';
import { createAdmissionGuard } from '../verification/admission-guard.ts';
import type { KubeClient } from '../kube/client.ts';
import { InformerFactory } from '../kube/cache.ts';
import type { Logger } from '../runtime/log.ts';
import type { Deps } from '../runtime/deps.ts';
import { startWebhook, type RunningWebhook, type WebhookDeps } from './index.ts';
import { errorMessage } from '../core/errors.ts';

const LANYARD_API = '/apis/lanyard.dev/v1alpha1';
const DISCOVERY_INTERVAL_MS = 60_000;

/** True when the lanyard.dev API serves PodIdentityAssociations (docs/webhook.md#associations-policies-and-the-verification-gate). */
async function lanyardCrdsServed(kube: KubeClient): Promise<boolean> {
  const r = await kube.raw<{ resources?: Array<{ name: string }> }>({ path: LANYARD_API, timeoutMs: 5000 });
  return r.status === 200 && (r.body?.resources ?? []).some((x) => x.name === 'podidentityassociations');
}

/**
 * Adds the association source and the admission guard once the lanyard.dev CRDs are served: checked at startup and
 * every 60 s after, so installing the CRDs later needs no webhook restart. Admission and readiness read them from
 * `deps` at every request. Returns a stop function.
 */
function wireLanyardSources(
  deps: WebhookDeps,
  config: WebhookConfig,
  log: Logger,
): { ready: Promise<void>; stop: () => Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const stops: Array<() => Promise<void> | void> = [];
  const check = async () => {
    if (stopped || deps.associations) return;
    let served = false;
    try {
      served = await lanyardCrdsServed(deps.kube);
    } catch (e) {
      log.warn({ err: e }, 'lanyard.dev discovery failed; retrying');
    }
    if (!served) {
      timer = setTimeout(() => void check(), DISCOVERY_INTERVAL_MS);
      timer.unref();
      return;
    }
    const associations = createAssociationLookup(deps, {
      clusterName: config.clusterName,
      observeAck: config.observeAckAssociations,
    });
    const guard = createAdmissionGuard(deps, {
      gateEnabled: config.identityGate,
      allowOptOut: config.identityGateAllowOptOut,
    });
    stops.push(
      () => associations.stop(),
      () => guard.stop(),
    );
    deps.associations = associations;
    deps.guard = guard;
    log.info('lanyard.dev CRDs served: PodIdentityAssociation source and IdentityPolicy guard enabled');
  };
  return {
    ready: check(),
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const s of stops) await s();
    },
  };
}

const VERSION = `lanyard ${BUILD_INFO.version} (commit ${BUILD_INFO.commit}; pod-identity-webhook compatible)`;

export function webhookHelp(): string {
  return [
    'Usage: lanyard webhook [flags]',
    '',
    'Runs the pod identity admission webhook (drop-in for amazon-eks-pod-identity-webhook).',
    'Flags use pflag syntax (--flag=value or --flag value) and Go durations.',
    '',
    'Flags:',
    ...webhookFlagHelp(),
    '',
  ].join('\n');
}

export function registerWebhookCommand(program: Command): void {
  // The root would otherwise consume `--version` (and any global flag) written after `webhook`; the reference's
  // command line belongs to this command alone, so the root hands everything after `webhook` over untouched.
  const rootParse = program.parseOptions.bind(program);
  program.parseOptions = (argv: string[]) =>
    argv[0] === 'webhook' ? { operands: [...argv], unknown: [] } : rootParse(argv);
  program
    .command('webhook')
    .description(
      'Run the pod identity admission webhook (flags compatible with amazon-eks-pod-identity-webhook)',
    )
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument('[flags...]')
    .action(async (_args: string[], _opts: unknown, cmd: Command) => {
      await runWebhookCommand(cmd.args);
    });
}

/** `lanyard webhook <flags>` as the whole process (src/main.ts): runs until stopped; returns the exit code. */
export async function runWebhookProcess(argv: string[]): Promise<number> {
  try {
    await runWebhookCommand(argv);
    return EXIT.ok;
  } catch (e) {
    return exitCodeOf(e);
  }
}

export interface RunningWebhookProcess {
  webhook: RunningWebhook;
  /** The process's one informer cache: the webhook's caches, the association source and the guard are its views. */
  cache: InformerFactory;
  stop(): Promise<void>;
}

/**
 * What `lanyard webhook` runs, on the process's one informer cache (docs/adr/1080-webhook-on-the-informer-cache.md):
 * the lanyard.dev sources (when served) and the webhook. `stop` stops them and the cache; the client stays open.
 */
export async function startWebhookProcess(
  config: WebhookConfig,
  base: Omit<Deps, 'cache'>,
): Promise<RunningWebhookProcess> {
  const cache = new InformerFactory({
    client: base.kube,
    onError: (sel, e) => base.log.warn({ err: e, path: sel.path }, 'watch failed; retrying'),
  });
  const deps: WebhookDeps = { ...base, cache };
  const lanyard = wireLanyardSources(deps, config, base.log);
  try {
    await lanyard.ready;
    const webhook = await startWebhook(config, deps);
    return {
      webhook,
      cache,
      async stop() {
        await webhook.stop();
        await lanyard.stop();
        cache.stop();
      },
    };
  } catch (e) {
    await lanyard.stop();
    cache.stop();
    throw e;
  }
}

/** How long after listening the process metrics are registered (docs/adr/0707-webhook-start-path.md). */
const PROCESS_METRICS_DELAY_MS = 1000;

export async function runWebhookCommand(argv: string[]): Promise<void> {
  let config: WebhookConfig;
  try {
    config = parseWebhookFlags(argv);
  } catch (e) {
    if (e instanceof FlagError) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
  if (config.help) {
    process.stdout.write(webhookHelp());
    return;
  }
  if (config.version) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const log = createLogger({ component: 'webhook', level: config.logLevel });
  const kube = await createKubeClient({
    kubeconfig: config.kubeconfig || undefined,
    inCluster: !config.kubeconfig,
    inClusterService: config.inClusterService,
    server: config.kubeApi || undefined,
    userAgent: 'lanyard-webhook',
    // The webhook's only TLS peer is the API server (docs/adr/0706-trust-only-the-cluster-ca.md).
    trustOnlyClusterCa: true,
  });
  const metrics = new Registry();
  let running: RunningWebhookProcess;
  try {
    running = await startWebhookProcess(config, { kube, log, metrics, clock: systemClock });
  } catch (e) {
    throw new CliError(errorMessage(e), EXIT.failure);
  }
  // A second after it listens: the process metrics' modules load off the path to the first answers (docs/adr/0707).
  const processMetrics = setTimeout(
    () => collectDefaultMetrics({ register: metrics }),
    PROCESS_METRICS_DELAY_MS,
  );
  await new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (sig: string) => {
      if (signalled) {
        log.warn({ signal: sig }, 'second signal: exiting at once');
        process.exit(1);
      }
      signalled = true;
      clearTimeout(processMetrics);
      log.info({ signal: sig }, 'shutting down');
      void running.stop().then(() => {
        kube.close();
        resolve();
      });
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });
}
