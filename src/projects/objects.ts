// The objects the CLI writes, exactly as docs/projects-and-tokens.md and docs/security.md describe them. Nothing from user input reaches metadata
// except names and the description.
import type { Namespace, Secret, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { Role, RoleBinding } from 'kubernetes-types/rbac/v1.js';
import type { ObjectMeta } from '../core/kube-object.ts';
import type { PolicyRule } from './rules.ts';
import {
  DESCRIPTION_ANNOTATION,
  MANAGED_ANNOTATION,
  PROJECT_LABEL,
  RBAC_GROUP,
  SA_NAME_ANNOTATION,
  SA_UID_ANNOTATION,
  SERVICE_ACCOUNT_LABEL,
  TOKEN_LABEL,
  TOKEN_SECRET_TYPE,
} from './labels.ts';

/** The metadata of an object built here: named, in its project, with the annotations Lanyard sets. */
export type BuiltMeta = ObjectMeta & { name: string; namespace: string; annotations: Record<string, string> };

function annotations(description?: string): Record<string, string> {
  const a: Record<string, string> = { [MANAGED_ANNOTATION]: 'true' };
  if (description) a[DESCRIPTION_ANNOTATION] = description;
  return a;
}

export function projectNamespace(
  name: string,
): Namespace & { metadata: ObjectMeta & { name: string; labels: Record<string, string> } } {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { [PROJECT_LABEL]: 'true' } } };
}

export interface RoleTrio {
  role: Role & { metadata: BuiltMeta; rules: PolicyRule[] };
  serviceAccount: ServiceAccount & { metadata: BuiltMeta };
  roleBinding: RoleBinding & { metadata: BuiltMeta; subjects: Subject[] };
}

/** A role's three objects; the binding's first subject is the role's own account (docs/projects-and-tokens.md#3-create-a-role-and-grant-it). */
export function roleTrio(o: {
  project: string;
  name: string;
  rules: PolicyRule[];
  description?: string;
  extraSubjects?: Subject[];
}): RoleTrio {
  const meta = { name: o.name, namespace: o.project, annotations: annotations(o.description) };
  return {
    role: { apiVersion: `${RBAC_GROUP}/v1`, kind: 'Role', metadata: structuredClone(meta), rules: o.rules },
    serviceAccount: {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: structuredClone(meta),
      automountServiceAccountToken: false,
    },
    roleBinding: {
      apiVersion: `${RBAC_GROUP}/v1`,
      kind: 'RoleBinding',
      metadata: { name: o.name, namespace: o.project, annotations: { [MANAGED_ANNOTATION]: 'true' } },
      roleRef: { apiGroup: RBAC_GROUP, kind: 'Role', name: o.name },
      subjects: [{ kind: 'ServiceAccount', name: o.name, namespace: o.project }, ...(o.extraSubjects ?? [])],
    },
  };
}

export function projectServiceAccount(o: {
  project: string;
  name: string;
  description?: string;
}): ServiceAccount & { metadata: BuiltMeta & { labels: Record<string, string> } } {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: {
      name: o.name,
      namespace: o.project,
      labels: { [SERVICE_ACCOUNT_LABEL]: 'true' },
      annotations: annotations(o.description),
    },
    automountServiceAccountToken: false,
  };
}

/** The token Secret (docs/projects-and-tokens.md#4-mint-a-token): bound to the account by name and UID, owned by it for garbage collection. */
export function tokenSecret(o: {
  project: string;
  name: string;
  account: { name: string; uid: string };
}): Secret & { metadata: BuiltMeta & { labels: Record<string, string> } } {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: TOKEN_SECRET_TYPE,
    metadata: {
      name: o.name,
      namespace: o.project,
      labels: { [TOKEN_LABEL]: 'true' },
      annotations: {
        [SA_NAME_ANNOTATION]: o.account.name,
        [SA_UID_ANNOTATION]: o.account.uid,
        [MANAGED_ANNOTATION]: 'true',
      },
      ownerReferences: [
        { apiVersion: 'v1', kind: 'ServiceAccount', name: o.account.name, uid: o.account.uid },
      ],
    },
  };
}

export interface Subject {
  kind: 'ServiceAccount' | 'User' | 'Group';
  name: string;
  namespace?: string;
  apiGroup?: string;
}

export function serviceAccountSubject(project: string, name: string): Subject {
  return { kind: 'ServiceAccount', name, namespace: project };
}
export function userSubject(name: string): Subject {
  return { kind: 'User', apiGroup: RBAC_GROUP, name };
}
export function groupSubject(name: string): Subject {
  return { kind: 'Group', apiGroup: RBAC_GROUP, name };
}
