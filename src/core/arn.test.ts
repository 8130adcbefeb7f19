import { describe, expect, it } from 'vitest';
import {
  ROLE_ARN_MAX,
  checkRoleArn,
  parseAssumedRoleArn,
  parseRoleArn,
  roleArnFromAssumed,
  roleArnMatches,
} from './arn.ts';

describe('roleArnMatches (docs/verified-start.md#role-arns)', () => {
  const rows: Array<[string, string, boolean, string]> = [
    [
      'arn:aws:iam::111122223333:role/team-a/uploader',
      'arn:aws:sts::111122223333:assumed-role/uploader/eks-prod-web-7d9f-abc',
      true,
      'path ignored',
    ],
    [
      'arn:aws:iam::111122223333:role/app',
      'arn:aws:sts::111122223333:assumed-role/app-admin/s1',
      false,
      'no substrings',
    ],
    ['arn:aws:iam::111122223333:role/app', 'arn:aws:sts::999999999999:assumed-role/app/s1', false, 'account'],
    [
      'arn:aws-cn:iam::111122223333:role/app',
      'arn:aws:sts::111122223333:assumed-role/app/s1',
      false,
      'partition',
    ],
    [
      'arn:aws:iam::111122223333:role/app',
      'arn:aws:sts::111122223333:assumed-role/node-group-role/i-0abc',
      false,
      'node role',
    ],
    [
      'arn:aws:iam::111122223333:role/App',
      'arn:aws:sts::111122223333:assumed-role/app/s1',
      true,
      'case-insensitive name',
    ],
    [
      'arn:aws:sts::111122223333:assumed-role/app/other',
      'arn:aws:sts::111122223333:assumed-role/app/s1',
      true,
      'expected assumed-role ARN, session ignored',
    ],
    ['arn:aws:iam::111122223333:role/app', 'arn:aws:iam::111122223333:user/app', false, 'user is a mismatch'],
    ['arn:aws:iam::111122223333:role/app', 'arn:aws:iam::111122223333:root', false, 'root is a mismatch'],
    [
      'arn:aws:iam::111122223333:role/app',
      'arn:aws:sts::111122223333:federated-user/app',
      false,
      'federated user',
    ],
    ['arn:aws:iam::111122223333:role/app', 'garbage', false, 'malformed actual'],
    ['not-an-arn', 'arn:aws:sts::111122223333:assumed-role/app/s1', false, 'malformed expected'],
    ['arn:aws:iam::111122223333:role/app', 'arn:aws:iam::111122223333:role/app', false, 'role ARN as actual'],
  ];
  it.each(rows)('%s vs %s -> %s (%s)', (expected, actual, result) => {
    expect(roleArnMatches(expected, actual)).toBe(result);
  });
});

describe('parsers', () => {
  it('parses role ARNs with and without path', () => {
    expect(parseRoleArn('arn:aws:iam::111122223333:role/team-a/x/uploader')).toEqual({
      partition: 'aws',
      account: '111122223333',
      path: '/team-a/x/',
      name: 'uploader',
    });
    expect(parseRoleArn('arn:aws:iam::111122223333:role/app')?.path).toBe('/');
    expect(parseRoleArn('arn:aws:iam::11112222333:role/app')).toBeUndefined();
    expect(parseRoleArn('arn:aws:iam::111122223333:role/')).toBeUndefined();
  });
  it('parses assumed-role ARNs and rebuilds the role ARN', () => {
    expect(parseAssumedRoleArn('arn:aws:sts::111122223333:assumed-role/app/s-1@x')).toEqual({
      partition: 'aws',
      account: '111122223333',
      roleName: 'app',
      sessionName: 's-1@x',
    });
    expect(parseAssumedRoleArn('arn:aws:sts::111122223333:assumed-role/app')).toBeUndefined();
    expect(roleArnFromAssumed('arn:aws-cn:sts::111122223333:assumed-role/app/s')).toBe(
      'arn:aws-cn:iam::111122223333:role/app',
    );
  });
});

describe('checkRoleArn: IAM grammar and limits', () => {
  const name64 = 'n'.repeat(64);
  const path512 = `/${'p'.repeat(510)}/`;
  it.each([
    ['arn:aws:iam::111122223333:role/app', true],
    ['arn:aws-us-gov:iam::111122223333:role/team-a/deep/path/app+=,.@_-', true],
    [`arn:aws:iam::111122223333:role${path512}${name64}`, true],
    ['arn:aws:iam::111122223333:role/', false],
    ['arn:aws:iam::11112222333:role/app', false],
    ['arn:aws:iam::111122223333:user/app', false],
    ['arn:aws:iam::111122223333:role/a b', false],
    ['arn:aws:iam::111122223333:role/pa th/app', false],
    ['arn:aws:s3:::bucket', false],
    ['app', false],
  ])('%s is valid: %s', (arn, ok) => expect(checkRoleArn(arn).ok).toBe(ok));

  it('refuses a 65-character name and a 513-character path, naming the limit', () => {
    expect(checkRoleArn(`arn:aws:iam::111122223333:role/${'n'.repeat(65)}`)).toEqual({
      ok: false,
      rule: 'role name is 65 characters; IAM allows at most 64',
    });
    expect(checkRoleArn(`arn:aws:iam::111122223333:role/${'p'.repeat(512)}/app`)).toEqual({
      ok: false,
      rule: 'role path is 514 characters; IAM allows at most 512',
    });
  });

  it('refuses a 100 KB value by its length, before parsing it', () => {
    const r = checkRoleArn(`arn:aws:iam::${':role/-'.repeat(15_000)}x`);
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.rule).toBe(
        `is 105014 characters; an IAM role ARN has at most ${ROLE_ARN_MAX} (name 64, path 512)`,
      );
  });

  it('parses the path and name', () => {
    expect(parseRoleArn('arn:aws:iam::111122223333:role/a/b/app')).toEqual({
      partition: 'aws',
      account: '111122223333',
      path: '/a/b/',
      name: 'app',
    });
    expect(parseRoleArn('arn:aws:iam::111122223333:role/app')?.path).toBe('/');
  });
});
