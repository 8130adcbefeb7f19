// The promotion reconciler's apply step (docs/promotions.md): the writes a decision calls for, each answer recorded
// in the shared cache (docs/adr/1000-shared-informer-cache-and-reconcilers.md) so the next pass does not act on the
// state before it, and the Events and metrics that say what happened.
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject, Stored } from '../core/kube-object.ts';
import {
  isAlreadyExists,
  isConflict,
  KubeApiError,
  getOrUndefined,
  orUndefinedIfNotFound,
  type KubeClient,
} from '../kube/client.ts';
import type { CacheView } from '../kube/cache.ts';
import type { EventRecorder } from '../kube/events.ts';
import { setCondition, type Condition } from '../kube/conditions.ts';
import type { Logger } from '../runtime/log.ts';
import { FINALIZER, podName } from './build.ts';
import { releasedStageStatus, terminalStatus, type TerminalPhase } from './decide.ts';
import { apiPath, GROUP, VERSION, type PromotionViews } from './gather.ts';
import type { PromotionMetrics } from './controller-metrics.ts';
import { stopSteps } from './status.ts';
import type { Promotion, PromotionStatus, Stage, StoredPromotion, StoredStage } from './types.ts';
import type { BuiltPod } from './build.ts';

const MERGE = 'application/merge-patch+json';
export const DELETE_GRACE_SECONDS = 10;

/** What the writes need. */
export interface PromotionWriter {
  kube: KubeClient;
  log: Logger;
  events: EventRecorder;
  views: PromotionViews;
  metrics: PromotionMetrics;
  now: () => number;
}

/** Shows the object a write returned in every view of its resource until the watch delivers it. */
function remember<T extends KubeObject>(view: CacheView<T>, obj: T): T {
  view.recordWrite(obj);
  return obj;
}

/** Listed objects (the cache) may lack apiVersion/kind; an Event needs them to name its object. */
export const asPromotion = <T extends Promotion>(promo: T): T => ({
  ...promo,
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'Promotion',
});
export const asStage = <T extends Stage>(stage: T): T => ({
  ...stage,
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'Stage',
});

/**
 * Status writes carry the resourceVersion that was read: reconciles read the informer's cache, and a stale copy
 * must never overwrite a newer status (a terminal phase above all). A conflict requeues the key.
 */
export async function patchStatus(
  w: PromotionWriter,
  promo: StoredPromotion,
  status: PromotionStatus,
): Promise<StoredPromotion> {
  const updated = await w.kube.patch<StoredPromotion>(
    apiPath('promotions', promo.metadata.namespace, promo.metadata.name, 'status'),
    { metadata: { resourceVersion: promo.metadata.resourceVersion }, status },
    MERGE,
  );
  return remember(w.views.promotions, updated);
}

export async function addFinalizer(w: PromotionWriter, promo: StoredPromotion): Promise<StoredPromotion> {
  return remember(
    w.views.promotions,
    await w.kube.patch<StoredPromotion>(
      apiPath('promotions', promo.metadata.namespace, promo.metadata.name),
      {
        metadata: {
          finalizers: [...(promo.metadata.finalizers ?? []), FINALIZER],
          resourceVersion: promo.metadata.resourceVersion,
        },
      },
      MERGE,
    ),
  );
}

export async function removeFinalizer(w: PromotionWriter, promo: StoredPromotion): Promise<void> {
  const finalizers = promo.metadata.finalizers ?? [];
  await w.kube
    .patch<StoredPromotion>(apiPath('promotions', promo.metadata.namespace, promo.metadata.name), [
      { op: 'test', path: '/metadata/finalizers', value: finalizers },
      { op: 'replace', path: '/metadata/finalizers', value: finalizers.filter((f) => f !== FINALIZER) },
    ])
    .catch(orUndefinedIfNotFound);
}

/** Writes a terminal phase (always first), then counts it and tells the user. */
export async function finish(
  w: PromotionWriter,
  promo: StoredPromotion,
  phase: TerminalPhase,
  reason: string,
  message: string,
  o: { extra?: PromotionStatus; invalid?: boolean } = {},
): Promise<StoredPromotion> {
  const updated = await patchStatus(
    w,
    promo,
    terminalStatus(promo, { phase, reason, message, invalid: o.invalid, extra: o.extra, now: w.now() }),
  );
  w.metrics.finished(phase, Date.parse(promo.metadata.creationTimestamp), w.now());
  const obj = asPromotion(promo);
  if (phase === 'Succeeded') w.events.normal(obj, 'PromotionSucceeded', message);
  else w.events.warning(obj, `Promotion${phase}`, `${reason}: ${message}`);
  w.log.info(
    { promotion: `${promo.metadata.namespace}/${promo.metadata.name}`, phase, reason },
    'promotion finished',
  );
  return updated;
}

