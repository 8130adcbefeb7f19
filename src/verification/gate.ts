// The gate decision at admission (verification.md §7), as a pure function over cached state.
import type { Json } from '../kube/client.ts';
import type { AdmissionGuard, GateSkipReason, ResolvedIdentity } from '../identity/sources.ts';
import { decidePolicy, type PolicySet } from './policy.ts';
import { OPT_OUT_ANNOTATION, fingerprintOf, verifiedEntryTrusted } from './verified-identity.ts';

export type GateDecision = ReturnType<AdmissionGuard['decide']>;

export interface GateInput {
  identity: ResolvedIdentity;
  pod: Json;
  policies: PolicySet;
  namespaceLabels: Record<string, string> | undefined;
  /** The VerifiedIdentity named after the identity, from the cache (undefined when absent). */
  verified: Json | undefined;
  gateEnabled: boolean;
  allowOptOut: boolean;
  nowMs: number;
}

/** Rows 1–6 of §7, in order. */
export function decideGate(i: GateInput): GateDecision {
  const { identity } = i;
  const policy = decidePolicy(i.policies, {
    namespace: identity.namespace,
    namespaceLabels: i.namespaceLabels,
    serviceAccount: identity.serviceAccount,
    roleARN: identity.roleARN,
    targetRoleARN: identity.targetRoleARN,
  });
  if (!policy.allowed) return { kind: 'deny', message: policy.message };
  if (!i.gateEnabled) return { kind: 'allow', gate: false };
  const skip = (skipReason: GateSkipReason): GateDecision => ({ kind: 'allow', gate: false, skipReason });
  if (i.allowOptOut && i.pod?.metadata?.annotations?.[OPT_OUT_ANNOTATION] === 'false') return skip('opt_out');
  if (typeof i.pod?.spec?.nodeName === 'string' && i.pod.spec.nodeName !== '') return skip('prebound');
  if (verifiedEntryTrusted(i.verified, identity, fingerprintOf(identity.fingerprint), i.nowMs)) return skip('verified');
  return { kind: 'allow', gate: true };
}
