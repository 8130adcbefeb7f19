// `--rule RESOURCES:VERBS[:NAMES]` (docs/projects-and-tokens.md#3-create-a-role-and-grant-it): parsed and checked client-side, one PolicyRule per API group.

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** The resources a rule may name, with the API group each belongs to. */
export const RULE_RESOURCES: Readonly<Record<string, string>> = {
  stages: 'lanyard.dev',
  promotions: 'lanyard.dev',
  promotionsteps: 'lanyard.dev',
  podidentityassociations: 'lanyard.dev',
  serviceaccounts: '',
  secrets: '',
  configmaps: '',
  events: '',
  roles: 'rbac.authorization.k8s.io',
  rolebindings: 'rbac.authorization.k8s.io',
};

export const RULE_VERBS = [
  'get',
  'list',
  'watch',
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
] as const;

export type RuleResult = { ok: true; rules: PolicyRule[] } | { ok: false; error: string };

function closest(word: string): string | undefined {
  const known = Object.keys(RULE_RESOURCES);
  if (known.includes(`${word}s`)) return `${word}s`;
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = distance(word, k);
    if (d <= 2 && (!best || d < best.d)) best = { name: k, d };
  }
  return best?.name;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

function list(part: string): string[] {
  return part.split(',').map((s) => s.trim());
}

/** Parses one --rule value. */
export function parseRule(text: string): RuleResult {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3) {
    return {
      ok: false,
      error: `invalid --rule "${text}": use RESOURCES:VERBS[:NAMES], e.g. stages,promotions:get,list`,
    };
  }
  const [resPart = '', verbPart = '', namePart] = parts;
  const resources = list(resPart);
  const verbs = list(verbPart);
  if (resources.some((r) => r === '')) return { ok: false, error: `missing resource in --rule "${text}"` };
  if (verbs.some((v) => v === '')) return { ok: false, error: `missing verb in --rule "${text}"` };
  for (const r of resources) {
    if (!(r in RULE_RESOURCES)) {
      const hint = closest(r);
      return {
        ok: false,
        error: hint
          ? `unknown resource "${r}" in --rule "${text}": did you mean "${hint}"?`
          : `unknown resource "${r}" in --rule "${text}"; allowed: ${Object.keys(RULE_RESOURCES).join(', ')}`,
      };
    }
  }
  for (const v of verbs) {
    if (v !== '*' && !(RULE_VERBS as readonly string[]).includes(v)) {
      return {
        ok: false,
        error: `unknown verb "${v}" in --rule "${text}"; allowed: ${RULE_VERBS.join(', ')}, *`,
      };
    }
  }
  let names: string[] | undefined;
  if (namePart !== undefined) {
    names = list(namePart);
    if (names.some((n) => n === '')) return { ok: false, error: `missing name in --rule "${text}"` };
  }
  const expanded = verbs.includes('*') ? [...RULE_VERBS] : dedupe(verbs);
  const byGroup = new Map<string, string[]>();
  for (const r of dedupe(resources)) {
    const g = RULE_RESOURCES[r]!;
    byGroup.set(g, [...(byGroup.get(g) ?? []), r]);
  }
  const rules = [...byGroup].map(([g, rs]) => {
    const rule: PolicyRule = { apiGroups: [g], resources: rs, verbs: expanded };
    if (names) rule.resourceNames = dedupe(names);
    return rule;
  });
  return { ok: true, rules };
}

/** Parses every --rule value; the first error wins. */
export function parseRules(texts: string[]): RuleResult {
  const rules: PolicyRule[] = [];
  for (const t of texts) {
    const r = parseRule(t);
    if (!r.ok) return r;
    rules.push(...r.rules);
  }
  return { ok: true, rules };
}

function dedupe<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}
