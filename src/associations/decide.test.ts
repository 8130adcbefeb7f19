import { describe, expect, it } from 'vitest';
import {
  classifyAwsError,
  createToken,
  deriveReady,
  driftText,
  policyDeniedMessage,
  refusalText,
  samePolicy,
  specProblem,
  deriveVerified,
  diffTags,
  isOutOfBand,
  nextRolePropagation,
  nextStep,
  planSync,
  selectOwner,
  verifiedFromReport,
  type EksOperation,
} from './decide.ts';
import {
  ackRecord,
  desiredOf,
  effectiveCluster,
  lanyardRecord,
  parseLanyardAssociation,
  recordOf,
  FINALIZER,
  type AssociationRecord,
} from './model.ts';

const ROLE = 'arn:aws:iam::111122223333:role/team-a/uploader';
const OTHER = 'arn:aws:iam::111122223333:role/other';
const TARGET = 'arn:aws:iam::444455556666:role/bucket-writer';

function obj(over: { spec?: object; status?: object; metadata?: object } = {}) {
  return {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'PodIdentityAssociation',
    metadata: {
      name: 'uploader',
      namespace: 'team-a',
      uid: 'uid-1',
      generation: 3,
      resourceVersion: '10',
      creationTimestamp: '2026-01-01T00:00:00Z',
      finalizers: [FINALIZER],
      ...over.metadata,
    },
    spec: { serviceAccount: 'uploader', roleARN: ROLE, ...over.spec },
    status: { ...over.status },
  };
}

const err = (code: string, message = 'x', httpStatus = 400) => ({ code, message, httpStatus });

describe('classifyAwsError: adopt, retry, recreate or stop for each AWS answer (docs/associations.md#what-the-controller-does)', () => {
  const rows: Array<[string, EksOperation, ReturnType<typeof err>, unknown]> = [
    [
      '409 on Create adopts, id from the message',
      'create',
      err('ResourceInUseException', 'Association already exists: a-0123456789abcdefg', 409),
      { kind: 'adopt', associationId: 'a-0123456789abcdefg' },
    ],
    [
      '409 on Create without an id adopts through List',
      'create',
      err('ResourceInUseException', 'Association already exists', 409),
      { kind: 'adopt', associationId: undefined },
    ],
    [
      'role missing on Create retries (bounded)',
      'create',
      err('InvalidParameterException', 'Role provided in the request does not exist'),
      { kind: 'rolePropagating' },
    ],
    [
      'role missing on Update retries (bounded)',
      'update',
      err('InvalidParameterException', 'Role provided in the request does not exist'),
      { kind: 'rolePropagating' },
    ],
    [
      'other InvalidParameterException is terminal',
      'create',
      err('InvalidParameterException', 'Invalid namespace'),
      { kind: 'terminal', reason: 'InvalidSpec' },
    ],
    [
      'InvalidParameterException on Describe is terminal',
      'describe',
      err('InvalidParameterException', 'Role provided in the request does not exist'),
      { kind: 'terminal', reason: 'InvalidSpec' },
    ],
    [
      'InvalidRequestException is terminal',
      'update',
      err('InvalidRequestException', 'bad request'),
      { kind: 'terminal', reason: 'InvalidSpec' },
    ],
    [
      'a reused clientRequestToken with other input adopts',
      'create',
      err('InvalidRequestException', 'The client request token was used with different parameters'),
      { kind: 'adopt' },
    ],
    [
      '404 on Create: cluster missing',
      'create',
      err('ResourceNotFoundException', 'No cluster found for name: prod', 404),
      { kind: 'terminal', reason: 'ClusterNotFound' },
    ],
    [
      '404 on Describe: recreate',
      'describe',
      err('ResourceNotFoundException', 'not found', 404),
      { kind: 'notFound' },
    ],
    [
      '404 on Update: recreate',
      'update',
      err('ResourceNotFoundException', 'not found', 404),
      { kind: 'notFound' },
    ],
    [
      '404 on Delete: done',
      'delete',
      err('ResourceNotFoundException', 'not found', 404),
      { kind: 'notFound' },
    ],
    [
      'limit on Create is terminal',
      'create',
      err('ResourceLimitExceededException', 'limit'),
      { kind: 'terminal', reason: 'LimitExceeded' },
    ],
    [
      '403 is terminal',
      'describe',
      err('AccessDeniedException', 'denied', 403),
      { kind: 'terminal', reason: 'AccessDenied' },
    ],
    [
      'throttling retries',
      'create',
      err('ThrottlingException', 'slow down', 429),
      { kind: 'retryable', reason: 'AWSError' },
    ],
    ['500 retries', 'update', err('ServerException', 'boom', 500), { kind: 'retryable', reason: 'AWSError' }],
    [
      '503 retries',
      'describe',
      err('ServiceUnavailable', 'busy', 503),
      { kind: 'retryable', reason: 'AWSError' },
    ],
    [
      'timeouts retry',
      'create',
      err('TimeoutError', 'socket timed out', 0),
      { kind: 'retryable', reason: 'AWSError' },
    ],
    [
      'connection resets retry',
      'tag',
      err('ECONNRESET', 'socket hang up', 0),
      { kind: 'retryable', reason: 'AWSError' },
    ],
  ];
  for (const [name, op, e, want] of rows) {
    it(name, () => expect(classifyAwsError(op, e)).toEqual(want));
  }
});

