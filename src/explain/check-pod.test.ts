// The check Pod of `lanyard create identity --phase verify` (docs/explain-and-iam.md): the Pod built, and how its
// spec and annotations are read as verified, not injected, admitted ungated or still waiting.
import { describe, expect, it } from 'vitest';
import type { Pod } from 'kubernetes-types/core/v1.js';
import {
  CHECK_GATE,
  CHECK_LABEL,
  checkPod,
  checkPodVerifiedIdentity,
  checkState,
  optedOut,
} from './check-pod.ts';
import { verifiedIdentityName } from '../verification/verified-identity.ts';

const ROLE = 'arn:aws:iam::111122223333:role/uploader';

/** The check Pod as the webhook may have admitted it: env injected or not, gates, annotations, a projected token. */
function admitted(o: {
  env?: string[];
  gates?: string[];
  annotations?: Record<string, string>;
  audience?: string;
}): Pod {
  const pod = checkPod('app');
  return {
    ...pod,
    metadata: { ...pod.metadata, name: 'lanyard-identity-check-x', annotations: o.annotations ?? {} },
    spec: {
      ...pod.spec!,
      schedulingGates: (o.gates ?? [CHECK_GATE]).map((name) => ({ name })),
      containers: [{ ...pod.spec!.containers[0]!, env: (o.env ?? []).map((name) => ({ name, value: 'v' })) }],
      volumes: o.audience
        ? [
            {
              name: 'aws-iam-token',
              projected: { sources: [{ serviceAccountToken: { audience: o.audience, path: 'token' } }] },
            },
          ]
        : [],
    },
  };
}

describe('checkPod', () => {
  it('never runs: its own gate, no token automount, a pause container with the least rights', () => {
    const p = checkPod('uploader');
    expect(p.metadata).toEqual({
      generateName: 'lanyard-identity-check-',
      labels: { [CHECK_LABEL]: 'true' },
    });
    expect(p.spec?.serviceAccountName).toBe('uploader');
    expect(p.spec?.schedulingGates).toEqual([{ name: CHECK_GATE }]);
    expect(p.spec?.automountServiceAccountToken).toBe(false);
    expect(p.spec?.restartPolicy).toBe('Never');
    expect(p.spec?.containers.map((c) => c.image)).toEqual(['registry.k8s.io/pause:3.10']);
    expect(p.spec?.containers[0]?.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
  });
});

describe('checkState', () => {
  const held = [CHECK_GATE, 'lanyard.dev/identity'];
  it.each([
    [
      'verified: annotated and the identity gate released',
      admitted({
        env: ['AWS_ROLE_ARN'],
        annotations: { 'lanyard.dev/identity-verification': 'verified' },
      }),
      'verified',
    ],
    ['not injected: no AWS variable in the container', admitted({ gates: held }), 'not injected'],
    [
      'admitted ungated: injected, no identity gate and no verification annotation',
      admitted({ env: ['AWS_CONTAINER_CREDENTIALS_FULL_URI'] }),
      'admitted ungated',
    ],
    ['waiting: injected and still held', admitted({ env: ['AWS_ROLE_ARN'], gates: held }), 'waiting'],
    [
      'waiting: verified annotation while the identity gate is still there',
      admitted({
        env: ['AWS_ROLE_ARN'],
        gates: held,
        annotations: { 'lanyard.dev/identity-verification': 'verified' },
      }),
      'waiting',
    ],
    [
      'waiting: released but annotated failed',
      admitted({ env: ['AWS_ROLE_ARN'], annotations: { 'lanyard.dev/identity-verification': 'failed' } }),
      'waiting',
    ],
  ])('%s', (_title, pod, want) => {
    expect(checkState(pod)).toBe(want);
  });
});

describe('the VerifiedIdentity that let the check Pod in', () => {
  it("web identity: named with the projected token's audience; container credentials: with the Pod Identity audience", () => {
    const p = admitted({ env: ['AWS_ROLE_ARN'], audience: 'vault' });
    const d = {
      serviceAccount: 'app',
      roleARN: ROLE,
      containerCredentialsAudience: 'pods.eks.amazonaws.com',
    };
    expect(checkPodVerifiedIdentity(p, { ...d, mode: 'WebIdentity' })).toBe(
      verifiedIdentityName({ mode: 'WebIdentity', serviceAccount: 'app', roleARN: ROLE, audience: 'vault' }),
    );
    expect(checkPodVerifiedIdentity(p, { ...d, mode: 'ContainerCredentials' })).toBe(
      verifiedIdentityName({
        mode: 'ContainerCredentials',
        serviceAccount: 'app',
        roleARN: ROLE,
        audience: 'pods.eks.amazonaws.com',
      }),
    );
  });
  it('opt-out is lanyard.dev/verify: "false" only', () => {
    expect(optedOut(admitted({ annotations: { 'lanyard.dev/verify': 'false' } }))).toBe(true);
    expect(optedOut(admitted({ annotations: { 'lanyard.dev/verify': 'true' } }))).toBe(false);
    expect(optedOut(admitted({}))).toBe(false);
  });
});
