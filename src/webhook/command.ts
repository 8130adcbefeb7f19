// `lanyard webhook`: the reference's command line (pflag syntax, parsed by src/config/webhook.ts, not commander, so
// existing Deployments keep their args), wiring of the real I/O, signals and graceful shutdown (webhook.md §8).
import type { Command } from 'commander';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { CliError, EXIT } from '../cli/exit.ts';
import { BUILD_INFO } from '../cli/build-info.ts';
import { FlagError, parseWebhookFlags, WEBHOOK_DEFAULTS, type WebhookConfig } from '../config/webhook.ts';
import { createKubeClient } from '../kube/client.ts';
import { createLogger } from '../runtime/log.ts';
import { systemClock } from '../runtime/clock.ts';
import { createAssociationLookup } from '../associations/lookup.ts';
import { createAdmissionGuard } from '../verification/admission-guard.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../runtime/log.ts';
import { startWebhook, type WebhookDeps } from './index.ts';

const LANYARD_API = '/apis/lanyard.dev/v1alpha1';
const DISCOVERY_INTERVAL_MS = 60_000;

/** True when the lanyard.dev API serves PodIdentityAssociations (webhook.md §2.5). */
async function lanyardCrdsServed(kube: KubeClient): Promise<boolean> {
  const r = await kube.raw<{ resources?: Array<{ name: string }> }>({ path: LANYARD_API, timeoutMs: 5000 });
  return r.status === 200 && (r.body?.resources ?? []).some((x) => x.name === 'podidentityassociations');
}

/**
 * Adds the association source and the admission guard once the lanyard.dev CRDs are served: checked at startup and
 * every 60 s after, so installing the CRDs later needs no webhook restart. Admission and readiness read them from
 * `deps` at every request. Returns a stop function.
 */
