// The association controller's pure pass decisions (docs/associations.md): the verified set, the Verified condition
// and probe Pods, what a failed EKS step leads to, and when status needs a write. Table tests on plain objects.
import { describe, expect, it } from 'vitest';
import type { Condition } from '../kube/conditions.ts';
import type { LanyardAssociation } from './model.ts';
import {
  EXPIRY_MARGIN_MS,
  PROBE_MEMORY_MS,
  changedIdFields,
  freshVerifiedAt,
  lastSeenStillGood,
  mayCreateProbe,
  planStepFailure,
  planVerification,
  statusUnchanged,
  syncedFalseEvent,
  verificationWaitingFor,
  type ProbeRecord,
  type VerificationInput,
  type ViRecord,
} from './decide.ts';

const NOW = Date.parse('2026-12-03T08:00:00Z');
const ROLE = 'arn:aws:iam::111122223333:role/app';

function association(
  o: {
    generation?: number;
    conditions?: Condition[];
    status?: Partial<LanyardAssociation['status']>;
    targetRoleARN?: string;
  } = {},
): LanyardAssociation {
  return {
    namespace: 'team',
    name: 'app',
    uid: 'uid-1',
    generation: o.generation ?? 2,
    resourceVersion: '10',
    creationTimestamp: '2026-12-03T07:00:00Z',
    deleting: false,
    finalizers: [],
    retain: false,
    spec: {
      serviceAccount: 'app',
      roleARN: ROLE,
      disableSessionTags: false,
      tags: {},
      ...(o.targetRoleARN ? { targetRoleARN: o.targetRoleARN } : {}),
    },
    status: { associationID: 'a-1', conditions: o.conditions ?? [], ...(o.status ?? {}) },
  };
}

const entry = (o: Partial<ViRecord> = {}): ViRecord => ({
  namespace: 'team',
  name: 'vi-1',
  serviceAccount: 'app',
  mode: 'ContainerCredentials',
  roleARN: ROLE,
  targetRoleARN: '',
  fingerprint: 'fp',
  verifiedAt: '2026-12-03T07:59:00Z',
  expiresAt: '2026-12-03T09:00:00Z',
  ...o,
});

const probe = (generation: number, name = `probe-${generation}`): ProbeRecord => ({
  namespace: 'team',
  name,
  ownerUid: 'uid-1',
  ownerName: 'app',
  generation,
});

describe('freshVerifiedAt: a verified-set entry that proves the association now', () => {
  it.each([
    ['a matching entry', [entry()], undefined, '2026-12-03T07:59:00Z'],
    ['another ServiceAccount', [entry({ serviceAccount: 'other' })], undefined, undefined],
    ['web identity, not container credentials', [entry({ mode: 'WebIdentity' })], undefined, undefined],
    ['another fingerprint (the association changed)', [entry({ fingerprint: 'old' })], undefined, undefined],
    ['another role', [entry({ roleARN: 'arn:aws:iam::111122223333:role/other' })], undefined, undefined],
    [
      'a target role the spec does not name',
      [entry({ targetRoleARN: 'arn:aws:iam::111122223333:role/t' })],
      undefined,
      undefined,
    ],
    ['verified before the pair was invalidated', [entry()], Date.parse('2026-12-03T07:59:30Z'), undefined],
    [
      'verified after the pair was invalidated',
      [entry()],
      Date.parse('2026-12-03T07:58:30Z'),
      '2026-12-03T07:59:00Z',
    ],
    [
      'expiring within the margin',
      [entry({ expiresAt: new Date(NOW + EXPIRY_MARGIN_MS - 1).toISOString() })],
      undefined,
      undefined,
    ],
    [
      'the second of two entries',
      [entry({ fingerprint: 'old' }), entry({ name: 'vi-2', verifiedAt: '2026-12-03T07:58:00Z' })],
      undefined,
      '2026-12-03T07:58:00Z',
    ],
  ])('%s', (_t, entries, invalidatedAt, want) => {
    expect(freshVerifiedAt(entries, association(), 'fp', invalidatedAt, NOW)).toBe(want);
  });
});

