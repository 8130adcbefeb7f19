import { describe, expect, it } from 'vitest';
import type { ContainerState, ContainerStatus, Pod, PodStatus } from 'kubernetes-types/core/v1.js';
import { parseOutput, readPod, stopSteps } from './status.ts';

const steps = [
  { name: 'list s3', uses: 'aws-s3-ls', container: 'step-1' },
  { name: 'publish', uses: 'publish', container: 'step-2' },
  { name: 'notify', uses: 'notify', container: 'step-3' },
];
const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:00:06Z';
const term = (exitCode: number, message?: string, reason = exitCode ? 'Error' : 'Completed') => ({
  terminated: { exitCode, message, reason, startedAt: T0, finishedAt: T1 },
});
const pod = (
  phase: string,
  states: Record<string, ContainerState>,
  extra: PodStatus = {},
  annotations: Record<string, string> = {},
): Pod => ({
  metadata: { annotations },
  spec: { activeDeadlineSeconds: 900, containers: [] },
  status: {
    phase,
    ...extra,
    initContainerStatuses: Object.entries(states).map(
      ([name, state]) => ({ name, state }) as ContainerStatus,
    ),
  },
});
const NOW = Date.parse(T1);

describe('parseOutput (docs/promotions.md#step-outputs)', () => {
  it.each([
    [undefined, {}, undefined],
    ['  \n', {}, undefined],
    ['{"chart":"web-1.4.2","n":2}', { chart: 'web-1.4.2', n: 2 }, undefined],
    ['a=1\n# comment\n\nb.c-d=x=y\n', { a: '1', 'b.c-d': 'x=y' }, undefined],
    ['[1,2]', {}, 'output ignored: line 1 is not KEY=VALUE'],
    ['{"a":', {}, 'output ignored: not valid JSON: '],
    ['a=1\nnot a pair', {}, 'output ignored: line 2 is not KEY=VALUE'],
    ['1a=2', {}, 'output ignored: line 1 is not KEY=VALUE'],
  ])('%j', (msg, output, note) => {
    const r = parseOutput(msg, 4096);
    expect(r.output).toEqual(output);
    if (note === undefined) expect(r.note).toBeUndefined();
    else expect(r.note).toContain(note);
  });
  it('mentions the budget when a message that fills it does not parse', () => {
    expect(parseOutput('{"a":"' + 'x'.repeat(600), 585).note).toContain("cut at the step's 585-byte budget");
  });
});

