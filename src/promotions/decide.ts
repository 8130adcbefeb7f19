// The promotion reconciler's decide step (docs/promotions.md, docs/adr/1000-shared-informer-cache-and-reconcilers.md):
// plain objects in, the next action out. No I/O; table-tested in decide.test.ts. Building the Pod is build.ts, reading
// a Pod is status.ts; this module decides what a pass does with their answers.
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { RoleBinding } from 'kubernetes-types/rbac/v1.js';
import type { ObjectMeta, Stored } from '../core/kube-object.ts';
import { setCondition, type Condition } from '../kube/conditions.ts';
import { ANN_ABORT, FINALIZER, LABEL_PROMOTION_UID, type BuildResult } from './build.ts';
import { aliasNotice, kindAliasNotice, requestedFreightNotice } from './decorators.ts';
import { isTerminal, timestamp, type PodReading, type StepStatus } from './status.ts';
import type {
  LastPromotion,
  Promotion,
  PromotionStatus,
  Stage,
  StageStatus,
  StoredPromotion,
  StoredStage,
} from './types.ts';

export const TOKEN_MANAGER_ROLE = 'lanyard-promotion-token-manager';

export type TerminalPhase = 'Succeeded' | 'Failed' | 'Errored' | 'Aborted';
export type ValidCondition = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** The condition a Promotion gets when it passes validation. */
export const VALID: ValidCondition = {
  type: 'Valid',
  status: 'True',
  reason: 'Valid',
  message: 'the promotion passed validation',
};

/** The fields of a RoleBinding the token-manager check reads. */
export type BindingRead = Pick<RoleBinding, 'metadata' | 'subjects'> & {
  roleRef?: Partial<RoleBinding['roleRef']>;
};

/** Whether a RoleBinding in `bindings` binds the token-manager Role to the agent-namespace account `sa`. */
export function hasTokenManagerBinding(bindings: BindingRead[], agentNamespace: string, sa: string): boolean {
  return bindings.some(
    (rb) =>
      rb?.roleRef?.kind === 'Role' &&
      rb.roleRef.name === TOKEN_MANAGER_ROLE &&
      (rb.subjects ?? []).some(
        (s) =>
          s?.kind === 'ServiceAccount' &&
          s.name === sa &&
          (s.namespace ?? rb.metadata?.namespace) === agentNamespace,
      ),
  );
}

