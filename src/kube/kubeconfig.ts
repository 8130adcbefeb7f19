// Static credentials without @kubernetes/client-node, whose import alone costs about 75 MB of resident memory and a
// second of start-up (docs/adr/0111-webhook-memory-and-start-up.md): a kubeconfig whose user has a token, a token
// file or a client certificate, a bearer token given directly, and the in-cluster ServiceAccount. Anything else
// (exec plugins, auth providers, proxies, basic auth) is left to client-node: these functions return undefined then.
import fs from 'node:fs';
import type https from 'node:https';
import path from 'node:path';

/** What the raw client needs from a loaded configuration; client-node's KubeConfig has the same method. */
export interface HttpsAuth {
  /** Sets TLS material and the Authorization header; called again every minute (rotated tokens). */
  applyToHTTPSOptions(options: https.RequestOptions): Promise<void>;
}

export interface StaticConfig {
  server: string;
  auth: HttpsAuth;
  /** The CA bundle the server certificate is checked against, when the configuration gives one. */
  ca?: Buffer;
  /** `insecure-skip-tls-verify`: no certificate is checked at all. */
  insecure?: boolean;
}

interface Material {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
  servername?: string;
  token?: string;
  tokenFile?: string;
}

function authOf(m: Material): HttpsAuth {
  return {
    async applyToHTTPSOptions(o) {
      if (m.ca) o.ca = m.ca;
      if (m.cert) o.cert = m.cert;
      if (m.key) o.key = m.key;
      if (m.servername) o.servername = m.servername;
      o.rejectUnauthorized = !m.insecure;
      // A token file is re-read at each call, so a rotated projected token is picked up.
      const token = m.tokenFile ? (await fs.promises.readFile(m.tokenFile, 'utf8')).trim() : m.token;
      if (token) o.headers = { ...(o.headers as Record<string, string>), authorization: `Bearer ${token}` };
    },
  };
}

/** A server URL and bearer token given directly (the Lanyard CLI configuration). */
export function tokenConfig(server: string, token: string, caData?: string, insecure = false): StaticConfig {
  const ca = caData ? Buffer.from(caData, 'base64') : undefined;
  return { server, auth: authOf({ token, ca, insecure }), ca, insecure };
}

export const IN_CLUSTER_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The Pod's own ServiceAccount: token and CA from the mounted files, the API server from KUBERNETES_SERVICE_*. */
export function inClusterConfig(host: string, port: string, dir = IN_CLUSTER_DIR): StaticConfig {
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const ca = fs.readFileSync(path.join(dir, 'ca.crt'));
  return { server, auth: authOf({ ca, tokenFile: path.join(dir, 'token') }), ca };
}

type Named<T> = Array<{ name?: string } & T> | undefined;

/**
 * Loads one kubeconfig file, or returns undefined when its current user needs more than static credentials.
 * Relative file paths are resolved against the kubeconfig's directory, as kubectl does.
 */
export async function staticKubeconfig(file: string, context?: string): Promise<StaticConfig | undefined> {
  // js-yaml, not the `yaml` package the documents use: it loads in a third of the time on the CLI's start path
  // (docs/adr/0704); only here, so in a Pod (in-cluster credentials) it is never loaded.
  const text = fs.readFileSync(file, 'utf8');
  const doc = (await import('js-yaml')).load(text) as {
    'current-context'?: string;
    contexts?: Named<{ context?: { cluster?: string; user?: string } }>;
    clusters?: Named<{ cluster?: Record<string, unknown> }>;
    users?: Named<{ user?: Record<string, unknown> }>;
  } | null;
  const ctxName = context ?? doc?.['current-context'];
  const ctx = doc?.contexts?.find((c) => c.name === ctxName)?.context;
  const cluster = doc?.clusters?.find((c) => c.name === ctx?.cluster)?.cluster;
  const user = (doc?.users?.find((u) => u.name === ctx?.user)?.user ?? {}) as Record<string, unknown>;
  if (!ctx || !cluster || typeof cluster.server !== 'string') return undefined;
  if (cluster['proxy-url'] !== undefined) return undefined;
  const supported = new Set([
    'token',
    'tokenFile',
    'client-certificate',
    'client-certificate-data',
    'client-key',
    'client-key-data',
  ]);
  if (Object.keys(user).some((k) => !supported.has(k))) return undefined;
  const dir = path.dirname(file);
  const read = (dataKey: string, fileKey: string, from: Record<string, unknown>): Buffer | undefined => {
    const data = from[dataKey];
    if (typeof data === 'string') return Buffer.from(data, 'base64');
    const f = from[fileKey];
    return typeof f === 'string' ? fs.readFileSync(path.resolve(dir, f)) : undefined;
  };
  const ca = read('certificate-authority-data', 'certificate-authority', cluster);
  const insecure = cluster['insecure-skip-tls-verify'] === true;
  return {
    server: cluster.server.replace(/\/$/, ''),
    ca,
    insecure,
    auth: authOf({
      ca,
      cert: read('client-certificate-data', 'client-certificate', user),
      key: read('client-key-data', 'client-key', user),
      insecure,
      servername: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
      token: typeof user.token === 'string' ? user.token : undefined,
      tokenFile: typeof user.tokenFile === 'string' ? path.resolve(dir, user.tokenFile) : undefined,
    }),
  };
}