describe('selectOwner', () => {
  const rec = (over: Partial<AssociationRecord>): AssociationRecord => ({
    kind: 'lanyard',
    objectNamespace: 'ns',
    objectName: 'a',
    uid: 'u',
    resourceVersion: '1',
    cluster: 'c',
    namespace: 'ns',
    serviceAccount: 'sa',
    disableSessionTags: false,
    creationTimestamp: '2026-01-01T00:00:00Z',
    deleting: false,
    stamp: '',
    pendingDelete: false,
    ...over,
  });
  it('picks the oldest by creationTimestamp', () => {
    const a = rec({ uid: 'a', objectName: 'z', creationTimestamp: '2026-01-01T00:00:01Z' });
    const b = rec({ uid: 'b', objectName: 'y', creationTimestamp: '2026-01-01T00:00:00Z' });
    expect(selectOwner([a, b])?.uid).toBe('b');
  });
  it('breaks ties by name', () => {
    expect(selectOwner([rec({ uid: 'b', objectName: 'b' }), rec({ uid: 'a', objectName: 'a' })])?.uid).toBe(
      'a',
    );
  });
  it('ignores deleting objects', () => {
    const old = rec({ uid: 'old', deleting: true, creationTimestamp: '2025-01-01T00:00:00Z' });
    expect(selectOwner([old, rec({ uid: 'new' })])?.uid).toBe('new');
    expect(selectOwner([old])).toBeUndefined();
  });
  it('counts observed ACK objects', () => {
    const ack = rec({ kind: 'ack', uid: 'ack', creationTimestamp: '2025-12-31T00:00:00Z' });
    expect(selectOwner([rec({ uid: 'l' }), ack])?.kind).toBe('ack');
  });
});

describe('records', () => {
  it('an ACK record takes the pair from spec.namespace and leaves clusterRef-only objects without a cluster', () => {
    const r = ackRecord({
      metadata: { name: 'x', namespace: 'ack-objects', uid: 'u', creationTimestamp: 't' },
      spec: {
        clusterRef: { from: { name: 'c' } },
        namespace: 'team-a',
        serviceAccount: 'sa',
        roleRef: { from: { name: 'r' } },
      },
      status: { associationID: 'a-1' },
    });
    expect(r).toMatchObject({
      kind: 'ack',
      cluster: undefined,
      namespace: 'team-a',
      serviceAccount: 'sa',
      roleARN: undefined,
      associationID: 'a-1',
    });
  });
  it('effective cluster: spec, then status, then the flag', () => {
    expect(
      effectiveCluster(
        parseLanyardAssociation(obj({ spec: { clusterName: 'a' }, status: { clusterName: 'b' } })),
        'c',
      ),
    ).toBe('a');
    expect(effectiveCluster(parseLanyardAssociation(obj({ status: { clusterName: 'b' } })), 'c')).toBe('b');
    expect(effectiveCluster(parseLanyardAssociation(obj()), 'c')).toBe('c');
    expect(lanyardRecord(obj(), 'c').cluster).toBe('c');
  });
  it('desired state carries the managed tags and normalises the target role', () => {
    const d = desiredOf(parseLanyardAssociation(obj({ spec: { tags: { team: 'a' } } })), 'prod');
    expect(d).toEqual({
      clusterName: 'prod',
      namespace: 'team-a',
      serviceAccount: 'uploader',
      roleArn: ROLE,
      targetRoleArn: '',
      disableSessionTags: false,
      policy: '',
      tags: { team: 'a', 'lanyard.dev/managed-by': 'lanyard', 'lanyard.dev/uid': 'uid-1' },
    });
  });
});

