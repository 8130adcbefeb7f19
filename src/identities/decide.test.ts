// Table tests of the running-Pod identity decision (docs/identities.md): each row is a Pod as the webhook (or a user)
// left it, the sources as they are now, and the state Lanyard must report.
import { describe, expect, it } from 'vitest';
import type { Json } from '../kube/client.ts';
import { buildPatch } from '../identity/patch.ts';
import { resolveIdentity } from '../identity/resolve.ts';
import { applyAddPatch, TEST_FLAGS } from '../../test/fixtures/identity.ts';
import type { AssociationIdentity } from '../identity/sources.ts';
import { credentialOptions } from '../identity/pod-credentials.ts';
import { EMPTY_TABLE } from '../identity/configmap.ts';
import { PolicyCompiler, decidePolicy, EMPTY_POLICY_SET, type PolicySet } from '../verification/policy.ts';
import {
  buildVerifiedIdentity,
  fingerprintOf,
  verifiedIdentityName,
} from '../verification/verified-identity.ts';
import {
  decideIdentity,
  decideRepair,
  repairEnabled,
  restartPatch,
  toPodView,
  workloadOf,
  type DecideInput,
  type PodIdentity,
} from './decide.ts';

const ROLE = 'arn:aws:iam::111122223333:role/team-a/uploader';
const OTHER = 'arn:aws:iam::111122223333:role/team-a/other';
const NOW = Date.parse('2026-12-03T04:00:00Z');
const view = {
  credentials: credentialOptions(),
  annotationPrefix: 'eks.amazonaws.com',
  injectedVolumes: ['aws-iam-token', 'eks-pod-identity-token'],
};

function bare(
  extra: {
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    gated?: boolean;
    phase?: string;
  } = {},
): Json {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'web-1',
      namespace: 'team-a',
      uid: 'u1',
      creationTimestamp: '2026-12-03T03:00:00Z',
      annotations: extra.annotations,
      labels: extra.labels,
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9f', uid: 'rs', controller: true },
      ],
    },
    spec: {
      serviceAccountName: 'uploader',
      containers: [{ name: 'app', image: 'x' }],
      ...(extra.gated ? { schedulingGates: [{ name: 'lanyard.dev/identity' }] } : {}),
    },
    status: { phase: extra.phase ?? 'Running' },
  };
}
const association: AssociationIdentity = {
  kind: 'lanyard',
  uid: 'a1',
  objectNamespace: 'team-a',
  objectName: 'uploader',
  namespace: 'team-a',
  serviceAccount: 'uploader',
  roleARN: ROLE,
  disableSessionTags: false,
  associationID: 'a-0123456789abcdefg',
  creationTimestamp: '2026-12-03T03:30:00Z',
};
const sa = (role: string) => ({ found: true as const, settings: { uid: 'sa1', roleARN: role } });
const resolve = (o: { role?: string; association?: AssociationIdentity }) =>
  resolveIdentity(
    {
      namespace: 'team-a',
      serviceAccount: 'uploader',
      podAnnotations: undefined,
      sa: o.role ? sa(o.role) : { found: true, settings: { uid: 'sa1' } },
      association: o.association,
      inIdentitiesFile: false,
      configMap: EMPTY_TABLE,
    },
    TEST_FLAGS,
    () => 0,
  );
/** The Pod as Lanyard's webhook injects it for these sources. */
function injected(
  o: { role?: string; association?: AssociationIdentity },
  extra?: Parameters<typeof bare>[0],
): Json {
  const r = resolve(o)!;
  return applyAddPatch(
    bare(extra),
    buildPatch(bare(extra), r.injection, {
      windows: false,
      annotationPrefix: 'eks.amazonaws.com',
      gate: false,
    }),
  );
}
function policies(roles: string[]): PolicySet {
  return new PolicyCompiler().compileAll([
    {
      metadata: { name: 'p', uid: 'p', generation: 1 },
      spec: { rules: [{ namespaceSelector: {}, serviceAccounts: ['*'], roles }] },
    },
  ]);
}

