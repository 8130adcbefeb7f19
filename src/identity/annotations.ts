// Parsing of the `<prefix>/` annotations on ServiceAccounts and Pods (docs/webhook.md#annotations). Pure: strings in, values out.
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { checkRoleArn } from '../core/arn.ts';

/** What the webhook keeps of a ServiceAccount: its `<prefix>/` settings, already parsed. */
export interface SaSettings {
  uid: string;
  /** Non-empty after composition, else undefined. */
  roleARN?: string;
  /** Raw annotation value; '' is kept (it omits the audience), undefined means "use the flag". */
  audience?: string;
  regionalSts?: boolean;
  tokenExpiration?: number;
  /** Why `role-arn` is not an IAM role ARN (IAM's grammar and limits): Pods of this ServiceAccount are refused. */
  roleArnProblem?: string;
  /** Annotation values that were present but invalid, for a debug log line. */
  invalid?: string[];
}

/** Shared by every ServiceAccount without `<prefix>/` annotations, so those cost only their cache key. */
export const NO_SETTINGS: SaSettings = Object.freeze({ uid: '' });

/** Partition and account used by `--compose-role-arn` (from IMDS at startup). */
export interface RoleComposition {
  partition: string;
  accountId: string;
}

export const MIN_TOKEN_EXPIRATION = 600;
// Above 2^32 counts as invalid (docs/webhook.md#annotations); there is deliberately no upper clamp below that.
const MAX_TOKEN_EXPIRATION = 4294967296;

/** Go's strconv.ParseBool set. */
export function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/** Decimal integer with optional sign, no spaces or units; below 600 becomes 600; invalid gives undefined. */
export function parseTokenExpiration(v: string): number | undefined {
  if (!/^[+-]?\d+$/.test(v)) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n > MAX_TOKEN_EXPIRATION) return undefined;
  return Math.max(MIN_TOKEN_EXPIRATION, n);
}

/** Comma list; names trimmed and stripped of one pair of double quotes; empty names dropped. */
export function parseSkipContainers(v: string | undefined): Set<string> {
  const out = new Set<string>();
  if (v === undefined) return out;
  for (const part of v.split(',')) {
    let name = part.trim();
    if (name.length >= 2 && name.startsWith('"') && name.endsWith('"')) name = name.slice(1, -1).trim();
    if (name) out.add(name);
  }
  return out;
}

export function partitionForRegion(region: string): string {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  if (region.startsWith('us-isob-')) return 'aws-iso-b';
  if (region.startsWith('us-iso-')) return 'aws-iso';
  if (region.startsWith('eusc-')) return 'aws-eusc';
  return 'aws';
}

export function composeRoleArn(value: string, c: RoleComposition | undefined): string {
  if (!c || value === '' || value.includes('arn:')) return value;
  return `arn:${c.partition}:iam::${c.accountId}:role/${value}`;
}

/**
 * Parses a ServiceAccount (full object or PartialObjectMetadata) into its settings. Returns NO_SETTINGS when it
 * carries no `<prefix>/` annotation, so the cache shares one value for them.
 */
export function parseServiceAccount(
  sa: { metadata?: ObjectMeta } | null | undefined,
  prefix: string,
  composition?: RoleComposition,
): SaSettings {
  const annotations = sa?.metadata?.annotations;
  if (!annotations || typeof annotations !== 'object') return NO_SETTINGS;
  const p = `${prefix}/`;
  let any = false;
  const s: SaSettings = { uid: String(sa?.metadata?.uid ?? '') };
  const invalid: string[] = [];
  for (const [k, v] of Object.entries(annotations)) {
    if (!k.startsWith(p) || typeof v !== 'string') continue;
    const suffix = k.slice(p.length);
    switch (suffix) {
      case 'role-arn': {
        any = true;
        const arn = composeRoleArn(v, composition);
        if (arn !== '') {
          s.roleARN = arn;
          const check = checkRoleArn(arn);
          if (!check.ok) s.roleArnProblem = check.rule;
        }
        break;
      }
      case 'audience':
        any = true;
        s.audience = v;
        break;
      case 'sts-regional-endpoints': {
        any = true;
        const b = parseGoBool(v);
        if (b === undefined) invalid.push(k);
        else s.regionalSts = b;
        break;
      }
      case 'token-expiration': {
        any = true;
        const n = parseTokenExpiration(v);
        if (n === undefined) invalid.push(k);
        else s.tokenExpiration = n;
        break;
      }
    }
  }
  if (!any) return NO_SETTINGS;
  if (invalid.length) s.invalid = invalid;
  return s;
}
