// The association controller's apply step (docs/associations.md): the EKS calls and Kubernetes writes a decision
// calls for. Every answer to a write on the object goes into the shared cache (recordWrite), so the next pass does
// not act on the state before it (docs/adr/1000-shared-informer-cache-and-reconcilers.md); Events say what happened.
import { randomUUID } from 'node:crypto';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
import { errorMessage } from '../core/errors.ts';
import { orUndefinedIfNotFound, type KubeClient } from '../kube/client.ts';
import type { EventRecorder } from '../kube/events.ts';
import { conditionUnchanged, setCondition, type Condition } from '../kube/conditions.ts';
import type { Association, AwsClients } from '../aws/index.ts';
import { isAwsError } from '../aws/index.ts';
import { readyWithPodsWithoutIdentity } from '../identities/ready.ts';
import type { PodsWithoutIdentity } from './index.ts';
import { API, assocPath, type AssociationViews } from './gather.ts';
import {
  FINALIZER,
  GROUP,
  KIND,
  PROBE_GATE,
  PROBE_GENERATION_ANNOTATION,
  PROBE_LABEL,
  VERSION,
  parseLanyardAssociation,
  type DesiredAssociation,
  type LanyardAssociation,
} from './model.ts';
import {
  classifyAwsError,
  createToken,
  deriveReady,
  driftText,
  statusUnchanged,
  syncedFalseEvent,
  type Cond,
  type EksOperation,
  type ErrorClass,
  type SyncPlan,
  type SyncedFalseReason,
} from './decide.ts';

/** What the writes need. */
export interface AssociationWriter {
  kube: KubeClient;
  eks: Pick<AwsClients, 'eks'>['eks'];
  events: EventRecorder;
  views: AssociationViews;
  now: () => number;
  probeImage: string;
  podsWithoutIdentity?: PodsWithoutIdentity;
}

/** An AWS failure carried out of a step, already classified. */
export class StepFailure extends Error {
  constructor(
    readonly op: EksOperation,
    readonly cls: ErrorClass,
    readonly text: string,
  ) {
    super(text);
  }
}

/** Thrown after the status was written, so the work queue retries with its per-key backoff. */
export class RetryLater extends Error {}

export function toFailure(op: EksOperation, e: unknown): StepFailure {
  if (isAwsError(e)) return new StepFailure(op, classifyAwsError(op, e), e.describe());
  // Not an AWS answer (a bug or a local failure): retry with backoff, say what happened.
  return new StepFailure(op, { kind: 'retryable', reason: 'AWSError' }, `${op}: ${errorMessage(e)}`);
}

export async function call<T>(op: EksOperation, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toFailure(op, e);
  }
}

