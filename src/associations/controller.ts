// The PodIdentityAssociation reconciler (docs/associations.md): keys are namespace/name. One pass is
// `reconcile(ctx, key)`: gather (gather.ts: the views and what they say about the object, its pair and its policy),
// decide (decide.ts: pure, table-tested), apply (apply.ts: EKS through src/aws, the Kubernetes writes, Events). This
// file is the chain, what the controller remembers between passes, and the wiring
// (docs/adr/1000-shared-informer-cache-and-reconcilers.md).
import type { Counter } from 'prom-client';
import { counter } from '../runtime/metrics.ts';
import { sharedOrOwnCache } from '../kube/cache.ts';
import { eventRecorderOf, type EventRecorder } from '../kube/events.ts';
import { getCondition } from '../kube/conditions.ts';
import { WorkQueue, runControllerLoop, type ReconcileResult } from '../runtime/workqueue.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import type { Association, AwsClients } from '../aws/index.ts';
import type { AssociationConfig } from '../config/associations.ts';
import { fingerprintOf } from '../verification/verified-identity.ts';
import type { AssociationVerification, PodsWithoutIdentity } from './index.ts';
import { createAssociationLookup, type AssociationIndex } from './lookup.ts';
import {
  ACK_GROUP,
  KIND,
  REPORTING_CONTROLLER,
  VERSION,
  desiredOf,
  effectiveCluster,
  parseLanyardAssociation,
  type LanyardAssociation,
} from './model.ts';
import {
  changedIdFields,
  describeRecord,
  deriveVerified,
  freshVerifiedAt,
  idFields,
  isOutOfBand,
  lastSeenStillGood,
  mayCreateProbe,
  nextStep,
  planStepFailure,
  planSync,
  planVerification,
  policyDeniedMessage,
  removedFields,
  verificationWaitingFor,
  verifiedFromReport,
  type Cond,
  type DeniedHandling,
  type RolePropagation,
  type SyncedFalseReason,
  type VerificationPlan,
} from './decide.ts';
import { AssociationViews, keyOf, runningPods } from './gather.ts';
import {
  RetryLater,
  StepFailure,
  addFinalizer,
  createOrAdopt,
  createProbePod,
  deleteInEks,
  deletePod,
  deleteVerifiedIdentities,
  describe,
  failSynced,
  regardingOf,
  removeFinalizer,
  retag,
  syncedCond,
  updateInEks,
  writeConditions,
  writeStatus,
  type AssociationWriter,
} from './apply.ts';

export interface AssociationControllerDeps extends Deps {
  aws: Pick<AwsClients, 'eks'>;
  events?: EventRecorder;
  /** Share the webhook's or verifier's index in one process; else the controller starts its own. */
  lookup?: AssociationIndex & Running;
  /** Test hooks (a crash between Create and the status write). */
  hooks?: { afterCreate?: (key: string, created: Association) => Promise<void> };
  /** The identity reconciler's count of Pods left without the association (shown in Ready; docs/identities.md). */
  podsWithoutIdentity?: PodsWithoutIdentity;
}

export interface AssociationController extends Running {
  /** The verifier's report of a ContainerCredentials exchange for an owned association (docs/associations.md). */
  recordVerification(v: AssociationVerification): void;
  lookup: AssociationIndex;
  /** Resolves when every informer has listed once. */
  waitForSync(timeoutMs: number): Promise<boolean>;
}

type Result = 'in_sync' | 'created' | 'adopted' | 'updated' | 'retry' | 'terminal';

const VERIFICATION_WRITE_INTERVAL_MS = 5_000;
/** Parallel probe Pod creations (each passes the admission chain, Lanyard's webhook included). */
const PROBE_WORKERS = 4;

/** What the controller remembers between passes; all of it re-derivable (a restart only repeats work). */
class AssociationMemory {
  readonly rolePropagation = new Map<string, RolePropagation>();
  readonly pendingReports = new Map<string, AssociationVerification>();
  readonly lastVerificationWrite = new Map<string, number>();
  readonly reportTimers = new Map<string, NodeJS.Timeout>();
  /** Probe Pods created, by owner uid: the cache may not show them yet. */
  readonly recentProbes = new Map<string, { name: string; generation: number; at: number }>();
  /** When a pair's verified set was last invalidated (drift): entries verified before no longer count. */
  readonly invalidatedAt = new Map<string, number>();
  /** Probe Pod work, done by its own pool after the status write, so a slow admission chain holds up no sync. */
  readonly probeWork = new Map<string, { obj: LanyardAssociation; plan: VerificationPlan }>();
  /** The last failure to create a probe Pod, shown until the next resync. */
  readonly probeFailures = new Map<string, { generation: number; message: string; at: number }>();
  /** The association as EKS last described it (or as Create/Update returned it), after a complete sync. */
  readonly lastSeen = new Map<string, { generation: number; at: number; association: Association }>();

