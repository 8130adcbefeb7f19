// The webhook's view of IdentityPolicy and the verified set (docs/security.md, docs/verified-start.md): informers over
// IdentityPolicies, Namespaces (labels only) and VerifiedIdentities, and decisions made from those caches alone, so
// the admission path does no I/O.
import type { Json } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import type { AdmissionGuard } from '../identity/sources.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import { counter } from '../runtime/metrics.ts';
import { decidePod } from './gate.ts';
import { credentialOptions } from '../identity/pod-credentials.ts';
import { PolicyCompiler, type PolicySet } from './policy.ts';
import { VI_API } from './verified-identity.ts';

export interface AdmissionGuardOptions {
  gateEnabled: boolean;
  allowOptOut: boolean;
}

export function namespaceLabels(obj: Json): { name: string; labels: Record<string, string> } {
  return { name: obj?.metadata?.name, labels: { ...(obj?.metadata?.labels ?? {}) } };
}

export function createAdmissionGuard(deps: Deps, opts: AdmissionGuardOptions): AdmissionGuard & Running {
  const compiler = new PolicyCompiler();
  let policySet: PolicySet | undefined;
  const invalidate = () => { policySet = undefined; };
  const onError = (what: string) => (e: unknown) => deps.log.warn({ err: e }, `watch of ${what} failed; retrying`);

  const policies = new Informer<Json>({
    client: deps.kube,
    path: `${VI_API}/identitypolicies`,
    onAdd: invalidate,
    onUpdate: invalidate,
    onDelete: invalidate,
    onError: onError('identitypolicies'),
  }).start();
  const namespaces = new Informer<{ name: string; labels: Record<string, string> }>({
    client: deps.kube,
    path: '/api/v1/namespaces',
    metadataOnly: true,
    transform: namespaceLabels,
    onError: onError('namespaces'),
  }).start();
  // Only the verifying fields are kept: 10,000 entries stay small.
  const verified = new Informer<Json>({
    client: deps.kube,
    path: `${VI_API}/verifiedidentities`,
    transform: (o: Json) => ({ metadata: { name: o.metadata?.name, namespace: o.metadata?.namespace }, spec: o.spec }),
    onError: onError('verifiedidentities'),
  }).start();

  const skipped = counter(deps.metrics, 'lanyard_webhook_gate_skipped_total',
    'Pods admitted without the identity gate although it is on, by reason.', ['reason']);

  const currentPolicies = (): PolicySet => (policySet ??= compiler.compileAll(policies.store.values()));

  return {
    synced: () => policies.synced && namespaces.synced && verified.synced,
    decide(input) {
      const d = decidePod({
        ...input,
        credentials: credentialOptions(input),
        policies: currentPolicies(),
        namespaceLabels: namespaces.store.get(input.namespace)?.labels,
        verified: (name) => verified.store.get(`${input.namespace}/${name}`),
        gateEnabled: opts.gateEnabled,
        allowOptOut: opts.allowOptOut,
        nowMs: deps.clock.now(),
      });
      if (d.kind === 'allow' && d.skipReason) skipped.inc({ reason: d.skipReason });
      return d;
    },
    async stop() {
      policies.stop();
      namespaces.stop();
      verified.stop();
    },
  };
}
