import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import type { ResolvedIdentity } from '../identity/sources.ts';
import { decideGate } from './gate.ts';
import { PolicyCompiler, EMPTY_POLICY_SET } from './policy.ts';
import { buildVerifiedIdentity, canonicalJson, fingerprintOf, normaliseConfigMapEntry, verifiedEntryTrusted, verifiedIdentityName } from './verified-identity.ts';

const NOW = Date.parse('2026-11-23T12:00:00Z');
const ROLE = 'arn:aws:iam::111122223333:role/team-a/uploader';
const identity = (over: Partial<ResolvedIdentity> = {}): ResolvedIdentity => ({
  namespace: 'team-a', serviceAccount: 'uploader', mode: 'ContainerCredentials', source: 'association', roleARN: ROLE,
  audience: 'pods.eks.amazonaws.com',
  fingerprint: { source: 'association', uid: 'u1', associationID: 'a-1', roleARN: ROLE, disableSessionTags: false }, ...over,
});
const pod = (over: Record<string, unknown> = {}) => ({ metadata: { name: 'p', namespace: 'team-a', annotations: {} }, spec: { containers: [] }, ...over });
const viFor = (id: ResolvedIdentity, expiresInMs: number, fp = fingerprintOf(id.fingerprint)) =>
  buildVerifiedIdentity({ namespace: id.namespace, id, fingerprint: fp, assumedRoleARN: 'arn:aws:sts::111122223333:assumed-role/uploader/s',
    verifiedAtMs: NOW - 1000, ttlMs: expiresInMs + 1000, podName: 'p0' });

describe('VerifiedIdentity name and fingerprint (§8)', () => {
  it('names by mode prefix and 20 hex digits of the identity hash', () => {
    const h = createHash('sha256').update(`uploader\n${ROLE}\n\npods.eks.amazonaws.com`).digest('hex').slice(0, 20);
    expect(verifiedIdentityName(identity())).toBe(`cc-${h}`);
    expect(verifiedIdentityName(identity({ mode: 'WebIdentity' }))).toBe(`wi-${h}`);
    expect(verifiedIdentityName(identity({ audience: 'x' }))).not.toBe(`cc-${h}`);
    expect(verifiedIdentityName(identity({ targetRoleARN: 'arn:aws:iam::4:role/t' }))).not.toBe(`cc-${h}`);
  });
  it('fingerprint changes with every covered field', () => {
    const base = fingerprintOf({ source: 'service_account', saUid: 'u', roleARN: ROLE, audience: 'sts.amazonaws.com', regionalSts: false });
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    for (const f of [
      { source: 'service_account', saUid: 'u2', roleARN: ROLE, audience: 'sts.amazonaws.com', regionalSts: false },
      { source: 'service_account', saUid: 'u', roleARN: ROLE + 'x', audience: 'sts.amazonaws.com', regionalSts: false },
      { source: 'service_account', saUid: 'u', roleARN: ROLE, audience: 'other', regionalSts: false },
      { source: 'service_account', saUid: 'u', roleARN: ROLE, audience: 'sts.amazonaws.com', regionalSts: true },
    ] as const) expect(fingerprintOf(f)).not.toBe(base);
    const a = { source: 'association', uid: 'u', associationID: 'a-1', roleARN: ROLE, disableSessionTags: false } as const;
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

describe('decideGate (§7 rows 1-6)', () => {
  const policies = new PolicyCompiler().compileAll([{ metadata: { name: 'p', uid: 'p', generation: 1 }, spec: { rules: [
    { namespaceSelector: { matchLabels: { team: 'a' } }, serviceAccounts: ['*'], roles: ['arn:aws:iam::111122223333:role/team-a/*'] }] } }]);
  const base = { policies: EMPTY_POLICY_SET, namespaceLabels: { team: 'a' }, verified: undefined, gateEnabled: true, allowOptOut: true, nowMs: NOW };
  const optOut = pod({ metadata: { name: 'p', annotations: { 'lanyard.dev/verify': 'false' } } });
  it.each([
    ['denied by policy wins over everything', { policies, identity: identity({ roleARN: 'arn:aws:iam::111122223333:role/admin' }), pod: optOut },
      { kind: 'deny', message: 'lanyard: no IdentityPolicy allows namespace "team-a" ServiceAccount "uploader" to use role "arn:aws:iam::111122223333:role/admin"' }],
    ['allowed by policy, gate on', { policies, identity: identity(), pod: pod() }, { kind: 'allow', gate: true }],
    ['gate flag off', { gateEnabled: false, identity: identity(), pod: pod() }, { kind: 'allow', gate: false }],
    ['opt-out honoured', { identity: identity(), pod: optOut }, { kind: 'allow', gate: false, skipReason: 'opt_out' }],
    ['opt-out disabled', { allowOptOut: false, identity: identity(), pod: optOut }, { kind: 'allow', gate: true }],
    ['opt-out needs exactly "false"', { identity: identity(), pod: pod({ metadata: { annotations: { 'lanyard.dev/verify': 'no' } } }) }, { kind: 'allow', gate: true }],
    ['prebound', { identity: identity(), pod: pod({ spec: { nodeName: 'n1' } }) }, { kind: 'allow', gate: false, skipReason: 'prebound' }],
    ['verified', { identity: identity(), pod: pod(), verified: viFor(identity(), 60_000) }, { kind: 'allow', gate: false, skipReason: 'verified' }],
    ['verified but near expiry', { identity: identity(), pod: pod(), verified: viFor(identity(), 4_000) }, { kind: 'allow', gate: true }],
    ['verified but source changed', { identity: identity(), pod: pod(), verified: viFor(identity(), 60_000, 'e'.repeat(64)) }, { kind: 'allow', gate: true }],
  ])('%s', (_n, over, want) => {
    expect(decideGate({ ...base, ...over } as Parameters<typeof decideGate>[0])).toEqual(want);
  });
});
