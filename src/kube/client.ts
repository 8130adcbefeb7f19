// The only importer of @kubernetes/client-node. Lanyard uses it for what it is good at (loading kubeconfigs and
// in-cluster credentials) and speaks raw JSON over node:https itself, so objects are never round-tripped through
// typed models that drop fields they do not know (docs/migrate-from-pod-identity-webhook.md#what-behaves-differently-and-why).
import https from 'node:https';
import http from 'node:http';
import tls from 'node:tls';
import { StringDecoder } from 'node:string_decoder';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError } from './errors.ts';
import {
  inClusterConfig,
  staticKubeconfig,
  tokenConfig,
  type HttpsAuth,
  type StaticConfig,
} from './kubeconfig.ts';

import type { Json } from '../core/json.ts';
import type { KubeObject } from '../core/kube-object.ts';
import { backoffDelay } from '../core/backoff.ts';
import { sleep } from '../runtime/clock.ts';
export type { Json, KubeObject };

export interface KubeRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Content type of the body; PATCH defaults to JSON Patch. */
  contentType?: string;
  accept?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface KubeResponse<T = Json> {
  status: number;
  body: T;
  /** Seconds from a `Retry-After` header (429 and 503 answers), when the server sent one. */
  retryAfterSeconds?: number;
}

// The error type lives apart from the client, so code that only recognises API errors (the CLI's error mapping)
// does not load node:https with it (docs/adr/0703-start-path-bundling.md).
export {
  KubeApiError,
  isNotFound,
  isConflict,
  isAlreadyExists,
  orUndefinedIfNotFound,
  getOrUndefined,
} from './errors.ts';

/** One event of a watch stream; `T` the watched kind (an ERROR event carries a Status instead). */
export interface WatchEvent<T = Json> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface RequestLogger {
  (entry: { method: string; path: string; status: number; durationMs: number }): void;
}

export interface KubeClient {
  readonly server: string;
  /** Sends a request; throws KubeApiError on a non-2xx status, returns the parsed body otherwise. */
  request<T = Json>(req: KubeRequest): Promise<T>;
  /** Like request, but returns status and body whatever the status. */
  raw<T = Json>(req: KubeRequest): Promise<KubeResponse<T>>;
  get<T = Json>(path: string, query?: KubeRequest['query']): Promise<T>;
  create<T = Json>(path: string, body: unknown, query?: KubeRequest['query']): Promise<T>;
  update<T = Json>(path: string, body: unknown): Promise<T>;
  /** JSON Patch (RFC 6902) by default; pass contentType for merge patches. */
  patch<T = Json>(path: string, body: unknown, contentType?: string): Promise<T>;
  delete<T = Json>(path: string, body?: unknown): Promise<T>;
  /**
   * Streams a watch until it ends, the signal aborts, or the server closes it. Each event is passed to onEvent.
   * Resolves when the stream ends; rejects with KubeApiError when the server refuses the watch.
   */
  watch<T = Json>(
    path: string,
    query: KubeRequest['query'],
    onEvent: (e: WatchEvent<T>) => void,
    signal?: AbortSignal,
    accept?: string,
  ): Promise<void>;
  close(): void;
}

export interface KubeClientOptions {
  kubeconfig?: string;
  context?: string;
  /** Server URL override (`--kube-api`). */
  server?: string;
  /** Bearer token and TLS settings, for credentials that do not come from a kubeconfig (the Lanyard config). */
  token?: string;
  caData?: string;
  insecureSkipTlsVerify?: boolean;
  /** Use the in-cluster service account when no kubeconfig is given. */
  inCluster?: boolean;
  /** KUBERNETES_SERVICE_HOST and _PORT, read by src/config; with them in-cluster credentials load without client-node. */
  inClusterService?: { host: string; port: string };
  defaultTimeoutMs?: number;
  onRequest?: RequestLogger;
  userAgent?: string;
  /**
   * The process's only TLS peer is this API server (the webhook, kube-only CLI verbs): the cluster's CA becomes the
   * process's default trust, so Node never builds its bundled root store (docs/adr/0706-trust-only-the-cluster-ca.md).
   * Only with static credentials that name a CA.
   */
  trustOnlyClusterCa?: boolean;
}

