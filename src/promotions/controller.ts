// The promotion reconciler (docs/promotions.md): Promotions -> pods in the agent namespace, one at a time per Stage
// (lock in the Stage's status.currentPromotion), pod status -> Promotion status, step timeouts, abort, finalizer,
// orphan sweep, retention, Events, metrics, and the Stage's `Valid` condition.
//
// One pass is `reconcilePromotion(ctx, ns, name)` or `reconcileStage(ctx, ns, name)`: gather (gather.ts: the views and
// what they say now), decide (decide.ts, build.ts, status.ts: pure), apply (apply.ts: the writes). This file is the
// chain and the wiring (docs/adr/1000-shared-informer-cache-and-reconcilers.md).
import type { PromotionConfig } from '../config/promotions.ts';
import type { StoredPromotion, StoredStage } from './types.ts';
import { getOrUndefined, isConflict } from '../kube/client.ts';
import { sharedOrOwnCache } from '../kube/cache.ts';
import { createEventRecorder } from '../kube/events.ts';
import { conditionUnchanged } from '../kube/conditions.ts';
import { runControllerLoop, WorkQueue, type ReconcileResult } from '../runtime/workqueue.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import { PolicyCompiler } from '../verification/policy.ts';
import { FINALIZER, podName, type BuildInput, type BuildResult, type BuildSettings } from './build.ts';
import { aliasNotice, kindAliasNotice } from './decorators.ts';
import { isTerminal, readPod } from './status.ts';
import {
  activePromotionAction,
  followRunning,
  lockAction,
  orphanPods,
  promotionState,
  retention,
  runningStatus,
  stageValidity,
  tokenManagerWarning,
  waitingPatch,
} from './decide.ts';
import { apiPath, buildFor, parseKey, PromotionViews, tokenManagerBound } from './gather.ts';
import {
  abort,
  addFinalizer,
  asPromotion,
  asStage,
  createPod,
  DELETE_GRACE_SECONDS,
  deletePod,
  errored,
  finish,
  patchStatus,
  releaseLock,
  removeFinalizer,
  takeLock,
  writeStageValid,
  type PromotionWriter,
} from './apply.ts';
import { promotionMetrics } from './controller-metrics.ts';

export { hasTokenManagerBinding, TOKEN_MANAGER_ROLE } from './decide.ts';

export function buildSettings(config: PromotionConfig): BuildSettings {
  return {
    agentNamespace: config.namespace,
    defaultServiceAccount: config.serviceAccount,
    defaultTimeoutSeconds: config.defaultTimeoutSeconds,
    maxTimeoutSeconds: config.maxTimeoutSeconds,
    doneImage: config.doneImage,
    stepAudience: config.stepAudience,
    awsRegion: config.awsRegion,
    annotationPrefix: config.annotationPrefix,
  };
}

/** Everything a pass reads and writes. */
export interface PromotionContext extends PromotionWriter {
  config: PromotionConfig;
  settings: BuildSettings;
  compiler: PolicyCompiler;
  queue: WorkQueue;
}

const build = (
  ctx: PromotionContext,
  promo: BuildInput['promotion'],
  stage: StoredStage,
  checkVars = true,
): Promise<BuildResult> =>
  buildFor(
    { kube: ctx.kube, views: ctx.views, compiler: ctx.compiler, settings: ctx.settings },
    promo,
    stage,
    checkVars,
  );

/** A Stage's `Valid` condition, from a trial build with a placeholder Promotion. */
export async function reconcileStage(
  ctx: PromotionContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  const stage = await ctx.views.stage(ctx.kube, namespace, name);
  if (!stage) return;
  const trial = {
    metadata: { name: `${name}-check`, namespace, uid: '00000000-0000-0000-0000-000000000000' },
    spec: { stage: name, vars: [] },
  };
  const v = stageValidity(stage, await build(ctx, trial, stage, false));
  if (conditionUnchanged(stage.status?.conditions, v.valid)) return;
  for (const n of v.deprecated) ctx.events.warning(asStage(stage), 'DeprecatedDecorator', n);
  for (const n of v.deprecatedKinds) ctx.events.warning(asStage(stage), 'DeprecatedKind', n);
  for (const n of v.ignored) ctx.events.warning(asStage(stage), 'IgnoredField', n);
  await writeStageValid(ctx, stage, v.valid);
}

/** One pass over a Promotion: finalize, keep its Pod for the retention, start or wait for the Stage, or follow the Pod. */
export async function reconcilePromotion(
  ctx: PromotionContext,
  namespace: string,
  name: string,
): Promise<ReconcileResult> {
  let promo = await ctx.views.promotion(ctx.kube, namespace, name);
  const state = promotionState(promo);
  if (state === 'gone' || !promo) return;
  switch (state) {
    case 'finalize':
      return finalize(ctx, promo);
    case 'terminal':
      return afterTerminal(ctx, promo);
    case 'addFinalizer':
      promo = await addFinalizer(ctx, promo);
      break;
    case 'active':
      break;
  }
  const action = activePromotionAction(promo, await ctx.views.stage(ctx.kube, namespace, promo.spec.stage));
  switch (action.kind) {
    case 'errored':
      return void (await errored(ctx, promo, action.reason, action.message, action.invalid));
    case 'abort':
      return abort(ctx, promo, action.reason, action.message);
    case 'startOrWait':
      return startOrWait(ctx, promo, action.stage);
    case 'follow':
      return follow(ctx, promo);
  }
}

