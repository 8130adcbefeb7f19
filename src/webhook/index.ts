// `startWebhook`: the HTTPS admission server (docs/webhook.md#admission-answers), the plain-HTTP metrics port (docs/webhook.md#metrics), and the caches
// behind them (docs/webhook.md#where-an-identity-comes-from). Everything it touches is passed in; stop() releases it all. The
// ServiceAccount and ConfigMap caches are views of the process's informer cache (`deps.cache`: `lanyard webhook` and
// `lanyard run` each make one), so every component of a process watches each selection once; a webhook started
// without one (tests) makes its own (docs/adr/1080-webhook-on-the-informer-cache.md).
import type https from 'node:https';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Deps } from '../runtime/deps.ts';
import type { WebhookConfig } from '../config/webhook.ts';
import type { AdmissionGuard, AssociationLookup } from '../identity/sources.ts';
import type { RoleComposition } from '../identity/annotations.ts';
import { createWebhookMetrics, type WebhookMetrics } from './metrics.ts';
import type { AdmissionContext } from './admission.ts';
import { AnswerBatch, createAdmissionServer } from './server.ts';
import { isReady, onHttps, onMetrics, type WebhookState } from './routes.ts';
import { ServiceAccountCache } from './service-accounts.ts';
import { ConfigMapSource, IdentitiesFile } from './config-sources.ts';
import { TlsFiles } from './tls-files.ts';
import type { CertificateReconciler } from './certificates.ts';
import { fetchRoleComposition } from './imds.ts';
import { sharedOrOwnCache, type InformerFactory } from '../kube/cache.ts';

export type { CertificateReconciler, CertificateReconcilerOptions } from './certificates.ts';

export interface RunningWebhook {
  port: number;
  metricsPort: number;
  caPem?: string;
  ready(): boolean;
  stop(): Promise<void>;
}

export type WebhookDeps = Deps & {
  associations?: AssociationLookup;
  guard?: AdmissionGuard;
  random?: () => number;
  /** `--compose-role-arn` source; defaults to EC2 instance metadata. */
  roleComposition?: () => Promise<RoleComposition>;
};

export async function startWebhook(config: WebhookConfig, deps: WebhookDeps): Promise<RunningWebhook> {
  const cache = sharedOrOwnCache(deps, (sel, e) =>
    deps.log.warn({ err: e, path: sel.path }, 'watch failed; retrying'),
  );
  const st = await openState(config, deps, cache.cache);
  const { log, metrics } = st;
  const tlsBase: https.ServerOptions = {
    minVersion: config.tlsMinVersion,
    ...(config.tlsCipherSuites ? { ciphers: config.tlsCipherSuites } : {}),
    ALPNProtocols: ['http/1.1'],
  };
  const server = createAdmissionServer(
    tlsBase,
    {
      maxConnections: config.maxConnections,
      readTimeoutMs: config.readTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
    },
    () => metrics.connectionsDropped.inc(),
  );
  server.on('request', (req, res) => void onHttps(st, req, res));
  server.on('tlsClientError', (e) => log.debug({ err: e }, 'TLS handshake failed'));
  const metricsServer = http.createServer((req, res) => void onMetrics(st, req, res));
  metricsServer.keepAliveTimeout = 120_000;
  await listen(metricsServer, config.metricsPort);

  let caPem: string | undefined;
  const pairs = await startServingPair(config, { ...deps, cache: cache.cache }, st, (p) => {
    if (p.caPem) caPem = p.caPem;
    server.setSecureContext({ ...tlsBase, cert: p.certPem, key: p.keyPem });
    metrics.certExpiry.set(Math.floor(p.notAfter.getTime() / 1000));
  });

  await listen(server, config.port);
  const port = (server.address() as AddressInfo).port;
  const metricsPort = (metricsServer.address() as AddressInfo).port;
  log.info({ port, metricsPort, tlsMode: config.tlsMode }, 'webhook listening');

  let stopping: Promise<void> | undefined;
  return {
    port,
    metricsPort,
    get caPem() {
      return caPem;
    },
    ready: () => isReady(st),
    stop() {
      stopping ??= stopWebhook(st, deps, { server, metricsServer, pairs, releaseCache: cache.release });
      return stopping;
    },
  };
}

