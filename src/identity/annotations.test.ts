import { describe, expect, it } from 'vitest';
import {
  composeRoleArn,
  NO_SETTINGS,
  parseGoBool,
  parseServiceAccount,
  parseSkipContainers,
  parseTokenExpiration,
  partitionForRegion,
} from './annotations.ts';
import { configMapKeyProblem, parseConfigMapDocument, parseIdentitiesFile } from './configmap.ts';

describe('annotation parsing (docs/webhook.md#annotations)', () => {
  it.each([
    ['1', true],
    ['t', true],
    ['T', true],
    ['TRUE', true],
    ['true', true],
    ['True', true],
    ['0', false],
    ['f', false],
    ['F', false],
    ['FALSE', false],
    ['false', false],
    ['False', false],
    ['yes', undefined],
    ['', undefined],
    [' true', undefined],
    ['tRUE', undefined],
  ])('Go ParseBool %j → %j', (v, want) => expect(parseGoBool(v)).toBe(want));

  it.each([
    ['3600', 3600],
    ['+3600', 3600],
    ['599', 600],
    ['-5', 600],
    ['0', 600],
    ['86400', 86400],
    ['4294967296', 4294967296],
    ['4294967297', undefined],
    ['1h', undefined],
    [' 3600', undefined],
    ['36.5', undefined],
    ['', undefined],
  ])('token-expiration %j → %j', (v, want) => expect(parseTokenExpiration(v)).toBe(want));

  it.each([
    ['a,b', ['a', 'b']],
    ['a, b', ['a', 'b']],
    ['"a", " b "', ['a', 'b']],
    [' , a,,', ['a']],
    ['""', []],
  ])('skip-containers %j', (v, want) => expect([...parseSkipContainers(v)]).toEqual(want));

  it.each([
    ['us-east-1', 'aws'],
    ['cn-north-1', 'aws-cn'],
    ['us-gov-west-1', 'aws-us-gov'],
    ['us-iso-east-1', 'aws-iso'],
    ['us-isob-east-1', 'aws-iso-b'],
    ['eusc-de-east-1', 'aws-eusc'],
  ])('partition of %s is %s', (r, p) => expect(partitionForRegion(r)).toBe(p));

  it('composes a role ARN only without "arn:"', () => {
    const c = { partition: 'aws-cn', accountId: '111122223333' };
    expect(composeRoleArn('path/app', c)).toBe('arn:aws-cn:iam::111122223333:role/path/app');
    expect(composeRoleArn('arn:aws:iam::1:role/x', c)).toBe('arn:aws:iam::1:role/x');
    expect(composeRoleArn('app', undefined)).toBe('app');
  });

  it('keeps only prefixed settings; unannotated SAs share one value', () => {
    expect(
      parseServiceAccount({ metadata: { name: 'a', annotations: { other: 'x' } } }, 'eks.amazonaws.com'),
    ).toBe(NO_SETTINGS);
    expect(parseServiceAccount({ metadata: { name: 'a' } }, 'eks.amazonaws.com')).toBe(NO_SETTINGS);
    const s = parseServiceAccount(
      {
        metadata: {
          uid: 'u1',
          annotations: {
            'eks.amazonaws.com/role-arn': 'not-an-arn',
            'eks.amazonaws.com/audience': '',
            'eks.amazonaws.com/sts-regional-endpoints': 'bogus',
            'eks.amazonaws.com/token-expiration': '100',
          },
        },
      },
      'eks.amazonaws.com',
    );
    expect(s).toEqual({
      uid: 'u1',
      roleARN: 'not-an-arn',
      roleArnProblem: expect.stringContaining('must be an IAM role ARN'),
      audience: '',
      tokenExpiration: 600,
      invalid: ['eks.amazonaws.com/sts-regional-endpoints'],
    });
  });

  it('an empty role-arn is no role; a custom prefix is honoured', () => {
    const s = parseServiceAccount({ metadata: { uid: 'u', annotations: { 'x.io/role-arn': '' } } }, 'x.io');
    expect(s.roleARN).toBeUndefined();
    const t = parseServiceAccount(
      { metadata: { uid: 'u', annotations: { 'x.io/role-arn': 'arn:aws:iam::111122223333:role/a' } } },
      'x.io',
    );
    expect(t).toEqual({ uid: 'u', roleARN: 'arn:aws:iam::111122223333:role/a' });
  });
});

