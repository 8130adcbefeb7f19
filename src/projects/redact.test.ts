import { describe, expect, it } from 'vitest';
import { redactTokenSecret, REDACTED_BASE64 } from './redact.ts';
import { tokenSecret } from './objects.ts';

describe('redactTokenSecret', () => {
  it('replaces data.token and the last-applied annotation, keeps ca.crt and namespace, and copies', () => {
    const s = tokenSecret({ project: 'shop', name: 'ci-token', account: { name: 'ci-bot', uid: 'u1' } });
    s.data = {
      token: Buffer.from('eyJhbGciOi.secret').toString('base64'),
      'ca.crt': 'Q0E=',
      namespace: 'c2hvcA==',
    };
    s.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'] = '{"data":{"token":"x"}}';
    const r = redactTokenSecret(s);
    expect(REDACTED_BASE64).toBe('bGFueWFyZDpyZWRhY3RlZA==');
    expect(r.data).toEqual({ token: 'bGFueWFyZDpyZWRhY3RlZA==', 'ca.crt': 'Q0E=', namespace: 'c2hvcA==' });
    expect(r.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']).toBe(
      'lanyard:redacted',
    );
    expect(s.data.token).not.toBe(REDACTED_BASE64);
  });
  it('leaves a Secret without a token alone', () => {
    const s = { metadata: { name: 'x' } };
    expect(redactTokenSecret(s)).toEqual(s);
  });
});

describe('tokenSecret', () => {
  it('is exactly the token Secret documented in docs/projects-and-tokens.md#4-mint-a-token', () => {
    expect(
      tokenSecret({ project: 'shop', name: 'ci-token', account: { name: 'ci-bot', uid: '6f1c' } }),
    ).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/service-account-token',
      metadata: {
        name: 'ci-token',
        namespace: 'shop',
        labels: { 'rbac.lanyard.dev/service-account-token': 'true' },
        annotations: {
          'kubernetes.io/service-account.name': 'ci-bot',
          'kubernetes.io/service-account.uid': '6f1c',
          'rbac.lanyard.dev/managed': 'true',
        },
        ownerReferences: [{ apiVersion: 'v1', kind: 'ServiceAccount', name: 'ci-bot', uid: '6f1c' }],
      },
    });
  });
});
