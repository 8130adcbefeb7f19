// The ValidatingAdmissionPolicy that makes the identity gate an authorization boundary (docs/security.md §2,
// docs/adr/0308): evaluated by the API server itself, so it holds when the mutating webhook is skipped (the skip
// label) or down. Only checks that need no lookup live here; IdentityPolicy is the webhook's and the verifier's.
// The chart template validatingadmissionpolicy.yaml renders the same object; a chart test compares the two.
import type {
  ValidatingAdmissionPolicy,
  ValidatingAdmissionPolicyBinding,
} from 'kubernetes-types/admissionregistration/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import { denyingPolicy, type Applied } from '../kube/admission-policy-binding.ts';
import { SKIP_LABEL } from '../identity/pod.ts';
import {
  CONTAINER_LISTS,
  CREDENTIAL_VARS,
  DEFAULT_POD_IDENTITY_AUDIENCE,
  DEFAULT_STS_AUDIENCE,
} from '../identity/pod-credentials.ts';
import { GATE_NAME } from './verified-identity.ts';

export const ADMISSION_POLICY_NAME = 'lanyard-identity';

export interface AdmissionPolicyOptions {
  /** Object name of the policy and its binding. */
  name?: string;
  /** Usernames allowed to remove the gate: the controller's ServiceAccount (`system:serviceaccount:<ns>:<name>`). */
  releasers: readonly string[];
  /** Token audiences that grant AWS credentials. */
  awsAudiences?: readonly string[];
  /** Namespaces the skip-label rule leaves alone (those the webhook does not serve either). */
  exemptNamespaces?: readonly string[];
  /** Restricts the binding (tests scope it to their own namespaces). */
  namespaceSelector?: LabelSelector;
}

const celString = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const celList = (xs: readonly string[]) => `[${xs.map(celString).join(', ')}]`;

/** CEL: some container of `o` (object or oldObject) names an AWS credential variable, or the Pod has an AWS token. */
function awsAccess(o: 'object' | 'oldObject'): string {
  // One term per list: Container and EphemeralContainer are distinct types, which CEL will not concatenate.
  const env = CONTAINER_LISTS.map(
    (l) =>
      `(has(${o}.spec.${l}) && ${o}.spec.${l}.exists(c, has(c.env) && c.env.exists(e, e.name in variables.credentialVars)))`,
  );
  const token =
    `(has(${o}.spec.volumes) && ${o}.spec.volumes.exists(v, has(v.projected) && has(v.projected.sources) && ` +
    'v.projected.sources.exists(s, has(s.serviceAccountToken) && has(s.serviceAccountToken.audience) && ' +
    's.serviceAccountToken.audience in variables.awsAudiences)))';
  return [...env, token].join(' || ');
}

const hasGate = (o: 'object' | 'oldObject') =>
  `(has(${o}.spec.schedulingGates) && ${o}.spec.schedulingGates.exists(g, g.name == ${celString(GATE_NAME)}))`;
const skipLabelled = (o: 'object' | 'oldObject') =>
  `has(${o}.metadata.labels) && ${celString(SKIP_LABEL)} in ${o}.metadata.labels`;
const ephemeralCount = (o: 'object' | 'oldObject') =>
  `(has(${o}.spec.ephemeralContainers) ? size(${o}.spec.ephemeralContainers) : 0)`;

export function identityAdmissionPolicy(o: AdmissionPolicyOptions): {
  policy: Applied<ValidatingAdmissionPolicy>;
  binding: Applied<ValidatingAdmissionPolicyBinding>;
} {
  const audiences = o.awsAudiences ?? [DEFAULT_STS_AUDIENCE, DEFAULT_POD_IDENTITY_AUDIENCE];
  const exempt = o.exemptNamespaces ?? ['kube-system'];
  return denyingPolicy({
    name: o.name ?? ADMISSION_POLICY_NAME,
    resourceRules: [
      {
        apiGroups: [''],
        apiVersions: ['v1'],
        operations: ['CREATE', 'UPDATE'],
        resources: ['pods', 'pods/ephemeralcontainers'],
      },
    ],
    variables: [
      // The three settings first: the chart templates exactly these.
      { name: 'releasers', expression: celList(o.releasers) },
      { name: 'awsAudiences', expression: celList(audiences) },
      { name: 'exemptNamespaces', expression: celList(exempt) },
      { name: 'credentialVars', expression: celList(CREDENTIAL_VARS) },
      {
        name: 'gateRemoved',
        expression: `request.operation == 'UPDATE' && ${hasGate('oldObject')} && !${hasGate('object')}`,
      },
      { name: 'skipWithAws', expression: `${skipLabelled('object')} && (${awsAccess('object')})` },
      // An existing Pod that already broke the rule is not locked: only a change that adds to it is refused.
      {
        name: 'skipWithAwsBefore',
        expression: `request.operation == 'UPDATE' && ${skipLabelled('oldObject')} && (${awsAccess('oldObject')})`,
      },
      {
        name: 'addsContainers',
        expression: `request.operation == 'UPDATE' && ${ephemeralCount('object')} > ${ephemeralCount('oldObject')}`,
      },
    ],
    validations: [
      {
        expression: '!variables.gateRemoved || request.userInfo.username in variables.releasers',
        reason: 'Forbidden',
        message: `only Lanyard's controller may remove the ${GATE_NAME} scheduling gate: it does so once the Pod's identities are proven (docs/security.md)`,
      },
      {
        expression:
          'request.namespace in variables.exemptNamespaces || !variables.skipWithAws || (variables.skipWithAwsBefore && !variables.addsContainers)',
        reason: 'Forbidden',
        message:
          `a Pod labelled ${SKIP_LABEL} may not carry AWS credentials (an AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE or ` +
          "AWS_CONTAINER_* variable, or a ServiceAccount token with an AWS audience): the label keeps Lanyard's webhook from checking them (docs/security.md)",
      },
    ],
    namespaceSelector: o.namespaceSelector,
  });
}
