// Server-side apply of multi-document YAML manifests (CRDs, samples), as `kubectl apply --server-side` would.
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { APIResourceList } from 'kubernetes-types/meta/v1.js';
import type { CustomResourceDefinition } from 'kubernetes-types/apiextensions/v1.js';
import type { Json, KubeClient, KubeObject } from './client.ts';
import { sleep } from '../runtime/clock.ts';

/** Maps apiVersion/kind to a collection path through discovery, cached per client. */
const pluralCache = new WeakMap<KubeClient, Map<string, { plural: string; namespaced: boolean }>>();

export async function resourceFor(client: KubeClient, apiVersion: string, kind: string) {
  let cache = pluralCache.get(client);
  if (!cache) pluralCache.set(client, (cache = new Map()));
  const key = `${apiVersion}/${kind}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const list = await client.get<APIResourceList>(base);
  for (const r of list.resources ?? []) {
    if (!r.name.includes('/'))
      cache.set(`${apiVersion}/${r.kind}`, { plural: r.name, namespaced: r.namespaced });
  }
  const found = cache.get(key);
  if (!found) throw new Error(`the API server does not serve ${kind} in ${apiVersion}`);
  return found;
}

/** A manifest's object: what server-side apply needs of it (its kind's other fields are the caller's type's). */
export interface Manifest extends KubeObject {
  apiVersion: string;
  kind: string;
  metadata: KubeObject['metadata'] & { name: string };
}

export async function objectPath(
  client: KubeClient,
  obj: Manifest,
  namespaceDefault?: string,
): Promise<string> {
  const { plural, namespaced } = await resourceFor(client, obj.apiVersion, obj.kind);
  const base = obj.apiVersion.includes('/') ? `/apis/${obj.apiVersion}` : `/api/${obj.apiVersion}`;
  const ns = namespaced ? (obj.metadata.namespace ?? namespaceDefault) : undefined;
  if (namespaced && !ns) throw new Error(`${obj.kind} ${obj.metadata.name} needs a namespace`);
  return `${base}${ns ? `/namespaces/${ns}` : ''}/${plural}/${encodeURIComponent(obj.metadata.name)}`;
}

/** Server-side apply of one object; `T` is the applied kind (the server answers with the object as stored). */
export async function applyObject<T extends KubeObject = Json, M extends Manifest = Manifest>(
  client: KubeClient,
  obj: M,
  fieldManager = 'lanyard',
): Promise<T> {
  const p = await objectPath(client, obj);
  return await client.request<T>({
    method: 'PATCH',
    path: p,
    query: { fieldManager, force: true },
    body: obj,
    contentType: 'application/apply-patch+yaml',
  });
}

/** The objects of a multi-document YAML file (documents without a kind, such as empty ones, left out). */
export function readManifests<T extends KubeObject = Json>(file: string): T[] {
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  return docs.map((d) => d.toJSON() as unknown).filter((o): o is T => isObject(o) && !!o.kind);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object';
}

/** Applies every CRD in a directory and waits until each is Established. */
export async function applyCrds(client: KubeClient, dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const f of fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()) {
    for (const obj of readManifests<Manifest>(path.join(dir, f))) {
      await applyObject(client, obj);
      names.push(obj.metadata.name);
    }
  }
  for (const name of names) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const crd = await client.get<CustomResourceDefinition>(
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`,
      );
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not established after 30s`);
      await sleep(100);
    }
  }
  return names;
}
