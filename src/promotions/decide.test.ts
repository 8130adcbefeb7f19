// The promotion reconciler's pure decisions (docs/promotions.md), table-tested on plain objects.
import { describe, expect, it } from 'vitest';
import type { Json } from '../core/json.ts';
import { FINALIZER, type BuildResult } from './build.ts';
import {
  activePromotionAction,
  followRunning,
  lockAction,
  orphanPods,
  promotionState,
  releasedStageStatus,
  retention,
  runningStatus,
  stageValidity,
  terminalStatus,
  tokenManagerWarning,
  waitingPatch,
  waitingQueue,
} from './decide.ts';
import type { PodReading } from './status.ts';

const NOW = Date.parse('2026-12-03T08:00:00Z');

function promotion(
  name: string,
  o: {
    phase?: string;
    finalizers?: string[];
    deleting?: boolean;
    abort?: boolean;
    created?: string;
    stage?: string;
    status?: Json;
  } = {},
): Json {
  return {
    metadata: {
      name,
      namespace: 'proj',
      uid: `uid-${name}`,
      generation: 1,
      resourceVersion: '7',
      creationTimestamp: o.created ?? '2026-12-03T07:00:00Z',
      finalizers: o.finalizers ?? [FINALIZER],
      ...(o.deleting ? { deletionTimestamp: '2026-12-03T07:59:00Z' } : {}),
      ...(o.abort ? { annotations: { 'lanyard.dev/abort': 'true' } } : {}),
    },
    spec: { stage: o.stage ?? 'prod' },
    status: { ...(o.phase ? { phase: o.phase } : {}), ...(o.status ?? {}) },
  };
}

const stage = (o: { holder?: string; requestedFreight?: boolean } = {}): Json => ({
  metadata: { name: 'prod', namespace: 'proj', generation: 3 },
  spec: {
    promotionTemplate: { spec: { steps: [] } },
    ...(o.requestedFreight ? { requestedFreight: [] } : {}),
  },
  status: o.holder ? { currentPromotion: o.holder, conditions: [] } : { conditions: [] },
});

const built = (o: Partial<Extract<BuildResult, { ok: true }>> = {}): Extract<BuildResult, { ok: true }> =>
  ({
    ok: true,
    pod: { metadata: { name: 'promotion-uid-a' } },
    serviceAccount: 'deployer',
    aliases: [],
    kindAliases: [],
    steps: [{ name: 'one', uses: 'hello', container: 'step-1', capabilities: [] }],
    ...o,
  }) as Extract<BuildResult, { ok: true }>;

describe('promotionState: what a pass does before it looks at the Stage', () => {
  it.each([
    ['no Promotion', undefined, 'gone'],
    ['being deleted', promotion('a', { deleting: true, phase: 'Running' }), 'finalize'],
    ['Succeeded', promotion('a', { phase: 'Succeeded' }), 'terminal'],
    ['Aborted without finalizer', promotion('a', { phase: 'Aborted', finalizers: [] }), 'terminal'],
    ['new, no finalizer yet', promotion('a', { finalizers: [] }), 'addFinalizer'],
    ['Pending with finalizer', promotion('a', { phase: 'Pending' }), 'active'],
    ['Running with finalizer', promotion('a', { phase: 'Running' }), 'active'],
  ])('%s -> %s', (_t, p, want) => expect(promotionState(p)).toBe(want));
});

describe('activePromotionAction: an active Promotion and its Stage', () => {
  it.each([
    [
      'Stage missing at first sight: invalid',
      promotion('a'),
      undefined,
      {
        kind: 'errored',
        reason: 'StageNotFound',
        message: 'stage "prod" not found in project "proj"',
        invalid: true,
      },
    ],
    [
      'Stage deleted while Pending: aborted',
      promotion('a', { phase: 'Pending' }),
      undefined,
      { kind: 'abort', reason: 'StageDeleted', message: 'stage "prod" was deleted' },
    ],
    [
      'abort annotation wins over starting',
      promotion('a', { abort: true }),
      stage(),
      { kind: 'abort', reason: 'AbortRequested', message: 'aborted on request' },
    ],
    ['new: start or wait', promotion('a'), stage(), { kind: 'startOrWait', stage: stage() }],
    [
      'Pending: start or wait',
      promotion('a', { phase: 'Pending' }),
      stage(),
      { kind: 'startOrWait', stage: stage() },
    ],
    ['Running: follow its Pod', promotion('a', { phase: 'Running' }), stage(), { kind: 'follow' }],
  ])('%s', (_t, p, s, want) => expect(activePromotionAction(p, s)).toEqual(want));
});

