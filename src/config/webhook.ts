// `lanyard webhook` flags (webhook.md §1): the reference's names and defaults, pflag syntax, Go durations.
// The only place the webhook reads the environment (POD_NAMESPACE) and the in-cluster namespace file.
import { readFileSync } from 'node:fs';
import { getCiphers } from 'node:tls';
import { parseGoBool } from '../identity/annotations.ts';
import { parseDuration } from '../core/duration.ts';

export type TlsMode = 'files' | 'self-managed';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface WebhookConfig {
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
  annotationPrefix: string;
  tokenAudience: string;
  tokenMountPath: string;
  /** Seconds, already raised to 600. */
  tokenExpiration: number;
  awsDefaultRegion: string;
  stsRegionalEndpoint: boolean;
  watchConfigMap: boolean;
  composeRoleArn: boolean;
  watchContainerCredentialsConfig: string;
  containerCredentialsAudience: string;
  containerCredentialsTokenMountPath: string;
  containerCredentialsTokenVolumeName: string;
  containerCredentialsTokenPath: string;
  containerCredentialsFullUri: string;
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

/** A bad command line: exit code 2 with this one line (webhook.md §1). */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

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
const TLS13_SUITES = new Set(['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256']);

/** Maps `--tls-cipher-suites` to an OpenSSL list; `available` is the set Node's OpenSSL supports (lowercase). */
export function mapCipherSuites(value: string, available: ReadonlySet<string>): string {
  if (value.trim() === '') return '';
  const out: string[] = [];
  for (const raw of value.split(',')) {
    const name = raw.trim();
    if (!name) continue;
    if (TLS13_SUITES.has(name)) continue;
    const ossl = CIPHERS[name];
    if (!ossl) throw new FlagError(`invalid argument for --tls-cipher-suites: unknown cipher suite "${name}"`);
    if (!available.has(ossl.toLowerCase()))
      throw new FlagError(`invalid argument for --tls-cipher-suites: cipher suite "${name}" is not available in this TLS library`);
    out.push(ossl);
  }
  return out.join(':');
}

type Kind = 'string' | 'bool' | 'int' | 'duration' | 'klog' | 'klogBool';
/** Which flags were given explicitly, for rules that depend on it (`--in-cluster` without `--tls-mode`). */
interface ParseState {
  inCluster: boolean;
  tlsMode: boolean;
}

interface FlagDef {
  kind: Kind;
  set?: (c: WebhookConfig, v: string, flag: string, st: ParseState) => void;
}

const LOG_LEVELS: LogLevel[] = ['error', 'warn', 'info', 'debug', 'trace'];

function intValue(flag: string, v: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^[+-]?\d+$/.test(v)) throw new FlagError(`invalid argument "${v}" for "--${flag}": must be an integer`);
  const n = Number(v);
  if (n < min || n > max) throw new FlagError(`invalid argument "${v}" for "--${flag}": must be between ${min} and ${max}`);
  return n;
}

export function boolValue(flag: string, v: string): boolean {
  const b = parseGoBool(v);
  if (b === undefined) throw new FlagError(`invalid argument "${v}" for "--${flag}": must be a boolean`);
  return b;
}

function durationValue(flag: string, v: string): number {
  const d = parseDuration(v);
  if (d === undefined || d < 0) throw new FlagError(`invalid argument "${v}" for "--${flag}": must be a Go duration such as 500ms, 2s or 1m30s`);
  return d;
}

const str = (k: keyof WebhookConfig) => ({ kind: 'string' as const, set: (c: WebhookConfig, v: string) => ((c as unknown as Record<string, unknown>)[k] = v) });
const bool = (k: keyof WebhookConfig) => ({ kind: 'bool' as const, set: (c: WebhookConfig, v: string, f: string) => ((c as unknown as Record<string, unknown>)[k] = boolValue(f, v)) });
const dur = (k: keyof WebhookConfig) => ({ kind: 'duration' as const, set: (c: WebhookConfig, v: string, f: string) => ((c as unknown as Record<string, unknown>)[k] = durationValue(f, v)) });
const port = (k: 'port' | 'metricsPort') => ({ kind: 'int' as const, set: (c: WebhookConfig, v: string, f: string) => (c[k] = intValue(f, v, 0, 65535)) });

