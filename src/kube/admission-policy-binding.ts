// The ValidatingAdmissionPolicyBinding Lanyard installs beside each of its ValidatingAdmissionPolicies: deny on
// failure, optionally only in the namespaces a selector picks (docs/security.md).
import type { Json } from './client.ts';

export function denyingBinding(policyName: string, namespaceSelector?: Json): Json {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: policyName },
    spec: {
      policyName,
      validationActions: ['Deny'],
      ...(namespaceSelector ? { matchResources: { namespaceSelector } } : {}),
    },
  };
}