describe('verificationWaitingFor', () => {
  it.each([
    ['the local cluster with probes', 'prod', true, undefined],
    [
      'another cluster',
      'other',
      true,
      'the association is for cluster "other"; only associations of "prod" (--cluster-name) can be verified from here',
    ],
    [
      'probes off',
      'prod',
      false,
      'waiting for a workload Pod of the ServiceAccount to be verified (--association-probe=false)',
    ],
  ])('%s', (_t, cluster, probeOn, want) =>
    expect(verificationWaitingFor(cluster, 'prod', probeOn)).toBe(want),
  );
});

describe('planVerification: the Verified condition and the probe Pod work', () => {
  const base = (o: Partial<VerificationInput> = {}): VerificationInput => ({
    obj: association(),
    current: undefined,
    local: true,
    probe: true,
    probeFailureMs: 60_000,
    probes: [],
    now: NOW,
    ...o,
  });

  it('nothing proven yet: Verifying, and a probe Pod for this generation', () => {
    const p = planVerification(base());
    expect(p.verified).toMatchObject({ status: 'Unknown', reason: 'Verifying', observedGeneration: 2 });
    expect(p).toMatchObject({
      createProbe: true,
      deleteProbes: [],
      dropProbeFailure: false,
      forgetProbe: false,
    });
  });
  it('a fresh verified-set entry: True, its time recorded on the transition, every probe deleted', () => {
    const p = planVerification(base({ fresh: '2026-12-03T07:59:00Z', probes: [probe(1), probe(2)] }));
    expect(p.verified).toMatchObject({ status: 'True', reason: 'CredentialsMatch' });
    expect(p).toMatchObject({
      lastVerifiedTime: '2026-12-03T07:59:00Z',
      createProbe: false,
      deleteProbes: [probe(1), probe(2)],
    });
  });
  it("already True: the entry's time is not recorded again", () => {
    const stored: Condition = {
      type: 'Verified',
      status: 'True',
      reason: 'CredentialsMatch',
      message: 'm',
      observedGeneration: 2,
      lastTransitionTime: 't',
    };
    const p = planVerification(
      base({ obj: association({ conditions: [stored] }), current: stored, fresh: '2026-12-03T07:59:00Z' }),
    );
    expect(p.lastVerifiedTime).toBeUndefined();
  });
  it('a report just applied keeps its own time', () => {
    const report: Condition = {
      type: 'Verified',
      status: 'True',
      reason: 'CredentialsMatch',
      message: 'exchange returned it',
      observedGeneration: 2,
      lastTransitionTime: '',
    };
    const p = planVerification(
      base({ current: report, reportedAt: '2026-12-03T07:59:59Z', fresh: '2026-12-03T07:59:00Z' }),
    );
    expect(p).toMatchObject({
      verified: { status: 'True', message: 'exchange returned it' },
      lastVerifiedTime: '2026-12-03T07:59:59Z',
    });
  });
  it('probes of older generations are deleted; one of this generation means none is made', () => {
    const p = planVerification(base({ probes: [probe(1), probe(2)] }));
    expect(p).toMatchObject({ deleteProbes: [probe(1)], createProbe: false });
  });
  it('a probe created moments ago (not cached yet) is not made twice; an old memory is dropped', () => {
    expect(planVerification(base({ remembered: { generation: 2, at: NOW - 1000 } }))).toMatchObject({
      createProbe: false,
      forgetProbe: false,
    });
    expect(
      planVerification(base({ remembered: { generation: 2, at: NOW - PROBE_MEMORY_MS - 1 } })),
    ).toMatchObject({ createProbe: true, forgetProbe: true });
  });
  it('a probe failure of this generation is shown until the resync, then dropped and tried again', () => {
    const failure = { generation: 2, message: 'cannot create the probe Pod: forbidden', at: NOW - 1000 };
    expect(planVerification(base({ probeFailure: failure }))).toMatchObject({
      verified: { status: 'Unknown', reason: 'ProbeFailed', message: failure.message },
      createProbe: false,
      dropProbeFailure: false,
    });
    const old = { ...failure, at: NOW - 60_000 };
    expect(planVerification(base({ probeFailure: old }))).toMatchObject({
      verified: { reason: 'Verifying' },
      createProbe: true,
      dropProbeFailure: true,
    });
    expect(planVerification(base({ probeFailure: { ...failure, generation: 1 } }))).toMatchObject({
      createProbe: true,
      dropProbeFailure: true,
    });
  });
  it('another cluster, or probes off: no probe, and Verifying says why', () => {
    const waitingFor = verificationWaitingFor('other', 'prod', true);
    expect(planVerification(base({ local: false, waitingFor }))).toMatchObject({
      verified: { reason: 'Verifying', message: waitingFor },
      createProbe: false,
    });
    expect(planVerification(base({ probe: false }))).toMatchObject({ createProbe: false });
  });
});

