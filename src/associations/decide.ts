// The pure decision core of the association reconciler (docs/associations.md#what-the-controller-does, docs/associations.md#deletion, docs/associations.md#how-verified-is-obtained): owner selection, AWS
// error classification, drift and tag comparison, the next step for an object, and the Verified/Ready conditions.
// Plain objects in, decisions out; the reconciler (controller.ts) performs them.
import { conditionUnchanged, getCondition, type Condition } from '../kube/conditions.ts';
import type { Association } from '../aws/index.ts';
import type { AssociationRecord, DesiredAssociation, LanyardAssociation } from './model.ts';
import type { DeniedAssociationAction } from '../config/associations.ts';
import { checkRoleArn } from '../core/arn.ts';
import { FINALIZER } from './model.ts';
import { errorMessage } from '../core/errors.ts';

// ---- Owner ------------------------------------------------------------------------------------------------------

/** Oldest wins: creationTimestamp, then (for equal timestamps, second resolution) kind and namespace/name. */
function compareAge(a: AssociationRecord, b: AssociationRecord): number {
  if (a.creationTimestamp !== b.creationTimestamp) return a.creationTimestamp < b.creationTimestamp ? -1 : 1;
  const an = `${a.objectName}\u0000${a.objectNamespace}\u0000${a.kind}`;
  const bn = `${b.objectName}\u0000${b.objectNamespace}\u0000${b.kind}`;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/** The owner among the associations of one pair: deleting objects no longer count. */
export function selectOwner(candidates: Iterable<AssociationRecord>): AssociationRecord | undefined {
  let best: AssociationRecord | undefined;
  for (const c of candidates) {
    if (c.deleting) continue;
    if (!best || compareAge(c, best) < 0) best = c;
  }
  return best;
}

export function describeRecord(
  r: Pick<AssociationRecord, 'kind' | 'objectNamespace' | 'objectName'>,
): string {
  const kind = r.kind === 'ack' ? 'ACK PodIdentityAssociation' : 'PodIdentityAssociation';
  return `${kind} ${r.objectNamespace}/${r.objectName}`;
}

// ---- AWS errors -------------------------------------------------------------------------------------------------

export type EksOperation = 'create' | 'describe' | 'list' | 'update' | 'delete' | 'tag' | 'untag';

/** The structural shape of src/aws's typed EKS errors. */
export interface AwsErrorLike {
  code: string;
  httpStatus?: number;
  message: string;
  retryable?: boolean;
  requestId?: string;
}

export type SyncedFalseReason =
  | 'PolicyDenied'
  | 'RolePropagating'
  | 'RoleNotFound'
  | 'InvalidSpec'
  | 'AccessDenied'
  | 'ClusterNotFound'
  | 'LimitExceeded'
  | 'Duplicate'
  | 'AWSError'
  | 'DeleteFailed';

export type ErrorClass =
  | { kind: 'adopt'; associationId?: string }
  | { kind: 'rolePropagating' }
  | { kind: 'notFound' }
  | { kind: 'terminal'; reason: SyncedFalseReason }
  | { kind: 'retryable'; reason: 'AWSError' };

const ROLE_MISSING = /role\b.*\bdoes not exist/i;
const ASSOCIATION_ID = /\ba-[0-9a-z]{17}\b/;
// EKS refuses a reused clientRequestToken with other input: the association exists, made by an earlier attempt.
const TOKEN_REUSED = /token|idempot/i;

/** The table of docs/associations.md#what-the-controller-does: which AWS answers adopt, retry (bounded or not), recreate or stop. */
export function classifyAwsError(op: EksOperation, e: AwsErrorLike): ErrorClass {
  switch (e.code) {
    case 'ResourceInUseException':
      if (op === 'create') return { kind: 'adopt', associationId: ASSOCIATION_ID.exec(e.message)?.[0] };
      return { kind: 'terminal', reason: 'InvalidSpec' };
    case 'InvalidParameterException':
      if ((op === 'create' || op === 'update') && ROLE_MISSING.test(e.message))
        return { kind: 'rolePropagating' };
      return { kind: 'terminal', reason: 'InvalidSpec' };
    case 'InvalidRequestException':
      if (op === 'create' && TOKEN_REUSED.test(e.message)) return { kind: 'adopt' };
      return { kind: 'terminal', reason: 'InvalidSpec' };
    case 'ResourceNotFoundException':
      return op === 'create' || op === 'list'
        ? { kind: 'terminal', reason: 'ClusterNotFound' }
        : { kind: 'notFound' };
    case 'ResourceLimitExceededException':
      return { kind: 'terminal', reason: 'LimitExceeded' };
    case 'AccessDeniedException':
      return { kind: 'terminal', reason: 'AccessDenied' };
    default:
      // Throttling, 5xx, timeouts, resets, and codes this table does not know (credential expiry and the like, which
      // an operator fixes without touching the object): retry with backoff.
      return { kind: 'retryable', reason: 'AWSError' };
  }
}

// ---- Role propagation -------------------------------------------------------------------------------------------

export interface RolePropagation {
  generation: number;
  firstErrorAt: number;
  attempts: number;
}

/**
 * Bounded retry while IAM propagates a new role: 1, 2, 4 … s capped at 15 s, until `timeoutMs` after the first such
 * error for this generation; then RoleNotFound (terminal).
 */
export function nextRolePropagation(
  prev: RolePropagation | undefined,
  generation: number,
  now: number,
  timeoutMs: number,
): { state: RolePropagation; retryInMs?: number } {
  const state: RolePropagation =
    prev && prev.generation === generation
      ? { ...prev, attempts: prev.attempts + 1 }
      : { generation, firstErrorAt: now, attempts: 1 };
  if (now - state.firstErrorAt >= timeoutMs) return { state };
  const delay = Math.min(15_000, 1000 * 2 ** (state.attempts - 1));
  return { state, retryInMs: Math.min(delay, state.firstErrorAt + timeoutMs - now) };
}

// ---- Next step --------------------------------------------------------------------------------------------------

/**
 * What happens to an association in EKS that no IdentityPolicy allows any more (`--denied-association-action`,
 * docs/adr/0202): `delete` removes it, `preview` only reports what deleting would do. A denied association is never
 * created in either mode.
 */
export type { DeniedAssociationAction } from '../config/associations.ts';

/** For a denied object: nothing exists in EKS (`none`), remove what exists (`remove`), or report only (`preview`). */
export type DeniedHandling =
  | { kind: 'none' }
  | { kind: 'remove'; associationId: string; cluster: string }
  | { kind: 'preview'; associationId: string };

export type Step =
  | { kind: 'ignore' }
  | { kind: 'releaseRetained' }
  | { kind: 'delete'; associationId?: string; cluster: string }
  | { kind: 'duplicate'; owner: AssociationRecord }
  | { kind: 'waitForDeletion'; other: AssociationRecord }
  | { kind: 'policyDenied'; message: string; handling: DeniedHandling }
  | { kind: 'invalidSpec'; message: string }
  | { kind: 'addFinalizer' }
  | { kind: 'create' }
  | { kind: 'describe'; associationId: string };

export interface StepInput {
  obj: LanyardAssociation;
  cluster: string;
  /** The pair's owner by the oldest-wins rule (docs/associations.md#what-the-controller-does). */
  owner: AssociationRecord | undefined;
  policy: { allowed: true } | { allowed: false; message: string };
  deniedAction: DeniedAssociationAction;
  /** Another object of the pair that is being deleted and will still delete its association in EKS. */
  deleting?: AssociationRecord;
}

/** Steps 1–6 of docs/associations.md#what-the-controller-does: what the reconciler does next for this object. */
export function nextStep({ obj, cluster, owner, policy, deniedAction, deleting }: StepInput): Step {
  const hasFinalizer = obj.finalizers.includes(FINALIZER);
  if (obj.deleting) {
    if (!hasFinalizer) return { kind: 'ignore' };
    if (obj.retain) return { kind: 'releaseRetained' };
    return { kind: 'delete', associationId: obj.status.associationID, cluster };
  }
  if (owner && owner.uid !== obj.uid) return { kind: 'duplicate', owner };
  // Adopting an association that its previous owner is about to delete would only see it vanish: wait until it is gone.
  if (deleting && deleting.uid !== obj.uid) return { kind: 'waitForDeletion', other: deleting };
  if (!policy.allowed) {
    const id = obj.status.associationID;
    // Without the finalizer Lanyard never wrote EKS for this object, so there is nothing of its own to remove.
    const handling: DeniedHandling =
      !id || !hasFinalizer
        ? { kind: 'none' }
        : deniedAction === 'delete'
          ? { kind: 'remove', associationId: id, cluster }
          : { kind: 'preview', associationId: id };
    return { kind: 'policyDenied', message: policy.message, handling };
  }
  const problem = specProblem(obj);
  if (problem) return { kind: 'invalidSpec', message: problem };
  if (!hasFinalizer) return { kind: 'addFinalizer' };
  if (!obj.status.associationID) return { kind: 'create' };
  return { kind: 'describe', associationId: obj.status.associationID };
}

/** The Synced message of a denied object: the policy's refusal plus what happened, or would happen, in EKS. */
export function policyDeniedMessage(
  refusal: string,
  handling: DeniedHandling,
  pair: { namespace: string; serviceAccount: string },
  /** Undefined when the Pods could not be listed. */
  runningPods: number | undefined,
): string {
  const count = runningPods === undefined ? 'an unknown number of' : String(runningPods);
  const pods = `${count} running Pod${runningPods === 1 ? '' : 's'} of ServiceAccount ${pair.namespace}/${pair.serviceAccount}`;
  switch (handling.kind) {
    case 'none':
      return `${refusal}; no association is created in EKS`;
    case 'remove':
      return `${refusal}; removed association ${handling.associationId} from EKS (${pods} used it; they get no new credentials)`;
    case 'preview':
      return `${refusal}; would remove association ${handling.associationId} from EKS, not done because --denied-association-action=preview; ${pods} use it`;
  }
}

/**
 * The clientRequestToken of a Create: the object's uid, so a repeat after a crash returns the same association. EKS
 * answers a reused token with its first answer even after that association is gone, so a Create that replaces a
 * deleted association (out of band, or removed for IdentityPolicy) derives a new, equally repeatable token from it.
 */
export function createToken(uid: string, replacing: string | undefined): string {
  return replacing ? `${uid}-${replacing}` : uid;
}

// ---- Session policy (spec.policy) -------------------------------------------------------------------------------

/** EKS's limit on an association's session policy. */
const SESSION_POLICY_MAX = 2048;

/**
 * What the controller checks before sending the spec to EKS (the CRD checks the same bounds at admission; this covers
 * objects stored before those rules): the roles against IAM's ARN grammar and limits, and spec.policy being a JSON
 * object. The policy's IAM grammar is EKS's to judge; a refusal becomes InvalidSpec naming the field.
 */
export function specProblem(
  obj: Pick<LanyardAssociation, 'spec'> & { namespace?: string },
): string | undefined {
  // ACK's spec.namespace (docs/migrate-from-ack.md): the admission policy refuses a mismatch; this covers objects
  // stored without it (policy not installed), so no association is ever made for another namespace.
  if (
    obj.spec.namespace !== undefined &&
    obj.namespace !== undefined &&
    obj.spec.namespace !== obj.namespace
  ) {
    return namespaceMismatch(obj.spec.namespace, obj.namespace);
  }
  for (const [field, value] of [
    ['roleARN', obj.spec.roleARN],
    ['targetRoleARN', obj.spec.targetRoleARN],
  ] as const) {
    if (value === undefined) continue;
    const arn = checkRoleArn(value);
    if (!arn.ok) return `spec.${field}: ${arn.rule}`;
  }
  const policy = obj.spec.policy;
  if (policy === undefined) return undefined;
  if (policy.length > SESSION_POLICY_MAX)
    return `spec.policy: must be at most ${SESSION_POLICY_MAX} characters (EKS's limit), got ${policy.length}`;
  if (!obj.spec.disableSessionTags)
    return 'spec.policy: EKS requires spec.disableSessionTags: true with a session policy';
  let doc: unknown;
  try {
    doc = JSON.parse(policy);
  } catch (e) {
    return `spec.policy: not valid JSON (${errorMessage(e)})`;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    return 'spec.policy: must be a JSON object (an IAM policy document)';
  return undefined;
}

/** The one sentence for a spec.namespace that is not the object's own (CEL admission policy and controller alike). */
export function namespaceMismatch(specNamespace: string, objectNamespace: string): string {
  return (
    `spec.namespace "${specNamespace}" must equal the object's namespace "${objectNamespace}": a Lanyard ` +
    `PodIdentityAssociation binds a ServiceAccount of its own namespace; create it in namespace "${specNamespace}" or ` +
    'remove spec.namespace (docs/migrate-from-ack.md)'
  );
}

/** An EKS refusal of an object with a session policy that is about the policy names the field it came from. */
export function refusalText(obj: Pick<LanyardAssociation, 'spec'>, awsText: string): string {
  return obj.spec.policy !== undefined && /\bpolicy\b/i.test(awsText)
    ? `spec.policy: EKS refused the session policy: ${awsText}`
    : awsText;
}

/** Two policy texts say the same when their JSON is equal; EKS may answer with other whitespace than was sent. */
export function samePolicy(a: string, b: string): boolean {
  if (a === b) return true;
  if (a === '' || b === '') return false;
  try {
    return canonical(JSON.parse(a)) === canonical(JSON.parse(b));
  } catch {
    return false;
  }
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

// ---- Drift and tags (steps 7, 8) --------------------------------------------------------------------------------

export interface FieldDrift {
  field: 'roleARN' | 'targetRoleARN' | 'disableSessionTags' | 'policy';
  observed: string;
  desired: string;
}

export interface SyncPlan {
  drift: FieldDrift[];
  /** The Update input when drift is non-empty; `targetRoleArn: ""` and `policy: ""` clear (EKS ignores null). */
  update?: { roleArn: string; targetRoleArn: string; disableSessionTags: boolean; policy: string };
  tagsToSet: Record<string, string>;
  tagKeysToRemove: string[];
}

export function planSync(
  desired: DesiredAssociation,
  observed: Pick<Association, 'roleArn' | 'targetRoleArn' | 'disableSessionTags' | 'policy' | 'tags'>,
): SyncPlan {
  const drift: FieldDrift[] = [];
  if (observed.roleArn !== desired.roleArn) {
    drift.push({ field: 'roleARN', observed: observed.roleArn, desired: desired.roleArn });
  }
  if ((observed.targetRoleArn ?? '') !== desired.targetRoleArn) {
    drift.push({
      field: 'targetRoleARN',
      observed: observed.targetRoleArn ?? '',
      desired: desired.targetRoleArn,
    });
  }
  if ((observed.disableSessionTags ?? false) !== desired.disableSessionTags) {
    drift.push({
      field: 'disableSessionTags',
      observed: String(observed.disableSessionTags ?? false),
      desired: String(desired.disableSessionTags),
    });
  }
  if (!samePolicy(observed.policy ?? '', desired.policy)) {
    drift.push({ field: 'policy', observed: observed.policy ?? '', desired: desired.policy });
  }
  const { set, remove } = diffTags(desired.tags, observed.tags ?? {});
  return {
    drift,
    update:
      drift.length > 0
        ? {
            roleArn: desired.roleArn,
            targetRoleArn: desired.targetRoleArn,
            disableSessionTags: desired.disableSessionTags,
            policy: desired.policy,
          }
        : undefined,
    tagsToSet: set,
    tagKeysToRemove: remove,
  };
}

/** Tags to (re)set and keys to remove; `aws:` tags belong to AWS and are never removed. */
export function diffTags(
  desired: Record<string, string>,
  observed: Record<string, string>,
): { set: Record<string, string>; remove: string[] } {
  const set: Record<string, string> = {};
  for (const [k, v] of Object.entries(desired)) if (observed[k] !== v) set[k] = v;
  const remove = Object.keys(observed)
    .filter((k) => !(k in desired) && !k.startsWith('aws:'))
    .sort();
  return { set, remove };
}

/** Values longer than this are cut in Event messages (a session policy may be 2 KB; Events hold 1 KB). */
const DRIFT_VALUE_MAX = 120;

export function driftText(d: FieldDrift[]): string {
  const show = (v: string) => (v.length > DRIFT_VALUE_MAX ? `${v.slice(0, DRIFT_VALUE_MAX)}…` : v);
  return d.map((x) => `${x.field}: observed "${show(x.observed)}", desired "${show(x.desired)}"`).join('; ');
}

/** The drift is out of band when the spec has not changed since the last successful sync. */
export function isOutOfBand(obj: LanyardAssociation): boolean {
  const synced = obj.status.conditions.find((c) => c.type === 'Synced');
  return obj.status.observedGeneration === obj.generation && synced?.status === 'True';
}

// ---- Verified and Ready (docs/associations.md#what-the-controller-does, docs/associations.md#how-verified-is-obtained) -------------------------------------------------------------------------------

export type Cond = Omit<Condition, 'lastTransitionTime'>;

const REPORT_REASONS = new Set(['CredentialsMatch', 'RoleMismatch', 'ExchangeFailed', 'VerificationTimeout']);

export interface VerifiedInput {
  generation: number;
  synced: boolean;
  current: Condition | undefined;
  /** A fresh VerifiedIdentity for this association's identity (docs/verified-start.md#how-it-works). */
  freshVerifiedAt?: string;
  /** Error from creating the probe Pod. */
  probeError?: string;
  /** Why no exchange can run here (association for another cluster, probe disabled). */
  waitingFor?: string;
}

/** Verified for the current generation: a verifier report for it stands; otherwise it is derived. */
export function deriveVerified(i: VerifiedInput): Cond {
  const c = i.current;
  if (c && c.observedGeneration === i.generation && REPORT_REASONS.has(c.reason)) {
    return {
      type: 'Verified',
      status: c.status,
      reason: c.reason,
      message: c.message,
      observedGeneration: i.generation,
    };
  }
  const base = { type: 'Verified', observedGeneration: i.generation } as const;
  if (!i.synced)
    return { ...base, status: 'Unknown', reason: 'NotSynced', message: 'waiting for Synced=True' };
  if (i.freshVerifiedAt) {
    return {
      ...base,
      status: 'True',
      reason: 'CredentialsMatch',
      message: `an exchange at ${i.freshVerifiedAt} returned the effective role`,
    };
  }
  if (i.probeError) return { ...base, status: 'Unknown', reason: 'ProbeFailed', message: i.probeError };
  return {
    ...base,
    status: 'Unknown',
    reason: 'Verifying',
    message: i.waitingFor ?? 'waiting for a credential exchange through the probe Pod',
  };
}

export function deriveReady(generation: number, synced: Cond, verified: Cond): Cond {
  const base = { type: 'Ready', observedGeneration: generation } as const;
  // Named as such so `kubectl wait --for=condition=Ready` users and dashboards see why, not just "not synced".
  if (synced.reason === 'PolicyDenied')
    return { ...base, status: 'False', reason: 'PolicyDenied', message: synced.message };
  if (synced.status !== 'True') {
    return {
      ...base,
      status: 'False',
      reason: 'NotSynced',
      message: `Synced is ${synced.status}: ${synced.reason}`,
    };
  }
  if (verified.status === 'True')
    return { ...base, status: 'True', reason: 'Ready', message: 'synced and verified' };
  if (verified.status === 'False') {
    return {
      ...base,
      status: 'False',
      reason: 'NotVerified',
      message: `${verified.reason}: ${verified.message}`,
    };
  }
  return { ...base, status: 'Unknown', reason: 'Verifying', message: verified.message };
}

/** Maps a verifier report to the Verified condition; undefined when the report is stale for this object. */
export function verifiedFromReport(
  obj: LanyardAssociation,
  report: {
    uid: string;
    roleARN?: string;
    targetRoleARN?: string;
    policy?: string;
    associationID?: string;
    result: string;
    message: string;
  },
): Cond | undefined {
  if (report.uid !== obj.uid) return undefined;
  // An exchange made under another session policy says nothing about this one.
  if ((report.policy ?? '') !== (obj.spec.policy ?? '')) return undefined;
  if ((report.roleARN ?? '') !== obj.spec.roleARN) return undefined;
  if ((report.targetRoleARN ?? '') !== (obj.spec.targetRoleARN ?? '')) return undefined;
  if (report.associationID && obj.status.associationID && report.associationID !== obj.status.associationID)
    return undefined;
  return {
    type: 'Verified',
    status: report.result === 'CredentialsMatch' ? 'True' : 'False',
    reason: report.result,
    message: report.message,
    observedGeneration: obj.generation,
  };
}

// ---- The controller's pass: probes, verified set, failures, status (docs/associations.md) -----------------------

/** What the controller keeps of a VerifiedIdentity. */
export interface ViRecord {
  namespace: string;
  name: string;
  serviceAccount: string;
  mode: string;
  roleARN: string;
  targetRoleARN: string;
  fingerprint: string;
  verifiedAt: string;
  expiresAt: string;
}

/** What the controller keeps of a probe Pod. */
export interface ProbeRecord {
  namespace: string;
  name: string;
  ownerUid: string;
  ownerName: string;
  generation: number;
}

/** Verified for an in-sync object, and what to do with its probe Pods after the status write. */
export interface VerificationPlan {
  verified: Cond;
  lastVerifiedTime?: string;
  deleteProbes: ProbeRecord[];
  createProbe: boolean;
}

/** An entry must outlive the decision by this much to count. */
export const EXPIRY_MARGIN_MS = 5_000;
/** A probe Pod just created may not be in the informer yet; it is remembered this long. */
export const PROBE_MEMORY_MS = 60_000;

/**
 * The verifiedAt of a VerifiedIdentity that proves this association's identity now: a ContainerCredentials exchange
 * with its fingerprint and roles, made after the pair's entries were last invalidated, not about to expire.
 */
export function freshVerifiedAt(
  records: Iterable<ViRecord>,
  obj: LanyardAssociation,
  fingerprint: string,
  invalidatedAt: number | undefined,
  now: number,
): string | undefined {
  for (const v of records) {
    if (v.namespace !== obj.namespace || v.serviceAccount !== obj.spec.serviceAccount) continue;
    if (v.mode !== 'ContainerCredentials' || v.fingerprint !== fingerprint) continue;
    if (v.roleARN !== obj.spec.roleARN || v.targetRoleARN !== (obj.spec.targetRoleARN ?? '')) continue;
    if (!(Date.parse(v.verifiedAt) > (invalidatedAt ?? 0))) continue;
    const exp = Date.parse(v.expiresAt);
    if (Number.isFinite(exp) && exp - now > EXPIRY_MARGIN_MS) return v.verifiedAt;
  }
  return undefined;
}

/** Why no exchange can verify the association from here, if so. */
export function verificationWaitingFor(
  cluster: string,
  localCluster: string,
  probe: boolean,
): string | undefined {
  if (cluster !== localCluster) {
    return `the association is for cluster "${cluster}"; only associations of "${localCluster}" (--cluster-name) can be verified from here`;
  }
  return probe
    ? undefined
    : 'waiting for a workload Pod of the ServiceAccount to be verified (--association-probe=false)';
}

export interface VerificationInput {
  /** The object as it is after this pass's write (its current association id). */
  obj: LanyardAssociation;
  /** The Verified condition in force: a report just applied, the stored one, or none after an invalidation. */
  current: Condition | undefined;
  /** The time a report just applied proved the identity. */
  reportedAt?: string;
  local: boolean;
  probe: boolean;
  waitingFor?: string;
  /** verifiedAt of a fresh verified-set entry (none when not local or just invalidated). */
  fresh?: string;
  /** The last failure to create a probe Pod. */
  probeFailure?: { generation: number; message: string; at: number };
  /** How long a probe failure is shown before the probe is tried again (the resync). */
  probeFailureMs: number;
  /** The object's probe Pods. */
  probes: ProbeRecord[];
  /** A probe Pod this process created and may not see in the cache yet. */
  remembered?: { generation: number; at: number };
  now: number;
}

/** The Verified condition and the probe Pod work; also which remembered failure and probe have expired. */
export function planVerification(
  i: VerificationInput,
): VerificationPlan & { dropProbeFailure: boolean; forgetProbe: boolean } {
  const { obj, now } = i;
  const failure = i.probeFailure;
  const failed =
    failure && failure.generation === obj.generation && now - failure.at < i.probeFailureMs
      ? failure
      : undefined;
  const dropProbeFailure = !!failure && !failed;
  const verified = deriveVerified({
    generation: obj.generation,
    synced: true,
    current: i.current,
    freshVerifiedAt: i.fresh,
    probeError: failed?.message,
    waitingFor: i.waitingFor,
  });
  let lastVerifiedTime = i.reportedAt;
  if (verified.status === 'True') {
    // Verified through the verified set: the entry's time, recorded once on the transition to True.
    const stored = getCondition(obj.status.conditions, 'Verified');
    if (!lastVerifiedTime && i.fresh && stored?.status !== 'True') lastVerifiedTime = i.fresh;
    return {
      verified,
      lastVerifiedTime,
      deleteProbes: i.probes,
      createProbe: false,
      dropProbeFailure,
      forgetProbe: false,
    };
  }
  const r = i.remembered;
  const rememberedNow = r !== undefined && now - r.at <= PROBE_MEMORY_MS;
  const probeForGen =
    i.probes.some((p) => p.generation === obj.generation) ||
    (rememberedNow && r.generation === obj.generation);
  return {
    verified,
    lastVerifiedTime,
    deleteProbes: i.probes.filter((p) => p.generation !== obj.generation),
    // After a failure, again at the next resync (or a new generation), not in a loop.
    createProbe: i.local && i.probe && !probeForGen && !i.fresh && !failed,
    dropProbeFailure,
    forgetProbe: r !== undefined && !rememberedNow,
  };
}

/** Whether the probe may be created now: not for an object being replaced or deleted, not twice for one generation. */
export function mayCreateProbe(
  obj: Pick<LanyardAssociation, 'uid' | 'generation'>,
  now: { uid?: string; deleting: boolean } | undefined,
  remembered: { generation: number; at: number } | undefined,
  probes: ProbeRecord[],
  nowMs: number,
): boolean {
  if (!now || now.deleting || now.uid !== obj.uid) return false;
  if (remembered?.generation === obj.generation && nowMs - remembered.at <= PROBE_MEMORY_MS) return false;
  return !probes.some((p) => p.generation === obj.generation);
}

/** The Event a Synced=False write raises when the condition changes (none for Duplicate). */
export function syncedFalseEvent(
  reason: SyncedFalseReason,
): { type: 'Normal' | 'Warning'; reason: string } | undefined {
  if (reason === 'PolicyDenied') return { type: 'Warning', reason: 'PolicyDenied' };
  if (reason === 'RolePropagating') return { type: 'Normal', reason: 'RolePropagating' };
  if (reason === 'Duplicate') return undefined;
  return { type: 'Warning', reason: 'SyncFailed' };
}

/** What a failed EKS step leads to: the reconcile result counted, the Synced=False written, and the retry. */
export type FailurePlan = {
  result: 'retry' | 'terminal';
  synced?: { reason: SyncedFalseReason; message: string };
  rolePropagation?: RolePropagation;
} & ({ requeueAfterMs: number } | { retryLater: string });

export function planStepFailure(i: {
  cls: ErrorClass;
  text: string;
  obj: LanyardAssociation;
  propagation: RolePropagation | undefined;
  now: number;
  rolePropagationTimeoutMs: number;
  resyncMs: number;
}): FailurePlan {
  switch (i.cls.kind) {
    case 'rolePropagating': {
      const next = nextRolePropagation(i.propagation, i.obj.generation, i.now, i.rolePropagationTimeoutMs);
      if (next.retryInMs !== undefined) {
        return {
          result: 'retry',
          rolePropagation: next.state,
          requeueAfterMs: next.retryInMs,
          synced: {
            reason: 'RolePropagating',
            message: `IAM has not propagated the role yet; retrying (${i.text})`,
          },
        };
      }
      const s = Math.round(i.rolePropagationTimeoutMs / 1000);
      return {
        result: 'terminal',
        rolePropagation: next.state,
        requeueAfterMs: i.resyncMs,
        synced: {
          reason: 'RoleNotFound',
          message: `the role still does not exist ${s}s after the first attempt: ${i.text}`,
        },
      };
    }
    case 'terminal':
      return {
        result: 'terminal',
        requeueAfterMs: i.resyncMs,
        synced: { reason: i.cls.reason, message: refusalText(i.obj, i.text) },
      };
    case 'notFound':
      // Update or tagging found the association gone: the next pass describes it and recreates it. Not at once:
      // Describe may still show it for a moment (eventual consistency).
      return { result: 'retry', requeueAfterMs: 1000 };
    default:
      return { result: 'retry', retryLater: i.text, synced: { reason: 'AWSError', message: i.text } };
  }
}

/** The status fields fixed by Create or adoption. */
export function idFields(
  cluster: string,
  a: Pick<Association, 'associationId' | 'associationArn' | 'externalId'>,
): Record<string, string | null> {
  return {
    clusterName: cluster,
    associationID: a.associationId,
    associationARN: a.associationArn,
    externalID: a.externalId ?? null,
    removedAssociationID: null,
  };
}

/** What status says after Lanyard removed a denied association from EKS (docs/adr/0202). */
export function removedFields(associationId: string): Record<string, string | null> {
  return { associationID: null, associationARN: null, externalID: null, removedAssociationID: associationId };
}

/** The id fields status does not hold yet. */
export function changedIdFields(
  status: object,
  cluster: string,
  a: Pick<Association, 'associationId' | 'associationArn' | 'externalId'>,
): Record<string, unknown> {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(idFields(cluster, a))) {
    if (((status as Record<string, unknown>)[k] ?? null) !== v) extra[k] = v;
  }
  return extra;
}

/**
 * Whether EKS was read recently enough for this pass (a reconcile for verification right after a sync): the same
 * generation and association, within half a resync. Drift is the resync's job.
 */
export function lastSeenStillGood(
  known: { generation: number; at: number; association: { associationId: string } } | undefined,
  obj: Pick<LanyardAssociation, 'generation' | 'status'>,
  now: number,
  resyncMs: number,
): boolean {
  return (
    !!known &&
    known.generation === obj.generation &&
    known.association.associationId === obj.status.associationID &&
    now - known.at < resyncMs / 2
  );
}

/** Whether status already says all of it: the three conditions, the generation and the extra fields. */
export function statusUnchanged(
  obj: Pick<LanyardAssociation, 'generation' | 'status'>,
  conds: Cond[],
  extra: Record<string, unknown>,
): boolean {
  return (
    conds.every((c) => conditionUnchanged(obj.status.conditions, c)) &&
    obj.status.observedGeneration === obj.generation &&
    Object.entries(extra).every(([k, v]) => (obj.status as Record<string, unknown>)[k] === v)
  );
}
