import { describe, expect, it } from 'vitest';
import type { Json, KubeClient, KubeRequest } from './client.ts';
import { Informer } from './informer.ts';

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

describe('Informer list (docs/adr/0111-webhook-memory-and-start-up.md)', () => {
  it('reduces each page to its projection before asking for the next, so a large list never holds every raw object', async () => {
    const transformedWhenPageRequested: number[] = [];
    let transformed = 0;
    const pages = [[sa('a', 'x', 'r1'), sa('a', 'y')], [sa('b', 'x')], [sa('c', 'z', 'r2')]];
    const client = pagedClient(pages, () => transformedWhenPageRequested.push(transformed));
    const informer = new Informer<string>({
      client,
      path: '/api/v1/serviceaccounts',
      transform: (o) => {
        transformed++;
        return o.metadata.annotations?.role ?? '';
      },
    }).start();
    expect(await informer.waitForSync(5000)).toBe(true);
    informer.stop();
    // Page 2 was requested after page 1's two objects were projected, page 3 after page 2's one.
    expect(transformedWhenPageRequested).toEqual([0, 2, 3]);
    expect([...informer.store]).toEqual([
      ['a/x', 'r1'],
      ['a/y', ''],
      ['b/x', ''],
      ['c/z', 'r2'],
    ]);
  });

  it('a re-list deletes the objects the server no longer has and updates the others', async () => {
    let pages = [[sa('a', 'x', 'r1'), sa('a', 'y')]];
    const client = pagedClient([], () => {});
    (client as { request: unknown }).request = async () => ({
      items: pages[0],
      metadata: { resourceVersion: '8' },
    });
    const events: string[] = [];
    const informer = new Informer<string>({
      client,
      path: '/api/v1/serviceaccounts',
      transform: (o) => o.metadata.annotations?.role ?? '',
      onAdd: (_v, k) => events.push(`add ${k}`),
      onUpdate: (v, old, k) => events.push(`update ${k} ${old}->${v}`),
      onDelete: (_v, k) => events.push(`delete ${k}`),
    }).start();
    await informer.waitForSync(5000);
    pages = [[sa('a', 'x', 'r2')]];
    await informer.relist();
    informer.stop();
    expect(events).toEqual(['add a/x', 'add a/y', 'delete a/y', 'update a/x r1->r2']);
    expect([...informer.store]).toEqual([['a/x', 'r2']]);
  });

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
    const informer = new Informer<string>({
      client,
      path: '/api/v1/serviceaccounts',
      retryDelayMs: 1,
      transform: (o) => o.metadata.annotations?.role ?? '',
      onAdd: (_v, k) => added.push(k),
    }).start();
    expect(await informer.waitForSync(5000)).toBe(true);
    informer.stop();
    expect([...informer.store]).toEqual([
      ['a/w', 'r3'],
      ['b/y', ''],
    ]);
    expect(added).toEqual(['a/w', 'b/y']);
  });
});