describe('nextStep', () => {
  const self = (o = obj()) => lanyardRecord(o, 'c');
  const allowed = { allowed: true } as const;
  it('deleting with the finalizer: delete, or only release with retain', () => {
    const d = parseLanyardAssociation(
      obj({ metadata: { deletionTimestamp: 'now' }, status: { associationID: 'a-1' } }),
    );
    expect(
      nextStep({ deniedAction: 'delete', obj: d, cluster: 'c', owner: undefined, policy: allowed }),
    ).toEqual({
      kind: 'delete',
      associationId: 'a-1',
      cluster: 'c',
    });
    const r = parseLanyardAssociation(
      obj({
        metadata: { deletionTimestamp: 'now', annotations: { 'lanyard.dev/deletion-policy': 'retain' } },
      }),
    );
    expect(
      nextStep({ deniedAction: 'delete', obj: r, cluster: 'c', owner: undefined, policy: allowed }).kind,
    ).toBe('releaseRetained');
    const gone = parseLanyardAssociation(obj({ metadata: { deletionTimestamp: 'now', finalizers: [] } }));
    expect(
      nextStep({ deniedAction: 'delete', obj: gone, cluster: 'c', owner: undefined, policy: allowed }).kind,
    ).toBe('ignore');
  });
  it('another owner: duplicate, before policy', () => {
    const o = parseLanyardAssociation(obj());
    const owner = { ...self(), uid: 'older' };
    expect(
      nextStep({
        deniedAction: 'delete',
        obj: o,
        cluster: 'c',
        owner,
        policy: { allowed: false, message: 'no' },
      }),
    ).toEqual({
      kind: 'duplicate',
      owner,
    });
  });
  it('waits while another object of the pair still deletes its association', () => {
    const o = parseLanyardAssociation(obj());
    const other = { ...self(), uid: 'old', deleting: true, pendingDelete: true };
    expect(
      nextStep({
        deniedAction: 'delete',
        obj: o,
        cluster: 'c',
        owner: self(),
        policy: allowed,
        deleting: other,
      }),
    ).toEqual({
      kind: 'waitForDeletion',
      other,
    });
    const pending = lanyardRecord(
      obj({ metadata: { deletionTimestamp: 'now' }, status: { associationID: 'a-1' } }),
      'c',
    );
    expect(pending.pendingDelete).toBe(true);
    const retained = lanyardRecord(
      obj({
        metadata: { deletionTimestamp: 'now', annotations: { 'lanyard.dev/deletion-policy': 'retain' } },
        status: { associationID: 'a-1' },
      }),
      'c',
    );
    expect(retained.pendingDelete).toBe(false);
  });
  const denied = { allowed: false, message: 'no' } as const;
  it.each([
    [
      'never created: no finalizer yet, delete mode',
      { metadata: { finalizers: [] } },
      'delete',
      { kind: 'none' },
    ],
    [
      'never created: no finalizer yet, preview mode',
      { metadata: { finalizers: [] } },
      'preview',
      { kind: 'none' },
    ],
    ['never created: finalizer but no id (a Create never happened)', {}, 'delete', { kind: 'none' }],
    [
      'removed earlier: only removedAssociationID is left',
      { status: { removedAssociationID: 'a-1' } },
      'delete',
      { kind: 'none' },
    ],
    [
      'exists in EKS, delete mode: remove it',
      { status: { associationID: 'a-1' } },
      'delete',
      { kind: 'remove', associationId: 'a-1', cluster: 'c' },
    ],
    [
      'exists in EKS, preview mode: report only',
      { status: { associationID: 'a-1' } },
      'preview',
      { kind: 'preview', associationId: 'a-1' },
    ],
  ] as const)('policy denied, %s', (_title, over, mode, handling) => {
    const o = parseLanyardAssociation(obj(over as Parameters<typeof obj>[0]));
    expect(nextStep({ deniedAction: mode, obj: o, cluster: 'c', owner: self(), policy: denied })).toEqual({
      kind: 'policyDenied',
      message: 'no',
      handling,
    });
  });
  it('policy denied wins over an invalid spec; an allowed invalid spec is InvalidSpec before any AWS write', () => {
    const bad = parseLanyardAssociation(
      obj({ metadata: { finalizers: [] }, spec: { policy: '{not json', disableSessionTags: true } }),
    );
    expect(
      nextStep({ deniedAction: 'delete', obj: bad, cluster: 'c', owner: self(), policy: denied }).kind,
    ).toBe('policyDenied');
    const step = nextStep({ deniedAction: 'delete', obj: bad, cluster: 'c', owner: self(), policy: allowed });
    expect(step.kind).toBe('invalidSpec');
    expect((step as { message: string }).message).toMatch(/^spec\.policy: not valid JSON/);
  });
  it('finalizer, then create, then describe', () => {
    const bare = parseLanyardAssociation(obj({ metadata: { finalizers: [] } }));
    expect(
      nextStep({ deniedAction: 'delete', obj: bare, cluster: 'c', owner: self(), policy: allowed }).kind,
    ).toBe('addFinalizer');
    expect(
      nextStep({
        deniedAction: 'delete',
        obj: parseLanyardAssociation(obj()),
        cluster: 'c',
        owner: self(),
        policy: allowed,
      }).kind,
    ).toBe('create');
    const withId = parseLanyardAssociation(obj({ status: { associationID: 'a-1' } }));
    expect(
      nextStep({ deniedAction: 'delete', obj: withId, cluster: 'c', owner: self(), policy: allowed }),
    ).toEqual({
      kind: 'describe',
      associationId: 'a-1',
    });
  });
});

