// Applies the seed manifests of test/fixtures/seeds the way a user does: `${…}` placeholders substituted (as the
// seed's `sed`), then server-side apply with strict field validation, as `kubectl apply` validates fields.
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { objectPath } from '../../../src/kube/apply.ts';

const DIR = path.resolve(import.meta.dirname, '../../fixtures/seeds');

/** The objects of one fixture, placeholders replaced; an unreplaced placeholder is a test bug and throws. */
export function seedManifests(file: string, vars: Record<string, string>): Json[] {
  const text = fs.readFileSync(path.join(DIR, file), 'utf8').replace(/\$\{([A-Z_]+)\}/g, (m, k: string) => {
    if (!(k in vars)) throw new Error(`${file}: no value for ${m}`);
    return vars[k]!;
  });
  return parseAllDocuments(text)
    .map((d) => d.toJSON())
    .filter((o) => o?.kind);
}

/** `kubectl apply --server-side` of one object: unknown fields are refused (fieldValidation=Strict). */
export async function kubectlApply(kube: KubeClient, obj: Json): Promise<Json> {
  return await kube.request({
    method: 'PATCH',
    path: await objectPath(kube, obj),
    query: { fieldManager: 'kubectl', fieldValidation: 'Strict' },
    body: obj,
    contentType: 'application/apply-patch+yaml',
  });
}

export const byKind = (objs: Json[], kind: string): Json => {
  const o = objs.find((x) => x.kind === kind);
  if (!o) throw new Error(`no ${kind} in the fixture`);
  return o;
};
