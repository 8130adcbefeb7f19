// Test and benchmark fixtures for the webhook: an in-memory KubeClient that serves a ServiceAccount list/watch and
// single GETs, and a TLS pair on disk for files mode.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Json, KubeClient, KubeRequest, WatchEvent } from '../kube/client.ts';
import { KubeApiError } from '../kube/client.ts';
import { generateCa, issueServing } from './certificates.ts';

export interface FakeKube extends KubeClient {
  serviceAccounts: Map<string, Json>;
  /** Pushes a watch event to every open SA watch. */
  emit(e: WatchEvent): void;
  /** Makes single-SA GETs hang until aborted. */
  hangGets: boolean;
  /** Delay of single-SA GETs (ms). */
  getDelayMs: number;
  gets: number;
}

export function fakeKube(serviceAccounts: Json[] = []): FakeKube {
  const map = new Map<string, Json>(serviceAccounts.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
  const watchers = new Set<(e: WatchEvent) => void>();
  const fk: FakeKube = {
    server: 'https://fake',
    serviceAccounts: map,
    hangGets: false,
    getDelayMs: 0,
    gets: 0,
    emit: (e) => watchers.forEach((w) => w(e)),
    async request<T>(req: KubeRequest): Promise<T> {
      if (req.path === '/api/v1/serviceaccounts') return { items: [...map.values()], metadata: { resourceVersion: '1' } } as T;
      const m = /^\/api\/v1\/namespaces\/([^/]+)\/serviceaccounts\/([^/]+)$/.exec(req.path);
      if (m) {
        fk.gets++;
        if (fk.getDelayMs) await new Promise((r) => setTimeout(r, fk.getDelayMs));
        if (fk.hangGets)
          await new Promise((_r, reject) => req.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
        const sa = map.get(`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`);
        if (!sa) throw new KubeApiError(404, 'GET', req.path, 'NotFound', 'not found', {});
        return sa as T;
      }
      if (/\/configmaps$/.test(req.path)) return { items: [], metadata: { resourceVersion: '1' } } as T;
      throw new KubeApiError(404, req.method ?? 'GET', req.path, 'NotFound', 'not served by the fake', {});
    },
    async raw<T>(req: KubeRequest) {
      return { status: 200, body: (await fk.request<T>(req)) as T };
    },
    get: (p, query) => fk.request({ path: p, query }),
    create: (p, body) => fk.request({ method: 'POST', path: p, body }),
    update: (p, body) => fk.request({ method: 'PUT', path: p, body }),
    patch: (p, body) => fk.request({ method: 'PATCH', path: p, body }),
    delete: (p) => fk.request({ method: 'DELETE', path: p }),
    async watch(_p, _q, onEvent, signal) {
      watchers.add(onEvent);
      await new Promise<void>((r) => signal?.addEventListener('abort', () => r(), { once: true }));
      watchers.delete(onEvent);
    },
    close: () => undefined,
  };
  return fk;
}

export function serviceAccount(namespace: string, name: string, annotations: Record<string, string> = {}, uid = `${namespace}-${name}`): Json {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { namespace, name, uid, resourceVersion: '1', annotations } };
}

/** A CA-signed serving pair for 127.0.0.1 written to a temp dir; returns the paths and the CA. */
export async function tlsFilesFixture(): Promise<{ dir: string; certFile: string; keyFile: string; caPem: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lanyard-webhook-tls-'));
  const now = new Date();
  const ca = await generateCa('test', now);
  const pair = await issueServing(ca, { namespace: 'test', serviceName: 'webhook', extraSans: ['127.0.0.1', 'localhost'], validityMs: 3600_000 }, now);
  const certFile = path.join(dir, 'tls.crt');
  const keyFile = path.join(dir, 'tls.key');
  writeFileSync(certFile, pair.certPem);
  writeFileSync(keyFile, pair.keyPem);
  return { dir, certFile, keyFile, caPem: ca.certPem };
}
