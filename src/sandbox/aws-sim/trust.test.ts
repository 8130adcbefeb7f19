import { describe, expect, it } from 'vitest';
import { evaluateTrust, globMatch, parseTrustPolicy, type TrustPolicy, type TrustRequest } from './trust.ts';

const PROV = 'oidc.example.com/id/ABC';
const policy = (statements: unknown[]): TrustPolicy => {
  const r = parseTrustPolicy(JSON.stringify({ Version: '2012-10-17', Statement: statements }));
  if (!r.ok) throw new Error(r.message);
  return r.policy;
};
const webReq = (sub: string, aud: string | string[] = 'sts.amazonaws.com'): TrustRequest => ({
  principal: { type: 'Federated', id: `arn:aws:iam::123456789012:oidc-provider/${PROV}` },
  action: 'sts:AssumeRoleWithWebIdentity',
  context: { [`${PROV}:sub`]: sub, [`${PROV}:aud`]: aud },
  supportedKeys: [`${PROV}:sub`, `${PROV}:aud`],
});
const webStatement = (cond: Record<string, unknown>, effect = 'Allow') => ({
  Effect: effect,
  Principal: { Federated: `arn:aws:iam::123456789012:oidc-provider/${PROV}` },
  Action: 'sts:AssumeRoleWithWebIdentity',
  Condition: cond,
});
const podsStatement = (actions: string | string[]) => ({
  Effect: 'Allow',
  Principal: { Service: 'pods.eks.amazonaws.com' },
  Action: actions,
});
const podsReq = (action: string): TrustRequest => ({
  principal: { type: 'Service', id: 'pods.eks.amazonaws.com' },
  action,
  context: {},
  supportedKeys: [],
});