  /** The object is gone: forget what only a pass over it uses. */
  forget(key: string): void {
    this.lastSeen.delete(key);
    this.rolePropagation.delete(key);
    this.pendingReports.delete(key);
    this.lastVerificationWrite.delete(key);
  }
}

/** Everything a pass reads and writes. */
interface AssociationContext extends AssociationWriter {
  log: Deps['log'];
  config: Readonly<AssociationConfig>;
  lookup: AssociationIndex;
  memory: AssociationMemory;
  queue: WorkQueue;
  probeQueue: WorkQueue;
  counter: Counter<'result'>;
  hooks?: AssociationControllerDeps['hooks'];
}

const notSyncedVerified = (obj: LanyardAssociation): Cond =>
  deriveVerified({
    generation: obj.generation,
    synced: false,
    current: getCondition(obj.status.conditions, 'Verified'),
  });

/** Synced=False with Verified derived for a not-synced object (or as given). */
const fail = (
  ctx: AssociationContext,
  obj: LanyardAssociation,
  reason: SyncedFalseReason,
  message: string,
  o: { verified?: Cond; extra?: Record<string, unknown> } = {},
) => failSynced(ctx, obj, reason, message, o.verified ?? notSyncedVerified(obj), o.extra);

/** Deletes the pair's VerifiedIdentities and remembers when, so entries still in the cache no longer count. */
async function invalidatePair(
  ctx: AssociationContext,
  namespace: string,
  serviceAccount: string,
): Promise<void> {
  ctx.memory.invalidatedAt.set(`${namespace}/${serviceAccount}`, ctx.now());
  await deleteVerifiedIdentities(ctx, namespace, serviceAccount);
}

/** One pass for one object: the next step decide.ts names for it, then the sync with EKS. */
async function reconcile(ctx: AssociationContext, key: string): Promise<ReconcileResult> {
  // Before the first list of IdentityPolicies the set would look empty, and no policies allows everything: a denied
  // association must not be created in that window (docs/adr/0202).
  if (!ctx.views.ready()) return { requeueAfterMs: 200 };
  const raw = await ctx.views.read(ctx.kube, key);
  if (!raw) return void ctx.memory.forget(key);
  let obj = parseLanyardAssociation(raw);
  const cluster = effectiveCluster(obj, ctx.config.clusterName);
  const { owner, deleting } = ctx.views.pairOf(obj, cluster);
  const decision = ctx.views.policyFor(obj);
  const step = nextStep({
    obj,
    cluster,
    owner,
    deleting,
    deniedAction: ctx.config.deniedAssociationAction,
    policy: decision.allowed ? { allowed: true } : { allowed: false, message: decision.message },
  });
  const resync = { requeueAfterMs: ctx.config.resyncMs };
  const pair = `${obj.namespace}/${obj.spec.serviceAccount}`;
  switch (step.kind) {
    case 'ignore':
      return;
    case 'releaseRetained':
      await removeFinalizer(ctx, obj);
      ctx.log.info(
        { association: key, associationID: obj.status.associationID },
        'deletion policy retain: association kept in EKS',
      );
      return;
    case 'delete':
      return await finalizeDelete(ctx, key, obj, step.cluster, step.associationId);
    case 'duplicate':
      ctx.counter.inc({ result: 'terminal' });
      await fail(
        ctx,
        obj,
        'Duplicate',
        `ServiceAccount ${pair} in cluster ${cluster} is already associated by ${describeRecord(step.owner)}`,
      );
      return resync;
    case 'waitForDeletion': {
      // Requeued by the index when the other object is gone.
      const message = `waiting for ${describeRecord(step.other)} to delete association ${step.other.associationID} before taking over ServiceAccount ${pair}`;
      await writeConditions(
        ctx,
        obj,
        syncedCond(obj, 'Unknown', 'Reconciling', message),
        notSyncedVerified(obj),
      );
      return resync;
    }
    case 'policyDenied':
      return await handleDenied(ctx, key, obj, step.message, step.handling);
    case 'invalidSpec':
      ctx.counter.inc({ result: 'terminal' });
      await fail(ctx, obj, 'InvalidSpec', step.message);
      return resync;
    case 'addFinalizer':
      obj = await addFinalizer(ctx, obj);
      break;
    default:
      break;
  }
  try {
    return await sync(ctx, key, obj, cluster);
  } catch (e) {
    if (!(e instanceof StepFailure)) throw e;
    return await handleFailure(ctx, key, obj, e);
  }
}

