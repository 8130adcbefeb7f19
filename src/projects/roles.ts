// Roles as trios (docs/projects-and-tokens.md#3-create-a-role-and-grant-it): joining the three objects, deciding whether the CLI may change them, merging
// subjects for grant/revoke, and the view printed by `get roles -o yaml|json`.
import { isManaged, noManagedAnnotation, notManagedRefusal, RBAC_GROUP } from './labels.ts';
import { isBuiltInRole } from './builtin-roles.ts';
import type { Subject } from './objects.ts';
import type { ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { PolicyRule, Role, RoleBinding, Subject as RbacSubject } from 'kubernetes-types/rbac/v1.js';
import type { KubeObject } from '../core/kube-object.ts';

export interface RoleJoin {
  name: string;
  role?: Role;
  serviceAccount?: ServiceAccount;
  roleBinding?: RoleBinding;
}

/** The `rbac.lanyard.dev/v1alpha1 Role` view of a trio, printed by `get roles -o yaml|json` (not stored). */
export interface RoleView {
  apiVersion: 'rbac.lanyard.dev/v1alpha1';
  kind: 'Role';
  metadata: { name: string; namespace: string; creationTimestamp?: string };
  managed: boolean;
  builtIn: boolean;
  description?: string;
  rules?: PolicyRule[];
  subjects?: RbacSubject[];
}

const nameOf = (o: KubeObject): string => o.metadata?.name as string;

/** Joins Roles with the ServiceAccount and RoleBinding of the same name; one entry per Role, sorted by name. */
export function joinRoles(
  roles: Role[],
  serviceAccounts: ServiceAccount[],
  roleBindings: RoleBinding[],
): RoleJoin[] {
  const sas = new Map(serviceAccounts.map((s) => [nameOf(s), s]));
  const rbs = new Map(roleBindings.map((b) => [nameOf(b), b]));
  return roles
    .map((r) => ({
      name: nameOf(r),
      role: r,
      serviceAccount: sas.get(nameOf(r)),
      roleBinding: rbs.get(nameOf(r)),
    }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Why the CLI may not change a role, or undefined when all three objects exist and are annotated. */
export function unmanagedReason(j: RoleJoin): string | undefined {
  const parts: [string, KubeObject | undefined][] = [
    ['role', j.role],
    ['serviceaccount', j.serviceAccount],
    ['rolebinding', j.roleBinding],
  ];
  for (const [kind, obj] of parts) {
    if (!obj) return `${kind} "${j.name}" does not exist`;
    if (!isManaged(obj)) return noManagedAnnotation(`${kind} "${j.name}"`);
  }
  return undefined;
}

export function notManagedMessage(project: string, j: RoleJoin): string | undefined {
  const reason = unmanagedReason(j);
  return reason ? notManagedRefusal(`role "${j.name}"`, project, reason) : undefined;
}

export function sameSubject(a: RbacSubject, b: RbacSubject): boolean {
  if (a.kind !== b.kind || a.name !== b.name) return false;
  if (a.kind === 'ServiceAccount') return (a.namespace ?? '') === (b.namespace ?? '');
  return (a.apiGroup ?? RBAC_GROUP) === (b.apiGroup ?? RBAC_GROUP);
}

/** Is `s` the role's own account, the implied first subject? */
export function isOwnAccount(project: string, role: string, s: RbacSubject): boolean {
  return s.kind === 'ServiceAccount' && s.name === role && (s.namespace ?? project) === project;
}

/** Grant: existing order kept, new subjects appended in the order given, duplicates skipped. */
export function addSubjects(
  existing: RbacSubject[],
  add: Subject[],
): { subjects: RbacSubject[]; changed: boolean } {
  const subjects = [...existing];
  for (const s of add) if (!subjects.some((e) => sameSubject(e, s))) subjects.push(s);
  return { subjects, changed: subjects.length !== existing.length };
}

/** Revoke: matching subjects removed; non-members ignored. */
export function removeSubjects(
  existing: RbacSubject[],
  remove: Subject[],
): { subjects: RbacSubject[]; changed: boolean } {
  const subjects = existing.filter((e) => !remove.some((s) => sameSubject(e, s)));
  return { subjects, changed: subjects.length !== existing.length };
}

/** Subjects other than the role's own account. */
export function grantedSubjects(project: string, j: RoleJoin): RbacSubject[] {
  return (j.roleBinding?.subjects ?? []).filter((s) => !isOwnAccount(project, j.name, s));
}

/** The `rbac.lanyard.dev/v1alpha1 Role` view object (not stored). */
export function roleView(project: string, j: RoleJoin): RoleView {
  const meta = j.role?.metadata ?? {};
  const view: RoleView = {
    apiVersion: 'rbac.lanyard.dev/v1alpha1',
    kind: 'Role',
    metadata: { name: j.name, namespace: project, creationTimestamp: meta.creationTimestamp },
    managed: unmanagedReason(j) === undefined,
    builtIn: isBuiltInRole(j.name),
  };
  const description = meta.annotations?.['lanyard.dev/description'];
  if (description) view.description = description;
  view.rules = j.role?.rules ?? [];
  view.subjects = grantedSubjects(project, j);
  return view;
}

/** Names of the roles (RoleBindings) in `bindings` listing the account, managed or not. */
export function rolesGranting(project: string, account: string, bindings: RoleBinding[]): RoleBinding[] {
  return bindings.filter((b) =>
    (b.subjects ?? []).some(
      (s) => s.kind === 'ServiceAccount' && s.name === account && (s.namespace ?? project) === project,
    ),
  );
}
