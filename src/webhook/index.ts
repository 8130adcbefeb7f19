// `startWebhook`: the HTTPS admission server (docs/webhook.md#admission-answers), the plain-HTTP metrics port (docs/webhook.md#metrics), and the caches
// behind them (docs/webhook.md#where-an-identity-comes-from). Everything it touches is passed in; stop() releases it all. With `deps.cache` (`lanyard run`)
// the ServiceAccount and ConfigMap caches are views of the process's shared informer cache, so the controller and the
// webhook watch each selection once; alone (`lanyard webhook`) they watch on their own
// (docs/adr/0930-webhook-on-the-shared-cache-under-run.md).
import type https from 'node:https';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Deps } from '../runtime/deps.ts';
import type { WebhookConfig } from '../config/webhook.ts';
import type { AdmissionGuard, AssociationLookup } from '../identity/sources.ts';
import type { RoleComposition } from '../identity/annotations.ts';
import { createWebhookMetrics, type WebhookMetrics } from './metrics.ts';
import { contentTypeProblem, decodeReview, statusError } from './codec.ts';
import { admit, timeoutParamMs, type AdmissionContext } from './admission.ts';
import { createAdmissionServer, readBody, sendJson, sendText } from './server.ts';
import { ServiceAccountCache } from './service-accounts.ts';
import { ConfigMapSource, IdentitiesFile } from './config-sources.ts';
import { TlsFiles } from './tls-files.ts';
import type { CertificateReconciler } from './certificates.ts';
import { fetchRoleComposition } from './imds.ts';

export type { CertificateReconciler, CertificateReconcilerOptions } from './certificates.ts';

export interface RunningWebhook {
  port: number;
  metricsPort: number;
  caPem?: string;
  ready(): boolean;
  stop(): Promise<void>;
  pauseServiceAccountWatch(): void;
  resumeServiceAccountWatch(): void;
}

export type WebhookDeps = Deps & {
  associations?: AssociationLookup;
  guard?: AdmissionGuard;
  random?: () => number;
  /** `--compose-role-arn` source; defaults to EC2 instance metadata. */
  roleComposition?: () => Promise<RoleComposition>;
};