/**
 * A denied object (docs/adr/0202): never created; an existing association is removed (`delete`) or only reported
 * (`preview`). Either way Synced and Ready are False with reason PolicyDenied and a Warning Event says what happened.
 */
async function handleDenied(
  ctx: AssociationContext,
  key: string,
  obj: LanyardAssociation,
  refusal: string,
  handling: DeniedHandling,
): Promise<{ requeueAfterMs: number }> {
  ctx.counter.inc({ result: 'terminal' });
  const sa = obj.spec.serviceAccount;
  const pods = handling.kind === 'none' ? 0 : await runningPods(ctx.kube, ctx.log, obj.namespace, sa);
  const message = policyDeniedMessage(
    refusal,
    handling,
    { namespace: obj.namespace, serviceAccount: sa },
    pods,
  );
  if (handling.kind !== 'remove') {
    await fail(ctx, obj, 'PolicyDenied', message);
    return { requeueAfterMs: ctx.config.resyncMs };
  }
  const failure = await deleteInEks(ctx, handling.cluster, handling.associationId);
  if (failure) {
    const text = `${refusal}; removing association ${handling.associationId} from EKS failed: ${failure.text}`;
    await fail(ctx, obj, 'PolicyDenied', text);
    throw new RetryLater(text);
  }
  ctx.memory.lastSeen.delete(key);
  await invalidatePair(ctx, obj.namespace, sa);
  for (const p of ctx.views.probesOf(obj)) await deletePod(ctx, p.namespace, p.name);
  // The association is gone: an exchange reported earlier no longer says anything.
  const verified: Cond = {
    type: 'Verified',
    status: 'Unknown',
    reason: 'NotSynced',
    message: 'waiting for Synced=True',
    observedGeneration: obj.generation,
  };
  await fail(ctx, obj, 'PolicyDenied', message, { extra: removedFields(handling.associationId), verified });
  ctx.log.info(
    { association: key, associationID: handling.associationId, pods },
    'removed an association no IdentityPolicy allows',
  );
  return { requeueAfterMs: ctx.config.resyncMs };
}

/** A failed EKS step: decide.ts's plan for it, on the object as stored now. */
async function handleFailure(
  ctx: AssociationContext,
  key: string,
  obj: LanyardAssociation,
  f: StepFailure,
): Promise<{ requeueAfterMs: number }> {
  ctx.memory.lastSeen.delete(key);
  // Re-read: the failing step may have written status (id persisted) before failing.
  const raw = await ctx.views.read(ctx.kube, key);
  const fresh = raw ? parseLanyardAssociation(raw) : obj;
  // The spec changed while the step ran: its outcome is about the old spec and must not be stamped with the new
  // generation. The change itself queued the key again.
  if (fresh.generation !== obj.generation) return { requeueAfterMs: 0 };
  const plan = planStepFailure({
    cls: f.cls,
    text: f.text,
    obj: fresh,
    propagation: ctx.memory.rolePropagation.get(key),
    now: ctx.now(),
    rolePropagationTimeoutMs: ctx.config.rolePropagationTimeoutMs,
    resyncMs: ctx.config.resyncMs,
  });
  if (plan.rolePropagation) ctx.memory.rolePropagation.set(key, plan.rolePropagation);
  ctx.counter.inc({ result: plan.result });
  if (plan.synced) await fail(ctx, fresh, plan.synced.reason, plan.synced.message);
  if ('retryLater' in plan) throw new RetryLater(plan.retryLater);
  return { requeueAfterMs: plan.requeueAfterMs };
}

