// The verifier's pure decisions (docs/verified-start.md): what an exchange proves, when the verified set releases,
// which entries are stale, and what a failed attempt does.
import { describe, expect, it } from 'vitest';
import {
  associationResult,
  judgeExchange,
  planFailure,
  staleVerifiedEntry,
  verifiedSetHit,
  type GroupFailures,
} from './verifier-decide.ts';
import type { CurrentIdentity, IdentityGroup } from './verifier-gather.ts';
import type { GatedPod } from './pod.ts';
import { buildVerifiedIdentity, verifiedIdentityName } from './verified-identity.ts';

const ROLE = 'arn:aws:iam::111122223333:role/app';
const TARGET = 'arn:aws:iam::444455556666:role/target';
const ASSUMED = 'arn:aws:sts::111122223333:assumed-role/app/lanyard-verify-1';
const WEB: IdentityGroup = {
  namespace: 'ns',
  serviceAccount: 'sa',
  mode: 'WebIdentity',
  roleARN: ROLE,
  audience: 'sts.amazonaws.com',
};
const CC: IdentityGroup = {
  namespace: 'ns',
  serviceAccount: 'sa',
  mode: 'ContainerCredentials',
  roleARN: '',
  audience: 'pods.eks.amazonaws.com',
};
const webCurrent: CurrentIdentity = {
  namespace: 'ns',
  fingerprint: 'f1',
  key: { mode: 'WebIdentity', serviceAccount: 'sa', roleARN: ROLE, audience: 'sts.amazonaws.com' },
};
const ccCurrent = (
  o: { roleARN?: string; targetRoleARN?: string; associationID?: string } = {},
): CurrentIdentity => ({
  namespace: 'ns',
  fingerprint: 'f2',
  key: {
    mode: 'ContainerCredentials',
    serviceAccount: 'sa',
    roleARN: o.roleARN,
    targetRoleARN: o.targetRoleARN,
    audience: 'pods.eks.amazonaws.com',
  },
  association: o.associationID
    ? ({
        associationID: o.associationID,
        roleARN: o.roleARN ?? ROLE,
        targetRoleARN: o.targetRoleARN,
      } as CurrentIdentity['association'])
    : undefined,
});

describe('judgeExchange: what an exchange answer proves', () => {
  const cases: Array<
    [
      string,
      IdentityGroup,
      CurrentIdentity,
      Parameters<typeof judgeExchange>[2],
      ReturnType<typeof judgeExchange>,
    ]
  > = [
    ['web identity, the declared role', WEB, webCurrent, { assumedRoleArn: ASSUMED }, { ok: true }],
    [
      'web identity, another role',
      WEB,
      webCurrent,
      { assumedRoleArn: 'arn:aws:sts::111122223333:assumed-role/other/x' },
      {
        ok: false,
        message: `WebIdentity exchange returned another role: expected ${ROLE}, actual arn:aws:sts::111122223333:assumed-role/other/x`,
      },
    ],
    [
      'eks-auth answering for another ServiceAccount',
      CC,
      ccCurrent({ roleARN: ROLE, associationID: 'a-1' }),
      {
        assumedRoleArn: ASSUMED,
        subject: { namespace: 'ns', serviceAccount: 'other' },
        associationId: 'a-1',
      },
      {
        ok: false,
        message: `ContainerCredentials exchange for role ${ROLE} answered for ns/other, not ns/sa`,
      },
    ],
    [
      'eks-auth through a stale association',
      CC,
      ccCurrent({ roleARN: ROLE, associationID: 'a-2' }),
      { assumedRoleArn: ASSUMED, subject: { namespace: 'ns', serviceAccount: 'sa' }, associationId: 'a-1' },
      {
        ok: false,
        message: `ContainerCredentials exchange for role ${ROLE} used association a-1, not a-2 (stale)`,
      },
    ],
    [
      'eks-auth with a target role: the target is the effective role',
      CC,
      ccCurrent({ roleARN: ROLE, targetRoleARN: TARGET, associationID: 'a-1' }),
      { assumedRoleArn: ASSUMED, subject: { namespace: 'ns', serviceAccount: 'sa' }, associationId: 'a-1' },
      {
        ok: false,
        message: `ContainerCredentials exchange returned another role: expected ${TARGET}, actual ${ASSUMED}`,
      },
    ],
    [
      'no declared role (identities file): the answer names it',
      CC,
      ccCurrent(),
      { assumedRoleArn: ASSUMED, subject: { namespace: 'ns', serviceAccount: 'sa' }, associationId: 'x' },
      { ok: true, learntRole: ROLE },
    ],
    [
      'no declared role and an answer that is no assumed-role ARN',
      CC,
      ccCurrent(),
      {
        assumedRoleArn: 'arn:aws:iam::111122223333:user/u',
        subject: { namespace: 'ns', serviceAccount: 'sa' },
      },
      {
        ok: false,
        message:
          'ContainerCredentials exchange returned arn:aws:iam::111122223333:user/u, which is not an assumed-role ARN',
      },
    ],
  ];
  it.each(cases)('%s', (_name, g, cur, answer, want) => {
    expect(judgeExchange(g, cur, answer)).toEqual(want);
  });
});

