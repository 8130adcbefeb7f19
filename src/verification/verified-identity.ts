// The verified set (docs/verified-start.md#how-it-works): the VerifiedIdentity name, its fingerprint, and whether an entry may be
// trusted. Pure; shared by the admission guard (webhook side) and the verifier (controller side), so both compute
// byte-identical names and fingerprints.
import { createHash } from 'node:crypto';
import type { VerifiedIdentity } from './types.ts';
import type { FingerprintInput, IdentityMode } from '../identity/sources.ts';

export const VI_API = '/apis/lanyard.dev/v1alpha1';
export const GATE_NAME = 'lanyard.dev/identity';
export const VERIFICATION_ANNOTATION = 'lanyard.dev/identity-verification';
export const OPT_OUT_ANNOTATION = 'lanyard.dev/verify';
/** An entry closer than this to expiry is not trusted at admission (docs/verified-start.md#how-it-works row 5). */
export const EXPIRY_MARGIN_MS = 5_000;

export interface IdentityKey {
  mode: IdentityMode;
  serviceAccount: string;
  roleARN?: string;
  targetRoleARN?: string;
  /** '' means the API server's default audiences. */
  audience: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** `wi-`/`cc-` + 20 hex digits of SHA-256(serviceAccount \n roleARN \n targetRoleARN \n audience). */
export function verifiedIdentityName(id: IdentityKey): string {
  const prefix = id.mode === 'WebIdentity' ? 'wi-' : 'cc-';
  const h = sha256(`${id.serviceAccount}\n${id.roleARN ?? ''}\n${id.targetRoleARN ?? ''}\n${id.audience}`);
  return prefix + h.slice(0, 20);
}

/** JSON with object keys sorted at every level and undefined members dropped. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
}

const CM_FIELDS: Record<string, string> = {
  rolearn: 'RoleARN',
  audience: 'Audience',
  useregionalsts: 'UseRegionalSTS',
  tokenexpiration: 'TokenExpiration',
};

/**
 * A kOps ConfigMap entry reduced to the fields the webhook reads (names case-insensitive as Go's decoder, later
 * spelling wins, null absent, unknown ignored). Idempotent, so it accepts the raw or an already normalised entry.
 */
export function normaliseConfigMapEntry(entry: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return out;
  for (const [k, v] of Object.entries(entry)) {
    const f = CM_FIELDS[k.toLowerCase()];
    if (!f) continue;
    if (v === null) delete out[f];
    else out[f] = v;
  }
  return out;
}

function fingerprintDocument(f: FingerprintInput): Record<string, unknown> {
  switch (f.source) {
    case 'service_account':
      return {
        source: f.source,
        saUid: f.saUid,
        roleARN: f.roleARN,
        audience: f.audience,
        regionalSts: f.regionalSts,
      };
    case 'configmap':
    case 'configmap_wildcard': {
      let entry: unknown;
      try {
        entry = JSON.parse(f.entryJson);
      } catch {
        entry = f.entryJson;
      }
      return {
        source: f.source,
        key: f.key,
        entry: typeof entry === 'object' ? normaliseConfigMapEntry(entry) : entry,
      };
    }
    case 'association':
      return {
        source: f.source,
        uid: f.uid,
        associationID: f.associationID ?? '',
        roleARN: f.roleARN ?? '',
        targetRoleARN: f.targetRoleARN ?? '',
        disableSessionTags: f.disableSessionTags,
        // Only when set, so fingerprints of associations without a session policy stay what they were.
        ...(f.policy ? { policy: f.policy } : {}),
      };
    case 'identities_file':
      return { source: 'file' };
  }
}

/** SHA-256 hex of the canonical JSON of what the identity's source says (docs/verified-start.md#how-it-works table). */
export function fingerprintOf(f: FingerprintInput): string {
  return sha256(canonicalJson(fingerprintDocument(f)));
}

/** True when a stored VerifiedIdentity vouches for this identity now (docs/verified-start.md#how-it-works row 5, docs/verified-start.md#how-it-works). */
/** The entry is about exactly this identity (mode, ServiceAccount, roles, audience), whatever its age. */
export function sameIdentity(vi: VerifiedIdentity | undefined, id: IdentityKey): boolean {
  const s = vi?.spec;
  if (!s) return false;
  if (s.mode !== id.mode || s.serviceAccount !== id.serviceAccount) return false;
  if ((s.roleARN ?? '') !== (id.roleARN ?? '') || (s.targetRoleARN ?? '') !== (id.targetRoleARN ?? ''))
    return false;
  return (s.audience ?? '') === id.audience;
}

export function verifiedEntryTrusted(
  vi: VerifiedIdentity | undefined,
  id: IdentityKey,
  fingerprint: string,
  nowMs: number,
): boolean {
  const s = vi?.spec;
  if (!s || !sameIdentity(vi, id)) return false;
  const exp = Date.parse(s.expiresAt);
  if (!Number.isFinite(exp) || exp - nowMs <= EXPIRY_MARGIN_MS) return false;
  return s.fingerprint === fingerprint;
}

/** The object the controller upserts after a successful exchange. */
export function buildVerifiedIdentity(o: {
  namespace: string;
  id: IdentityKey;
  fingerprint: string;
  assumedRoleARN: string;
  verifiedAtMs: number;
  ttlMs: number;
  podName: string;
}): VerifiedIdentity & { metadata: { name: string; namespace: string } } {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'VerifiedIdentity',
    metadata: {
      name: verifiedIdentityName(o.id),
      namespace: o.namespace,
      labels: { 'app.kubernetes.io/managed-by': 'lanyard' },
    },
    spec: {
      serviceAccount: o.id.serviceAccount,
      mode: o.id.mode,
      roleARN: o.id.roleARN ?? '',
      targetRoleARN: o.id.targetRoleARN ?? '',
      audience: o.id.audience,
      fingerprint: o.fingerprint,
      assumedRoleARN: o.assumedRoleARN,
      verifiedAt: iso(o.verifiedAtMs),
      expiresAt: iso(o.verifiedAtMs + o.ttlMs),
      verifiedWith: `Pod/${o.podName}`,
    },
  };
}