/** What EKS holds for the object: as read moments ago, described, or created (adopted) now. */
async function observe(
  ctx: AssociationContext,
  key: string,
  obj: LanyardAssociation,
  cluster: string,
): Promise<{ observed: Association; result: Result; fromAws: boolean }> {
  const known = ctx.memory.lastSeen.get(key);
  // A reconcile for verification right after a sync: EKS was read moments ago, drift is the resync's job.
  if (lastSeenStillGood(known, obj, ctx.now(), ctx.config.resyncMs))
    return { observed: known!.association, result: 'in_sync', fromAws: false };
  let replacing: string | undefined;
  if (obj.status.associationID) {
    const found = await describe(ctx, cluster, obj.status.associationID);
    if (found) return { observed: found, result: 'in_sync', fromAws: true };
    replacing = obj.status.associationID;
    ctx.events.warning(
      regardingOf(obj),
      'Recreated',
      `association ${replacing} was deleted outside Lanyard; creating it again`,
    );
  }
  // The deleted id stays in status until the new one replaces it, so a crash in between recreates with the same token.
  const desired = desiredOf(obj, ctx.config.clusterName);
  const made = await createOrAdopt(ctx, obj, desired, cluster, replacing);
  const id = made.association.associationId;
  if (made.created) {
    await ctx.hooks?.afterCreate?.(key, made.association);
    ctx.events.normal(regardingOf(obj), 'Created', `created association ${id} in cluster ${cluster}`);
  } else {
    ctx.events.normal(
      regardingOf(obj),
      'Adopted',
      `adopted existing association ${id} for ${desired.namespace}/${desired.serviceAccount} in cluster ${cluster}`,
    );
  }
  return { observed: made.association, result: made.created ? 'created' : 'adopted', fromAws: true };
}

/** Create or adopt, describe, correct drift, tags, then the conditions and the probe work. */
async function sync(
  ctx: AssociationContext,
  key: string,
  start: LanyardAssociation,
  cluster: string,
): Promise<{ requeueAfterMs: number }> {
  let obj = start;
  const desired = desiredOf(obj, ctx.config.clusterName);
  const seen = await observe(ctx, key, obj, cluster);
  let { observed, result } = seen;
  ctx.memory.rolePropagation.delete(key);
  const plan = planSync(desired, observed);
  const tagging = Object.keys(plan.tagsToSet).length > 0 || plan.tagKeysToRemove.length > 0;
  if (obj.status.associationID !== observed.associationId && (plan.update || tagging)) {
    // Persisted before any further AWS step, so a failure there never loses the id. Without one, the id goes out
    // with the conditions in the single status write below, still before anything else (probe Pods come after).
    obj = await writeStatus(ctx, obj, idFields(cluster, observed));
  }
  let invalidated = false;
  if (plan.update) {
    observed = await updateInEks(
      ctx,
      obj,
      cluster,
      observed,
      { ...plan, update: plan.update },
      isOutOfBand(obj) && result === 'in_sync',
    );
    await invalidatePair(ctx, obj.namespace, obj.spec.serviceAccount);
    invalidated = true;
    if (result === 'in_sync') result = 'updated';
  }
  if (tagging) {
    await retag(ctx, obj, observed.associationArn, plan);
    if (result === 'in_sync') result = 'updated';
  }
  const synced = syncedCond(
    obj,
    'True',
    'InSync',
    `EKS association ${observed.associationId} has the desired role, target role, session-tag flag, session policy and tags`,
  );
  const extra = changedIdFields(obj.status, cluster, observed);
  // The identity as it is after this write, for the verified-set fingerprint.
  const current: LanyardAssociation = {
    ...obj,
    status: { ...obj.status, associationID: observed.associationId },
  };
  const v = verificationOf(ctx, key, current, invalidated);
  if (v.lastVerifiedTime) extra.lastVerifiedTime = v.lastVerifiedTime;
  await writeConditions(ctx, obj, synced, v.verified, extra);
  if (v.createProbe || v.deleteProbes.length > 0) {
    ctx.memory.probeWork.set(key, { obj: current, plan: v });
    ctx.probeQueue.add(key);
  }
  // What EKS holds now: the last answer, with the tags just written. Only a real read restarts the clock.
  if (seen.fromAws || plan.update || tagging) {
    ctx.memory.lastSeen.set(key, {
      generation: obj.generation,
      at: ctx.now(),
      association: { ...observed, tags: { ...desired.tags } },
    });
  }
  ctx.counter.inc({ result });
  return { requeueAfterMs: ctx.config.resyncMs };
}

