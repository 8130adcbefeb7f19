// The verifier's decide step (docs/verified-start.md): pure functions from what was gathered (and what an exchange
// answered) to what happens next. No I/O, no clock, no randomness: the caller passes `now` and `random`.
import type { VerifiedIdentity, VerifiedIdentitySpec } from './types.ts';
import type { IdentityMode } from '../identity/sources.ts';
import { roleArnFromAssumed, roleArnMatches } from '../aws/arn.ts';
import { verifyBackoffMs, type GatedPod } from './pod.ts';
import { verifiedEntryTrusted, verifiedIdentityName } from './verified-identity.ts';
import type { CurrentIdentity, IdentityGroup } from './verifier-gather.ts';

export type FailureOutcome = 'mismatch' | 'aws_error' | 'token_error' | 'policy_denied';
export type Outcome = 'verified' | 'cached' | FailureOutcome;

/** What an exchange answered (the AWS module drops the credentials and returns ARNs only). */
export interface ExchangeAnswer {
  assumedRoleArn: string;
  /** eks-auth only: whom the token was exchanged for, and through which association. */
  subject?: { namespace: string; serviceAccount: string };
  associationId?: string;
}

export type ExchangeJudgement = { ok: true; learntRole?: string } | { ok: false; message: string };

/**
 * Whether an exchange proves the group's identity: eks-auth must answer for the group's ServiceAccount through the
 * association the sources name, and the role must be the effective one (the target role when there is one). An
 * identity that declares no role is judged on the role the exchange named (`learntRole`).
 */
export function judgeExchange(
  g: IdentityGroup,
  cur: CurrentIdentity,
  answer: ExchangeAnswer,
): ExchangeJudgement {
  const expected = cur.key.targetRoleARN || cur.key.roleARN;
  const roleText = expected ?? '<unknown>';
  const actual = answer.assumedRoleArn;
  if (
    answer.subject &&
    (answer.subject.namespace !== g.namespace || answer.subject.serviceAccount !== g.serviceAccount)
  ) {
    return {
      ok: false,
      message:
        `ContainerCredentials exchange for role ${roleText} answered for ` +
        `${answer.subject.namespace}/${answer.subject.serviceAccount}, not ${g.namespace}/${g.serviceAccount}`,
    };
  }
  const wantId = cur.association?.associationID;
  if (g.mode === 'ContainerCredentials' && wantId && answer.associationId !== wantId) {
    return {
      ok: false,
      message:
        `ContainerCredentials exchange for role ${roleText} used association ` +
        `${answer.associationId}, not ${wantId} (stale)`,
    };
  }
  if (expected) {
    if (!roleArnMatches(expected, actual))
      return {
        ok: false,
        message: `${g.mode} exchange returned another role: expected ${expected}, actual ${actual}`,
      };
    return { ok: true };
  }
  const learntRole = roleArnFromAssumed(actual);
  if (!learntRole)
    return { ok: false, message: `${g.mode} exchange returned ${actual}, which is not an assumed-role ARN` };
  return { ok: true, learntRole };
}

/**
 * A fresh VerifiedIdentity with the current fingerprint releases without an exchange. An identity that declares no
 * role is judged on the role the entry's exchange named, as a fresh exchange would be (`learntRole`).
 */
export function verifiedSetHit(
  vi: VerifiedIdentity | undefined,
  cur: CurrentIdentity,
  now: number,
): { learntRole?: string; name: string } | undefined {
  if (!cur.fingerprint || !verifiedEntryTrusted(vi, cur.key, cur.fingerprint, now)) return undefined;
  const expected = cur.key.targetRoleARN || cur.key.roleARN;
  return {
    name: verifiedIdentityName(cur.key),
    learntRole: expected ? undefined : roleArnFromAssumed(String(vi!.spec!.assumedRoleARN)),
  };
}

