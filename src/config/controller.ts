// `lanyard controller` flags (docs/verified-start.md#controller-flags, docs/verified-start.md, docs/associations.md#what-the-controller-does): pflag syntax and Go durations like the webhook's, one
// validated frozen config. The only place the controller reads the environment (AWS region and endpoint defaults).
import { OUTAGE_POLICIES, type OutagePolicy } from '../verification/outage.ts';
import { CliError, EXIT } from '../core/exit.ts';
import { associationConfigFrom, type AssociationConfig } from './associations.ts';
import { PROMOTION_DEFAULTS, promotionConfigFrom, type PromotionConfig } from './promotions.ts';
import { klogVerbosity, TLS_MODES, WEBHOOK_DEFAULTS } from './webhook.ts';
import {
  boolValue as bool,
  FlagError,
  listValue,
  oneOfValue,
  parseFlags,
  renderFlagHelp,
  wantsHelpOrVersion,
  type Flag,
  type Flags,
} from './flags.ts';
import { parseDuration } from '../core/duration.ts';
import { credentialOptions, type CredentialOptions } from '../identity/pod-credentials.ts';
import type { InjectionFlags } from '../identity/resolve.ts';

export interface ControllerConfig {
  kubeconfig: string;
  kubeApi: string;
  awsRegion: string;
  /** One endpoint for every AWS service ('' = the real AWS endpoints). */
  awsEndpointUrl: string;
  clusterName: string;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  leaderElectIdentity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** /metrics, /healthz, /readyz; 0 disables the listener. */
  metricsPort: number;
  verifyBackoffInitialMs: number;
  verifyBackoffMaxMs: number;
  verifyQps: number;
  verifyBurst: number;
  verifyDeadlineMs: number;
  verifyRetryAfterDeadlineMs: number;
  verifiedTtlMs: number;
  verifyWorkers: number;
  /** docs/adr/0309: hold every gated Pod while AWS is unavailable, or release those proven within the grace window. */
  verifyOutagePolicy: OutagePolicy;
  verifyOutageGraceMs: number;
  /**
   * How long one exchange (STS or eks-auth) may wait for an answer; one attempt, the verifier retries itself. A
   * blackholed endpoint counts as an outage after this (docs/verified-start.md#when-aws-is-down).
   */
  verifyRequestTimeoutMs: number;
  /** Identity-source settings shared with the webhook (docs/migrate-from-pod-identity-webhook.md#flags): the verifier resolves fingerprints as it does. */
  namespace: string;
  annotationPrefix: string;
  tokenAudience: string;
  stsRegionalEndpoint: boolean;
  watchConfigMap: boolean;
  containerCredentialsAudience: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** `self-managed`: the leader also keeps the webhook's serving certificate and caBundle current (docs/webhook.md#tls). */
  tlsMode: 'files' | 'self-managed';
  tlsSecret: string;
  serviceName: string;
  webhookConfigName: string;
  tlsExtraSans: string[];
  selfManagedCertValidityMs: number;
  /** Namespace of the certificate Secret: POD_NAMESPACE, else the lease namespace. */
  podNamespace: string;
  associations: Readonly<AssociationConfig>;
  promotions: Readonly<PromotionConfig>;
}

type Draft = Omit<ControllerConfig, 'associations' | 'promotions'> & {
  associationFlags: Record<string, string>;
  promotionFlags: Record<string, string>;
};

export const CONTROLLER_DEFAULTS = Object.freeze({
  leaseNamespace: 'lanyard-system',
  leaseName: 'lanyard-controller',
  leaseDuration: '15s',
  renewDeadline: '10s',
  retryPeriod: '2s',
  metricsPort: 8080,
  verifyBackoffInitial: '100ms',
  verifyBackoffMax: '500ms',
  verifyQps: 100,
  verifyBurst: 200,
  verifyDeadline: '5m',
  verifyRetryAfterDeadline: '1m',
  verifiedTtl: '10m',
  verifyWorkers: 16,
  verifyOutagePolicy: 'hold' as OutagePolicy,
  verifyOutageGrace: '1h',
  verifyRequestTimeout: '5s',
});