/** A verifier report due for this object (at most one write per interval), as the Verified condition; Events on a change. */
function takeReport(
  ctx: AssociationContext,
  key: string,
  obj: LanyardAssociation,
): { current?: Cond; reportedAt?: string } | undefined {
  const last = ctx.memory.lastVerificationWrite.get(key);
  const due = last === undefined || ctx.now() - last >= VERIFICATION_WRITE_INTERVAL_MS;
  const report = due ? ctx.memory.pendingReports.get(key) : undefined;
  if (!report) {
    if (ctx.memory.pendingReports.has(key)) scheduleReport(ctx, key);
    return undefined;
  }
  ctx.memory.pendingReports.delete(key);
  const a = report.association;
  const c = verifiedFromReport(obj, {
    uid: a.uid,
    roleARN: a.roleARN,
    targetRoleARN: a.targetRoleARN,
    policy: a.policy,
    associationID: a.associationID,
    result: report.result,
    message: report.message,
  });
  if (!c) return undefined;
  ctx.memory.lastVerificationWrite.set(key, ctx.now());
  const prev = getCondition(obj.status.conditions, 'Verified');
  if (prev?.status !== c.status || prev.reason !== c.reason) {
    if (c.status === 'True') ctx.events.normal(regardingOf(obj), 'Verified', c.message);
    else ctx.events.warning(regardingOf(obj), 'VerificationFailed', `${c.reason}: ${c.message}`);
  }
  const reportedAt =
    c.status === 'True'
      ? (report.at ?? new Date(ctx.now())).toISOString().replace(/\.\d{3}Z$/, 'Z')
      : undefined;
  return { current: c, reportedAt };
}

/** Verified for an in-sync object (a due report, else derived) and what to do with its probe Pods. */
function verificationOf(
  ctx: AssociationContext,
  key: string,
  obj: LanyardAssociation,
  invalidated: boolean,
): VerificationPlan {
  const { config, memory } = ctx;
  const report = takeReport(ctx, key, obj);
  const stored = invalidated ? undefined : getCondition(obj.status.conditions, 'Verified');
  const cluster = effectiveCluster(obj, config.clusterName);
  const local = cluster === config.clusterName;
  const fp = fingerprintOf({
    source: 'association',
    uid: obj.uid,
    associationID: obj.status.associationID,
    roleARN: obj.spec.roleARN,
    targetRoleARN: obj.spec.targetRoleARN,
    disableSessionTags: obj.spec.disableSessionTags,
    ...(obj.spec.policy ? { policy: obj.spec.policy } : {}),
  });
  // Entries just deleted for drift may still be in the informer: they no longer count.
  const fresh =
    local && !invalidated
      ? freshVerifiedAt(
          ctx.views.verifiedOf(obj.namespace, obj.spec.serviceAccount),
          obj,
          fp,
          memory.invalidatedAt.get(`${obj.namespace}/${obj.spec.serviceAccount}`),
          ctx.now(),
        )
      : undefined;
  const plan = planVerification({
    obj,
    current: report?.current ? { ...report.current, lastTransitionTime: '' } : stored,
    reportedAt: report?.reportedAt,
    local,
    probe: config.probe,
    waitingFor: verificationWaitingFor(cluster, config.clusterName, config.probe),
    fresh,
    probeFailure: memory.probeFailures.get(key),
    probeFailureMs: config.resyncMs,
    probes: ctx.views.probesOf(obj),
    remembered: memory.recentProbes.get(obj.uid),
    now: ctx.now(),
  });
  if (plan.dropProbeFailure) memory.probeFailures.delete(key);
  if (plan.forgetProbe) memory.recentProbes.delete(obj.uid);
  return plan;
}

