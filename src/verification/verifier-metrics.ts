// The verifier's metrics (docs/verified-start.md, "Metrics"), and the gauges recounted from its views.
import type { Registry } from 'prom-client';
import type { VerifiedIdentity } from './types.ts';
import type { IdentityMode } from '../identity/sources.ts';
import { counter, gauge, histogram } from '../runtime/metrics.ts';
import type { GatedPod } from './pod.ts';

export const MODE_LABEL: Record<IdentityMode, string> = {
  WebIdentity: 'web_identity',
  ContainerCredentials: 'container_credentials',
};

/** The mode label of a Pod: its first declared identity's, or `none`. */
export const podModeLabel = (p: GatedPod) => (p.declared[0]?.mode ? MODE_LABEL[p.declared[0].mode] : 'none');

export type VerifierMetrics = ReturnType<typeof verifierMetrics>;

export function verifierMetrics(registry: Registry) {
  return {
    gatedSeconds: histogram(
      registry,
      'lanyard_verification_gated_seconds',
      'Time from Pod creation to gate release or deletion.',
      [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
      ['mode', 'result'],
    ),
    outcomes: counter(
      registry,
      'lanyard_verification_outcomes_total',
      'Verification attempts by mode and result.',
      ['mode', 'result'],
    ),
    outageReleases: counter(
      registry,
      'lanyard_verification_outage_releases_total',
      'Pods released by --verify-outage-policy on an earlier proof while AWS was unavailable (docs/adr/0309).',
      ['mode'],
    ),
    exchangeSeconds: histogram(
      registry,
      'lanyard_verification_exchange_seconds',
      'Latency of STS and eks-auth exchanges.',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      ['mode'],
    ),
    gatedPods: gauge(registry, 'lanyard_verification_gated_pods', 'Pods holding the identity gate now.', [
      'mode',
      'state',
    ]),
    verifiedIdentities: gauge(
      registry,
      'lanyard_verified_identities',
      'Unexpired VerifiedIdentity objects.',
      ['mode'],
    ),
  };
}

/** Recounts the gated Pods and the unexpired VerifiedIdentities. */
export function refreshGauges(
  m: VerifierMetrics,
  pods: Iterable<GatedPod>,
  verified: Iterable<VerifiedIdentity>,
  now: number,
): void {
  m.gatedPods.reset();
  for (const mo of ['web_identity', 'container_credentials', 'none'])
    for (const s of ['pending', 'failed']) m.gatedPods.set({ mode: mo, state: s }, 0);
  for (const p of pods) {
    if (p.gateIndex < 0 || p.deleting) continue;
    m.gatedPods.inc({ mode: podModeLabel(p), state: p.verification === 'failed' ? 'failed' : 'pending' });
  }
  m.verifiedIdentities.reset();
  for (const mo of ['WebIdentity', 'ContainerCredentials'] as const)
    m.verifiedIdentities.set({ mode: MODE_LABEL[mo] }, 0);
  for (const vi of verified) {
    const mo = vi.spec?.mode as IdentityMode;
    if (MODE_LABEL[mo] && Date.parse(vi.spec?.expiresAt as string) > now)
      m.verifiedIdentities.inc({ mode: MODE_LABEL[mo] });
  }
}
