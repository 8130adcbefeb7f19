import { describe, expect, it } from 'vitest';
import type { Json, KubeClient, WatchEvent } from '../kube/client.ts';
import { silentLogger } from '../runtime/log.ts';
import { createAssociationLookup } from './lookup.ts';

/** An API server with fixed lists per collection path and watches the test can push events into. */
function fakeKube(served: Record<string, boolean>, lists: Record<string, Json[]>) {
  const watchers = new Map<string, (e: WatchEvent) => void>();
  const kube = {
    server: 'https://fake',
    async raw({ path }: { path: string }) {
      const group = path.split('/')[2]!;
      return served[group]
        ? { status: 200, body: { resources: [{ name: 'podidentityassociations' }] } }
        : { status: 404, body: {} };
    },
    async request({ path }: { path: string }) {
      return { items: lists[path] ?? [], metadata: { resourceVersion: '1' } };
    },
    watch(path: string, _q: unknown, onEvent: (e: WatchEvent) => void, signal?: AbortSignal) {
      watchers.set(path, onEvent);
      return new Promise<void>((resolve) =>
        signal?.addEventListener('abort', () => resolve(), { once: true }),
      );
    },
  } as unknown as KubeClient;
  return { kube, push: (path: string, e: WatchEvent) => watchers.get(path)!(e) };
}

const L = '/apis/lanyard.dev/v1alpha1/podidentityassociations';
const A = '/apis/eks.services.k8s.aws/v1alpha1/podidentityassociations';

const lpia = (name: string, sa: string, created: string, extra: Json = {}) => ({
  metadata: {
    name,
    namespace: 'team-a',
    uid: `uid-${name}`,
    creationTimestamp: created,
    resourceVersion: '1',
    ...extra.metadata,
  },
  spec: { serviceAccount: sa, roleARN: `arn:aws:iam::111122223333:role/${name}`, ...extra.spec },
  status: { associationID: `a-${name}`, ...extra.status },
});

describe('createAssociationLookup', () => {
  it('indexes by pair, oldest wins, other clusters and deleting objects do not count', async () => {
    const { kube, push } = fakeKube(
      { 'lanyard.dev': true },
      {
        [L]: [
          lpia('newer', 'uploader', '2026-01-02T00:00:00Z'),
          lpia('older', 'uploader', '2026-01-01T00:00:00Z'),
          lpia('remote', 'other', '2025-01-01T00:00:00Z', { spec: { clusterName: 'elsewhere' } }),
        ],
      },
    );
    const lookup = createAssociationLookup(
      { kube, log: silentLogger() },
      { clusterName: 'prod', observeAck: 'false' },
    );
    try {
      expect(await lookup.waitForSync(2000)).toBe(true);
      expect(lookup.forPair('team-a', 'uploader')).toMatchObject({
        kind: 'lanyard',
        objectName: 'older',
        uid: 'uid-older',
        roleARN: 'arn:aws:iam::111122223333:role/older',
        associationID: 'a-older',
        disableSessionTags: false,
      });
      expect(lookup.forPair('team-a', 'other')).toBeUndefined();
      expect(lookup.ownerOf('elsewhere', 'team-a', 'other')?.objectName).toBe('remote');
      expect(lookup.recordsFor('prod', 'team-a', 'uploader').map((r) => r.objectName)).toEqual([
        'older',
        'newer',
      ]);

      const changes: string[] = [];
      lookup.subscribe((c) => changes.push(`${c.before?.objectName}->${c.after?.objectName}`));
      push(L, {
        type: 'MODIFIED',
        object: lpia('older', 'uploader', '2026-01-01T00:00:00Z', {
          metadata: { deletionTimestamp: 'now', resourceVersion: '2' },
        }),
      });
      expect(lookup.forPair('team-a', 'uploader')?.objectName).toBe('newer');
      push(L, { type: 'DELETED', object: lpia('newer', 'uploader', '2026-01-02T00:00:00Z') });
      expect(lookup.forPair('team-a', 'uploader')).toBeUndefined();
      expect(changes).toEqual(['older->older', 'newer->undefined']);
      expect(lookup.ackObserved()).toBe(false);
    } finally {
      await lookup.stop();
    }
  });

  it('auto: ACK objects count while their CRD is served; the pair is spec.namespace; clusterRef alone is ignored', async () => {
    const ack = (name: string, created: string, spec: Json) => ({
      metadata: {
        name,
        namespace: 'ack-objects',
        uid: `uid-${name}`,
        creationTimestamp: created,
        resourceVersion: '1',
      },
      spec,
      status: { associationID: 'a-ack' },
    });
    const { kube } = fakeKube(
      { 'lanyard.dev': true, 'eks.services.k8s.aws': true },
      {
        [L]: [lpia('mine', 'uploader', '2026-01-02T00:00:00Z')],
        [A]: [
          ack('theirs', '2026-01-01T00:00:00Z', {
            clusterName: 'prod',
            namespace: 'team-a',
            serviceAccount: 'uploader',
            roleRef: { from: { name: 'r' } },
          }),
          ack('by-ref', '2025-01-01T00:00:00Z', {
            clusterRef: { from: { name: 'c' } },
            namespace: 'team-a',
            serviceAccount: 'uploader',
          }),
        ],
      },
    );
    const lookup = createAssociationLookup(
      { kube, log: silentLogger() },
      { clusterName: 'prod', observeAck: 'auto' },
    );
    try {
      expect(await lookup.waitForSync(2000)).toBe(true);
      expect(lookup.ackObserved()).toBe(true);
      const owner = lookup.forPair('team-a', 'uploader');
      expect(owner).toMatchObject({
        kind: 'ack',
        objectNamespace: 'ack-objects',
        objectName: 'theirs',
        associationID: 'a-ack',
      });
      expect(owner?.roleARN).toBeUndefined();
    } finally {
      await lookup.stop();
    }
  });

  it('a kind whose CRD is not served reads as empty and synced', async () => {
    const { kube } = fakeKube({}, {});
    const lookup = createAssociationLookup(
      { kube, log: silentLogger() },
      { clusterName: 'prod', observeAck: 'auto' },
    );
    try {
      expect(await lookup.waitForSync(2000)).toBe(true);
      expect(lookup.forPair('team-a', 'uploader')).toBeUndefined();
      expect(lookup.ackObserved()).toBe(false);
    } finally {
      await lookup.stop();
    }
  });

  it('observeAck true waits for the ACK watch before reporting synced', async () => {
    const { kube } = fakeKube({ 'lanyard.dev': true }, {});
    const lookup = createAssociationLookup(
      { kube, log: silentLogger() },
      { clusterName: 'prod', observeAck: 'true' },
    );
    try {
      expect(await lookup.waitForSync(2000)).toBe(true);
      expect(lookup.ackObserved()).toBe(true);
    } finally {
      await lookup.stop();
    }
  });
});
