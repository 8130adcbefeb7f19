// The identity a running or pending Pod has, against the identity its sources declare now and the proof Lanyard
// holds for it (docs/identities.md). Pure: a compact view of the Pod and the current sources in, a state out. Used by
// the reconciler in `lanyard controller`, by `lanyard get identities` and by `lanyard doctor`, so all three say the
// same thing about a Pod.
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { Pod, PodSpec } from 'kubernetes-types/core/v1.js';
import type { VerifiedIdentity } from '../verification/types.ts';
import type {
  AssociationIdentity,
  IdentityMode,
  IdentitySourceKind,
  ResolvedIdentity,
} from '../identity/sources.ts';
import { distinctIdentities, podCredentials, type CredentialOptions } from '../identity/pod-credentials.ts';
import { parseSkipContainers } from '../identity/annotations.ts';
import type { PolicyDecision } from '../verification/policy.ts';
import {
  GATE_NAME,
  OPT_OUT_ANNOTATION,
  VERIFICATION_ANNOTATION,
  verifiedEntryTrusted,
  verifiedIdentityName,
  type IdentityKey,
} from '../verification/verified-identity.ts';

/**
 * `ok`: the Pod uses the identity declared now, and it was proven. `missing`: a source declares an identity now but the
 * Pod has none (it was created before the ServiceAccount annotation or the association). `stale`: the Pod uses another
 * identity than the one declared now (or one no source declares any more). `denied`: an IdentityPolicy forbids what
 * the Pod uses, or what is declared for a Pod that has none (reason PolicyDenied). `unverified`: the Pod runs with an identity Lanyard never proved (opted out, verification failed,
 * admitted with the gate off). `verifying`: the Pod waits at the gate for the verifier.
 */
export type IdentityState = 'ok' | 'missing' | 'stale' | 'denied' | 'unverified' | 'verifying';
export const IDENTITY_STATES: readonly IdentityState[] = [
  'ok',
  'missing',
  'stale',
  'denied',
  'unverified',
  'verifying',
];
/** The states a user must act on (Events, `doctor`). */
export const PROBLEM_STATES: ReadonlySet<IdentityState> = new Set([
  'missing',
  'stale',
  'denied',
  'unverified',
]);
/** The states a rollout restart can fix: a new Pod is injected with the identity declared now. */
export const REPAIRABLE_STATES: ReadonlySet<IdentityState> = new Set(['missing', 'stale']);

export const REPAIR_ANNOTATION = 'lanyard.dev/identity-repair';
/** Written on the workload's Pod template by a repair, like `kubectl rollout restart` writes its own key. */
export const RESTARTED_AT_ANNOTATION = 'lanyard.dev/identity-restarted-at';
export const KUBECTL_RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';
export const SKIP_LABEL = 'eks.amazonaws.com/skip-pod-identity-webhook';
const PROBE_LABEL = 'lanyard.dev/probe';

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';
export interface OwnerRef {
  kind: string;
  name: string;
}

/** One distinct identity a Pod's containers use. */
export interface UsedIdentity {
  mode: IdentityMode;
  /** Web identity only: the role the container names. */
  roleARN?: string;
  audience: string;
}

/** What the reconciler keeps of a Pod: enough to decide, nothing more (10,000 Pods stay small). */
export interface PodView {
  namespace: string;
  name: string;
  uid: string;
  serviceAccount: string;
  creationMs: number;
  phase: string;
  /** The controller owner reference (ReplicaSet, StatefulSet, DaemonSet, Job, ...). */
  owner?: OwnerRef;
  gated: boolean;
  verification?: string;
  optOut: boolean;
  used: UsedIdentity[];
  /** A way to credentials whose role cannot be read from the spec. */
  unreadable?: string;
  /** The Pod carries the webhook's token volume: its identity came from an injection, not from its own spec. */
  injected: boolean;
}

