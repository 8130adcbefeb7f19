import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { ResolvedIdentity } from '../identity/sources.ts';
import { decidePod } from './gate.ts';
import { credentialOptions } from '../identity/pod-credentials.ts';
import { PolicyCompiler, EMPTY_POLICY_SET } from './policy.ts';
import {
  buildVerifiedIdentity,
  canonicalJson,
  fingerprintOf,
  normaliseConfigMapEntry,
  verifiedEntryTrusted,
  verifiedIdentityName,
} from './verified-identity.ts';

const NOW = Date.parse('2026-11-23T12:00:00Z');
const ROLE = 'arn:aws:iam::111122223333:role/team-a/uploader';
const identity = (over: Partial<ResolvedIdentity> = {}): ResolvedIdentity => ({
  namespace: 'team-a',
  serviceAccount: 'uploader',
  mode: 'ContainerCredentials',
  source: 'association',
  roleARN: ROLE,
  audience: 'pods.eks.amazonaws.com',
  fingerprint: {
    source: 'association',
    uid: 'u1',
    associationID: 'a-1',
    roleARN: ROLE,
    disableSessionTags: false,
  },
  ...over,
});
const pod = (over: Record<string, unknown> = {}) => ({
  metadata: { name: 'p', namespace: 'team-a', annotations: {} },
  spec: { containers: [] },
  ...over,
});
const viFor = (id: ResolvedIdentity, expiresInMs: number, fp = fingerprintOf(id.fingerprint)) =>
  buildVerifiedIdentity({
    namespace: id.namespace,
    id,
    fingerprint: fp,
    assumedRoleARN: 'arn:aws:sts::111122223333:assumed-role/uploader/s',
    verifiedAtMs: NOW - 1000,
    ttlMs: expiresInMs + 1000,
    podName: 'p0',
  });

describe('VerifiedIdentity name and fingerprint (docs/verified-start.md#how-it-works)', () => {
  it('names by mode prefix and 20 hex digits of the identity hash', () => {
    const h = createHash('sha256')
      .update(`uploader\n${ROLE}\n\npods.eks.amazonaws.com`)
      .digest('hex')
      .slice(0, 20);
    expect(verifiedIdentityName(identity())).toBe(`cc-${h}`);
    expect(verifiedIdentityName(identity({ mode: 'WebIdentity' }))).toBe(`wi-${h}`);
    expect(verifiedIdentityName(identity({ audience: 'x' }))).not.toBe(`cc-${h}`);
    expect(verifiedIdentityName(identity({ targetRoleARN: 'arn:aws:iam::4:role/t' }))).not.toBe(`cc-${h}`);
  });
  it('fingerprint changes with every covered field', () => {
    const base = fingerprintOf({
      source: 'service_account',
      saUid: 'u',
      roleARN: ROLE,
      audience: 'sts.amazonaws.com',
      regionalSts: false,
    });
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    for (const f of [
      {
        source: 'service_account',
        saUid: 'u2',
        roleARN: ROLE,
        audience: 'sts.amazonaws.com',
        regionalSts: false,
      },
      {
        source: 'service_account',
        saUid: 'u',
        roleARN: ROLE + 'x',
        audience: 'sts.amazonaws.com',
        regionalSts: false,
      },
      { source: 'service_account', saUid: 'u', roleARN: ROLE, audience: 'other', regionalSts: false },
      {
        source: 'service_account',
        saUid: 'u',
        roleARN: ROLE,
        audience: 'sts.amazonaws.com',
        regionalSts: true,
      },
    ] as const)
      expect(fingerprintOf(f)).not.toBe(base);
    const a = {
      source: 'association',
      uid: 'u',
      associationID: 'a-1',
      roleARN: ROLE,
      disableSessionTags: false,
    } as const;
    expect(fingerprintOf({ ...a, associationID: 'a-2' })).not.toBe(fingerprintOf(a));
    expect(fingerprintOf({ ...a, disableSessionTags: true })).not.toBe(fingerprintOf(a));
    expect(fingerprintOf({ ...a, targetRoleARN: 'arn:aws:iam::1:role/t' })).not.toBe(fingerprintOf(a));
    expect(fingerprintOf({ source: 'identities_file' })).toBe(fingerprintOf({ source: 'identities_file' }));
  });
  it('ConfigMap entries fingerprint the same whatever the spelling or key order', () => {
    const f = (entryJson: string) => fingerprintOf({ source: 'configmap', key: 'a/b', entryJson });
    expect(f('{"RoleARN":"r","Audience":"x"}')).toBe(f('{"audience":"x","rolearn":"r","Unknown":1}'));
    expect(f('{"RoleARN":"r"}')).not.toBe(f('{"RoleARN":"r2"}'));
    expect(normaliseConfigMapEntry({ roleArn: 'r', TokenExpiration: null })).toEqual({ RoleARN: 'r' });
    expect(canonicalJson({ b: 1, a: [1, { d: 2, c: undefined }] })).toBe('{"a":[1,{"d":2}],"b":1}');
  });
  it('trusts an entry only when fresh (> 5 s) and with the same fingerprint', () => {
    const id = identity();
    const fp = fingerprintOf(id.fingerprint);
    expect(verifiedEntryTrusted(viFor(id, 60_000), id, fp, NOW)).toBe(true);
    expect(verifiedEntryTrusted(viFor(id, 5_000), id, fp, NOW)).toBe(false);
    expect(verifiedEntryTrusted(viFor(id, 60_000, 'f'.repeat(64)), id, fp, NOW)).toBe(false);
    expect(verifiedEntryTrusted(viFor(id, 60_000), { ...id, mode: 'WebIdentity' }, fp, NOW)).toBe(false);
    expect(verifiedEntryTrusted(undefined, id, fp, NOW)).toBe(false);
  });
});

