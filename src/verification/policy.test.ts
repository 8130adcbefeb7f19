import { describe, expect, it } from 'vitest';
import {
  PolicyCompiler,
  allowRuleFix,
  acceptedCondition,
  compilePolicy,
  decidePolicy,
  EMPTY_POLICY_SET,
  type PolicySet,
} from './policy.ts';
import { globMatches } from './glob.ts';
import type { IdentityPolicy, IdentityPolicyRule } from './types.ts';

/** An IdentityPolicy as the API server may hand it over: its rules are whatever a test puts there, hostile ones too. */
const policy = (name: string, rules: unknown, generation = 1): IdentityPolicy => ({
  apiVersion: 'lanyard.dev/v1alpha1',
  kind: 'IdentityPolicy',
  metadata: { name, uid: `uid-${name}`, generation },
  spec: { rules: rules as IdentityPolicyRule[] },
});
const setOf = (...objs: IdentityPolicy[]): PolicySet => new PolicyCompiler().compileAll(objs);

const teamA = policy('team-a', [
  {
    namespaceSelector: { matchLabels: { team: 'a' } },
    serviceAccounts: ['*'],
    roles: ['arn:aws:iam::111122223333:role/team-a/*', 'arn:aws:iam::111122223333:role/team-a-*'],
  },
  {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ci' } },
    serviceAccounts: ['runner-*'],
    roles: ['arn:aws:iam::111122223333:role/ci-deployer'],
  },
]);

describe('glob', () => {
  it.each([
    ['*', '', true],
    ['*', 'a/b:c', true],
    ['runner-*', 'runner-', true],
    ['runner-*', 'runner-1', true],
    ['runner-*', 'Runner-1', false],
    ['runner-*', 'xrunner-1', false],
    ['a.b', 'axb', false],
    ['a.b', 'a.b', true],
    ['arn:aws:iam::*:role/x', 'arn:aws:iam::111122223333:role/x', true],
    ['arn:aws:iam::*:role/x', 'arn:aws:iam::111122223333:role/xy', false],
    ['arn:aws:iam::1:role/team-a/*', 'arn:aws:iam::1:role/team-a/deep/path/r', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'acb', false],
    ['(x)+', '(x)+', true],
  ])('%s vs %s -> %s', (p, v, want) => expect(globMatches(p, v)).toBe(want));
});

