// `lanyard controller` flags (verification.md §9.3, §15, §3): pflag syntax and Go durations like the webhook's, one
// validated frozen config. The only place the controller reads the environment (AWS region and endpoint defaults).
import { CliError, EXIT } from '../cli/exit.ts';
import { associationConfigFrom, type AssociationConfig } from './associations.ts';
import { PROMOTION_FLAG_NAMES, promotionConfigFrom, type PromotionConfig } from './promotions.ts';
import { FlagError, WEBHOOK_DEFAULTS, boolValue as bool } from './webhook.ts';
import { parseDuration } from '../core/duration.ts';

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
  /** Identity-source settings shared with the webhook (webhook.md §1.1): the verifier resolves fingerprints as it does. */
  namespace: string;
  annotationPrefix: string;
  tokenAudience: string;
  stsRegionalEndpoint: boolean;
  watchConfigMap: boolean;
  containerCredentialsAudience: string;
  logLevel: 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** `self-managed`: the leader also keeps the webhook's serving certificate and caBundle current (webhook.md §7.2). */
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

type Setter = (c: Draft, v: string, flag: string) => void;
interface Def {
  bool?: boolean;
  set: Setter;
}
type Draft = Omit<ControllerConfig, 'associations' | 'promotions'> & { associationFlags: Record<string, string>; promotionFlags: Record<string, string> };

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
});

function duration(flag: string, v: string, min = 1): number {
  const d = parseDuration(v);
  if (d === undefined || d < min) throw new FlagError(`invalid argument "${v}" for "--${flag}": must be a positive Go duration such as 500ms, 2s or 1m30s`);
  return d;
}
function int(flag: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new FlagError(`invalid argument "${v}" for "--${flag}": must be an integer from ${min} to ${max}`);
  }
  return Number(v);
}

const s = (k: keyof Draft): Def => ({ set: (c, v) => ((c as unknown as Record<string, unknown>)[k] = v) });
const b = (k: keyof Draft): Def => ({ bool: true, set: (c, v, f) => ((c as unknown as Record<string, unknown>)[k] = bool(f, v)) });
const d = (k: keyof Draft): Def => ({ set: (c, v, f) => ((c as unknown as Record<string, unknown>)[k] = duration(f, v)) });
const assoc = (key: string): Def => ({ set: (c, v) => (c.associationFlags[key] = v) });

const promo = (key: string): Def => ({ set: (c, v) => (c.promotionFlags[key] = v) });

const FLAGS: Record<string, Def> = {
  ...Object.fromEntries(PROMOTION_FLAG_NAMES.map((f) => [f, promo(f)])),
  kubeconfig: s('kubeconfig'),
  'kube-api': s('kubeApi'),
  'aws-region': { set: (c, v) => { c.awsRegion = v; c.promotionFlags['aws-region'] = v; } },
  'aws-endpoint-url': {
    set: (c, v, f) => {
      if (v !== '' && !/^https?:\/\/[^\s/]+/.test(v)) throw new FlagError(`invalid argument "${v}" for "--${f}": must be an http(s) URL`);
      c.awsEndpointUrl = v;
    },
  },
  'cluster-name': { set: (c, v) => { c.clusterName = v; c.associationFlags.clusterName = v; } },
  'leader-elect': b('leaderElect'),
  'lease-namespace': s('leaseNamespace'),
  'lease-name': s('leaseName'),
  'leader-elect-identity': s('leaderElectIdentity'),
  'leader-elect-lease-duration': d('leaseDurationMs'),
  'leader-elect-renew-deadline': d('renewDeadlineMs'),
  'leader-elect-retry-period': d('retryPeriodMs'),
  'metrics-port': { set: (c, v, f) => (c.metricsPort = int(f, v, 0, 65535)) },
  'verify-backoff-initial': d('verifyBackoffInitialMs'),
  'verify-backoff-max': d('verifyBackoffMaxMs'),
  'verify-qps': { set: (c, v, f) => (c.verifyQps = int(f, v, 1, 100_000)) },
  'verify-burst': { set: (c, v, f) => (c.verifyBurst = int(f, v, 1, 100_000)) },
  'verify-deadline': d('verifyDeadlineMs'),
  'verify-retry-after-deadline': d('verifyRetryAfterDeadlineMs'),
  'verified-ttl': d('verifiedTtlMs'),
  'verify-workers': { set: (c, v, f) => (c.verifyWorkers = int(f, v, 1, 256)) },
  namespace: s('namespace'),
  'annotation-prefix': { set: (c, v) => { c.annotationPrefix = v; c.promotionFlags['annotation-prefix'] = v; } },
  'token-audience': s('tokenAudience'),
  'sts-regional-endpoint': b('stsRegionalEndpoint'),
  'watch-config-map': b('watchConfigMap'),
  'container-credentials-audience': s('containerCredentialsAudience'),
  'log-level': {
    set: (c, v, f) => {
      if (!['error', 'warn', 'info', 'debug', 'trace'].includes(v)) {
        throw new FlagError(`invalid argument "${v}" for "--${f}": must be error, warn, info, debug or trace`);
      }
      c.logLevel = v as ControllerConfig['logLevel'];
    },
  },
  'tls-mode': {
    set: (c, v, f) => {
      if (v !== 'files' && v !== 'self-managed') throw new FlagError(`invalid argument "${v}" for "--${f}": must be files or self-managed`);
      c.tlsMode = v;
    },
  },
  'tls-secret': s('tlsSecret'),
  'service-name': s('serviceName'),
  'webhook-config-name': s('webhookConfigName'),
  'tls-extra-sans': { set: (c, v) => (c.tlsExtraSans = v.split(',').map((x) => x.trim()).filter(Boolean)) },
  'self-managed-cert-validity': d('selfManagedCertValidityMs'),
  'association-workers': assoc('associationWorkers'),
  'association-resync': assoc('associationResync'),
  'role-propagation-timeout': assoc('rolePropagationTimeout'),
  'observe-ack-associations': assoc('observeAckAssociations'),
  'association-probe': { bool: true, set: (c, v, f) => (c.associationFlags.associationProbe = String(bool(f, v))) },
  'probe-image': assoc('probeImage'),
  'denied-association-action': assoc('deniedAssociationAction'),
};

