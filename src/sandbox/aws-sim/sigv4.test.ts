import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalQuery, credentialScope, verifySigV4, type SignedRequest } from './sigv4.ts';

// Fixtures from the AWS SigV4 test suite (aws-sig-v4-test-suite: get-vanilla, get-vanilla-query-order-key-case,
// post-x-www-form-urlencoded).
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const NOW = Date.UTC(2015, 7, 30, 12, 36, 0);
const lookup = (id: string) => (id === 'AKIDEXAMPLE' ? { secretAccessKey: SECRET } : undefined);
const auth = (signedHeaders: string, sig: string) =>
  `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=${signedHeaders}, Signature=${sig}`;

const vanilla = (): SignedRequest => ({
  method: 'GET',
  path: '/',
  query: '',
  headers: {
    host: 'example.amazonaws.com',
    'x-amz-date': '20150830T123600Z',
    authorization: auth(
      'host;x-amz-date',
      '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    ),
  },
  body: Buffer.alloc(0),
});

describe('verifySigV4 against the AWS test suite', () => {
  it('get-vanilla', () => {
    expect(verifySigV4(vanilla(), lookup, NOW)).toEqual({
      ok: true,
      accessKeyId: 'AKIDEXAMPLE',
      service: 'service',
      region: 'us-east-1',
    });
  });
  it('get-vanilla-query-order-key-case', () => {
    const r = vanilla();
    r.query = 'Param2=value2&Param1=value1';
    r.headers.authorization = auth(
      'host;x-amz-date',
      'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
    );
    expect(verifySigV4(r, lookup, NOW).ok).toBe(true);
  });
  it('post-x-www-form-urlencoded', () => {
    const r: SignedRequest = {
      method: 'POST',
      path: '/',
      query: '',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        host: 'example.amazonaws.com',
        'x-amz-date': '20150830T123600Z',
        authorization: auth(
          'content-type;host;x-amz-date',
          'ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a',
        ),
      },
      body: Buffer.from('Param1=value1'),
    };
    expect(verifySigV4(r, lookup, NOW).ok).toBe(true);
    // The body is covered by the signature.
    expect(verifySigV4({ ...r, body: Buffer.from('Param1=value2') }, lookup, NOW)).toMatchObject({
      ok: false,
      kind: 'mismatch',
    });
  });
});

describe('verifySigV4 rejections', () => {
  it('accepts up to 5 minutes of skew, not more', () => {
    expect(verifySigV4(vanilla(), lookup, NOW + 299_000).ok).toBe(true);
    expect(verifySigV4(vanilla(), lookup, NOW + 301_000)).toMatchObject({ ok: false, kind: 'expired' });
    expect(verifySigV4(vanilla(), lookup, NOW - 301_000)).toMatchObject({ ok: false, kind: 'expired' });
  });
  it('rejects a changed signed header, path or method', () => {
    expect(
      verifySigV4({ ...vanilla(), headers: { ...vanilla().headers, host: 'evil.example.com' } }, lookup, NOW),
    ).toMatchObject({ ok: false, kind: 'mismatch' });
    expect(verifySigV4({ ...vanilla(), path: '/x' }, lookup, NOW)).toMatchObject({
      ok: false,
      kind: 'mismatch',
    });
    expect(verifySigV4({ ...vanilla(), method: 'POST' }, lookup, NOW)).toMatchObject({
      ok: false,
      kind: 'mismatch',
    });
  });
  it('rejects an unknown key, a wrong secret and a missing session token', () => {
    expect(verifySigV4(vanilla(), () => undefined, NOW)).toMatchObject({ ok: false, kind: 'unknownKey' });
    expect(verifySigV4(vanilla(), () => ({ secretAccessKey: 'other' }), NOW)).toMatchObject({
      ok: false,
      kind: 'mismatch',
    });
    expect(verifySigV4(vanilla(), () => ({ secretAccessKey: SECRET, sessionToken: 't' }), NOW)).toMatchObject(
      { ok: false, kind: 'badToken' },
    );
  });
  it('rejects a payload hash header that does not match the body', () => {
    const r = vanilla();
    r.headers['x-amz-content-sha256'] = createHash('sha256').update('other').digest('hex');
    expect(verifySigV4(r, lookup, NOW)).toMatchObject({ ok: false, kind: 'mismatch' });
  });
  it('requires host and x-amz-date to be signed, and every signed header present', () => {
    const r = vanilla();
    r.headers.authorization = auth(
      'x-amz-date',
      '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
    expect(verifySigV4(r, lookup, NOW)).toMatchObject({ ok: false, kind: 'incomplete' });
    const s = vanilla();
    s.headers.authorization = auth(
      'content-type;host;x-amz-date',
      '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
    expect(verifySigV4(s, lookup, NOW)).toMatchObject({ ok: false, kind: 'incomplete' });
  });
  it('rejects a scope date other than the request date, and a missing header', () => {
    const r = vanilla();
    r.headers['x-amz-date'] = '20150831T123600Z';
    expect(verifySigV4(r, lookup, Date.UTC(2015, 7, 31, 12, 36))).toMatchObject({
      ok: false,
      kind: 'mismatch',
    });
    expect(verifySigV4({ ...vanilla(), headers: { host: 'h' } }, lookup, NOW)).toMatchObject({
      ok: false,
      kind: 'missing',
    });
  });
});

describe('helpers', () => {
  it('parses the credential scope for routing', () => {
    expect(credentialScope(vanilla().headers.authorization as string)).toEqual({
      accessKeyId: 'AKIDEXAMPLE',
      region: 'us-east-1',
      service: 'service',
    });
    expect(credentialScope('Bearer x')).toBeUndefined();
  });
  it('sorts and re-escapes the query', () => {
    expect(canonicalQuery('b=2&a=%2F&a=1&c')).toBe('a=%2F&a=1&b=2&c=');
  });
});