describe('lockAction: one Promotion at a time per Stage', () => {
  const running = promotion('b', { phase: 'Running' });
  it.each([
    [
      'another Promotion runs: wait for it',
      { me: 'a', holder: 'b', holderPromotion: running, head: undefined },
      { kind: 'wait', on: 'b' },
    ],
    [
      'the holder is being deleted: wake it',
      {
        me: 'a',
        holder: 'b',
        holderPromotion: promotion('b', { phase: 'Running', deleting: true }),
        head: undefined,
      },
      { kind: 'wakeHolder', holder: 'b' },
    ],
    [
      'the holder finished without releasing: wake it',
      { me: 'a', holder: 'b', holderPromotion: promotion('b', { phase: 'Failed' }), head: undefined },
      { kind: 'wakeHolder', holder: 'b' },
    ],
    [
      'the holder is gone: release for it',
      { me: 'a', holder: 'b', holderPromotion: undefined, head: undefined },
      { kind: 'releaseForGone', holder: 'b' },
    ],
    [
      'already mine',
      { me: 'a', holder: 'a', holderPromotion: promotion('a'), head: undefined },
      { kind: 'held' },
    ],
    [
      'free, another is first in line: wait and wake it',
      { me: 'a', holder: undefined, holderPromotion: undefined, head: promotion('c') },
      { kind: 'wait', on: 'c', wake: 'c' },
    ],
    [
      'free, first in line: take it',
      { me: 'a', holder: undefined, holderPromotion: undefined, head: promotion('a') },
      { kind: 'take' },
    ],
    [
      'free, nobody in line (not cached yet): take it',
      { me: 'a', holder: undefined, holderPromotion: undefined, head: undefined },
      { kind: 'take' },
    ],
  ])('%s', (_t, input, want) => expect(lockAction(input)).toEqual(want));
});

describe('waitingQueue: the line of a Stage', () => {
  it('keeps unfinished, undeleted Promotions of the Stage, oldest first, then by name', () => {
    const list = [
      promotion('late', { created: '2026-12-03T07:10:00Z' }),
      promotion('b', { created: '2026-12-03T07:00:00Z', phase: 'Pending' }),
      promotion('a', { created: '2026-12-03T07:00:00Z' }),
      promotion('running', { created: '2026-12-03T06:00:00Z', phase: 'Running' }),
      promotion('deleting', { created: '2026-12-03T06:00:00Z', deleting: true }),
      promotion('other-stage', { created: '2026-12-03T06:00:00Z', stage: 'dev' }),
    ];
    expect(waitingQueue(list, 'proj', 'prod').map((p) => p.metadata.name)).toEqual(['a', 'b', 'late']);
  });
});

describe('waitingPatch: what status says while a Promotion waits', () => {
  it('first sight: Pending, the message and Valid=True', () => {
    const patch = waitingPatch(promotion('a'), 'prod', 'b', true, NOW);
    expect(patch).toMatchObject({ phase: 'Pending', message: 'waiting for promotion "b" on stage "prod"' });
    expect(patch.conditions).toEqual([
      {
        type: 'Valid',
        status: 'True',
        reason: 'Valid',
        message: 'the promotion passed validation',
        observedGeneration: 1,
        lastTransitionTime: '2026-12-03T08:00:00Z',
      },
    ]);
  });
  it('a new message only', () => {
    expect(waitingPatch(promotion('a', { phase: 'Pending' }), 'prod', 'c', false, NOW)).toEqual({
      message: 'waiting for promotion "c" on stage "prod"',
    });
  });
  it('nothing when status already says it', () => {
    const p = promotion('a', {
      phase: 'Pending',
      status: { message: 'waiting for promotion "c" on stage "prod"' },
    });
    expect(waitingPatch(p, 'prod', 'c', false, NOW)).toBeUndefined();
  });
});

