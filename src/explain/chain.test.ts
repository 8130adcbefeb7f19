// `lanyard explain`'s pure core (docs/explain-and-iam.md): the webhook's precedence as a chain, the Pod's state, the
// IdentityPolicy rule named, the verifier's last Event with its meaning, and the fixes.
import { describe, expect, it } from 'vitest';
import type { EnvVar, Pod, PodSchedulingGate, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { PodIdentityAssociation } from '../associations/types.ts';
import type { Condition } from '../kube/conditions.ts';
import { TEST_FLAGS } from '../../test/fixtures/identity.ts';
import { credentialOptions } from '../identity/pod-credentials.ts';
import { parseConfigMapDocument, EMPTY_TABLE } from '../identity/configmap.ts';
import { lanyardRecord } from '../associations/model.ts';
import { PolicyCompiler, EMPTY_POLICY_SET } from '../verification/policy.ts';
import {
  explain,
  explainPolicy,
  renderExplanation,
  withTrust,
  type ExplainEvent,
  type ExplainInput,
} from './chain.ts';

const ROLE = 'arn:aws:iam::111122223333:role/uploader';
const sa = (annotations: Record<string, string> = {}): ServiceAccount => ({
  metadata: { name: 'app', namespace: 'team-a', uid: 'sa-uid', annotations },
});
const assoc = (
  name: string,
  role: string,
  created: string,
  conditions: Omit<Condition, 'lastTransitionTime'>[] = [],
): PodIdentityAssociation => ({
  metadata: {
    name,
    namespace: 'team-a',
    uid: `uid-${name}`,
    creationTimestamp: created,
    generation: 1,
    resourceVersion: '1',
  },
  spec: { serviceAccount: 'app', roleARN: role },
  status: {
    associationID: 'a-1',
    conditions: conditions.map((c) => ({ ...c, lastTransitionTime: created })),
  },
});
const pod = (
  env: EnvVar[] = [],
  extra: { annotations?: Record<string, string>; gates?: PodSchedulingGate[] } = {},
): Pod => ({
  metadata: { name: 'web', namespace: 'team-a', uid: 'pod-uid', annotations: extra.annotations ?? {} },
  spec: {
    serviceAccountName: 'app',
    schedulingGates: extra.gates ?? [],
    volumes: env.length
      ? [
          {
            name: 'aws-iam-token',
            projected: {
              sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', path: 'token' } }],
            },
          },
        ]
      : [],
    containers: [
      {
        name: 'app',
        env,
        volumeMounts: env.length
          ? [{ name: 'aws-iam-token', mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount' }]
          : [],
      },
    ],
  },
});
const wiEnv = (role: string) => [
  { name: 'AWS_ROLE_ARN', value: role },
  { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token' },
];

function input(over: Partial<ExplainInput> = {}): ExplainInput {
  return {
    kind: 'ServiceAccount',
    namespace: 'team-a',
    name: 'app',
    serviceAccount: sa(),
    serviceAccountName: 'app',
    associations: [],
    configMap: {
      where: 'lanyard-system/pod-identity-webhook',
      found: false,
      table: EMPTY_TABLE,
      error: 'ConfigMap not found',
    },
    flags: TEST_FLAGS,
    policies: EMPTY_POLICY_SET,
    namespaceLabels: { team: 'a' },
    events: [],
    credentials: credentialOptions(),
    nowMs: Date.parse('2026-12-03T03:00:00Z'),
    ...over,
  };
}
function table(doc: Record<string, unknown>) {
  const r = parseConfigMapDocument(JSON.stringify(doc));
  if (!r.ok) throw new Error(r.error);
  return r.table;
}
const outcomes = (i: ExplainInput) => explain(i).sources.map((s) => `${s.rank}:${s.outcome}`);

describe("the resolution chain follows the webhook's precedence", () => {
  it.each([
    ['nothing declared', input(), ['1:empty', '2:unknown', '3:empty', '4:empty', '5:empty'], undefined],
    [
      'the annotation wins when no association exists',
      input({ serviceAccount: sa({ 'eks.amazonaws.com/role-arn': ROLE }) }),
      ['1:empty', '2:unknown', '3:won', '4:empty', '5:empty'],
      'WebIdentity',
    ],
    [
      'an association shadows the annotation',
      input({
        serviceAccount: sa({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/other' }),
        associations: [lanyardRecord(assoc('app', ROLE, '2026-01-01T00:00:00Z'), '')],
      }),
      ['1:won', '2:unknown', '3:shadowed', '4:empty', '5:empty'],
      'ContainerCredentials',
    ],
    [
      'of two associations the older owns the pair',
      input({
        associations: [
          lanyardRecord(assoc('b', 'arn:aws:iam::111122223333:role/b', '2026-02-01T00:00:00Z'), ''),
          lanyardRecord(assoc('a', ROLE, '2026-01-01T00:00:00Z'), ''),
        ],
      }),
      ['1:shadowed', '1:won', '2:unknown', '3:empty', '4:empty', '5:empty'],
      'ContainerCredentials',
    ],
    [
      'the exact ConfigMap entry beats the wildcard',
      input({
        configMap: {
          where: 'x',
          found: true,
          table: table({ 'team-a/app': { RoleARN: ROLE }, '*/app': { RoleARN: 'arn:aws:iam::1:role/w' } }),
        },
      }),
      ['1:empty', '2:unknown', '3:empty', '4:won', '5:shadowed'],
      'WebIdentity',
    ],
    [
      'the wildcard entry wins alone',
      input({ configMap: { where: 'x', found: true, table: table({ '*/app': { RoleARN: ROLE } }) } }),
      ['1:empty', '2:unknown', '3:empty', '4:empty', '5:won'],
      'WebIdentity',
    ],
  ])('%s', (_name, i, expected, mode) => {
    expect(outcomes(i)).toEqual(expected);
    expect(explain(i).declared?.mode).toBe(mode);
  });
});

describe('the Pod as created against the identity declared now', () => {
  it.each([
    ['matches', pod(wiEnv(ROLE)), 'matches'],
    ['missing: created before the annotation', pod(), 'missing'],
    ['stale: carries an older role', pod(wiEnv('arn:aws:iam::111122223333:role/old')), 'stale'],
  ])('%s', (_n, p, state) => {
    const e = explain(
      input({ kind: 'Pod', name: 'web', pod: p, serviceAccount: sa({ 'eks.amazonaws.com/role-arn': ROLE }) }),
    );
    expect(e.podState).toBe(state);
    if (state === 'missing') expect(e.fixes[0]).toMatch(/created before its identity was declared/);
    if (state === 'stale') expect(e.fixes[0]).toMatch(/re-create the Pod/);
  });
});

describe('IdentityPolicy', () => {
  const set = new PolicyCompiler().compileAll([
    {
      metadata: { name: 'team-a', uid: 'p', generation: 1 },
      spec: {
        rules: [
          {
            namespaceSelector: { matchLabels: { team: 'b' } },
            serviceAccounts: ['*'],
            roles: ['arn:aws:iam::*:role/*'],
          },
          {
            namespaceSelector: { matchLabels: { team: 'a' } },
            serviceAccounts: ['app'],
            roles: ['arn:aws:iam::111122223333:role/upl*'],
          },
        ],
      },
    },
  ]);
  it('names the rule that allows', () => {
    expect(
      explainPolicy(set, {
        namespace: 'team-a',
        namespaceLabels: { team: 'a' },
        serviceAccount: 'app',
        roleARN: ROLE,
      }),
    ).toEqual({
      decision: 'allowed',
      rule: 'IdentityPolicy team-a spec.rules[1]',
      message: 'allowed by IdentityPolicy team-a spec.rules[1]',
    });
  });
  it("gives the webhook's denial message and a fix when no rule allows", () => {
    const e = explain(
      input({
        serviceAccount: sa({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/admin' }),
        policies: set,
      }),
    );
    expect(e.policy).toEqual({
      decision: 'denied',
      message:
        'lanyard: no IdentityPolicy allows namespace "team-a" ServiceAccount "app" to use role "arn:aws:iam::111122223333:role/admin"',
    });
    expect(e.fixes.join('\n')).toMatch(
      /add an IdentityPolicy rule selecting namespace "team-a", ServiceAccount "app" and role "arn:aws:iam::111122223333:role\/admin"/,
    );
  });
  it('a Pod without the declared identity is denied, not missing, when no rule allows that identity (as get identities says)', () => {
    const e = explain(
      input({
        kind: 'Pod',
        name: 'web',
        pod: pod(),
        policies: set,
        serviceAccount: sa({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::111122223333:role/admin' }),
      }),
    );
    expect(e.podState).toBe('denied');
    expect(e.fixes).toEqual([
      expect.stringMatching(/^add an IdentityPolicy rule selecting namespace "team-a"/),
    ]);
    expect(renderExplanation(e, () => '5s')).toContain(
      '  DENIED: the Pod has no identity, and the one declared now is denied by IdentityPolicy (PolicyDenied)',
    );
  });
});

describe('gate, verifier and association status', () => {
  const events: ExplainEvent[] = [
    { reason: 'IdentityNotVerified', type: 'Warning', note: 'old', eventTime: '2026-12-03T02:59:00.000000Z' },
    {
      reason: 'IdentityNotVerified',
      type: 'Warning',
      note: 'WebIdentity exchange for role r failed: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity',
      eventTime: '2026-12-03T02:59:30.000000Z',
    },
    { reason: 'Scheduled', type: 'Normal', note: 'unrelated', eventTime: '2026-12-03T02:59:50.000000Z' },
  ];
  it('takes the latest verifier Event and says what the STS text means', () => {
    const e = explain(
      input({
        kind: 'Pod',
        name: 'web',
        pod: pod(wiEnv(ROLE), {
          gates: [{ name: 'lanyard.dev/identity' }],
          annotations: { 'lanyard.dev/identity-verification': 'failed' },
        }),
        serviceAccount: sa({ 'eks.amazonaws.com/role-arn': ROLE }),
        events,
      }),
    );
    expect(e.gate).toMatchObject({
      gated: true,
      annotation: 'failed',
      lastAttempt: { reason: 'IdentityNotVerified', message: expect.stringContaining('AccessDenied') },
    });
    expect(e.gate.lastAttempt!.hint).toMatch(/Federated provider, its `sub` condition/);
    expect(e.fixes[0]).toMatch(
      /`lanyard iam check arn:aws:iam::111122223333:role\/uploader --service-account team-a\/app`/,
    );
    // With the trust comparison the fix names the field instead.
    const t = withTrust(e, {
      checked: true,
      role: ROLE,
      presented: 'token',
      comparison: { allowed: false, notes: [], mismatches: [{ field: 'sub', text: 'x' }] },
    });
    expect(t.fixes).toEqual([expect.stringMatching(/^fix the trust policy of .*uploader \(sub is wrong\)/)]);
    expect(renderExplanation(t, () => '5s')).toContain('  sub: x\n');
  });
  it("shows the owning association's conditions and a fix when it is not synced", () => {
    const a = assoc('app', ROLE, '2026-01-01T00:00:00Z', [
      { type: 'Synced', status: 'False', reason: 'RoleNotFound', message: 'role does not exist' },
      { type: 'Ready', status: 'False', reason: 'NotSynced', message: '' },
    ]);
    const e = explain(
      input({ associations: [lanyardRecord(a, '')], associationObjects: new Map([['uid-app', a]]) }),
    );
    expect(e.gate.association).toEqual({
      object: 'PodIdentityAssociation team-a/app',
      conditions: [
        { type: 'Synced', status: 'False', reason: 'RoleNotFound', message: 'role does not exist' },
        { type: 'Ready', status: 'False', reason: 'NotSynced', message: '' },
      ],
    });
    expect(e.fixes).toContain(
      'PodIdentityAssociation team-a/app is not synced to EKS (RoleNotFound: role does not exist): Pods get no credentials from the agent until it is',
    );
    expect(renderExplanation(e, () => '1m')).toContain(
      'PodIdentityAssociation team-a/app: Synced=False (RoleNotFound), Ready=False (NotSynced)\n  Synced: role does not exist\n',
    );
  });
  it('an unknown ServiceAccount: nothing declared, two fixes', () => {
    const e = explain(input({ serviceAccount: undefined }));
    expect(e.sources[2]!.says).toBe('ServiceAccount not found');
    expect(e.fixes.map((f) => f.slice(0, 30))).toEqual([
      'create the ServiceAccount team',
      'give team-a/app an identity: `',
    ]);
  });
});
