// Trust policies against what an exchange presents (docs/explain-and-iam.md): each mismatch names its field.
import { describe, expect, it } from 'vitest';
import {
  compareTrust,
  desiredTrustPolicy,
  hintForExchangeError,
  oidcProviderArn,
  type Presented,
  type TrustField,
} from './trust.ts';

const ISSUER = 'https://oidc.example.com/id/ABC/';
const KEY = 'oidc.example.com/id/ABC';
const PROVIDER = oidcProviderArn('aws', '111122223333', ISSUER);
const token: Presented = {
  mode: 'WebIdentity',
  providerArn: PROVIDER,
  issuerKey: KEY,
  sub: 'system:serviceaccount:team-a:uploader',
  aud: 'sts.amazonaws.com',
};
const irsa = desiredTrustPolicy({
  mode: 'WebIdentity',
  partition: 'aws',
  account: '111122223333',
  issuer: ISSUER,
  namespace: 'team-a',
  serviceAccount: 'uploader',
  audience: 'sts.amazonaws.com',
});
const pi = desiredTrustPolicy({ mode: 'ContainerCredentials' });

const wi = (over: { principal?: unknown; action?: unknown; condition?: unknown; effect?: string }) => ({
  Version: '2012-10-17',
  Statement: [
    {
      Effect: over.effect ?? 'Allow',
      Principal: over.principal ?? { Federated: PROVIDER },
      Action: over.action ?? 'sts:AssumeRoleWithWebIdentity',
      Condition: over.condition ?? {
        StringEquals: {
          [`${KEY}:sub`]: 'system:serviceaccount:team-a:uploader',
          [`${KEY}:aud`]: 'sts.amazonaws.com',
        },
      },
    },
  ],
});

describe('desiredTrustPolicy', () => {
  it('web identity: the cluster provider, sub system:serviceaccount:NS:SA and aud, without the issuer scheme or trailing slash', () => {
    expect(irsa).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Federated: 'arn:aws:iam::111122223333:oidc-provider/oidc.example.com/id/ABC' },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: {
            StringEquals: {
              'oidc.example.com/id/ABC:sub': 'system:serviceaccount:team-a:uploader',
              'oidc.example.com/id/ABC:aud': 'sts.amazonaws.com',
            },
          },
        },
      ],
    });
  });
  it('Pod Identity: pods.eks.amazonaws.com with sts:AssumeRole and sts:TagSession', () => {
    expect(pi).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'pods.eks.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
        },
      ],
    });
  });
});

