// Identity resolution (docs/webhook.md#where-an-identity-comes-from precedence, docs/webhook.md#settings-per-source settings). Pure: caches are read by the caller and passed in.
import path from 'node:path';
import type { AssociationIdentity, FingerprintInput, IdentityMode, ResolvedIdentity } from './sources.ts';
import { MIN_TOKEN_EXPIRATION, parseTokenExpiration, type SaSettings } from './annotations.ts';
import type { ConfigMapEntry, ConfigMapTable } from './configmap.ts';

/** The flags that shape an injection (docs/migrate-from-pod-identity-webhook.md#flags). */
export interface InjectionFlags {
  annotationPrefix: string;
  tokenAudience: string;
  tokenMountPath: string;
  /** Already raised to 600 at startup. */
  tokenExpiration: number;
  awsDefaultRegion: string;
  stsRegionalEndpoint: boolean;
  containerCredentialsAudience: string;
  containerCredentialsTokenMountPath: string;
  containerCredentialsTokenVolumeName: string;
  containerCredentialsTokenPath: string;
  containerCredentialsFullUri: string;
}

export const WEB_IDENTITY_VOLUME = 'aws-iam-token';
export const WEB_IDENTITY_TOKEN_FILE = 'token';
const JITTER_FROM = 86400;
const JITTER_MIN = 79200;

/** The ServiceAccount as far as the webhook could resolve it (docs/webhook.md#serviceaccounts-that-are-not-cached-yet). */
export type SaLookup = { found: true; settings: SaSettings } | { found: false };

export interface ResolveInput {
  namespace: string;
  serviceAccount: string;
  podAnnotations: Record<string, unknown> | undefined;
  sa: SaLookup;
  association?: AssociationIdentity;
  inIdentitiesFile: boolean;
  configMap: ConfigMapTable;
}

/** Everything the patch builder needs; no further decisions are left. */
export interface Injection {
  mode: IdentityMode;
  roleARN?: string;
  /** '' omits the audience from the token source. */
  audience: string;
  regionalSts: boolean;
  expirationSeconds: number;
  region: string;
  volumeName: string;
  mountPath: string;
  tokenFileName: string;
  /** Value of the token-file variable (Unix form; Windows is decided per Pod). */
  tokenFilePath: string;
  fullUri: string;
  /**
   * Container credentials from an association whose role is known: the effective role, injected as
   * LANYARD_EXPECTED_ROLE next to the identity pair so `lanyard verify` needs no flag (docs/adr/0921-verify-expected-role.md).
   * Undefined for every source the reference webhook has, so its Pods stay byte-for-byte the same.
   */
  expectedRole?: string;
}

export interface Resolution {
  identity: ResolvedIdentity;
  injection: Injection;
}

function podExpiration(annotations: Record<string, unknown> | undefined, prefix: string): number | undefined {
  const v = annotations?.[`${prefix}/token-expiration`];
  return typeof v === 'string' ? parseTokenExpiration(v) : undefined;
}

/** A ConfigMap entry's TokenExpiration, where 0 or missing means the flag (docs/webhook.md#settings-per-source). */
function entryExpiration(e: ConfigMapEntry, flags: InjectionFlags): number {
  return e.tokenExpiration || flags.tokenExpiration;
}

/** Uniform integer in [79200, 86400] for exactly 86400, else unchanged (container credentials only). */
export function jitterExpiration(seconds: number, random: () => number): number {
  if (seconds !== JITTER_FROM) return seconds;
  const span = JITTER_FROM - JITTER_MIN + 1;
  return JITTER_MIN + Math.min(span - 1, Math.floor(random() * span));
}

/** The token lifetime of a Pod: its own annotation beats the source's expiration; either is raised to 600. */
type PodExpiration = (sourceExpiration: number) => number;

/** Decides a Pod's identity and settings, or undefined when no source gives one. */
export function resolveIdentity(
  input: ResolveInput,
  flags: InjectionFlags,
  random: () => number,
): Resolution | undefined {
  const podExp = podExpiration(input.podAnnotations, flags.annotationPrefix);
  const withPodExpiration: PodExpiration = (sourceExpiration) =>
    Math.max(MIN_TOKEN_EXPIRATION, podExp ?? sourceExpiration);
  if (input.association || input.inIdentitiesFile)
    return containerCredentialsResolution(input, flags, withPodExpiration, random);
  return webIdentityResolution(input, flags, withPodExpiration);
}

/** Regional STS and token lifetime of container credentials: the ServiceAccount's annotations over the flags, else
 * the exact ConfigMap entry over the flags (docs/webhook.md#settings-per-source). */
function containerCredentialsSettings(
  input: ResolveInput,
  flags: InjectionFlags,
): { regionalSts: boolean; expiration: number } {
  const { sa } = input;
  if (sa.found)
    return {
      regionalSts: sa.settings.regionalSts ?? flags.stsRegionalEndpoint,
      expiration: sa.settings.tokenExpiration ?? flags.tokenExpiration,
    };
  const exact = input.configMap.get(`${input.namespace}/${input.serviceAccount}`);
  if (exact)
    return {
      regionalSts: exact.useRegionalSTS ?? flags.stsRegionalEndpoint,
      expiration: entryExpiration(exact, flags),
    };
  return { regionalSts: flags.stsRegionalEndpoint, expiration: flags.tokenExpiration };
}