describe('decidePod: every identity of every container, at admission', () => {
  const policies = new PolicyCompiler().compileAll([
    {
      metadata: { name: 'p', uid: 'p', generation: 1 },
      spec: {
        rules: [
          {
            namespaceSelector: { matchLabels: { team: 'a' } },
            serviceAccounts: ['*'],
            roles: ['arn:aws:iam::111122223333:role/team-a/*'],
          },
        ],
      },
    },
  ]);
  const DENIED = 'arn:aws:iam::111122223333:role/admin';
  const ALLOWED_OTHER = 'arn:aws:iam::111122223333:role/team-a/other';
  const WI_DIR = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
  const wiVolume = {
    name: 'aws-iam-token',
    projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', path: 'token' } }] },
  };
  const wiContainer = (name: string, role: string, file = `${WI_DIR}/token`) => ({
    name,
    env: [
      { name: 'AWS_ROLE_ARN', value: role },
      { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: file },
    ],
    volumeMounts: [{ name: 'aws-iam-token', mountPath: WI_DIR }],
  });
  const wiIdentity = identity({
    mode: 'WebIdentity',
    source: 'service_account',
    audience: 'sts.amazonaws.com',
    fingerprint: {
      source: 'service_account',
      saUid: 's1',
      roleARN: ROLE,
      audience: 'sts.amazonaws.com',
      regionalSts: false,
    },
  });
  /** A Pod of the web-identity SA as the webhook leaves it, plus extra containers. */
  const wiPod = (extra: object[] = [], over: Record<string, unknown> = {}) => ({
    metadata: { name: 'p', namespace: 'team-a', annotations: {} },
    spec: { volumes: [wiVolume], containers: [wiContainer('app', ROLE), ...extra] },
    ...over,
  });
  const base = {
    namespace: 'team-a',
    serviceAccount: 'uploader',
    credentials: credentialOptions(),
    policies: EMPTY_POLICY_SET,
    namespaceLabels: { team: 'a' },
    verified: () => undefined,
    gateEnabled: true,
    allowOptOut: true,
    nowMs: NOW,
  };
  const optOut = pod({ metadata: { name: 'p', annotations: { 'lanyard.dev/verify': 'false' } } });
  const verifiedWi = (name: string) =>
    name === verifiedIdentityName(wiIdentity) ? viFor(wiIdentity, 60_000) : undefined;
  const running = wiPod();
  const withDebugger = (c: object) =>
    wiPod([], {
      spec: { volumes: [wiVolume], containers: [wiContainer('app', ROLE)], ephemeralContainers: [c] },
    });
  it.each<[string, Record<string, unknown>, unknown]>([
    [
      'denied by policy wins over everything',
      { policies, identity: identity({ roleARN: DENIED }), pod: optOut },
      {
        kind: 'deny',
        message:
          'lanyard: no IdentityPolicy allows namespace "team-a" ServiceAccount "uploader" to use role "arn:aws:iam::111122223333:role/admin": Pod "team-a/p", the ServiceAccount\'s association. To allow it, add to spec.rules of IdentityPolicy "p" (kubectl edit identitypolicy p) the rule {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}, serviceAccounts: ["uploader"], roles: ["arn:aws:iam::111122223333:role/admin"]}; check first with: lanyard doctor --policy-preview <file> (docs/verified-start.md)',
      },
    ],
    [
      'allowed by policy, gate on',
      { policies, identity: identity(), pod: pod() },
      { kind: 'allow', gate: true },
    ],
    [
      'gate flag off',
      { gateEnabled: false, identity: identity(), pod: pod() },
      { kind: 'allow', gate: false },
    ],
    [
      'opt-out honoured',
      { identity: identity(), pod: optOut },
      { kind: 'allow', gate: false, skipReason: 'opt_out' },
    ],
    [
      'opt-out disabled',
      { allowOptOut: false, identity: identity(), pod: optOut },
      { kind: 'allow', gate: true },
    ],
    [
      'opt-out needs exactly "false"',
      { identity: identity(), pod: pod({ metadata: { annotations: { 'lanyard.dev/verify': 'no' } } }) },
      { kind: 'allow', gate: true },
    ],
    [
      'opt-out never skips the proof of a role known only from the exchange',
      {
        identity: identity({
          roleARN: undefined,
          source: 'identities_file',
          fingerprint: { source: 'identities_file' },
        }),
        pod: optOut,
      },
      { kind: 'allow', gate: true },
    ],
    [
      'verified',
      { identity: identity(), pod: pod(), verified: () => viFor(identity(), 60_000) },
      { kind: 'allow', gate: false, skipReason: 'verified' },
    ],
    [
      'verified but near expiry',
      { identity: identity(), pod: pod(), verified: () => viFor(identity(), 4_000) },
      { kind: 'allow', gate: true },
    ],
    [
      'verified but source changed',
      { identity: identity(), pod: pod(), verified: () => viFor(identity(), 60_000, 'e'.repeat(64)) },
      { kind: 'allow', gate: true },
    ],
    ['no identity anywhere', { pod: pod() }, { kind: 'allow', gate: false }],
    [
      'a container role that is no IAM role ARN is refused before any matching, echoed bounded',
      { pod: wiPod([wiContainer('long', `arn:aws:iam::111122223333:role/${'-:'.repeat(50_000)}`)]) },
      {
        kind: 'deny',
        message: expect.stringMatching(
          /^lanyard: Pod "team-a\/p", container "long", field spec\.containers\[1\]\.env\[AWS_ROLE_ARN\]: AWS_ROLE_ARN ".{0,400}" is 100031 characters; an IAM role ARN has at most/,
        ),
      },
    ],
    [
      'a second container naming a denied role through a "." path',
      { policies, identity: wiIdentity, pod: wiPod([wiContainer('second', DENIED, `${WI_DIR}/./token`)]) },
      {
        kind: 'deny',
        message:
          'lanyard: no IdentityPolicy allows namespace "team-a" ServiceAccount "uploader" to use role "arn:aws:iam::111122223333:role/admin": Pod "team-a/p", container "second", field spec.containers[1].env[AWS_ROLE_ARN]. To allow it, add to spec.rules of IdentityPolicy "p" (kubectl edit identitypolicy p) the rule {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}, serviceAccounts: ["uploader"], roles: ["arn:aws:iam::111122223333:role/admin"]}; check first with: lanyard doctor --policy-preview <file> (docs/verified-start.md)',
      },
    ],
    [
      "a second container naming an allowed role is gated even though the SA's identity is verified",
      {
        policies,
        identity: wiIdentity,
        verified: verifiedWi,
        pod: wiPod([wiContainer('second', ALLOWED_OTHER)]),
      },
      { kind: 'allow', gate: true },
    ],
    [
      "the SA's identity verified and used by every container",
      { policies, identity: wiIdentity, verified: verifiedWi, pod: wiPod() },
      { kind: 'allow', gate: false, skipReason: 'verified' },
    ],
    [
      'a hand-made role and token on a Pod of an un-annotated SA is gated',
      { pod: wiPod() },
      { kind: 'allow', gate: true },
    ],
    [
      'a hand-made denied role on a Pod of an un-annotated SA is denied',
      {
        policies,
        pod: wiPod([], { spec: { volumes: [wiVolume], containers: [wiContainer('app', DENIED)] } }),
      },
      {
        kind: 'deny',
        message: expect.stringContaining('container "app", field spec.containers[0].env[AWS_ROLE_ARN]'),
      },
    ],
    [
      'a role that cannot be read is denied, naming container and field',
      {
        pod: wiPod([
          {
            name: 'cfg',
            envFrom: [{ configMapRef: { name: 'aws' } }],
            volumeMounts: [{ name: 'aws-iam-token', mountPath: '/t' }],
          },
        ]),
      },
      {
        kind: 'deny',
        message: expect.stringContaining(
          'container "cfg", field spec.containers[1].envFrom[0] (configMapRef "aws"): AWS_ROLE_ARN may come from it',
        ),
      },
    ],
    [
      'bound to a node at creation and unproven: denied, nothing could hold it',
      { identity: identity(), pod: pod({ spec: { nodeName: 'n1' } }) },
      { kind: 'deny', message: expect.stringContaining('is bound to node "n1" at creation') },
    ],
    [
      'bound to a node at creation and verified',
      {
        identity: identity(),
        pod: pod({ spec: { nodeName: 'n1' } }),
        verified: () => viFor(identity(), 60_000),
      },
      { kind: 'allow', gate: false, skipReason: 'verified' },
    ],
    [
      'ephemeral container with a denied role',
      { policies, identity: wiIdentity, oldPod: running, pod: withDebugger(wiContainer('debug', DENIED)) },
      {
        kind: 'deny',
        message: expect.stringContaining(
          'no IdentityPolicy allows namespace "team-a" ServiceAccount "uploader" to use role "arn:aws:iam::111122223333:role/admin": Pod "team-a/p", container "debug", field spec.ephemeralContainers[0].env[AWS_ROLE_ARN]',
        ),
      },
    ],
    [
      'ephemeral container on a started Pod with an allowed but unproven role',
      {
        policies,
        identity: wiIdentity,
        oldPod: running,
        pod: withDebugger(wiContainer('debug', ALLOWED_OTHER)),
      },
      {
        kind: 'deny',
        message: expect.stringContaining(
          'has started; container "debug", field spec.ephemeralContainers[0].env[AWS_ROLE_ARN], would use WebIdentity role "arn:aws:iam::111122223333:role/team-a/other"',
        ),
      },
    ],
    [
      "ephemeral container on a started Pod reusing the Pod's own identity",
      { policies, identity: wiIdentity, oldPod: running, pod: withDebugger(wiContainer('debug', ROLE)) },
      { kind: 'allow', gate: false },
    ],
    [
      'ephemeral container on a Pod still at the gate: the verifier proves it before release',
      {
        policies,
        identity: wiIdentity,
        oldPod: {
          ...running,
          spec: { ...running.spec, schedulingGates: [{ name: 'lanyard.dev/identity' }] },
        },
        pod: withDebugger(wiContainer('debug', ALLOWED_OTHER)),
      },
      { kind: 'allow', gate: false },
    ],
    [
      'ephemeral container reading its role from a ConfigMap',
      {
        oldPod: running,
        pod: withDebugger({
          name: 'debug',
          env: [{ name: 'AWS_ROLE_ARN', valueFrom: { configMapKeyRef: { name: 'c', key: 'k' } } }],
          volumeMounts: [{ name: 'aws-iam-token', mountPath: '/x' }],
        }),
      },
      { kind: 'deny', message: expect.stringContaining('valueFrom') },
    ],
    [
      'ephemeral container without AWS access',
      { policies, identity: wiIdentity, oldPod: running, pod: withDebugger({ name: 'debug' }) },
      { kind: 'allow', gate: false },
    ],
  ])('%s', (_n, over, want) => {
    expect(decidePod({ ...base, ...over } as unknown as Parameters<typeof decidePod>[0])).toEqual(want);
  });
});