export async function startWebhook(config: WebhookConfig, deps: WebhookDeps): Promise<RunningWebhook> {
  const log = deps.log;
  const metrics: WebhookMetrics = createWebhookMetrics(deps.metrics);
  for (const w of config.warnings) log.warn(w);
  const ciphers = config.tlsCipherSuites;
  const composition = config.composeRoleArn
    ? await (deps.roleComposition ?? (() => fetchRoleComposition()))()
    : undefined;

  const serviceAccounts = new ServiceAccountCache({
    kube: deps.kube,
    cache: deps.cache,
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
        kube: deps.kube,
        cache: deps.cache,
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

  let shuttingDown = false;
  // Installed and valid now: an expired certificate takes the replica out of the Service (docs/adr/0103).
  let certificate: { usable(): boolean } | undefined;
  const checks = () => {
    const c: Record<string, boolean> = {
      serviceAccounts: serviceAccounts.synced,
      certificate: certificate?.usable() ?? false,
    };
    if (identities) c.identitiesFile = identities.loaded;
    if (configMap) c.configMap = configMap.synced;
    if (deps.associations) c.associations = deps.associations.synced();
    if (deps.guard) c.guard = deps.guard.synced();
    c.notShuttingDown = !shuttingDown;
    return c;
  };
  const ready = () => Object.values(checks()).every(Boolean);

  const tlsBase: https.ServerOptions = {
    minVersion: config.tlsMinVersion,
    ...(ciphers ? { ciphers } : {}),
    ALPNProtocols: ['http/1.1'],
  };
  let caPem: string | undefined;
  const server = createAdmissionServer(
    tlsBase,
    {
      maxConnections: config.maxConnections,
      readTimeoutMs: config.readTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
    },
    () => metrics.connectionsDropped.inc(),
  );
  const installPair = (p: { certPem: string; keyPem: string; notAfter: Date }) => {
    server.setSecureContext({ ...tlsBase, cert: p.certPem, key: p.keyPem });
    metrics.certExpiry.set(Math.floor(p.notAfter.getTime() / 1000));
  };

  const observe = (path: string, method: string, code: number, started: number) => {
    metrics.httpRequests.inc({ verb: method, path, code: String(code) });
    metrics.duration.observe({ path, code: String(code) }, (performance.now() - started) / 1000);
  };

  const health = (res: http.ServerResponse) => sendJson(res, 200, { status: 'ok' });
  const readiness = (res: http.ServerResponse) => {
    const c = checks();
    const ok = Object.values(c).every(Boolean);
    metrics.ready.set(ok ? 1 : 0);
    sendJson(res, ok ? 200 : 503, { ready: ok, checks: c });
  };

  const mutate = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    query: string,
  ): Promise<number> => {
    if (req.method !== 'POST') {
      // Drain what the client sent so a keep-alive connection stays usable.
      req.resume();
      sendJson(
        res,
        405,
        statusError(405, 'MethodNotAllowed', `${req.method} is not allowed on /mutate; use POST`),
        { allow: 'POST' },
      );
      return 405;
    }
    const ctProblem = contentTypeProblem(req.headers['content-type']);
    if (ctProblem) {
      req.resume();
      sendJson(res, 415, statusError(415, 'UnsupportedMediaType', ctProblem));
      return 415;
    }
    const body = await readBody(req, res, config.maxRequestBytes);
    if (body === 'too_large') return 413;
    if (body === 'aborted') return 499; // client closed the request; nothing can be answered
    const decoded = decodeReview(body);
    if (!decoded.ok) {
      log.warn({ reason: decoded.message }, 'bad admission request');
      sendJson(res, 400, statusError(400, 'BadRequest', decoded.message));
      return 400;
    }
    const review = await admit(
      decoded.apiVersion,
      decoded.request,
      timeoutParamMs(new URLSearchParams(query)),
      ctx,
    );
    sendText(res, 200, review, shuttingDown ? { connection: 'close' } : undefined);
    return 200;
  };

  const onHttps = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = performance.now();
    // The path and query split by hand: a full URL parse per admission is measurable at these rates.
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const pathname = q < 0 ? target : target.slice(0, q);
    try {
      switch (pathname) {
        case '/mutate': {
          const code = await mutate(req, res, q < 0 ? '' : target.slice(q + 1));
          observe('/mutate', req.method ?? '', code, started);
          if (log.isLevelEnabled('debug'))
            log.debug(
              { method: req.method, path: '/mutate', status: code, durationMs: performance.now() - started },
              'request',
            );
          return;
        }
        case '/healthz':
          return health(res);
        case '/readyz':
          return readiness(res);
      }
      if (config.enableDebuggingHandlers && pathname === '/debug/alpha/deny') {
        // Deliberately invalid: no uid, no TypeMeta (exercises the API server's failure handling).
        sendJson(res, 200, { response: { allowed: false, status: { message: 'debug deny' } } });
        return observe(pathname, req.method ?? '', 200, started);
      }
      if (config.enableDebuggingHandlers && pathname === '/debug/alpha/500') {
        sendJson(res, 500, statusError(500, 'InternalError', 'debug: deliberate HTTP 500'));
        return observe(pathname, req.method ?? '', 500, started);
      }
      sendJson(res, 404, statusError(404, 'NotFound', `no route for ${pathname}`));
    } catch (e) {
      log.error({ err: e }, 'request handling failed');
      if (!res.headersSent) sendJson(res, 500, statusError(500, 'InternalError', 'lanyard: internal error'));
    }
  };

  const debugCache = () => ({
    serviceAccounts: Object.fromEntries(serviceAccounts.entries()),
    configMap: configMap ? Object.fromEntries(configMap.current) : null,
    identitiesFile: identities ? [...identities.current] : null,
    associations: deps.associations ? { synced: deps.associations.synced() } : null,
  });

  const onMetrics = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://metrics');
    try {
      switch (url.pathname) {
        case '/metrics': {
          metrics.ready.set(ready() ? 1 : 0);
          const text = await deps.metrics.metrics();
          res.writeHead(200, { 'content-type': deps.metrics.contentType });
          res.end(text);
          return;
        }
        case '/healthz':
          return health(res);
        case '/readyz':
          return readiness(res);
      }
      if (config.enableDebuggingHandlers && url.pathname === '/debug/alpha/cache' && req.method === 'GET') {
        sendJson(res, 200, debugCache());
        return observe(url.pathname, 'GET', 200, started);
      }
      if (
        config.enableDebuggingHandlers &&
        url.pathname === '/debug/alpha/cache/clear' &&
        req.method === 'POST'
      ) {
        await Promise.all([serviceAccounts.relist(), configMap?.relist(), identities?.reload()]);
        sendJson(res, 200, { relisted: true });
        return observe(url.pathname, 'POST', 200, started);
      }
      sendJson(res, 404, statusError(404, 'NotFound', `no route for ${url.pathname}`));
    } catch (e) {
      log.error({ err: e }, 'metrics request failed');
      if (!res.headersSent) sendJson(res, 500, statusError(500, 'InternalError', 'lanyard: internal error'));
    }
  };

  server.on('request', (req, res) => void onHttps(req, res));
  server.on('tlsClientError', (e) => log.debug({ err: e }, 'TLS handshake failed'));
  const metricsServer = http.createServer((req, res) => void onMetrics(req, res));
  metricsServer.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve, reject) => {
    metricsServer.once('error', reject);
    metricsServer.listen(config.metricsPort, () => resolve());
  });

  let tlsFiles: TlsFiles | undefined;
  let reconciler: CertificateReconciler | undefined;
  if (config.tlsMode === 'files') {
    tlsFiles = new TlsFiles({
      certFile: config.tlsCert,
      keyFile: config.tlsKey,
      pollIntervalMs: config.configPollIntervalMs,
      log,
      metrics,
      onPair: installPair,
      now: () => deps.clock.now(),
    });
    certificate = tlsFiles;
    await tlsFiles.start();
    await tlsFiles.firstPair();
  } else {
    // Loaded only in this mode: the X.509 library is a sizeable share of memory (docs/adr/0111).
    const { startCertificateReconciler } = await import('./certificates.ts');
    reconciler = startCertificateReconciler(deps, {
      namespace: config.podNamespace,
      serviceName: config.serviceName,
      extraSans: config.tlsExtraSans,
      validityMs: config.selfManagedCertValidityMs,
      secretName: config.tlsSecret,
      webhookConfigName: config.webhookConfigName,
      onPair: (p) => {
        caPem = p.caPem;
        installPair(p);
      },
    });
    certificate = reconciler;
    await reconciler.firstPair();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, () => resolve());
  });
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
    ready,
    pauseServiceAccountWatch: () => serviceAccounts.store.pause(),
    resumeServiceAccountWatch: () => serviceAccounts.store.resume(),
    stop() {
      stopping ??= (async () => {
        // Readiness fails first, so endpoints and the API server stop sending here, then the server drains.
        shuttingDown = true;
        metrics.ready.set(0);
        if (config.shutdownDelayMs > 0) await deps.clock.sleep(config.shutdownDelayMs);
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
        await closed;
        clearTimeout(force);
        metricsServer.closeAllConnections();
        await new Promise<void>((r) => metricsServer.close(() => r()));
        serviceAccounts.stop();
        configMap?.stop();
        identities?.stop();
        tlsFiles?.stop();
        await reconciler?.stop();
        log.info('webhook stopped');
      })();
      return stopping;
    },
  };
}
