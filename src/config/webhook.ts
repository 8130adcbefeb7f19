// `lanyard webhook` flags (docs/migrate-from-pod-identity-webhook.md#flags): the reference's names and defaults, pflag syntax, Go durations.
// The only place the webhook reads the environment (POD_NAMESPACE) and the in-cluster namespace file.
import { readFileSync } from 'node:fs';
import { getCiphers } from 'node:tls';
import {
  boolValue,
  FlagError,
  listValue,
  oneOfValue,
  parseFlags,
  renderFlagHelp,
  type Flag,
  type Flags,
} from './flags.ts';
import type { InjectionFlags } from '../identity/resolve.ts';
import { parseDuration } from '../core/duration.ts';

export const TLS_MODES = ['files', 'self-managed'] as const;
export type TlsMode = (typeof TLS_MODES)[number];
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** The injection flags (InjectionFlags, by the same names) and the server, TLS and cache flags. */
export interface WebhookConfig extends InjectionFlags {
  port: number;
  metricsPort: number;
  kubeconfig: string;
  kubeApi: string;
  tlsCert: string;
  tlsKey: string;
  /** Node's minVersion names: TLSv1 … TLSv1.3. */
  tlsMinVersion: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list mapped from the Go/IANA names given ('' = Node defaults). */
  tlsCipherSuites: string;
  namespace: string;
  watchConfigMap: boolean;
  composeRoleArn: boolean;
  watchContainerCredentialsConfig: string;
  serviceAccountLookupGracePeriodMs: number;
  resyncPeriodMs: number;
  enableDebuggingHandlers: boolean;
  version: boolean;
  help: boolean;
  serviceName: string;
  tlsSecret: string;
  tlsMode: TlsMode;
  tlsExtraSans: string[];
  selfManagedCertValidityMs: number;
  webhookConfigName: string;
  identityGate: boolean;
  identityGateAllowOptOut: boolean;
  clusterName: string;
  observeAckAssociations: 'auto' | 'true' | 'false';
  configPollIntervalMs: number;
  maxRequestBytes: number;
  /** Open HTTPS connections beyond this are closed at once. */
  maxConnections: number;
  /** Handshake, then each request's headers and body, must arrive within this. */
  readTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  idleTimeoutMs: number;
  shutdownDelayMs: number;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  /** The webhook's own namespace (self-managed Secret): POD_NAMESPACE, else the in-cluster file, else --namespace. */
  podNamespace: string;
  /** KUBERNETES_SERVICE_HOST and _PORT when running in a Pod. */
  inClusterService?: { host: string; port: string };
  /** Startup warnings to log once the logger exists (clamps, ignored klog flags, deprecations). */
  warnings: string[];
}

export const WEBHOOK_DEFAULTS: Readonly<WebhookConfig> = Object.freeze({
  port: 443,
  metricsPort: 9999,
  kubeconfig: '',
  kubeApi: '',
  tlsCert: '/etc/webhook/certs/tls.crt',
  tlsKey: '/etc/webhook/certs/tls.key',
  tlsMinVersion: 'TLSv1.2',
  tlsCipherSuites: '',
  namespace: 'eks',
  annotationPrefix: 'eks.amazonaws.com',
  tokenAudience: 'sts.amazonaws.com',
  tokenMountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
  tokenExpiration: 86400,
  awsDefaultRegion: '',
  stsRegionalEndpoint: false,
  watchConfigMap: false,
  composeRoleArn: false,
  watchContainerCredentialsConfig: '',
  containerCredentialsAudience: 'pods.eks.amazonaws.com',
  containerCredentialsTokenMountPath: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount',
  containerCredentialsTokenVolumeName: 'eks-pod-identity-token',
  containerCredentialsTokenPath: 'eks-pod-identity-token',
  containerCredentialsFullUri: 'http://169.254.170.23/v1/credentials',
  serviceAccountLookupGracePeriodMs: 2000,
  resyncPeriodMs: 60_000,
  enableDebuggingHandlers: false,
  version: false,
  help: false,
  serviceName: 'pod-identity-webhook',
  tlsSecret: 'pod-identity-webhook',
  tlsMode: 'files',
  tlsExtraSans: [],
  selfManagedCertValidityMs: 2160 * 3600_000,
  webhookConfigName: '',
  identityGate: false,
  identityGateAllowOptOut: true,
  clusterName: '',
  observeAckAssociations: 'auto',
  configPollIntervalMs: 5000,
  // The API server accepts objects up to 3 MiB; an UPDATE review carries object and oldObject: 2 × 3 MiB + 1 MiB.
  maxRequestBytes: 7_340_032,
  maxConnections: 1000,
  readTimeoutMs: 10_000,
  // Above the API server's 90 s idle timeout, so the webhook never closes a connection the API server is about to reuse.
  idleTimeoutMs: 120_000,
  shutdownDelayMs: 5000,
  shutdownTimeoutMs: 20_000,
  logLevel: 'info',
  podNamespace: '',
  warnings: [],
}) as WebhookConfig;

