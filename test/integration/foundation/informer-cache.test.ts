// The shared informer cache against the real API server (docs/adr/1000-shared-informer-cache-and-reconcilers.md):
// one watch per selection however many views, projections per view, late views, client-side filters, and the
// own-write rule with opaque resourceVersions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient, WatchEvent } from '../../../src/kube/client.ts';
import { InformerFactory, type CacheView } from '../../../src/kube/cache.ts';
import { adminClient, eventually, newNamespace } from '../../harness/context.ts';

let admin: KubeClient;
let ns: string;
beforeAll(async () => {
  admin = await adminClient();
  ns = await newNamespace(admin, 'cache');
});
afterAll(async () => {
  await admin.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  admin.close();
});

/** The admin client, counting watch requests and able to hold back the events of open watches (test side only). */
function holdingClient(inner: KubeClient) {
  let holding = false;
  const held: Array<() => void> = [];
  const counts = { watches: 0 };
  const client: KubeClient = Object.create(inner);
  client.watch = (path, query, onEvent, signal, accept) => {
    counts.watches++;
    const deliver = (e: WatchEvent) => (holding ? held.push(() => onEvent(e)) : onEvent(e));
    return inner.watch(path, query, deliver, signal, accept);
  };
  return {
    client,
    counts,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const f of held.splice(0)) f();
    },
    heldCount: () => held.length,
  };
}

const cmPath = (name = '') => `/api/v1/namespaces/${ns}/configmaps${name ? `/${name}` : ''}`;
const configMap = (name: string, data: Record<string, string>, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, labels },
  data,
});
const MERGE = 'application/merge-patch+json';