const FLAGS: Record<string, FlagDef> = {
  port: port('port'),
  'metrics-port': port('metricsPort'),
  kubeconfig: str('kubeconfig'),
  'kube-api': str('kubeApi'),
  'tls-cert': str('tlsCert'),
  'tls-key': str('tlsKey'),
  'tls-min-version': {
    kind: 'string',
    set: (c, v, f) => {
      const t = TLS_VERSIONS[v];
      if (!t) throw new FlagError(`invalid argument "${v}" for "--${f}": must be 1.0-1.3 or VersionTLS10-VersionTLS13`);
      c.tlsMinVersion = t;
    },
  },
  'tls-cipher-suites': str('tlsCipherSuites'),
  namespace: str('namespace'),
  'annotation-prefix': str('annotationPrefix'),
  'token-audience': str('tokenAudience'),
  'token-mount-path': str('tokenMountPath'),
  'token-expiration': { kind: 'int', set: (c, v, f) => (c.tokenExpiration = intValue(f, v, Number.MIN_SAFE_INTEGER)) },
  'aws-default-region': str('awsDefaultRegion'),
  'sts-regional-endpoint': bool('stsRegionalEndpoint'),
  'watch-config-map': bool('watchConfigMap'),
  'compose-role-arn': bool('composeRoleArn'),
  'watch-container-credentials-config': str('watchContainerCredentialsConfig'),
  'container-credentials-audience': str('containerCredentialsAudience'),
  'container-credentials-token-mount-path': str('containerCredentialsTokenMountPath'),
  'container-credentials-token-volume-name': str('containerCredentialsTokenVolumeName'),
  'container-credentials-token-path': str('containerCredentialsTokenPath'),
  'container-credentials-full-uri': str('containerCredentialsFullUri'),
  'service-account-lookup-grace-period': dur('serviceAccountLookupGracePeriodMs'),
  'resync-period': dur('resyncPeriodMs'),
  'enable-debugging-handlers': bool('enableDebuggingHandlers'),
  version: bool('version'),
  help: bool('help'),
  'in-cluster': {
    kind: 'bool',
    set: (_c, v, f, st) => {
      if (boolValue(f, v)) st.inCluster = true;
    },
  },
  'service-name': str('serviceName'),
  'tls-secret': str('tlsSecret'),
  'tls-mode': {
    kind: 'string',
    set: (c, v, f, st) => {
      if (v !== 'files' && v !== 'self-managed') throw new FlagError(`invalid argument "${v}" for "--${f}": must be files or self-managed`);
      c.tlsMode = v;
      st.tlsMode = true;
    },
  },
  'tls-extra-sans': {
    kind: 'string',
    set: (c, v) => (c.tlsExtraSans = v.split(',').map((s) => s.trim()).filter(Boolean)),
  },
  'self-managed-cert-validity': dur('selfManagedCertValidityMs'),
  'webhook-config-name': str('webhookConfigName'),
  'identity-gate': bool('identityGate'),
  'identity-gate-allow-opt-out': bool('identityGateAllowOptOut'),
  'cluster-name': str('clusterName'),
  'observe-ack-associations': {
    kind: 'string',
    set: (c, v, f) => {
      if (v !== 'auto' && v !== 'true' && v !== 'false') throw new FlagError(`invalid argument "${v}" for "--${f}": must be auto, true or false`);
      c.observeAckAssociations = v;
    },
  },
  'config-poll-interval': dur('configPollIntervalMs'),
  'max-request-bytes': { kind: 'int', set: (c, v, f) => (c.maxRequestBytes = intValue(f, v, 1)) },
  'max-connections': { kind: 'int', set: (c, v, f) => (c.maxConnections = intValue(f, v, 1)) },
  'read-timeout': {
    kind: 'duration',
    set: (c, v, f) => {
      const ms = durationValue(f, v);
      if (ms < 100) throw new FlagError(`invalid argument "${v}" for "--${f}": must be at least 100ms`);
      c.readTimeoutMs = ms;
    },
  },
  'idle-timeout': dur('idleTimeoutMs'),
  'shutdown-delay': dur('shutdownDelayMs'),
  'shutdown-timeout': dur('shutdownTimeoutMs'),
  'log-level': {
    kind: 'string',
    set: (c, v, f) => {
      if (!LOG_LEVELS.includes(v as LogLevel)) throw new FlagError(`invalid argument "${v}" for "--${f}": must be one of ${LOG_LEVELS.join(', ')}`);
      c.logLevel = v as LogLevel;
    },
  },
  // klog flags: accepted so old manifests run; only -v means something.
  v: {
    kind: 'klog',
    set: (c, v, f) => {
      const n = intValue(f, v);
      if (n >= 6) c.logLevel = 'trace';
      else if (n >= 4) c.logLevel = 'debug';
    },
  },
  logtostderr: { kind: 'klogBool' },
  alsologtostderr: { kind: 'klogBool' },
  log_dir: { kind: 'klog' },
  log_file: { kind: 'klog' },
  log_file_max_size: { kind: 'klog' },
  skip_headers: { kind: 'klogBool' },
  skip_log_headers: { kind: 'klogBool' },
  stderrthreshold: { kind: 'klog' },
  vmodule: { kind: 'klog' },
  log_backtrace_at: { kind: 'klog' },
  add_dir_header: { kind: 'klogBool' },
  one_output: { kind: 'klogBool' },
};

