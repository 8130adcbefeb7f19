import { describe, expect, it } from 'vitest';
import { resolveIdentity, jitterExpiration, type ResolveInput } from './resolve.ts';
import { parseConfigMapDocument, type ConfigMapTable } from './configmap.ts';
import type { SaSettings } from './annotations.ts';
import type { AssociationIdentity } from './sources.ts';
import { TEST_FLAGS } from '../../test/fixtures/identity.ts';

const ARN_SA = 'arn:aws:iam::111122223333:role/from-sa';
const ARN_CM = 'arn:aws:iam::111122223333:role/from-cm';
const ARN_WILD = 'arn:aws:iam::111122223333:role/from-wildcard';
const ARN_ASSOC = 'arn:aws:iam::111122223333:role/from-association';

function table(doc: object): ConfigMapTable {
  const r = parseConfigMapDocument(JSON.stringify(doc));
  if (!r.ok) throw new Error(r.error);
  return r.table;
}

const association: AssociationIdentity = {
  kind: 'lanyard',
  uid: 'assoc-uid',
  objectNamespace: 'team-a',
  objectName: 'uploader',
  namespace: 'team-a',
  serviceAccount: 'uploader',
  roleARN: ARN_ASSOC,
  disableSessionTags: false,
  associationID: 'a-123',
  creationTimestamp: '2026-01-01T00:00:00Z',
};

function input(over: Partial<ResolveInput> = {}): ResolveInput {
  return {
    namespace: 'team-a',
    serviceAccount: 'uploader',
    podAnnotations: undefined,
    sa: { found: true, settings: { uid: 'sa-uid' } },
    inIdentitiesFile: false,
    configMap: new Map(),
    ...over,
  };
}
const sa = (s: Partial<SaSettings>) => ({ found: true as const, settings: { uid: 'sa-uid', ...s } });
const half = () => 0.5;

describe('precedence (docs/webhook.md#where-an-identity-comes-from)', () => {
  const cm = table({ 'team-a/uploader': { RoleARN: ARN_CM }, '*/uploader': { RoleARN: ARN_WILD } });
  it.each<[string, Partial<ResolveInput>, string | undefined, string | undefined]>([
    [
      'association beats everything',
      { association, inIdentitiesFile: true, sa: sa({ roleARN: ARN_SA }), configMap: cm },
      'association',
      ARN_ASSOC,
    ],
    [
      'identities file beats a role ARN',
      { inIdentitiesFile: true, sa: sa({ roleARN: ARN_SA }), configMap: cm },
      'identities_file',
      undefined,
    ],
    [
      'SA annotation beats the ConfigMap',
      { sa: sa({ roleARN: ARN_SA }), configMap: cm },
      'service_account',
      ARN_SA,
    ],
    ['exact ConfigMap key beats the wildcard', { configMap: cm }, 'configmap', ARN_CM],
    [
      'wildcard applies in any namespace',
      { namespace: 'elsewhere', configMap: cm },
      'configmap_wildcard',
      ARN_WILD,
    ],
    ['unresolved SA still gets the ConfigMap', { sa: { found: false }, configMap: cm }, 'configmap', ARN_CM],
    [
      'empty RoleARN entry falls through',
      { configMap: table({ 'team-a/uploader': { RoleARN: '' }, '*/uploader': { RoleARN: ARN_WILD } }) },
      'configmap_wildcard',
      ARN_WILD,
    ],
    ['no source', {}, undefined, undefined],
  ])('%s', (_n, over, source, role) => {
    const r = resolveIdentity(input(over), TEST_FLAGS, half);
    expect(r?.identity.source).toBe(source);
    expect(r?.identity.roleARN).toBe(role);
  });
});