async function finalize(ctx: PromotionContext, cached: StoredPromotion): Promise<void> {
  const promo = await getOrUndefined<StoredPromotion>(
    ctx.kube,
    apiPath('promotions', cached.metadata.namespace, cached.metadata.name),
  );
  if (!promo || !(promo.metadata.finalizers ?? []).includes(FINALIZER)) return;
  await deletePod(ctx, podName(promo.metadata.uid), 0);
  const ended = promo.status?.phase;
  const phase = isTerminal(ended) ? ended : 'Aborted';
  await releaseLock(ctx, promo, phase, promo.status?.finishedAt);
  await removeFinalizer(ctx, promo);
}

/** A finished Promotion: the lock is released, and its Pod kept for the retention, then deleted. */
async function afterTerminal(
  ctx: PromotionContext,
  promo: StoredPromotion,
  lockReleased = false,
): Promise<ReconcileResult> {
  const stage = ctx.views.stages.get(`${promo.metadata.namespace}/${promo.spec.stage}`);
  if (!lockReleased && stage?.status?.currentPromotion === promo.metadata.name) {
    await releaseLock(ctx, promo, promo.status!.phase!, promo.status!.finishedAt);
  }
  const r = retention({
    podExists: ctx.views.hasPod(promo.metadata.uid),
    finishedAt: promo.status?.finishedAt,
    retentionMs: ctx.config.podRetentionMs,
    now: ctx.now(),
  });
  if (r === 'delete') await deletePod(ctx, podName(promo.metadata.uid), DELETE_GRACE_SECONDS);
  return r === 'none' || r === 'delete' ? undefined : r;
}

/** A Promotion not running yet: validate it, wait for the Stage lock or take it, then start its Pod. */
async function startOrWait(
  ctx: PromotionContext,
  promo: StoredPromotion,
  stage: StoredStage,
): Promise<ReconcileResult> {
  const me = promo.metadata.name;
  const ns = promo.metadata.namespace;
  const firstSight = !promo.status?.phase;
  if (firstSight) {
    const first = await build(ctx, promo, stage);
    if (!first.ok) return void (await errored(ctx, promo, first.reason, first.message, true));
  }
  const holder = stage.status?.currentPromotion;
  const lock = lockAction({
    me,
    holder,
    holderPromotion: holder ? ctx.views.promotions.get(`${ns}/${holder}`) : undefined,
    head: holder ? undefined : ctx.views.waiting(ns, stage.metadata.name)[0],
  });
  switch (lock.kind) {
    case 'wait': {
      if (lock.wake) ctx.queue.add(`p:${ns}/${lock.wake}`);
      const patch = waitingPatch(promo, stage.metadata.name, lock.on, firstSight, ctx.now());
      if (patch) await patchStatus(ctx, promo, patch);
      return;
    }
    case 'wakeHolder':
      ctx.queue.add(`p:${ns}/${lock.holder}`);
      return { requeueAfterMs: 200 };
    case 'releaseForGone':
      await releaseLock(
        ctx,
        { metadata: { name: lock.holder, namespace: ns }, spec: { stage: stage.metadata.name } },
        'Aborted',
        undefined,
      );
      return { requeueAfterMs: 200 };
    case 'take':
      stage = await takeLock(ctx, stage, me);
      break;
    case 'held':
      break;
  }
  return start(ctx, promo, stage, firstSight);
}

/** The lock is held: check once more just before the Pod exists (steps or accounts may have changed), then create it. */
async function start(
  ctx: PromotionContext,
  promo: StoredPromotion,
  stage: StoredStage,
  firstSight: boolean,
): Promise<ReconcileResult> {
  const r = await build(ctx, promo, stage);
  if (!r.ok) return void (await errored(ctx, promo, r.reason, r.message, true));
  const created = await createPod(ctx, r.pod);
  if ('rejected' in created) return void (await errored(ctx, promo, 'PodRejected', created.rejected, false));
  const pod = created.pod;
  const warning = tokenManagerWarning(r, ctx.views.agentNs);
  if (warning && !(await tokenManagerBound(ctx.kube, ctx.views.agentNs, r.serviceAccount))) {
    ctx.events.warning(asPromotion(promo), 'TokenManagerBindingMissing', warning);
  }
  for (const a of r.aliases)
    ctx.events.warning(asPromotion(promo), 'DeprecatedDecorator', aliasNotice(stage.metadata.name, a));
  for (const a of r.kindAliases)
    ctx.events.warning(asPromotion(promo), 'DeprecatedKind', kindAliasNotice(stage.metadata.name, a));
  await patchStatus(
    ctx,
    promo,
    runningStatus(promo, { agentNs: ctx.views.agentNs, pod, r, firstSight, now: ctx.now() }),
  );
  ctx.events.normal(
    asPromotion(promo),
    'PromotionStarted',
    `pod ${ctx.views.agentNs}/${pod.metadata.name} created; ${r.steps.length} step(s) as serviceaccount "${r.serviceAccount}"`,
  );
  // Reading the pod right away covers a restart where the pod already ran.
  return { requeueAfterMs: 0 };
}