describe('decidePolicy', () => {
  const set = setOf(teamA);
  const subj = (
    ns: string,
    labels: Record<string, string>,
    sa: string,
    roleARN?: string,
    targetRoleARN?: string,
  ) => ({ namespace: ns, namespaceLabels: labels, serviceAccount: sa, roleARN, targetRoleARN });
  it.each([
    [
      'path pattern',
      subj('team-a', { team: 'a' }, 'uploader', 'arn:aws:iam::111122223333:role/team-a/uploader'),
      true,
    ],
    [
      'prefix pattern',
      subj('team-a', { team: 'a' }, 'uploader', 'arn:aws:iam::111122223333:role/team-a-writer'),
      true,
    ],
    ['wrong role', subj('team-a', { team: 'a' }, 'uploader', 'arn:aws:iam::111122223333:role/admin'), false],
    [
      'wrong account',
      subj('team-a', { team: 'a' }, 'uploader', 'arn:aws:iam::999999999999:role/team-a/x'),
      false,
    ],
    [
      'case-sensitive',
      subj('team-a', { team: 'a' }, 'uploader', 'arn:aws:iam::111122223333:role/Team-a-writer'),
      false,
    ],
    [
      'label missing',
      subj('team-b', { team: 'b' }, 'uploader', 'arn:aws:iam::111122223333:role/team-a/uploader'),
      false,
    ],
    ['name label implied', subj('ci', {}, 'runner-7', 'arn:aws:iam::111122223333:role/ci-deployer'), true],
    ['sa pattern', subj('ci', {}, 'builder', 'arn:aws:iam::111122223333:role/ci-deployer'), false],
    [
      'target both allowed',
      subj(
        'team-a',
        { team: 'a' },
        'u',
        'arn:aws:iam::111122223333:role/team-a/u',
        'arn:aws:iam::111122223333:role/team-a-b',
      ),
      true,
    ],
    [
      'target denied',
      subj(
        'team-a',
        { team: 'a' },
        'u',
        'arn:aws:iam::111122223333:role/team-a/u',
        'arn:aws:iam::444455556666:role/bucket-writer',
      ),
      false,
    ],
    ['unknown role, ns+sa match', subj('team-a', { team: 'a' }, 'u'), true],
    ['unknown role, no rule', subj('other', {}, 'u'), false],
  ])('%s', (_n, s, want) => expect(decidePolicy(set, s).allowed).toBe(want));

  it('words the denial exactly as documented (docs/verified-start.md#identitypolicy)', () => {
    const d = decidePolicy(
      set,
      subj('team-a', { team: 'a' }, 'uploader', 'arn:aws:iam::111122223333:role/admin'),
    );
    expect(d).toEqual({
      allowed: false,
      deniedRole: 'arn:aws:iam::111122223333:role/admin',
      message:
        'lanyard: no IdentityPolicy allows namespace "team-a" ServiceAccount "uploader" to use role "arn:aws:iam::111122223333:role/admin"',
      fix:
        'to allow it, add to spec.rules of IdentityPolicy "team-a" (kubectl edit identitypolicy team-a) the rule ' +
        '{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}, serviceAccounts: ["uploader"], ' +
        'roles: ["arn:aws:iam::111122223333:role/admin"]}; check first with: lanyard doctor --policy-preview <file> (docs/verified-start.md)',
    });
  });
  // docs/verified-start.md, "When a Pod is denied": the denial says which rule to add, and where.
  it('words the fix for no accepted policy, one policy, several, and an unknown role', () => {
    const invalid = { metadata: { name: 'broken', uid: 'b', generation: 1 }, spec: { rules: [] } };
    expect(allowRuleFix(setOf(invalid), 'new-ns', 'web', 'arn:aws:iam::1:role/web')).toMatch(
      /^to allow it, add an IdentityPolicy whose spec\.rules holds the rule \{namespaceSelector: \{matchLabels: \{kubernetes\.io\/metadata\.name: new-ns\}\}, serviceAccounts: \["web"\], roles: \["arn:aws:iam::1:role\/web"\]\}/,
    );
    const second = policy('team-b', [
      { namespaceSelector: {}, serviceAccounts: ['x'], roles: ['arn:aws:iam::1:role/x'] },
    ]);
    expect(allowRuleFix(setOf(teamA, second), 'new-ns', 'web', undefined)).toMatch(
      /^to allow it, add to spec\.rules of one of the IdentityPolicies "team-a", "team-b" the rule .*roles: \["<the role ARN>"\]\}/,
    );
    const d = decidePolicy(setOf(teamA), subj('other', {}, 'u'));
    expect(d.allowed === false && d.fix).toContain(
      'kubernetes.io/metadata.name: other}}, serviceAccounts: ["u"], roles: ["<the role ARN>"]',
    );
  });
  it('names the target role when only it is denied', () => {
    const d = decidePolicy(
      set,
      subj('team-a', { team: 'a' }, 'u', 'arn:aws:iam::111122223333:role/team-a/u', 'arn:aws:iam::4:role/x'),
    );
    expect(d.allowed === false && d.deniedRole).toBe('arn:aws:iam::4:role/x');
  });
  it('allows everything with no policies', () => {
    expect(decidePolicy(EMPTY_POLICY_SET, subj('x', {}, 'y', 'arn:aws:iam::1:role/admin'))).toEqual({
      allowed: true,
      reason: 'no_policies',
    });
  });
  it('denies everything when the only policy is invalid (a policy exists: default-deny)', () => {
    const s = setOf(
      policy('bad', [{ namespaceSelector: {}, serviceAccounts: ['*'], roles: ['arn:aws:s3:::bucket'] }]),
    );
    expect(s.present).toBe(true);
    expect(decidePolicy(s, subj('x', {}, 'y', 'arn:aws:iam::1:role/a')).allowed).toBe(false);
  });
  it('ignores an invalid policy but applies the valid ones', () => {
    const s = setOf(
      teamA,
      policy('bad', [{ namespaceSelector: {}, serviceAccounts: ['*'], roles: ['nope'] }]),
    );
    expect(
      decidePolicy(s, subj('team-a', { team: 'a' }, 'u', 'arn:aws:iam::111122223333:role/team-a-x')).allowed,
    ).toBe(true);
    expect(decidePolicy(s, subj('z', {}, 'u', 'arn:aws:iam::1:role/x')).allowed).toBe(false);
  });
});