describe('readPod (docs/promotions.md#lifecycle)', () => {
  it('reads a pod that has not started', () => {
    const r = readPod(pod('Pending', { 'step-1': { waiting: { reason: 'PodInitializing' } } }), steps, NOW);
    expect(r).toMatchObject({ phase: 'Running', currentStep: 1, message: 'step "list s3" (1 of 3) pending' });
    expect(r.steps.map((s) => s.phase)).toEqual(['Pending', 'Pending', 'Pending']);
  });
  it('shows a waiting reason and the identity gate', () => {
    const r = readPod(
      pod('Pending', { 'step-1': { waiting: { reason: 'ImagePullBackOff', message: 'back-off pulling' } } }),
      steps,
      NOW,
    );
    expect(r.steps[0]).toMatchObject({
      phase: 'Pending',
      message: 'waiting: ImagePullBackOff: back-off pulling',
    });
    expect(r.message).toBe('step "list s3" (1 of 3) waiting: ImagePullBackOff: back-off pulling');
    const gated = {
      ...pod('Pending', {}),
      spec: { containers: [], schedulingGates: [{ name: 'lanyard.dev/identity' }] },
    };
    expect(readPod(gated, steps, NOW).message).toBe(
      'waiting: pod held by scheduling gate lanyard.dev/identity',
    );
  });
  it("carries the verifier's note for a gated pod, and says when the verify deadline passed (docs/promotions.md)", () => {
    const note =
      'WebIdentity exchange for role arn:aws:iam::111122223333:role/shop-s3-read failed: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity';
    const gated = {
      ...pod('Pending', {}),
      spec: { containers: [], schedulingGates: [{ name: 'lanyard.dev/identity' }] },
    };
    expect(readPod(gated, steps, NOW, note).message).toBe(
      `waiting: pod held by scheduling gate lanyard.dev/identity (identity not verified yet): ${note}`,
    );
    const failed = { ...gated, metadata: { annotations: { 'lanyard.dev/identity-verification': 'failed' } } };
    expect(readPod(failed, steps, NOW, note).message).toBe(
      `waiting: pod held by scheduling gate lanyard.dev/identity (identity not verified within the deadline; retrying): ${note}`,
    );
    expect(readPod(pod('Pending', {}), steps, NOW, note).message).not.toContain(note);
  });
  it('reads a running step', () => {
    const r = readPod(
      pod('Pending', { 'step-1': term(0, 'a=1'), 'step-2': { running: { startedAt: T1 } } }),
      steps,
      NOW,
    );
    expect(r).toMatchObject({ phase: 'Running', currentStep: 2, message: 'running step "publish" (2 of 3)' });
    expect(r.steps[0]).toEqual({
      ...steps[0],
      phase: 'Succeeded',
      exitCode: 0,
      startedAt: T0,
      finishedAt: T1,
      output: { a: '1' },
    });
    expect(r.steps[1]).toMatchObject({ phase: 'Running', startedAt: T1 });
  });
  it('reads success', () => {
    const r = readPod(
      pod('Succeeded', {
        'step-1': term(0, '{"chart":"web"}'),
        'step-2': term(0),
        'step-3': term(0, 'garbage'),
      }),
      steps,
      NOW,
    );
    expect(r).toMatchObject({ phase: 'Succeeded', reason: 'Succeeded', currentStep: 3 });
    expect(r.steps.map((s) => [s.phase, s.output])).toEqual([
      ['Succeeded', { chart: 'web' }],
      ['Succeeded', {}],
      ['Succeeded', {}],
    ]);
    expect(r.steps[2]!.message).toBe('output ignored: line 1 is not KEY=VALUE');
  });
  it('reads a failed step, skipping the rest, even before the pod phase changes', () => {
    for (const phase of ['Failed', 'Pending']) {
      const r = readPod(pod(phase, { 'step-1': term(0), 'step-2': term(3, 'boom\nmore') }), steps, NOW);
      expect(r).toMatchObject({
        phase: 'Failed',
        reason: 'StepFailed',
        currentStep: 2,
        message: 'step "publish" (2 of 3) failed with exit code 3: boom',
      });
      expect(r.steps.map((s) => s.phase)).toEqual(['Succeeded', 'Failed', 'Skipped']);
      expect(r.steps[1]).toMatchObject({ exitCode: 3, message: 'boom\nmore' });
    }
  });
  it('prefixes a reason other than Error', () => {
    const r = readPod(pod('Failed', { 'step-1': term(137, '', 'OOMKilled') }), steps, NOW);
    expect(r.steps[0]!.message).toBe('OOMKilled');
    expect(r.message).toBe('step "list s3" (1 of 3) failed with exit code 137: OOMKilled');
    expect(
      readPod(pod('Failed', { 'step-1': term(137, 'x', 'OOMKilled') }), steps, NOW).steps[0]!.message,
    ).toBe('OOMKilled: x');
  });
  it('reads the promotion deadline', () => {
    const r = readPod(
      pod(
        'Failed',
        { 'step-1': term(0), 'step-2': { running: { startedAt: T0 } } },
        { reason: 'DeadlineExceeded' },
      ),
      steps,
      NOW,
    );
    expect(r).toMatchObject({
      phase: 'Failed',
      reason: 'PromotionTimedOut',
      message: 'promotion timed out after 15m during step "publish" (2 of 3)',
    });
    expect(r.steps.map((s) => [s.phase, s.message])).toEqual([
      ['Succeeded', undefined],
      ['Failed', 'stopped at the promotion timeout'],
      ['Skipped', undefined],
    ]);
  });
  it('reads an eviction as Errored', () => {
    const r = readPod(
      pod(
        'Failed',
        { 'step-1': { running: { startedAt: T0 } } },
        { reason: 'Evicted', message: 'node low on memory' },
      ),
      steps,
      NOW,
    );
    expect(r).toMatchObject({
      phase: 'Errored',
      reason: 'PodEvicted',
      message: 'pod evicted during step "list s3" (1 of 3): node low on memory',
    });
  });
  it('enforces step timeouts with the pod deleted afterwards', () => {
    const p = pod(
      'Pending',
      { 'step-1': { running: { startedAt: T0 } } },
      {},
      { 'lanyard.dev/step-timeouts': '{"step-1":2}' },
    );
    const early = readPod(p, steps, Date.parse(T0) + 1000);
    expect(early).toMatchObject({ phase: 'Running', deletePod: false, nextDeadline: Date.parse(T0) + 2000 });
    const late = readPod(p, steps, Date.parse(T0) + 2000);
    expect(late).toMatchObject({
      phase: 'Failed',
      reason: 'StepTimedOut',
      deletePod: true,
      message: 'step "list s3" (1 of 3) timed out after 2s',
    });
    expect(late.steps.map((s) => [s.phase, s.message])).toEqual([
      ['Failed', 'timed out after 2s'],
      ['Skipped', undefined],
      ['Skipped', undefined],
    ]);
  });
  it('stops steps on abort', () => {
    const r = readPod(
      pod('Pending', { 'step-1': term(0), 'step-2': { running: { startedAt: T0 } } }),
      steps,
      NOW,
    );
    expect(stopSteps(r.steps, 'Aborted', 'aborted').map((s) => s.phase)).toEqual([
      'Succeeded',
      'Aborted',
      'Skipped',
    ]);
  });
});
