import { describe, expect, it } from 'vitest';
import { progressLines } from './progress.ts';
import { hasTokenManagerBinding } from './controller.ts';

const T = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const snap = (status: object) => ({ metadata: { name: 'prod-8f2kq' }, status });
const steps = (a: object, b: object) => [
  { name: 'list s3', phase: 'Pending', ...a },
  { name: 'publish', phase: 'Pending', ...b },
];

describe('progressLines (docs/promotions.md#cli)', () => {
  it('prints the documented progress example line by line (docs/promotions.md#cli)', () => {
    const seq = [
      snap({ phase: 'Pending', message: 'waiting for promotion "prod-4xk9p" on stage "prod"' }),
      snap({
        phase: 'Running',
        pod: { namespace: 'lanyard-promotions', name: 'promotion-3f6c', serviceAccount: 's3-access' },
        steps: steps({}, {}),
      }),
      snap({ phase: 'Running', pod: {}, steps: steps({ phase: 'Running', startedAt: T(0) }, {}) }),
      snap({
        phase: 'Running',
        pod: {},
        steps: steps(
          { phase: 'Succeeded', startedAt: T(0), finishedAt: T(6) },
          { phase: 'Running', startedAt: T(6) },
        ),
      }),
      snap({
        phase: 'Failed',
        message: 'step "publish" (2 of 2) failed with exit code 3: upload rejected',
        steps: steps(
          { phase: 'Succeeded', startedAt: T(0), finishedAt: T(6) },
          {
            phase: 'Failed',
            exitCode: 3,
            message: 'upload rejected\nmore',
            startedAt: T(6),
            finishedAt: T(9),
          },
        ),
      }),
    ];
    const lines: string[] = [];
    let prev: object | undefined;
    for (const s of seq) {
      lines.push(...progressLines(prev, s));
      prev = s;
    }
    expect(lines).toEqual([
      'prod-8f2kq: waiting for promotion "prod-4xk9p" on stage "prod"',
      'prod-8f2kq: running in pod lanyard-promotions/promotion-3f6c as serviceaccount "s3-access"',
      '[1/2] list s3    running',
      '[1/2] list s3    succeeded in 6s',
      '[2/2] publish    running',
      '[2/2] publish    failed in 3s, exit code 3: upload rejected',
      'promotion/prod-8f2kq Failed: step "publish" (2 of 2) failed with exit code 3: upload rejected',
    ]);
  });
  it("prints the identity gate's reason while the pod is held, once per change (docs/promotions.md)", () => {
    const running = snap({
      phase: 'Running',
      pod: { namespace: 'lanyard-promotions', name: 'promotion-3f6c', serviceAccount: 's3-access' },
      message: 'running in pod',
      steps: steps({}, {}),
    });
    const held = snap({
      phase: 'Running',
      pod: {},
      message:
        'waiting: pod held by scheduling gate lanyard.dev/identity (identity not verified yet): AccessDenied: no',
      steps: steps({}, {}),
    });
    expect(progressLines(running, held)).toEqual([
      'prod-8f2kq: waiting: pod held by scheduling gate lanyard.dev/identity (identity not verified yet): AccessDenied: no',
    ]);
    expect(progressLines(held, held)).toEqual([]);
  });
  it('prints a running line for a step that ended between two snapshots, and nothing when nothing changed', () => {
    const a = snap({ phase: 'Running', pod: {}, steps: steps({}, {}) });
    const b = snap({
      phase: 'Succeeded',
      message: 'all 2 steps succeeded',
      steps: steps(
        { phase: 'Succeeded', startedAt: T(0), finishedAt: T(2) },
        { phase: 'Succeeded', startedAt: T(2), finishedAt: T(3) },
      ),
    });
    expect(progressLines(a, b)).toEqual([
      '[1/2] list s3    running',
      '[1/2] list s3    succeeded in 2s',
      '[2/2] publish    running',
      '[2/2] publish    succeeded in 1s',
      'promotion/prod-8f2kq Succeeded: all 2 steps succeeded',
    ]);
    expect(progressLines(b, b)).toEqual([]);
  });
  it('prints timeouts and aborts', () => {
    const a = snap({ phase: 'Running', pod: {}, steps: steps({ phase: 'Running', startedAt: T(0) }, {}) });
    const b = snap({
      phase: 'Aborted',
      message: 'aborted on request',
      steps: steps({ phase: 'Aborted', startedAt: T(0) }, { phase: 'Skipped' }),
    });
    expect(progressLines(a, b)).toEqual([
      '[1/2] list s3    aborted',
      'promotion/prod-8f2kq Aborted: aborted on request',
    ]);
    const c = snap({
      phase: 'Failed',
      message: 'step "list s3" (1 of 2) timed out after 2s',
      steps: steps({ phase: 'Failed', message: 'timed out after 2s', startedAt: T(0) }, { phase: 'Skipped' }),
    });
    expect(progressLines(a, c)).toEqual([
      '[1/2] list s3    failed: timed out after 2s',
      'promotion/prod-8f2kq Failed: step "list s3" (1 of 2) timed out after 2s',
    ]);
  });
});

describe('hasTokenManagerBinding', () => {
  const rb = (role: string, sa: string, ns?: string) => ({
    metadata: { namespace: 'lanyard-promotions' },
    roleRef: { kind: 'Role', name: role },
    subjects: [{ kind: 'ServiceAccount', name: sa, ...(ns ? { namespace: ns } : {}) }],
  });
  it.each([
    [[rb('lanyard-promotion-token-manager', 's3-access', 'lanyard-promotions')], true],
    [[rb('lanyard-promotion-token-manager', 's3-access')], true],
    [[rb('lanyard-promotion-token-manager', 's3-access', 'other')], false],
    [[rb('other-role', 's3-access', 'lanyard-promotions')], false],
    [[rb('lanyard-promotion-token-manager', 'someone-else', 'lanyard-promotions')], false],
    [[], false],
  ])('%#', (bindings, want) =>
    expect(hasTokenManagerBinding(bindings, 'lanyard-promotions', 's3-access')).toBe(want),
  );
});