/** Loads a kubeconfig (or in-cluster config) and returns a raw JSON client. */
export async function createKubeClient(opts: KubeClientOptions = {}): Promise<KubeClient> {
  const loaded = (await staticConfig(opts)) ?? (await clientNodeConfig(opts));
  if (opts.trustOnlyClusterCa && loaded.ca && !loaded.insecure) trustOnly(loaded.ca);
  const server = (opts.server ?? loaded.server).replace(/\/$/, '');
  return new RawKubeClient(loaded.auth, server, opts);
}

/**
 * The certificates of a PEM bundle as the process's default CA list. Node parses its 140 bundled root certificates
 * the first time a secure context is made, even one given its own `ca` (30-150 ms on these machines); with this list
 * set first, it parses only the cluster's.
 */
function trustOnly(bundle: Buffer): void {
  const certs = bundle.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g);
  if (certs?.length) tls.setDefaultCACertificates(certs);
}

/** Static credentials, read without client-node (docs/adr/0111-webhook-memory-and-start-up.md). */
async function staticConfig(opts: KubeClientOptions): Promise<StaticConfig | undefined> {
  if (opts.token && opts.server)
    return tokenConfig(opts.server, opts.token, opts.caData, opts.insecureSkipTlsVerify);
  if (opts.kubeconfig)
    return opts.context === undefined
      ? staticKubeconfig(opts.kubeconfig)
      : staticKubeconfig(opts.kubeconfig, opts.context);
  if (opts.inCluster && opts.inClusterService)
    return inClusterConfig(opts.inClusterService.host, opts.inClusterService.port);
  return undefined;
}

/** Exec plugins, auth providers, merged KUBECONFIG lists: client-node, loaded only then. */
async function clientNodeConfig(opts: KubeClientOptions): Promise<StaticConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc: KubeConfig = new KubeConfig();
  if (opts.kubeconfig) {
    kc.loadFromFile(opts.kubeconfig);
  } else if (opts.inCluster) {
    kc.loadFromCluster();
  } else {
    kc.loadFromDefault();
  }
  if (opts.context) kc.setCurrentContext(opts.context);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  return { server: cluster.server, auth: kc };
}

class RawKubeClient implements KubeClient {
  private readonly agent: https.Agent;
  private base?: { options: https.RequestOptions; at: number };