describe('web identity settings (docs/webhook.md#settings-per-source)', () => {
  it('SA source: SA > flag for audience and STS; Pod > SA > flag for expiration', () => {
    const flags = { ...TEST_FLAGS, stsRegionalEndpoint: true, tokenExpiration: 7200 };
    let r = resolveIdentity(input({ sa: sa({ roleARN: ARN_SA }) }), flags, half)!;
    expect(r.injection).toMatchObject({
      audience: 'sts.amazonaws.com',
      regionalSts: true,
      expirationSeconds: 7200,
      volumeName: 'aws-iam-token',
    });
    expect(r.injection.tokenFilePath).toBe('/var/run/secrets/eks.amazonaws.com/serviceaccount/token');
    r = resolveIdentity(
      input({ sa: sa({ roleARN: ARN_SA, audience: '', regionalSts: false, tokenExpiration: 3600 }) }),
      flags,
      half,
    )!;
    expect(r.injection).toMatchObject({ audience: '', regionalSts: false, expirationSeconds: 3600 });
    r = resolveIdentity(
      input({
        sa: sa({ roleARN: ARN_SA, tokenExpiration: 3600 }),
        podAnnotations: { 'eks.amazonaws.com/token-expiration': '1200' },
      }),
      flags,
      half,
    )!;
    expect(r.injection.expirationSeconds).toBe(1200);
    r = resolveIdentity(
      input({
        sa: sa({ roleARN: ARN_SA, tokenExpiration: 3600 }),
        podAnnotations: { 'eks.amazonaws.com/token-expiration': 'x' },
      }),
      flags,
      half,
    )!;
    expect(r.injection.expirationSeconds).toBe(3600);
  });

  it('ConfigMap source: missing Audience gives the flag, explicit "" omits it, STS ignores the flag, expiration raised to 600', () => {
    const flags = { ...TEST_FLAGS, stsRegionalEndpoint: true, tokenExpiration: 5000 };
    let r = resolveIdentity(
      input({ configMap: table({ 'team-a/uploader': { RoleARN: ARN_CM } }) }),
      flags,
      half,
    )!;
    expect(r.injection).toMatchObject({
      audience: 'sts.amazonaws.com',
      regionalSts: false,
      expirationSeconds: 5000,
    });
    r = resolveIdentity(
      input({
        configMap: table({
          'team-a/uploader': { RoleARN: ARN_CM, Audience: '', UseRegionalSTS: true, TokenExpiration: 100 },
        }),
      }),
      flags,
      half,
    )!;
    expect(r.injection).toMatchObject({ audience: '', regionalSts: true, expirationSeconds: 600 });
    r = resolveIdentity(
      input({
        configMap: table({ 'team-a/uploader': { RoleARN: ARN_CM, TokenExpiration: 0 } }),
        podAnnotations: { 'eks.amazonaws.com/token-expiration': '900' },
      }),
      flags,
      half,
    )!;
    expect(r.injection.expirationSeconds).toBe(900);
  });

  it('the SA wins over the ConfigMap wholesale: sources are never mixed', () => {
    const r = resolveIdentity(
      input({
        sa: sa({ roleARN: ARN_SA }),
        configMap: table({ 'team-a/uploader': { RoleARN: ARN_CM, Audience: 'cm', UseRegionalSTS: true } }),
      }),
      TEST_FLAGS,
      half,
    )!;
    expect(r.injection).toMatchObject({ roleARN: ARN_SA, audience: 'sts.amazonaws.com', regionalSts: false });
  });

  it('fingerprints cover the source inputs (docs/verified-start.md#how-it-works)', () => {
    expect(
      resolveIdentity(input({ sa: sa({ roleARN: ARN_SA }) }), TEST_FLAGS, half)!.identity.fingerprint,
    ).toEqual({
      source: 'service_account',
      saUid: 'sa-uid',
      roleARN: ARN_SA,
      audience: 'sts.amazonaws.com',
      regionalSts: false,
    });
    const fp = resolveIdentity(
      input({ namespace: 'x', configMap: table({ '*/uploader': { RoleARN: ARN_WILD } }) }),
      TEST_FLAGS,
      half,
    )!.identity.fingerprint;
    expect(fp).toMatchObject({ source: 'configmap_wildcard', key: '*/uploader' });
    expect(
      resolveIdentity(input({ inIdentitiesFile: true }), TEST_FLAGS, half)!.identity.fingerprint,
    ).toEqual({ source: 'identities_file' });
    expect(resolveIdentity(input({ association }), TEST_FLAGS, half)!.identity.fingerprint).toEqual({
      source: 'association',
      uid: 'assoc-uid',
      associationID: 'a-123',
      roleARN: ARN_ASSOC,
      targetRoleARN: undefined,
      disableSessionTags: false,
    });
  });
});

