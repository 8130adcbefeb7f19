// The Pod `lanyard create identity --phase verify` has the verifier prove (docs/explain-and-iam.md,
// docs/adr/0910-explain-and-iam-from-the-cli.md): what it is, and what its spec and annotations say about the proof.
// Pure: cli.ts creates, polls and deletes it.
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { IdentityMode } from '../identity/sources.ts';
import {
  GATE_NAME,
  OPT_OUT_ANNOTATION,
  VERIFICATION_ANNOTATION,
  verifiedIdentityName,
} from '../verification/verified-identity.ts';

/** Label and never-removed gate of the Pod `create identity` uses to have the verifier prove the identity. */
export const CHECK_LABEL = 'lanyard.dev/identity-check';
export const CHECK_GATE = 'lanyard.dev/identity-check';

/** A Pod that never runs (its own gate stays): only the webhook and the verifier look at it. */
export function checkPod(serviceAccount: string): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'lanyard-identity-check-', labels: { [CHECK_LABEL]: 'true' } },
    spec: {
      serviceAccountName: serviceAccount,
      automountServiceAccountToken: false,
      restartPolicy: 'Never',
      schedulingGates: [{ name: CHECK_GATE }],
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'check',
          image: 'registry.k8s.io/pause:3.10',
          resources: { requests: { cpu: '1m', memory: '4Mi' }, limits: { cpu: '1m', memory: '4Mi' } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

/**
 * Where the check Pod stands (docs/verified-start.md): `verified` (the verifier released the identity gate after an
 * exchange), `not injected` (the webhook gave it no AWS identity), `admitted ungated` (the identity was in the
 * verified set already, so the webhook did not gate it), else `waiting`.
 */
export type CheckState = 'verified' | 'not injected' | 'admitted ungated' | 'waiting';

export function checkState(p: Pod): CheckState {
  const env = JSON.stringify(p.spec?.containers?.[0]?.env ?? []);
  const injected = env.includes('AWS_ROLE_ARN') || env.includes('AWS_CONTAINER_CREDENTIALS_FULL_URI');
  const gated = (p.spec?.schedulingGates ?? []).some((g) => g.name === GATE_NAME);
  const annotation = p.metadata?.annotations?.[VERIFICATION_ANNOTATION];
  if (annotation === 'verified' && !gated) return 'verified';
  if (!injected) return 'not injected';
  if (!gated && annotation === undefined) return 'admitted ungated';
  return 'waiting';
}

/** The check Pod opted out of verification (`lanyard.dev/verify: "false"`), so an ungated admission proves nothing. */
export function optedOut(p: Pod): boolean {
  return p.metadata?.annotations?.[OPT_OUT_ANNOTATION] === 'false';
}

/**
 * The name of the VerifiedIdentity that let the check Pod in ungated: web identity with the audience of the token
 * the webhook projected into it, container credentials with the Pod Identity audience.
 */
export function checkPodVerifiedIdentity(
  p: Pod,
  d: { mode: IdentityMode; serviceAccount: string; roleARN: string; containerCredentialsAudience: string },
): string {
  return verifiedIdentityName({
    mode: d.mode,
    serviceAccount: d.serviceAccount,
    roleARN: d.roleARN,
    audience:
      d.mode === 'WebIdentity'
        ? ((p.spec?.volumes ?? [])
            .flatMap((v) => v.projected?.sources ?? [])
            .find((s) => s.serviceAccountToken)?.serviceAccountToken?.audience ?? '')
        : d.containerCredentialsAudience,
  });
}
