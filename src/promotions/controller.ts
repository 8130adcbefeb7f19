// The promotion reconciler (promotions.md §7): Promotions -> pods in the agent namespace, one at a time per Stage
// (lock in the Stage's status.currentPromotion), pod status -> Promotion status, step timeouts, abort, finalizer,
// orphan sweep, retention, Events, metrics, and the Stage's `Valid` condition. Decisions are the pure functions of
// build.ts and status.ts; this file only reads, writes and schedules.
import { Counter, Gauge, Histogram } from 'prom-client';
import type { PromotionConfig } from '../config/promotions.ts';
import { isAlreadyExists, isConflict, isNotFound, KubeApiError, resourcePath, type Json } from '../kube/client.ts';
import { sharedOrOwnCache, type CacheView } from '../kube/cache.ts';
import { createEventRecorder } from '../kube/events.ts';
import { conditionUnchanged, setCondition, type Condition } from '../kube/conditions.ts';
import { runControllerLoop, WorkQueue, type ReconcileResult } from '../runtime/workqueue.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import { decidePolicy, PolicyCompiler } from '../verification/policy.ts';
import {
  ANN_ABORT,
  buildPromotionPod,
  FINALIZER,
  LABEL_PROJECT,
  LABEL_PROMOTION,
  LABEL_PROMOTION_UID,
  podName,
  type BuildResult,
  type BuildSettings,
  type StepRoleDecision,
} from './build.ts';
import { aliasNotice, requestedFreightNotice } from './decorators.ts';
import { isTerminal, readPod, stopSteps, timestamp, type StepStatus } from './status.ts';
import { VERIFIER_EVENTS_SELECTOR, gateNoteOf, latestGateNotes, type GateNote } from '../verification/gate-notes.ts';

const GROUP = 'lanyard.dev';
const VERSION = 'v1alpha1';
export const TOKEN_MANAGER_ROLE = 'lanyard-promotion-token-manager';
const MERGE = 'application/merge-patch+json';
const DELETE_GRACE_SECONDS = 10;

const path = (plural: string, namespace?: string, name?: string, subresource?: string) =>
  resourcePath({ group: GROUP, version: VERSION, plural, namespace, name, subresource });

/**
 * Shows the object a write returned in every view of its resource until the watch delivers it, so the next reconcile
 * does not act on the state before our own write (docs/adr/0601-promotion-reconciler-reads-cache.md,
 * docs/adr/1000-shared-informer-cache-and-reconcilers.md).
 */
function remember(view: CacheView<Json>, obj: Json): Json {
  view.recordWrite(obj);
  return obj;
}

/** Listed objects (the cache) may lack apiVersion/kind; an Event needs them to name its object. */
function asPromotion(promo: Json): Json {
  return { ...promo, apiVersion: `${GROUP}/${VERSION}`, kind: 'Promotion' };
}

function asStage(stage: Json): Json {
  return { ...stage, apiVersion: `${GROUP}/${VERSION}`, kind: 'Stage' };
}