describe('evaluateTrust', () => {
  const rows: Array<[string, TrustPolicy, TrustRequest, string]> = [
    [
      'pods service with AssumeRole+TagSession',
      policy([podsStatement(['sts:AssumeRole', 'sts:TagSession'])]),
      podsReq('sts:TagSession'),
      'allow',
    ],
    [
      'pods service, action missing',
      policy([podsStatement('sts:AssumeRole')]),
      podsReq('sts:TagSession'),
      'implicitDeny',
    ],
    ['action wildcard', policy([podsStatement('sts:*')]), podsReq('sts:TagSession'), 'allow'],
    [
      'action case-insensitive',
      policy([podsStatement('STS:assumerole')]),
      podsReq('sts:AssumeRole'),
      'allow',
    ],
    [
      'wrong service principal',
      policy([{ ...podsStatement('sts:AssumeRole'), Principal: { Service: 'ec2.amazonaws.com' } }]),
      podsReq('sts:AssumeRole'),
      'implicitDeny',
    ],
    [
      'service principal list',
      policy([
        {
          ...podsStatement('sts:AssumeRole'),
          Principal: { Service: ['ec2.amazonaws.com', 'pods.eks.amazonaws.com'] },
        },
      ]),
      podsReq('sts:AssumeRole'),
      'allow',
    ],
    [
      'explicit deny wins',
      policy([podsStatement('sts:AssumeRole'), { ...podsStatement('sts:AssumeRole'), Effect: 'Deny' }]),
      podsReq('sts:AssumeRole'),
      'explicitDeny',
    ],
    [
      'StringEquals sub',
      policy([webStatement({ StringEquals: { [`${PROV}:sub`]: 'system:serviceaccount:a:b' } })]),
      webReq('system:serviceaccount:a:b'),
      'allow',
    ],
    [
      'StringEquals sub of another SA',
      policy([webStatement({ StringEquals: { [`${PROV}:sub`]: 'system:serviceaccount:a:b' } })]),
      webReq('system:serviceaccount:a:c'),
      'implicitDeny',
    ],
    [
      'keys without case',
      policy([
        webStatement({ StringEquals: { [`${PROV.toUpperCase()}:SUB`]: 'system:serviceaccount:a:b' } }),
      ]),
      webReq('system:serviceaccount:a:b'),
      'allow',
    ],
    [
      'values ORed',
      policy([webStatement({ StringEquals: { [`${PROV}:sub`]: ['x', 'system:serviceaccount:a:b'] } })]),
      webReq('system:serviceaccount:a:b'),
      'allow',
    ],
    [
      'keys ANDed',
      policy([
        webStatement({
          StringEquals: { [`${PROV}:sub`]: 'system:serviceaccount:a:b', [`${PROV}:aud`]: 'other' },
        }),
      ]),
      webReq('system:serviceaccount:a:b'),
      'implicitDeny',
    ],
    [
      'StringLike * and ?',
      policy([webStatement({ StringLike: { [`${PROV}:sub`]: 'system:serviceaccount:a:?-*' } })]),
      webReq('system:serviceaccount:a:x-runner'),
      'allow',
    ],
    [
      'StringLike no match',
      policy([webStatement({ StringLike: { [`${PROV}:sub`]: 'system:serviceaccount:a:?-*' } })]),
      webReq('system:serviceaccount:a:xy-runner'),
      'implicitDeny',
    ],
    [
      'StringNotEquals',
      policy([webStatement({ StringNotEquals: { [`${PROV}:sub`]: 'system:serviceaccount:a:b' } })]),
      webReq('system:serviceaccount:a:c'),
      'allow',
    ],
    [
      'StringNotLike excludes',
      policy([webStatement({ StringNotLike: { [`${PROV}:sub`]: 'system:serviceaccount:a:*' } })]),
      webReq('system:serviceaccount:a:c'),
      'implicitDeny',
    ],
    [
      'multi-valued aud',
      policy([webStatement({ StringEquals: { [`${PROV}:aud`]: 'sts.amazonaws.com' } })]),
      webReq('s', ['x', 'sts.amazonaws.com']),
      'allow',
    ],
    [
      'unsupported operator fails the statement',
      policy([webStatement({ ArnLike: { [`${PROV}:sub`]: '*' } })]),
      webReq('s'),
      'implicitDeny',
    ],
    [
      'unsupported key fails the statement',
      policy([webStatement({ StringLike: { 'aws:PrincipalTag/x': '*' } })]),
      webReq('s'),
      'implicitDeny',
    ],
    [
      'unsupported key in a Deny does not deny',
      policy([webStatement({}), webStatement({ StringLike: { 'aws:PrincipalTag/x': '*' } }, 'Deny')]),
      webReq('s'),
      'allow',
    ],
    [
      'wrong federated provider',
      policy([
        { ...webStatement({}), Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/other' } },
      ]),
      webReq('s'),
      'implicitDeny',
    ],
    [
      'principal *',
      policy([{ Effect: 'Allow', Principal: '*', Action: 'sts:AssumeRole' }]),
      podsReq('sts:AssumeRole'),
      'allow',
    ],
  ];
  it.each(rows)('%s', (_name, p, req, expected) => {
    expect(evaluateTrust(p, req).decision).toBe(expected);
  });

  it('AWS principals: role ARN, account root, bare account', () => {
    const req: TrustRequest = {
      principal: { type: 'AWS', id: 'arn:aws:iam::123456789012:role/assoc' },
      action: 'sts:AssumeRole',
      context: { 'sts:ExternalId': 'e-1' },
      supportedKeys: ['sts:externalid'],
    };
    const withPrincipal = (p: string) =>
      policy([
        {
          Effect: 'Allow',
          Principal: { AWS: p },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'sts:ExternalId': 'e-1' } },
        },
      ]);
    expect(evaluateTrust(withPrincipal('arn:aws:iam::123456789012:role/assoc'), req).decision).toBe('allow');
    expect(evaluateTrust(withPrincipal('arn:aws:iam::123456789012:root'), req).decision).toBe('allow');
    expect(evaluateTrust(withPrincipal('123456789012'), req).decision).toBe('allow');
    expect(evaluateTrust(withPrincipal('arn:aws:iam::999999999999:root'), req).decision).toBe('implicitDeny');
    expect(
      evaluateTrust(withPrincipal('arn:aws:iam::123456789012:role/assoc'), {
        ...req,
        context: { 'sts:ExternalId': 'e-2' },
      }).decision,
    ).toBe('implicitDeny');
  });

  it('reports unsupported operators and keys as notes', () => {
    const d = evaluateTrust(policy([webStatement({ ArnLike: { x: '*' } })]), webReq('s'));
    expect(d.notes).toEqual(['Statement[0]: unsupported condition operator ArnLike']);
  });
});

describe('parseTrustPolicy', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['not JSON', '{', /invalid Json/],
    ['no Statement', '{"Version":"2012-10-17"}', /Statement/],
    ['bad Effect', '{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"sts:AssumeRole"}]}', /Effect/],
    ['no Principal', '{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}', /Principal/],
    ['no Action', '{"Statement":[{"Effect":"Allow","Principal":"*"}]}', /Action/],
    [
      'Resource in a trust policy',
      '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}',
      /Resource/,
    ],
    [
      'bad principal type',
      '{"Statement":[{"Effect":"Allow","Principal":{"User":"x"},"Action":"a"}]}',
      /principal type/,
    ],
    [
      'bad version',
      '{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"a"}]}',
      /version/,
    ],
    [
      'bad condition',
      '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"a","Condition":{"StringEquals":"x"}}]}',
      /Condition/,
    ],
  ];
  it.each(bad)('rejects %s', (_n, doc, msg) => {
    const r = parseTrustPolicy(doc);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(msg);
  });
  it('accepts a single statement object and string values', () => {
    const r = parseTrustPolicy(
      '{"Statement":{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}}',
    );
    expect(r.ok).toBe(true);
  });
  it('globMatch anchors and treats other characters literally', () => {
    expect(globMatch('a.b*', 'a.bcd')).toBe(true);
    expect(globMatch('a.b*', 'axbcd')).toBe(false);
    expect(globMatch('a?c', 'abc')).toBe(true);
    expect(globMatch('a', 'ab')).toBe(false);
  });
});
