// Built-in role drift (docs/projects-and-tokens.md#1-create-a-project): a missing or altered built-in trio. Shared by the housekeeping reconciler
// (Warning Event + gauge) and `lanyard doctor` (finding + fix).
import { BUILTIN_ROLES } from './builtin-roles.ts';
import type { ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { PolicyRule, Role, RoleBinding } from 'kubernetes-types/rbac/v1.js';
import { isManaged } from './labels.ts';
import { isOwnAccount } from './roles.ts';

export interface RoleDrift {
  role: string;
  problem: string;
}

/** Order-insensitive form of a rule list, so reordering by an editor is not reported as drift. */
export function canonicalRules(rules: PolicyRule[] | undefined): string {
  const norm = (rules ?? []).map((r) =>
    JSON.stringify({
      g: [...(r.apiGroups ?? [])].sort(),
      r: [...(r.resources ?? [])].sort(),
      v: [...(r.verbs ?? [])].sort(),
      n: [...(r.resourceNames ?? [])].sort(),
      u: [...(r.nonResourceURLs ?? [])].sort(),
    }),
  );
  return JSON.stringify(norm.sort());
}

/** Compares a project's objects with the built-in roles; `byName` lookups return undefined for missing objects. */
export function builtInDrift(
  project: string,
  lookup: {
    role(name: string): Role | undefined;
    serviceAccount(name: string): ServiceAccount | undefined;
    roleBinding(name: string): RoleBinding | undefined;
  },
): RoleDrift[] {
  const drift: RoleDrift[] = [];
  for (const b of BUILTIN_ROLES) {
    const role = lookup.role(b.name);
    const sa = lookup.serviceAccount(b.name);
    const rb = lookup.roleBinding(b.name);
    if (!role || !sa || !rb) {
      const missing = [!role && 'role', !sa && 'serviceaccount', !rb && 'rolebinding'].filter(Boolean);
      drift.push({ role: b.name, problem: `${missing.join(', ')} "${b.name}" missing` });
      continue;
    }
    const unannotated = (
      [
        [role, 'role'],
        [sa, 'serviceaccount'],
        [rb, 'rolebinding'],
      ] as const
    )
      .filter(([o]) => !isManaged(o))
      .map(([, k]) => k);
    if (unannotated.length) {
      drift.push({
        role: b.name,
        problem: `${unannotated.join(', ')} "${b.name}" not annotated rbac.lanyard.dev/managed: "true"`,
      });
      continue;
    }
    if (canonicalRules(role.rules) !== canonicalRules(b.rules)) {
      drift.push({ role: b.name, problem: `role "${b.name}" rules differ from the built-in rules` });
      continue;
    }
    if (rb.roleRef?.kind !== 'Role' || rb.roleRef?.name !== b.name) {
      drift.push({ role: b.name, problem: `rolebinding "${b.name}" does not reference role "${b.name}"` });
      continue;
    }
    const first = (rb.subjects ?? [])[0];
    if (!first || !isOwnAccount(project, b.name, first)) {
      drift.push({
        role: b.name,
        problem: `rolebinding "${b.name}" does not list serviceaccount "${b.name}" first`,
      });
    }
  }
  return drift;
}

export function driftMessage(project: string, d: RoleDrift[]): string {
  return `built-in roles of project "${project}" drifted: ${d.map((x) => x.problem).join('; ')}; run: lanyard create project ${project} --adopt`;
}