describe("stageValidity: a Stage's Valid condition from a trial build", () => {
  it('a build that fails: Valid=False with its reason', () => {
    const v = stageValidity(stage(), {
      ok: false,
      reason: 'StepNotFound',
      message: 'no step "x"',
    } as BuildResult);
    expect(v).toEqual({
      valid: {
        type: 'Valid',
        status: 'False',
        reason: 'StepNotFound',
        message: 'no step "x"',
        observedGeneration: 3,
      },
      deprecated: [],
      deprecatedKinds: [],
      ignored: [],
    });
  });
  it('a build that works: the step count and account, and a notice for requestedFreight', () => {
    const v = stageValidity(stage({ requestedFreight: true }), built());
    expect(v.valid).toMatchObject({ status: 'True', reason: 'Valid', observedGeneration: 3 });
    expect(v.valid.message).toMatch(/^stage can be promoted: 1 step\(s\) as serviceaccount "deployer"; /);
    expect(v.deprecated).toEqual([]);
    expect(v.ignored).toHaveLength(1);
    expect(v.valid.message).toContain(v.ignored[0]);
  });
  it("a step found as Kargo's CustomPromotionStep: a notice suggesting PromotionStep, in the message (docs/adr/0605)", () => {
    const v = stageValidity(
      stage(),
      built({ kindAliases: [{ step: 'list s3', uses: 'aws-s3-ls', namespace: 'agents' }] }),
    );
    expect(v.deprecatedKinds).toEqual([
      'stage "prod" step "list s3" uses CustomPromotionStep "aws-s3-ls" in namespace "agents" (Kargo\'s kind); ' +
        'Lanyard runs it, but rename its kind to PromotionStep',
    ]);
    expect(v.valid).toMatchObject({ status: 'True', reason: 'Valid' });
    expect(v.valid.message).toContain(v.deprecatedKinds[0]);
  });
});

describe('terminalStatus and runningStatus', () => {
  it('Errored for an invalid Promotion sets Valid=False and Finished', () => {
    const s = terminalStatus(promotion('a'), {
      phase: 'Errored',
      reason: 'StageNotFound',
      message: 'gone',
      invalid: true,
      extra: { steps: [] },
      now: NOW,
    });
    expect(s).toMatchObject({
      phase: 'Errored',
      message: 'gone',
      finishedAt: '2026-12-03T08:00:00Z',
      steps: [],
    });
    expect(s.conditions.map((c: Json) => [c.type, c.status, c.reason])).toEqual([
      ['Valid', 'False', 'StageNotFound'],
      ['Finished', 'True', 'Errored'],
    ]);
  });
  it('Failed keeps Valid as it was', () => {
    const s = terminalStatus(promotion('a'), {
      phase: 'Failed',
      reason: 'StepFailed',
      message: 'step 1 failed',
      now: NOW,
    });
    expect(s.conditions.map((c: Json) => c.type)).toEqual(['Finished']);
    expect(s).not.toHaveProperty('invalid');
  });
  it('Running names the Pod, the account and every step as Pending', () => {
    const pod = { metadata: { name: 'promotion-uid-a', creationTimestamp: '2026-12-03T07:59:59Z' } };
    expect(
      runningStatus(promotion('a', { phase: 'Pending' }), {
        agentNs: 'agents',
        pod,
        r: built(),
        firstSight: false,
        now: NOW,
      }),
    ).toEqual({
      phase: 'Running',
      message: 'running in pod agents/promotion-uid-a as serviceaccount "deployer"',
      pod: { namespace: 'agents', name: 'promotion-uid-a', serviceAccount: 'deployer' },
      startedAt: '2026-12-03T07:59:59Z',
      currentStep: 1,
      steps: [{ name: 'one', uses: 'hello', container: 'step-1', phase: 'Pending' }],
    });
  });
});

