import { describe, expect, it } from 'vitest';
import { SerialPasses } from './serial.ts';

/** A pass the test ends by hand, recording when passes start and when the runner is idle. */
function harness() {
  const events: string[] = [];
  const ends: Array<() => void> = [];
  const passes = new SerialPasses(
    () => {
      events.push(`pass ${ends.length + 1}`);
      return new Promise<void>((r) => ends.push(r));
    },
    () => events.push('idle'),
  );
  const endPass = async (n: number) => {
    ends[n - 1]!();
    await new Promise((r) => setImmediate(r));
  };
  return { events, passes, endPass };
}

describe('SerialPasses', () => {
  it('runs one pass at a time: triggers during a pass coalesce into one more pass right after it, then idle', async () => {
    const { events, passes, endPass } = harness();
    passes.trigger();
    passes.trigger();
    passes.trigger();
    expect(events).toEqual(['pass 1']);
    await endPass(1);
    expect(events).toEqual(['pass 1', 'pass 2']);
    await endPass(2);
    expect(events).toEqual(['pass 1', 'pass 2', 'idle']);
  });

  it('starts no pass once stopped (not the one asked for during the pass), and stop resolves when the pass in progress ends', async () => {
    const { events, passes, endPass } = harness();
    passes.trigger();
    passes.trigger();
    let stopped = false;
    const stopping = passes.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    await endPass(1);
    await stopping;
    passes.trigger();
    expect(events).toEqual(['pass 1']);
  });
});
