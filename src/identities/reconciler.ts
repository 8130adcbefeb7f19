// The running-Pod identity reconciler (docs/identities.md): for every pending or running Pod, the identity it has
// against the identity its sources declare now and the proof Lanyard holds. Keys are Pods (`namespace/name`) and, for
// repairs, workloads (`repair:<Kind>/<namespace>/<name>`); a source change requeues the Pods of its pair, namespace
// or of every namespace. It turns decisions into Events, metrics, the counts the association controller shows in
// `Ready`, and opt-in rollout restarts.
//
// One pass is `reconcile(ctx, key)`: gather (gather.ts: the Pod's sources from the views, a workload from the API),
// decide (decide.ts: the Pod's state; decide-pass.ts: the row, its counts, Events and repair plan; both pure), apply
// (apply.ts: gauge, subscribers, Events, log, restarts). memory.ts holds what is kept between passes. This file is the
// chain and the wiring (docs/adr/1020-association-and-promotion-reconcilers-split.md).
import { eventRecorderOf, type EventRecorder } from '../kube/events.ts';
import { WorkQueue, runControllerLoop, type ReconcileResult } from '../runtime/workqueue.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import type { AssociationIndex } from '../associations/lookup.ts';
import type { PodsWithoutIdentity } from '../associations/index.ts';
import { WEBHOOK_DEFAULTS } from '../config/webhook.ts';
import { podIdentitySettings, type PodIdentitySourceConfig } from '../config/controller.ts';
import { WEB_IDENTITY_VOLUME, type InjectionFlags } from '../identity/resolve.ts';
import type { CredentialOptions } from '../identity/pod-credentials.ts';
import { IDENTITY_STATES, decideIdentity } from './decide.ts';
import {
  isRepairKey,
  parseRepairKey,
  planRepair,
  podEffects,
  podRow,
  publicRow,
  repairResyncKeys,
} from './decide-pass.ts';
import { gatherPod, readWorkload } from './gather.ts';
import { applyRepair, identityMetrics, recordRow, reportPod, type IdentityWriter } from './apply.ts';
import { IdentityMemory } from './memory.ts';
import { startIdentityViews, type IdentityViews, type ViewChange } from './views.ts';
import type { IdentityRow } from './snapshot.ts';

export const REPORTING_CONTROLLER = 'lanyard.dev/identities';

export interface IdentityReconciler extends Running, PodsWithoutIdentity {
  synced(): boolean;
  waitForSync(timeoutMs: number): Promise<boolean>;
  /** The current decision for a Pod (tests, doctor in-process). */
  stateOf(namespace: string, name: string): IdentityRow | undefined;
}

export type IdentityReconcilerConfig = PodIdentitySourceConfig & {
  workers?: number;
  /** How often workloads with wrong Pods are looked at again, so a repair annotation added later is seen (default 30 s). */
  repairResyncMs?: number;
};

export interface IdentityReconcilerDeps extends Deps {
  associations: AssociationIndex;
  events?: EventRecorder;
  /**
   * Views supplied by the caller (tests); else they come from `cache` (the process's shared informer cache), or from a
   * cache of the reconciler's own when it is started alone.
   */
  views?: (onChange: (c: ViewChange) => void) => IdentityViews & Running;
}

/** What every pass reads, built once per start. */
interface IdentityContext extends IdentityWriter {
  views: IdentityViews & Running;
  flags: InjectionFlags;
  now: () => number;
  /** Pods created before this (allowing for clock skew) were not watched from their admission on. */
  startedMs: number;
}

/** One pass for one key: a Pod, or a workload to repair (`repair:<Kind>/<namespace>/<name>`). */
function reconcile(ctx: IdentityContext, key: string): Promise<ReconcileResult> {
  return isRepairKey(key) ? reconcileRepair(ctx, key) : reconcilePod(ctx, key);
}

/** gather (the Pod and its sources) → decide (its state, then the pass's effects) → apply (counts, Events, log). */
async function reconcilePod(ctx: IdentityContext, key: string): Promise<ReconcileResult> {
  const pod = ctx.views.pod(key);
  if (!pod) {
    ctx.memory.forget(key);
    return recordRow(ctx, key, undefined);
  }
  ctx.memory.track(key, pod);
  const { input, workload } = gatherPod(ctx.views, pod, ctx.flags, {
    provenEarlier: ctx.memory.isProven(pod.uid),
    startedMs: ctx.startedMs,
    nowMs: ctx.now(),
  });
  const decision = decideIdentity(input);
  const prev = ctx.memory.row(key);
  if (!decision) return recordRow(ctx, key, undefined);
  const row = podRow(decision, pod, workload);
  recordRow(ctx, key, row);
  const effects = podEffects(prev, row, (k) => ctx.memory.ownerProblemCount(k));
  reportPod(ctx, pod, row, effects);
}

