// The ValidatingAdmissionPolicy that checks ACK's `spec.namespace` on Lanyard PodIdentityAssociations
// (docs/migrate-from-ack.md, docs/adr/0203): a CRD's own CEL rules cannot read `metadata.namespace`, so the API server
// checks it through this policy, with the same sentence the controller writes (decide.ts namespaceMismatch). The chart
// template associations-validatingadmissionpolicy.yaml renders the same object; a chart test compares the two.
import type {
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
} from 'kubernetes-types/admissionregistration/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import { denyingPolicy, type Applied } from '../kube/admission-policy-binding.ts';
import { GROUP, PLURAL } from './model.ts';

export const ASSOCIATION_POLICY_NAME = 'lanyard-pod-identity-associations';

/** CEL for namespaceMismatch(object.spec.namespace, request.namespace): keep the two sentences in step. */
const MESSAGE_EXPRESSION =
  `'spec.namespace "' + object.spec.namespace + '" must equal the object\\'s namespace "' + request.namespace + ` +
  `'": a Lanyard PodIdentityAssociation binds a ServiceAccount of its own namespace; create it in namespace "' + ` +
  `object.spec.namespace + '" or remove spec.namespace (docs/migrate-from-ack.md)'`;

export function associationAdmissionPolicy(o: { name?: string; namespaceSelector?: LabelSelector } = {}): {
  policy: Applied<ValidatingAdmissionPolicy>;
  binding: Applied<ValidatingAdmissionPolicyBinding>;
} {
  return denyingPolicy({
    name: o.name ?? ASSOCIATION_POLICY_NAME,
    resourceRules: [
      { apiGroups: [GROUP], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: [PLURAL] },
    ],
    validations: [
      {
        expression:
          '!has(object.spec) || !has(object.spec.namespace) || object.spec.namespace == request.namespace',
        reason: 'Invalid',
        messageExpression: MESSAGE_EXPRESSION,
      },
    ],
    namespaceSelector: o.namespaceSelector,
  });
}
