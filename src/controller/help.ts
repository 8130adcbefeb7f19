// `lanyard controller --help`: every flag with its argument type, what it does and its default. A unit test keeps
// this table and the flag parser (src/config/controller.ts) in step.
import { CONTROLLER_DEFAULTS } from '../config/controller.ts';
import { PROMOTION_DEFAULTS } from '../config/promotions.ts';
import { WEBHOOK_DEFAULTS } from '../config/webhook.ts';

const C = CONTROLLER_DEFAULTS;
const W = WEBHOOK_DEFAULTS;
const P = PROMOTION_DEFAULTS;

/** flag → [argument type ('' for booleans), description, default as shown]. */
export const CONTROLLER_FLAG_HELP: Record<string, [string, string, string]> = {
  kubeconfig: ['string', 'kubeconfig file; empty: the in-cluster service account', 'KUBECONFIG, else ""'],
  'kube-api': ['string', 'API server URL overriding the kubeconfig\'s', '""'],
  'aws-region': ['string', 'AWS region of EKS, STS and eks-auth calls', 'AWS_REGION, AWS_DEFAULT_REGION, else "us-east-1"'],
  'aws-endpoint-url': ['string', 'one endpoint for every AWS service (simulators, private endpoints)', 'AWS_ENDPOINT_URL, else the real AWS endpoints'],
  'cluster-name': ['string', 'EKS cluster name, for associations and eks-auth', '""'],
  'leader-elect': ['', 'run the reconcilers only while holding the Lease', 'true'],
  'lease-namespace': ['string', 'namespace of the leader-election Lease', `POD_NAMESPACE, else "${C.leaseNamespace}"`],
  'lease-name': ['string', 'name of the leader-election Lease', `"${C.leaseName}"`],
  'leader-elect-identity': ['string', 'this replica\'s holder identity', 'POD_NAME, else a generated one'],
  'leader-elect-lease-duration': ['duration', 'how long a Lease is valid without renewal', C.leaseDuration],
  'leader-elect-renew-deadline': ['duration', 'how long the leader tries to renew before giving up leadership', C.renewDeadline],
  'leader-elect-retry-period': ['duration', 'wait between tries to acquire or renew', C.retryPeriod],
  'metrics-port': ['int', '/metrics, /healthz and /readyz port; 0 disables them', String(C.metricsPort)],
  'verify-backoff-initial': ['duration', 'first retry delay of a failed identity proof', C.verifyBackoffInitial],
  'verify-backoff-max': ['duration', 'largest retry delay of a failed identity proof', C.verifyBackoffMax],
  'verify-qps': ['int', 'identity proofs per second (token bucket rate)', String(C.verifyQps)],
  'verify-burst': ['int', 'identity proofs allowed in a burst', String(C.verifyBurst)],
  'verify-deadline': ['duration', 'per Pod, from creation: then reported failed (the gate stays, retries go on)', C.verifyDeadline],
  'verify-retry-after-deadline': ['duration', 'retry period once the deadline has passed', C.verifyRetryAfterDeadline],
  'verified-ttl': ['duration', 'lifetime of a VerifiedIdentity (a proof reused for further Pods)', C.verifiedTtl],
  'verify-workers': ['int', 'identity proofs run in parallel', String(C.verifyWorkers)],
  namespace: ['string', 'namespace of the kOps pod-identity-webhook ConfigMap (as the webhook)', `"${W.namespace}"`],
  'annotation-prefix': ['string', 'ServiceAccount annotation prefix (as the webhook)', `"${W.annotationPrefix}"`],
  'token-audience': ['string', 'audience of web-identity tokens (as the webhook)', `"${W.tokenAudience}"`],
  'sts-regional-endpoint': ['', 'expect AWS_STS_REGIONAL_ENDPOINTS=regional in Pods (as the webhook)', String(W.stsRegionalEndpoint)],
  'watch-config-map': ['', 'read identities from the kOps ConfigMap (as the webhook)', String(W.watchConfigMap)],
  'container-credentials-audience': ['string', 'audience of EKS Pod Identity tokens (as the webhook)', `"${W.containerCredentialsAudience}"`],
  'log-level': ['string', 'error, warn, info, debug or trace', '"info"'],
  'tls-mode': ['string', 'files, or self-managed: the leader keeps the webhook certificate and caBundle current', `"${W.tlsMode}"`],
  'tls-secret': ['string', 'Secret of the self-managed webhook CA and certificate', `"${W.tlsSecret}"`],
  'service-name': ['string', 'webhook Service the certificate is issued for', `"${W.serviceName}"`],
  'webhook-config-name': ['string', 'MutatingWebhookConfiguration whose caBundle is kept current', '""'],
  'tls-extra-sans': ['strings', 'extra certificate names, comma-separated', '""'],
  'self-managed-cert-validity': ['duration', 'validity of the self-managed certificate', `${W.selfManagedCertValidityMs / 3600_000}h`],
  'association-workers': ['int', 'PodIdentityAssociations reconciled in parallel', '16'],
  'association-resync': ['duration', 'period of the drift re-check of every association', '10m'],
  'role-propagation-timeout': ['duration', 'how long "role does not exist" is retried before RoleNotFound', '2m'],
  'observe-ack-associations': ['string', 'read ACK PodIdentityAssociation objects: auto, true or false', '"auto"'],
  'association-probe': ['', 'prove each association with a probe Pod (never runs)', 'true'],
  'probe-image': ['string', 'image of the probe Pod', '"registry.k8s.io/pause:3.10"'],
  'denied-association-action': ['string', 'what happens to an association an IdentityPolicy denies: delete it from EKS, or preview (report only)', '"delete"'],
  'promotion-namespace': ['string', 'namespace promotion Pods run in', `"${P['promotion-namespace']}"`],
  'promotion-service-account': ['string', 'promotion Pod ServiceAccount when a Stage names none', `"${P['promotion-service-account']}"`],
  'promotion-timeout': ['duration', 'default Stage timeout', P['promotion-timeout']],
  'promotion-max-timeout': ['duration', 'largest Stage timeout', P['promotion-max-timeout']],
  'promotion-pod-retention': ['duration', 'how long finished promotion Pods are kept; 0 deletes them at once', P['promotion-pod-retention']],
  'promotion-done-image': ['string', 'image of the final done container', `"${P['promotion-done-image']}"`],
  'promotion-workers': ['int', 'promotions reconciled in parallel', P['promotion-workers']],
  'promotion-step-audience': ['string', 'audience of per-step web-identity tokens', `"${P['promotion-step-audience']}"`],
};

export function controllerHelp(): string {
  const rows = Object.entries(CONTROLLER_FLAG_HELP).map(([f, [type, text, def]]) => [`--${f}${type ? ` ${type}` : ''}`, `${text} (default ${def})`]);
  const width = Math.max(...rows.map(([f]) => f!.length));
  return [
    'Usage: lanyard controller [flags]',
    '',
    'Runs the reconcilers (identity verifier, PodIdentityAssociation controller, promotions) behind a',
    'coordination.k8s.io Lease. Flags use pflag syntax (--flag=value or --flag value) and Go durations.',
    '',
    'Flags:',
    ...rows.map(([f, d]) => `  ${f!.padEnd(width)}  ${d}`),
    '',
    'See docs/verified-start.md for the verifier and docs/associations.md for associations.',
    '',
  ].join('\n');
}