describe('container credentials settings (docs/webhook.md#settings-per-source)', () => {
  const flags = { ...TEST_FLAGS, stsRegionalEndpoint: false, tokenExpiration: 86400 };
  it('uses the cc flags and audience', () => {
    const r = resolveIdentity(input({ inIdentitiesFile: true }), flags, () => 0)!;
    expect(r.identity).toMatchObject({ mode: 'ContainerCredentials', audience: 'pods.eks.amazonaws.com' });
    expect(r.injection).toMatchObject({
      volumeName: 'eks-pod-identity-token',
      tokenFileName: 'eks-pod-identity-token',
      tokenFilePath: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
      expirationSeconds: 79200,
    });
  });
  it('SA found: SA annotations > flag; no SA: exact entry (0 = flag) > flag', () => {
    let r = resolveIdentity(
      input({ inIdentitiesFile: true, sa: sa({ regionalSts: true, tokenExpiration: 3600 }) }),
      flags,
      half,
    )!;
    expect(r.injection).toMatchObject({ regionalSts: true, expirationSeconds: 3600 });
    const cm = table({
      'team-a/uploader': { UseRegionalSTS: true, TokenExpiration: 1800 },
      '*/uploader': { UseRegionalSTS: false, TokenExpiration: 999 },
    });
    r = resolveIdentity(input({ inIdentitiesFile: true, sa: sa({}), configMap: cm }), flags, half)!;
    expect(r.injection).toMatchObject({ regionalSts: false });
    r = resolveIdentity(input({ inIdentitiesFile: true, sa: { found: false }, configMap: cm }), flags, half)!;
    expect(r.injection).toMatchObject({ regionalSts: true, expirationSeconds: 1800 });
    r = resolveIdentity(
      input({ inIdentitiesFile: true, sa: { found: false }, namespace: 'other', configMap: cm }),
      { ...flags, stsRegionalEndpoint: true, tokenExpiration: 7000 },
      half,
    )!;
    expect(r.injection).toMatchObject({ regionalSts: true, expirationSeconds: 7000 });
  });
  it('jitters exactly 86400, explicit or default, only in this mode', () => {
    expect(
      resolveIdentity(
        input({ inIdentitiesFile: true, podAnnotations: { 'eks.amazonaws.com/token-expiration': '86400' } }),
        flags,
        () => 0.999999,
      )!.injection.expirationSeconds,
    ).toBe(86400);
    expect(
      resolveIdentity(input({ inIdentitiesFile: true }), flags, () => 0.5)!.injection.expirationSeconds,
    ).toBe(82800);
    expect(
      resolveIdentity(input({ sa: sa({ roleARN: ARN_SA }) }), flags, () => 0)!.injection.expirationSeconds,
    ).toBe(86400);
    expect(
      resolveIdentity(input({ inIdentitiesFile: true, sa: sa({ tokenExpiration: 86399 }) }), flags, () => 0)!
        .injection.expirationSeconds,
    ).toBe(86399);
  });
  it.each([0, 0.25, 0.5, 0.9999999999])('jitter stays in [79200, 86400] for random %d', (x) => {
    const v = jitterExpiration(86400, () => x);
    expect(Number.isInteger(v) && v >= 79200 && v <= 86400).toBe(true);
  });
});