  constructor(
    private readonly kc: HttpsAuth,
    readonly server: string,
    private readonly opts: KubeClientOptions,
  ) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 64 });
  }

  /** TLS material and auth headers, refreshed every minute (exec plugins and rotated tokens). */
  private async baseOptions(): Promise<https.RequestOptions> {
    if (this.base && Date.now() - this.base.at < 60_000) return this.base.options;
    const options: https.RequestOptions = { headers: {} };
    await this.kc.applyToHTTPSOptions(options);
    this.base = { options, at: Date.now() };
    return options;
  }

  private url(path: string, query?: KubeRequest['query']): URL {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private async send(
    req: KubeRequest,
    stream?: (res: http.IncomingMessage) => Promise<void>,
  ): Promise<KubeResponse<unknown>> {
    const base = await this.baseOptions();
    const method = req.method ?? 'GET';
    const url = this.url(req.path, req.query);
    const headers: Record<string, string> = { ...(base.headers as Record<string, string>) };
    headers['accept'] = req.accept ?? 'application/json';
    if (this.opts.userAgent) headers['user-agent'] = this.opts.userAgent;
    let payload: Buffer | undefined;
    if (req.body !== undefined) {
      payload = Buffer.from(typeof req.body === 'string' ? req.body : JSON.stringify(req.body));
      headers['content-type'] =
        req.contentType ?? (method === 'PATCH' ? 'application/json-patch+json' : 'application/json');
      headers['content-length'] = String(payload.length);
    }
    const isHttps = url.protocol === 'https:';
    const started = performance.now();
    const timeoutMs = req.timeoutMs ?? this.opts.defaultTimeoutMs;
    return await new Promise<KubeResponse<unknown>>((resolve, reject) => {
      const r = (isHttps ? https : http).request(
        url,
        {
          ...base,
          method,
          headers,
          agent: isHttps ? this.agent : undefined,
          signal: req.signal,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const done = (body: unknown) => {
            this.opts.onRequest?.({
              method,
              path: req.path,
              status,
              durationMs: performance.now() - started,
            });
            resolve({ status, body, retryAfterSeconds: parseRetryAfter(res.headers['retry-after']) });
          };
          if (stream && status >= 200 && status < 300) {
            stream(res).then(() => done(undefined), reject);
            return;
          }
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            try {
              body = text ? JSON.parse(text) : undefined;
            } catch {
              /* not JSON: keep the text */
            }
            done(body);
          });
        },
      );
      if (timeoutMs)
        r.setTimeout(timeoutMs, () => r.destroy(new Error(`request timed out after ${timeoutMs}ms`)));
      r.on('error', reject);
      r.end(payload);
    });
  }

  /**
   * Like client-go, retries 429 Too Many Requests (priority-and-fairness load shedding, or a CRD's storage still
   * initializing): the server did not process the request, so retrying is safe for every verb.
   */
  private async sendRetrying429(req: KubeRequest): Promise<KubeResponse<unknown>> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.send(req);
      if (res.status !== 429 || attempt >= 5 || req.signal?.aborted) return res;
      // The server's Retry-After wins (client-go does the same); without one, a short exponential pause.
      const pauseMs =
        res.retryAfterSeconds !== undefined
          ? Math.min(res.retryAfterSeconds, MAX_RETRY_AFTER_SECONDS) * 1000
          : backoffDelay(attempt + 1, { initialMs: 200, maxMs: 1000, jitter: 0 });
      await sleep(pauseMs);
    }
  }

  async raw<T = Json>(req: KubeRequest): Promise<KubeResponse<T>> {
    return (await this.sendRetrying429(req)) as KubeResponse<T>;
  }

  async request<T = Json>(req: KubeRequest): Promise<T> {
    const res = await this.sendRetrying429(req);
    if (res.status < 200 || res.status >= 300) throw toApiError(req.method ?? 'GET', req.path, res);
    return res.body as T;
  }

  get<T = Json>(path: string, query?: KubeRequest['query']) {
    return this.request<T>({ path, query });
  }
  create<T = Json>(path: string, body: unknown, query?: KubeRequest['query']) {
    return this.request<T>({ method: 'POST', path, body, query });
  }
  update<T = Json>(path: string, body: unknown) {
    return this.request<T>({ method: 'PUT', path, body });
  }
  patch<T = Json>(path: string, body: unknown, contentType?: string) {
    return this.request<T>({ method: 'PATCH', path, body, contentType });
  }
  delete<T = Json>(path: string, body?: unknown) {
    return this.request<T>({ method: 'DELETE', path, body });
  }

  async watch<T = Json>(
    path: string,
    query: KubeRequest['query'],
    onEvent: (e: WatchEvent<T>) => void,
    signal?: AbortSignal,
    accept?: string,
  ): Promise<void> {
    const res = await this.send(
      { path, query: { ...query, watch: true }, signal, accept },
      async (stream) => {
        let buffered = '';
        // A multi-byte character can be split across network chunks: the decoder keeps the partial bytes.
        const decoder = new StringDecoder('utf8');
        try {
          for await (const chunk of stream) {
            buffered += decoder.write(chunk as Buffer);
            let nl: number;
            while ((nl = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, nl).trim();
              buffered = buffered.slice(nl + 1);
              if (line) onEvent(JSON.parse(line) as WatchEvent<T>);
            }
          }
        } catch (e) {
          if (signal?.aborted) return;
          throw e;
        }
      },
    ).catch((e: unknown) => {
      if (signal?.aborted) return { status: 200, body: undefined };
      throw e;
    });
    if (res.status < 200 || res.status >= 300) throw toApiError('GET', path, res);
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Longest server-requested pause honoured before a retry; a larger Retry-After is capped, not obeyed. */
const MAX_RETRY_AFTER_SECONDS = 10;

/** `Retry-After` as seconds: delta-seconds, or an HTTP date in the future. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

function toApiError(method: string, path: string, res: KubeResponse<unknown>): KubeApiError {
  const b = res.body as { reason?: string; message?: string } | string | undefined;
  const reason = (typeof b === 'object' && b?.reason) || String(res.status);
  const message = (typeof b === 'object' && b?.message) || (typeof b === 'string' ? b.slice(0, 500) : '');
  return new KubeApiError(res.status, method, path, reason, message, res.body);
}

/** Path helpers for namespaced and cluster-scoped resources. */
export function resourcePath(p: {
  group?: string;
  version: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}): string {
  const prefix = p.group ? `/apis/${p.group}/${p.version}` : `/api/${p.version}`;
  const ns = p.namespace ? `/namespaces/${encodeURIComponent(p.namespace)}` : '';
  const name = p.name ? `/${encodeURIComponent(p.name)}` : '';
  const sub = p.subresource ? `/${p.subresource}` : '';
  return `${prefix}${ns}/${p.plural}${name}${sub}`;
}
