// The shared informer cache's list path (docs/adr/1000-shared-informer-cache-and-reconcilers.md, addendum): each page
// is reduced to every view's projection before the next is asked for, so a list of 10,000 Pods never holds every raw
// object at once; a view attached once a list has projected objects gets them from the list its attach requests.
import { describe, expect, it } from 'vitest';
import type { Json, KubeClient, KubeRequest } from './client.ts';
import { InformerFactory } from './cache.ts';

/** A client serving `pages` of a list (continue tokens "1", "2", ...) and watches that stay open until aborted. */
function pagedClient(pages: Json[][], onPage: (index: number) => void | Promise<void>) {
  const counts = { lists: 0 };
  const client = {
    server: 'https://fake',
    async request(req: KubeRequest) {
      const index = Number(req.query?.continue ?? 0);
      if (index === 0) counts.lists++;
      await onPage(index);
      const next = index + 1 < pages.length ? String(index + 1) : undefined;
      return { items: pages[index], metadata: { resourceVersion: '7', continue: next } };
    },
    // As the real client: a watch asked for with an aborted signal ends at once.
    watch: (_p: string, _q: unknown, _e: unknown, signal?: AbortSignal) =>
      signal?.aborted
        ? Promise.resolve()
        : new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true })),
    close() {},
  };
  return { client: client as unknown as KubeClient, counts };
}

const pod = (ns: string, name: string, app?: string) => ({
  metadata: { namespace: ns, name, resourceVersion: `${ns}${name}`, labels: app ? { app } : {} },
  spec: { big: 'x'.repeat(100) },
});

describe('InformerFactory list: projected page by page', () => {
  it('projects each page for every view before asking for the next; filters apply per view', async () => {
    const seen: number[] = [];
    let projected = 0;
    const pages = [[pod('a', 'x', 'web'), pod('a', 'y')], [pod('b', 'x', 'web')], [pod('c', 'z')]];
    const { client, counts } = pagedClient(pages, () => void seen.push(projected));
    const factory = new InformerFactory({ client });
    const names = factory.view<string>({
      path: '/api/v1/pods',
      transform: (o) => {
        projected++;
        return o.metadata.name;
      },
    });
    const web = factory.view<string>({
      path: '/api/v1/pods',
      filter: (o) => o.metadata.labels.app === 'web',
      transform: (o) => o.metadata.namespace,
    });
    try {
      expect(await names.waitForSync(5000)).toBe(true);
      expect(await web.waitForSync(5000)).toBe(true);
      // Page 2 was asked for after page 1's two objects were projected, page 3 after page 2's one.
      expect(seen).toEqual([0, 2, 3]);
      expect([...names.keys()]).toEqual(['a/x', 'a/y', 'b/x', 'c/z']);
      expect(names.get('c/z')).toBe('z');
      expect([...web.keys()]).toEqual(['a/x', 'b/x']);
      expect(web.get('b/x')).toBe('b');
      // The second view came before any page: one list served both.
      expect(counts.lists).toBe(1);
    } finally {
      factory.stop();
    }
  });

  it('a view attached after a page was projected is served by the list its attach requests, complete', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const pages = [[pod('a', 'x')], [pod('b', 'y')]];
    // The second page waits until the test has attached the late view.
    const { client, counts } = pagedClient(pages, (i) => (i === 1 && counts.lists === 1 ? gate : undefined));
    const factory = new InformerFactory({ client });
    const first = factory.view<string>({ path: '/api/v1/pods', transform: (o) => o.metadata.name });
    try {
      await new Promise((r) => setTimeout(r, 20));
      const late = factory.view<string>({
        path: '/api/v1/pods',
        transform: (o) => `late-${o.metadata.name}`,
      });
      release();
      expect(await first.waitForSync(5000)).toBe(true);
      expect(await late.waitForSync(5000)).toBe(true);
      expect([...late.values()]).toEqual(['late-x', 'late-y']);
      expect([...first.values()]).toEqual(['x', 'y']);
      expect(counts.lists).toBe(2);
    } finally {
      factory.stop();
    }
  });
});

describe('InformerFactory relist (the webhook debug cache clear, docs/webhook.md#debug-routes)', () => {
  it('lists the selection again and resolves once that list reached every view: vanished objects are deleted, held versions cause no update', async () => {
    const pages = [[pod('a', 'x'), pod('a', 'y')]];
    const { client, counts } = pagedClient(pages, () => undefined);
    const factory = new InformerFactory({ client });
    const events: string[] = [];
    const names = factory.view<string>({
      path: '/api/v1/pods',
      transform: (o) => o.metadata.name,
      onAdd: (_v, k) => events.push(`add ${k}`),
      onUpdate: (_v, _old, k) => events.push(`update ${k}`),
      onDelete: (_v, k) => events.push(`delete ${k}`),
    });
    const other = factory.view<string>({ path: '/api/v1/pods', transform: (o) => o.metadata.namespace });
    try {
      expect(await names.waitForSync(5000)).toBe(true);
      expect(await other.waitForSync(5000)).toBe(true);
      pages[0] = [pod('a', 'x')];
      await names.relist();
      expect(counts.lists).toBe(2);
      expect(events).toEqual(['add a/x', 'add a/y', 'delete a/y']);
      expect([...other.keys()]).toEqual(['a/x']);
    } finally {
      factory.stop();
    }
  });

  it('a relist pending when the factory stops resolves', async () => {
    const { client } = pagedClient([[pod('a', 'x')]], () => new Promise<void>(() => undefined));
    const factory = new InformerFactory({ client });
    const view = factory.view<string>({ path: '/api/v1/pods' });
    const relisted = view.relist();
    factory.stop();
    await expect(relisted).resolves.toBeUndefined();
  });
});