describe('planSync (drift and tags)', () => {
  const desired = desiredOf(parseLanyardAssociation(obj({ spec: { tags: { team: 'a' } } })), 'c');
  const inSync = {
    roleArn: ROLE,
    targetRoleArn: undefined,
    disableSessionTags: false,
    tags: { ...desired.tags },
  };
  it('nothing to do when EKS matches', () => {
    expect(planSync(desired, inSync)).toEqual({
      drift: [],
      update: undefined,
      tagsToSet: {},
      tagKeysToRemove: [],
    });
  });
  it('role drift becomes an Update that also clears the target role with ""', () => {
    const p = planSync(desired, { ...inSync, roleArn: OTHER, targetRoleArn: TARGET });
    expect(p.drift).toEqual([
      { field: 'roleARN', observed: OTHER, desired: ROLE },
      { field: 'targetRoleARN', observed: TARGET, desired: '' },
    ]);
    expect(p.update).toEqual({ roleArn: ROLE, targetRoleArn: '', disableSessionTags: false, policy: '' });
  });
  it('absent and empty target roles are the same', () => {
    expect(planSync(desired, { ...inSync, targetRoleArn: '' }).drift).toEqual([]);
  });
  it('session-tag flag drift', () => {
    expect(planSync(desired, { ...inSync, disableSessionTags: true }).drift).toEqual([
      { field: 'disableSessionTags', observed: 'true', desired: 'false' },
    ]);
  });
  const POLICY =
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}';
  const withPolicy = desiredOf(
    parseLanyardAssociation(obj({ spec: { tags: { team: 'a' }, disableSessionTags: true, policy: POLICY } })),
    'c',
  );
  const policyInSync = { ...inSync, disableSessionTags: true, policy: POLICY };
  it.each([
    ['the same text', POLICY, []],
    ['a document that lost its Version', POLICY.replace('"Version":"2012-10-17",', ''), 'drift'],
    ['reformatted only', JSON.stringify(JSON.parse(POLICY), null, 2), []],
    ['no policy in EKS', undefined, 'drift'],
    ['another policy in EKS', POLICY.replace('GetObject', 'PutObject'), 'drift'],
  ] as const)('session policy against EKS: %s', (_t, observed, expected) => {
    const p = planSync(withPolicy, { ...policyInSync, policy: observed });
    if (expected === 'drift') {
      expect(p.drift).toEqual([{ field: 'policy', observed: observed ?? '', desired: POLICY }]);
      expect(p.update).toEqual({
        roleArn: ROLE,
        targetRoleArn: '',
        disableSessionTags: true,
        policy: POLICY,
      });
    } else expect(p.drift).toEqual([]);
  });
  it('a policy removed from the spec is removed in EKS with policy ""', () => {
    const p = planSync({ ...withPolicy, policy: '' }, policyInSync);
    expect(p.drift).toEqual([{ field: 'policy', observed: POLICY, desired: '' }]);
    expect(p.update?.policy).toBe('');
  });
  it('drift text cuts long values (a 2 KB policy) to fit an Event', () => {
    const long = 'x'.repeat(2000);
    const text = driftText([{ field: 'policy', observed: '', desired: long }]);
    expect(text).toBe(`policy: observed "", desired "${'x'.repeat(120)}…"`);
  });
  it('tags: set changed and missing ones, remove extra ones but never aws: tags', () => {
    expect(diffTags({ a: '1', b: '2' }, { a: '0', c: '3', 'aws:cloudformation:stack': 's' })).toEqual({
      set: { a: '1', b: '2' },
      remove: ['c'],
    });
  });
});

