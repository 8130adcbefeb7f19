// The PodIdentityAssociation reconciler (verification.md §3.1, §3.2, §10): keys are namespace/name, decisions come
// from decide.ts, and this module performs them against EKS (through src/aws) and the Kubernetes API.
import { randomUUID } from 'node:crypto';
import type { Counter } from 'prom-client';
import { counter } from '../runtime/metrics.ts';
import type { Json } from '../kube/client.ts';
import { isNotFound } from '../kube/client.ts';
import { sharedOrOwnCache } from '../kube/cache.ts';
import { createEventRecorder, type EventRecorder } from '../kube/events.ts';
import { conditionUnchanged, getCondition, setCondition, type Condition } from '../kube/conditions.ts';
import { WorkQueue, runControllerLoop } from '../runtime/workqueue.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import type { Association, AwsClients } from '../aws/index.ts';
import { isAwsError } from '../aws/index.ts';
import type { AssociationConfig } from '../config/associations.ts';
import { PolicyCompiler, decidePolicy, type PolicySet } from '../verification/policy.ts';
import { fingerprintOf } from '../verification/verified-identity.ts';
import type { AssociationVerification, PodsWithoutIdentity } from './index.ts';
import { readyWithPodsWithoutIdentity } from '../identities/ready.ts';
import { createAssociationLookup, type AssociationIndex } from './lookup.ts';
import {
  FINALIZER,
  GROUP,
  KIND,
  PLURAL,
  PROBE_GATE,
  PROBE_GENERATION_ANNOTATION,
  PROBE_LABEL,
  REPORTING_CONTROLLER,
  VERSION,
  ACK_GROUP,
  desiredOf,
  effectiveCluster,
  parseLanyardAssociation,
  recordOf,
  type DesiredAssociation,
  type LanyardAssociation,
} from './model.ts';
import {
  classifyAwsError,
  deriveReady,
  deriveVerified,
  describeRecord,
  driftText,
  isOutOfBand,
  createToken,
  nextRolePropagation,
  nextStep,
  planSync,
  policyDeniedMessage,
  refusalText,
  selectOwner,
  verifiedFromReport,
  type Cond,
  type EksOperation,
  type ErrorClass,
  type DeniedHandling,
  type RolePropagation,
  type SyncedFalseReason,
} from './decide.ts';
import { errorMessage } from '../core/errors.ts';

export interface AssociationControllerDeps extends Deps {
  aws: Pick<AwsClients, 'eks'>;
  events?: EventRecorder;
  /** Share the webhook's or verifier's index in one process; else the controller starts its own. */
  lookup?: AssociationIndex & Running;
  /** Test hooks (A2: a crash between Create and the status write). */
  hooks?: { afterCreate?: (key: string, created: Association) => Promise<void> };
  /** The identity reconciler's count of Pods left without the association (shown in Ready; docs/identities.md). */
  podsWithoutIdentity?: PodsWithoutIdentity;
}

export interface AssociationController extends Running {
  /** The verifier's report of a ContainerCredentials exchange for an owned association (§10). */
  recordVerification(v: AssociationVerification): void;
  lookup: AssociationIndex;
  /** Resolves when every informer has listed once. */
  waitForSync(timeoutMs: number): Promise<boolean>;
}

type Result = 'in_sync' | 'created' | 'adopted' | 'updated' | 'retry' | 'terminal';

const API = `/apis/${GROUP}/${VERSION}`;
const VERIFICATION_WRITE_INTERVAL_MS = 5_000;
/** A probe Pod just created may not be in the informer yet; remember it this long. */
const PROBE_MEMORY_MS = 60_000;
const EXPIRY_MARGIN_MS = 5_000;
/** Parallel probe Pod creations (each passes the admission chain, Lanyard's webhook included). */
const PROBE_WORKERS = 4;

/** An AWS failure carried out of a step, already classified. */
class StepFailure extends Error {
  constructor(
    readonly op: EksOperation,
    readonly cls: ErrorClass,
    readonly text: string,
  ) {
    super(text);
  }
}

/** Thrown after the status was written, so the work queue retries with its per-key backoff. */
class RetryLater extends Error {}

interface ViRecord {
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

interface ProbeRecord {
  namespace: string;
  name: string;
  ownerUid: string;
  ownerName: string;
  generation: number;
}

interface VerificationPlan {
  verified: Cond;
  lastVerifiedTime?: string;
  deleteProbes: ProbeRecord[];
  createProbe: boolean;
}

function reconcileCounter(deps: Deps): Counter<'result'> {
  return counter(deps.metrics, 'lanyard_association_reconciles_total', 'PodIdentityAssociation reconciles by result.', ['result']);
}

function assocPath(namespace: string, name?: string, sub?: string): string {
  return `${API}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}${name ? `/${encodeURIComponent(name)}` : ''}${sub ? `/${sub}` : ''}`;
}

function regardingOf(obj: LanyardAssociation): Json {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: KIND,
    metadata: {
      name: obj.name,
      namespace: obj.namespace,
      uid: obj.uid,
      resourceVersion: obj.resourceVersion,
    },
  };
}

function toFailure(op: EksOperation, e: unknown): StepFailure {
  if (isAwsError(e)) return new StepFailure(op, classifyAwsError(op, e), e.describe());
  // Not an AWS answer (a bug or a local failure): retry with backoff, say what happened.
  return new StepFailure(
    op,
    { kind: 'retryable', reason: 'AWSError' },
    `${op}: ${errorMessage(e)}`,
  );
}

/** The status fields fixed by Create or adoption. */
function idFields(cluster: string, a: Association): Record<string, string | null> {
  return {
    clusterName: cluster,
    associationID: a.associationId,
    associationARN: a.associationArn,
    externalID: a.externalId ?? null,
    removedAssociationID: null,
  };
}