describe('namespaceSelector', () => {
  const mk = (sel: unknown) =>
    setOf(policy('p', [{ namespaceSelector: sel, serviceAccounts: ['*'], roles: ['arn:*:iam::*:role/*'] }]));
  const ok = (s: PolicySet, labels: Record<string, string>) =>
    decidePolicy(s, {
      namespace: 'ns',
      namespaceLabels: labels,
      serviceAccount: 'sa',
      roleARN: 'arn:aws:iam::1:role/r',
    }).allowed;
  it('{} selects every namespace', () => expect(ok(mk({}), {})).toBe(true));
  it.each([
    [
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'stage'] }] },
      { env: 'prod' },
      true,
    ],
    [{ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, { env: 'dev' }, false],
    [{ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] }, {}, false],
    [{ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, {}, true],
    [{ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, { env: 'prod' }, false],
    [{ matchExpressions: [{ key: 'env', operator: 'Exists' }] }, { env: '' }, true],
    [{ matchExpressions: [{ key: 'env', operator: 'Exists' }] }, {}, false],
    [{ matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] }, {}, true],
    [{ matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] }, { env: 'x' }, false],
    [{ matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'Exists' }] }, { a: '1' }, false],
    [
      { matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'Exists' }] },
      { a: '1', b: '' },
      true,
    ],
  ])('%j on %j -> %s', (sel, labels, want) =>
    expect(ok(mk(sel), labels as Record<string, string>)).toBe(want),
  );
});

describe('compile', () => {
  it.each([
    [
      [{ namespaceSelector: {}, serviceAccounts: ['*'], roles: ['arn:aws:s3:::b'] }],
      'spec.rules[0].roles[0] "arn:aws:s3:::b"',
    ],
    [
      [{ namespaceSelector: {}, serviceAccounts: ['Upper'], roles: ['arn:aws:iam::1:role/x'] }],
      'spec.rules[0].serviceAccounts[0] "Upper"',
    ],
    [
      [{ namespaceSelector: {}, serviceAccounts: [], roles: ['arn:aws:iam::1:role/x'] }],
      'spec.rules[0].serviceAccounts []',
    ],
    [[{ serviceAccounts: ['*'], roles: ['arn:aws:iam::1:role/x'] }], 'spec.rules[0].namespaceSelector'],
    [
      [
        {
          namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] },
          serviceAccounts: ['*'],
          roles: ['arn:aws:iam::1:role/x'],
        },
      ],
      'spec.rules[0].namespaceSelector.matchExpressions[0].values',
    ],
    [
      [
        {
          namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] },
          serviceAccounts: ['*'],
          roles: ['arn:aws:iam::1:role/x'],
        },
      ],
      'spec.rules[0].namespaceSelector.matchExpressions[0].operator',
    ],
    [[], 'spec.rules'],
  ])('rejects %j naming the entry', (rules, where) => {
    const c = compilePolicy(policy('p', rules));
    expect(c.accepted).toBe(false);
    expect(c.invalidMessage).toContain(where);
    expect(acceptedCondition(c)).toMatchObject({
      status: 'False',
      reason: 'InvalidPattern',
      observedGeneration: 1,
    });
  });
  it('accepts a valid policy', () => {
    expect(acceptedCondition(compilePolicy(teamA))).toMatchObject({ status: 'True', reason: 'Accepted' });
  });
  it('compiles once per generation', () => {
    const c = new PolicyCompiler();
    const a = c.compile(teamA);
    expect(c.compile(structuredClone(teamA))).toBe(a);
    expect(c.compile({ ...teamA, metadata: { ...teamA.metadata, generation: 2 } })).not.toBe(a);
  });
});

describe('decidePolicy on hostile input', () => {
  it('denies a role longer than any IAM role ARN without matching it, and echoes it bounded', () => {
    const set = new PolicyCompiler().compileAll([
      {
        metadata: { name: 'p', uid: 'u', generation: 1 },
        spec: {
          rules: [
            { namespaceSelector: {}, serviceAccounts: ['*'], roles: ['arn:aws:iam::*:role/*-*-reader'] },
          ],
        },
      },
    ]);
    const role = `arn:aws:iam::${':role/-'.repeat(15_000)}x`;
    const d = decidePolicy(set, {
      namespace: 'ns',
      namespaceLabels: {},
      serviceAccount: 'sa',
      roleARN: role,
    });
    expect(d.allowed).toBe(false);
    if (!d.allowed) {
      expect(d.message).toMatch(
        /^lanyard: role "arn:aws:iam::.*…\[104758 more characters\]" of namespace "ns" ServiceAccount "sa" is 105014 characters; an IAM role ARN has at most \d+$/,
      );
      expect(d.message.length).toBeLessThan(500);
    }
  });

  it('reports an invalid pattern with the value bounded', () => {
    const c = compilePolicy({
      metadata: { name: 'p', uid: 'u', generation: 1 },
      spec: {
        rules: [
          {
            namespaceSelector: {},
            serviceAccounts: ['*'],
            roles: [`arn:aws:iam::*:role/${'x'.repeat(2000)}`],
          },
        ],
      },
    });
    expect(c.accepted).toBe(false);
    expect(c.invalidMessage).toContain('spec.rules[0].roles[0] "arn:aws:iam::*:role/xxx');
    expect(c.invalidMessage).toContain('more characters]": must match');
    expect(c.invalidMessage!.length).toBeLessThan(500);
  });
});
