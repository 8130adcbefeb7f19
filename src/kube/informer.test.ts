import { describe, expect, it } from 'vitest';
import type { Json, KubeClient, KubeRequest } from './client.ts';
import { InformerFactory } from './cache.ts';

/** A client serving `pages` of a list (continue tokens "1", "2", ...) and a watch that stays open until aborted. */
function pagedClient(pages: Json[][], onPage: (index: number) => void): KubeClient {
  const client = {
    server: 'https://fake',
    async request(req: KubeRequest) {
      const index = Number(req.query?.continue ?? 0);
      onPage(index);
      const next = index + 1 < pages.length ? String(index + 1) : undefined;
      return { items: pages[index], metadata: { resourceVersion: '7', continue: next } };
    },
    watch: (_p: string, _q: unknown, _e: unknown, signal?: AbortSignal) =>
      new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true })),
    close() {},
  };
  return client as unknown as KubeClient;
}

const sa = (ns: string, name: string, role?: string) => ({
  metadata: { namespace: ns, name, annotations: role ? { role } : undefined },
});

// Paged projection and relists are checked through the factory's views in cache.test.ts; this is the list loop's
// failure case (ListWatch, under every view).
describe('list/watch loop (docs/adr/0111-webhook-memory-and-start-up.md)', () => {
  it('a list that fails half-way keeps none of its objects: the retried list alone fills the store (docs/adr/0705)', async () => {
    let calls = 0;
    const pages = [[sa('a', 'x', 'r1')], [sa('b', 'y')]];
    const client = pagedClient(pages, () => {});
    const serve = (client as { request: (r: KubeRequest) => Promise<unknown> }).request;
    (client as { request: unknown }).request = async (req: KubeRequest) => {
      calls++;
      if (calls === 2) throw new Error('connection reset');
      if (calls === 3) pages[0] = [sa('a', 'w', 'r3')]; // the retried list sees another first page
      return serve(req);
    };
    const added: string[] = [];
    const factory = new InformerFactory({ client, retryDelayMs: 1 });
    const view = factory.view<string>({
      path: '/api/v1/serviceaccounts',
      transform: (o) => o.metadata.annotations?.role ?? '',
      onAdd: (_v, k) => added.push(k),
    });
    expect(await view.waitForSync(5000)).toBe(true);
    const held = [...view.keys()].map((k) => [k, view.get(k)]);
    factory.stop();
    expect(held).toEqual([
      ['a/w', 'r3'],
      ['b/y', ''],
    ]);
    expect(added).toEqual(['a/w', 'b/y']);
  });
});