describe('kOps ConfigMap document (docs/webhook.md#the-kops-configmap)', () => {
  it.each([
    ['team-a/uploader', undefined],
    ['*/reader', undefined],
    ['ns/sa.with.dots', undefined],
    ['nodash', 'exactly one'],
    ['a/b/c', 'exactly one'],
    ['test-*/x', 'DNS-1123 label'],
    ['Team/x', 'DNS-1123 label'],
    ['ns/UPPER', 'DNS-1123 subdomain'],
    ['ns/', 'DNS-1123 subdomain'],
  ])('key %j', (k, problem) => {
    const p = configMapKeyProblem(k);
    if (problem) expect(p).toContain(problem);
    else expect(p).toBeUndefined();
  });

  it('matches field names case-insensitively, later duplicates win, null is absent, unknown ignored', () => {
    const r = parseConfigMapDocument(
      '{"a/b":{"roleArn":"x","RoleARN":"y","audience":null,"UseRegionalSTS":true,"tokenexpiration":3600,"Extra":1}}',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const e = r.table.get('a/b')!;
    expect(e).toMatchObject({ roleARN: 'y', useRegionalSTS: true, tokenExpiration: 3600 });
    expect(e.audience).toBeUndefined();
    expect(JSON.parse(e.canonical)).toEqual({
      RoleARN: 'y',
      Audience: null,
      UseRegionalSTS: true,
      TokenExpiration: 3600,
    });
  });

  it('skips bad keys and bad entries, keeping the previous valid entry of that key', () => {
    const first = parseConfigMapDocument('{"a/b":{"RoleARN":"r1"},"c/d":{"RoleARN":"r2"}}');
    if (!first.ok) throw new Error('first');
    const r = parseConfigMapDocument(
      '{"a/b":{"RoleARN":5},"c/d":"oops","nokey":{},"e/f":{"RoleARN":"r3","UseRegionalSTS":"yes"}}',
      first.table,
    );
    if (!r.ok) throw new Error('second');
    expect(r.table.get('a/b')?.roleARN).toBe('r1');
    expect(r.table.get('c/d')?.roleARN).toBe('r2');
    expect(r.table.has('e/f')).toBe(false);
    expect(r.warnings.map((w) => w.key).sort()).toEqual(['a/b', 'c/d', 'e/f', 'nokey']);
  });

  it('rebuilds the whole table on update and empties it without a config key', () => {
    const first = parseConfigMapDocument('{"a/b":{"RoleARN":"r1"}}');
    if (!first.ok) throw new Error();
    const second = parseConfigMapDocument('{"c/d":{"RoleARN":"r2"}}', first.table);
    if (!second.ok) throw new Error();
    expect([...second.table.keys()]).toEqual(['c/d']);
    const none = parseConfigMapDocument(undefined, second.table);
    expect(none.ok && none.table.size).toBe(0);
  });

  it.each(['{bad', '[]', '"s"', 'null', '', '5'])('refuses the document %j', (t) => {
    expect(parseConfigMapDocument(t).ok).toBe(false);
  });

  it('rejects non-integer TokenExpiration', () => {
    const r = parseConfigMapDocument('{"a/b":{"RoleARN":"r","TokenExpiration":1.5}}');
    expect(r.ok && r.table.has('a/b')).toBe(false);
  });
});

describe('identities file (docs/webhook.md#the-identities-file-eks-pod-identity)', () => {
  it('reads pairs, case-insensitive keys, skips incomplete items', () => {
    const r = parseIdentitiesFile(
      '{"Identities":[{"NAMESPACE":"a","serviceaccount":"b","x":1},{"namespace":"c"},5]}',
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect([...r.pairs]).toEqual(['a/b']);
    expect(r.warnings).toHaveLength(2);
  });
  it.each([[undefined], [''], ['  \n']])('missing or blank %j is the empty set', (t) => {
    const r = parseIdentitiesFile(t);
    expect(r.ok && r.pairs.size).toBe(0);
  });
  it.each(['{', '[]', '{"identities":{}}'])('invalid %j', (t) =>
    expect(parseIdentitiesFile(t).ok).toBe(false),
  );
});
