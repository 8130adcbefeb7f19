// The built-in roles of every project (docs/projects-and-tokens.md#1-create-a-project). A kind added by a later spec is added here and in the spec.
import type { PolicyRule } from './rules.ts';

export const ADMIN_ROLE = 'lanyard-admin';
export const VIEWER_ROLE = 'lanyard-viewer';
export const PROMOTER_ROLE = 'lanyard-promoter';

const ALL = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];
const READ = ['get', 'list', 'watch'];
const RBAC = 'rbac.authorization.k8s.io';

const VIEWER_RULES: PolicyRule[] = [
  {
    apiGroups: ['lanyard.dev'],
    resources: ['stages', 'promotions', 'promotionsteps', 'podidentityassociations', 'verifiedidentities'],
    verbs: READ,
  },
  { apiGroups: [''], resources: ['serviceaccounts', 'events'], verbs: READ },
  { apiGroups: [RBAC], resources: ['roles', 'rolebindings'], verbs: READ },
];

export interface BuiltInRole {
  name: string;
  description: string;
  rules: PolicyRule[];
}

export const BUILTIN_ROLES: readonly BuiltInRole[] = [
  {
    name: ADMIN_ROLE,
    description: 'Everything in the project',
    rules: [
      {
        apiGroups: ['lanyard.dev'],
        resources: ['stages', 'promotions', 'promotionsteps', 'podidentityassociations'],
        verbs: ALL,
      },
      // Controller-written: writing them would forge verification.
      { apiGroups: ['lanyard.dev'], resources: ['verifiedidentities'], verbs: READ },
      { apiGroups: [''], resources: ['serviceaccounts', 'secrets'], verbs: ALL.slice(0, 7) },
      { apiGroups: [RBAC], resources: ['roles', 'rolebindings'], verbs: ALL.slice(0, 7) },
      { apiGroups: [''], resources: ['events'], verbs: READ },
    ],
  },
  { name: VIEWER_ROLE, description: 'Read everything in the project except Secrets', rules: VIEWER_RULES },
  {
    name: PROMOTER_ROLE,
    description: 'Read everything except Secrets, and create promotions',
    rules: [...VIEWER_RULES, { apiGroups: ['lanyard.dev'], resources: ['promotions'], verbs: ['create'] }],
  },
];

export function isBuiltInRole(name: string): boolean {
  return BUILTIN_ROLES.some((r) => r.name === name);
}