export interface ViewOptions {
  credentials: CredentialOptions;
  annotationPrefix: string;
  /** Token volume names the webhook injects (`aws-iam-token`, `--container-credentials-token-volume-name`). */
  injectedVolumes: readonly string[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The Pod as the reconciler sees it, or undefined when it is not followed: finished or terminating, a Lanyard probe,
 * labelled to skip the webhook, or with every container skipped by `<prefix>/skip-containers`. Typed as the `Pod` the
 * API server stores; each field is still checked where it is read, so a malformed object yields what it always did.
 */
export function toPodView(pod: Pod | undefined, o: ViewOptions): PodView | undefined {
  const m: ObjectMeta = isObject(pod?.metadata) ? pod.metadata : {};
  const spec: Partial<PodSpec> = isObject(pod?.spec) ? pod.spec : {};
  const phase = String(pod?.status?.phase ?? 'Pending');
  if (phase !== 'Pending' && phase !== 'Running' && phase !== 'Unknown') return undefined;
  if (m.deletionTimestamp) return undefined;
  const labels = isObject(m.labels) ? m.labels : {};
  if (labels[PROBE_LABEL] === 'true' || SKIP_LABEL in labels) return undefined;
  const annotations: Record<string, string | undefined> = isObject(m.annotations) ? m.annotations : {};
  const skipText = annotations[`${o.annotationPrefix}/skip-containers`];
  const skip = parseSkipContainers(typeof skipText === 'string' ? skipText : undefined);
  const containers = [
    ...(Array.isArray(spec.initContainers) ? spec.initContainers : []),
    ...(Array.isArray(spec.containers) ? spec.containers : []),
  ];
  if (skip.size > 0 && containers.every((c) => skip.has(c?.name))) return undefined;
  const creds = podCredentials(pod, o.credentials);
  const ref = (Array.isArray(m.ownerReferences) ? m.ownerReferences : []).find((r) => r?.controller === true);
  const bad = creds.unreadable[0];
  const verification = annotations[VERIFICATION_ANNOTATION];
  return {
    namespace: String(m.namespace ?? ''),
    name: String(m.name ?? ''),
    uid: String(m.uid ?? ''),
    serviceAccount: spec.serviceAccountName || spec.serviceAccount || 'default',
    creationMs: Date.parse(m.creationTimestamp ?? '') || 0,
    phase,
    ...(ref ? { owner: { kind: String(ref.kind), name: String(ref.name) } } : {}),
    gated: Array.isArray(spec.schedulingGates) && spec.schedulingGates.some((g) => g?.name === GATE_NAME),
    ...(typeof verification === 'string' ? { verification } : {}),
    optOut: annotations[OPT_OUT_ANNOTATION] === 'false',
    used: distinctIdentities(creds.identities).map((i) =>
      i.mode === 'WebIdentity'
        ? { mode: i.mode, roleARN: i.roleARN, audience: i.audience }
        : { mode: i.mode, audience: i.audience },
    ),
    ...(bad ? { unreadable: `container "${bad.container.name}": ${bad.field}: ${bad.reason}` } : {}),
    injected: (Array.isArray(spec.volumes) ? spec.volumes : []).some((v) =>
      o.injectedVolumes.includes(v?.name),
    ),
  };
}

/** The current sources of the Pod's pair, read by the caller from its caches. */
export interface DecideInput {
  pod: PodView;
  /** What the sources declare for the pair now (docs/webhook.md#where-an-identity-comes-from); undefined when none does. */
  declared?: ResolvedIdentity;
  /** Fingerprint of `declared`'s source (docs/verified-start.md, the verified set). */
  declaredFingerprint?: string;
  /** The pair's owner association: the role container credentials get. */
  association?: AssociationIdentity;
  policy(roleARN: string | undefined, targetRoleARN: string | undefined): PolicyDecision;
  /** The VerifiedIdentity of that name in the Pod's namespace. */
  verified(name: string): VerifiedIdentity | undefined;
  /** This process saw a proof for the Pod earlier (a VerifiedIdentity since expired): see docs/adr/0900. */
  provenEarlier?: boolean;
  /** This process saw the Pod from its creation on, so a Pod without proof was admitted without one. */
  observedSinceCreation?: boolean;
  nowMs: number;
}

export interface PodIdentity {
  state: IdentityState;
  /** The source that declares the pair's identity now, or `pod` for a role the Pod names by hand, or `none`. */
  source: IdentitySourceKind | 'pod' | 'none';
  mode?: IdentityMode;
  /** The role the Pod uses (container credentials: the association's); '' when it uses none. */
  role: string;
  /** The role declared now, when it differs from `role` or the Pod uses none. */
  declaredRole?: string;
  /** One sentence: why the Pod is in this state and what to do. Never a token. */
  message: string;
  /** A fresh VerifiedIdentity vouches for the Pod's identity now: the caller remembers it past the entry's expiry. */
  proven?: boolean;
  /** Why, for `denied`: `PolicyDenied`, the reason the associations controller writes for the same policy decision. */
  reason?: typeof POLICY_DENIED;
}

/** The reason of a policy denial, as the associations controller and the verifier name it (docs/adr/0202). */
export const POLICY_DENIED = 'PolicyDenied';

const keyOfUsed = (u: UsedIdentity, sa: string, a: AssociationIdentity | undefined): IdentityKey =>
  u.mode === 'WebIdentity'
    ? { mode: u.mode, serviceAccount: sa, roleARN: u.roleARN, audience: u.audience }
    : {
        mode: u.mode,
        serviceAccount: sa,
        roleARN: a?.roleARN,
        targetRoleARN: a?.targetRoleARN,
        audience: u.audience,
      };

const roleOf = (k: Pick<IdentityKey, 'roleARN' | 'targetRoleARN'>) => k.targetRoleARN || k.roleARN || '';
const display = (mode: IdentityMode | undefined, role: string) =>
  `${mode ?? 'no identity'}${role ? ` ${role}` : mode === 'ContainerCredentials' ? ' <role from the association>' : ''}`;
const SOURCE_TEXT: Record<IdentitySourceKind, string> = {
  association: 'PodIdentityAssociation',
  identities_file: 'identities file',
  service_account: 'ServiceAccount annotation',
  configmap: 'kOps ConfigMap entry',
  configmap_wildcard: 'kOps ConfigMap wildcard entry',
};

function matches(u: UsedIdentity, d: ResolvedIdentity): boolean {
  if (u.mode !== d.mode || u.audience !== d.audience) return false;
  // Container credentials follow the association whatever the Pod says; web identity names its role.
  return u.mode === 'ContainerCredentials' || (u.roleARN ?? '') === (d.roleARN ?? '');
}

/**
 * The Pod's state. First match wins: missing, denied, stale, verifying, unverified, ok. A Pod without the identity
 * declared now is `denied` (reason PolicyDenied), not `missing`, when no IdentityPolicy allows that identity.
 */
export function decideIdentity(i: DecideInput): PodIdentity | undefined {
  const { pod, declared } = i;
  const who = `ServiceAccount ${pod.namespace}/${pod.serviceAccount}`;
  if (pod.used.length === 0 && !pod.unreadable) {
    if (!declared) return undefined; // no identity used, none declared: not Lanyard's business
    return withoutIdentity(i, declared, who);
  }
  const keys = pod.used.map((u) => keyOfUsed(u, pod.serviceAccount, i.association));
  const mode = pod.used[0]?.mode;
  const role = keys.map(roleOf).find((r) => r) ?? '';
  const base: Used = { source: declared?.source ?? 'pod', mode, role };
  return (
    deniedUse(i, keys, base) ??
    unreadableUse(pod, base) ??
    staleUse(i, who, base) ??
    gateState(pod, base) ??
    proofState(i, keys, base)
  );
}

/** What a Pod that uses an identity is shown with, whatever its state. */
type Used = Pick<PodIdentity, 'source' | 'mode' | 'role'>;

/** A Pod that uses no identity while one is declared now: `missing`, or `denied` when no IdentityPolicy allows it. */
function withoutIdentity(i: DecideInput, declared: ResolvedIdentity, who: string): PodIdentity {
  const declaredRole = roleOf(declared);
  const by =
    declared.source === 'association' && i.association
      ? `PodIdentityAssociation ${i.association.objectNamespace}/${i.association.objectName}`
      : `the ${SOURCE_TEXT[declared.source]}`;
  // A declared identity no IdentityPolicy allows is not missing: a restart would not bring it (the webhook refuses
  // such a Pod, and the associations controller keeps a denied association out of EKS with reason PolicyDenied).
  const allowed = i.policy(declared.roleARN, declared.targetRoleARN);
  if (!allowed.allowed) {
    return {
      state: 'denied',
      reason: POLICY_DENIED,
      source: declared.source,
      mode: declared.mode,
      role: '',
      declaredRole,
      message:
        `${POLICY_DENIED}: ${who} declares ${display(declared.mode, declaredRole)} (${by}), which no IdentityPolicy allows ` +
        `(${allowed.message}); the Pod runs without it and a restart would not give it: change the IdentityPolicy or the ${by.replace(/^the /, '')}`,
    };
  }
  return {
    state: 'missing',
    source: declared.source,
    mode: declared.mode,
    role: '',
    declaredRole,
    message:
      `${who} declares ${display(declared.mode, declaredRole)} (${by}), but the Pod was created without it and uses ` +
      'whatever the SDK chain finds (the node role): restart the workload (or set lanyard.dev/identity-repair: restart)',
  };
}

/** `denied`: an IdentityPolicy forbids an identity the Pod uses. */
function deniedUse(i: DecideInput, keys: IdentityKey[], base: Used): PodIdentity | undefined {
  for (const k of keys) {
    const d = i.policy(k.roleARN, k.targetRoleARN);
    if (!d.allowed)
      return {
        ...base,
        state: 'denied',
        reason: POLICY_DENIED,
        message: `${d.message}; the Pod still runs with it (a policy never revokes running Pods): delete or restart it`,
      };
  }
  return undefined;
}

function unreadableUse(pod: PodView, base: Used): PodIdentity | undefined {
  if (!pod.unreadable) return undefined;
  return {
    ...base,
    state: 'unverified',
    message: `the Pod's role cannot be read from its spec (${pod.unreadable}), so it was never proven`,
  };
}

/** `stale`: the Pod uses another identity than the one declared now, or an injected one nothing declares any more. */
function staleUse(i: DecideInput, who: string, base: Used): PodIdentity | undefined {
  const { pod, declared } = i;
  if (declared && !pod.used.some((u) => matches(u, declared))) {
    const declaredRole = roleOf(declared);
    return {
      ...base,
      state: 'stale',
      declaredRole,
      message:
        `${who} now declares ${display(declared.mode, declaredRole)} (${SOURCE_TEXT[declared.source]}), ` +
        `but the Pod uses ${display(base.mode, base.role)}, declared when it started: restart the workload`,
    };
  }
  if (!declared && pod.injected) {
    return {
      ...base,
      state: 'stale',
      message: `no source declares an identity for ${who} any more, but the Pod still uses ${display(base.mode, base.role)}, injected when it started: restart or delete it`,
    };
  }
  return undefined;
}

/** A Pod held at the gate: `verifying`, or `unverified` once its verification failed past the deadline. */
function gateState(pod: PodView, base: Used): PodIdentity | undefined {
  if (!pod.gated) return undefined;
  if (pod.verification === 'failed')
    return {
      ...base,
      state: 'unverified',
      message:
        'verification failed past the deadline; the Pod is held at the gate (see its IdentityNotVerified Events)',
    };
  return {
    ...base,
    state: 'verifying',
    message: 'held at the gate until the verifier proves the identity',
  };
}

/** A started Pod with the identity declared now: `ok` when proven (or when this process cannot tell), else `unverified`. */
function proofState(i: DecideInput, keys: IdentityKey[], base: Used): PodIdentity {
  const { pod, declared } = i;
  if (pod.verification === 'verified')
    return { ...base, state: 'ok', message: 'proven before the Pod started' };
  const trusted = (k: IdentityKey) =>
    i.declaredFingerprint !== undefined &&
    verifiedEntryTrusted(i.verified(verifiedIdentityName(k)), k, i.declaredFingerprint, i.nowMs);
  if (!pod.optOut && pod.verification !== 'failed') {
    if (declared && keys.every(trusted))
      return { ...base, state: 'ok', message: 'proven by a current VerifiedIdentity', proven: true };
    if (i.provenEarlier)
      return { ...base, state: 'ok', message: 'proven by a VerifiedIdentity when the Pod was admitted' };
    // A Pod admitted from the verified set carries no annotation; once its entry expired, only a Pod watched since its
    // creation is known to have had no proof (docs/adr/0900).
    if (!i.observedSinceCreation)
      return {
        ...base,
        state: 'ok',
        message: 'admitted before this controller started; no verification failure on record',
      };
  }
  const why = pod.optOut
    ? `the Pod opted out (${OPT_OUT_ANNOTATION}: "false")`
    : pod.verification === 'failed'
      ? 'its verification failed'
      : 'it was admitted without the gate and no VerifiedIdentity vouched for it (is the webhook running with --identity-gate?)';
  return {
    ...base,
    state: 'unverified',
    message: `${display(base.mode, base.role)} was never proven for this Pod: ${why}`,
  };
}

/** Whether repair is on for a workload: its own annotation wins over its namespace's (`restart` on, anything else off). */
export function repairEnabled(
  workloadAnnotation: string | undefined,
  namespaceAnnotation: string | undefined,
): boolean {
  return (workloadAnnotation ?? namespaceAnnotation) === 'restart';
}

export type RepairDecision =
  | { kind: 'restart' }
  | { kind: 'in_progress' }
  /** The Pods created after Lanyard's last restart are still wrong: restarting again would loop. */
  | { kind: 'ineffective'; message: string }
  | { kind: 'none' };

/**
 * One workload's repair. `problemPods` are the creation times of its Pods in a repairable state. A restart is made at
 * most once per generation of Pods: while any of them predates the last restart, it is in progress; once all are
 * newer, the restart did not help (the webhook is down, or the policy refuses the identity) and is not repeated.
 */
export function decideRepair(o: {
  enabled: boolean;
  problemPods: readonly number[];
  lastRestartMs?: number;
}): RepairDecision {
  if (!o.enabled || o.problemPods.length === 0) return { kind: 'none' };
  if (o.lastRestartMs === undefined) return { kind: 'restart' };
  if (o.problemPods.some((c) => c < o.lastRestartMs!)) return { kind: 'in_progress' };
  return {
    kind: 'ineffective',
    message:
      `Pods created after Lanyard's restart at ${new Date(o.lastRestartMs).toISOString()} still lack the identity ` +
      `declared now; not restarting again (check the webhook and the IdentityPolicy; remove ${RESTARTED_AT_ANNOTATION} from the Pod template to allow another restart)`,
  };
}

/** The merge patch of a rollout restart, as `kubectl rollout restart` writes it, plus Lanyard's own timestamp. */
export function restartPatch(now: Date): { spec: { template: { metadata: ObjectMeta } } } {
  const t = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    spec: {
      template: { metadata: { annotations: { [KUBECTL_RESTARTED_AT]: t, [RESTARTED_AT_ANNOTATION]: t } } },
    },
  };
}

/** The workload a Pod belongs to: its StatefulSet or DaemonSet, or the Deployment owning its ReplicaSet. */
export function workloadOf(
  owner: OwnerRef | undefined,
  replicaSetOwner: (rs: string) => OwnerRef | undefined,
): { kind: WorkloadKind; name: string } | undefined {
  if (!owner) return undefined;
  if (owner.kind === 'StatefulSet' || owner.kind === 'DaemonSet')
    return { kind: owner.kind, name: owner.name };
  if (owner.kind === 'ReplicaSet') {
    const d = replicaSetOwner(owner.name);
    if (d?.kind === 'Deployment') return { kind: 'Deployment', name: d.name };
  }
  return undefined;
}

export const WORKLOAD_PATHS: Record<WorkloadKind, string> = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
};

/** The Event reason for a state a user must see. */
export const EVENT_REASONS: Record<IdentityState, string | undefined> = {
  missing: 'IdentityMissing',
  stale: 'IdentityStale',
  denied: 'IdentityDenied',
  unverified: 'IdentityUnverified',
  ok: undefined,
  verifying: undefined,
};
