// The webhook's view of IdentityPolicy and the verified set (docs/security.md, docs/verified-start.md): stores of
// IdentityPolicies, Namespaces (labels only) and VerifiedIdentities, and decisions made from those caches alone, so
// the admission path does no I/O. Under `lanyard run` (`deps.cache`) the stores are views of the process's shared
// informer cache, which the controller watches too (docs/adr/0930-webhook-on-the-shared-cache-under-run.md).
import type { Json } from '../kube/client.ts';
import { openStore } from '../kube/store.ts';
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
  const invalidate = () => {
    policySet = undefined;
  };
  const onError = (what: string) => (e: unknown) =>
    deps.log.warn({ err: e }, `watch of ${what} failed; retrying`);

  const policies = openStore<Json>(deps.kube, deps.cache, {
    path: `${VI_API}/identitypolicies`,
    onAdd: invalidate,
    onUpdate: invalidate,
    onDelete: invalidate,
    onError: onError('identitypolicies'),
  });
  const namespaces = openStore<{ name: string; labels: Record<string, string> }>(deps.kube, deps.cache, {
    path: '/api/v1/namespaces',
    metadataOnly: true,
    transform: namespaceLabels,
    onError: onError('namespaces'),
  });
  // Only the verifying fields are kept: 10,000 entries stay small.
  const verified = openStore<Json>(deps.kube, deps.cache, {
    path: `${VI_API}/verifiedidentities`,
    transform: (o: Json) => ({
      metadata: { name: o.metadata?.name, namespace: o.metadata?.namespace },
      spec: o.spec,
    }),
    onError: onError('verifiedidentities'),
  });

  const skipped = counter(
    deps.metrics,
    'lanyard_webhook_gate_skipped_total',
    'Pods admitted without the identity gate although it is on, by reason.',
    ['reason'],
  );

  const currentPolicies = (): PolicySet => (policySet ??= compiler.compileAll(policies.values()));

  return {
    synced: () => policies.synced && namespaces.synced && verified.synced,
    decide(input) {
      const d = decidePod({
        ...input,
        credentials: credentialOptions(input),
        policies: currentPolicies(),
        namespaceLabels: namespaces.get(input.namespace)?.labels,
        verified: (name) => verified.get(`${input.namespace}/${name}`),
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
