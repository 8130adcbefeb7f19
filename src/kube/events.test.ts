import { describe, expect, it } from 'vitest';
import type { KubeClient } from './client.ts';
import { createEventRecorder } from './events.ts';
import { silentLogger } from '../runtime/log.ts';

/** A client whose creates stay open until released, counting how many are open at once. */
function slowKube() {
  const open: (() => void)[] = [];
  const st = { created: 0, maxOpen: 0 };
  const kube = {
    create: () =>
      new Promise<void>((resolve) => {
        open.push(() => {
          st.created++;
          resolve();
        });
        st.maxOpen = Math.max(st.maxOpen, open.length);
      }),
  } as unknown as KubeClient;
  const drain = async () => {
    while (open.length > 0) {
      for (const r of open.splice(0)) r();
      await new Promise((r) => setImmediate(r));
    }
  };
  return { kube, st, drain };
}

const pod = (i: number) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: `p${i}`, namespace: 'ns', uid: `u${i}` },
});

describe('createEventRecorder: a burst of Events is written a few at a time (docs/identities.md, "Cost")', () => {
  it('keeps at most maxInFlight writes open and writes every Event of a 500-Event burst', async () => {
    const { kube, st, drain } = slowKube();
    const rec = createEventRecorder({ kube, reportingController: 't', log: silentLogger(), maxInFlight: 4 });
    for (let i = 0; i < 500; i++) rec.warning(pod(i), 'IdentityMissing', `pod ${i}`);
    await new Promise((r) => setImmediate(r));
    expect(st.maxOpen).toBe(4);
    await drain();
    expect(st.created).toBe(500);
    expect(st.maxOpen).toBe(4);
  });

  it('drops Events beyond maxQueued rather than holding an unbounded backlog', async () => {
    const { kube, st, drain } = slowKube();
    const rec = createEventRecorder({
      kube,
      reportingController: 't',
      log: silentLogger(),
      maxInFlight: 2,
      maxQueued: 10,
    });
    for (let i = 0; i < 50; i++) rec.warning(pod(i), 'IdentityMissing', `pod ${i}`);
    await drain();
    expect(st.created).toBe(12);
  });
});
