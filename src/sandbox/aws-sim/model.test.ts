import { describe, expect, it } from 'vitest';
import { Versioned, seededRandom, uuid } from './model.ts';

describe('Versioned: what each API sees (docs/aws-simulator.md#consistency-and-faults)', () => {
  it('shows nothing before a create is visible, then the previous version until an update is, then the deletion', () => {
    const v = new Versioned<string>();
    v.push('v1', { eksAuth: 1000, 'eks.describe': 0 });
    expect(v.view('eks.describe', 0)).toBe('v1');
    expect(v.view('eksAuth', 999)).toBeUndefined();
    expect(v.view('eksAuth', 1000)).toBe('v1');
    v.push('v2', { eksAuth: 3000, 'eks.describe': 1500 });
    expect(v.view('eksAuth', 2000)).toBe('v1');
    expect(v.view('eks.describe', 2000)).toBe('v2');
    expect(v.latest).toBe('v2');
    v.push(undefined, { eksAuth: 5000, 'eks.describe': 5000 });
    expect(v.view('eksAuth', 4000)).toBe('v2');
    expect(v.view('eksAuth', 5000)).toBeUndefined();
    expect(v.latest).toBeUndefined();
    expect(v.gone(4000)).toBe(false);
    expect(v.gone(5000)).toBe(true);
  });

  it('makeVisible brings the latest version forward for every API and prunes older ones', () => {
    const v = new Versioned<string>();
    v.push('v1', { eksAuth: 0 });
    v.push('v2', { eksAuth: 10_000, 'eks.list': 20_000 });
    v.makeVisible(100);
    expect(v.view('eksAuth', 100)).toBe('v2');
    expect(v.view('eks.list', 100)).toBe('v2');
    expect(v.versions).toHaveLength(1);
    expect(v.latestVisibleAt).toEqual({ eksAuth: 100, 'eks.list': 100 });
  });

  it('mutateAll changes every version (tags)', () => {
    const v = new Versioned<{ t: number }>();
    v.push({ t: 1 }, {});
    v.push({ t: 2 }, { eksAuth: 10 });
    v.mutateAll((x) => ({ t: x.t * 10 }));
    expect(v.view('eksAuth', 0)).toEqual({ t: 10 });
    expect(v.latest).toEqual({ t: 20 });
  });
});

describe('seeded randomness', () => {
  it('repeats from the same seed and differs across seeds', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    const c = seededRandom(43);
    const xs = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(xs);
    expect(c()).not.toBe(xs[0]);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
  it('makes v4-shaped UUIDs', () => {
    expect(uuid(seededRandom(1))).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});