/** What status says after Lanyard removed a denied association from EKS (docs/adr/0202). */
function removedFields(associationId: string): Record<string, string | null> {
  return { associationID: null, associationARN: null, externalID: null, removedAssociationID: associationId };
}

export async function startAssociationController(
  deps: AssociationControllerDeps,
  config: Readonly<AssociationConfig>,
): Promise<AssociationController> {
  const { kube, log, clock } = deps;
  const eks = deps.aws.eks;
  const events =
    deps.events ??
    createEventRecorder({
      kube,
      reportingController: REPORTING_CONTROLLER,
      log,
      now: () => new Date(clock.now()),
    });
  const counter = reconcileCounter(deps);
  const { cache, release: releaseCache } = sharedOrOwnCache(deps, (sel, e) =>
    log.warn({ err: e, path: sel.path }, 'watch error'));
  const ownLookup = !deps.lookup;
  const lookup =
    deps.lookup ??
    createAssociationLookup(
      { kube, log, cache },
      { clusterName: config.clusterName, observeAck: config.observeAck },
    );
  const queue = new WorkQueue();
  const probeQueue = new WorkQueue();

  const rolePropagation = new Map<string, RolePropagation>();
  const pendingReports = new Map<string, AssociationVerification>();
  const lastVerificationWrite = new Map<string, number>();
  const reportTimers = new Map<string, NodeJS.Timeout>();
  const recentProbes = new Map<string, { name: string; generation: number; at: number }>();
  // When the controller last invalidated a pair's verified set (drift): entries verified before that no longer count,
  // even while the informer still holds them.
  const invalidatedAt = new Map<string, number>();
  // Probe Pod work, done by its own small pool after the status write, so a slow admission chain (the webhook) never
  // holds up syncing other associations; and the last failure to create one, shown until the next resync.
  const probeWork = new Map<string, { obj: LanyardAssociation; plan: VerificationPlan }>();
  const probeFailures = new Map<string, { generation: number; message: string; at: number }>();
  // The association as EKS last described it (or as Create/Update returned it) per key, after a complete sync.
  const lastSeen = new Map<string, { generation: number; at: number; association: Association }>();

  const keysOfPair = (cluster: string | undefined, namespace: string, serviceAccount: string): string[] =>
    cluster
      ? lookup
          .recordsFor(cluster, namespace, serviceAccount)
          .filter((r) => r.kind === 'lanyard')
          .map((r) => `${r.objectNamespace}/${r.objectName}`)
      : [];
  const enqueueAll = () => {
    for (const r of lookup.lanyardRecords()) queue.add(`${r.objectNamespace}/${r.objectName}`);
  };

  // ---- Watches that requeue keys (§3.1: policies, namespace labels, ACK objects, the pair's VerifiedIdentities) --

  const unsubscribe = lookup.subscribe(({ before, after }) => {
    const r = after ?? before!;
    if (r.kind === 'lanyard') {
      const self = `${r.objectNamespace}/${r.objectName}`;
      if (!before || !after || before.stamp !== after.stamp) queue.add(self);
    }
    // Ownership of the pair may have moved: every Lanyard object of the old and new pair looks again.
    if (before && after && before.stamp === after.stamp && r.kind === 'lanyard') return;
    for (const x of [before, after]) {
      if (x) for (const k of keysOfPair(x.cluster, x.namespace, x.serviceAccount)) queue.add(k);
    }
  });

  const unsubscribePods = deps.podsWithoutIdentity?.subscribe((ns, sa) => {
    for (const k of keysOfPair(config.clusterName, ns, sa)) queue.add(k);
  });

  const compiler = new PolicyCompiler();
  let policySet: PolicySet | undefined;
  const policyChanged = () => {
    policySet = undefined;
    enqueueAll();
  };
  const policies = cache.view<Json>({
    path: `${API}/identitypolicies`,
    onAdd: policyChanged,
    onUpdate: (o, old) => {
      if (o?.metadata?.generation !== old?.metadata?.generation) policyChanged();
    },
    onDelete: policyChanged,
  });
  const currentPolicies = (): PolicySet => (policySet ??= compiler.compileAll(policies.values()));

  const namespaceChanged = (ns: string) => {
    for (const r of lookup.lanyardRecords())
      if (r.objectNamespace === ns) queue.add(`${r.objectNamespace}/${r.objectName}`);
  };
  const namespaces = cache.view<{ name: string; labels: Record<string, string> }>({
    path: '/api/v1/namespaces',
    metadataOnly: true,
    transform: (o) => ({ name: String(o?.metadata?.name), labels: { ...(o?.metadata?.labels ?? {}) } }),
    onUpdate: (n, old) => {
      if (JSON.stringify(n.labels) !== JSON.stringify(old.labels)) namespaceChanged(n.name);
    },
  });

  // ---- Reading objects ----------------------------------------------------------------------------------------------

  // The cached copy, which shows the answer to our own last write until the watch delivers it (acting on the older
  // copy would repeat a Create): docs/adr/1000-shared-informer-cache-and-reconcilers.md. Saves a GET per reconcile.
  const objects = cache.view<Json>({ path: `${API}/${PLURAL}` });
  const remember = (raw: Json): Json => {
    objects.recordWrite(raw);
    return raw;
  };
  const read = async (key: string): Promise<Json | undefined> => {
    const cached = objects.get(key);
    if (cached) return cached;
    // Not cached yet: ask the API server.
    const slash = key.indexOf('/');
    try {
      return remember(await kube.get(assocPath(key.slice(0, slash), key.slice(slash + 1))));
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  };

  const requeueUnlessVerified = (key: string) => {
    const raw = objects.get(key);
    const verified = raw && getCondition(raw.status?.conditions, 'Verified');
    if (verified?.status === 'True' && verified.observedGeneration === raw.metadata?.generation) return;
    queue.add(key);
  };
  const viChanged = (v: ViRecord) => {
    const owner = lookup.ownerOf(config.clusterName, v.namespace, v.serviceAccount);
    if (owner?.kind !== 'lanyard') return;
    // The verifier refreshes entries on every exchange; an owner already verified for its generation has nothing to
    // learn from that.
    requeueUnlessVerified(`${owner.objectNamespace}/${owner.objectName}`);
  };
  const vis = cache.view<ViRecord>({
    path: `${API}/verifiedidentities`,
    transform: (o) => ({
      namespace: String(o?.metadata?.namespace ?? ''),
      name: String(o?.metadata?.name ?? ''),
      serviceAccount: String(o?.spec?.serviceAccount ?? ''),
      mode: String(o?.spec?.mode ?? ''),
      roleARN: String(o?.spec?.roleARN ?? ''),
      targetRoleARN: String(o?.spec?.targetRoleARN ?? ''),
      fingerprint: String(o?.spec?.fingerprint ?? ''),
      verifiedAt: String(o?.spec?.verifiedAt ?? ''),
      expiresAt: String(o?.spec?.expiresAt ?? ''),
    }),
    onAdd: viChanged,
    onUpdate: viChanged,
    onDelete: viChanged,
  });

  // A probe deleted before its exchange must be made again; one deleted after success (by us) changes nothing.
  const probeChanged = (p: ProbeRecord) => {
    if (p.ownerName) requeueUnlessVerified(`${p.namespace}/${p.ownerName}`);
  };
  const probes = cache.view<ProbeRecord>({
    path: '/api/v1/pods',
    labelSelector: `${PROBE_LABEL}=true`,
    transform: (o) => {
      const ref = (o?.metadata?.ownerReferences ?? []).find(
        (r: Json) => r.kind === KIND && String(r.apiVersion).startsWith(`${GROUP}/`),
      );
      return {
        namespace: String(o?.metadata?.namespace ?? ''),
        name: String(o?.metadata?.name ?? ''),
        ownerUid: String(ref?.uid ?? ''),
        ownerName: String(ref?.name ?? ''),
        generation: Number(o?.metadata?.annotations?.[PROBE_GENERATION_ANNOTATION] ?? 0),
      };
    },
    onDelete: probeChanged,
  });

  // ---- Kubernetes writes ------------------------------------------------------------------------------------------

  const writeStatus = async (
    obj: LanyardAssociation,
    status: Record<string, unknown>,
  ): Promise<LanyardAssociation> => {
    const updated = await kube.patch(
      assocPath(obj.namespace, obj.name, 'status'),
      { status },
      'application/merge-patch+json',
    );
    return parseLanyardAssociation(remember(updated));
  };

  /** Writes the three conditions (and extra fields) when anything changed; returns the object as stored. */
  const writeConditions = async (
    obj: LanyardAssociation,
    synced: Cond,
    verified: Cond,
    extra: Record<string, unknown> = {},
  ): Promise<LanyardAssociation> => {
    const ready = readyWithPodsWithoutIdentity(deriveReady(obj.generation, synced, verified),
      deps.podsWithoutIdentity?.missingFor(obj.namespace, obj.spec.serviceAccount) ?? 0, obj.namespace, obj.spec.serviceAccount);
    const now = new Date(clock.now());
    const unchanged =
      [synced, verified, ready].every((c) => conditionUnchanged(obj.status.conditions, c)) &&
      obj.status.observedGeneration === obj.generation &&
      Object.entries(extra).every(([k, v]) => (obj.status as Record<string, unknown>)[k] === v);
    if (unchanged) return obj;
    let conditions: Condition[] = obj.status.conditions;
    for (const c of [synced, verified, ready]) conditions = setCondition(conditions, c, now);
    return await writeStatus(obj, { ...extra, observedGeneration: obj.generation, conditions });
  };

  const addFinalizer = async (obj: LanyardAssociation): Promise<LanyardAssociation> => {
    const ops: Json[] = [{ op: 'test', path: '/metadata/resourceVersion', value: obj.resourceVersion }];
    ops.push(
      obj.finalizers.length === 0
        ? { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }
        : { op: 'add', path: '/metadata/finalizers/-', value: FINALIZER },
    );
    return parseLanyardAssociation(remember(await kube.patch(assocPath(obj.namespace, obj.name), ops)));
  };

  const removeFinalizer = async (obj: LanyardAssociation): Promise<void> => {
    const i = obj.finalizers.indexOf(FINALIZER);
    if (i < 0) return;
    try {
      await kube.patch(assocPath(obj.namespace, obj.name), [
        { op: 'test', path: `/metadata/finalizers/${i}`, value: FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${i}` },
      ]);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  };

  const deletePairVerifiedIdentities = async (namespace: string, serviceAccount: string): Promise<void> => {
    invalidatedAt.set(`${namespace}/${serviceAccount}`, clock.now());
    for (const v of [...vis.values()]) {
      if (v.namespace !== namespace || v.serviceAccount !== serviceAccount) continue;
      try {
        await kube.delete(
          `${API}/namespaces/${encodeURIComponent(namespace)}/verifiedidentities/${encodeURIComponent(v.name)}`,
        );
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  };

  const probesOf = (obj: LanyardAssociation): ProbeRecord[] =>
    [...probes.values()].filter((p) => p.namespace === obj.namespace && p.ownerUid === obj.uid);

  const deletePod = async (namespace: string, name: string) => {
    try {
      await kube.delete(
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`,
        {
          gracePeriodSeconds: 0,
        },
      );
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  };

  const probePod = (obj: LanyardAssociation): Json => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'lanyard-probe-',
      namespace: obj.namespace,
      labels: { [PROBE_LABEL]: 'true' },
      annotations: { [PROBE_GENERATION_ANNOTATION]: String(obj.generation) },
      ownerReferences: [
        { apiVersion: `${GROUP}/${VERSION}`, kind: KIND, name: obj.name, uid: obj.uid, controller: true },
      ],
    },
    spec: {
      serviceAccountName: obj.spec.serviceAccount,
      automountServiceAccountToken: false,
      restartPolicy: 'Never',
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 0,
      // Never removed, so the probe never runs: the verifier only needs a Pod to bind the token to.
      schedulingGates: [{ name: PROBE_GATE }],
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65535,
        runAsGroup: 65535,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: 'probe',
          image: config.probeImage,
          imagePullPolicy: 'IfNotPresent',
          resources: { requests: { cpu: '1m', memory: '4Mi' }, limits: { cpu: '1m', memory: '4Mi' } },
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
          },
        },
      ],
    },
  });

  // ---- Verification (§10) ------------------------------------------------------------------------------------------

  const freshVerifiedAt = (obj: LanyardAssociation): string | undefined => {
    const fp = fingerprintOf({
      source: 'association',
      uid: obj.uid,
      associationID: obj.status.associationID,
      roleARN: obj.spec.roleARN,
      targetRoleARN: obj.spec.targetRoleARN,
      disableSessionTags: obj.spec.disableSessionTags,
      ...(obj.spec.policy ? { policy: obj.spec.policy } : {}),
    });
    for (const v of vis.values()) {
      if (v.namespace !== obj.namespace || v.serviceAccount !== obj.spec.serviceAccount) continue;
      if (v.mode !== 'ContainerCredentials' || v.fingerprint !== fp) continue;
      if (v.roleARN !== obj.spec.roleARN || v.targetRoleARN !== (obj.spec.targetRoleARN ?? '')) continue;
      if (
        !(Date.parse(v.verifiedAt) > (invalidatedAt.get(`${obj.namespace}/${obj.spec.serviceAccount}`) ?? 0))
      )
        continue;
      const exp = Date.parse(v.expiresAt);
      if (Number.isFinite(exp) && exp - clock.now() > EXPIRY_MARGIN_MS) return v.verifiedAt;
    }
    return undefined;
  };

  /** Verified for an in-sync object (the pending report, else derived) and what to do with probe Pods. */
  const planVerification = (key: string, obj: LanyardAssociation, invalidated: boolean): VerificationPlan => {
    // A report waits until 5 s after the last verification write, whatever else triggered this reconcile.
    const last = lastVerificationWrite.get(key);
    const due = last === undefined || clock.now() - last >= VERIFICATION_WRITE_INTERVAL_MS;
    const report = due ? pendingReports.get(key) : undefined;
    if (report) pendingReports.delete(key);
    else if (pendingReports.has(key)) scheduleReport(key);
    let current = invalidated ? undefined : getCondition(obj.status.conditions, 'Verified');
    let lastVerifiedTime: string | undefined;
    if (report) {
      const c = verifiedFromReport(obj, {
        uid: report.association.uid,
        roleARN: report.association.roleARN,
        targetRoleARN: report.association.targetRoleARN,
        policy: report.association.policy,
        associationID: report.association.associationID,
        result: report.result,
        message: report.message,
      });
      if (c) {
        lastVerificationWrite.set(key, clock.now());
        const prev = getCondition(obj.status.conditions, 'Verified');
        if (prev?.status !== c.status || prev.reason !== c.reason) {
          if (c.status === 'True') events.normal(regardingOf(obj), 'Verified', c.message);
          else events.warning(regardingOf(obj), 'VerificationFailed', `${c.reason}: ${c.message}`);
        }
        current = { ...c, lastTransitionTime: '' };
        if (c.status === 'True')
          lastVerifiedTime = (report.at ?? new Date(clock.now())).toISOString().replace(/\.\d{3}Z$/, 'Z');
      }
    }
    const cluster = effectiveCluster(obj, config.clusterName);
    const local = cluster === config.clusterName;
    // Entries just deleted for drift may still be in the informer: they no longer count.
    const fresh = local && !invalidated ? freshVerifiedAt(obj) : undefined;
    const waitingFor = !local
      ? `the association is for cluster "${cluster}"; only associations of "${config.clusterName}" (--cluster-name) can be verified from here`
      : !config.probe
        ? 'waiting for a workload Pod of the ServiceAccount to be verified (--association-probe=false)'
        : undefined;
    const failure = probeFailures.get(key);
    const failed =
      failure && failure.generation === obj.generation && clock.now() - failure.at < config.resyncMs
        ? failure
        : undefined;
    if (failure && !failed) probeFailures.delete(key);
    const verified = deriveVerified({
      generation: obj.generation,
      synced: true,
      current,
      freshVerifiedAt: fresh,
      probeError: failed?.message,
      waitingFor,
    });
    const mine = probesOf(obj);
    if (verified.status === 'True') {
      // Verified through the verified set: the entry's time, recorded once on the transition to True.
      if (!lastVerifiedTime && fresh && getCondition(obj.status.conditions, 'Verified')?.status !== 'True')
        lastVerifiedTime = fresh;
      return { verified, lastVerifiedTime, deleteProbes: mine, createProbe: false };
    }
    const remembered = recentProbes.get(obj.uid);
    if (remembered && clock.now() - remembered.at > PROBE_MEMORY_MS) recentProbes.delete(obj.uid);
    const probeForGen =
      mine.some((p) => p.generation === obj.generation) ||
      (remembered?.generation === obj.generation && clock.now() - remembered.at <= PROBE_MEMORY_MS);
    return {
      verified,
      lastVerifiedTime,
      deleteProbes: mine.filter((p) => p.generation !== obj.generation),
      // After a failure, again at the next resync (or a new generation), not in a loop.
      createProbe: local && config.probe && !probeForGen && !fresh && !failed,
    };
  };

  /** Deletes and creates probe Pods after the status write; returns the API error when the probe cannot be made. */
  const applyProbePlan = async (
    key: string,
    obj: LanyardAssociation,
    plan: VerificationPlan,
  ): Promise<string | undefined> => {
    for (const p of plan.deleteProbes) await deletePod(p.namespace, p.name);
    if (plan.verified.status === 'True') recentProbes.delete(obj.uid);
    if (!plan.createProbe) return undefined;
    // The plan may be a moment old: not for an object being deleted, nor twice for one generation.
    const now = await read(key);
    if (!now || now.metadata?.deletionTimestamp || now.metadata?.uid !== obj.uid) return undefined;
    const remembered = recentProbes.get(obj.uid);
    if (remembered?.generation === obj.generation && clock.now() - remembered.at <= PROBE_MEMORY_MS)
      return undefined;
    if (probesOf(obj).some((p) => p.generation === obj.generation)) return undefined;
    try {
      const pod = await kube.create(
        `/api/v1/namespaces/${encodeURIComponent(obj.namespace)}/pods`,
        probePod(obj),
      );
      recentProbes.set(obj.uid, {
        name: String(pod?.metadata?.name),
        generation: obj.generation,
        at: clock.now(),
      });
      return undefined;
    } catch (e) {
      return `cannot create the probe Pod: ${errorMessage(e)}`;
    }
  };

  // ---- Reconcile (§3.1, §3.2) --------------------------------------------------------------------------------------

  const syncedCond = (
    obj: LanyardAssociation,
    status: 'True' | 'False' | 'Unknown',
    reason: string,
    message: string,
  ): Cond => ({
    type: 'Synced',
    status,
    reason,
    message,
    observedGeneration: obj.generation,
  });

  const notSyncedVerified = (obj: LanyardAssociation): Cond =>
    deriveVerified({
      generation: obj.generation,
      synced: false,
      current: getCondition(obj.status.conditions, 'Verified'),
    });

  /** Writes Synced=False with a reason and derived Verified/Ready; emits the matching Event on a change. */
  const failSynced = async (
    obj: LanyardAssociation,
    reason: SyncedFalseReason,
    message: string,
    o: { extra?: Record<string, unknown>; verified?: Cond } = {},
  ): Promise<LanyardAssociation> => {
    const synced = syncedCond(obj, 'False', reason, message);
    if (!conditionUnchanged(obj.status.conditions, synced)) {
      if (reason === 'PolicyDenied') events.warning(regardingOf(obj), 'PolicyDenied', message);
      else if (reason === 'RolePropagating') events.normal(regardingOf(obj), 'RolePropagating', message);
      else if (reason !== 'Duplicate') events.warning(regardingOf(obj), 'SyncFailed', message);
    }
    return await writeConditions(obj, synced, o.verified ?? notSyncedVerified(obj), o.extra);
  };

  /** Pods of the ServiceAccount that have not finished (probe Pods aside); undefined when they cannot be listed. */
  const runningPods = async (namespace: string, serviceAccount: string): Promise<number | undefined> => {
    try {
      const list = await kube.get(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`, {
        fieldSelector: `spec.serviceAccountName=${serviceAccount}`,
      });
      return (list?.items ?? []).filter(
        (p: Json) =>
          p?.status?.phase !== 'Succeeded' &&
          p?.status?.phase !== 'Failed' &&
          p?.metadata?.labels?.[PROBE_LABEL] !== 'true',
      ).length;
    } catch (e) {
      log.warn({ namespace, serviceAccount, err: e }, 'cannot count Pods');
      return undefined;
    }
  };

  /**
   * A denied object (docs/adr/0202): never created; an existing association is removed (`delete`) or only reported
   * (`preview`). Either way Synced and Ready are False with reason PolicyDenied and a Warning Event says what happened.
   */
  const handleDenied = async (
    key: string,
    obj: LanyardAssociation,
    refusal: string,
    handling: DeniedHandling,
  ): Promise<{ requeueAfterMs: number }> => {
    counter.inc({ result: 'terminal' });
    const pair = { namespace: obj.namespace, serviceAccount: obj.spec.serviceAccount };
    const pods = handling.kind === 'none' ? 0 : await runningPods(pair.namespace, pair.serviceAccount);
    const message = policyDeniedMessage(refusal, handling, pair, pods);
    if (handling.kind !== 'remove') {
      await failSynced(obj, 'PolicyDenied', message);
      return { requeueAfterMs: config.resyncMs };
    }
    try {
      await eks.delete(handling.cluster, handling.associationId);
    } catch (e) {
      const f = toFailure('delete', e);
      if (f.cls.kind !== 'notFound') {
        const text = `${refusal}; removing association ${handling.associationId} from EKS failed: ${f.text}`;
        await failSynced(obj, 'PolicyDenied', text);
        throw new RetryLater(text);
      }
    }
    lastSeen.delete(key);
    await deletePairVerifiedIdentities(obj.namespace, obj.spec.serviceAccount);
    for (const p of probesOf(obj)) await deletePod(p.namespace, p.name);
    // The association is gone: an exchange reported earlier no longer says anything.
    const verified: Cond = {
      type: 'Verified',
      status: 'Unknown',
      reason: 'NotSynced',
      message: 'waiting for Synced=True',
      observedGeneration: obj.generation,
    };
    await failSynced(obj, 'PolicyDenied', message, { extra: removedFields(handling.associationId), verified });
    log.info({ association: key, associationID: handling.associationId, pods }, 'removed an association no IdentityPolicy allows');
    return { requeueAfterMs: config.resyncMs };
  };

  const reconcile = async (key: string): Promise<{ requeueAfterMs?: number } | void> => {
    // Before the first list of IdentityPolicies the set would look empty, and no policies allows everything: a denied
    // association must not be created in that window (docs/adr/0202).
    if (!policies.synced || !namespaces.synced) return { requeueAfterMs: 200 };
    const namespace = key.slice(0, key.indexOf('/'));
    const raw = await read(key);
    if (!raw) {
      lastSeen.delete(key);
      rolePropagation.delete(key);
      pendingReports.delete(key);
      lastVerificationWrite.delete(key);
      return;
    }
    let obj = parseLanyardAssociation(raw);
    const cluster = effectiveCluster(obj, config.clusterName);
    const others = lookup
      .recordsFor(cluster, namespace, obj.spec.serviceAccount)
      .filter((r) => r.uid !== obj.uid);
    // The object itself counts even before the index has seen it.
    const owner = selectOwner([...others, recordOf(obj, config.clusterName)]);
    const deleting = others.find((r) => r.pendingDelete);
    const nsLabels = namespaces.get(namespace)?.labels;
    const decision = decidePolicy(currentPolicies(), {
      namespace,
      namespaceLabels: nsLabels,
      serviceAccount: obj.spec.serviceAccount,
      roleARN: obj.spec.roleARN,
      targetRoleARN: obj.spec.targetRoleARN,
    });
    const step = nextStep({
      obj,
      cluster,
      owner,
      policy: decision.allowed ? { allowed: true } : { allowed: false, message: decision.message },
      deniedAction: config.deniedAssociationAction,
      deleting,
    });

    switch (step.kind) {
      case 'ignore':
        return;
      case 'releaseRetained':
        await removeFinalizer(obj);
        log.info(
          { association: key, associationID: obj.status.associationID },
          'deletion policy retain: association kept in EKS',
        );
        return;
      case 'delete':
        return await finalizeDelete(key, obj, step.cluster, step.associationId);
      case 'duplicate':
        counter.inc({ result: 'terminal' });
        await failSynced(
          obj,
          'Duplicate',
          `ServiceAccount ${namespace}/${obj.spec.serviceAccount} in cluster ${cluster} is already associated by ${describeRecord(step.owner)}`,
        );
        return { requeueAfterMs: config.resyncMs };
      case 'waitForDeletion': {
        // Requeued by the index when the other object is gone.
        const synced = syncedCond(
          obj,
          'Unknown',
          'Reconciling',
          `waiting for ${describeRecord(step.other)} to delete association ${step.other.associationID} before taking over ServiceAccount ${namespace}/${obj.spec.serviceAccount}`,
        );
        await writeConditions(obj, synced, notSyncedVerified(obj));
        return { requeueAfterMs: config.resyncMs };
      }
      case 'policyDenied':
        return await handleDenied(key, obj, step.message, step.handling);
      case 'invalidSpec':
        counter.inc({ result: 'terminal' });
        await failSynced(obj, 'InvalidSpec', step.message);
        return { requeueAfterMs: config.resyncMs };
      case 'addFinalizer':
        obj = await addFinalizer(obj);
        break;
      default:
        break;
    }

    try {
      return await sync(key, obj, cluster);
    } catch (e) {
      if (!(e instanceof StepFailure)) throw e;
      return await handleFailure(key, obj, e);
    }
  };

  const handleFailure = async (
    key: string,
    obj: LanyardAssociation,
    f: StepFailure,
  ): Promise<{ requeueAfterMs: number }> => {
    lastSeen.delete(key);
    // Re-read: the failing step may have written status (id persisted) before failing.
    const raw = await read(key);
    const fresh = raw ? parseLanyardAssociation(raw) : obj;
    // The spec changed while the step ran: its outcome is about the old spec and must not be stamped with the new
    // generation. The change itself queued the key again.
    if (fresh.generation !== obj.generation) return { requeueAfterMs: 0 };
    switch (f.cls.kind) {
      case 'rolePropagating': {
        const next = nextRolePropagation(
          rolePropagation.get(key),
          fresh.generation,
          clock.now(),
          config.rolePropagationTimeoutMs,
        );
        rolePropagation.set(key, next.state);
        if (next.retryInMs !== undefined) {
          counter.inc({ result: 'retry' });
          await failSynced(
            fresh,
            'RolePropagating',
            `IAM has not propagated the role yet; retrying (${f.text})`,
          );
          return { requeueAfterMs: next.retryInMs };
        }
        counter.inc({ result: 'terminal' });
        await failSynced(
          fresh,
          'RoleNotFound',
          `the role still does not exist ${Math.round(config.rolePropagationTimeoutMs / 1000)}s after the first attempt: ${f.text}`,
        );
        return { requeueAfterMs: config.resyncMs };
      }
      case 'terminal':
        counter.inc({ result: 'terminal' });
        await failSynced(fresh, f.cls.reason, refusalText(fresh, f.text));
        return { requeueAfterMs: config.resyncMs };
      case 'notFound':
        // Update or tagging found the association gone: the next pass describes it and recreates it. Not at once:
        // Describe may still show it for a moment (eventual consistency).
        counter.inc({ result: 'retry' });
        return { requeueAfterMs: 1000 };
      default:
        counter.inc({ result: 'retry' });
        await failSynced(fresh, 'AWSError', f.text);
        throw new RetryLater(f.text);
    }
  };

  const call = async <T>(op: EksOperation, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (e) {
      throw toFailure(op, e);
    }
  };

  /** Create (5), adopt (5a), describe (6), drift (7), tags (8), in sync (9). */
  const sync = async (
    key: string,
    start: LanyardAssociation,
    cluster: string,
  ): Promise<{ requeueAfterMs: number }> => {
    let obj = start;
    const desired = desiredOf(obj, config.clusterName);
    let observed: Association | undefined;
    let result: Result = 'in_sync';

    let replacing: string | undefined;
    let fromAws = true;
    const known = lastSeen.get(key);
    if (
      known &&
      known.generation === obj.generation &&
      known.association.associationId === obj.status.associationID &&
      clock.now() - known.at < config.resyncMs / 2
    ) {
      // A reconcile for verification right after a sync: EKS was read moments ago, drift is the resync's job.
      observed = known.association;
      fromAws = false;
    } else if (obj.status.associationID) {
      try {
        observed = await eks.describe(cluster, obj.status.associationID);
      } catch (e) {
        const f = toFailure('describe', e);
        if (f.cls.kind !== 'notFound') throw f;
        replacing = obj.status.associationID;
        events.warning(
          regardingOf(obj),
          'Recreated',
          `association ${replacing} was deleted outside Lanyard; creating it again`,
        );
      }
    }

    if (!observed) {
      // The deleted id stays in status until the new one replaces it, so a crash in between recreates with the same token.
      const made = await createOrAdopt(obj, desired, cluster, replacing);
      observed = made.association;
      if (made.created) await deps.hooks?.afterCreate?.(key, made.association);
      result = made.created ? 'created' : 'adopted';
      if (made.created) {
        events.normal(
          regardingOf(obj),
          'Created',
          `created association ${observed.associationId} in cluster ${cluster}`,
        );
      } else {
        events.normal(
          regardingOf(obj),
          'Adopted',
          `adopted existing association ${observed.associationId} for ${desired.namespace}/${desired.serviceAccount} in cluster ${cluster}`,
        );
      }
    }
    rolePropagation.delete(key);

    const plan = planSync(desired, observed);
    const tagging = Object.keys(plan.tagsToSet).length > 0 || plan.tagKeysToRemove.length > 0;
    if (obj.status.associationID !== observed.associationId && (plan.update || tagging)) {
      // Persisted before any further AWS step, so a failure there never loses the id. Without one, the id goes out
      // with the conditions in the single status write below, still before anything else (probe Pods come after).
      obj = await writeStatus(obj, idFields(cluster, observed));
    }
    let invalidated = false;
    if (plan.update) {
      const outOfBand = isOutOfBand(obj) && result === 'in_sync';
      const id = observed.associationId;
      observed = await call('update', () =>
        eks.update({
          clusterName: cluster,
          associationId: id,
          ...plan.update!,
          clientRequestToken: randomUUID(),
        }),
      );
      if (outOfBand)
        events.warning(
          regardingOf(obj),
          'DriftCorrected',
          `corrected a change made outside Lanyard: ${driftText(plan.drift)}`,
        );
      else
        events.normal(
          regardingOf(obj),
          'Updated',
          `updated association ${observed.associationId}: ${driftText(plan.drift)}`,
        );
      await deletePairVerifiedIdentities(obj.namespace, obj.spec.serviceAccount);
      invalidated = true;
      if (result === 'in_sync') result = 'updated';
    }
    if (tagging) {
      const arn = observed.associationArn;
      if (Object.keys(plan.tagsToSet).length > 0)
        await call('tag', () => eks.tagResource(arn, plan.tagsToSet));
      if (plan.tagKeysToRemove.length > 0)
        await call('untag', () => eks.untagResource(arn, plan.tagKeysToRemove));
      const parts = [
        ...Object.keys(plan.tagsToSet).map((k) => `set ${k}`),
        ...plan.tagKeysToRemove.map((k) => `removed ${k}`),
      ];
      events.normal(regardingOf(obj), 'TagsUpdated', parts.join(', '));
      if (result === 'in_sync') result = 'updated';
    }

    const synced = syncedCond(
      obj,
      'True',
      'InSync',
      `EKS association ${observed.associationId} has the desired role, target role, session-tag flag, session policy and tags`,
    );
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(idFields(cluster, observed))) {
      if (((obj.status as Record<string, unknown>)[k] ?? null) !== v) extra[k] = v;
    }
    // The identity as it is after this write, for the verified-set fingerprint.
    const current: LanyardAssociation = {
      ...obj,
      status: { ...obj.status, associationID: observed.associationId },
    };
    const v = planVerification(key, current, invalidated);
    if (v.lastVerifiedTime) extra.lastVerifiedTime = v.lastVerifiedTime;
    await writeConditions(obj, synced, v.verified, extra);
    if (v.createProbe || v.deleteProbes.length > 0) {
      probeWork.set(key, { obj: current, plan: v });
      probeQueue.add(key);
    }
    // What EKS holds now: the last answer, with the tags just written. Only a real read restarts the clock.
    if (fromAws || plan.update || tagging) {
      lastSeen.set(key, {
        generation: obj.generation,
        at: clock.now(),
        association: { ...observed, tags: { ...desired.tags } },
      });
    }
    counter.inc({ result });
    return { requeueAfterMs: config.resyncMs };
  };

  /** 5: Create with clientRequestToken = uid; 5a: on 409, adopt. */
  const createOrAdopt = async (
    obj: LanyardAssociation,
    desired: DesiredAssociation,
    cluster: string,
    replacing: string | undefined,
  ): Promise<{ association: Association; created: boolean }> => {
    try {
      const association = await eks.createPodIdentityAssociation({
        clusterName: cluster,
        namespace: desired.namespace,
        serviceAccount: desired.serviceAccount,
        roleArn: desired.roleArn,
        targetRoleArn: desired.targetRoleArn || undefined,
        disableSessionTags: desired.disableSessionTags,
        ...(desired.policy ? { policy: desired.policy } : {}),
        tags: desired.tags,
        clientRequestToken: createToken(obj.uid, replacing ?? obj.status.removedAssociationID),
      });
      return { association, created: true };
    } catch (e) {
      const f = toFailure('create', e);
      if (f.cls.kind !== 'adopt') throw f;
      return { association: await adopt(obj, cluster, f.cls.associationId, f.text), created: false };
    }
  };

  /** 5a: the id from the 409 message, else the one exact List match; then Describe (List carries no role). */
  const adopt = async (
    obj: LanyardAssociation,
    cluster: string,
    fromMessage: string | undefined,
    text: string,
  ): Promise<Association> => {
    let id = fromMessage;
    if (!id) {
      const found = await call('list', () =>
        eks.list(cluster, { namespace: obj.namespace, serviceAccount: obj.spec.serviceAccount }),
      );
      const exact = found.filter(
        (a) => a.namespace === obj.namespace && a.serviceAccount === obj.spec.serviceAccount,
      );
      if (exact.length !== 1) {
        throw new StepFailure(
          'list',
          { kind: 'retryable', reason: 'AWSError' },
          `${text}; List found ${exact.length} matching associations`,
        );
      }
      id = exact[0]!.associationId;
    }
    return await call('describe', () => eks.describe(cluster, id));
  };

  const finalizeDelete = async (
    key: string,
    obj: LanyardAssociation,
    cluster: string,
    associationId: string | undefined,
  ): Promise<void> => {
    if (associationId) {
      try {
        await eks.delete(cluster, associationId);
      } catch (e) {
        const f = toFailure('delete', e);
        if (f.cls.kind !== 'notFound') {
          const message = `cannot delete association ${associationId}: ${f.text}`;
          await failSynced(obj, 'DeleteFailed', message);
          throw new RetryLater(message);
        }
      }
      await deletePairVerifiedIdentities(obj.namespace, obj.spec.serviceAccount);
    }
    for (const p of probesOf(obj)) await deletePod(p.namespace, p.name);
    await removeFinalizer(obj);
    lastSeen.delete(key);
    rolePropagation.delete(key);
    pendingReports.delete(key);
    recentProbes.delete(obj.uid);
    if (associationId)
      events.normal(
        regardingOf(obj),
        'Deleted',
        `deleted association ${associationId} in cluster ${cluster}`,
      );
  };

  // ---- Verifier reports --------------------------------------------------------------------------------------------

  const recordVerification = (v: AssociationVerification): void => {
    const a = v.association;
    if (a.kind === 'ack') {
      // Observed ACK objects are never written: the outcome becomes an Event on them.
      const regarding = {
        apiVersion: `${ACK_GROUP}/${VERSION}`,
        kind: KIND,
        metadata: { name: a.objectName, namespace: a.objectNamespace, uid: a.uid },
      };
      if (v.result === 'CredentialsMatch') events.normal(regarding, 'IdentityVerified', v.message);
      else events.warning(regarding, 'IdentityNotVerified', `${v.result}: ${v.message}`);
      return;
    }
    const key = `${a.objectNamespace}/${a.objectName}`;
    pendingReports.set(key, v);
    scheduleReport(key);
  };

  const scheduleReport = (key: string): void => {
    if (reportTimers.has(key)) return;
    const wait = (lastVerificationWrite.get(key) ?? -Infinity) + VERIFICATION_WRITE_INTERVAL_MS - clock.now();
    if (wait <= 0) {
      queue.add(key);
      return;
    }
    const t = setTimeout(() => {
      reportTimers.delete(key);
      queue.add(key);
    }, wait);
    t.unref?.();
    reportTimers.set(key, t);
  };

  // ---- Start -------------------------------------------------------------------------------------------------------

  const loop = runControllerLoop({
    name: 'associations',
    queue,
    workers: config.workers,
    metrics: deps.metrics,
    reconcile,
    onError: (key, e, retryInMs) => {
      if (e instanceof RetryLater)
        log.info({ association: key, retryInMs, err: e.message }, 'association will be retried');
      else
        log.error(
          { association: key, retryInMs, err: e },
          'association reconcile failed',
        );
    },
  });

  const probeLoop = runControllerLoop({
    name: 'association-probes',
    queue: probeQueue,
    workers: PROBE_WORKERS,
    metrics: deps.metrics,
    reconcile: async (key) => {
      const work = probeWork.get(key);
      probeWork.delete(key);
      if (!work) return;
      let error: string | undefined;
      try {
        error = await applyProbePlan(key, work.obj, work.plan);
      } catch (e) {
        // Retried with backoff, unless a newer plan arrived meanwhile.
        if (!probeWork.has(key)) probeWork.set(key, work);
        throw e;
      }
      if (error) {
        probeFailures.set(key, { generation: work.obj.generation, message: error, at: clock.now() });
        queue.add(key);
      } else if (work.plan.createProbe) {
        probeFailures.delete(key);
      }
    },
    onError: (key, e, retryInMs) =>
      log.warn(
        { association: key, retryInMs, err: e },
        'probe Pod cleanup failed',
      ),
  });

  const waitForSync = async (timeoutMs: number): Promise<boolean> => {
    const results = await Promise.all([
      lookup.waitForSync(timeoutMs),
      objects.waitForSync(timeoutMs),
      policies.waitForSync(timeoutMs),
      namespaces.waitForSync(timeoutMs),
      vis.waitForSync(timeoutMs),
      probes.waitForSync(timeoutMs),
    ]);
    return results.every(Boolean);
  };

  return {
    lookup,
    recordVerification,
    waitForSync,
    async stop() {
      unsubscribe();
      unsubscribePods?.();
      queue.shutdown();
      probeQueue.shutdown();
      for (const t of reportTimers.values()) clearTimeout(t);
      reportTimers.clear();
      for (const v of [objects, policies, namespaces, vis, probes]) v.close();
      if (ownLookup) await lookup.stop();
      releaseCache();
      await Promise.all([loop, probeLoop]);
    },
  };
}
