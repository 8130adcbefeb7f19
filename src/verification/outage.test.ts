import { describe, expect, it } from 'vitest';
import { classifyExchangeFailure, decideOutageRelease, type OutageInput } from './outage.ts';

// docs/verified-start.md, "When AWS is down": which failures count as an outage.
describe('classifyExchangeFailure', () => {
  it.each([
    ['ThrottlingException', 400, 'outage'],
    ['Throttling', 400, 'outage'],
    ['TooManyRequestsException', 429, 'outage'],
    ['ServiceUnavailable', 503, 'outage'],
    ['InternalServerError', 500, 'outage'],
    ['TimeoutError', 0, 'outage'],
    ['ECONNRESET', 0, 'outage'],
    ['AccessDenied', 403, 'answer'],
    ['AccessDeniedException', 403, 'answer'],
    ['ResourceNotFoundException', 404, 'answer'],
    ['InvalidIdentityToken', 400, 'answer'],
    ['ExpiredTokenException', 400, 'answer'],
  ] as const)('%s (%i) is %s', (code, httpStatus, want) => {
    expect(classifyExchangeFailure({ code, httpStatus })).toBe(want);
  });
});

// docs/adr/0309: released only while AWS is unavailable, for an identity proven recently with unchanged sources.
describe('decideOutageRelease', () => {
  const NOW = 10_000_000;
  const base: OutageInput = {
    policy: 'release-recently-proven',
    graceMs: 3_600_000,
    nowMs: NOW,
    failure: 'outage',
    fingerprint: 'f1',
    lastProof: { fingerprint: 'f1', verifiedAtMs: NOW - 1_800_000 },
  };
  it.each<[string, Partial<OutageInput>, unknown]>([
    ['proven 30 min ago, throttled: released', {}, { release: true, provenAgoMs: 1_800_000 }],
    [
      'proven exactly at the edge of the window',
      { lastProof: { fingerprint: 'f1', verifiedAtMs: NOW - 3_600_000 } },
      { release: true, provenAgoMs: 3_600_000 },
    ],
    ['policy hold', { policy: 'hold' }, { release: false, why: 'policy_hold' }],
    [
      'AWS answered no (AccessDenied, not found, mismatch)',
      { failure: 'answer' },
      { release: false, why: 'not_an_outage' },
    ],
    ['no AWS answer stage (token, policy)', { failure: undefined }, { release: false, why: 'not_an_outage' }],
    ['never proven', { lastProof: undefined }, { release: false, why: 'never_proven' }],
    [
      'proof with an unreadable time',
      { lastProof: { fingerprint: 'f1', verifiedAtMs: Number.NaN } },
      { release: false, why: 'never_proven' },
    ],
    ['sources changed since the proof', { fingerprint: 'f2' }, { release: false, why: 'sources_changed' }],
    ['fingerprint not computable', { fingerprint: undefined }, { release: false, why: 'sources_changed' }],
    [
      'proven before the window',
      { lastProof: { fingerprint: 'f1', verifiedAtMs: NOW - 3_600_001 } },
      { release: false, why: 'proof_too_old' },
    ],
    [
      'proof in the future (clock skew)',
      { lastProof: { fingerprint: 'f1', verifiedAtMs: NOW + 1 } },
      { release: false, why: 'proof_too_old' },
    ],
    ['grace 0 releases nothing older than now', { graceMs: 0 }, { release: false, why: 'proof_too_old' }],
  ])('%s', (_t, over, want) => {
    expect(decideOutageRelease({ ...base, ...over })).toEqual(want);
  });
});