function duration(flag: string, v: string, min = 1): number {
  const d = parseDuration(v);
  if (d === undefined || d < min)
    throw new FlagError(
      `invalid argument "${v}" for "--${flag}": must be a positive Go duration such as 500ms, 2s or 1m30s`,
    );
  return d;
}
function intValue(flag: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new FlagError(`invalid argument "${v}" for "--${flag}": must be an integer from ${min} to ${max}`);
  }
  return Number(v);
}

type Def = Flag<Draft>;
const C = CONTROLLER_DEFAULTS;
const W = WEBHOOK_DEFAULTS;
const P = PROMOTION_DEFAULTS;
const put = (c: Draft, k: keyof Draft, v: unknown) => ((c as unknown as Record<string, unknown>)[k] = v);
const s = (k: keyof Draft, usage: string, def: string): Def => ({
  type: 'string',
  usage,
  default: def,
  set: (c, v) => put(c, k, v),
});
const b = (k: keyof Draft, usage: string, def: string): Def => ({
  type: 'bool',
  usage,
  default: def,
  set: (c, v, f) => put(c, k, bool(f, v)),
});
const d = (k: keyof Draft, usage: string, def: string): Def => ({
  type: 'duration',
  usage,
  default: def,
  set: (c, v, f) => put(c, k, duration(f, v)),
});
const int = (
  k: 'metricsPort' | 'verifyQps' | 'verifyBurst' | 'verifyWorkers',
  usage: string,
  min: number,
  max: number,
): Def => ({
  type: 'int',
  usage,
  default: String(C[k]),
  set: (c, v, f) => (c[k] = intValue(f, v, min, max)),
});
const assoc = (key: string, type: Def['type'], usage: string, def: string): Def => ({
  type,
  usage,
  default: def,
  set: (c, v) => (c.associationFlags[key] = v),
});
const promo = (key: keyof typeof P, type: Def['type'], usage: string, quote = type === 'string'): Def => ({
  type,
  usage,
  default: quote ? `"${P[key]}"` : P[key],
  set: (c, v) => (c.promotionFlags[key] = v),
});