/** Deletes and creates probe Pods after the status write; returns the API error when the probe cannot be made. */
async function applyProbePlan(
  ctx: AssociationContext,
  key: string,
  obj: LanyardAssociation,
  plan: VerificationPlan,
): Promise<string | undefined> {
  for (const p of plan.deleteProbes) await deletePod(ctx, p.namespace, p.name);
  if (plan.verified.status === 'True') ctx.memory.recentProbes.delete(obj.uid);
  if (!plan.createProbe) return undefined;
  // The plan may be a moment old: not for an object being deleted, nor twice for one generation.
  const now = await ctx.views.read(ctx.kube, key);
  const state = now ? { uid: now.metadata?.uid, deleting: !!now.metadata?.deletionTimestamp } : undefined;
  if (!mayCreateProbe(obj, state, ctx.memory.recentProbes.get(obj.uid), ctx.views.probesOf(obj), ctx.now()))
    return undefined;
  const made = await createProbePod(ctx, obj);
  if ('error' in made) return made.error;
  ctx.memory.recentProbes.set(obj.uid, { name: made.name, generation: obj.generation, at: ctx.now() });
  return undefined;
}

/** The probe pool's pass: the latest plan for the key; a failure to create is shown on the object. */
async function reconcileProbes(ctx: AssociationContext, key: string): Promise<void> {
  const work = ctx.memory.probeWork.get(key);
  ctx.memory.probeWork.delete(key);
  if (!work) return;
  let error: string | undefined;
  try {
    error = await applyProbePlan(ctx, key, work.obj, work.plan);
  } catch (e) {
    // Retried with backoff, unless a newer plan arrived meanwhile.
    if (!ctx.memory.probeWork.has(key)) ctx.memory.probeWork.set(key, work);
    throw e;
  }
  if (error) {
    ctx.memory.probeFailures.set(key, { generation: work.obj.generation, message: error, at: ctx.now() });
    ctx.queue.add(key);
  } else if (work.plan.createProbe) {
    ctx.memory.probeFailures.delete(key);
  }
}

async function finalizeDelete(
  ctx: AssociationContext,
  key: string,
  obj: LanyardAssociation,
  cluster: string,
  associationId: string | undefined,
): Promise<void> {
  if (associationId) {
    const failure = await deleteInEks(ctx, cluster, associationId);
    if (failure) {
      const message = `cannot delete association ${associationId}: ${failure.text}`;
      await fail(ctx, obj, 'DeleteFailed', message);
      throw new RetryLater(message);
    }
    await invalidatePair(ctx, obj.namespace, obj.spec.serviceAccount);
  }
  for (const p of ctx.views.probesOf(obj)) await deletePod(ctx, p.namespace, p.name);
  await removeFinalizer(ctx, obj);
  ctx.memory.lastSeen.delete(key);
  ctx.memory.rolePropagation.delete(key);
  ctx.memory.pendingReports.delete(key);
  ctx.memory.recentProbes.delete(obj.uid);
  if (associationId)
    ctx.events.normal(
      regardingOf(obj),
      'Deleted',
      `deleted association ${associationId} in cluster ${cluster}`,
    );
}

// ---- Verifier reports ----------------------------------------------------------------------------------------------

function recordVerification(ctx: AssociationContext, v: AssociationVerification): void {
  const a = v.association;
  if (a.kind === 'ack') {
    // Observed ACK objects are never written: the outcome becomes an Event on them.
    const regarding = {
      apiVersion: `${ACK_GROUP}/${VERSION}`,
      kind: KIND,
      metadata: { name: a.objectName, namespace: a.objectNamespace, uid: a.uid },
    };
    if (v.result === 'CredentialsMatch') ctx.events.normal(regarding, 'IdentityVerified', v.message);
    else ctx.events.warning(regarding, 'IdentityNotVerified', `${v.result}: ${v.message}`);
    return;
  }
  const key = keyOf(a);
  ctx.memory.pendingReports.set(key, v);
  scheduleReport(ctx, key);
}

/** Reconciles the key when its next verification write is allowed (one per interval). */
function scheduleReport(ctx: AssociationContext, key: string): void {
  const timers = ctx.memory.reportTimers;
  if (timers.has(key)) return;
  const wait =
    (ctx.memory.lastVerificationWrite.get(key) ?? -Infinity) + VERIFICATION_WRITE_INTERVAL_MS - ctx.now();
  if (wait <= 0) return void ctx.queue.add(key);
  const t = setTimeout(() => {
    timers.delete(key);
    ctx.queue.add(key);
  }, wait);
  t.unref?.();
  timers.set(key, t);
}

// ---- Wiring ---------------------------------------------------------------------------------------------------------