/** A running Promotion: its Pod's state becomes its status; a terminal reading finishes it. */
async function follow(ctx: PromotionContext, promo: StoredPromotion): Promise<ReconcileResult> {
  const name = podName(promo.metadata.uid);
  const pod = await ctx.views.pod(ctx.kube, name);
  if (!pod)
    return void (await errored(
      ctx,
      promo,
      'PodLost',
      `pod ${ctx.views.agentNs}/${name} was deleted before the promotion finished`,
      false,
    ));
  const reading = readPod(pod, promo.status?.steps ?? [], ctx.now(), ctx.views.gateNote(pod.metadata.uid));
  if (reading.phase === 'Running') {
    const next = followRunning(promo, reading, ctx.now());
    if (next.patch) await patchStatus(ctx, promo, next.patch);
    return next.requeueAfterMs !== undefined ? { requeueAfterMs: next.requeueAfterMs } : undefined;
  }
  const updated = await finish(ctx, promo, reading.phase, reading.reason ?? reading.phase, reading.message, {
    extra: { currentStep: reading.currentStep, steps: reading.steps },
  });
  if (reading.deletePod) await deletePod(ctx, name, DELETE_GRACE_SECONDS);
  await releaseLock(ctx, updated, reading.phase, updated.status?.finishedAt);
  return afterTerminal(ctx, updated, true);
}

async function sweepOrphans(ctx: PromotionContext): Promise<void> {
  for (const name of orphanPods(
    ctx.views.promotions.values(),
    ctx.views.pods.values(),
    ctx.now(),
    ctx.config.orphanGraceMs,
  )) {
    ctx.log.info({ pod: name }, 'deleting orphaned promotion pod');
    await deletePod(ctx, name, 0);
  }
}

async function reconcileKey(ctx: PromotionContext, key: string): Promise<ReconcileResult> {
  const k = parseKey(key);
  try {
    return await (k.kind === 'stage'
      ? reconcileStage(ctx, k.namespace, k.name)
      : reconcilePromotion(ctx, k.namespace, k.name));
  } catch (e) {
    // Optimistic concurrency: the cache was behind, or another worker won the Stage lock. Look again shortly.
    if (isConflict(e)) return { requeueAfterMs: 20 + Math.floor(Math.random() * 80) };
    throw e;
  }
}

export async function startPromotionController(deps: Deps, config: PromotionConfig): Promise<Running> {
  const { kube, log, clock } = deps;
  const queue = new WorkQueue({ initialMs: 250, maxMs: 30_000, jitter: 0.1 });
  const { cache, release: releaseCache } = sharedOrOwnCache(deps, (sel, e) =>
    log.warn({ err: e, path: sel.path }, 'watch failed; re-listing'),
  );
  const views = new PromotionViews(cache, config.namespace, (k) => queue.add(k));
  const ctx: PromotionContext = {
    kube,
    log,
    views,
    queue,
    config,
    settings: buildSettings(config),
    compiler: new PolicyCompiler(),
    events: createEventRecorder({ kube, reportingController: 'lanyard.dev/promotions', log }),
    metrics: promotionMetrics(deps.metrics, () => views.promotions.values()),
    now: () => clock.now(),
  };
  for (const v of views.all()) {
    if (!(await v.waitForSync(60_000)))
      throw new Error('promotion controller: informers did not sync within 60s');
  }
  await sweepOrphans(ctx);
  const sweep = setInterval(() => {
    sweepOrphans(ctx).catch((e: unknown) => log.warn({ err: e }, 'orphan sweep failed'));
  }, config.orphanSweepMs);
  sweep.unref?.();
  const loop = runControllerLoop({
    name: 'promotions',
    queue,
    workers: config.workers,
    metrics: deps.metrics,
    reconcile: (key) => reconcileKey(ctx, key),
    onError: (key, e, retryInMs) =>
      log.warn({ key, err: e, retryInMs }, 'promotion reconcile failed; retrying'),
  });
  log.info({ namespace: config.namespace, workers: config.workers }, 'promotion controller started');
  return {
    async stop() {
      clearInterval(sweep);
      queue.shutdown();
      views.close();
      releaseCache();
      await loop;
      ctx.metrics.remove();
    },
  };
}
