// The MutatingWebhookConfiguration that registers Lanyard's pod identity webhook by `url` (docs/webhook.md#quick-start,
// rewritten from the chart's Service reference to a url), for the sandbox and for tests that run the webhook in-process.
import type {
  MutatingWebhook,
  MutatingWebhookConfiguration,
  RuleWithOperations,
} from 'kubernetes-types/admissionregistration/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';

/** kubernetes-types 1.30 leaves out the fields RuleWithOperations inlines from Rule (docs/adr/1050). */
export interface WebhookRule extends RuleWithOperations {
  resources: string[];
  scope: 'Namespaced' | 'Cluster' | '*';
}
export type Webhook = Omit<MutatingWebhook, 'rules'> & { rules: WebhookRule[] };
export interface WebhookConfiguration extends Omit<MutatingWebhookConfiguration, 'webhooks' | 'metadata'> {
  apiVersion: 'admissionregistration.k8s.io/v1';
  kind: 'MutatingWebhookConfiguration';
  metadata: { name: string };
  webhooks: Webhook[];
}

export interface WebhookRegistration {
  /** The configuration's name. */
  name: string;
  /** The webhook's /mutate endpoint, e.g. https://127.0.0.1:8443/mutate. */
  url: string;
  /** PEM of the CA that signed the serving certificate; without it the API server uses its own trust roots. */
  caPem?: string;
  /** The namespaces the webhook serves. */
  namespaceSelector: LabelSelector;
  /** Fields of the webhook that replace the defaults (a test's failurePolicy or timeout). */
  overrides?: Partial<Webhook>;
}

/** Pod CREATE and ephemeral-container UPDATE, reinvoked after other webhooks, skipped for opted-out Pods. */
export function podIdentityWebhookConfiguration(r: WebhookRegistration): WebhookConfiguration {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: r.name },
    webhooks: [
      {
        name: 'pod-identity.lanyard.dev',
        admissionReviewVersions: ['v1', 'v1beta1'],
        clientConfig: {
          url: r.url,
          ...(r.caPem ? { caBundle: Buffer.from(r.caPem).toString('base64') } : {}),
        },
        rules: [
          {
            operations: ['CREATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods'],
            scope: 'Namespaced',
          },
          {
            operations: ['UPDATE'],
            apiGroups: [''],
            apiVersions: ['v1'],
            resources: ['pods/ephemeralcontainers'],
            scope: 'Namespaced',
          },
        ],
        matchPolicy: 'Equivalent',
        failurePolicy: 'Fail',
        reinvocationPolicy: 'IfNeeded',
        sideEffects: 'None',
        timeoutSeconds: 10,
        namespaceSelector: r.namespaceSelector,
        objectSelector: {
          matchExpressions: [
            { key: 'eks.amazonaws.com/skip-pod-identity-webhook', operator: 'DoesNotExist' },
          ],
        },
        ...r.overrides,
      },
    ],
  };
}