/** Promotions of one Stage wait in creation order, then name order. */
export function sortQueue(a: Stored<Promotion>, b: Stored<Promotion>): number {
  const ta = String(a.metadata.creationTimestamp ?? '');
  const tb = String(b.metadata.creationTimestamp ?? '');
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** The Promotions of a Stage waiting for it (no phase yet, or Pending), first in line first. */
export function waitingQueue(
  promotions: Iterable<StoredPromotion>,
  namespace: string,
  stage: string,
): StoredPromotion[] {
  return [...promotions]
    .filter(
      (p) =>
        p.metadata.namespace === namespace &&
        p.spec?.stage === stage &&
        !p.metadata.deletionTimestamp &&
        (!p.status?.phase || p.status.phase === 'Pending'),
    )
    .sort(sortQueue);
}

/** A Stage's `Valid` condition from a trial build, and the notices that become Warning Events. */
export function stageValidity(
  stage: Stored<Stage>,
  r: BuildResult,
): {
  valid: Omit<Condition, 'lastTransitionTime'>;
  deprecated: string[];
  deprecatedKinds: string[];
  ignored: string[];
} {
  const name = stage.metadata.name;
  const generation = stage.metadata.generation;
  if (!r.ok)
    return {
      valid: {
        type: 'Valid',
        status: 'False',
        reason: r.reason,
        message: r.message,
        observedGeneration: generation,
      },
      deprecated: [],
      deprecatedKinds: [],
      ignored: [],
    };
  // Kargo's decorator names work, and say so in the condition and a Warning Event (docs/promotions.md).
  const deprecated = r.aliases.map((a) => aliasNotice(name, a));
  // Kargo's CustomPromotionStep kind likewise (docs/adr/0605).
  const deprecatedKinds = r.kindAliases.map((a) => kindAliasNotice(name, a));
  const ignored = stage.spec?.requestedFreight !== undefined ? [requestedFreightNotice(name)] : [];
  const message = `stage can be promoted: ${r.steps.length} step(s) as serviceaccount "${r.serviceAccount}"${[...deprecated, ...deprecatedKinds, ...ignored].map((n) => `; ${n}`).join('')}`;
  return {
    valid: { type: 'Valid', status: 'True', reason: 'Valid', message, observedGeneration: generation },
    deprecated,
    deprecatedKinds,
    ignored,
  };
}

/** What a pass does with a Promotion as read, before its Stage is looked at. */
export type PromotionState = 'gone' | 'finalize' | 'terminal' | 'addFinalizer' | 'active';

export function promotionState(promo: Stored<Promotion> | undefined): PromotionState {
  if (!promo) return 'gone';
  if (promo.metadata.deletionTimestamp) return 'finalize';
  if (isTerminal(promo.status?.phase)) return 'terminal';
  if (!(promo.metadata.finalizers ?? []).includes(FINALIZER)) return 'addFinalizer';
  return 'active';
}

/** What a pass does with an active Promotion (finalizer in place, not finished), given its Stage as read. */
export type PromotionAction =
  | { kind: 'errored'; reason: string; message: string; invalid: boolean }
  | { kind: 'abort'; reason: string; message: string }
  | { kind: 'startOrWait'; stage: StoredStage }
  | { kind: 'follow' };

export function activePromotionAction(
  promo: StoredPromotion,
  stage: StoredStage | undefined,
): PromotionAction {
  const phase = promo.status?.phase;
  if (!stage) {
    if (!phase)
      return {
        kind: 'errored',
        reason: 'StageNotFound',
        message: `stage "${promo.spec.stage}" not found in project "${promo.metadata.namespace}"`,
        invalid: true,
      };
    return { kind: 'abort', reason: 'StageDeleted', message: `stage "${promo.spec.stage}" was deleted` };
  }
  if (promo.metadata.annotations?.[ANN_ABORT] === 'true')
    return { kind: 'abort', reason: 'AbortRequested', message: 'aborted on request' };
  if (!phase || phase === 'Pending') return { kind: 'startOrWait', stage };
  return { kind: 'follow' };
}

/** The Stage lock (its status.currentPromotion) as one Promotion sees it. */
export type LockAction =
  /** Another Promotion runs or is first in line: wait for it (and wake the head of the line). */
  | { kind: 'wait'; on: string; wake?: string }
  /** The holder ended without releasing (a crash between writes): its own pass releases; look again shortly. */
  | { kind: 'wakeHolder'; holder: string }
  /** The holder is gone entirely: release for it, then look again shortly. */
  | { kind: 'releaseForGone'; holder: string }
  | { kind: 'take' }
  | { kind: 'held' };

export function lockAction(o: {
  me: string;
  holder: string | undefined;
  holderPromotion: Stored<Promotion> | undefined;
  head: Stored<Promotion> | undefined;
}): LockAction {
  const { me, holder, holderPromotion: h } = o;
  if (holder && holder !== me) {
    if (h && !isTerminal(h.status?.phase) && !h.metadata.deletionTimestamp)
      return { kind: 'wait', on: holder };
    return h ? { kind: 'wakeHolder', holder } : { kind: 'releaseForGone', holder };
  }
  if (holder === me) return { kind: 'held' };
  const head = o.head?.metadata.name;
  if (head && head !== me) return { kind: 'wait', on: head, wake: head };
  return { kind: 'take' };
}

type WaitingArgs<FirstSight extends boolean> = [
  promo: Stored<Promotion>,
  stage: string,
  other: string,
  firstSight: FirstSight,
  now: number,
];

/**
 * The status patch that says a Promotion waits for another one; undefined when status already says it (never at
 * first sight, which sets the phase).
 */
export function waitingPatch(...a: WaitingArgs<true>): PromotionStatus;
export function waitingPatch(...a: WaitingArgs<boolean>): PromotionStatus | undefined;
export function waitingPatch(
  ...[promo, stage, other, firstSight, now]: WaitingArgs<boolean>
): PromotionStatus | undefined {
  const message = `waiting for promotion "${other}" on stage "${stage}"`;
  if (firstSight) return { phase: 'Pending', message, conditions: promotionConditions(promo, now, VALID) };
  return promo.status?.message === message ? undefined : { message };
}

/** The Promotion's conditions with `Valid` and/or `Finished` set. */
export function promotionConditions(
  promo: Stored<Promotion>,
  now: number,
  valid?: ValidCondition,
  finished?: string,
): Condition[] {
  const t = new Date(now);
  const generation = promo.metadata.generation;
  let list: Condition[] = promo.status?.conditions ?? [];
  if (valid) list = setCondition(list, { ...valid, observedGeneration: generation }, t);
  if (finished) {
    list = setCondition(
      list,
      {
        type: 'Finished',
        status: 'True',
        reason: finished,
        message: `the promotion ended ${finished}`,
        observedGeneration: generation,
      },
      t,
    );
  }
  return list;
}

/** The status a terminal phase writes: phase, message, time, `Finished`, and `Valid=False` for an invalid Promotion. */
export function terminalStatus(
  promo: Stored<Promotion>,
  o: {
    phase: TerminalPhase;
    reason: string;
    message: string;
    invalid?: boolean;
    extra?: PromotionStatus;
    now: number;
  },
): PromotionStatus & { conditions: Condition[] } {
  const valid =
    o.phase === 'Errored' && o.invalid
      ? { type: 'Valid', status: 'False' as const, reason: o.reason, message: o.message }
      : undefined;
  return {
    phase: o.phase,
    message: o.message,
    finishedAt: timestamp(o.now),
    ...(o.extra ?? {}),
    conditions: promotionConditions(promo, o.now, valid, o.phase),
  };
}

/** The status that says a Promotion's Pod runs. */
export function runningStatus(
  promo: Stored<Promotion>,
  o: {
    agentNs: string;
    pod: { metadata: ObjectMeta & { name: string } };
    r: Extract<BuildResult, { ok: true }>;
    firstSight: boolean;
    now: number;
  },
): PromotionStatus {
  const steps: StepStatus[] = o.r.steps.map((s) => ({
    name: s.name,
    uses: s.uses,
    container: s.container,
    phase: 'Pending',
  }));
  return {
    ...(o.firstSight ? { conditions: promotionConditions(promo, o.now, VALID) } : {}),
    phase: 'Running',
    message: `running in pod ${o.agentNs}/${o.pod.metadata.name} as serviceaccount "${o.r.serviceAccount}"`,
    pod: { namespace: o.agentNs, name: o.pod.metadata.name, serviceAccount: o.r.serviceAccount },
    startedAt: o.pod.metadata.creationTimestamp ?? timestamp(o.now),
    currentStep: 1,
    steps,
  };
}

/** A running Promotion's status patch from its Pod's reading (undefined: unchanged) and when to look again. */
export function followRunning(
  promo: Promotion,
  reading: PodReading,
  now: number,
): { patch?: PromotionStatus; requeueAfterMs?: number } {
  const changed =
    promo.status?.message !== reading.message ||
    promo.status?.currentStep !== reading.currentStep ||
    JSON.stringify(promo.status?.steps ?? []) !== JSON.stringify(reading.steps);
  return {
    patch: changed
      ? { message: reading.message, currentStep: reading.currentStep, steps: reading.steps }
      : undefined,
    requeueAfterMs: reading.nextDeadline !== undefined ? Math.max(0, reading.nextDeadline - now) : undefined,
  };
}

/** A finished Promotion's Pod: kept for the retention, then deleted. */
export function retention(o: {
  podExists: boolean;
  finishedAt: string | undefined;
  retentionMs: number;
  now: number;
}): 'none' | 'delete' | { requeueAfterMs: number } {
  if (!o.podExists) return 'none';
  const due = (Date.parse(o.finishedAt ?? '') || o.now) + o.retentionMs;
  return o.now >= due ? 'delete' : { requeueAfterMs: due - o.now };
}

/** The Stage status after `promotion` gives the lock back; undefined when the Stage is not held by it. */
export function releasedStageStatus(
  stage: Stage | undefined,
  promotion: string,
  phase: string,
  finishedAt: string | undefined,
  now: number,
): (StageStatus & { lastPromotion: LastPromotion }) | undefined {
  if (!stage || stage.status?.currentPromotion !== promotion) return undefined;
  const status: StageStatus & { lastPromotion: LastPromotion } = {
    ...stage.status,
    lastPromotion: { name: promotion, phase, finishedAt: finishedAt ?? timestamp(now) },
  };
  delete status.currentPromotion;
  return status;
}

/** Promotion Pods no Promotion owns, past the grace a young Pod gets (its Promotion may not be cached yet). */
export function orphanPods(
  promotions: Iterable<Stored<Promotion>>,
  pods: Iterable<Pod & { metadata: ObjectMeta & { name: string } }>,
  now: number,
  graceMs: number,
): string[] {
  const uids = new Set<string>();
  for (const p of promotions) uids.add(p.metadata.uid);
  const out: string[] = [];
  for (const pod of pods) {
    const uid = pod.metadata.labels?.[LABEL_PROMOTION_UID];
    const young = now - Date.parse(pod.metadata.creationTimestamp ?? '') < graceMs;
    if (uid && !uids.has(uid) && !young) out.push(pod.metadata.name);
  }
  return out;
}

/** The Warning text for steps that mint tokens when the Pod's account is not bound to the token-manager Role. */
export function tokenManagerWarning(
  r: Extract<BuildResult, { ok: true }>,
  agentNs: string,
): string | undefined {
  const minting = r.steps.filter((s) => s.capabilities.includes('mint-tokens'));
  if (minting.length === 0) return undefined;
  return `step "${minting[0]!.name}" (uses "${minting[0]!.uses}") needs mint-tokens, but serviceaccount "${r.serviceAccount}" in namespace "${agentNs}" is not bound to role "${TOKEN_MANAGER_ROLE}"`;
}
