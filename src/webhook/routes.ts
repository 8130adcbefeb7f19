// The webhook's HTTP routes (docs/webhook.md#admission-answers, docs/webhook.md#metrics,
// docs/webhook.md#health-readiness-and-shutdown): /mutate, health, readiness and the debug routes on the HTTPS port,
// /metrics and the same health routes on the plain-HTTP port. Each handler reads the running webhook's state,
// passed in; nothing here listens or owns a resource.
import type http from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../runtime/log.ts';
import type { WebhookConfig } from '../config/webhook.ts';
import type { AdmissionGuard, AssociationLookup } from '../identity/sources.ts';
import type { WebhookMetrics } from './metrics.ts';
import { contentTypeProblem, decodeReview, statusError } from './codec.ts';
import { admit, timeoutParamMs, type AdmissionContext } from './admission.ts';
import { readBody, sendJson, type AnswerBatch } from './server.ts';
import type { ServiceAccountCache } from './service-accounts.ts';
import type { ConfigMapSource, IdentitiesFile } from './config-sources.ts';

/** What the routes read of a running webhook. */
export interface WebhookState {
  config: WebhookConfig;
  log: Logger;
  metrics: WebhookMetrics;
  registry: Registry;
  ctx: AdmissionContext;
  /** Where /mutate's answers are queued to be written with the others of their turn. */
  answers: AnswerBatch;
  serviceAccounts: ServiceAccountCache;
  configMap?: ConfigMapSource;
  identities?: IdentitiesFile;
  /** Read at every check: the command may add them once the lanyard.dev CRDs become served. */
  sources: { associations?: AssociationLookup; guard?: AdmissionGuard };
  /** Installed and valid now: an expired certificate takes the replica out of the Service (docs/adr/0103). */
  certificate?: { usable(): boolean };
  shuttingDown: boolean;
}

export function readinessChecks(st: WebhookState): Record<string, boolean> {
  const c: Record<string, boolean> = {
    serviceAccounts: st.serviceAccounts.synced,
    certificate: st.certificate?.usable() ?? false,
  };
  if (st.identities) c.identitiesFile = st.identities.loaded;
  if (st.configMap) c.configMap = st.configMap.synced;
  if (st.sources.associations) c.associations = st.sources.associations.synced();
  if (st.sources.guard) c.guard = st.sources.guard.synced();
  c.notShuttingDown = !st.shuttingDown;
  return c;
}

export const isReady = (st: WebhookState): boolean => Object.values(readinessChecks(st)).every(Boolean);

function observe(st: WebhookState, path: string, method: string, code: number, started: number): void {
  st.metrics.httpRequests.inc({ verb: method, path, code: String(code) });
  st.metrics.duration.observe({ path, code: String(code) }, (performance.now() - started) / 1000);
}

const health = (res: http.ServerResponse) => sendJson(res, 200, { status: 'ok' });

function readiness(st: WebhookState, res: http.ServerResponse): void {
  const c = readinessChecks(st);
  const ok = Object.values(c).every(Boolean);
  st.metrics.ready.set(ok ? 1 : 0);
  sendJson(res, ok ? 200 : 503, { ready: ok, checks: c });
}

/**
 * /mutate: the request checked and read, the review decoded and answered. The HTTP status of an answer written at once,
 * for the metrics; `queued` for a review's answer, observed when its batch is written.
 */
async function mutate(
  st: WebhookState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  query: string,
  started: number,
): Promise<number | 'queued'> {
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
  const body = await readBody(req, res, st.config.maxRequestBytes);
  if (body === 'too_large') return 413;
  if (body === 'aborted') return 499; // client closed the request; nothing can be answered
  const decoded = decodeReview(body);
  if (!decoded.ok) {
    st.log.warn({ reason: decoded.message }, 'bad admission request');
    sendJson(res, 400, statusError(400, 'BadRequest', decoded.message));
    return 400;
  }
  const review = await admit(decoded.apiVersion, decoded.request, timeoutParamMs(query), st.ctx);
  st.answers.send(res, 200, review, st.shuttingDown ? { connection: 'close' } : undefined, () =>
    observed(st, req, 200, started),
  );
  return 'queued';
}

