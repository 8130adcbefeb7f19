// Promotion controller settings (docs/promotions.md#controller-settings) -> one validated, frozen config. Each flag also reads
// `LANYARD_` + its name in upper snake case; the flag wins. `lanyard controller`/`lanyard run` pass the raw values
// of the flags named in PROMOTION_FLAG_NAMES (plus the shared --aws-region and --annotation-prefix) here.
import { CliError, EXIT } from '../core/exit.ts';
import { parseDuration } from '../core/duration.ts';
import { BUILD_INFO } from '../core/build-info.ts';

export interface PromotionConfig {
  /** The agent namespace promotion pods run in. */
  namespace: string;
  /** Pod ServiceAccount when a Stage names none. */
  serviceAccount: string;
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  /** How long a finished pod is kept; 0 deletes it at once. */
  podRetentionMs: number;
  doneImage: string;
  workers: number;
  stepAudience: string;
  /** Injected as AWS_REGION/AWS_DEFAULT_REGION into per-step-role containers when set. */
  awsRegion: string;
  /** The identity webhook's annotation prefix, for `<prefix>/skip-containers`. */
  annotationPrefix: string;
  /** Period of the orphan-pod sweep (also run at start-up). */
  orphanSweepMs: number;
  /** Pods younger than this are never swept (their Promotion may not be in the cache yet). */
  orphanGraceMs: number;
}

/**
 * The controller image of this release (its tag is the package version, as the chart's default image), used for the
 * `done` container unless --promotion-done-image says otherwise. The chart always passes its own image.
 */
export const DEFAULT_DONE_IMAGE = `ghcr.io/lanyard-dev/lanyard:${BUILD_INFO.version}`;

export const PROMOTION_DEFAULTS = Object.freeze({
  'promotion-namespace': 'lanyard-promotions',
  'promotion-service-account': 'lanyard-promotion-orchestrator',
  'promotion-timeout': '10m',
  'promotion-max-timeout': '6h',
  'promotion-pod-retention': '1h',
  'promotion-done-image': DEFAULT_DONE_IMAGE,
  'promotion-workers': '8',
  'promotion-step-audience': 'lanyard-promotion-step',
});

/** Flags owned by promotions; `aws-region` and `annotation-prefix` are shared with the rest of the controller. */
export const PROMOTION_FLAG_NAMES: readonly string[] = Object.keys(PROMOTION_DEFAULTS);
const SHARED_FLAGS = ['aws-region', 'annotation-prefix'] as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function envName(flag: string): string {
  return `LANYARD_${flag.replace(/-/g, '_').toUpperCase()}`;
}

function usage(message: string): never {
  throw new CliError(message, EXIT.usage);
}

/**
 * Validates the promotion flags (raw strings keyed by flag name without `--`), falling back to the environment and
 * then to the defaults. Throws a usage CliError (exit 2) naming the flag.
 */
export function promotionConfigFrom(
  flags: Readonly<Record<string, string | undefined>>,
  env: Readonly<Record<string, string | undefined>> = {},
  overrides: Partial<Pick<PromotionConfig, 'orphanSweepMs' | 'orphanGraceMs'>> = {},
): Readonly<PromotionConfig> {
  const value = (flag: string, fallback: string): string => flags[flag] ?? env[envName(flag)] ?? fallback;
  const get = (flag: keyof typeof PROMOTION_DEFAULTS) => value(flag, PROMOTION_DEFAULTS[flag]);
  const seconds = (flag: keyof typeof PROMOTION_DEFAULTS, min: number): number => {
    const text = get(flag);
    const ms = parseDuration(text);
    if (ms === undefined || ms < min * 1000) {
      usage(`invalid --${flag} "${text}": use a duration of at least ${min}s such as 30s, 10m or 1h30m`);
    }
    return Math.ceil(ms / 1000);
  };

  const namespace = get('promotion-namespace');
  if (!DNS_LABEL.test(namespace) || namespace.length > 63)
    usage(`invalid --promotion-namespace "${namespace}": must be a namespace name`);
  const serviceAccount = get('promotion-service-account');
  if (!DNS_SUBDOMAIN.test(serviceAccount) || serviceAccount.length > 253) {
    usage(`invalid --promotion-service-account "${serviceAccount}": must be a service account name`);
  }
  const defaultTimeoutSeconds = seconds('promotion-timeout', 30);
  const maxTimeoutSeconds = seconds('promotion-max-timeout', 30);
  if (defaultTimeoutSeconds > maxTimeoutSeconds) {
    usage(
      `invalid --promotion-timeout "${get('promotion-timeout')}": must not exceed --promotion-max-timeout "${get('promotion-max-timeout')}"`,
    );
  }
  const retentionText = get('promotion-pod-retention');
  const podRetentionMs = parseDuration(retentionText);
  if (podRetentionMs === undefined || podRetentionMs < 0) {
    usage(`invalid --promotion-pod-retention "${retentionText}": use a duration such as 0, 10m or 1h`);
  }
  const doneImage = get('promotion-done-image');
  if (!doneImage || /\s/.test(doneImage))
    usage(`invalid --promotion-done-image "${doneImage}": must be an image reference`);
  const workersText = get('promotion-workers');
  if (!/^\d+$/.test(workersText) || Number(workersText) < 1 || Number(workersText) > 256) {
    usage(`invalid --promotion-workers "${workersText}": use an integer from 1 to 256`);
  }
  const stepAudience = get('promotion-step-audience');
  if (!stepAudience || /\s/.test(stepAudience))
    usage(`invalid --promotion-step-audience "${stepAudience}": must be a non-empty audience`);
  const [awsRegionFlag, prefixFlag] = SHARED_FLAGS;
  const awsRegion = value(awsRegionFlag, '');
  if (awsRegion && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(awsRegion))
    usage(`invalid --aws-region "${awsRegion}": must be a region such as eu-west-1`);
  const annotationPrefix = value(prefixFlag, 'eks.amazonaws.com');
  if (!DNS_SUBDOMAIN.test(annotationPrefix))
    usage(`invalid --annotation-prefix "${annotationPrefix}": must be a DNS subdomain`);
  return Object.freeze({
    namespace,
    serviceAccount,
    defaultTimeoutSeconds,
    maxTimeoutSeconds,
    podRetentionMs,
    doneImage,
    workers: Number(workersText),
    stepAudience,
    awsRegion,
    annotationPrefix,
    orphanSweepMs: overrides.orphanSweepMs ?? 5 * 60_000,
    orphanGraceMs: overrides.orphanGraceMs ?? 60_000,
  });
}
