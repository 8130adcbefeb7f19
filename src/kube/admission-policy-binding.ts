// The ValidatingAdmissionPolicyBinding Lanyard installs beside each of its ValidatingAdmissionPolicies: deny on
// failure, optionally only in the namespaces a selector picks (docs/security.md).
import type { ValidatingAdmissionPolicyBinding } from 'kubernetes-types/admissionregistration/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';

export function denyingBinding(
  policyName: string,
  namespaceSelector?: LabelSelector,
): ValidatingAdmissionPolicyBinding {
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