/** Why a VerifiedIdentity must go (expired, or its sources now resolve otherwise), or undefined to keep it. */
export function staleVerifiedEntry(
  vi: VerifiedIdentity,
  now: number,
  current: (g: IdentityGroup) => CurrentIdentity,
  keepForMs = 0,
): 'expired' | 'identity source changed' | undefined {
  const s: Partial<VerifiedIdentitySpec> = vi.spec ?? {};
  // With --verify-outage-policy=release-recently-proven an expired entry is kept for the grace window (keepForMs): it
  // is the proof an outage release rests on; admission never trusts it (expiresAt). docs/adr/0309.
  const keepUntil = Math.max(
    Date.parse(s.expiresAt as string),
    Date.parse(s.verifiedAt as string) + keepForMs,
  );
  if (!(keepUntil > now)) return 'expired';
  if (s.mode !== 'WebIdentity' && s.mode !== 'ContainerCredentials') return undefined;
  const cur = current({
    namespace: vi.metadata!.namespace as string,
    serviceAccount: s.serviceAccount as string,
    mode: s.mode as IdentityMode,
    roleARN: s.mode === 'WebIdentity' ? (s.roleARN as string) : '',
    audience: s.audience ?? '',
  });
  const stillSame = cur.fingerprint === s.fingerprint && verifiedIdentityName(cur.key) === vi.metadata!.name;
  return stillSame ? undefined : 'identity source changed';
}

/** Per-group failure memory: consecutive failures and the last IdentityNotVerified per Pod (text and time). */
export interface GroupFailures {
  failures: number;
  notified: Map<string, { text: string; at: number }>;
}

export interface FailureSettings {
  verifyDeadlineMs: number;
  verifyRetryAfterDeadlineMs: number;
  verifyBackoffInitialMs: number;
  verifyBackoffMaxMs: number;
}

/** What a failed attempt does, Pod by Pod, and when the group is tried again. */
export interface FailurePlan {
  /** Pods that get an `IdentityNotVerified` Event now (a new text, or a minute since the last one). */
  notify: GatedPod[];
  /** Pods past their deadline not yet marked failed: annotate, `IdentityVerificationFailed`, report a timeout. */
  timedOut: GatedPod[];
  requeueAfterMs: number;
  /** The text without request ids: the same failure on every retry. */
  gist: string;
}

export const EVENT_REPEAT_MS = 60_000;

/**
 * Plans one failed attempt of a group (docs/verified-start.md, "Retries and deadlines"). `st` is the group's memory
 * with this failure already counted; the notified texts are updated here (the plan is carried out right after).
 */
export function planFailure(o: {
  st: GroupFailures;
  pods: GatedPod[];
  outcome: FailureOutcome;
  message: string;
  throttled: boolean;
  now: number;
  settings: FailureSettings;
  random: () => number;
  podKey: (p: GatedPod) => string;
}): FailurePlan {
  const { st, now, settings } = o;
  // Request ids differ on every attempt; they must not turn each retry into a new Event.
  const gist = o.message.replace(/ \(request id [^)]*\)/g, '');
  const notify: GatedPod[] = [];
  const timedOut: GatedPod[] = [];
  let beforeDeadline = false;
  let nearestDeadline = Infinity;
  for (const p of o.pods) {
    const last = st.notified.get(o.podKey(p));
    if (!last || last.text !== gist || now - last.at >= EVENT_REPEAT_MS) {
      st.notified.set(o.podKey(p), { text: gist, at: now });
      notify.push(p);
    }
    const deadline = p.creationMs + settings.verifyDeadlineMs;
    if (now < deadline) {
      beforeDeadline = true;
      nearestDeadline = Math.min(nearestDeadline, deadline - now);
    } else if (p.verification !== 'failed') {
      timedOut.push(p);
    }
  }
  if (!beforeDeadline) return { notify, timedOut, gist, requeueAfterMs: settings.verifyRetryAfterDeadlineMs };
  // A policy change requeues at once, so a denial only needs waking for the deadline.
  const delay =
    o.outcome === 'policy_denied'
      ? settings.verifyRetryAfterDeadlineMs
      : verifyBackoffMs(
          st.failures,
          {
            initialMs: settings.verifyBackoffInitialMs,
            maxMs: settings.verifyBackoffMaxMs,
            throttled: o.throttled,
          },
          o.random,
        );
  // Wake up at the nearest deadline too, so the `failed` annotation is not late.
  return { notify, timedOut, gist, requeueAfterMs: Math.min(delay, Math.max(1, nearestDeadline + 1)) };
}

/** The association outcome an attempt's failure reports (none for a policy denial). */
export function associationResult(outcome: FailureOutcome): 'RoleMismatch' | 'ExchangeFailed' | undefined {
  if (outcome === 'policy_denied') return undefined;
  return outcome === 'mismatch' ? 'RoleMismatch' : 'ExchangeFailed';
}
