// Why a Pod is still held at the identity gate, from the verifier's own Warning Events (docs/verified-start.md, "What
// you will see"). Pure: Events as the core v1 API lists them in, the latest note per Pod out. Used by `lanyard doctor`
// and by the promotion controller, which copies the note into the Promotion's status.message where project users,
// who cannot read the agent namespace's Events, see it (docs/promotions.md).
import type { Event as CoreEvent } from 'kubernetes-types/core/v1.js';
import type { Event as EventsEvent } from 'kubernetes-types/events/v1.js';

/** An Event as core v1 or events.k8s.io/v1 lists it: the fields of either (each read where it is set). */
export type AnyEvent = Partial<CoreEvent> & Partial<EventsEvent>;

/** `reportingController` of the verifier's Events; core v1 lists it as `reportingComponent` (a selectable field). */
export const VERIFIER_COMPONENT = 'lanyard.dev/verifier';
/** The field selector that lists only the verifier's Events. */
export const VERIFIER_EVENTS_SELECTOR = `reportingComponent=${VERIFIER_COMPONENT}`;
const FAILURE_REASONS = new Set(['IdentityNotVerified', 'IdentityVerificationFailed']);

export interface GateNote {
  podUid: string;
  podName: string;
  reason: string;
  note: string;
  /** When the Event (or the last of its series) was observed. */
  atMs: number;
}

function timeOf(e: AnyEvent): number {
  for (const t of [
    e?.series?.lastObservedTime,
    e?.lastTimestamp,
    e?.eventTime,
    e?.metadata?.creationTimestamp,
  ]) {
    const ms: number = typeof t === 'string' ? Date.parse(t) : NaN;
    if (Number.isFinite(ms)) return ms;
  }
  return 0;
}

/** A verifier Warning about a Pod's identity, or undefined for any other Event. */
export function gateNoteOf(e: AnyEvent): GateNote | undefined {
  const component = e?.reportingComponent ?? e?.reportingController;
  const regarding = e?.involvedObject ?? e?.regarding;
  const note = e?.message ?? e?.note;
  const reason = e?.reason;
  if (component !== VERIFIER_COMPONENT || e?.type !== 'Warning' || !reason || !FAILURE_REASONS.has(reason))
    return undefined;
  if (regarding?.kind !== 'Pod' || typeof regarding.uid !== 'string' || typeof note !== 'string')
    return undefined;
  // `IdentityVerificationFailed` repeats the last attempt's error after its own preamble: keep the error alone.
  const text =
    reason === 'IdentityVerificationFailed'
      ? note.replace(/^identity not verified within [^;]*; last error: /, '')
      : note;
  return {
    podUid: regarding.uid,
    podName: String(regarding.name ?? ''),
    reason,
    note: text,
    atMs: timeOf(e),
  };
}

/** The latest note per Pod UID. */
export function latestGateNotes(notes: Iterable<GateNote | undefined>): Map<string, GateNote> {
  const out = new Map<string, GateNote>();
  for (const n of notes) {
    if (!n) continue;
    const cur = out.get(n.podUid);
    if (!cur || n.atMs >= cur.atMs) out.set(n.podUid, n);
  }
  return out;
}

/**
 * A hint for the cause the note names, from the troubleshooting table of docs/verified-start.md; undefined when the
 * note matches none of its rows.
 */
export function gateFixHint(note: string): string | undefined {
  if (/PolicyDenied/.test(note))
    return 'an IdentityPolicy forbids this identity: change the policy or the role (lanyard doctor --policy-preview)';
  if (/ResourceNotFoundException/.test(note))
    return 'eks-auth does not see an association for this cluster, namespace and ServiceAccount: check kubectl get lpia -n <namespace> is Synced and --cluster-name is right';
  if (/InvalidIdentityToken|No OpenIDConnect provider/.test(note))
    return "register the cluster's OIDC issuer as an IAM OIDC provider";
  if (/AccessDenied/.test(note))
    return "the role's trust policy does not admit this ServiceAccount: check its principal (pods.eks.amazonaws.com with sts:AssumeRole and sts:TagSession, or the OIDC provider) and its :sub and :aud conditions";
  if (/another role|expected .*, actual/.test(note))
    return "the exchange returned another role: check the association's role and target role";
  if (/TokenRequest/.test(note))
    return 'the controller could not mint a token: check the lanyard-controller ClusterRole and that the ServiceAccount exists';
  if (/cannot read the Pod's identity/.test(note))
    return "set the Pod's AWS variables with literal values (docs/security.md)";
  return undefined;
}