/** Every `lanyard controller` flag with its type, what it does and its default (docs/verified-start.md, controller). */
export const CONTROLLER_FLAGS: Flags<Draft> = {
  kubeconfig: s(
    'kubeconfig',
    'kubeconfig file; empty: the in-cluster service account',
    'KUBECONFIG, else ""',
  ),
  'kube-api': s('kubeApi', "API server URL overriding the kubeconfig's", '""'),
  'aws-region': {
    type: 'string',
    usage: 'AWS region of EKS, STS and eks-auth calls',
    default: 'AWS_REGION, AWS_DEFAULT_REGION, else "us-east-1"',
    set: (c, v) => {
      c.awsRegion = v;
      c.promotionFlags['aws-region'] = v;
    },
  },
  'aws-endpoint-url': {
    type: 'string',
    usage: 'one endpoint for every AWS service (simulators, private endpoints)',
    default: 'AWS_ENDPOINT_URL, else the real AWS endpoints',
    set: (c, v, f) => {
      if (v !== '' && !/^https?:\/\/[^\s/]+/.test(v))
        throw new FlagError(`invalid argument "${v}" for "--${f}": must be an http(s) URL`);
      c.awsEndpointUrl = v;
    },
  },
  'cluster-name': {
    type: 'string',
    usage: 'EKS cluster name, for associations and eks-auth',
    default: '""',
    set: (c, v) => {
      c.clusterName = v;
      c.associationFlags.clusterName = v;
    },
  },
  'leader-elect': b('leaderElect', 'run the reconcilers only while holding the Lease', 'true'),
  'lease-namespace': s(
    'leaseNamespace',
    'namespace of the leader-election Lease',
    `POD_NAMESPACE, else "${C.leaseNamespace}"`,
  ),
  'lease-name': s('leaseName', 'name of the leader-election Lease', `"${C.leaseName}"`),
  'leader-elect-identity': s(
    'leaderElectIdentity',
    "this replica's holder identity",
    'POD_NAME, else a generated one',
  ),
  'leader-elect-lease-duration': d(
    'leaseDurationMs',
    'how long a Lease is valid without renewal',
    C.leaseDuration,
  ),
  'leader-elect-renew-deadline': d(
    'renewDeadlineMs',
    'how long the leader tries to renew before giving up leadership',
    C.renewDeadline,
  ),
  'leader-elect-retry-period': d('retryPeriodMs', 'wait between tries to acquire or renew', C.retryPeriod),
  'metrics-port': int('metricsPort', '/metrics, /healthz and /readyz port; 0 disables them', 0, 65535),
  'verify-backoff-initial': d(
    'verifyBackoffInitialMs',
    'first retry delay of a failed identity proof',
    C.verifyBackoffInitial,
  ),
  'verify-backoff-max': d(
    'verifyBackoffMaxMs',
    'largest retry delay of a failed identity proof',
    C.verifyBackoffMax,
  ),
  'verify-qps': int('verifyQps', 'identity proofs per second (token bucket rate)', 1, 100_000),
  'verify-burst': int('verifyBurst', 'identity proofs allowed in a burst', 1, 100_000),
  'verify-deadline': d(
    'verifyDeadlineMs',
    'per Pod, from creation: then reported failed (the gate stays, retries go on)',
    C.verifyDeadline,
  ),
  'verify-retry-after-deadline': d(
    'verifyRetryAfterDeadlineMs',
    'retry period once the deadline has passed',
    C.verifyRetryAfterDeadline,
  ),
  'verified-ttl': d(
    'verifiedTtlMs',
    'lifetime of a VerifiedIdentity (a proof reused for further Pods)',
    C.verifiedTtl,
  ),
  'verify-workers': int('verifyWorkers', 'identity proofs run in parallel', 1, 256),
  'verify-outage-policy': {
    type: 'string',
    usage:
      'while AWS throttles, fails with 5xx or times out: hold every gated Pod, or release-recently-proven (docs/adr/0309)',
    default: `"${C.verifyOutagePolicy}"`,
    set: (c, v, f) => (c.verifyOutagePolicy = oneOfValue(f, v, OUTAGE_POLICIES)),
  },
  'verify-outage-grace': d(
    'verifyOutageGraceMs',
    'with release-recently-proven: how recent the last proof of the identity must be',
    C.verifyOutageGrace,
  ),
  'verify-request-timeout': d(
    'verifyRequestTimeoutMs',
    "how long one exchange waits for AWS's answer; no answer by then is an outage (docs/adr/0309)",
    C.verifyRequestTimeout,
  ),
  namespace: s(
    'namespace',
    'namespace of the kOps pod-identity-webhook ConfigMap (as the webhook)',
    `"${W.namespace}"`,
  ),
  'annotation-prefix': {
    type: 'string',
    usage: 'ServiceAccount annotation prefix (as the webhook)',
    default: `"${W.annotationPrefix}"`,
    set: (c, v) => {
      c.annotationPrefix = v;
      c.promotionFlags['annotation-prefix'] = v;
    },
  },
  'token-audience': s(
    'tokenAudience',
    'audience of web-identity tokens (as the webhook)',
    `"${W.tokenAudience}"`,
  ),
  'sts-regional-endpoint': b(
    'stsRegionalEndpoint',
    'expect AWS_STS_REGIONAL_ENDPOINTS=regional in Pods (as the webhook)',
    String(W.stsRegionalEndpoint),
  ),
  'watch-config-map': b(
    'watchConfigMap',
    'read identities from the kOps ConfigMap (as the webhook)',
    String(W.watchConfigMap),
  ),
  'container-credentials-audience': s(
    'containerCredentialsAudience',
    'audience of EKS Pod Identity tokens (as the webhook)',
    `"${W.containerCredentialsAudience}"`,
  ),
  'log-level': {
    type: 'string',
    usage: 'error, warn, info, debug or trace',
    default: '"info"',
    set: (c, v, f) => (c.logLevel = oneOfValue(f, v, ['error', 'warn', 'info', 'debug', 'trace'] as const)),
  },
  v: klogVerbosity<Draft>(),
  'tls-mode': {
    type: 'string',
    usage: 'files, or self-managed: the leader keeps the webhook certificate and caBundle current',
    default: `"${W.tlsMode}"`,
    set: (c, v, f) => (c.tlsMode = oneOfValue(f, v, TLS_MODES)),
  },
  'tls-secret': s('tlsSecret', 'Secret of the self-managed webhook CA and certificate', `"${W.tlsSecret}"`),
  'service-name': s('serviceName', 'webhook Service the certificate is issued for', `"${W.serviceName}"`),
  'webhook-config-name': s(
    'webhookConfigName',
    'MutatingWebhookConfiguration whose caBundle is kept current',
    '""',
  ),
  'tls-extra-sans': {
    type: 'strings',
    usage: 'extra certificate names, comma-separated',
    default: '""',
    set: (c, v) => (c.tlsExtraSans = listValue(v)),
  },
  'self-managed-cert-validity': d(
    'selfManagedCertValidityMs',
    'validity of the self-managed certificate',
    `${W.selfManagedCertValidityMs / 3600_000}h`,
  ),
  'association-workers': assoc(
    'associationWorkers',
    'int',
    'PodIdentityAssociations reconciled in parallel',
    '16',
  ),
  'association-resync': assoc(
    'associationResync',
    'duration',
    'period of the drift re-check of every association',
    '10m',
  ),
  'role-propagation-timeout': assoc(
    'rolePropagationTimeout',
    'duration',
    'how long "role does not exist" is retried before RoleNotFound',
    '2m',
  ),
  'observe-ack-associations': assoc(
    'observeAckAssociations',
    'string',
    'read ACK PodIdentityAssociation objects: auto, true or false',
    '"auto"',
  ),
  'association-probe': {
    type: 'bool',
    usage: 'prove each association with a probe Pod (never runs)',
    default: 'true',
    set: (c, v, f) => (c.associationFlags.associationProbe = String(bool(f, v))),
  },
  'probe-image': assoc('probeImage', 'string', 'image of the probe Pod', '"registry.k8s.io/pause:3.10"'),
  'denied-association-action': assoc(
    'deniedAssociationAction',
    'string',
    'what happens to an association an IdentityPolicy denies: delete it from EKS, or preview (report only)',
    '"delete"',
  ),
  'promotion-namespace': promo('promotion-namespace', 'string', 'namespace promotion Pods run in'),
  'promotion-service-account': promo(
    'promotion-service-account',
    'string',
    'promotion Pod ServiceAccount when a Stage names none',
  ),
  'promotion-timeout': promo('promotion-timeout', 'duration', 'default Stage timeout'),
  'promotion-max-timeout': promo('promotion-max-timeout', 'duration', 'largest Stage timeout'),
  'promotion-pod-retention': promo(
    'promotion-pod-retention',
    'duration',
    'how long finished promotion Pods are kept; 0 deletes them at once',
  ),
  'promotion-done-image': promo('promotion-done-image', 'string', 'image of the final done container'),
  'promotion-workers': promo('promotion-workers', 'int', 'promotions reconciled in parallel'),
  'promotion-step-audience': promo(
    'promotion-step-audience',
    'string',
    'audience of per-step web-identity tokens',
  ),
  help: {
    type: 'bool',
    usage: 'print this help and exit',
    default: '',
    shorthand: 'h',
    set: (_c, v, f) => void bool(f, v),
  },
};