/** Keys the index and the identity reconciler enqueue: the object itself, and every Lanyard object of a pair that moved. */
function subscribe(ctx: AssociationContext, deps: AssociationControllerDeps): () => void {
  const unsubscribe = ctx.lookup.subscribe(({ before, after }) => {
    const r = after ?? before!;
    if (r.kind === 'lanyard' && (!before || !after || before.stamp !== after.stamp)) ctx.queue.add(keyOf(r));
    // Ownership of the pair may have moved: every Lanyard object of the old and new pair looks again.
    if (before && after && before.stamp === after.stamp && r.kind === 'lanyard') return;
    for (const x of [before, after])
      if (x) for (const k of ctx.views.keysOfPair(x.cluster, x.namespace, x.serviceAccount)) ctx.queue.add(k);
  });
  const unsubscribePods = deps.podsWithoutIdentity?.subscribe((ns, sa) => {
    for (const k of ctx.views.keysOfPair(ctx.config.clusterName, ns, sa)) ctx.queue.add(k);
  });
  return () => {
    unsubscribe();
    unsubscribePods?.();
  };
}

/** The association loop and the probe Pod pool, both on the shared loop's metrics (docs/observability.md). */
function startLoops(ctx: AssociationContext, deps: AssociationControllerDeps): Promise<unknown> {
  const { log } = ctx;
  const queue = ctx.queue;
  const config = ctx.config;
  const loop = runControllerLoop({
    name: 'associations',
    queue,
    workers: config.workers,
    metrics: deps.metrics,
    reconcile: (key) => reconcile(ctx, key),
    onError: (key, e, retryInMs) => {
      if (e instanceof RetryLater)
        log.info({ association: key, retryInMs, err: e.message }, 'association will be retried');
      else log.error({ association: key, retryInMs, err: e }, 'association reconcile failed');
    },
  });
  const probeLoop = runControllerLoop({
    name: 'association-probes',
    queue: ctx.probeQueue,
    workers: PROBE_WORKERS,
    metrics: deps.metrics,
    reconcile: (key) => reconcileProbes(ctx, key),
    onError: (key, e, retryInMs) =>
      log.warn({ association: key, retryInMs, err: e }, 'probe Pod cleanup failed'),
  });
  return Promise.all([loop, probeLoop]);
}

export async function startAssociationController(
  deps: AssociationControllerDeps,
  config: Readonly<AssociationConfig>,
): Promise<AssociationController> {
  const { kube, log, clock } = deps;
  const { cache, release: releaseCache } = sharedOrOwnCache(deps, (sel, e) =>
    log.warn({ err: e, path: sel.path }, 'watch error'),
  );
  const ownLookup = !deps.lookup;
  const lookup =
    deps.lookup ??
    createAssociationLookup(
      { kube, log, cache },
      { clusterName: config.clusterName, observeAck: config.observeAck },
    );
  const queue = new WorkQueue();
  const ctx: AssociationContext = {
    kube,
    log,
    config,
    lookup,
    queue,
    probeQueue: new WorkQueue(),
    hooks: deps.hooks,
    eks: deps.aws.eks,
    now: () => clock.now(),
    probeImage: config.probeImage,
    podsWithoutIdentity: deps.podsWithoutIdentity,
    memory: new AssociationMemory(),
    views: new AssociationViews(cache, lookup, config.clusterName, (k) => queue.add(k)),
    events: eventRecorderOf(deps, REPORTING_CONTROLLER),
    counter: counter(
      deps.metrics,
      'lanyard_association_reconciles_total',
      'PodIdentityAssociation reconciles by result.',
      ['result'],
    ),
  };
  const unsubscribe = subscribe(ctx, deps);
  const loops = startLoops(ctx, deps);
  return {
    lookup,
    recordVerification: (v) => recordVerification(ctx, v),
    waitForSync: async (ms) =>
      (await Promise.all([lookup.waitForSync(ms), ctx.views.waitForSync(ms)])).every(Boolean),
    async stop() {
      unsubscribe();
      queue.shutdown();
      ctx.probeQueue.shutdown();
      for (const t of ctx.memory.reportTimers.values()) clearTimeout(t);
      ctx.memory.reportTimers.clear();
      ctx.views.close();
      if (ownLookup) await lookup.stop();
      releaseCache();
      await loops;
    },
  };
}
