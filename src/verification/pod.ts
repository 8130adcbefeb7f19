// What a gated Pod declares and how it is released (docs/verified-start.md, docs/security.md §3). Pure.
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { IdentityMode } from '../identity/sources.ts';
import { escapePointer } from '../identity/patch.ts';
import { checkRoleArn } from '../aws/arn.ts';
import { quoteBounded } from '../runtime/text.ts';
import {
  credentialOptions,
  distinctIdentities,
  podCredentials,
  type CredentialOptions,
} from '../identity/pod-credentials.ts';
import { GATE_NAME, VERIFICATION_ANNOTATION } from './verified-identity.ts';
import { backoffDelay } from '../core/backoff.ts';

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

export function gateIndex(pod: Pod): number {
  const gates: unknown = pod?.spec?.schedulingGates;
  return Array.isArray(gates) ? gates.findIndex((g: { name?: unknown } | null) => g?.name === GATE_NAME) : -1;
}

/**
 * Each distinct (mode, role, audience) any container (init, regular, ephemeral) can use, derived as the SDKs read the
 * spec (docs/security.md §3). A way to credentials that cannot be read is a `problem`: the Pod then declares nothing
 * the verifier could prove, so it stays gated (it is never released on the strength of its other identities).
 */
export function declaredIdentities(
  pod: unknown,
  o: CredentialOptions = credentialOptions(),
): { declared: DeclaredIdentity[]; problem?: string } {
  const { identities, unreadable } = podCredentials(pod, o);
  const first = unreadable[0];
  if (first)
    return { declared: [], problem: `container "${first.container.name}": ${first.field}: ${first.reason}` };
  return {
    declared: distinctIdentities(identities).map((i) =>
      i.mode === 'WebIdentity'
        ? { mode: i.mode, roleARN: i.roleARN, audience: i.audience }
        : { mode: i.mode, audience: i.audience },
    ),
  };
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

/** A Pod as the API server sent it; its metadata is read as the API server always fills it in. */
export function toGatedPod(pod: Pod, o?: CredentialOptions): GatedPod {
  const m = pod?.metadata ?? {};
  const derived = declaredIdentities(pod, o);
  const badRole = invalidRole(derived.declared);
  const { declared, problem } = badRole ? { declared: [], problem: derived.problem ?? badRole } : derived;
  return {
    namespace: m.namespace!,
    name: m.name!,
    uid: m.uid!,
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
export function releasePatch(
  pod: Pick<GatedPod, 'gateIndex'>,
  hasAnnotations: boolean,
  value: ReleaseAnnotation = 'verified',
): ReleaseOp[] {
  const i = pod.gateIndex;
  return [
    { op: 'test', path: `/spec/schedulingGates/${i}`, value: { name: GATE_NAME } },
    { op: 'remove', path: `/spec/schedulingGates/${i}` },
    annotationOp(value, hasAnnotations),
  ];
}

/** One JSON Patch (RFC 6902) operation of a release or of the failure annotation. */
export type ReleaseOp = { op: 'test' | 'add'; path: string; value: unknown } | { op: 'remove'; path: string };

/** `released-during-outage`: released by the outage policy on an earlier proof, not a fresh exchange (docs/adr/0309). */
export type ReleaseAnnotation = 'verified' | 'released-during-outage';

export function annotationOp(value: ReleaseAnnotation | 'failed', hasAnnotations: boolean): ReleaseOp {
  return hasAnnotations
    ? { op: 'add', path: `/metadata/annotations/${escapePointer(VERIFICATION_ANNOTATION)}`, value }
    : { op: 'add', path: '/metadata/annotations', value: { [VERIFICATION_ANNOTATION]: value } };
}

/** Per-identity retry delay: initial·2^(n-1) capped (5 s while throttled), ±20 % jitter (docs/verified-start.md#controller-flags). */
export function verifyBackoffMs(
  failures: number,
  o: { initialMs: number; maxMs: number; throttled: boolean },
  random: () => number = Math.random,
): number {
  const maxMs = o.throttled ? Math.max(o.maxMs, 5_000) : o.maxMs;
  return Math.max(1, backoffDelay(failures, { initialMs: o.initialMs, maxMs, jitter: 0.2 }, random));
}