describe('mayCreateProbe: the plan may be a moment old', () => {
  const obj = association();
  it.each([
    ['the object as planned', { uid: 'uid-1', deleting: false }, undefined, [], true],
    ['the object is gone', undefined, undefined, [], false],
    ['the object is being deleted', { uid: 'uid-1', deleting: true }, undefined, [], false],
    ['a new object under the same name', { uid: 'uid-2', deleting: false }, undefined, [], false],
    [
      'made moments ago for this generation',
      { uid: 'uid-1', deleting: false },
      { generation: 2, at: NOW - 1000 },
      [],
      false,
    ],
    [
      'made long ago for this generation, not cached',
      { uid: 'uid-1', deleting: false },
      { generation: 2, at: NOW - PROBE_MEMORY_MS - 1 },
      [],
      true,
    ],
    ['cached for this generation', { uid: 'uid-1', deleting: false }, undefined, [probe(2)], false],
  ])('%s', (_t, now, remembered, probes, want) =>
    expect(mayCreateProbe(obj, now, remembered, probes, NOW)).toBe(want),
  );
});

describe('syncedFalseEvent', () => {
  it.each([
    ['PolicyDenied', { type: 'Warning', reason: 'PolicyDenied' }],
    ['RolePropagating', { type: 'Normal', reason: 'RolePropagating' }],
    ['Duplicate', undefined],
    ['AccessDenied', { type: 'Warning', reason: 'SyncFailed' }],
    ['DeleteFailed', { type: 'Warning', reason: 'SyncFailed' }],
  ] as const)('%s', (reason, want) => expect(syncedFalseEvent(reason)).toEqual(want));
});

