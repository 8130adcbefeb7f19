// The one list path of `lanyard get`: every noun lists through listAll (pages of 500, items printable with
// apiVersion and kind) and picks named objects through pickNamed (argument order, each name once), then prints
// through the framework's ctx.out.list (docs/cli.md, output).
import type { Json, KubeClient } from '../kube/client.ts';
import type { KubeList, KubeObject, Stored } from '../core/kube-object.ts';
import type { ListSpec, Printer } from './framework.ts';
import { CliError, EXIT } from './exit.ts';

/**
 * Lists every item, 500 at a time, with apiVersion and kind set (docs/projects-and-tokens.md: `limit=500` pagination);
 * `T` is the listed kind (`Json` for a caller not typed yet).
 */
export async function listAll<T extends KubeObject = Json>(
  kube: KubeClient,
  path: string,
  query: Record<string, string | undefined> = {},
): Promise<Stored<T>[]> {
  const items: Stored<T>[] = [];
  let cont: string | undefined;
  do {
    const page = await kube.get<Partial<KubeList<Stored<T>>>>(path, { ...query, limit: 500, continue: cont });
    // List items come without apiVersion/kind; printed objects need them (kubectl adds them too).
    const kind = String(page.kind ?? '').replace(/List$/, '');
    for (const it of page.items ?? []) items.push({ apiVersion: page.apiVersion, kind, ...it });
    cont = page.metadata?.continue || undefined;
  } while (cont);
  return items;
}

export function byName(a: KubeObject, b: KubeObject): number {
  const x = a.metadata?.name as string;
  const y = b.metadata?.name as string;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** For `get [NAME...]`: every item when no name is given, else the named ones in argument order (each name once), and the names not found. */
export function pickNamed<T>(
  items: T[],
  names: string[],
  nameOf: (t: T) => string,
): { found: T[]; missing: string[] } {
  if (names.length === 0) return { found: items, missing: [] };
  const index = new Map(items.map((i) => [nameOf(i), i]));
  const found: T[] = [];
  const missing: string[] = [];
  for (const n of [...new Set(names)]) {
    const it = index.get(n);
    if (it) found.push(it);
    else missing.push(n);
  }
  return { found, missing };
}

/**
 * Prints what `pickNamed` found (one named object alone with -o yaml|json), then one not-found error per missing
 * name, after the objects found (docs/cli.md#conventions, several names); returns the exit code.
 */
export function printPicked<T>(
  out: Printer,
  picked: { found: T[]; missing: string[] },
  names: string[],
  spec: Omit<ListSpec<T>, 'items' | 'single'>,
): number {
  out.list({ ...spec, items: picked.found, single: names.length === 1 });
  const where = spec.project === undefined ? '' : ` in project "${spec.project}"`;
  let code = 0;
  for (const m of picked.missing)
    code ||= out.error(new CliError(`${spec.noun.name} "${m}" not found${where}`, EXIT.notFound));
  return code;
}