function decide(
  pod: Json,
  now: { role?: string; association?: AssociationIdentity },
  o: Partial<DecideInput> & { policySet?: PolicySet; vi?: boolean } = {},
): PodIdentity | undefined {
  const declared = resolve(now)?.identity;
  const fp = declared ? fingerprintOf(declared.fingerprint) : undefined;
  const set = o.policySet ?? EMPTY_POLICY_SET;
  const vis = new Map<string, Json>();
  if (o.vi && declared) {
    const id = {
      mode: declared.mode,
      serviceAccount: 'uploader',
      roleARN: declared.roleARN,
      targetRoleARN: declared.targetRoleARN,
      audience: declared.audience,
    };
    vis.set(
      verifiedIdentityName(id),
      buildVerifiedIdentity({
        namespace: 'team-a',
        id,
        fingerprint: fp!,
        assumedRoleARN: 'x',
        verifiedAtMs: NOW - 1000,
        ttlMs: 600_000,
        podName: 'p',
      }),
    );
  }
  return decideIdentity({
    pod: toPodView(pod, view)!,
    declared,
    declaredFingerprint: fp,
    association: now.association,
    policy: (roleARN, targetRoleARN) =>
      decidePolicy(set, {
        namespace: 'team-a',
        namespaceLabels: {},
        serviceAccount: 'uploader',
        roleARN,
        targetRoleARN,
      }),
    verified: (n) => vis.get(n),
    nowMs: NOW,
    ...o,
  });
}
const verified = { annotations: { 'lanyard.dev/identity-verification': 'verified' } };