describe('drift origin', () => {
  it('out of band when the spec is unchanged since the last sync', () => {
    const synced = {
      type: 'Synced',
      status: 'True',
      reason: 'InSync',
      message: '',
      lastTransitionTime: 't',
      observedGeneration: 3,
    };
    expect(
      isOutOfBand(parseLanyardAssociation(obj({ status: { observedGeneration: 3, conditions: [synced] } }))),
    ).toBe(true);
    expect(
      isOutOfBand(parseLanyardAssociation(obj({ status: { observedGeneration: 2, conditions: [synced] } }))),
    ).toBe(false);
  });
});

describe('role propagation', () => {
  it('retries after 1, 2, 4, 8, 15, 15 s, then stops at the timeout', () => {
    let state;
    const delays: Array<number | undefined> = [];
    let now = 1000;
    for (let i = 0; i < 6; i++) {
      const r = nextRolePropagation(state, 3, now, 120_000);
      state = r.state;
      delays.push(r.retryInMs);
      now += r.retryInMs ?? 0;
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 15000, 15000]);
    expect(nextRolePropagation(state, 3, 1000 + 120_000, 120_000).retryInMs).toBeUndefined();
  });
  it('never waits past the timeout', () => {
    const first = nextRolePropagation(undefined, 1, 0, 10_000).state;
    expect(nextRolePropagation({ ...first, attempts: 5 }, 1, 9_500, 10_000).retryInMs).toBe(500);
  });
  it('a new generation starts a new window', () => {
    const old = { generation: 2, firstErrorAt: 0, attempts: 9 };
    expect(nextRolePropagation(old, 3, 500_000, 120_000)).toEqual({
      state: { generation: 3, firstErrorAt: 500_000, attempts: 1 },
      retryInMs: 1000,
    });
  });
});