export async function deletePod(w: PromotionWriter, name: string, graceSeconds: number): Promise<void> {
  await w.kube
    .delete(`/api/v1/namespaces/${w.views.agentNs}/pods/${name}`, {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: graceSeconds,
    })
    .catch(orUndefinedIfNotFound);
}

/** Clears the Stage lock if `promo` holds it, recording the last promotion; then wakes the Stage's queue. */
export async function releaseLock(
  w: PromotionWriter,
  promo: Pick<StoredPromotion, 'spec'> & { metadata: { name: string; namespace: string } },
  phase: string,
  finishedAt: string | undefined,
): Promise<void> {
  const ns = promo.metadata.namespace;
  const stageName = promo.spec.stage;
  for (let attempt = 0; attempt < 5; attempt++) {
    const stage = await getOrUndefined<StoredStage>(w.kube, apiPath('stages', ns, stageName));
    const status = releasedStageStatus(stage, promo.metadata.name, phase, finishedAt, w.now());
    if (!status) break;
    try {
      remember(
        w.views.stages,
        await w.kube.update<StoredStage>(apiPath('stages', ns, stageName, 'status'), { ...stage, status }),
      );
      break;
    } catch (e) {
      if (!isConflict(e) || attempt === 4) throw e;
    }
  }
  w.views.wakeStage(ns, stageName);
}

/** Takes the Stage lock; a conflict means another worker (or writer) changed the Stage since it was read. */
export async function takeLock(
  w: PromotionWriter,
  stage: StoredStage,
  promotion: string,
): Promise<StoredStage> {
  return remember(
    w.views.stages,
    await w.kube.update<StoredStage>(
      apiPath('stages', stage.metadata.namespace, stage.metadata.name, 'status'),
      {
        ...stage,
        status: { ...(stage.status ?? {}), currentPromotion: promotion },
      },
    ),
  );
}

export async function abort(
  w: PromotionWriter,
  promo: StoredPromotion,
  reason: string,
  message: string,
): Promise<void> {
  const updated = await finish(w, promo, 'Aborted', reason, message, {
    extra: { steps: stopSteps(promo.status?.steps ?? [], 'Aborted', message) },
  });
  if (promo.status?.pod) await deletePod(w, podName(promo.metadata.uid), DELETE_GRACE_SECONDS);
  await releaseLock(w, updated, 'Aborted', updated.status?.finishedAt);
}

export async function errored(
  w: PromotionWriter,
  promo: StoredPromotion,
  reason: string,
  message: string,
  invalid: boolean,
): Promise<void> {
  const updated = await finish(w, promo, 'Errored', reason, message, {
    invalid,
    extra: { steps: stopSteps(promo.status?.steps ?? [], 'Errored', message) },
  });
  await releaseLock(w, updated, 'Errored', updated.status?.finishedAt);
}

/** Creates the Promotion's Pod (an existing one from an earlier pass is read); `rejected` when the API server refuses it. */
export async function createPod(
  w: PromotionWriter,
  pod: BuiltPod,
): Promise<{ pod: Stored<Pod> } | { rejected: string }> {
  try {
    return { pod: await w.kube.create<Stored<Pod>>(`/api/v1/namespaces/${w.views.agentNs}/pods`, pod) };
  } catch (e) {
    if (isAlreadyExists(e))
      return {
        pod: await w.kube.get<Stored<Pod>>(`/api/v1/namespaces/${w.views.agentNs}/pods/${pod.metadata.name}`),
      };
    if (e instanceof KubeApiError && [400, 403, 404, 422].includes(e.status))
      return { rejected: `the API server refused the pod: ${e.serverMessage || e.reason}` };
    throw e;
  }
}

/** Writes a Stage's `Valid` condition. */
export async function writeStageValid(
  w: PromotionWriter,
  stage: StoredStage,
  valid: Omit<Condition, 'lastTransitionTime'>,
): Promise<void> {
  const conditions = setCondition(stage.status?.conditions, valid, new Date(w.now()));
  remember(
    w.views.stages,
    await w.kube.patch<StoredStage>(
      apiPath('stages', stage.metadata.namespace, stage.metadata.name, 'status'),
      { status: { conditions } },
      MERGE,
    ),
  );
}