function associationFingerprint(a: AssociationIdentity | undefined): FingerprintInput {
  if (!a) return { source: 'identities_file' };
  return {
    source: 'association',
    uid: a.uid,
    associationID: a.associationID,
    roleARN: a.roleARN,
    targetRoleARN: a.targetRoleARN,
    disableSessionTags: a.disableSessionTags,
    ...(a.policy ? { policy: a.policy } : {}),
  };
}

/** An association or the identities file: container credentials from the Pod Identity agent. */
function containerCredentialsResolution(
  input: ResolveInput,
  flags: InjectionFlags,
  withPodExpiration: PodExpiration,
  random: () => number,
): Resolution {
  const { namespace, serviceAccount } = input;
  const { regionalSts, expiration } = containerCredentialsSettings(input, flags);
  const a = input.association;
  return {
    identity: {
      namespace,
      serviceAccount,
      mode: 'ContainerCredentials',
      source: a ? 'association' : 'identities_file',
      roleARN: a?.roleARN,
      targetRoleARN: a?.targetRoleARN,
      audience: flags.containerCredentialsAudience,
      fingerprint: associationFingerprint(a),
    },
    injection: {
      mode: 'ContainerCredentials',
      roleARN: a?.roleARN,
      audience: flags.containerCredentialsAudience,
      regionalSts,
      expirationSeconds: jitterExpiration(withPodExpiration(expiration), random),
      region: flags.awsDefaultRegion,
      volumeName: flags.containerCredentialsTokenVolumeName,
      mountPath: flags.containerCredentialsTokenMountPath,
      tokenFileName: flags.containerCredentialsTokenPath,
      tokenFilePath: path.posix.join(
        flags.containerCredentialsTokenMountPath,
        flags.containerCredentialsTokenPath,
      ),
      fullUri: flags.containerCredentialsFullUri,
      ...(a && (a.targetRoleARN || a.roleARN) ? { expectedRole: a.targetRoleARN || a.roleARN } : {}),
    },
  };
}

/** What a web identity source decided, before the flags fill in the rest. */
interface WebIdentityChoice {
  source: ResolvedIdentity['source'];
  roleARN: string;
  audience: string;
  regionalSts: boolean;
  expiration: number;
  fingerprint: FingerprintInput;
}

/** The ServiceAccount's role, else the exact ConfigMap entry, else its `*` entry (docs/webhook.md#where-an-identity-comes-from). */
function webIdentityChoice(input: ResolveInput, flags: InjectionFlags): WebIdentityChoice | undefined {
  const { sa, configMap } = input;
  if (sa.found && sa.settings.roleARN) {
    const s = sa.settings;
    const audience = s.audience ?? flags.tokenAudience;
    const regionalSts = s.regionalSts ?? flags.stsRegionalEndpoint;
    const roleARN = s.roleARN!;
    return {
      source: 'service_account',
      roleARN,
      audience,
      regionalSts,
      expiration: s.tokenExpiration ?? flags.tokenExpiration,
      fingerprint: { source: 'service_account', saUid: s.uid, roleARN, audience, regionalSts },
    };
  }
  const fromEntry = (
    source: 'configmap' | 'configmap_wildcard',
    k: string,
    e: ConfigMapEntry,
  ): WebIdentityChoice => ({
    source,
    roleARN: e.roleARN!,
    audience: e.audience ?? flags.tokenAudience,
    regionalSts: e.useRegionalSTS ?? false,
    expiration: entryExpiration(e, flags),
    fingerprint: { source, key: k, entryJson: e.canonical },
  });
  const key = `${input.namespace}/${input.serviceAccount}`;
  const exact = configMap.get(key);
  if (exact?.roleARN) return fromEntry('configmap', key, exact);
  const wildcardKey = `*/${input.serviceAccount}`;
  const wildcard = configMap.get(wildcardKey);
  if (wildcard?.roleARN) return fromEntry('configmap_wildcard', wildcardKey, wildcard);
  return undefined;
}

// A process has one mount path (a flag): its join is made once, not at every admission. Bounded for tests' many flags.
const tokenFilePaths = new Map<string, string>();
function tokenFilePath(mountPath: string): string {
  let p = tokenFilePaths.get(mountPath);
  if (p === undefined) {
    p = path.posix.join(mountPath, WEB_IDENTITY_TOKEN_FILE);
    if (tokenFilePaths.size < 16) tokenFilePaths.set(mountPath, p);
  }
  return p;
}

/** A ServiceAccount annotation or a ConfigMap entry: a projected token for STS's AssumeRoleWithWebIdentity. */
function webIdentityResolution(
  input: ResolveInput,
  flags: InjectionFlags,
  withPodExpiration: PodExpiration,
): Resolution | undefined {
  const choice = webIdentityChoice(input, flags);
  if (!choice) return undefined;
  const { source, roleARN, audience, regionalSts, fingerprint } = choice;
  const { namespace, serviceAccount } = input;
  return {
    identity: { namespace, serviceAccount, mode: 'WebIdentity', source, roleARN, audience, fingerprint },
    injection: {
      mode: 'WebIdentity',
      roleARN,
      audience,
      regionalSts,
      expirationSeconds: withPodExpiration(choice.expiration),
      region: flags.awsDefaultRegion,
      volumeName: WEB_IDENTITY_VOLUME,
      mountPath: flags.tokenMountPath,
      tokenFileName: WEB_IDENTITY_TOKEN_FILE,
      tokenFilePath: tokenFilePath(flags.tokenMountPath),
      fullUri: flags.containerCredentialsFullUri,
    },
  };
}
