import { describe, expect, it } from 'vitest';
import { conditionUnchanged, setCondition } from './conditions.ts';

describe('setCondition', () => {
  const t1 = new Date('2026-01-01T00:00:00.123Z');
  const t2 = new Date('2026-01-01T00:05:00Z');
  it('adds a condition with a second-precision transition time', () => {
    const c = setCondition(
      undefined,
      { type: 'Ready', status: 'True', reason: 'Ready', message: '', observedGeneration: 1 },
      t1,
    );
    expect(c).toEqual([
      {
        type: 'Ready',
        status: 'True',
        reason: 'Ready',
        message: '',
        observedGeneration: 1,
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ]);
  });
  it('keeps lastTransitionTime when only the reason or message changes', () => {
    const a = setCondition(undefined, { type: 'Synced', status: 'False', reason: 'A', message: 'x' }, t1);
    const b = setCondition(a, { type: 'Synced', status: 'False', reason: 'B', message: 'y' }, t2);
    expect(b[0]!.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    expect(b[0]!.reason).toBe('B');
  });
  it('moves lastTransitionTime when the status changes, leaving other types alone', () => {
    let c = setCondition(undefined, { type: 'Synced', status: 'False', reason: 'A', message: '' }, t1);
    c = setCondition(c, { type: 'Ready', status: 'False', reason: 'R', message: '' }, t1);
    c = setCondition(c, { type: 'Synced', status: 'True', reason: 'InSync', message: '' }, t2);
    expect(c.map((x) => [x.type, x.status, x.lastTransitionTime])).toEqual([
      ['Synced', 'True', '2026-01-01T00:05:00Z'],
      ['Ready', 'False', '2026-01-01T00:00:00Z'],
    ]);
    expect(conditionUnchanged(c, { type: 'Synced', status: 'True', reason: 'InSync', message: '' })).toBe(
      true,
    );
    expect(conditionUnchanged(c, { type: 'Synced', status: 'True', reason: 'Other', message: '' })).toBe(
      false,
    );
  });
});