describe('decidePod: identity required (docs/adr/0920-identity-required.md)', () => {
  const base = {
    namespace: 'team-a',
    serviceAccount: 'uploader',
    credentials: credentialOptions(),
    policies: EMPTY_POLICY_SET,
    namespaceLabels: {} as Record<string, string>,
    verified: () => undefined,
    gateEnabled: true,
    allowOptOut: true,
    nowMs: NOW,
  };
  const found = {
    serviceAccount: 'found' as const,
    annotationPrefix: 'eks.amazonaws.com',
    configMap: true,
    identitiesFile: false,
  };
  const labelled = (labels: Record<string, string>) =>
    pod({ metadata: { name: 'p', namespace: 'team-a', labels } });
  const decide = (over: Record<string, unknown>) =>
    decidePod({ ...base, ...over } as unknown as Parameters<typeof decidePod>[0]);
  const REQUIRED_NS = { 'lanyard.dev/identity-required': 'true' };

  it('refuses a Pod with no identity in a labelled namespace, naming the ServiceAccount and each missing source', () => {
    expect(decide({ pod: pod(), namespaceLabels: REQUIRED_NS, noIdentity: found })).toEqual({
      kind: 'deny',
      message:
        'lanyard: Pod "team-a/p" requires an AWS identity (label lanyard.dev/identity-required="true" on namespace "team-a"), but ' +
        'ServiceAccount "team-a/uploader" has no identity: no eks.amazonaws.com/role-arn annotation, no PodIdentityAssociation, ' +
        'no entry "team-a/uploader" or "*/uploader" in the pod-identity-webhook ConfigMap. Annotate the ServiceAccount with ' +
        'eks.amazonaws.com/role-arn or create a PodIdentityAssociation for it, or label the Pod lanyard.dev/identity-required=false (docs/verified-start.md)',
    });
  });
  it('names only the sources the webhook consults, with its annotation prefix', () => {
    const d = decide({
      pod: pod(),
      namespaceLabels: REQUIRED_NS,
      noIdentity: { ...found, annotationPrefix: 'example.com', configMap: false, identitiesFile: true },
    });
    expect(d).toMatchObject({
      kind: 'deny',
      message: expect.stringContaining(
        'has no identity: no example.com/role-arn annotation, no PodIdentityAssociation, no entry in the container-credentials identities file.',
      ),
    });
    expect(JSON.stringify(d)).not.toContain('ConfigMap');
  });
  it('says when the ServiceAccount does not exist or could not be read in time', () => {
    expect(
      decide({
        pod: pod(),
        namespaceLabels: REQUIRED_NS,
        noIdentity: { ...found, serviceAccount: 'not_found' },
      }),
    ).toMatchObject({
      kind: 'deny',
      message: expect.stringContaining('but ServiceAccount "team-a/uploader" does not exist.'),
    });
    expect(
      decide({
        pod: pod(),
        namespaceLabels: REQUIRED_NS,
        noIdentity: { ...found, serviceAccount: 'unresolved' },
      }),
    ).toMatchObject({
      kind: 'deny',
      message: expect.stringContaining(
        'could not be read in time, so its eks.amazonaws.com/role-arn annotation is unknown; retry the create',
      ),
    });
  });
  it('the Pod label decides over the namespace label, both ways', () => {
    expect(
      decide({
        pod: labelled({ 'lanyard.dev/identity-required': 'false' }),
        namespaceLabels: REQUIRED_NS,
        noIdentity: found,
      }),
    ).toEqual({ kind: 'allow', gate: false });
    expect(
      decide({ pod: labelled({ 'lanyard.dev/identity-required': 'true' }), noIdentity: found }),
    ).toMatchObject({
      kind: 'deny',
      message: expect.stringContaining('(label lanyard.dev/identity-required="true" on the Pod)'),
    });
  });
  it('without the label, or with "false" on the namespace, a Pod with no identity is admitted as before', () => {
    expect(decide({ pod: pod(), noIdentity: found })).toEqual({ kind: 'allow', gate: false });
    expect(
      decide({
        pod: pod(),
        namespaceLabels: { 'lanyard.dev/identity-required': 'false' },
        noIdentity: found,
      }),
    ).toEqual({ kind: 'allow', gate: false });
  });
  it('a value other than "true" or "false" is refused, naming the object carrying it and the rule', () => {
    expect(
      decide({ pod: pod(), namespaceLabels: { 'lanyard.dev/identity-required': 'yes' }, noIdentity: found }),
    ).toMatchObject({
      kind: 'deny',
      message: expect.stringMatching(
        /^lanyard: Pod "team-a\/p": namespace "team-a" has label lanyard.dev\/identity-required="yes"; the value must be "true" or "false", so an AWS identity is required, but ServiceAccount "team-a\/uploader" has no identity/,
      ),
    });
  });
  it('a Pod with an identity passes whatever the label says', () => {
    expect(decide({ pod: pod(), namespaceLabels: REQUIRED_NS, identity: identity() })).toEqual({
      kind: 'allow',
      gate: true,
    });
  });
  it('is not applied to ephemeral-container updates (the Pod was judged at creation)', () => {
    expect(decide({ pod: pod(), oldPod: pod(), namespaceLabels: REQUIRED_NS })).toEqual({
      kind: 'allow',
      gate: false,
    });
  });
});
