// The ValidatingAdmissionPolicy that checks ACK's `spec.namespace` on Lanyard PodIdentityAssociations
// (docs/migrate-from-ack.md, docs/adr/0203): a CRD's own CEL rules cannot read `metadata.namespace`, so the API server
// checks it through this policy, with the same sentence the controller writes (decide.ts namespaceMismatch). The chart
// template associations-validatingadmissionpolicy.yaml renders the same object; a chart test compares the two.
import type {
  NamedRuleWithOperations,
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
} from 'kubernetes-types/admissionregistration/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import type { Manifest } from '../kube/apply.ts';
import { denyingBinding } from '../kube/admission-policy-binding.ts';
import { GROUP, PLURAL } from './model.ts';

export const ASSOCIATION_POLICY_NAME = 'lanyard-pod-identity-associations';

/** CEL for namespaceMismatch(object.spec.namespace, request.namespace): keep the two sentences in step. */
const MESSAGE_EXPRESSION =
  `'spec.namespace "' + object.spec.namespace + '" must equal the object\\'s namespace "' + request.namespace + ` +
  `'": a Lanyard PodIdentityAssociation binds a ServiceAccount of its own namespace; create it in namespace "' + ` +
  `object.spec.namespace + '" or remove spec.namespace (docs/migrate-from-ack.md)'`;

/** kubernetes-types 1.30 leaves out the fields NamedRuleWithOperations inlines from RuleWithOperations. */
type ResourceRule = NamedRuleWithOperations & { resources?: string[]; scope?: string };

/** An object as it is applied: apiVersion, kind and name always set. */
type Applied<T> = T & Manifest;

export function associationAdmissionPolicy(o: { name?: string; namespaceSelector?: LabelSelector } = {}): {
  policy: Applied<ValidatingAdmissionPolicy>;
  binding: Applied<ValidatingAdmissionPolicyBinding>;
} {
  const name = o.name ?? ASSOCIATION_POLICY_NAME;
  const rule: ResourceRule = {
    apiGroups: [GROUP],
    apiVersions: ['*'],
    operations: ['CREATE', 'UPDATE'],
    resources: [PLURAL],
  };
  const policy: Applied<ValidatingAdmissionPolicy> = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [rule],
      },
      validations: [
        {
          expression:
            '!has(object.spec) || !has(object.spec.namespace) || object.spec.namespace == request.namespace',
          reason: 'Invalid',
          messageExpression: MESSAGE_EXPRESSION,
        },
      ],
    },
  };
  // denyingBinding sets apiVersion, kind and name.
  const binding = denyingBinding(name, o.namespaceSelector) as Applied<ValidatingAdmissionPolicyBinding>;
  return { policy, binding };
}