export const CONTROLLER_FLAG_NAMES: readonly string[] = Object.keys(FLAGS);

export interface ControllerParseOptions {
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Flags another part of the same process understands (`lanyard run`: the webhook's). Those the controller does not
   * know are returned in `rest` instead of being refused; shared ones are both applied and returned.
   */
  passThrough?: ReadonlySet<string>;
}

/** Parses controller flags. Throws CliError (exit 2) naming the flag on bad input. */
export function parseControllerFlags(argv: string[], o: ControllerParseOptions = {}): { config: ControllerConfig; rest: string[] } {
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
    verifyRetryAfterDeadlineMs: duration('verify-retry-after-deadline', CONTROLLER_DEFAULTS.verifyRetryAfterDeadline),
    verifiedTtlMs: duration('verified-ttl', CONTROLLER_DEFAULTS.verifiedTtl),
    verifyWorkers: CONTROLLER_DEFAULTS.verifyWorkers,
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
  const rest: string[] = [];
  try {
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!;
      if (!arg.startsWith('--')) throw new FlagError(`unexpected argument "${arg}": this command takes flags only`);
      const body = arg.slice(2);
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      let value = eq >= 0 ? body.slice(eq + 1) : undefined;
      const def = FLAGS[name];
      const shared = o.passThrough?.has(name) ?? false;
      if (!def && !shared) throw new FlagError(`unknown flag: --${name}`);
      // A pass-through flag we do not know takes the next argument unless that is another flag (pflag bools never do).
      const isBool = def ? !!def.bool : argv[i + 1] === undefined || argv[i + 1]!.startsWith('-');
      const consumed = [arg];
      if (value === undefined) {
        if (isBool) value = 'true';
        else {
          const next = argv[i + 1];
          if (next === undefined) throw new FlagError(`flag needs an argument: --${name}`);
          value = next;
          consumed.push(next);
          i++;
        }
      }
      if (def) def.set(c, value, name);
      if (shared) rest.push(...consumed);
    }
    if (c.verifyBackoffMaxMs < c.verifyBackoffInitialMs) {
      throw new FlagError(`invalid argument for "--verify-backoff-max": must not be below --verify-backoff-initial`);
    }
    if (c.leaderElect && !(c.retryPeriodMs < c.renewDeadlineMs && c.renewDeadlineMs < c.leaseDurationMs)) {
      throw new FlagError('invalid leader election timing: need --leader-elect-retry-period < --leader-elect-renew-deadline < --leader-elect-lease-duration');
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
