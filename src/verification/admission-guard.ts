// The webhook's view of IdentityPolicy and the verified set (docs/security.md, docs/verified-start.md): stores of
// IdentityPolicies, Namespaces (labels only) and VerifiedIdentities, and decisions made from those caches alone, so
// the admission path does no I/O. The stores are views of the process's informer cache (`deps.cache`: `lanyard webhook`
// and `lanyard run` each make one; under `lanyard run` the controller's views share the same watches), or of one of the
// guard's own when started alone (docs/adr/1080-webhook-on-the-informer-cache.md).
import type { KubeObject } from '../core/kube-object.ts';
import { sharedOrOwnCache } from '../kube/cache.ts';
import type { AdmissionGuard } from '../identity/sources.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import { counter } from '../runtime/metrics.ts';
import { decidePod } from './gate.ts';
import { credentialOptions } from '../identity/pod-credentials.ts';
import { PolicyCompiler, type PolicySet } from './policy.ts';
import { VI_API } from './verified-identity.ts';
import type { IdentityPolicy, VerifiedIdentity } from './types.ts';

export interface AdmissionGuardOptions {
  gateEnabled: boolean;
  allowOptOut: boolean;
}

export interface NamespaceLabels {
  name: string;
  labels: Record<string, string>;
}

/** What the guard and the verifier keep of a Namespace (watched as metadata only: PartialObjectMetadata). */
export function namespaceLabels(obj: KubeObject): NamespaceLabels {
  return { name: obj?.metadata?.name ?? '', labels: { ...(obj?.metadata?.labels ?? {}) } };
}

export function createAdmissionGuard(deps: Deps, opts: AdmissionGuardOptions): AdmissionGuard & Running {
  const compiler = new PolicyCompiler();
  let policySet: PolicySet | undefined;
  const invalidate = () => {
    policySet = undefined;
  };
  const { cache, release } = sharedOrOwnCache(deps, (sel, e) =>
    deps.log.warn({ err: e, path: sel.path }, 'watch failed; retrying'),
  );

  const policies = cache.view<IdentityPolicy, IdentityPolicy>({
    path: `${VI_API}/identitypolicies`,
    onAdd: invalidate,
    onUpdate: invalidate,
    onDelete: invalidate,
  });
  const namespaces = cache.view<NamespaceLabels, KubeObject>({
    path: '/api/v1/namespaces',
    metadataOnly: true,
    transform: namespaceLabels,
  });
  // Only the verifying fields are kept: 10,000 entries stay small.
  const verified = cache.view<VerifiedIdentity, VerifiedIdentity>({
    path: `${VI_API}/verifiedidentities`,
    transform: (o) => ({
      metadata: { name: o.metadata?.name, namespace: o.metadata?.namespace },
      spec: o.spec,
    }),
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
      policies.close();
      namespaces.close();
      verified.close();
      release();
    },
  };
}