describe('InformerFactory', () => {
  it('two views of one selection share one watch, and each keeps its own projection', async () => {
    await admin.create(cmPath(), configMap('shared', { colour: 'red', size: 'big' }));
    const h = holdingClient(admin);
    const factory = new InformerFactory({ client: h.client });
    const colours = factory.view<string>({ path: cmPath(), transform: (o) => o.data?.colour });
    const sizes = factory.view<string>({ path: cmPath(), transform: (o) => o.data?.size });
    try {
      expect(await colours.waitForSync(10_000)).toBe(true);
      expect(await sizes.waitForSync(10_000)).toBe(true);
      expect(colours.get(`${ns}/shared`)).toBe('red');
      expect(sizes.get(`${ns}/shared`)).toBe('big');
      await admin.patch(cmPath('shared'), { data: { colour: 'blue' } }, MERGE);
      await eventually(async () => expect(colours.get(`${ns}/shared`)).toBe('blue'));
      expect(factory.watchedSelections).toHaveLength(1);
      expect(h.counts.watches).toBe(1);
    } finally {
      factory.stop();
    }
  });

  it('a view added after the first list receives every object, and views already synced see no spurious update', async () => {
    await admin.create(cmPath(), configMap('late-a', { v: '1' }));
    await admin.create(cmPath(), configMap('late-b', { v: '1' }));
    const factory = new InformerFactory({ client: admin });
    const updates: string[] = [];
    const first = factory.view<Json>({ path: cmPath(), onUpdate: (_o, _old, k) => updates.push(k) });
    try {
      await first.waitForSync(10_000);
      const late = factory.view<string>({ path: cmPath(), transform: (o) => o.data?.v });
      expect(await late.waitForSync(10_000)).toBe(true);
      expect(late.get(`${ns}/late-a`)).toBe('1');
      expect(late.get(`${ns}/late-b`)).toBe('1');
      expect(updates).toEqual([]);
      // The re-started watch still delivers changes to both views.
      await admin.patch(cmPath('late-a'), { data: { v: '2' } }, MERGE);
      await eventually(async () => expect(late.get(`${ns}/late-a`)).toBe('2'));
      await eventually(async () => expect(first.get(`${ns}/late-a`)?.data?.v).toBe('2'));
      expect(updates).toEqual([`${ns}/late-a`]);
    } finally {
      factory.stop();
    }
  });

  it('a client-side filter and an index: an object that stops matching is a delete for that view only', async () => {
    await admin.create(cmPath(), configMap('filtered', { v: '1' }, { team: 'a' }));
    const factory = new InformerFactory({ client: admin });
    const deleted: string[] = [];
    const teamA = factory.view<Json>({
      path: cmPath(),
      filter: (o) => o.metadata?.labels?.team === 'a',
      onDelete: (_o, k) => deleted.push(k),
    });
    const all = factory.view<Json>({
      path: cmPath(),
      indexes: { team: (o) => (o.metadata?.labels?.team ? [o.metadata.labels.team] : []) },
    });
    try {
      await teamA.waitForSync(10_000);
      await all.waitForSync(10_000);
      expect(teamA.has(`${ns}/filtered`)).toBe(true);
      expect(all.byIndex('team', 'a').map((o) => o.metadata.name)).toEqual(['filtered']);
      await admin.patch(cmPath('filtered'), { metadata: { labels: { team: 'b' } } }, MERGE);
      await eventually(async () => expect(teamA.has(`${ns}/filtered`)).toBe(false));
      expect(deleted).toEqual([`${ns}/filtered`]);
      await eventually(async () =>
        expect(all.byIndex('team', 'b').map((o) => o.metadata.name)).toEqual(['filtered']),
      );
      expect(all.byIndex('team', 'a')).toEqual([]);
      expect(all.has(`${ns}/filtered`)).toBe(true);
    } finally {
      factory.stop();
    }
  });

  it('our own write beats the cache until the watch delivers it; older events in flight do not roll it back', async () => {
    await admin.create(cmPath(), configMap('own', { v: 'created' }));
    const h = holdingClient(admin);
    const factory = new InformerFactory({ client: h.client });
    const shown: string[] = [];
    const view = factory.view<string>({
      path: cmPath(),
      transform: (o) => o.data?.v,
      onUpdate: (v) => shown.push(v),
    });
    const key = `${ns}/own`;
    try {
      await view.waitForSync(10_000);
      expect(view.get(key)).toBe('created');
      h.hold();
      // Another writer, then ours: the watch has delivered neither.
      await admin.patch(cmPath('own'), { data: { v: 'theirs' } }, MERGE);
      const ours = await admin.patch(cmPath('own'), { data: { v: 'ours' } }, MERGE);
      await eventually(async () => expect(h.heldCount()).toBe(2));
      view.recordWrite(ours);
      expect(view.get(key)).toBe('ours');
      // The held events arrive in order: "theirs" is older than our write and never shows; ours ends the override
      // without a second update (the view showed it already).
      h.release();
      expect(view.get(key)).toBe('ours');
      expect(shown).toEqual(['ours']);
      // After our version was delivered, a later change by anyone shows.
      await admin.patch(cmPath('own'), { data: { v: 'later' } }, MERGE);
      await eventually(async () => expect(view.get(key)).toBe('later'));
    } finally {
      factory.stop();
    }
  });

  it('a write answer recorded after the watch already delivered a newer version is ignored', async () => {
    await admin.create(cmPath(), configMap('stale-answer', { v: 'created' }));
    const factory = new InformerFactory({ client: admin });
    const view = factory.view<string>({ path: cmPath(), transform: (o) => o.data?.v });
    const key = `${ns}/stale-answer`;
    try {
      await view.waitForSync(10_000);
      const ours = await admin.patch(cmPath('stale-answer'), { data: { v: 'ours' } }, MERGE);
      await eventually(async () => expect(view.get(key)).toBe('ours'));
      await admin.patch(cmPath('stale-answer'), { data: { v: 'newer' } }, MERGE);
      await eventually(async () => expect(view.get(key)).toBe('newer'));
      view.recordWrite(ours);
      expect(view.get(key)).toBe('newer');
      await admin.patch(cmPath('stale-answer'), { data: { v: 'newest' } }, MERGE);
      await eventually(async () => expect(view.get(key)).toBe('newest'));
    } finally {
      factory.stop();
    }
  });

  it('a write of ours recorded while the cache lists again never hides a later version: the list wins, the watch follows', async () => {
    await admin.create(cmPath(), configMap('relisted', { v: 'created' }));
    // The admin client, whose list requests wait until the test lets them through.
    let openGate: () => void = () => undefined;
    let gate: Promise<void> = Promise.resolve();
    const client: KubeClient = Object.create(admin);
    client.request = async (o) => {
      if (!o.path.endsWith('/configmaps') || o.method) return admin.request(o);
      await gate;
      return admin.request(o);
    };
    const factory = new InformerFactory({ client });
    const first = factory.view<string>({ path: cmPath(), transform: (o) => o.data?.v });
    const key = `${ns}/relisted`;
    let second: CacheView<string> | undefined;
    try {
      await first.waitForSync(10_000);
      gate = new Promise((r) => {
        openGate = r;
      });
      // A second view makes the shared watch list again; that list waits at the gate.
      second = factory.view<string>({ path: cmPath(), transform: (o) => o.data?.v });
      // Our write is recorded while the list is in flight, then another writer changes the object before the
      // list's snapshot: the list returns their newer version, and the watch after it never delivers ours.
      first.recordWrite(await admin.patch(cmPath('relisted'), { data: { v: 'ours' } }, MERGE));
      expect(first.get(key)).toBe('ours');
      await admin.patch(cmPath('relisted'), { data: { v: 'theirs' } }, MERGE);
      openGate();
      await second.waitForSync(10_000);
      expect(first.get(key)).toBe('theirs');
      expect(second.get(key)).toBe('theirs');
      // Every later change shows in both views.
      await admin.patch(cmPath('relisted'), { data: { v: 'later' } }, MERGE);
      await eventually(async () => {
        expect(first.get(key)).toBe('later');
        expect(second!.get(key)).toBe('later');
      });
    } finally {
      openGate();
      factory.stop();
    }
  });

  it('the watch ends with the last view of its selection', async () => {
    const factory = new InformerFactory({ client: admin });
    const a = factory.view({ path: cmPath() });
    const b = factory.view({ path: cmPath(), metadataOnly: true });
    await a.waitForSync(10_000);
    await b.waitForSync(10_000);
    expect(factory.watchedSelections).toHaveLength(2);
    a.close();
    expect(factory.watchedSelections).toHaveLength(1);
    b.close();
    expect(factory.watchedSelections).toEqual([]);
    factory.stop();
  });
});