/** The caches behind admission and the state the routes read; the identities file is loaded once. */
async function openState(
  config: WebhookConfig,
  deps: WebhookDeps,
  cache: InformerFactory,
): Promise<WebhookState> {
  const log = deps.log;
  const metrics: WebhookMetrics = createWebhookMetrics(deps.metrics);
  for (const w of config.warnings) log.warn(w);
  const composition = config.composeRoleArn
    ? await (deps.roleComposition ?? (() => fetchRoleComposition()))()
    : undefined;
  const serviceAccounts = new ServiceAccountCache({
    kube: deps.kube,
    cache,
    log,
    metrics,
    prefix: config.annotationPrefix,
    composition,
    gracePeriodMs: config.serviceAccountLookupGracePeriodMs,
    resyncPeriodMs: config.resyncPeriodMs,
    now: () => deps.clock.now(),
  }).start();
  const configMap = config.watchConfigMap
    ? new ConfigMapSource({
        cache,
        log,
        metrics,
        namespace: config.namespace,
      }).start()
    : undefined;
  const identities = config.watchContainerCredentialsConfig
    ? new IdentitiesFile({
        file: config.watchContainerCredentialsConfig,
        log,
        metrics,
        pollIntervalMs: config.configPollIntervalMs,
      })
    : undefined;
  // The first load completes before the listener opens (docs/webhook.md#the-identities-file-eks-pod-identity).
  await identities?.start();
  const ctx: AdmissionContext = {
    // WebhookConfig carries every InjectionFlags field under the same name: no copy needed.
    flags: config,
    metrics,
    log,
    random: deps.random ?? Math.random,
    serviceAccounts,
    configMap,
    identities,
    sources: deps,
  };
  const { metrics: registry } = deps;
  return {
    config,
    log,
    metrics,
    registry,
    ctx,
    answers: new AnswerBatch({
      onError: (e) => log.error({ err: e }, 'admission answer not written or not counted'),
    }),
    serviceAccounts,
    configMap,
    identities,
    sources: deps,
    shuttingDown: false,
  };
}

interface ServingPair {
  certPem: string;
  keyPem: string;
  notAfter: Date;
  caPem?: string;
}

/** The serving certificate from files or self-managed (docs/adr/0102), installed before this resolves. */
async function startServingPair(
  config: WebhookConfig,
  deps: WebhookDeps,
  st: WebhookState,
  install: (p: ServingPair) => void,
): Promise<{ stop(): Promise<void> | void }> {
  if (config.tlsMode === 'files') {
    const tlsFiles = new TlsFiles({
      certFile: config.tlsCert,
      keyFile: config.tlsKey,
      pollIntervalMs: config.configPollIntervalMs,
      log: st.log,
      metrics: st.metrics,
      onPair: install,
      now: () => deps.clock.now(),
    });
    st.certificate = tlsFiles;
    await tlsFiles.start();
    await tlsFiles.firstPair();
    return tlsFiles;
  }
  // Loaded only in this mode: the X.509 library is a sizeable share of memory (docs/adr/0111).
  const { startCertificateReconciler, certificateOptions } = await import('./certificates.ts');
  const reconciler: CertificateReconciler = startCertificateReconciler(deps, {
    ...certificateOptions(config),
    onPair: install,
  });
  st.certificate = reconciler;
  await reconciler.firstPair();
  return reconciler;
}

function listen(server: http.Server | https.Server, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
}

/** Readiness fails first, so endpoints and the API server stop sending here, then the server drains. */
async function stopWebhook(
  st: WebhookState,
  deps: WebhookDeps,
  o: {
    server: https.Server;
    metricsServer: http.Server;
    pairs: { stop(): Promise<void> | void };
    /** Stops the webhook's own informer cache (none when the process passed its own). */
    releaseCache: () => void;
  },
): Promise<void> {
  const { config } = st;
  st.shuttingDown = true;
  st.metrics.ready.set(0);
  if (config.shutdownDelayMs > 0) await deps.clock.sleep(config.shutdownDelayMs);
  const closed = new Promise<void>((r) => o.server.close(() => r()));
  o.server.closeIdleConnections();
  const force = setTimeout(() => o.server.closeAllConnections(), config.shutdownTimeoutMs);
  await closed;
  clearTimeout(force);
  o.metricsServer.closeAllConnections();
  await new Promise<void>((r) => o.metricsServer.close(() => r()));
  st.serviceAccounts.stop();
  st.configMap?.stop();
  o.releaseCache();
  st.identities?.stop();
  await o.pairs.stop();
  st.log.info('webhook stopped');
}