/** The `Flags:` block of `lanyard controller --help`. */
export function controllerFlagHelp(): string[] {
  return renderFlagHelp(CONTROLLER_FLAGS);
}

/** True when argv asks for help (`-h`, `--help`), whatever else is missing. Throws CliError on a malformed line. */
export function controllerWantsHelp(
  argv: string[],
  o: Pick<ControllerParseOptions, 'passThrough'> = {},
): boolean {
  try {
    return (
      wantsHelpOrVersion(CONTROLLER_FLAGS, argv, { command: 'controller', passThrough: o.passThrough }) ===
      'help'
    );
  } catch (e) {
    if (e instanceof FlagError) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
}

export const CONTROLLER_FLAG_NAMES: readonly string[] = Object.keys(CONTROLLER_FLAGS);

export interface ControllerParseOptions {
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Flags another part of the same process understands (`lanyard run`: the webhook's). Those the controller does not
   * know are returned in `rest` instead of being refused; shared ones are both applied and returned.
   */
  passThrough?: ReadonlySet<string>;
}

/** Parses controller flags. Throws CliError (exit 2) naming the flag on bad input. */
export function parseControllerFlags(
  argv: string[],
  o: ControllerParseOptions = {},
): { config: ControllerConfig; rest: string[] } {
  const env = o.env ?? process.env;
  const c: Draft = {
    kubeconfig: env.KUBECONFIG ?? '',
    kubeApi: '',
    awsRegion: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    awsEndpointUrl: env.AWS_ENDPOINT_URL ?? '',
    clusterName: '',
    leaderElect: true,
    leaseNamespace: env.POD_NAMESPACE || CONTROLLER_DEFAULTS.leaseNamespace,
    leaseName: CONTROLLER_DEFAULTS.leaseName,
    leaderElectIdentity: env.POD_NAME ?? '',
    leaseDurationMs: duration('leader-elect-lease-duration', CONTROLLER_DEFAULTS.leaseDuration),
    renewDeadlineMs: duration('leader-elect-renew-deadline', CONTROLLER_DEFAULTS.renewDeadline),
    retryPeriodMs: duration('leader-elect-retry-period', CONTROLLER_DEFAULTS.retryPeriod),
    metricsPort: CONTROLLER_DEFAULTS.metricsPort,
    verifyBackoffInitialMs: duration('verify-backoff-initial', CONTROLLER_DEFAULTS.verifyBackoffInitial),
    verifyBackoffMaxMs: duration('verify-backoff-max', CONTROLLER_DEFAULTS.verifyBackoffMax),
    verifyQps: CONTROLLER_DEFAULTS.verifyQps,
    verifyBurst: CONTROLLER_DEFAULTS.verifyBurst,
    verifyDeadlineMs: duration('verify-deadline', CONTROLLER_DEFAULTS.verifyDeadline),
    verifyRetryAfterDeadlineMs: duration(
      'verify-retry-after-deadline',
      CONTROLLER_DEFAULTS.verifyRetryAfterDeadline,
    ),
    verifiedTtlMs: duration('verified-ttl', CONTROLLER_DEFAULTS.verifiedTtl),
    verifyWorkers: CONTROLLER_DEFAULTS.verifyWorkers,
    verifyOutagePolicy: CONTROLLER_DEFAULTS.verifyOutagePolicy,
    verifyOutageGraceMs: duration('verify-outage-grace', CONTROLLER_DEFAULTS.verifyOutageGrace),
    verifyRequestTimeoutMs: duration('verify-request-timeout', CONTROLLER_DEFAULTS.verifyRequestTimeout),
    // Settings shared with the webhook default to the webhook's values, so both resolve identities alike.
    namespace: WEBHOOK_DEFAULTS.namespace,
    annotationPrefix: WEBHOOK_DEFAULTS.annotationPrefix,
    tokenAudience: WEBHOOK_DEFAULTS.tokenAudience,
    stsRegionalEndpoint: WEBHOOK_DEFAULTS.stsRegionalEndpoint,
    watchConfigMap: WEBHOOK_DEFAULTS.watchConfigMap,
    containerCredentialsAudience: WEBHOOK_DEFAULTS.containerCredentialsAudience,
    logLevel: 'info',
    tlsMode: WEBHOOK_DEFAULTS.tlsMode,
    tlsSecret: WEBHOOK_DEFAULTS.tlsSecret,
    serviceName: WEBHOOK_DEFAULTS.serviceName,
    webhookConfigName: WEBHOOK_DEFAULTS.webhookConfigName,
    tlsExtraSans: [],
    selfManagedCertValidityMs: WEBHOOK_DEFAULTS.selfManagedCertValidityMs,
    podNamespace: env.POD_NAMESPACE ?? '',
    associationFlags: {},
    promotionFlags: {},
  };
  let rest: string[];
  try {
    rest = parseFlags(CONTROLLER_FLAGS, argv, c, {
      command: o.passThrough ? 'run' : 'controller',
      passThrough: o.passThrough,
    }).rest;
    if (c.verifyBackoffMaxMs < c.verifyBackoffInitialMs) {
      throw new FlagError(
        `invalid argument for "--verify-backoff-max": must not be below --verify-backoff-initial`,
      );
    }
    if (c.leaderElect && !(c.retryPeriodMs < c.renewDeadlineMs && c.renewDeadlineMs < c.leaseDurationMs)) {
      throw new FlagError(
        'invalid leader election timing: need --leader-elect-retry-period < --leader-elect-renew-deadline < --leader-elect-lease-duration',
      );
    }
  } catch (e) {
    if (e instanceof FlagError) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
  const { associationFlags, promotionFlags, ...config } = c;
  config.podNamespace ||= config.leaseNamespace;
  const associations = associationConfigFrom(associationFlags);
  const promotions = promotionConfigFrom(promotionFlags, env);
  return { config: Object.freeze({ ...config, associations, promotions }), rest };
}

/**
 * The settings a controller-side reader of Pods (the verifier, the identity reconciler) resolves identities with, as
 * the webhook does: `podIdentitySettings`' four, and where the kOps ConfigMap is watched.
 */
export type PodIdentitySourceConfig = Pick<
  ControllerConfig,
  | 'namespace'
  | 'annotationPrefix'
  | 'tokenAudience'
  | 'stsRegionalEndpoint'
  | 'watchConfigMap'
  | 'containerCredentialsAudience'
>;

/**
 * How the controller's readers of Pods (the verifier, the identity reconciler) resolve and recognise identities: the
 * webhook's resolution with this configuration's prefix and audiences (only the fingerprint of a resolution is used,
 * so paths and URIs keep the webhook's defaults), and the audiences that make a mounted token an AWS credential
 * (docs/security.md).
 */
export function podIdentitySettings(
  cfg: Pick<
    ControllerConfig,
    'annotationPrefix' | 'tokenAudience' | 'stsRegionalEndpoint' | 'containerCredentialsAudience'
  >,
): { flags: InjectionFlags; credentials: CredentialOptions } {
  return {
    flags: {
      ...WEBHOOK_DEFAULTS,
      annotationPrefix: cfg.annotationPrefix,
      tokenAudience: cfg.tokenAudience,
      stsRegionalEndpoint: cfg.stsRegionalEndpoint,
      containerCredentialsAudience: cfg.containerCredentialsAudience,
    },
    credentials: credentialOptions({
      stsAudiences: [cfg.tokenAudience],
      podIdentityAudiences: [cfg.containerCredentialsAudience],
    }),
  };
}