function sortQueue(a: Json, b: Json): number {
  const ta = String(a.metadata.creationTimestamp ?? '');
  const tb = String(b.metadata.creationTimestamp ?? '');
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

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

/** Whether a RoleBinding in `bindings` binds the token-manager Role to the agent-namespace account `sa`. */
export function hasTokenManagerBinding(bindings: Json[], agentNamespace: string, sa: string): boolean {
  return bindings.some(
    (rb) =>
      rb?.roleRef?.kind === 'Role' &&
      rb.roleRef.name === TOKEN_MANAGER_ROLE &&
      (rb.subjects ?? []).some(
        (s: Json) => s?.kind === 'ServiceAccount' && s.name === sa && (s.namespace ?? rb.metadata?.namespace) === agentNamespace,
      ),
  );
}

export async function startPromotionController(deps: Deps, config: PromotionConfig): Promise<Running> {
  const { kube, log, clock } = deps;
  const agentNs = config.namespace;
  const settings = buildSettings(config);
  const events = createEventRecorder({ kube, reportingController: 'lanyard.dev/promotions', log });
  const compiler = new PolicyCompiler();
  const queue = new WorkQueue({ initialMs: 250, maxMs: 30_000, jitter: 0.1 });
  const now = () => clock.now();

  const { cache, release: releaseCache } = sharedOrOwnCache(deps, (sel, e) => log.warn({ err: e, path: sel.path }, 'watch failed; re-listing'));
  const promotions = cache.view<Json>({
    path: path('promotions'),
    onAdd: (o) => queue.add(`p:${o.metadata.namespace}/${o.metadata.name}`),
    onUpdate: (o) => queue.add(`p:${o.metadata.namespace}/${o.metadata.name}`),
    onDelete: (o) => wakeStage(o.metadata.namespace, o.spec?.stage),
  });
  const stages = cache.view<Json>({
    path: path('stages'),
    onAdd: (o) => queue.add(`s:${o.metadata.namespace}/${o.metadata.name}`),
    onUpdate: (o, old) => {
      const annotationsChanged = JSON.stringify(o.metadata.annotations ?? {}) !== JSON.stringify(old.metadata.annotations ?? {});
      if (o.metadata.generation !== old.metadata.generation || annotationsChanged) {
        queue.add(`s:${o.metadata.namespace}/${o.metadata.name}`);
      }
      if (o.status?.currentPromotion !== old.status?.currentPromotion) wakeStage(o.metadata.namespace, o.metadata.name);
    },
    onDelete: (o) => wakeStage(o.metadata.namespace, o.metadata.name, true),
  });
  const recheckStages = (namespace?: string) => {
    for (const s of stages.values()) {
      if (!namespace || namespace === agentNs || s.metadata.namespace === namespace) {
        queue.add(`s:${s.metadata.namespace}/${s.metadata.name}`);
      }
    }
  };
  const steps = cache.view<Json>({
    path: path('promotionsteps'),
    onAdd: (o) => recheckStages(o.metadata.namespace),
    onUpdate: (o) => recheckStages(o.metadata.namespace),
    onDelete: (o) => recheckStages(o.metadata.namespace),
  });
  // The agent namespace's accounts, selected on the process's one ServiceAccount watch (metadata only).
  const serviceAccounts = cache.view<Json>({
    path: '/api/v1/serviceaccounts',
    metadataOnly: true,
    filter: (o) => o?.metadata?.namespace === agentNs,
    transform: (o) => ({ metadata: { name: o.metadata.name, namespace: o.metadata.namespace, annotations: o.metadata.annotations ?? {} } }),
    onAdd: () => recheckStages(),
    onUpdate: () => recheckStages(),
    onDelete: () => recheckStages(),
  });
  const enqueuePodOwner = (pod: Json) => {
    const ns = pod.metadata.labels?.[LABEL_PROJECT];
    const name = pod.metadata.labels?.[LABEL_PROMOTION];
    if (ns && name) queue.add(`p:${ns}/${name}`);
  };
  const pods = cache.view<Json>({
    path: `/api/v1/namespaces/${agentNs}/pods`,
    labelSelector: LABEL_PROMOTION_UID,
    onAdd: enqueuePodOwner,
    onUpdate: enqueuePodOwner,
    onDelete: enqueuePodOwner,
  });

  // The verifier's Warnings about promotion pods held at the identity gate: project users cannot read the agent
  // namespace's Events, so their text goes into the Promotion's status.message (docs/promotions.md).
  const gateEvents = cache.view<GateNote | undefined>({
    path: `/api/v1/namespaces/${agentNs}/events`,
    fieldSelector: VERIFIER_EVENTS_SELECTOR,
    transform: gateNoteOf,
    onAdd: (n) => wakePodOwner(n),
    onUpdate: (n) => wakePodOwner(n),
  });
  function wakePodOwner(n: GateNote | undefined) {
    const pod = n && pods.get(`${agentNs}/${n.podName}`);
    if (pod) enqueuePodOwner(pod);
  }
  const gateNote = (podUid: string) => latestGateNotes([...gateEvents.values()].filter((n) => n?.podUid === podUid)).get(podUid)?.note;

  // Registered per start and removed on stop, so a restarted controller (P14) owns its metrics again.
  const METRICS = ['lanyard_promotions_total', 'lanyard_promotion_duration_seconds', 'lanyard_promotions_pending'];
  const promotionsTotal = new Counter({
    name: 'lanyard_promotions_total',
    help: 'Promotions that reached a terminal phase.',
    labelNames: ['phase'],
    registers: [deps.metrics],
  });
  const duration = new Histogram({
    name: 'lanyard_promotion_duration_seconds',
    help: 'Time from creation of a Promotion to its terminal phase.',
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 21600],
    registers: [deps.metrics],
  });
  new Gauge({
    name: 'lanyard_promotions_pending',
    help: 'Promotions waiting for their Stage (phase Pending or not yet reconciled).',
    registers: [deps.metrics],
    collect() {
      let n = 0;
      for (const p of promotions.values()) if (!isTerminal(p.status?.phase) && p.status?.phase !== 'Running') n++;
      this.set(n);
    },
  });

  /** Enqueues the Promotions of a Stage that are not finished (the next one may start). */
  function wakeStage(namespace: string, stage: string | undefined, all = false) {
    if (!stage) return;
    for (const p of promotions.values()) {
      if (p.metadata.namespace === namespace && p.spec?.stage === stage && (all || !isTerminal(p.status?.phase))) {
        queue.add(`p:${namespace}/${p.metadata.name}`);
      }
    }
  }

  function waitingQueue(namespace: string, stage: string): Json[] {
    return [...promotions.values()]
      .filter(
        (p) =>
          p.metadata.namespace === namespace &&
          p.spec?.stage === stage &&
          !p.metadata.deletionTimestamp &&
          (!p.status?.phase || p.status.phase === 'Pending'),
      )
      .sort(sortQueue);
  }

  async function getOrNull(p: string): Promise<Json | undefined> {
    try {
      return await kube.get(p);
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async function roleDecider(project: string, stage: Json): Promise<StepRoleDecision> {
    const usesRoles = (stage.spec?.promotionTemplate?.spec?.steps ?? []).some((st: Json) => {
      const found = steps.get(`${project}/${st?.uses}`) ?? steps.get(`${agentNs}/${st?.uses}`);
      return !!found?.spec?.identity?.roleARN;
    });
    if (!usesRoles) return () => ({ allowed: true });
    const res = await kube.raw({ path: path('identitypolicies') });
    if (res.status !== 200 && res.status !== 404) {
      throw new KubeApiError(res.status, 'GET', path('identitypolicies'), String(res.body?.reason ?? res.status), String(res.body?.message ?? ''), res.body);
    }
    const set = compiler.compileAll(res.status === 200 ? res.body.items ?? [] : []);
    const ns = await kube.get(`/api/v1/namespaces/${encodeURIComponent(project)}`);
    return ({ namespace, serviceAccount, roleARN }) => decidePolicy(set, { namespace, namespaceLabels: ns.metadata?.labels ?? {}, serviceAccount, roleARN });
  }

  async function build(promo: Json, stage: Json, checkVars = true): Promise<BuildResult> {
    const project: string = promo.metadata.namespace;
    return buildPromotionPod({
      stage,
      promotion: promo,
      promotionStep: (ns, name) => steps.get(`${ns}/${name}`),
      serviceAccount: (name) => serviceAccounts.get(`${agentNs}/${name}`),
      decideRole: await roleDecider(project, stage),
      settings,
      checkVars,
    });
  }

  /**
   * Status writes carry the resourceVersion that was read: reconciles read the informer's cache, and a stale copy
   * must never overwrite a newer status (a terminal phase above all). A conflict requeues the key.
   */
  async function patchStatus(promo: Json, status: Json): Promise<Json> {
    const updated = await kube.patch(
      path('promotions', promo.metadata.namespace, promo.metadata.name, 'status'),
      { metadata: { resourceVersion: promo.metadata.resourceVersion }, status },
      MERGE,
    );
    return remember(promotions, updated);
  }

  function conditions(promo: Json, valid?: Omit<Condition, 'lastTransitionTime'>, finished?: string): Condition[] {
    let list: Condition[] = promo.status?.conditions ?? [];
    const t = new Date(now());
    if (valid) list = setCondition(list, { ...valid, observedGeneration: promo.metadata.generation }, t);
    if (finished) {
      list = setCondition(list, { type: 'Finished', status: 'True', reason: finished, message: `the promotion ended ${finished}`, observedGeneration: promo.metadata.generation }, t);
    }
    return list;
  }

  /** Writes a terminal phase (always first), then counts it and tells the user. */
  async function finish(promo: Json, phase: 'Succeeded' | 'Failed' | 'Errored' | 'Aborted', reason: string, message: string, extra: Json = {}): Promise<Json> {
    const finishedAt = timestamp(now());
    const valid = phase === 'Errored' && extra.invalid ? { type: 'Valid', status: 'False' as const, reason, message } : undefined;
    delete extra.invalid;
    const updated = await patchStatus(promo, { phase, message, finishedAt, ...extra, conditions: conditions(promo, valid, phase) });
    promotionsTotal.inc({ phase });
    const started = Date.parse(promo.metadata.creationTimestamp);
    if (Number.isFinite(started)) duration.observe(Math.max(0, (now() - started) / 1000));
    const obj = asPromotion(promo);
    if (phase === 'Succeeded') events.normal(obj, 'PromotionSucceeded', message);
    else events.warning(obj, `Promotion${phase}`, `${reason}: ${message}`);
    log.info({ promotion: `${promo.metadata.namespace}/${promo.metadata.name}`, phase, reason }, 'promotion finished');
    return updated;
  }

  async function deletePod(name: string, graceSeconds: number): Promise<void> {
    try {
      await kube.delete(`/api/v1/namespaces/${agentNs}/pods/${name}`, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: graceSeconds });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Clears the Stage lock if `promo` holds it, recording the last promotion; then wakes the Stage's queue. */
  async function releaseLock(promo: Json, phase: string, finishedAt: string | undefined): Promise<void> {
    const ns = promo.metadata.namespace;
    const stageName = promo.spec?.stage;
    for (let attempt = 0; attempt < 5; attempt++) {
      const stage = await getOrNull(path('stages', ns, stageName));
      if (!stage || stage.status?.currentPromotion !== promo.metadata.name) break;
      const status = { ...stage.status, lastPromotion: { name: promo.metadata.name, phase, finishedAt: finishedAt ?? timestamp(now()) } };
      delete status.currentPromotion;
      try {
        remember(stages, await kube.update(path('stages', ns, stageName, 'status'), { ...stage, status }));
        break;
      } catch (e) {
        if (!isConflict(e) || attempt === 4) throw e;
      }
    }
    wakeStage(ns, stageName);
  }

  async function reconcileStage(namespace: string, name: string): Promise<ReconcileResult> {
    const stage = await getOrNull(path('stages', namespace, name));
    if (!stage) return;
    const probe = { metadata: { name: `${name}-check`, namespace, uid: '00000000-0000-0000-0000-000000000000' }, spec: { stage: name, vars: [] } };
    const r = await build(probe, stage, false);
    // Kargo's decorator names work, and say so in the condition and a Warning Event (docs/promotions.md).
    const notices = r.ok ? r.aliases.map((a) => aliasNotice(name, a)) : [];
    const ignored = r.ok && stage.spec?.requestedFreight !== undefined ? [requestedFreightNotice(name)] : [];
    const next = r.ok
      ? { type: 'Valid', status: 'True' as const, reason: 'Valid', message: `stage can be promoted: ${r.steps.length} step(s) as serviceaccount "${r.serviceAccount}"${[...notices, ...ignored].map((n) => `; ${n}`).join('')}`, observedGeneration: stage.metadata.generation }
      : { type: 'Valid', status: 'False' as const, reason: r.reason, message: r.message, observedGeneration: stage.metadata.generation };
    if (conditionUnchanged(stage.status?.conditions, next)) return;
    for (const n of notices) events.warning(asStage(stage), 'DeprecatedDecorator', n);
    for (const n of ignored) events.warning(asStage(stage), 'IgnoredField', n);
    const conditions = setCondition(stage.status?.conditions, next, new Date(now()));
    remember(stages, await kube.patch(path('stages', namespace, name, 'status'), { status: { conditions } }, MERGE));
  }

  async function finalize(cached: Json): Promise<void> {
    const promo = await getOrNull(path('promotions', cached.metadata.namespace, cached.metadata.name));
    if (!promo || !(promo.metadata.finalizers ?? []).includes(FINALIZER)) return;
    await deletePod(podName(promo.metadata.uid), 0);
    const phase = isTerminal(promo.status?.phase) ? promo.status.phase : 'Aborted';
    await releaseLock(promo, phase, promo.status?.finishedAt);
    const finalizers: string[] = promo.metadata.finalizers;
    try {
      await kube.patch(path('promotions', promo.metadata.namespace, promo.metadata.name), [
        { op: 'test', path: '/metadata/finalizers', value: finalizers },
        { op: 'replace', path: '/metadata/finalizers', value: finalizers.filter((f) => f !== FINALIZER) },
      ]);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  async function afterTerminal(promo: Json, lockReleased = false): Promise<ReconcileResult> {
    const stage = stages.get(`${promo.metadata.namespace}/${promo.spec?.stage}`);
    if (!lockReleased && stage?.status?.currentPromotion === promo.metadata.name) {
      await releaseLock(promo, promo.status.phase, promo.status.finishedAt);
    }
    const name = podName(promo.metadata.uid);
    if (!pods.has(`${agentNs}/${name}`)) return;
    const finished = Date.parse(promo.status?.finishedAt ?? '') || now();
    const due = finished + config.podRetentionMs;
    if (now() >= due) {
      await deletePod(name, DELETE_GRACE_SECONDS);
      return;
    }
    return { requeueAfterMs: due - now() };
  }

  async function abort(promo: Json, reason: string, message: string): Promise<void> {
    const updated = await finish(promo, 'Aborted', reason, message, { steps: stopSteps(promo.status?.steps ?? [], 'Aborted', message) });
    if (promo.status?.pod) await deletePod(podName(promo.metadata.uid), DELETE_GRACE_SECONDS);
    await releaseLock(updated, 'Aborted', updated.status?.finishedAt);
  }

  async function errored(promo: Json, reason: string, message: string, invalid: boolean): Promise<void> {
    const updated = await finish(promo, 'Errored', reason, message, { invalid, steps: stopSteps(promo.status?.steps ?? [], 'Errored', message) });
    await releaseLock(updated, 'Errored', updated.status?.finishedAt);
  }

  async function warnTokenManager(promo: Json, r: Extract<BuildResult, { ok: true }>): Promise<void> {
    const minting = r.steps.filter((s) => s.capabilities.includes('mint-tokens'));
    if (minting.length === 0) return;
    const list = await kube.get(`/apis/rbac.authorization.k8s.io/v1/namespaces/${agentNs}/rolebindings`);
    if (hasTokenManagerBinding(list.items ?? [], agentNs, r.serviceAccount)) return;
    events.warning(
      asPromotion(promo),
      'TokenManagerBindingMissing',
      `step "${minting[0]!.name}" (uses "${minting[0]!.uses}") needs mint-tokens, but serviceaccount "${r.serviceAccount}" in namespace "${agentNs}" is not bound to role "${TOKEN_MANAGER_ROLE}"`,
    );
  }

  async function startOrWait(promo: Json, stage: Json): Promise<ReconcileResult> {
    const me: string = promo.metadata.name;
    const ns: string = promo.metadata.namespace;
    const firstSight = !promo.status?.phase;
    const validCondition = { type: 'Valid', status: 'True' as const, reason: 'Valid', message: 'the promotion passed validation' };
    if (firstSight) {
      const first = await build(promo, stage);
      if (!first.ok) return void (await errored(promo, first.reason, first.message, true));
    }
    const holder: string | undefined = stage.status?.currentPromotion;
    const waitFor = async (other: string) => {
      const message = `waiting for promotion "${other}" on stage "${stage.metadata.name}"`;
      if (firstSight) await patchStatus(promo, { phase: 'Pending', message, conditions: conditions(promo, validCondition) });
      else if (promo.status?.message !== message) await patchStatus(promo, { message });
    };
    if (holder && holder !== me) {
      const h = promotions.get(`${ns}/${holder}`);
      if (h && !isTerminal(h.status?.phase) && !h.metadata.deletionTimestamp) return void (await waitFor(holder));
      // The holder ended or vanished without releasing (crash between writes): its own reconcile releases; if it
      // is gone entirely, release for it.
      if (h) queue.add(`p:${ns}/${holder}`);
      else await releaseLock({ metadata: { name: holder, namespace: ns }, spec: { stage: stage.metadata.name } }, 'Aborted', undefined);
      return { requeueAfterMs: 200 };
    }
    if (!holder) {
      const head = waitingQueue(ns, stage.metadata.name)[0];
      if (head && head.metadata.name !== me) {
        queue.add(`p:${ns}/${head.metadata.name}`);
        return void (await waitFor(head.metadata.name));
      }
      // A conflict means another worker (or writer) changed the Stage since we read it: the key is requeued.
      stage = remember(stages, await kube.update(path('stages', ns, stage.metadata.name, 'status'), {
        ...stage,
        status: { ...(stage.status ?? {}), currentPromotion: me },
      }));
    }
    // We hold the lock: check once more just before the pod exists (steps or accounts may have changed).
    const r = await build(promo, stage);
    if (!r.ok) return void (await errored(promo, r.reason, r.message, true));
    let pod: Json;
    try {
      pod = await kube.create(`/api/v1/namespaces/${agentNs}/pods`, r.pod);
    } catch (e) {
      if (isAlreadyExists(e)) {
        pod = await kube.get(`/api/v1/namespaces/${agentNs}/pods/${r.pod.metadata.name}`);
      } else if (e instanceof KubeApiError && [400, 403, 404, 422].includes(e.status)) {
        return void (await errored(promo, 'PodRejected', `the API server refused the pod: ${e.serverMessage || e.reason}`, false));
      } else {
        throw e;
      }
    }
    await warnTokenManager(promo, r);
    for (const a of r.aliases) events.warning(asPromotion(promo), 'DeprecatedDecorator', aliasNotice(stage.metadata.name, a));
    const stepsStatus: StepStatus[] = r.steps.map((s) => ({ name: s.name, uses: s.uses, container: s.container, phase: 'Pending' }));
    await patchStatus(promo, {
      ...(firstSight ? { conditions: conditions(promo, validCondition) } : {}),
      phase: 'Running',
      message: `running in pod ${agentNs}/${pod.metadata.name} as serviceaccount "${r.serviceAccount}"`,
      pod: { namespace: agentNs, name: pod.metadata.name, serviceAccount: r.serviceAccount },
      startedAt: pod.metadata.creationTimestamp ?? timestamp(now()),
      currentStep: 1,
      steps: stepsStatus,
    });
    events.normal(
      asPromotion(promo),
      'PromotionStarted',
      `pod ${agentNs}/${pod.metadata.name} created; ${r.steps.length} step(s) as serviceaccount "${r.serviceAccount}"`,
    );
    // Reading the pod right away covers a restart where the pod already ran.
    return { requeueAfterMs: 0 };
  }

  async function follow(promo: Json): Promise<ReconcileResult> {
    const name = podName(promo.metadata.uid);
    const pod = pods.get(`${agentNs}/${name}`) ?? (await getOrNull(`/api/v1/namespaces/${agentNs}/pods/${name}`));
    if (!pod) {
      return void (await errored(promo, 'PodLost', `pod ${agentNs}/${name} was deleted before the promotion finished`, false));
    }
    const reading = readPod(pod, promo.status?.steps ?? [], now(), gateNote(pod.metadata.uid));
    if (reading.phase === 'Running') {
      const changed =
        promo.status?.message !== reading.message ||
        promo.status?.currentStep !== reading.currentStep ||
        JSON.stringify(promo.status?.steps ?? []) !== JSON.stringify(reading.steps);
      if (changed) await patchStatus(promo, { message: reading.message, currentStep: reading.currentStep, steps: reading.steps });
      return reading.nextDeadline !== undefined ? { requeueAfterMs: Math.max(0, reading.nextDeadline - now()) } : undefined;
    }
    const updated = await finish(promo, reading.phase, reading.reason ?? reading.phase, reading.message, {
      currentStep: reading.currentStep,
      steps: reading.steps,
    });
    if (reading.deletePod) await deletePod(name, DELETE_GRACE_SECONDS);
    await releaseLock(updated, reading.phase, updated.status?.finishedAt);
    return afterTerminal(updated, true);
  }

  async function reconcilePromotion(namespace: string, name: string): Promise<ReconcileResult> {
    let promo = promotions.get(`${namespace}/${name}`) ?? (await getOrNull(path('promotions', namespace, name)));
    if (!promo) return;
    if (promo.metadata.deletionTimestamp) return finalize(promo);
    const phase: string | undefined = promo.status?.phase;
    if (isTerminal(phase)) return afterTerminal(promo);
    if (!(promo.metadata.finalizers ?? []).includes(FINALIZER)) {
      promo = remember(promotions, await kube.patch(
        path('promotions', namespace, name),
        { metadata: { finalizers: [...(promo.metadata.finalizers ?? []), FINALIZER], resourceVersion: promo.metadata.resourceVersion } },
        MERGE,
      ));
    }
    const stage = stages.get(`${namespace}/${promo.spec.stage}`) ?? (await getOrNull(path('stages', namespace, promo.spec.stage)));
    if (!stage) {
      if (!phase) {
        return void (await errored(promo, 'StageNotFound', `stage "${promo.spec.stage}" not found in project "${namespace}"`, true));
      }
      return abort(promo, 'StageDeleted', `stage "${promo.spec.stage}" was deleted`);
    }
    if (promo.metadata.annotations?.[ANN_ABORT] === 'true') return abort(promo, 'AbortRequested', 'aborted on request');
    if (!phase || phase === 'Pending') return startOrWait(promo, stage);
    return follow(promo);
  }

  async function sweepOrphans(): Promise<void> {
    const uids = new Set<string>();
    for (const p of promotions.values()) uids.add(p.metadata.uid);
    for (const pod of pods.values()) {
      const uid = pod.metadata.labels?.[LABEL_PROMOTION_UID];
      // A young pod may belong to a Promotion the cache has not shown yet.
      const young = now() - Date.parse(pod.metadata.creationTimestamp ?? '') < config.orphanGraceMs;
      if (uid && !uids.has(uid) && !young) {
        log.info({ pod: pod.metadata.name }, 'deleting orphaned promotion pod');
        await deletePod(pod.metadata.name, 0);
      }
    }
  }

  const views = [serviceAccounts, steps, stages, promotions, pods, gateEvents];
  for (const v of views) {
    if (!(await v.waitForSync(60_000))) throw new Error('promotion controller: informers did not sync within 60s');
  }
  await sweepOrphans();
  const sweep = setInterval(() => {
    sweepOrphans().catch((e: unknown) => log.warn({ err: e }, 'orphan sweep failed'));
  }, config.orphanSweepMs);
  sweep.unref?.();

  const loop = runControllerLoop({
    name: 'promotions',
    queue,
    workers: config.workers,
    metrics: deps.metrics,
    reconcile: async (key) => {
      const [kind, rest] = [key.slice(0, 1), key.slice(2)];
      const [ns, name] = rest.split('/') as [string, string];
      try {
        return await (kind === 's' ? reconcileStage(ns, name) : reconcilePromotion(ns, name));
      } catch (e) {
        // Optimistic concurrency: the cache was behind, or another worker won the Stage lock. Look again shortly.
        if (isConflict(e)) return { requeueAfterMs: 20 + Math.floor(Math.random() * 80) };
        throw e;
      }
    },
    onError: (key, e, retryInMs) => log.warn({ key, err: e, retryInMs }, 'promotion reconcile failed; retrying'),
  });
  log.info({ namespace: agentNs, workers: config.workers }, 'promotion controller started');

  return {
    async stop() {
      clearInterval(sweep);
      queue.shutdown();
      for (const v of views) v.close();
      releaseCache();
      await loop;
      for (const m of METRICS) deps.metrics.removeSingleMetric(m);
    },
  };
}
