// Leader election through a coordination.k8s.io Lease: never two leaders, takeover after expiry of a dead holder,
// immediate takeover after a clean release.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, eventually, newNamespace } from '../../harness/context.ts';
import type { KubeClient } from '../../../src/kube/client.ts';
import { silentLogger } from '../../../src/runtime/log.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { startLeaderElection, type LeaderElector } from '../../../src/runtime/leader.ts';

let admin: KubeClient;
let ns: string;
beforeAll(async () => {
  admin = await adminClient();
  ns = await newNamespace(admin, 'leader');
});
afterAll(() => admin.close());

const timing = { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 200 };
function elector(name: string, identity: string, log: string[]): LeaderElector {
  return startLeaderElection({
    kube: admin,
    log: silentLogger(),
    clock: systemClock,
    namespace: ns,
    name,
    identity,
    ...timing,
    onStartedLeading: async (signal) => {
      log.push(`start ${identity}`);
      await new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true }));
      log.push(`stop ${identity}`);
    },
  });
}

describe('leader election', () => {
  it('keeps one leader at a time and hands over on a clean stop at once', async () => {
    const log: string[] = [];
    const a = elector('pair', 'a', log);
    const b = elector('pair', 'b', log);
    let both = 0;
    const sampler = setInterval(() => {
      if (a.isLeader() && b.isLeader()) both++;
    }, 10);
    await eventually(async () => expect(a.isLeader() !== b.isLeader()).toBe(true), 5_000, 20);
    await new Promise((r) => setTimeout(r, 1500));
    const [leader, standby] = a.isLeader() ? [a, b] : [b, a];
    const stoppedAt = Date.now();
    await leader.stop();
    await eventually(async () => expect(standby.isLeader()).toBe(true), 5_000, 10);
    // Released, not expired: the standby takes over within a couple of retry periods, well before lease expiry.
    expect(Date.now() - stoppedAt).toBeLessThan(timing.leaseDurationMs);
    clearInterval(sampler);
    await standby.stop();
    expect(both).toBe(0);
    expect(log.filter((l) => l.startsWith('start'))).toHaveLength(2);
    const lease = await admin.get(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/pair`);
    expect(lease.spec.holderIdentity).toBe('');
    expect(lease.spec.leaseTransitions).toBeGreaterThanOrEqual(1);
  });

  it("waits for a dead holder's lease to expire before taking over", async () => {
    const now = new Date().toISOString().replace('Z', '000Z');
    await admin.create(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'stale' },
      spec: {
        holderIdentity: 'dead',
        leaseDurationSeconds: 2,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      },
    });
    const t0 = Date.now();
    const c = elector('stale', 'c', []);
    await eventually(async () => expect(c.isLeader()).toBe(true), 10_000, 20);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
    await c.stop();
  });
});