describe('verifiedSetHit and staleVerifiedEntry: the verified set', () => {
  const NOW = Date.parse('2026-12-03T04:00:00Z');
  const entry = (
    o: { fingerprint?: string; ttlMs?: number; assumed?: string; key?: CurrentIdentity['key'] } = {},
  ) =>
    buildVerifiedIdentity({
      namespace: 'ns',
      id: o.key ?? webCurrent.key,
      fingerprint: o.fingerprint ?? 'f1',
      assumedRoleARN: o.assumed ?? ASSUMED,
      verifiedAtMs: NOW - 1000,
      ttlMs: o.ttlMs ?? 3_600_000,
      podName: 'p',
    });

  it('a fresh entry with the current fingerprint releases, named as the identity', () => {
    expect(verifiedSetHit(entry(), webCurrent, NOW)).toEqual({
      name: verifiedIdentityName(webCurrent.key),
      learntRole: undefined,
    });
  });
  it('an entry of another fingerprint, an expired entry, or sources that no longer resolve do not', () => {
    expect(verifiedSetHit(entry({ fingerprint: 'other' }), webCurrent, NOW)).toBeUndefined();
    expect(verifiedSetHit(entry({ ttlMs: 500 }), webCurrent, NOW)).toBeUndefined();
    expect(verifiedSetHit(entry(), { ...webCurrent, fingerprint: undefined }, NOW)).toBeUndefined();
  });
  it('an identity without a declared role learns it from the entry', () => {
    const cur = ccCurrent();
    const vi = entry({ key: cur.key, fingerprint: 'f2' });
    expect(verifiedSetHit(vi, cur, NOW)?.learntRole).toBe(ROLE);
  });
  it('an entry is stale when expired or when its sources resolve to another fingerprint', () => {
    const same = () => webCurrent;
    expect(staleVerifiedEntry(entry(), NOW, same)).toBeUndefined();
    expect(staleVerifiedEntry(entry({ ttlMs: 500 }), NOW, same)).toBe('expired');
    expect(staleVerifiedEntry(entry(), NOW, () => ({ ...webCurrent, fingerprint: 'changed' }))).toBe(
      'identity source changed',
    );
  });
});

describe('planFailure: what a failed attempt does', () => {
  const NOW = 1_000_000;
  const settings = {
    verifyDeadlineMs: 60_000,
    verifyRetryAfterDeadlineMs: 300_000,
    verifyBackoffInitialMs: 1000,
    verifyBackoffMaxMs: 10_000,
  };
  const pod = (name: string, ageMs: number, verification?: string): GatedPod => ({
    namespace: 'ns',
    name,
    uid: name,
    resourceVersion: '1',
    serviceAccount: 'sa',
    creationMs: NOW - ageMs,
    deleting: false,
    gateIndex: 0,
    verification,
    hasAnnotations: true,
    declared: [{ mode: 'WebIdentity', roleARN: ROLE, audience: '' }],
  });
  const fresh = (failures = 1): GroupFailures => ({ failures, notified: new Map() });
  const plan = (st: GroupFailures, pods: GatedPod[], o: Partial<Parameters<typeof planFailure>[0]> = {}) =>
    planFailure({
      st,
      pods,
      outcome: 'aws_error',
      message: 'boom (request id abc)',
      throttled: false,
      now: NOW,
      settings,
      random: () => 0.5,
      podKey: (p) => `${p.namespace}/${p.name}`,
      ...o,
    });

  it('notifies each Pod once per text and minute; request ids do not make a new text', () => {
    const st = fresh();
    expect(plan(st, [pod('a', 1000)]).notify.map((p) => p.name)).toEqual(['a']);
    expect(plan(st, [pod('a', 1000)], { message: 'boom (request id other)' }).notify).toEqual([]);
    expect(plan(st, [pod('a', 1000)], { message: 'another error' }).notify.map((p) => p.name)).toEqual(['a']);
    expect(
      plan(st, [pod('a', 1000)], { message: 'another error', now: NOW + 60_000 }).notify.map((p) => p.name),
    ).toEqual(['a']);
  });
  it('before the deadline: exponential backoff (jitter centred), capped by the nearest deadline', () => {
    expect(plan(fresh(1), [pod('a', 1000)]).requeueAfterMs).toBe(1000);
    expect(plan(fresh(3), [pod('a', 1000)]).requeueAfterMs).toBe(4000);
    expect(plan(fresh(10), [pod('a', 1000)]).requeueAfterMs).toBe(10_000);
    expect(plan(fresh(10), [pod('a', 55_000)]).requeueAfterMs).toBe(5001);
  });
  it('a policy denial waits for the deadline only (a policy change requeues at once)', () => {
    expect(plan(fresh(1), [pod('a', 50_000)], { outcome: 'policy_denied' }).requeueAfterMs).toBe(10_001);
  });
  it('past the deadline: Pods not yet failed time out; retries slow to the after-deadline pace', () => {
    const r = plan(fresh(1), [pod('old', 70_000), pod('marked', 70_000, 'failed')]);
    expect(r.timedOut.map((p) => p.name)).toEqual(['old']);
    expect(r.requeueAfterMs).toBe(300_000);
    expect(r.gist).toBe('boom');
  });
  it('the association report of a failure: none for a policy denial', () => {
    expect(associationResult('mismatch')).toBe('RoleMismatch');
    expect(associationResult('aws_error')).toBe('ExchangeFailed');
    expect(associationResult('token_error')).toBe('ExchangeFailed');
    expect(associationResult('policy_denied')).toBeUndefined();
  });
});