/** gather (the workload's wrong Pods, the workload) → decide (restart or not) → apply (patch, Event, metric). */
async function reconcileRepair(ctx: IdentityContext, key: string): Promise<ReconcileResult> {
  const target = parseRepairKey(key);
  const problemPods = ctx.memory.problemPods(target);
  // Cheap exit before any request: repair is off unless the namespace or some workload asks for it.
  if (problemPods.length === 0) return;
  const namespaceRepair = ctx.views.namespace(target.namespace)?.repair;
  const workload = await readWorkload(ctx.kube, target);
  if (!workload) return;
  const plan = planRepair({
    problemPods,
    workload,
    namespaceRepair,
    reportedIneffective: ctx.memory.ineffective.get(key),
    now: new Date(ctx.now()),
  });
  await applyRepair(ctx, key, target, workload, plan, problemPods.length);
}

/** The caller's views (tests), else views on the shared cache (or on one of their own when started alone). */
function openViews(
  deps: IdentityReconcilerDeps,
  cfg: IdentityReconcilerConfig,
  credentials: CredentialOptions,
  onChange: (c: ViewChange) => void,
): IdentityViews & Running {
  if (deps.views) return deps.views(onChange);
  return startIdentityViews(
    { kube: deps.kube, log: deps.log, cache: deps.cache, associations: deps.associations },
    {
      annotationPrefix: cfg.annotationPrefix,
      credentials,
      watchConfigMap: cfg.watchConfigMap,
      namespace: cfg.namespace,
      injectedVolumes: [WEB_IDENTITY_VOLUME, WEBHOOK_DEFAULTS.containerCredentialsTokenVolumeName],
    },
    onChange,
  );
}

export async function startIdentityReconciler(
  deps: IdentityReconcilerDeps,
  cfg: IdentityReconcilerConfig,
): Promise<IdentityReconciler> {
  const { kube, log, clock } = deps;
  const { flags, credentials } = podIdentitySettings(cfg);
  const queue = new WorkQueue({ initialMs: 1000, maxMs: 300_000, jitter: 0.1 });
  const memory = new IdentityMemory();
  // A source change requeues only the Pods it concerns.
  const onChange = (c: ViewChange) => {
    for (const k of memory.index.keysFor(c)) queue.add(k);
  };
  const views = openViews(deps, cfg, credentials, onChange);
  const ctx: IdentityContext = {
    kube,
    log,
    events: eventRecorderOf(deps, REPORTING_CONTROLLER),
    metrics: identityMetrics(deps.metrics),
    memory,
    subscribers: new Set(),
    enqueue: (k) => queue.add(k),
    views,
    flags,
    now: () => clock.now(),
    startedMs: clock.now() - 5_000,
  };
  // A workload's own repair annotation is not watched: workloads with wrong Pods are looked at again periodically.
  const resync = setInterval(() => {
    for (const k of repairResyncKeys(memory.rowValues())) queue.add(k);
  }, cfg.repairResyncMs ?? 30_000);
  resync.unref?.();
  const stopping = runControllerLoop({
    name: 'identities',
    queue,
    workers: cfg.workers ?? 4,
    metrics: deps.metrics,
    reconcile: (key) => reconcile(ctx, key),
    onError: (key, e, retryInMs) =>
      log.warn({ key, err: e, retryInMs }, 'identity reconcile failed; retrying'),
  });
  return {
    synced: () => views.synced(),
    waitForSync: (ms) => views.waitForSync(ms),
    missingFor: (ns, sa) => memory.missingFor(`${ns}/${sa}`),
    subscribe(fn) {
      ctx.subscribers.add(fn);
      return () => ctx.subscribers.delete(fn);
    },
    stateOf(ns, name) {
      const r = memory.row(`${ns}/${name}`);
      return r && publicRow(r);
    },
    async stop() {
      clearInterval(resync);
      queue.shutdown();
      await views.stop();
      await stopping;
      for (const s of IDENTITY_STATES) ctx.metrics.pods.set({ state: s }, 0);
    },
  };
}
