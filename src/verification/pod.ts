// What a gated Pod declares and how it is released (verification.md §9.1, §9.2 step 7, §9.3). Pure.
import path from 'node:path';
import type { Json } from '../kube/client.ts';
import type { IdentityMode } from '../identity/sources.ts';
import { escapePointer } from '../identity/patch.ts';
import { checkRoleArn } from '../aws/arn.ts';
import { quoteBounded } from '../runtime/text.ts';
import { GATE_NAME, VERIFICATION_ANNOTATION } from './verified-identity.ts';

/** One distinct identity a Pod's containers declare. CC Pods carry no role: it comes from the owner association. */
export interface DeclaredIdentity {
  mode: IdentityMode;
  /** Web identity only. */
  roleARN?: string;
  /** '' means the API server's default audiences (no `audience` on the token source). */
  audience: string;
}

/** The compact view of a gated Pod the verifier keeps in its cache. */
export interface GatedPod {
  namespace: string;
  name: string;
  uid: string;
  /** The release patch is pinned to it: the Pod released is the Pod judged. */
  resourceVersion: string;
  serviceAccount: string;
  creationMs: number;
  deleting: boolean;
  gateIndex: number;
  verification?: string;
  /** Whether `/metadata/annotations` exists: a JSON Patch must add the map before a key in it. */
  hasAnnotations: boolean;
  declared: DeclaredIdentity[];
  /** The first container problem found while reading the declaration, if any. */
  problem?: string;
}

function envValue(c: Json, name: string): string | undefined {
  const e = Array.isArray(c?.env) ? c.env.find((x: Json) => x?.name === name) : undefined;
  return typeof e?.value === 'string' ? e.value : undefined;
}

/** The audience of the projected ServiceAccount token mounted at the token file's directory. */
function audienceFor(spec: Json, container: Json, tokenFile: string): string | undefined {
  // Windows containers use drive letters and backslashes; compare as POSIX paths.
  const posix = (p: string) => p.replace(/\\/g, '/').replace(/^[A-Za-z]:/, '');
  const file = posix(tokenFile);
  const dir = path.posix.dirname(file);
  const base = path.posix.basename(file);
  const mount = (container?.volumeMounts ?? []).find((m: Json) => typeof m?.mountPath === 'string' && posix(m.mountPath).replace(/\/+$/, '') === dir);
  if (!mount) return undefined;
  const vol = (spec?.volumes ?? []).find((v: Json) => v?.name === mount.name);
  const sources: Json[] = vol?.projected?.sources ?? [];
  const sat = sources.find((s) => s?.serviceAccountToken && (s.serviceAccountToken.path === base || sources.length === 1));
  if (!sat) return undefined;
  return typeof sat.serviceAccountToken.audience === 'string' ? sat.serviceAccountToken.audience : '';
}

export function gateIndex(pod: Json): number {
  const gates = pod?.spec?.schedulingGates;
  return Array.isArray(gates) ? gates.findIndex((g: Json) => g?.name === GATE_NAME) : -1;
}

/** Each distinct (mode, role, audience) in init and regular containers (§9.1). */
export function declaredIdentities(pod: Json): { declared: DeclaredIdentity[]; problem?: string } {
  const spec = pod?.spec ?? {};
  const containers: Json[] = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  const out = new Map<string, DeclaredIdentity>();
  let problem: string | undefined;
  for (const c of containers) {
    const role = envValue(c, 'AWS_ROLE_ARN');
    const wiFile = envValue(c, 'AWS_WEB_IDENTITY_TOKEN_FILE');
    const ccUri = envValue(c, 'AWS_CONTAINER_CREDENTIALS_FULL_URI');
    const ccFile = envValue(c, 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE');
    let id: DeclaredIdentity | undefined;
    if (role && wiFile) {
      const audience = audienceFor(spec, c, wiFile);
      if (audience === undefined) problem ??= `container "${c.name}": no projected token volume is mounted for ${wiFile}`;
      else id = { mode: 'WebIdentity', roleARN: role, audience };
    } else if (ccUri && ccFile) {
      const audience = audienceFor(spec, c, ccFile);
      if (audience === undefined) problem ??= `container "${c.name}": no projected token volume is mounted for ${ccFile}`;
      else id = { mode: 'ContainerCredentials', audience };
    }
    if (id) out.set(`${id.mode}|${id.roleARN ?? ''}|${id.audience}`, id);
  }
  return { declared: [...out.values()], problem };
}

/**
 * A declared role that is not an IAM role ARN holds the Pod as unreadable, so no key, log line or exchange ever
 * carries an unbounded value (docs/verified-start.md, "Role ARNs").
 */
function invalidRole(declared: DeclaredIdentity[]): string | undefined {
  for (const d of declared) {
    const c = d.roleARN === undefined ? undefined : checkRoleArn(d.roleARN);
    if (c && !c.ok) return `env AWS_ROLE_ARN ${quoteBounded(d.roleARN)}: ${c.rule}`;
  }
  return undefined;
}

export function toGatedPod(pod: Json): GatedPod {
  const m = pod?.metadata ?? {};
  const derived = declaredIdentities(pod);
  const badRole = invalidRole(derived.declared);
  const { declared, problem } = badRole ? { declared: [], problem: derived.problem ?? badRole } : derived;
  return {
    namespace: m.namespace,
    name: m.name,
    uid: m.uid,
    resourceVersion: m.resourceVersion ?? '',
    serviceAccount: pod?.spec?.serviceAccountName || pod?.spec?.serviceAccount || 'default',
    creationMs: Date.parse(m.creationTimestamp ?? '') || 0,
    deleting: !!m.deletionTimestamp,
    gateIndex: gateIndex(pod),
    verification: m.annotations?.[VERIFICATION_ANNOTATION],
    hasAnnotations: !!m.annotations && typeof m.annotations === 'object',
    declared,
    problem,
  };
}

/**
 * The release patch: a `test` pins the gate at its index so a concurrent change fails with 422 instead of removing
 * another gate; only the gate is touched, and the annotation says why it went.
 */
export function releasePatch(pod: Pick<GatedPod, 'gateIndex'>, hasAnnotations: boolean): Json[] {
  const i = pod.gateIndex;
  return [
    { op: 'test', path: `/spec/schedulingGates/${i}`, value: { name: GATE_NAME } },
    { op: 'remove', path: `/spec/schedulingGates/${i}` },
    annotationOp('verified', hasAnnotations),
  ];
}

export function annotationOp(value: 'verified' | 'failed', hasAnnotations: boolean): Json {
  return hasAnnotations
    ? { op: 'add', path: `/metadata/annotations/${escapePointer(VERIFICATION_ANNOTATION)}`, value }
    : { op: 'add', path: '/metadata/annotations', value: { [VERIFICATION_ANNOTATION]: value } };
}

/** Per-identity retry delay: initial·2^(n-1) capped (5 s while throttled), ±20 % jitter (§9.3). */
export function verifyBackoffMs(
  failures: number,
  o: { initialMs: number; maxMs: number; throttled: boolean },
  random: () => number = Math.random,
): number {
  const cap = o.throttled ? Math.max(o.maxMs, 5_000) : o.maxMs;
  const base = Math.min(cap, o.initialMs * 2 ** Math.max(0, failures - 1));
  return Math.max(1, Math.round(base * (1 + 0.2 * (2 * random() - 1))));
}