export { FlagError };

const TLS_VERSIONS: Record<string, WebhookConfig['tlsMinVersion']> = {
  '1.0': 'TLSv1',
  '1.1': 'TLSv1.1',
  '1.2': 'TLSv1.2',
  '1.3': 'TLSv1.3',
  VersionTLS10: 'TLSv1',
  VersionTLS11: 'TLSv1.1',
  VersionTLS12: 'TLSv1.2',
  VersionTLS13: 'TLSv1.3',
};

// Go (IANA) TLS 1.0-1.2 suite names → OpenSSL names. TLS 1.3 suites are fixed in both stacks.
const CIPHERS: Record<string, string> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_RSA_WITH_AES_128_CBC_SHA256: 'AES128-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256: 'ECDHE-ECDSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256: 'ECDHE-RSA-AES128-SHA256',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};
const TLS13_SUITES = new Set([
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
]);

/** Maps `--tls-cipher-suites` to an OpenSSL list; `available` is the set Node's OpenSSL supports (lowercase). */
export function mapCipherSuites(value: string, available: ReadonlySet<string>): string {
  if (value.trim() === '') return '';
  const out: string[] = [];
  for (const raw of value.split(',')) {
    const name = raw.trim();
    if (!name) continue;
    if (TLS13_SUITES.has(name)) continue;
    const ossl = CIPHERS[name];
    if (!ossl)
      throw new FlagError(`invalid argument for --tls-cipher-suites: unknown cipher suite "${name}"`);
    if (!available.has(ossl.toLowerCase()))
      throw new FlagError(
        `invalid argument for --tls-cipher-suites: cipher suite "${name}" is not available in this TLS library`,
      );
    out.push(ossl);
  }
  return out.join(':');
}

/** The config being built, with what only the parse itself needs. */
type Draft = WebhookConfig & { inCluster?: boolean };
type F = Flag<Draft>;

const LOG_LEVELS: LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

function intValue(flag: string, v: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^[+-]?\d+$/.test(v))
    throw new FlagError(`invalid argument "${v}" for "--${flag}": must be an integer`);
  const n = Number(v);
  if (n < min || n > max)
    throw new FlagError(`invalid argument "${v}" for "--${flag}": must be between ${min} and ${max}`);
  return n;
}

export { boolValue };

function durationValue(flag: string, v: string): number {
  const d = parseDuration(v);
  if (d === undefined || d < 0)
    throw new FlagError(
      `invalid argument "${v}" for "--${flag}": must be a Go duration such as 500ms, 2s or 1m30s`,
    );
  return d;
}

const D = WEBHOOK_DEFAULTS;
const put = (c: Draft, k: keyof WebhookConfig, v: unknown) =>
  ((c as unknown as Record<string, unknown>)[k] = v);