function observed(st: WebhookState, req: http.IncomingMessage, code: number, started: number): void {
  observe(st, '/mutate', req.method ?? '', code, started);
  if (st.log.isLevelEnabled('debug'))
    st.log.debug(
      { method: req.method, path: '/mutate', status: code, durationMs: performance.now() - started },
      'request',
    );
}

/** The HTTPS port's routes. */
export async function onHttps(
  st: WebhookState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const started = performance.now();
  // The path and query split by hand: a full URL parse per admission is measurable at these rates.
  const target = req.url ?? '/';
  const q = target.indexOf('?');
  const pathname = q < 0 ? target : target.slice(0, q);
  try {
    switch (pathname) {
      case '/mutate': {
        const code = await mutate(st, req, res, q < 0 ? '' : target.slice(q + 1), started);
        if (code !== 'queued') observed(st, req, code, started);
        return;
      }
      case '/healthz':
        return health(res);
      case '/readyz':
        return readiness(st, res);
    }
    if (!debugRoute(st, pathname, res))
      sendJson(res, 404, statusError(404, 'NotFound', `no route for ${pathname}`));
    else observe(st, pathname, req.method ?? '', res.statusCode, started);
  } catch (e) {
    st.log.error({ err: e }, 'request handling failed');
    if (!res.headersSent) sendJson(res, 500, statusError(500, 'InternalError', 'lanyard: internal error'));
  }
}

/** The HTTPS port's debug routes, with `--enable-debugging-handlers`; false when `pathname` is not one. */
function debugRoute(st: WebhookState, pathname: string, res: http.ServerResponse): boolean {
  if (!st.config.enableDebuggingHandlers) return false;
  if (pathname === '/debug/alpha/deny') {
    // Deliberately invalid: no uid, no TypeMeta (exercises the API server's failure handling).
    sendJson(res, 200, { response: { allowed: false, status: { message: 'debug deny' } } });
    return true;
  }
  if (pathname === '/debug/alpha/500') {
    sendJson(res, 500, statusError(500, 'InternalError', 'debug: deliberate HTTP 500'));
    return true;
  }
  return false;
}

const debugCache = (st: WebhookState) => ({
  serviceAccounts: Object.fromEntries(st.serviceAccounts.entries()),
  configMap: st.configMap ? Object.fromEntries(st.configMap.current) : null,
  identitiesFile: st.identities ? [...st.identities.current] : null,
  associations: st.sources.associations ? { synced: st.sources.associations.synced() } : null,
});

/** The plain-HTTP metrics port's routes. */
export async function onMetrics(
  st: WebhookState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  const started = performance.now();
  const url = new URL(req.url ?? '/', 'http://metrics');
  try {
    switch (url.pathname) {
      case '/metrics': {
        st.metrics.ready.set(isReady(st) ? 1 : 0);
        const text = await st.registry.metrics();
        res.writeHead(200, { 'content-type': st.registry.contentType });
        res.end(text);
        return;
      }
      case '/healthz':
        return health(res);
      case '/readyz':
        return readiness(st, res);
    }
    const debug = st.config.enableDebuggingHandlers;
    if (debug && url.pathname === '/debug/alpha/cache' && req.method === 'GET') {
      sendJson(res, 200, debugCache(st));
      return observe(st, url.pathname, 'GET', 200, started);
    }
    if (debug && url.pathname === '/debug/alpha/cache/clear' && req.method === 'POST') {
      await Promise.all([st.serviceAccounts.relist(), st.configMap?.relist(), st.identities?.reload()]);
      sendJson(res, 200, { relisted: true });
      return observe(st, url.pathname, 'POST', 200, started);
    }
    sendJson(res, 404, statusError(404, 'NotFound', `no route for ${url.pathname}`));
  } catch (e) {
    st.log.error({ err: e }, 'metrics request failed');
    if (!res.headersSent) sendJson(res, 500, statusError(500, 'InternalError', 'lanyard: internal error'));
  }
}