describe('Verified and Ready', () => {
  const report = (reason: string, status: 'True' | 'False', gen = 3) => ({
    type: 'Verified',
    status,
    reason,
    message: 'm',
    observedGeneration: gen,
    lastTransitionTime: 't',
  });
  it('a report for this generation stands', () => {
    expect(
      deriveVerified({ generation: 3, synced: true, current: report('RoleMismatch', 'False') }),
    ).toMatchObject({
      status: 'False',
      reason: 'RoleMismatch',
    });
  });
  it('a report for an older generation does not', () => {
    expect(
      deriveVerified({ generation: 4, synced: true, current: report('CredentialsMatch', 'True') }),
    ).toMatchObject({
      status: 'Unknown',
      reason: 'Verifying',
    });
  });
  it('not synced, fresh verified set, probe failure, waiting', () => {
    expect(deriveVerified({ generation: 3, synced: false, current: undefined }).reason).toBe('NotSynced');
    expect(
      deriveVerified({ generation: 3, synced: true, current: undefined, freshVerifiedAt: 't' }),
    ).toMatchObject({
      status: 'True',
      reason: 'CredentialsMatch',
    });
    expect(
      deriveVerified({ generation: 3, synced: true, current: undefined, probeError: 'quota' }),
    ).toMatchObject({
      status: 'Unknown',
      reason: 'ProbeFailed',
      message: 'quota',
    });
  });
  it('Ready', () => {
    const synced = {
      type: 'Synced',
      status: 'True' as const,
      reason: 'InSync',
      message: '',
      observedGeneration: 3,
    };
    const notSynced = { ...synced, status: 'False' as const, reason: 'AccessDenied' };
    const v = (status: 'True' | 'False' | 'Unknown', reason: string) => ({
      type: 'Verified',
      status,
      reason,
      message: 'm',
      observedGeneration: 3,
    });
    expect(deriveReady(3, synced, v('True', 'CredentialsMatch'))).toMatchObject({
      status: 'True',
      reason: 'Ready',
    });
    expect(deriveReady(3, notSynced, v('True', 'CredentialsMatch'))).toMatchObject({
      status: 'False',
      reason: 'NotSynced',
    });
    expect(deriveReady(3, synced, v('False', 'RoleMismatch'))).toMatchObject({
      status: 'False',
      reason: 'NotVerified',
    });
    expect(deriveReady(3, synced, v('Unknown', 'Verifying'))).toMatchObject({
      status: 'Unknown',
      reason: 'Verifying',
    });
  });
  it('verifier reports: applied for the current identity, dropped when stale', () => {
    const o = parseLanyardAssociation(obj({ status: { associationID: 'a-1' } }));
    const base = {
      uid: 'uid-1',
      roleARN: ROLE,
      associationID: 'a-1',
      result: 'CredentialsMatch',
      message: 'ok',
    };
    expect(verifiedFromReport(o, base)).toMatchObject({
      status: 'True',
      reason: 'CredentialsMatch',
      observedGeneration: 3,
    });
    expect(verifiedFromReport(o, { ...base, result: 'RoleMismatch' })).toMatchObject({
      status: 'False',
      reason: 'RoleMismatch',
    });
    expect(verifiedFromReport(o, { ...base, roleARN: OTHER })).toBeUndefined();
    expect(verifiedFromReport(o, { ...base, uid: 'other' })).toBeUndefined();
    expect(verifiedFromReport(o, { ...base, associationID: 'a-2' })).toBeUndefined();
    expect(verifiedFromReport(o, { ...base, targetRoleARN: TARGET })).toBeUndefined();
  });
});