export function regardingOf(obj: LanyardAssociation): KubeObject {
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

// ---- Kubernetes writes ------------------------------------------------------------------------------------------

export async function writeStatus(
  w: AssociationWriter,
  obj: LanyardAssociation,
  status: Record<string, unknown>,
): Promise<LanyardAssociation> {
  const updated = await w.kube.patch(
    assocPath(obj.namespace, obj.name, 'status'),
    { status },
    'application/merge-patch+json',
  );
  w.views.objects.recordWrite(updated);
  return parseLanyardAssociation(updated);
}

/** Writes the three conditions (and extra fields) when anything changed; returns the object as stored. */
export async function writeConditions(
  w: AssociationWriter,
  obj: LanyardAssociation,
  synced: Cond,
  verified: Cond,
  extra: Record<string, unknown> = {},
): Promise<LanyardAssociation> {
  const sa = obj.spec.serviceAccount;
  const ready = readyWithPodsWithoutIdentity(
    deriveReady(obj.generation, synced, verified),
    w.podsWithoutIdentity?.missingFor(obj.namespace, sa) ?? 0,
    obj.namespace,
    sa,
  );
  if (statusUnchanged(obj, [synced, verified, ready], extra)) return obj;
  const now = new Date(w.now());
  let conditions: Condition[] = obj.status.conditions;
  for (const c of [synced, verified, ready]) conditions = setCondition(conditions, c, now);
  return await writeStatus(w, obj, { ...extra, observedGeneration: obj.generation, conditions });
}

export function syncedCond(
  obj: LanyardAssociation,
  status: 'True' | 'False' | 'Unknown',
  reason: string,
  message: string,
): Cond {
  return { type: 'Synced', status, reason, message, observedGeneration: obj.generation };
}

/** Writes Synced=False with a reason and the given Verified; raises the matching Event when Synced changes. */
export async function failSynced(
  w: AssociationWriter,
  obj: LanyardAssociation,
  reason: SyncedFalseReason,
  message: string,
  verified: Cond,
  extra?: Record<string, unknown>,
): Promise<LanyardAssociation> {
  const synced = syncedCond(obj, 'False', reason, message);
  const event = syncedFalseEvent(reason);
  if (event && !conditionUnchanged(obj.status.conditions, synced)) {
    if (event.type === 'Warning') w.events.warning(regardingOf(obj), event.reason, message);
    else w.events.normal(regardingOf(obj), event.reason, message);
  }
  return await writeConditions(w, obj, synced, verified, extra);
}

export async function addFinalizer(
  w: AssociationWriter,
  obj: LanyardAssociation,
): Promise<LanyardAssociation> {
  const ops: { op: 'test' | 'add'; path: string; value: unknown }[] = [
    { op: 'test', path: '/metadata/resourceVersion', value: obj.resourceVersion },
  ];
  ops.push(
    obj.finalizers.length === 0
      ? { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }
      : { op: 'add', path: '/metadata/finalizers/-', value: FINALIZER },
  );
  const updated = await w.kube.patch(assocPath(obj.namespace, obj.name), ops);
  w.views.objects.recordWrite(updated);
  return parseLanyardAssociation(updated);
}

export async function removeFinalizer(w: AssociationWriter, obj: LanyardAssociation): Promise<void> {
  const i = obj.finalizers.indexOf(FINALIZER);
  if (i < 0) return;
  // Already gone: nothing holds it.
  await w.kube
    .patch(assocPath(obj.namespace, obj.name), [
      { op: 'test', path: `/metadata/finalizers/${i}`, value: FINALIZER },
      { op: 'remove', path: `/metadata/finalizers/${i}` },
    ])
    .catch(orUndefinedIfNotFound);
}

/** Deletes a pair's VerifiedIdentities (drift, removal): an exchange made before says nothing about the change. */
export async function deleteVerifiedIdentities(
  w: AssociationWriter,
  namespace: string,
  serviceAccount: string,
): Promise<void> {
  for (const v of w.views.verifiedOf(namespace, serviceAccount)) {
    await w.kube
      .delete(
        `${API}/namespaces/${encodeURIComponent(namespace)}/verifiedidentities/${encodeURIComponent(v.name)}`,
      )
      .catch(orUndefinedIfNotFound);
  }
}

export async function deletePod(w: AssociationWriter, namespace: string, name: string): Promise<void> {
  await w.kube
    .delete(`/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, {
      gracePeriodSeconds: 0,
    })
    .catch(orUndefinedIfNotFound);
}

/** The probe Pod: gated for good (it never runs), so the verifier has a Pod to bind the token to. */
export function probePodBody(obj: LanyardAssociation, image: string): Pod {
  return {
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
          image,
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
  };
}

/** Creates the probe Pod; its name, or the API error when it cannot be made. */
export async function createProbePod(
  w: AssociationWriter,
  obj: LanyardAssociation,
): Promise<{ name: string } | { error: string }> {
  try {
    const pod = await w.kube.create(
      `/api/v1/namespaces/${encodeURIComponent(obj.namespace)}/pods`,
      probePodBody(obj, w.probeImage),
    );
    return { name: String(pod?.metadata?.name) };
  } catch (e) {
    return { error: `cannot create the probe Pod: ${errorMessage(e)}` };
  }
}

// ---- EKS --------------------------------------------------------------------------------------------------------

/** Create with clientRequestToken = uid; on 409, adopt. */
export async function createOrAdopt(
  w: AssociationWriter,
  obj: LanyardAssociation,
  desired: DesiredAssociation,
  cluster: string,
  replacing: string | undefined,
): Promise<{ association: Association; created: boolean }> {
  try {
    const association = await w.eks.createPodIdentityAssociation({
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
    return { association: await adopt(w, obj, cluster, f.cls.associationId, f.text), created: false };
  }
}

/** The id from the 409 message, else the one exact List match; then Describe (List carries no role). */
async function adopt(
  w: AssociationWriter,
  obj: LanyardAssociation,
  cluster: string,
  fromMessage: string | undefined,
  text: string,
): Promise<Association> {
  let id = fromMessage;
  if (!id) {
    const found = await call('list', () =>
      w.eks.list(cluster, { namespace: obj.namespace, serviceAccount: obj.spec.serviceAccount }),
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
  return await call('describe', () => w.eks.describe(cluster, id));
}

/** Describe; undefined when EKS no longer has the association (deleted outside Lanyard). */
export async function describe(
  w: AssociationWriter,
  cluster: string,
  associationId: string,
): Promise<Association | undefined> {
  try {
    return await w.eks.describe(cluster, associationId);
  } catch (e) {
    const f = toFailure('describe', e);
    if (f.cls.kind !== 'notFound') throw f;
    return undefined;
  }
}

/** Delete in EKS; a failure other than "already gone" is returned. */
export async function deleteInEks(
  w: AssociationWriter,
  cluster: string,
  associationId: string,
): Promise<StepFailure | undefined> {
  try {
    await w.eks.delete(cluster, associationId);
    return undefined;
  } catch (e) {
    const f = toFailure('delete', e);
    return f.cls.kind === 'notFound' ? undefined : f;
  }
}

/** Update (drift correction) in EKS; returns the association as EKS answered. */
export async function updateInEks(
  w: AssociationWriter,
  obj: LanyardAssociation,
  cluster: string,
  observed: Association,
  plan: SyncPlan & { update: NonNullable<SyncPlan['update']> },
  outOfBand: boolean,
): Promise<Association> {
  const id = observed.associationId;
  const updated = await call('update', () =>
    w.eks.update({
      clusterName: cluster,
      associationId: id,
      ...plan.update,
      clientRequestToken: randomUUID(),
    }),
  );
  if (outOfBand)
    w.events.warning(
      regardingOf(obj),
      'DriftCorrected',
      `corrected a change made outside Lanyard: ${driftText(plan.drift)}`,
    );
  else
    w.events.normal(
      regardingOf(obj),
      'Updated',
      `updated association ${updated.associationId}: ${driftText(plan.drift)}`,
    );
  return updated;
}

/** Sets and removes tags in EKS as the plan says. */
export async function retag(
  w: AssociationWriter,
  obj: LanyardAssociation,
  arn: string,
  plan: SyncPlan,
): Promise<void> {
  if (Object.keys(plan.tagsToSet).length > 0) await call('tag', () => w.eks.tagResource(arn, plan.tagsToSet));
  if (plan.tagKeysToRemove.length > 0)
    await call('untag', () => w.eks.untagResource(arn, plan.tagKeysToRemove));
  const parts = [
    ...Object.keys(plan.tagsToSet).map((k) => `set ${k}`),
    ...plan.tagKeysToRemove.map((k) => `removed ${k}`),
  ];
  w.events.normal(regardingOf(obj), 'TagsUpdated', parts.join(', '));
}