describe('decideIdentity: a Pod against the identity declared now (docs/identities.md, "States")', () => {
  it.each([
    ['no identity used and none declared: not reported', bare(), {}, undefined],
    ['created before the ServiceAccount annotation: missing', bare(), { role: ROLE }, 'missing'],
    ['created before the PodIdentityAssociation: missing', bare(), { association }, 'missing'],
    [
      'injected with the role declared now and released by the verifier: ok',
      injected({ role: ROLE }, verified),
      { role: ROLE },
      'ok',
    ],
    [
      'container credentials, association unchanged: ok',
      injected({ association }, verified),
      { association },
      'ok',
    ],
    [
      'role annotation changed after start: stale',
      injected({ role: ROLE }, verified),
      { role: OTHER },
      'stale',
    ],
    [
      'web identity Pod whose ServiceAccount is now associated: stale',
      injected({ role: ROLE }, verified),
      { association },
      'stale',
    ],
    ['annotation removed after start: stale', injected({ role: ROLE }, verified), {}, 'stale'],
    ['held at the gate: verifying', injected({ role: ROLE }, { gated: true }), { role: ROLE }, 'verifying'],
    [
      'verification failed past the deadline: unverified',
      injected(
        { role: ROLE },
        { gated: true, annotations: { 'lanyard.dev/identity-verification': 'failed' } },
      ),
      { role: ROLE },
      'unverified',
    ],
    [
      'opted out of the gate: unverified',
      injected({ role: ROLE }, { annotations: { 'lanyard.dev/verify': 'false' } }),
      { role: ROLE },
      'unverified',
    ],
  ] as const)('%s', (_t, pod, now, state) => {
    const d = decide(pod, now);
    expect(d?.state).toBe(state);
  });

  it('missing names the declared role and its source, and says how to fix it', () => {
    const d = decide(bare(), { association })!;
    expect(d).toMatchObject({ state: 'missing', source: 'association', role: '', declaredRole: ROLE });
    expect(d.message).toContain('PodIdentityAssociation team-a/uploader');
    expect(d.message).toContain('restart');
  });

  it('stale carries both roles', () => {
    const d = decide(injected({ role: ROLE }, verified), { role: OTHER })!;
    expect(d).toMatchObject({
      role: ROLE,
      declaredRole: OTHER,
      source: 'service_account',
      mode: 'WebIdentity',
    });
  });

  it('an IdentityPolicy that no longer allows the role: denied, before stale or ok', () => {
    expect(
      decide(injected({ role: ROLE }, verified), { role: ROLE }, { policySet: policies([OTHER]) })?.state,
    ).toBe('denied');
    expect(
      decide(injected({ role: ROLE }, verified), { role: ROLE }, { policySet: policies([ROLE]) })?.state,
    ).toBe('ok');
    // Container credentials are judged on the association's role.
    expect(
      decide(injected({ association }, verified), { association }, { policySet: policies([OTHER]) }),
    ).toMatchObject({ state: 'denied', reason: 'PolicyDenied' });
  });

  it('a Pod without an identity whose declared association no IdentityPolicy allows: denied with reason PolicyDenied, not missing', () => {
    const d = decide(bare(), { association }, { policySet: policies([OTHER]) })!;
    expect(d).toMatchObject({
      state: 'denied',
      reason: 'PolicyDenied',
      source: 'association',
      mode: 'ContainerCredentials',
      role: '',
      declaredRole: ROLE,
    });
    expect(d.message).toBe(
      `PolicyDenied: ServiceAccount team-a/uploader declares ContainerCredentials ${ROLE} (PodIdentityAssociation team-a/uploader), ` +
        `which no IdentityPolicy allows (lanyard: no IdentityPolicy allows namespace "team-a" ServiceAccount "uploader" to use role "${ROLE}"); ` +
        'the Pod runs without it and a restart would not give it: change the IdentityPolicy or the PodIdentityAssociation team-a/uploader',
    );
    // The same for a denied ServiceAccount annotation; an allowing policy leaves the Pod missing.
    expect(decide(bare(), { role: ROLE }, { policySet: policies([OTHER]) })).toMatchObject({
      state: 'denied',
      reason: 'PolicyDenied',
      source: 'service_account',
    });
    expect(decide(bare(), { association }, { policySet: policies([ROLE]) })).toMatchObject({
      state: 'missing',
    });
    expect(decide(bare(), { association })?.reason).toBeUndefined();
  });

  it('a Pod admitted ungated from the verified set is ok while the entry is fresh, and stays ok once remembered', () => {
    const pod = injected({ role: ROLE });
    const fresh = decide(pod, { role: ROLE }, { vi: true, observedSinceCreation: true })!;
    expect(fresh).toMatchObject({ state: 'ok', proven: true });
    expect(decide(pod, { role: ROLE }, { observedSinceCreation: true, provenEarlier: true })?.state).toBe(
      'ok',
    );
    // Watched since creation, no proof ever: admitted without the gate.
    expect(decide(pod, { role: ROLE }, { observedSinceCreation: true })?.state).toBe('unverified');
    // A VerifiedIdentity for another fingerprint (the annotation changed) proves nothing.
    expect(
      decide(
        pod,
        { role: ROLE },
        { observedSinceCreation: true, declaredFingerprint: 'f'.repeat(64), vi: true },
      )?.state,
    ).toBe('unverified');
  });

  it('a role the container names by hand, with no source: reported under source pod, not stale', () => {
    const pod = bare(verified);
    pod.spec.volumes = [
      {
        name: 'mine',
        projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', path: 't' } }] },
      },
    ];
    pod.spec.containers[0].volumeMounts = [{ name: 'mine', mountPath: '/t' }];
    pod.spec.containers[0].env = [
      { name: 'AWS_ROLE_ARN', value: ROLE },
      { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/t/t' },
    ];
    expect(decide(pod, {})).toMatchObject({ state: 'ok', source: 'pod', role: ROLE });
  });

  it('finished, terminating, probe, skip-labelled and fully skipped Pods are not followed', () => {
    expect(toPodView(bare({ phase: 'Succeeded' }), view)).toBeUndefined();
    expect(toPodView(bare({ labels: { 'lanyard.dev/probe': 'true' } }), view)).toBeUndefined();
    expect(
      toPodView(bare({ labels: { 'eks.amazonaws.com/skip-pod-identity-webhook': 'x' } }), view),
    ).toBeUndefined();
    expect(
      toPodView(bare({ annotations: { 'eks.amazonaws.com/skip-containers': 'app' } }), view),
    ).toBeUndefined();
    const t = bare();
    t.metadata.deletionTimestamp = '2026-12-03T03:59:00Z';
    expect(toPodView(t, view)).toBeUndefined();
    expect(toPodView(bare({ phase: 'Pending' }), view)).toMatchObject({
      phase: 'Pending',
      owner: { kind: 'ReplicaSet', name: 'web-7d9f' },
    });
  });
});

describe('repair (docs/identities.md, "Repair")', () => {
  it('the workload annotation wins over the namespace one; only "restart" turns it on', () => {
    expect(repairEnabled(undefined, 'restart')).toBe(true);
    expect(repairEnabled('off', 'restart')).toBe(false);
    expect(repairEnabled('restart', undefined)).toBe(true);
    expect(repairEnabled(undefined, undefined)).toBe(false);
    expect(repairEnabled('Restart', undefined)).toBe(false);
  });

  it('restarts once per generation of Pods, waits while old Pods remain, and never loops', () => {
    const t0 = Date.parse('2026-12-03T04:00:00Z');
    expect(decideRepair({ enabled: false, problemPods: [t0 - 10] })).toEqual({ kind: 'none' });
    expect(decideRepair({ enabled: true, problemPods: [] })).toEqual({ kind: 'none' });
    expect(decideRepair({ enabled: true, problemPods: [t0 - 10] })).toEqual({ kind: 'restart' });
    expect(decideRepair({ enabled: true, problemPods: [t0 - 10, t0 + 10], lastRestartMs: t0 })).toEqual({
      kind: 'in_progress',
    });
    const again = decideRepair({ enabled: true, problemPods: [t0 + 10], lastRestartMs: t0 });
    expect(again.kind).toBe('ineffective');
    expect(again.kind === 'ineffective' && again.message).toContain('2026-12-03T04:00:00.000Z');
  });

  it("the restart patch is the Pod template annotation kubectl rollout restart writes, plus Lanyard's", () => {
    expect(restartPatch(new Date('2026-12-03T04:00:00.123Z'))).toEqual({
      spec: {
        template: {
          metadata: {
            annotations: {
              'kubectl.kubernetes.io/restartedAt': '2026-12-03T04:00:00Z',
              'lanyard.dev/identity-restarted-at': '2026-12-03T04:00:00Z',
            },
          },
        },
      },
    });
  });

  it("a Pod's workload: StatefulSet and DaemonSet directly, Deployment through its ReplicaSet; bare Pods and Jobs have none", () => {
    const rs = (n: string) => (n === 'web-7d9f' ? { kind: 'Deployment', name: 'web' } : undefined);
    expect(workloadOf({ kind: 'ReplicaSet', name: 'web-7d9f' }, rs)).toEqual({
      kind: 'Deployment',
      name: 'web',
    });
    expect(workloadOf({ kind: 'ReplicaSet', name: 'lone' }, rs)).toBeUndefined();
    expect(workloadOf({ kind: 'StatefulSet', name: 'db' }, rs)).toEqual({ kind: 'StatefulSet', name: 'db' });
    expect(workloadOf({ kind: 'DaemonSet', name: 'agent' }, rs)).toEqual({
      kind: 'DaemonSet',
      name: 'agent',
    });
    expect(workloadOf({ kind: 'Job', name: 'j' }, rs)).toBeUndefined();
    expect(workloadOf(undefined, rs)).toBeUndefined();
  });
});

describe('the association\'s Ready with Pods left without it (docs/identities.md, "Events, metrics, the association\'s Ready")', () => {
  it('keeps the status and names the count and the fix; nothing is added without such Pods', async () => {
    const { readyWithPodsWithoutIdentity } = await import('./ready.ts');
    const ready = {
      type: 'Ready',
      status: 'True',
      reason: 'Ready',
      message: 'synced and verified',
      observedGeneration: 1,
    } as const;
    expect(readyWithPodsWithoutIdentity(ready, 0, 'team-a', 'uploader')).toBe(ready);
    const one = readyWithPodsWithoutIdentity(ready, 1, 'team-a', 'uploader');
    expect(one).toMatchObject({ status: 'True', reason: 'Ready' });
    expect(one.message).toBe(
      'synced and verified; 1 running Pod of ServiceAccount team-a/uploader started before the association and run ' +
        'without its identity: restart it (lanyard get identities -n team-a)',
    );
    expect(readyWithPodsWithoutIdentity(ready, 3, 'team-a', 'uploader').message).toContain(
      '; 3 running Pods of ServiceAccount team-a/uploader',
    );
  });
});