describe('session policy checks and texts', () => {
  const spec = (policy: string | undefined, disableSessionTags = true) =>
    parseLanyardAssociation(obj({ spec: { policy, disableSessionTags } }));
  it.each([
    ['no policy', undefined, true, undefined],
    ['a JSON object', '{"Version":"2012-10-17","Statement":[]}', true, undefined],
    ['not JSON', '{"Statement": [', true, /^spec\.policy: not valid JSON \(/],
    ['JSON but not an object', '["s3:*"]', true, /^spec\.policy: must be a JSON object/],
    [
      'over 2048 characters',
      `{"a":"${'x'.repeat(2050)}"}`,
      true,
      /^spec\.policy: must be at most 2048 characters \(EKS's limit\), got 2058$/,
    ],
    ['session tags still on', '{}', false, /^spec\.policy: EKS requires spec\.disableSessionTags: true/],
  ] as const)('specProblem, session policy: %s', (_t, policy, tagsOff, expected) => {
    const problem = specProblem(spec(policy, tagsOff));
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
  it.each([
    ['a pathed role', { roleARN: ROLE }, undefined],
    ['a target role too', { roleARN: ROLE, targetRoleARN: TARGET }, undefined],
    [
      'a role name over 64 characters',
      { roleARN: `arn:aws:iam::111122223333:role/${'n'.repeat(65)}` },
      /^spec\.roleARN: role name is 65 characters; IAM allows at most 64$/,
    ],
    [
      'a 21 KB role',
      { roleARN: `arn:aws:iam::111122223333:role/${'-'.repeat(21_000)}` },
      /^spec\.roleARN: is 21031 characters; an IAM role ARN has at most 623/,
    ],
    [
      'a user ARN as target',
      { roleARN: ROLE, targetRoleARN: 'arn:aws:iam::444455556666:user/x' },
      /^spec\.targetRoleARN: must be an IAM role ARN/,
    ],
  ] as const)('specProblem, roles: %s', (_t, spec, expected) => {
    const problem = specProblem(parseLanyardAssociation(obj({ spec })));
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
  // docs/migrate-from-ack.md: ACK's spec.namespace is accepted only when it names the object's own namespace.
  it.each([
    ["spec.namespace equal to the object's", { roleARN: ROLE, namespace: 'team-a' }, undefined],
    [
      'spec.namespace of another namespace',
      { roleARN: ROLE, namespace: 'team-b' },
      /^spec\.namespace "team-b" must equal the object's namespace "team-a": a Lanyard PodIdentityAssociation binds a ServiceAccount of its own namespace; create it in namespace "team-b" or remove spec\.namespace \(docs\/migrate-from-ack\.md\)$/,
    ],
  ] as const)('specProblem, ACK namespace: %s', (_t, spec, expected) => {
    const problem = specProblem(parseLanyardAssociation(obj({ spec })));
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
  it('nextStep refuses a foreign spec.namespace as InvalidSpec before any AWS step', () => {
    const o = parseLanyardAssociation(obj({ spec: { roleARN: ROLE, namespace: 'team-b' } }));
    expect(
      nextStep({
        obj: o,
        cluster: 'c',
        owner: recordOf(o, 'c'),
        policy: { allowed: true },
        deniedAction: 'delete',
        deleting: undefined,
      }),
    ).toMatchObject({ kind: 'invalidSpec', message: expect.stringContaining('spec.namespace "team-b"') });
  });
  it('samePolicy compares JSON, not text; empty equals only empty', () => {
    expect(samePolicy('{"a":1,"b":[1,2]}', '{ "b": [1, 2], "a": 1 }')).toBe(true);
    expect(samePolicy('{"b":[2,1]}', '{"b":[1,2]}')).toBe(false);
    expect(samePolicy('', '')).toBe(true);
    expect(samePolicy('', '{}')).toBe(false);
    expect(samePolicy('{bad', '{bad ')).toBe(false);
  });
  it('an EKS refusal about the policy names spec.policy; others are left as they are', () => {
    const withPolicy = spec('{}');
    expect(
      refusalText(withPolicy, 'InvalidParameterException: policy is not valid JSON (request id r)'),
    ).toBe(
      'spec.policy: EKS refused the session policy: InvalidParameterException: policy is not valid JSON (request id r)',
    );
    expect(refusalText(withPolicy, 'AccessDeniedException: not allowed')).toBe(
      'AccessDeniedException: not allowed',
    );
    expect(refusalText(spec(undefined), 'InvalidParameterException: policy x')).toBe(
      'InvalidParameterException: policy x',
    );
  });
});

describe('denied associations', () => {
  const pair = { namespace: 'demo', serviceAccount: 'reporter' };
  it.each([
    [{ kind: 'none' }, 0, 'no; no association is created in EKS'],
    [
      { kind: 'remove', associationId: 'a-1', cluster: 'c' },
      2,
      'no; removed association a-1 from EKS (2 running Pods of ServiceAccount demo/reporter used it; they get no new credentials)',
    ],
    [
      { kind: 'preview', associationId: 'a-1' },
      1,
      'no; would remove association a-1 from EKS, not done because --denied-association-action=preview; 1 running Pod of ServiceAccount demo/reporter use it',
    ],
    [
      { kind: 'preview', associationId: 'a-1' },
      undefined,
      'no; would remove association a-1 from EKS, not done because --denied-association-action=preview; an unknown number of running Pods of ServiceAccount demo/reporter use it',
    ],
  ] as const)('message for %o with %s Pods', (handling, pods, text) => {
    expect(policyDeniedMessage('no', handling, pair, pods)).toBe(text);
  });
  it('Ready is False with reason PolicyDenied and the Synced message', () => {
    const synced = {
      type: 'Synced',
      status: 'False',
      reason: 'PolicyDenied',
      message: 'm',
      observedGeneration: 3,
    } as const;
    const verified = {
      type: 'Verified',
      status: 'True',
      reason: 'CredentialsMatch',
      message: 'ok',
      observedGeneration: 3,
    } as const;
    expect(deriveReady(3, synced, verified)).toEqual({
      type: 'Ready',
      status: 'False',
      reason: 'PolicyDenied',
      message: 'm',
      observedGeneration: 3,
    });
  });
  it('the Create token is the uid, or derived from the association it replaces', () => {
    expect(createToken('uid-1', undefined)).toBe('uid-1');
    expect(createToken('uid-1', 'a-0123456789abcdefg')).toBe('uid-1-a-0123456789abcdefg');
    expect(
      createToken('0b7e1c2a-1111-4222-8333-944455556666', 'a-0123456789abcdefg').length,
    ).toBeLessThanOrEqual(64);
  });
});