describe('planStepFailure: what a failed EKS step leads to', () => {
  const input = {
    text: 'InvalidParameterException: role does not exist',
    obj: association(),
    propagation: undefined,
    now: NOW,
    rolePropagationTimeoutMs: 60_000,
    resyncMs: 300_000,
  };
  it('a role IAM has not propagated: retried soon, RolePropagating', () => {
    expect(planStepFailure({ ...input, cls: { kind: 'rolePropagating' } })).toEqual({
      result: 'retry',
      requeueAfterMs: 1000,
      rolePropagation: { generation: 2, firstErrorAt: NOW, attempts: 1 },
      synced: {
        reason: 'RolePropagating',
        message: `IAM has not propagated the role yet; retrying (${input.text})`,
      },
    });
  });
  it('still missing after the timeout: RoleNotFound, terminal until the resync', () => {
    const propagation = { generation: 2, firstErrorAt: NOW - 60_000, attempts: 6 };
    expect(planStepFailure({ ...input, propagation, cls: { kind: 'rolePropagating' } })).toEqual({
      result: 'terminal',
      requeueAfterMs: 300_000,
      rolePropagation: { ...propagation, attempts: 7 },
      synced: {
        reason: 'RoleNotFound',
        message: `the role still does not exist 60s after the first attempt: ${input.text}`,
      },
    });
  });
  it('a refusal: terminal with its reason', () => {
    const p = planStepFailure({
      ...input,
      text: 'AccessDeniedException: no',
      cls: { kind: 'terminal', reason: 'AccessDenied' },
    });
    expect(p).toMatchObject({
      result: 'terminal',
      requeueAfterMs: 300_000,
      synced: { reason: 'AccessDenied' },
    });
    expect(p.synced?.message).toContain('AccessDeniedException: no');
  });
  it('the association vanished during update or tagging: look again in a second, no write', () => {
    expect(planStepFailure({ ...input, cls: { kind: 'notFound' } })).toEqual({
      result: 'retry',
      requeueAfterMs: 1000,
    });
  });
  it("throttling or a 5xx: AWSError written, then the queue's backoff", () => {
    expect(
      planStepFailure({
        ...input,
        text: 'ThrottlingException',
        cls: { kind: 'retryable', reason: 'AWSError' },
      }),
    ).toEqual({
      result: 'retry',
      retryLater: 'ThrottlingException',
      synced: { reason: 'AWSError', message: 'ThrottlingException' },
    });
  });
});

describe('status bookkeeping', () => {
  const observed = {
    associationId: 'a-2',
    associationArn: 'arn:aws:eks:us-west-2:111122223333:podidentityassociation/c/a-2',
    externalId: 'x',
  };
  it('changedIdFields: only what status does not hold yet', () => {
    expect(
      changedIdFields(
        { clusterName: 'prod', associationID: 'a-1', associationARN: 'old', removedAssociationID: 'a-0' },
        'prod',
        observed,
      ),
    ).toEqual({
      associationID: 'a-2',
      associationARN: observed.associationArn,
      externalID: 'x',
      removedAssociationID: null,
    });
    expect(
      changedIdFields(
        {
          clusterName: 'prod',
          associationID: 'a-2',
          associationARN: observed.associationArn,
          externalID: 'x',
        },
        'prod',
        observed,
      ),
    ).toEqual({});
  });
  it.each([
    ['read moments ago', { generation: 2, at: NOW - 1000, association: { associationId: 'a-1' } }, true],
    [
      'read half a resync ago',
      { generation: 2, at: NOW - 150_000, association: { associationId: 'a-1' } },
      false,
    ],
    [
      'for another generation',
      { generation: 1, at: NOW - 1000, association: { associationId: 'a-1' } },
      false,
    ],
    [
      'for another association',
      { generation: 2, at: NOW - 1000, association: { associationId: 'a-0' } },
      false,
    ],
    ['never read', undefined, false],
  ])('lastSeenStillGood: %s', (_t, known, want) =>
    expect(lastSeenStillGood(known, association(), NOW, 300_000)).toBe(want),
  );

  it('statusUnchanged: conditions, generation and extra fields must all match', () => {
    const synced = {
      type: 'Synced',
      status: 'True' as const,
      reason: 'InSync',
      message: 'ok',
      observedGeneration: 2,
    };
    const stored = association({
      conditions: [{ ...synced, lastTransitionTime: 't' }],
      status: { observedGeneration: 2 },
    });
    expect(statusUnchanged(stored, [synced], { associationID: 'a-1' })).toBe(true);
    expect(statusUnchanged(stored, [{ ...synced, message: 'changed' }], {})).toBe(false);
    expect(statusUnchanged(stored, [synced], { associationID: 'a-2' })).toBe(false);
    expect(
      statusUnchanged(
        association({ conditions: stored.status.conditions, status: { observedGeneration: 1 } }),
        [synced],
        {},
      ),
    ).toBe(false);
  });
});
