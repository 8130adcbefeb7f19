// Role ARNs as an identity source gives them (docs/verified-start.md, "Role ARNs"): checked against IAM's grammar and
// limits before anything else uses them, and a refusal names where the value came from. Pure.
import { checkRoleArn } from '../core/arn.ts';
import { quoteBounded } from '../core/text.ts';
import type { ResolvedIdentity } from './sources.ts';

function origin(id: ResolvedIdentity, field: 'roleARN' | 'targetRoleARN', annotationPrefix: string): string {
  const pair = `"${id.namespace}/${id.serviceAccount}"`;
  switch (id.source) {
    case 'service_account':
      return `ServiceAccount ${pair} annotation ${annotationPrefix}/role-arn`;
    case 'configmap':
    case 'configmap_wildcard':
      return `kOps ConfigMap entry ${quoteBounded(id.fingerprint.source === id.source ? id.fingerprint.key : '')} RoleARN`;
    case 'association':
      return `PodIdentityAssociation of ServiceAccount ${pair} spec.${field}`;
    case 'identities_file':
      return `identities file entry for ServiceAccount ${pair}`;
  }
}

/** The refusal for an identity whose role or target role is not an IAM role ARN, or undefined when both are fine. */
export function identityRoleArnProblem(id: ResolvedIdentity, annotationPrefix: string): string | undefined {
  for (const field of ['roleARN', 'targetRoleARN'] as const) {
    const value = id[field];
    if (value === undefined || value === '') continue;
    const c = checkRoleArn(value);
    if (!c.ok) return `lanyard: ${origin(id, field, annotationPrefix)} ${quoteBounded(value)}: ${c.rule}`;
  }
  return undefined;
}