describe("followRunning: a running Promotion's Pod", () => {
  const reading = (o: Partial<PodReading> = {}): PodReading => ({
    phase: 'Running',
    message: 'step 1 of 1 running',
    currentStep: 1,
    steps: [],
    deletePod: false,
    ...o,
  });
  it.each([
    [
      'unchanged, no deadline: nothing',
      { message: 'step 1 of 1 running', currentStep: 1, steps: [] },
      reading(),
      { patch: undefined, requeueAfterMs: undefined },
    ],
    [
      'a new message: patched',
      { message: 'starting', currentStep: 1, steps: [] },
      reading(),
      { patch: { message: 'step 1 of 1 running', currentStep: 1, steps: [] }, requeueAfterMs: undefined },
    ],
    [
      'a deadline ahead: look again then',
      { message: 'step 1 of 1 running', currentStep: 1, steps: [] },
      reading({ nextDeadline: NOW + 1500 }),
      { patch: undefined, requeueAfterMs: 1500 },
    ],
    [
      'a deadline passed: look again now',
      { message: 'step 1 of 1 running', currentStep: 1, steps: [] },
      reading({ nextDeadline: NOW - 10 }),
      { patch: undefined, requeueAfterMs: 0 },
    ],
  ])('%s', (_t, status, r, want) =>
    expect(followRunning(promotion('a', { phase: 'Running', status }), r, NOW)).toEqual(want),
  );
});

describe('retention and the orphan sweep', () => {
  it.each([
    ['no Pod', { podExists: false, finishedAt: '2026-12-03T07:00:00Z', retentionMs: 0 }, 'none'],
    ['retention 0', { podExists: true, finishedAt: '2026-12-03T07:59:59Z', retentionMs: 0 }, 'delete'],
    [
      'kept for 10 s more',
      { podExists: true, finishedAt: '2026-12-03T07:59:50Z', retentionMs: 20_000 },
      { requeueAfterMs: 10_000 },
    ],
    [
      'no finish time: counted from now',
      { podExists: true, finishedAt: undefined, retentionMs: 5_000 },
      { requeueAfterMs: 5_000 },
    ],
  ])('%s', (_t, o, want) => expect(retention({ ...o, now: NOW })).toEqual(want));

  it('deletes Pods whose Promotion is unknown, once past the grace', () => {
    const pod = (name: string, uid: string, created: string) => ({
      metadata: { name, creationTimestamp: created, labels: { 'lanyard.dev/promotion-uid': uid } },
    });
    const pods = [
      pod('owned', 'uid-a', '2026-12-03T07:00:00Z'),
      pod('orphan', 'uid-gone', '2026-12-03T07:00:00Z'),
      pod('young-orphan', 'uid-new', '2026-12-03T07:59:59Z'),
      { metadata: { name: 'unlabelled', creationTimestamp: '2026-12-03T07:00:00Z', labels: {} } },
    ];
    expect(orphanPods([promotion('a')], pods, NOW, 5_000)).toEqual(['orphan']);
  });
});

describe('releasedStageStatus: giving the Stage lock back', () => {
  it('records the last promotion and drops the lock', () => {
    expect(
      releasedStageStatus(stage({ holder: 'a' }), 'a', 'Succeeded', '2026-12-03T07:30:00Z', NOW),
    ).toEqual({
      conditions: [],
      lastPromotion: { name: 'a', phase: 'Succeeded', finishedAt: '2026-12-03T07:30:00Z' },
    });
  });
  it('the time of the release when the finish time is unknown', () => {
    expect(
      releasedStageStatus(stage({ holder: 'a' }), 'a', 'Aborted', undefined, NOW)?.lastPromotion.finishedAt,
    ).toBe('2026-12-03T08:00:00Z');
  });
  it.each([
    ['held by another', stage({ holder: 'b' })],
    ['not held', stage()],
    ['no Stage', undefined],
  ])('nothing when %s', (_t, s) => {
    expect(releasedStageStatus(s, 'a', 'Succeeded', undefined, NOW)).toBeUndefined();
  });
});

describe('tokenManagerWarning', () => {
  it('names the first step that mints tokens', () => {
    const r = built({
      steps: [
        { name: 'one', uses: 'hello', container: 'step-1', capabilities: [] },
        { name: 'two', uses: 'mint', container: 'step-2', capabilities: ['mint-tokens'] },
      ] as never,
    });
    expect(tokenManagerWarning(r, 'agents')).toBe(
      'step "two" (uses "mint") needs mint-tokens, but serviceaccount "deployer" in namespace "agents" is not bound to role "lanyard-promotion-token-manager"',
    );
  });
  it('nothing when no step mints tokens', () =>
    expect(tokenManagerWarning(built(), 'agents')).toBeUndefined());
});