export const WEBHOOK_FLAG_NAMES = Object.keys(FLAGS);

export interface ParseEnv {
  /** POD_NAMESPACE and similar; defaults to process.env. */
  env?: Record<string, string | undefined>;
  /** Reads the in-cluster namespace file; defaults to the real file. */
  readNamespaceFile?: () => string | undefined;
}

function defaultNamespaceFile(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Parses pflag-style arguments into a validated, frozen config. Throws FlagError naming the flag. */
export function parseWebhookFlags(argv: string[], penv: ParseEnv = {}): WebhookConfig {
  const c: WebhookConfig = { ...WEBHOOK_DEFAULTS, tlsExtraSans: [], warnings: [] };
  const st: ParseState = { inCluster: false, tlsMode: false };
  const ignoredKlog: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (!arg.startsWith('-') || arg === '-') throw new FlagError(`unexpected argument "${arg}": lanyard webhook takes flags only`);
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    let name = eq >= 0 ? body.slice(0, eq) : body;
    let value: string | undefined = eq >= 0 ? body.slice(eq + 1) : undefined;
    // pflag shorthand: -v4 is -v=4; -h is --help.
    if (!arg.startsWith('--')) {
      if (name === 'h') name = 'help';
      else if (/^v\d+$/.test(name) && value === undefined) {
        value = name.slice(1);
        name = 'v';
      } else if (name !== 'v' && !(FLAGS[name]?.kind === 'klog' || FLAGS[name]?.kind === 'klogBool'))
        throw new FlagError(`unknown shorthand flag: "${arg}"`);
    }
    const def = FLAGS[name];
    if (!def) throw new FlagError(`unknown flag: --${name}`);
    const isBool = def.kind === 'bool' || def.kind === 'klogBool';
    if (value === undefined) {
      if (isBool) value = 'true';
      else {
        const next = argv[i + 1];
        if (next === undefined) throw new FlagError(`flag needs an argument: --${name}`);
        value = next;
        i++;
      }
    }
    if (def.kind === 'klogBool') {
      boolValue(name, value);
      ignoredKlog.push(name);
    } else if (def.kind === 'klog' && !def.set) ignoredKlog.push(name);
    else def.set!(c, value, name, st);
  }
  c.tlsCipherSuites = mapCipherSuites(c.tlsCipherSuites, new Set(getCiphers()));
  if (c.tokenExpiration < 600) {
    c.warnings.push(`--token-expiration=${c.tokenExpiration} is below 600 seconds; using 600`);
    c.tokenExpiration = 600;
  }
  if (st.inCluster && !st.tlsMode) {
    c.tlsMode = 'self-managed';
    c.warnings.push('--in-cluster=true is deprecated (the reference CSR mode is not reproduced); using --tls-mode=self-managed');
  }
  if (ignoredKlog.length) c.warnings.push(`klog flags ignored (logs are JSON on stdout): ${[...new Set(ignoredKlog)].join(', ')}`);
  const env = penv.env ?? process.env;
  c.podNamespace = env.POD_NAMESPACE || (penv.readNamespaceFile ?? defaultNamespaceFile)() || c.namespace;
  if (env.KUBERNETES_SERVICE_HOST) c.inClusterService = { host: env.KUBERNETES_SERVICE_HOST, port: env.KUBERNETES_SERVICE_PORT || '443' };
  return Object.freeze(c);
}