const str = (k: keyof WebhookConfig, usage: string, def = `"${String(D[k])}"`): F => ({
  type: 'string',
  usage,
  default: def,
  set: (c, v) => put(c, k, v),
});
const bool = (k: keyof WebhookConfig, usage: string): F => ({
  type: 'bool',
  usage,
  default: String(D[k]),
  set: (c, v, f) => put(c, k, boolValue(f, v)),
});
const dur = (k: keyof WebhookConfig, usage: string, def: string): F => ({
  type: 'duration',
  usage,
  default: def,
  set: (c, v, f) => put(c, k, durationValue(f, v)),
});
const port = (k: 'port' | 'metricsPort', usage: string): F => ({
  type: 'int',
  usage,
  default: String(D[k]),
  set: (c, v, f) => (c[k] = intValue(f, v, 0, 65535)),
});
const klog = (type: 'bool' | 'string'): F => ({ type, usage: '', default: '', singleDash: true });

/** Every `lanyard webhook` flag: the reference's names and defaults (docs/webhook.md), then Lanyard's own. */
export const WEBHOOK_FLAGS: Flags<Draft> = {
  port: port('port', 'HTTPS port for /mutate, /healthz, /readyz'),
  'metrics-port': port('metricsPort', 'HTTP port for /metrics, /healthz, /readyz'),
  kubeconfig: str('kubeconfig', 'kubeconfig path; empty means in-cluster'),
  'kube-api': str('kubeApi', 'API server URL override'),
  'tls-cert': str('tlsCert', 'TLS certificate file'),
  'tls-key': str('tlsKey', 'TLS key file'),
  'tls-min-version': {
    type: 'string',
    usage: 'minimum TLS version, 1.0-1.3 or VersionTLS10-13',
    default: '"1.2"',
    set: (c, v, f) => {
      const t = TLS_VERSIONS[v];
      if (!t)
        throw new FlagError(
          `invalid argument "${v}" for "--${f}": must be 1.0-1.3 or VersionTLS10-VersionTLS13`,
        );
      c.tlsMinVersion = t;
    },
  },
  'tls-cipher-suites': str(
    'tlsCipherSuites',
    'comma list of IANA/Go cipher suite names; empty: Node defaults',
  ),
  namespace: str('namespace', 'namespace of the kOps ConfigMap'),
  'annotation-prefix': str('annotationPrefix', 'prefix of the ServiceAccount and Pod annotations'),
  'token-audience': str('tokenAudience', 'default IRSA token audience'),
  'token-mount-path': str('tokenMountPath', 'IRSA token mount path'),
  'token-expiration': {
    type: 'int',
    usage: 'token expiration in seconds, at least 600',
    default: String(D.tokenExpiration),
    set: (c, v, f) => (c.tokenExpiration = intValue(f, v, Number.MIN_SAFE_INTEGER)),
  },
  'aws-default-region': str('awsDefaultRegion', 'region injected into mutated containers'),
  'sts-regional-endpoint': bool('stsRegionalEndpoint', 'default for AWS_STS_REGIONAL_ENDPOINTS=regional'),
  'watch-config-map': bool('watchConfigMap', 'read the kOps ConfigMap pod-identity-webhook in --namespace'),
  'compose-role-arn': bool('composeRoleArn', 'compose role ARNs without "arn:" from instance metadata'),
  'watch-container-credentials-config': str(
    'watchContainerCredentialsConfig',
    'path of the container-credentials identities file',
  ),
  'container-credentials-audience': str('containerCredentialsAudience', 'EKS Pod Identity token audience'),
  'container-credentials-token-mount-path': str(
    'containerCredentialsTokenMountPath',
    'EKS Pod Identity token mount path',
  ),
  'container-credentials-token-volume-name': str(
    'containerCredentialsTokenVolumeName',
    'EKS Pod Identity token volume name',
  ),
  'container-credentials-token-path': str(
    'containerCredentialsTokenPath',
    'EKS Pod Identity token file name in the volume',
  ),
  'container-credentials-full-uri': str(
    'containerCredentialsFullUri',
    'AWS_CONTAINER_CREDENTIALS_FULL_URI injected into containers',
  ),
  'service-account-lookup-grace-period': dur(
    'serviceAccountLookupGracePeriodMs',
    'longest wait for a ServiceAccount missing from the cache',
    '2s',
  ),
  'resync-period': dur('resyncPeriodMs', 'lifetime of an unconfirmed live-fetched ServiceAccount', '1m0s'),
  'enable-debugging-handlers': bool('enableDebuggingHandlers', 'serve /debug/alpha/* routes'),
  version: {
    type: 'bool',
    usage: 'print the version and exit',
    default: '',
    set: (c, v, f) => (c.version = boolValue(f, v)),
  },
  help: {
    type: 'bool',
    usage: 'print this help and exit',
    default: '',
    shorthand: 'h',
    set: (c, v, f) => (c.help = boolValue(f, v)),
  },
  'in-cluster': {
    type: 'bool',
    usage: 'deprecated: true selects --tls-mode=self-managed',
    default: 'false',
    set: (c, v, f) => {
      if (boolValue(f, v)) c.inCluster = true;
    },
  },
  'service-name': str('serviceName', 'Service named in the self-managed certificate'),
  'tls-secret': str('tlsSecret', 'Secret holding the self-managed certificate'),
  'tls-mode': {
    type: 'string',
    usage: 'files or self-managed',
    default: `"${D.tlsMode}"`,
    set: (c, v, f) => (c.tlsMode = oneOfValue(f, v, TLS_MODES)),
  },
  'tls-extra-sans': {
    type: 'strings',
    usage: 'extra DNS names or IPs for the self-managed certificate, comma-separated',
    default: '""',
    set: (c, v) => (c.tlsExtraSans = listValue(v)),
  },
  'self-managed-cert-validity': dur(
    'selfManagedCertValidityMs',
    'self-managed serving certificate lifetime',
    '2160h0m0s',
  ),
  'webhook-config-name': str(
    'webhookConfigName',
    'MutatingWebhookConfiguration whose caBundle is kept current',
  ),
  'identity-gate': bool('identityGate', 'add the lanyard.dev/identity scheduling gate'),
  'identity-gate-allow-opt-out': bool('identityGateAllowOptOut', 'honour lanyard.dev/verify: "false"'),
  'cluster-name': str('clusterName', 'EKS cluster name for associations'),
  'observe-ack-associations': {
    type: 'string',
    usage: 'auto, true or false',
    default: `"${D.observeAckAssociations}"`,
    set: (c, v, f) => (c.observeAckAssociations = oneOfValue(f, v, ['auto', 'true', 'false'] as const)),
  },
  'config-poll-interval': dur(
    'configPollIntervalMs',
    'poll period for the identities file and TLS files',
    '5s',
  ),
  'max-request-bytes': {
    type: 'int',
    usage: "request body limit: 2 × the API server's 3 MiB object limit + 1 MiB",
    default: String(D.maxRequestBytes),
    set: (c, v, f) => (c.maxRequestBytes = intValue(f, v, 1)),
  },
  'max-connections': {
    type: 'int',
    usage: 'open HTTPS connections beyond this are closed at once',
    default: String(D.maxConnections),
    set: (c, v, f) => (c.maxConnections = intValue(f, v, 1)),
  },
  'read-timeout': {
    type: 'duration',
    usage: "TLS handshake, then each request's headers and body, must arrive within this",
    default: '10s',
    set: (c, v, f) => {
      const ms = durationValue(f, v);
      if (ms < 100) throw new FlagError(`invalid argument "${v}" for "--${f}": must be at least 100ms`);
      c.readTimeoutMs = ms;
    },
  },
  'idle-timeout': dur('idleTimeoutMs', 'idle keep-alive connections are closed after this', '2m0s'),
  'shutdown-delay': dur('shutdownDelayMs', 'time /readyz fails before the server drains', '5s'),
  'shutdown-timeout': dur('shutdownTimeoutMs', 'longest drain', '20s'),
  'log-level': {
    type: 'string',
    usage: 'error, warn, info, debug or trace',
    default: `"${D.logLevel}"`,
    set: (c, v, f) => {
      if (!LOG_LEVELS.includes(v as LogLevel))
        throw new FlagError(`invalid argument "${v}" for "--${f}": must be one of ${LOG_LEVELS.join(', ')}`);
      c.logLevel = v as LogLevel;
    },
  },
  // klog flags: accepted so old manifests run; only -v means something.
  v: klogVerbosity<Draft>(),
  logtostderr: klog('bool'),
  alsologtostderr: klog('bool'),
  log_dir: klog('string'),
  log_file: klog('string'),
  log_file_max_size: klog('string'),
  skip_headers: klog('bool'),
  skip_log_headers: klog('bool'),
  stderrthreshold: klog('string'),
  vmodule: klog('string'),
  log_backtrace_at: klog('string'),
  add_dir_header: klog('bool'),
  one_output: klog('bool'),
};