const cases: { name: string; doc: unknown; presented?: Presented; fields: TrustField[]; text?: RegExp }[] = [
  { name: 'the desired web-identity policy allows its token', doc: irsa, fields: [] },
  {
    name: 'the desired Pod Identity policy allows the agent',
    doc: pi,
    presented: { mode: 'ContainerCredentials', sessionTags: true },
    fields: [],
  },
  {
    name: 'another cluster\'s provider is named "provider"',
    doc: wi({
      principal: { Federated: oidcProviderArn('aws', '111122223333', 'https://oidc.example.com/id/OTHER') },
    }),
    fields: ['provider'],
    text: /id\/OTHER.*cluster's provider/,
  },
  {
    name: 'a whole statement for another cluster is one "provider" mismatch',
    doc: {
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Federated: 'arn:aws:iam::111122223333:oidc-provider/other' },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: {
            StringEquals: {
              'other:sub': 'system:serviceaccount:team-a:uploader',
              'other:aud': 'sts.amazonaws.com',
            },
          },
        },
      ],
    },
    fields: ['provider'],
  },
  {
    name: 'condition keys of another provider are named "provider"',
    doc: wi({
      condition: {
        StringEquals: { 'oidc.example.com/id/OTHER:sub': 'system:serviceaccount:team-a:uploader' },
      },
    }),
    fields: ['provider'],
  },
  {
    name: 'a sub of another ServiceAccount is named "sub" with both values',
    doc: wi({ condition: { StringEquals: { [`${KEY}:sub`]: 'system:serviceaccount:team-a:other' } } }),
    fields: ['sub'],
    text: /requires .*:sub = "system:serviceaccount:team-a:other", the token presents "system:serviceaccount:team-a:uploader"/,
  },
  {
    name: 'a sub pattern that matches passes (StringLike)',
    doc: wi({ condition: { StringLike: { [`${KEY}:sub`]: 'system:serviceaccount:team-a:*' } } }),
    fields: [],
  },
  {
    name: 'a wrong aud is named "aud"',
    doc: wi({ condition: { StringEquals: { [`${KEY}:aud`]: 'vault' } } }),
    fields: ['aud'],
  },
  {
    name: 'sub and aud both wrong name both',
    doc: wi({
      condition: { StringEquals: { [`${KEY}:sub`]: 'system:serviceaccount:x:y', [`${KEY}:aud`]: 'vault' } },
    }),
    fields: ['sub', 'aud'],
  },
  {
    name: 'condition keys compare without case',
    doc: wi({
      condition: { StringEquals: { [`${KEY.toUpperCase()}:SUB`]: 'system:serviceaccount:team-a:uploader' } },
    }),
    fields: [],
  },
  { name: 'the wrong action is named "action"', doc: wi({ action: 'sts:AssumeRole' }), fields: ['action'] },
  {
    name: 'a service principal instead of the provider is named "principal"',
    doc: wi({ principal: { Service: 'ec2.amazonaws.com' } }),
    fields: ['principal'],
  },
  {
    name: 'an explicit Deny for the token is named "deny"',
    doc: {
      Version: '2012-10-17',
      Statement: [
        ...(irsa.Statement as unknown[]),
        { Effect: 'Deny', Principal: { Federated: PROVIDER }, Action: 'sts:*' },
      ],
    },
    fields: ['deny'],
  },
  {
    name: 'the closest of several statements says what to change',
    doc: {
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { Service: 'x' }, Action: 's3:*' },
        wi({ condition: { StringEquals: { [`${KEY}:aud`]: 'vault' } } }).Statement[0],
      ],
    },
    fields: ['aud'],
    text: /Statement\[1\]/,
  },
  {
    name: 'a provider missing from IAM is named "provider" even with a right policy',
    doc: irsa,
    presented: {
      ...token,
      registeredProviders: ['arn:aws:iam::111122223333:oidc-provider/elsewhere'],
    } as Presented,
    fields: ['provider'],
    text: /has no OIDC provider/,
  },
  {
    name: 'Pod Identity: a wrong service principal is named "principal"',
    doc: {
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'ec2.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
        },
      ],
    },
    presented: { mode: 'ContainerCredentials', sessionTags: true },
    fields: ['principal'],
    text: /needs Service "pods.eks.amazonaws.com"/,
  },
  {
    name: 'Pod Identity: sts:TagSession missing is named "action"',
    doc: {
      Statement: [
        { Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ],
    },
    presented: { mode: 'ContainerCredentials', sessionTags: true },
    fields: ['action'],
    text: /not sts:TagSession/,
  },
  {
    name: 'Pod Identity without session tags needs no sts:TagSession',
    doc: {
      Statement: [
        { Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ],
    },
    presented: { mode: 'ContainerCredentials', sessionTags: false },
    fields: [],
  },
  {
    name: 'target role: a wrong external id is named "external id"',
    doc: {
      Statement: [
        {
          Effect: 'Allow',
          Principal: { AWS: 'arn:aws:iam::111122223333:role/a' },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'sts:ExternalId': 'old' } },
        },
      ],
    },
    presented: { mode: 'TargetRole', principalArn: 'arn:aws:iam::111122223333:role/a', externalId: 'new' },
    fields: ['external id'],
  },
  {
    name: 'target role: the account root trusts the association role',
    doc: {
      Statement: [
        { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111122223333:root' }, Action: 'sts:AssumeRole' },
      ],
    },
    presented: { mode: 'TargetRole', principalArn: 'arn:aws:iam::111122223333:role/a' },
    fields: [],
  },
  { name: 'not JSON is named "document"', doc: '{', fields: ['document'] },
];

describe('compareTrust names the mismatching field', () => {
  it.each(cases)('$name', ({ doc, presented, fields, text }) => {
    const r = compareTrust(typeof doc === 'string' ? doc : JSON.stringify(doc), presented ?? token);
    expect(r.mismatches.map((m) => m.field)).toEqual(fields);
    expect(r.allowed).toBe(fields.length === 0);
    if (text) expect(r.mismatches.map((m) => m.text).join('\n')).toMatch(text);
  });

  it('notes conditions it cannot evaluate instead of failing them', () => {
    const doc = {
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'pods.eks.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
          Condition: { StringEquals: { 'aws:SourceAccount': '111122223333' } },
        },
      ],
    };
    const r = compareTrust(doc, { mode: 'ContainerCredentials', sessionTags: true });
    expect(r.allowed).toBe(true);
    expect(r.notes).toEqual([
      'Statement[0]: condition StringEquals aws:SourceAccount is not checked here (assumed to hold)',
    ]);
  });
});

describe('hintForExchangeError', () => {
  it.each([
    [
      'WebIdentity exchange for role arn:aws:iam::1:role/r failed: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity (request id 1)',
      /Federated provider, its `sub` condition .* or its `aud` condition/,
    ],
    [
      'InvalidIdentityToken: No OpenIDConnect provider found in your account for https://x',
      /no OIDC provider/,
    ],
    [
      'ContainerCredentials exchange for role r failed: AccessDeniedException: Unable to assume role',
      /pods\.eks\.amazonaws\.com/,
    ],
    [
      'ContainerCredentials exchange for role r failed: ResourceNotFoundException: no association',
      /no association/,
    ],
    ['PolicyDenied: lanyard: no IdentityPolicy allows …', /IdentityPolicy/],
    ['WebIdentity exchange returned another role: expected a, actual b', /another role/],
    ['WebIdentity exchange failed: ThrottlingException: Rate exceeded', /retries on its own/],
  ])('%s', (text, hint) => {
    expect(hintForExchangeError(text)).toMatch(hint);
  });
  it('leaves unknown text alone', () => expect(hintForExchangeError('something else')).toBeUndefined());
});
