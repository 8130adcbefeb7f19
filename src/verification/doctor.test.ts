import { describe, expect, it } from 'vitest';
import { policyFindings } from './doctor.ts';
import type { IdentityPolicy, IdentityPolicyRule } from './types.ts';

/** An IdentityPolicy whose rules are whatever the test puts there, invalid ones too. */
const pol = (name: string, rules: unknown[]): IdentityPolicy => ({
  metadata: { name, uid: name, generation: 1 },
  spec: { rules: rules as IdentityPolicyRule[] },
});
const inUse = [
  {
    object: 'serviceaccount a/x',
    namespace: 'a',
    serviceAccount: 'x',
    roleARN: 'arn:aws:iam::1:role/team-a-x',
  },
  {
    object: 'podidentityassociation b/y',
    namespace: 'b',
    serviceAccount: 'y',
    roleARN: 'arn:aws:iam::1:role/admin',
  },
];
const labels = new Map([
  ['a', { team: 'a' }],
  ['b', { team: 'b' }],
]);

describe('policy doctor findings', () => {
  it('warns when no policy exists', () => {
    expect(policyFindings([], [], labels, false)).toEqual([
      expect.objectContaining({ level: 'warning', object: 'identitypolicies' }),
    ]);
  });
  it('reports an invalid policy as an error naming the entry', () => {
    const f = policyFindings(
      [pol('bad', [{ namespaceSelector: {}, serviceAccounts: ['X'], roles: ['arn:aws:iam::1:role/a'] }])],
      [],
      labels,
      false,
    );
    expect(f).toEqual([
      expect.objectContaining({
        level: 'error',
        object: 'identitypolicy bad',
        text: expect.stringContaining('spec.rules[0].serviceAccounts[0]'),
      }),
    ]);
  });
  it('previews denials with the policies given', () => {
    const f = policyFindings(
      [
        pol('p', [
          {
            namespaceSelector: { matchLabels: { team: 'a' } },
            serviceAccounts: ['*'],
            roles: ['arn:aws:iam::1:role/team-a-*'],
          },
        ]),
      ],
      inUse,
      labels,
      true,
    );
    expect(f).toEqual([
      {
        level: 'warning',
        object: 'podidentityassociation b/y',
        text: 'would be denied: no IdentityPolicy allows namespace "b" ServiceAccount "y" to use role "arn:aws:iam::1:role/admin"',
      },
    ]);
  });
  it('previews plain default-deny when no policy exists', () => {
    expect(
      policyFindings([], inUse, labels, true).filter((x) => x.text.startsWith('would be denied')),
    ).toHaveLength(2);
  });
});