/** klog's `-v`: 4 and above is debug, 6 and above trace; shared by every long-running command. */
export function klogVerbosity<C extends { logLevel: LogLevel }>(): Flag<C> {
  return {
    type: 'int',
    usage: 'klog verbosity: 4 means debug, 6 trace',
    default: '0',
    shorthand: 'v',
    singleDash: true,
    set: (c, v, f) => {
      const n = intValue(f, v);
      if (n >= 6) c.logLevel = 'trace';
      else if (n >= 4) c.logLevel = 'debug';
    },
  };
}

/** The `Flags:` block of `lanyard webhook --help`. */
export function webhookFlagHelp(): string[] {
  return renderFlagHelp(WEBHOOK_FLAGS);
}

export const WEBHOOK_FLAG_NAMES = Object.keys(WEBHOOK_FLAGS);

export interface ParseEnv {
  /** POD_NAMESPACE and similar; defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Reads the in-cluster namespace file; defaults to the real file. */
  readNamespaceFile?: () => string | undefined;
}

function defaultNamespaceFile(): string | undefined {
  try {
    return (
      readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/** Parses pflag-style arguments into a validated, frozen config. Throws FlagError naming the flag. */
export function parseWebhookFlags(argv: string[], penv: ParseEnv = {}): WebhookConfig {
  const c: Draft = { ...WEBHOOK_DEFAULTS, tlsExtraSans: [], warnings: [] };
  const parsed = parseFlags(WEBHOOK_FLAGS, argv, c, { command: 'webhook' });
  c.tlsCipherSuites = mapCipherSuites(c.tlsCipherSuites, new Set(getCiphers()));
  if (c.tokenExpiration < 600) {
    c.warnings.push(`--token-expiration=${c.tokenExpiration} is below 600 seconds; using 600`);
    c.tokenExpiration = 600;
  }
  if (c.inCluster && !parsed.given.has('tls-mode')) {
    c.tlsMode = 'self-managed';
    c.warnings.push(
      '--in-cluster=true is deprecated (the reference CSR mode is not reproduced); using --tls-mode=self-managed',
    );
  }
  if (parsed.ignored.length)
    c.warnings.push(`klog flags ignored (logs are JSON on stdout): ${parsed.ignored.join(', ')}`);
  const env = penv.env ?? process.env;
  c.podNamespace = env.POD_NAMESPACE || (penv.readNamespaceFile ?? defaultNamespaceFile)() || c.namespace;
  if (env.KUBERNETES_SERVICE_HOST)
    c.inClusterService = { host: env.KUBERNETES_SERVICE_HOST, port: env.KUBERNETES_SERVICE_PORT || '443' };
  delete c.inCluster;
  return Object.freeze(c as WebhookConfig);
}
