// The gate's outage policy (docs/verified-start.md, "When AWS is down"; docs/adr/0309): whether a gated Pod may be
// released without a fresh exchange because AWS answers with throttling, 5xx or timeouts. Pure: the failed exchange,
// the identity's last proof (its VerifiedIdentity, expired or not) and the settings in, one decision out.
import { isThrottling } from '../aws/errors.ts';

/** `hold`: nothing is released without a successful exchange. `release-recently-proven`: see decideOutageRelease. */
export type OutagePolicy = 'hold' | 'release-recently-proven';
export const OUTAGE_POLICIES: readonly OutagePolicy[] = ['hold', 'release-recently-proven'];

/** What a failed exchange says about AWS: it is unavailable (`outage`), or it answered and said no (`answer`). */
export type FailureKind = 'outage' | 'answer';

/**
 * An outage is throttling (code or 429), a 5xx, or no HTTP answer at all (timeout, reset, refused: status 0). Every
 * other answer is AWS's word on this identity (AccessDenied, not found, invalid token, a role mismatch) and never
 * releases a Pod.
 */
export function classifyExchangeFailure(e: { code: string; httpStatus: number }): FailureKind {
  if (isThrottling(e.code, e.httpStatus)) return 'outage';
  if (e.httpStatus >= 500 || e.httpStatus === 0) return 'outage';
  return 'answer';
}

export interface OutageInput {
  policy: OutagePolicy;
  graceMs: number;
  nowMs: number;
  /** undefined when the attempt did not reach AWS's answer stage (policy, token): never released. */
  failure: FailureKind | undefined;
  /** The fingerprint computed now from the identity's sources; undefined when it cannot be computed. */
  fingerprint: string | undefined;
  /** The identity's VerifiedIdentity, from the cache, expired or not. */
  lastProof?: { fingerprint: string; verifiedAtMs: number };
}

export type OutageDecision =
  | { release: true; provenAgoMs: number }
  | {
      release: false;
      why: 'policy_hold' | 'not_an_outage' | 'never_proven' | 'sources_changed' | 'proof_too_old';
    };

/**
 * Release only when all hold: the policy allows it, AWS is unavailable (not answering no), the identity was proven by
 * a real exchange within the grace window, and its sources are unchanged since (same fingerprint). The IdentityPolicy
 * is checked by the caller as for any release.
 */
export function decideOutageRelease(i: OutageInput): OutageDecision {
  if (i.policy === 'hold') return { release: false, why: 'policy_hold' };
  if (i.failure !== 'outage') return { release: false, why: 'not_an_outage' };
  if (!i.lastProof || !Number.isFinite(i.lastProof.verifiedAtMs))
    return { release: false, why: 'never_proven' };
  if (!i.fingerprint || i.lastProof.fingerprint !== i.fingerprint)
    return { release: false, why: 'sources_changed' };
  const age = i.nowMs - i.lastProof.verifiedAtMs;
  if (age < 0 || age > i.graceMs) return { release: false, why: 'proof_too_old' };
  return { release: true, provenAgoMs: age };
}
