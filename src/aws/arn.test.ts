import { describe, expect, it } from 'vitest';
import { parseAssumedRoleArn, parseRoleArn, roleArnFromAssumed, roleArnMatches } from './arn.ts';

describe('roleArnMatches (verification.md §6)', () => {
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
