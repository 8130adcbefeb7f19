// The kOps ConfigMap document (docs/webhook.md#the-kops-configmap) and the container-credentials identities file (docs/webhook.md#the-identities-file-eks-pod-identity). Pure parsers:
// text in, table out, with one warning per skipped key or item so the edge can log them.
import { truncate } from '../core/text.ts';

export interface ConfigMapEntry {
  roleARN?: string;
  /** undefined: missing (flag applies); '' omits the audience. */
  audience?: string;
  useRegionalSTS?: boolean;
  /** 0 or undefined means the flag. */
  tokenExpiration?: number;
  /** Canonical JSON of the entry, for the verification fingerprint. */
  canonical: string;
}

export type ConfigMapTable = ReadonlyMap<string, ConfigMapEntry>;
export const EMPTY_TABLE: ConfigMapTable = new Map();

export interface ParseWarning {
  key: string;
  reason: string;
}

export type ConfigMapParse =
  { ok: true; table: ConfigMapTable; warnings: ParseWarning[] } | { ok: false; error: string };

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Why a ConfigMap key is invalid, or undefined when it is valid. */
export function configMapKeyProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length !== 2) return 'key must be <namespace>/<serviceAccount> with exactly one "/"';
  const [ns, name] = parts as [string, string];
  if (ns !== '*' && !(ns.length <= 63 && DNS1123_LABEL.test(ns)))
    return 'namespace must be a DNS-1123 label or the literal "*"';
  if (!(name.length <= 253 && DNS1123_SUBDOMAIN.test(name)))
    return 'ServiceAccount name must be a DNS-1123 subdomain';
  return undefined;
}

type FieldName = 'RoleARN' | 'Audience' | 'UseRegionalSTS' | 'TokenExpiration';
const FIELDS: Record<string, FieldName> = {
  rolearn: 'RoleARN',
  audience: 'Audience',
  useregionalsts: 'UseRegionalSTS',
  tokenexpiration: 'TokenExpiration',
};

/** One entry, Go-decoder style: case-insensitive names, later duplicates win, unknown ignored, null absent. */
export function parseConfigMapEntry(value: unknown): ConfigMapEntry | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return 'entry must be a JSON object';
  const picked: Partial<Record<FieldName, unknown>> = {};
  for (const [k, v] of Object.entries(value)) {
    const f = FIELDS[k.toLowerCase()];
    if (!f) continue;
    if (v === null) delete picked[f];
    else picked[f] = v;
  }
  const e: ConfigMapEntry = { canonical: '' };
  if (picked.RoleARN !== undefined) {
    if (typeof picked.RoleARN !== 'string') return 'RoleARN must be a string';
    // Kept as written, like the reference; admission refuses a Pod whose entry is not an IAM role ARN, naming it.
    e.roleARN = picked.RoleARN;
  }
  if (picked.Audience !== undefined) {
    if (typeof picked.Audience !== 'string') return 'Audience must be a string';
    e.audience = picked.Audience;
  }
  if (picked.UseRegionalSTS !== undefined) {
    if (typeof picked.UseRegionalSTS !== 'boolean') return 'UseRegionalSTS must be a boolean';
    e.useRegionalSTS = picked.UseRegionalSTS;
  }
  if (picked.TokenExpiration !== undefined) {
    const t = picked.TokenExpiration;
    if (typeof t !== 'number' || !Number.isSafeInteger(t)) return 'TokenExpiration must be an integer';
    e.tokenExpiration = t;
  }
  e.canonical = JSON.stringify({
    RoleARN: e.roleARN ?? null,
    Audience: e.audience ?? null,
    UseRegionalSTS: e.useRegionalSTS ?? null,
    TokenExpiration: e.tokenExpiration ?? null,
  });
  return e;
}

/** `text` as a JSON object, else the error: `invalid JSON: …`, or `notObject` for JSON that is not an object. */
function parseJsonObject(
  text: string,
  notObject: string,
): { ok: true; doc: object } | { ok: false; error: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { ok: false, error: `invalid JSON: ${(e as Error).message}` };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return { ok: false, error: notObject };
  return { ok: true, doc };
}

/**
 * Rebuilds the table from the `config` document. A bad key or entry is skipped with a warning; for a bad entry the
 * previous valid entry of that key is kept, so a typo does not revoke a working identity. `undefined` text (no
 * `config` key) gives an empty table.
 */
export function parseConfigMapDocument(
  text: string | undefined,
  previous: ConfigMapTable = EMPTY_TABLE,
): ConfigMapParse {
  if (text === undefined) return { ok: true, table: EMPTY_TABLE, warnings: [] };
  const parsed = parseJsonObject(
    text,
    'document must be a JSON object keyed by "<namespace>/<serviceAccount>"',
  );
  if (!parsed.ok) return parsed;
  const doc = parsed.doc;
  const table = new Map<string, ConfigMapEntry>();
  const warnings: ParseWarning[] = [];
  for (const [key, value] of Object.entries(doc)) {
    const keyProblem = configMapKeyProblem(key);
    if (keyProblem) {
      // The key is echoed bounded: a warning must not carry a hostile megabyte into the log.
      warnings.push({ key: truncate(key), reason: keyProblem });
      continue;
    }
    const entry = parseConfigMapEntry(value);
    if (typeof entry === 'string') {
      const prev = previous.get(key);
      warnings.push({ key, reason: prev ? `${entry}; previous entry kept` : entry });
      if (prev) table.set(key, prev);
      continue;
    }
    table.set(key, entry);
  }
  return { ok: true, table, warnings };
}

export type IdentitiesParse =
  { ok: true; pairs: ReadonlySet<string>; warnings: ParseWarning[] } | { ok: false; error: string };

/** `{"identities":[{"namespace":…,"serviceAccount":…}]}`; missing (undefined) or blank text is the empty set. */
export function parseIdentitiesFile(text: string | undefined): IdentitiesParse {
  const pairs = new Set<string>();
  if (text === undefined || text.trim() === '') return { ok: true, pairs, warnings: [] };
  const parsed = parseJsonObject(text, 'document must be a JSON object');
  if (!parsed.ok) return parsed;
  const doc = parsed.doc;
  let list: unknown;
  for (const [k, v] of Object.entries(doc)) if (k.toLowerCase() === 'identities') list = v;
  const warnings: ParseWarning[] = [];
  if (list === undefined || list === null) return { ok: true, pairs, warnings };
  if (!Array.isArray(list)) return { ok: false, error: 'identities must be an array' };
  list.forEach((item, i) => {
    let ns: unknown;
    let sa: unknown;
    if (item && typeof item === 'object' && !Array.isArray(item)) {
      for (const [k, v] of Object.entries(item)) {
        const lk = k.toLowerCase();
        if (lk === 'namespace') ns = v;
        else if (lk === 'serviceaccount') sa = v;
      }
    }
    if (typeof ns !== 'string' || typeof sa !== 'string' || !ns || !sa) {
      warnings.push({ key: `identities[${i}]`, reason: 'needs string "namespace" and "serviceAccount"' });
      return;
    }
    pairs.add(`${ns}/${sa}`);
  });
  return { ok: true, pairs, warnings };
}
