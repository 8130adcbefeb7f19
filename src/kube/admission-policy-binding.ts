// The ValidatingAdmissionPolicies Lanyard installs (docs/security.md, docs/migrate-from-ack.md): each fails closed on
// the requests its resource rules match, beside a binding of the same name that denies, optionally only in the
// namespaces a selector picks. The checks (variables, validations) are the capability's own.
import type {
  NamedRuleWithOperations,
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
  Validation,
  Variable,
} from 'kubernetes-types/admissionregistration/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import type { Manifest } from './apply.ts';

/** kubernetes-types 1.30 leaves out the fields NamedRuleWithOperations inlines from RuleWithOperations. */
export type ResourceRule = NamedRuleWithOperations & { resources?: string[]; scope?: string };

/** An object as it is applied: apiVersion, kind and name always set. */
export type Applied<T> = T & Manifest;

export function denyingBinding(
  policyName: string,
  namespaceSelector?: LabelSelector,
): Applied<ValidatingAdmissionPolicyBinding> {
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

/** A policy named `name` (failurePolicy Fail) for the requests `resourceRules` match, and its denying binding. */
export function denyingPolicy(o: {
  name: string;
  resourceRules: ResourceRule[];
  variables?: Variable[];
  validations: Validation[];
  namespaceSelector?: LabelSelector;
}): { policy: Applied<ValidatingAdmissionPolicy>; binding: Applied<ValidatingAdmissionPolicyBinding> } {
  const policy: Applied<ValidatingAdmissionPolicy> = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: o.name },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: { resourceRules: o.resourceRules },
      ...(o.variables ? { variables: o.variables } : {}),
      validations: o.validations,
    },
  };
  return { policy, binding: denyingBinding(o.name, o.namespaceSelector) };
}