function wireLanyardSources(deps: WebhookDeps, config: WebhookConfig, log: Logger): { ready: Promise<void>; stop: () => Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const stops: Array<() => Promise<void> | void> = [];
  const check = async () => {
    if (stopped || deps.associations) return;
    let served = false;
    try {
      served = await lanyardCrdsServed(deps.kube);
    } catch (e) {
      log.warn({ err: String(e) }, 'lanyard.dev discovery failed; retrying');
    }
    if (!served) {
      timer = setTimeout(() => void check(), DISCOVERY_INTERVAL_MS);
      timer.unref();
      return;
    }
    const associations = createAssociationLookup(deps, { clusterName: config.clusterName, observeAck: config.observeAckAssociations });
    const guard = createAdmissionGuard(deps, { gateEnabled: config.identityGate, allowOptOut: config.identityGateAllowOptOut });
    stops.push(() => associations.stop(), () => guard.stop());
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

const HELP: Array<[string, string]> = [
  ['--port int', 'HTTPS port for /mutate, /healthz, /readyz (default 443)'],
  ['--metrics-port int', 'HTTP port for /metrics, /healthz, /readyz (default 9999)'],
  ['--kubeconfig string', 'kubeconfig path; empty means in-cluster (default "")'],
  ['--kube-api string', 'API server URL override (default "")'],
  ['--tls-cert string', `TLS certificate file (default "${WEBHOOK_DEFAULTS.tlsCert}")`],
  ['--tls-key string', `TLS key file (default "${WEBHOOK_DEFAULTS.tlsKey}")`],
  ['--tls-min-version string', 'minimum TLS version, 1.0-1.3 or VersionTLS10-13 (default "1.2")'],
  ['--tls-cipher-suites string', 'comma list of IANA/Go cipher suite names (default: Node defaults)'],
  ['--namespace string', 'namespace of the kOps ConfigMap (default "eks")'],
  ['--annotation-prefix string', 'prefix of the ServiceAccount and Pod annotations (default "eks.amazonaws.com")'],
  ['--token-audience string', 'default IRSA token audience (default "sts.amazonaws.com")'],
  ['--token-mount-path string', `IRSA token mount path (default "${WEBHOOK_DEFAULTS.tokenMountPath}")`],
  ['--token-expiration int', 'token expiration in seconds, at least 600 (default 86400)'],
  ['--aws-default-region string', 'region injected into mutated containers (default "")'],
  ['--sts-regional-endpoint', 'default for AWS_STS_REGIONAL_ENDPOINTS=regional'],
  ['--watch-config-map', 'read the kOps ConfigMap pod-identity-webhook in --namespace (default false)'],
  ['--compose-role-arn', 'compose role ARNs without "arn:" from instance metadata (default false)'],
  ['--watch-container-credentials-config string', 'path of the container-credentials identities file (default "")'],
  ['--container-credentials-audience string', 'EKS Pod Identity token audience (default "pods.eks.amazonaws.com")'],
  ['--container-credentials-token-mount-path string', `(default "${WEBHOOK_DEFAULTS.containerCredentialsTokenMountPath}")`],
  ['--container-credentials-token-volume-name string', '(default "eks-pod-identity-token")'],
  ['--container-credentials-token-path string', '(default "eks-pod-identity-token")'],
  ['--container-credentials-full-uri string', `(default "${WEBHOOK_DEFAULTS.containerCredentialsFullUri}")`],
  ['--service-account-lookup-grace-period duration', 'longest wait for a ServiceAccount missing from the cache (default 2s)'],
  ['--resync-period duration', 'lifetime of an unconfirmed live-fetched ServiceAccount (default 1m0s)'],
  ['--enable-debugging-handlers', 'serve /debug/alpha/* routes (default false)'],
  ['--in-cluster', 'deprecated: true selects --tls-mode=self-managed (default false)'],
  ['--service-name string', 'Service named in the self-managed certificate (default "pod-identity-webhook")'],
  ['--tls-secret string', 'Secret holding the self-managed certificate (default "pod-identity-webhook")'],
  ['--tls-mode string', 'files or self-managed (default "files")'],
  ['--tls-extra-sans string', 'extra DNS names or IPs for the self-managed certificate (default "")'],
  ['--self-managed-cert-validity duration', 'self-managed serving certificate lifetime (default 2160h0m0s)'],
  ['--webhook-config-name string', 'MutatingWebhookConfiguration whose caBundle is kept current (default "")'],
  ['--identity-gate', 'add the lanyard.dev/identity scheduling gate (default false)'],
  ['--identity-gate-allow-opt-out', 'honour lanyard.dev/verify: "false" (default true)'],
  ['--cluster-name string', 'EKS cluster name for associations (default "")'],
  ['--observe-ack-associations string', 'auto, true or false (default "auto")'],
  ['--config-poll-interval duration', 'poll period for the identities file and TLS files (default 5s)'],
  ['--max-request-bytes int', 'request body limit: 2 × the API server\'s 3 MiB object limit + 1 MiB (default 7340032)'],
  ['--max-connections int', 'open HTTPS connections beyond this are closed at once (default 1000)'],
  ['--read-timeout duration', 'TLS handshake, then each request\'s headers and body, must arrive within this (default 10s)'],
  ['--idle-timeout duration', 'idle keep-alive connections are closed after this (default 2m0s)'],
  ['--shutdown-delay duration', 'time /readyz fails before the server drains (default 5s)'],
  ['--shutdown-timeout duration', 'longest drain (default 20s)'],
  ['--log-level string', 'error, warn, info, debug or trace (default "info")'],
  ['-v, --v int', 'klog verbosity: 4 means debug, 6 trace (default 0)'],
  ['--logtostderr, --log_dir, ...', 'other klog flags are accepted and ignored'],
  ['--version', 'print the version and exit'],
];

export function webhookHelp(): string {
  const width = Math.max(...HELP.map(([f]) => f.length));
  return [
    'Usage: lanyard webhook [flags]',
    '',
    'Runs the pod identity admission webhook (drop-in for amazon-eks-pod-identity-webhook).',
    '',
    'Flags:',
    ...HELP.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`),
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
    .description('Run the pod identity admission webhook (flags compatible with amazon-eks-pod-identity-webhook)')
    .helpOption(false)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .argument('[flags...]')
    .action(async (_args: string[], _opts: unknown, cmd: Command) => {
      await runWebhookCommand(cmd.args);
    });
}

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
  });
  const metrics = new Registry();
  collectDefaultMetrics({ register: metrics });
  const deps: WebhookDeps = { kube, log, metrics, clock: systemClock };
  const lanyard = wireLanyardSources(deps, config, log);
  await lanyard.ready;
  let running: Awaited<ReturnType<typeof startWebhook>>;
  try {
    running = await startWebhook(config, deps);
  } catch (e) {
    throw new CliError(e instanceof Error ? e.message : String(e), EXIT.failure);
  }
  await new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (sig: string) => {
      if (signalled) {
        log.warn({ signal: sig }, 'second signal: exiting at once');
        process.exit(1);
      }
      signalled = true;
      log.info({ signal: sig }, 'shutting down');
      void running.stop().then(async () => {
        await lanyard.stop();
        kube.close();
        resolve();
      });
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });
}
