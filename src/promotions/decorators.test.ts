import { describe, expect, it } from 'vitest';
import { aliasNotice, annotationsSize, checkAnnotationsSize, checkDecorators } from './decorators.ts';
import { serviceAccount, SETTINGS, stage } from '../../test/fixtures/promotions.ts';

const SA = 'lanyard.dev/promotion-sa';
const L = 'lanyard.dev/promotion-labels';
const A = 'lanyard.dev/promotion-annotations';
const sas = new Map(
  [
    serviceAccount('s3-access'),
    serviceAccount('payments-only', { 'lanyard.dev/allowed-projects': 'payments, billing' }),
    serviceAccount('open', { 'lanyard.dev/allowed-projects': '*' }),
    serviceAccount('closed', { 'lanyard.dev/allowed-projects': '' }),
    serviceAccount('listed', { 'lanyard.dev/allowed-projects': 'x,shop' }),
  ].map((s) => [s.metadata.name, s]),
);
const check = (annotations: Record<string, string>) =>
  checkDecorators({
    stage: stage({ annotations }),
    project: 'shop',
    agentNamespace: SETTINGS.agentNamespace,
    defaultServiceAccount: 'lanyard-promotion-orchestrator',
    serviceAccount: (n) => sas.get(n),
    annotationPrefix: SETTINGS.annotationPrefix,
  });

describe('checkDecorators', () => {
  it.each([
    [{}, 'lanyard-promotion-orchestrator', {}, {}],
    [{ [SA]: '', [L]: '', [A]: '' }, 'lanyard-promotion-orchestrator', {}, {}],
    [{ [SA]: '  ', [L]: ' \n', [A]: '{}' }, 'lanyard-promotion-orchestrator', {}, {}],
    [{ [SA]: 's3-access' }, 's3-access', {}, {}],
    [{ [SA]: 'open' }, 'open', {}, {}],
    [{ [SA]: 'listed' }, 'listed', {}, {}],
    [
      { [L]: '{"team":"payments","example.com/tier":"","a_b.c":"x-1"}' },
      'lanyard-promotion-orchestrator',
      { team: 'payments', 'example.com/tier': '', 'a_b.c': 'x-1' },
      {},
    ],
    [
      { [A]: '{"example.com/cost-center":"cc 1234 / anything"}' },
      'lanyard-promotion-orchestrator',
      {},
      { 'example.com/cost-center': 'cc 1234 / anything' },
    ],
  ])('%j is accepted', (annotations, sa, labels, anns) => {
    expect(check(annotations)).toEqual({
      ok: true,
      value: { serviceAccount: sa, labels, annotations: anns, aliases: [] },
    });
  });

  const p = (a: string) => `annotation ${a} on stage "prod": `;
  it.each([
    [
      'S1',
      { [SA]: 'S3_access' },
      'InvalidPromotionServiceAccount',
      `${p(SA)}"S3_access" is not a valid service account name`,
    ],
    [
      'S2',
      { [SA]: 'missing' },
      'PromotionServiceAccountNotFound',
      `${p(SA)}serviceaccount "missing" does not exist in namespace "lanyard-promotions"`,
    ],
    [
      'S3',
      { [SA]: 'payments-only' },
      'PromotionServiceAccountNotAllowed',
      `${p(SA)}serviceaccount "payments-only" in namespace "lanyard-promotions" is not open to project "shop" (allowed: payments, billing)`,
    ],
    [
      'S3 closed to every project',
      { [SA]: 'closed' },
      'PromotionServiceAccountNotAllowed',
      `${p(SA)}serviceaccount "closed" in namespace "lanyard-promotions" is not open to project "shop" (allowed: none)`,
    ],
    [
      'J1 labels',
      { [L]: '{team: 1}' },
      'InvalidPromotionLabels',
      `${p(L)}not valid JSON: ${jsonError('{team: 1}')}`,
    ],
    ['J2 labels', { [L]: '["a"]' }, 'InvalidPromotionLabels', `${p(L)}must be a JSON object, got array`],
    ['J2 null', { [A]: 'null' }, 'InvalidPromotionAnnotations', `${p(A)}must be a JSON object, got null`],
    [
      'J3 labels',
      { [L]: '{"replicas":3}' },
      'InvalidPromotionLabels',
      `${p(L)}key "replicas": value must be a string, got number`,
    ],
    [
      'J1 annotations',
      { [A]: 'x' },
      'InvalidPromotionAnnotations',
      `${p(A)}not valid JSON: ${jsonError('x')}`,
    ],
    [
      'J2 annotations',
      { [A]: '"s"' },
      'InvalidPromotionAnnotations',
      `${p(A)}must be a JSON object, got string`,
    ],
    [
      'J3 annotations',
      { [A]: '{"a":{"b":1}}' },
      'InvalidPromotionAnnotations',
      `${p(A)}key "a": value must be a string, got object`,
    ],
    [
      'K1 labels',
      { [L]: '{"a/b/c":"x"}' },
      'InvalidPromotionLabels',
      `${p(L)}key "a/b/c": at most one "/" is allowed`,
    ],
    [
      'K1 annotations',
      { [A]: '{"a/b/c":"x"}' },
      'InvalidPromotionAnnotations',
      `${p(A)}key "a/b/c": at most one "/" is allowed`,
    ],
    [
      'K2 labels',
      { [L]: '{"Team.io/app":"x"}' },
      'InvalidPromotionLabels',
      `${p(L)}key "Team.io/app": prefix "Team.io" must be a lowercase DNS subdomain of at most 253 characters`,
    ],
    [
      'K2 annotations',
      { [A]: '{"/app":"x"}' },
      'InvalidPromotionAnnotations',
      `${p(A)}key "/app": prefix "" must be a lowercase DNS subdomain of at most 253 characters`,
    ],
    [
      'K3 labels',
      { [L]: '{"app name":"x"}' },
      'InvalidPromotionLabels',
      `${p(L)}key "app name": name "app name" must be 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
    ],
    [
      'K3 annotations',
      { [A]: `{"${'a'.repeat(64)}":"x"}` },
      'InvalidPromotionAnnotations',
      `${p(A)}key "${'a'.repeat(64)}": name "${'a'.repeat(64)}" must be 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
    ],
    [
      'K4 labels',
      { [L]: '{"lanyard.dev/stage":"x"}' },
      'InvalidPromotionLabels',
      `${p(L)}key "lanyard.dev/stage": keys under lanyard.dev belong to Lanyard`,
    ],
    [
      'K4 annotations',
      { [A]: '{"rbac.lanyard.dev/managed":"x"}' },
      'InvalidPromotionAnnotations',
      `${p(A)}key "rbac.lanyard.dev/managed": keys under lanyard.dev belong to Lanyard`,
    ],
    [
      'V1',
      { [L]: '{"team":"pay ments"}' },
      'InvalidPromotionLabels',
      `${p(L)}key "team": value "pay ments" must be empty or 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
    ],
    [
      'V1 trailing dash',
      { [L]: '{"team":"pay-"}' },
      'InvalidPromotionLabels',
      `${p(L)}key "team": value "pay-" must be empty or 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
    ],
  ])('%s', (_rule, annotations, reason, message) => {
    expect(check(annotations)).toEqual({ ok: false, reason, message });
  });

  it('checks rules in order: the account before labels, labels before annotations', () => {
    expect(check({ [SA]: 'Bad', [L]: 'x', [A]: 'x' })).toMatchObject({
      reason: 'InvalidPromotionServiceAccount',
    });
    expect(check({ [L]: 'x', [A]: 'x' })).toMatchObject({ reason: 'InvalidPromotionLabels' });
  });
  it('checks rule by rule over sorted keys: an earlier rule on a later key wins', () => {
    // "b/c/d" breaks K1, "a b" breaks K3: K1 comes first although "a b" sorts first.
    expect(check({ [L]: '{"a b":"x","b/c/d":"y"}' })).toMatchObject({
      message: expect.stringContaining('key "b/c/d": at most one'),
    });
    // Two K3 violations: the first key in sorted order is named.
    expect(check({ [L]: '{"z z":"x","y y":"y"}' })).toMatchObject({
      message: expect.stringContaining('key "y y"'),
    });
  });
  it('does not treat labels values rules as annotation rules', () => {
    expect(check({ [A]: '{"team":"pay ments"}' })).toMatchObject({ ok: true });
  });
});

describe('reserved keys', () => {
  const p = (a: string) => `annotation ${a} on stage "prod": `;
  const WEBHOOK = 'keys under eks.amazonaws.com belong to the identity webhook';
  const ONLY_SKIP = '; of these a Stage may set only eks.amazonaws.com/skip-containers';
  const K8S = (d: string) => `keys under ${d} belong to Kubernetes components (app.kubernetes.io is allowed)`;
  it.each([
    [L, 'lanyard.dev/promotion-uid', 'keys under lanyard.dev belong to Lanyard'],
    [L, 'verify.lanyard.dev/anything', 'keys under lanyard.dev belong to Lanyard'],
    [A, 'lanyard.dev/identity', 'keys under lanyard.dev belong to Lanyard'],
    [L, 'eks.amazonaws.com/skip-pod-identity-webhook', WEBHOOK],
    [L, 'eks.amazonaws.com/anything', WEBHOOK],
    [A, 'eks.amazonaws.com/token-expiration', WEBHOOK + ONLY_SKIP],
    [A, 'eks.amazonaws.com/role-arn', WEBHOOK + ONLY_SKIP],
    [A, 'pod-identity.eks.amazonaws.com/x', WEBHOOK + ONLY_SKIP],
    [L, 'kubernetes.io/metadata.name', K8S('kubernetes.io')],
    [L, 'pod-security.kubernetes.io/enforce', K8S('kubernetes.io')],
    [A, 'container.apparmor.security.beta.kubernetes.io/step-1', K8S('kubernetes.io')],
    [L, 'k8s.io/x', K8S('k8s.io')],
  ])('%s refuses %s', (annotation, key, rule) => {
    const reason = annotation === L ? 'InvalidPromotionLabels' : 'InvalidPromotionAnnotations';
    expect(check({ [annotation]: JSON.stringify({ [key]: 'x' }) })).toEqual({
      ok: false,
      reason,
      message: `${p(annotation)}key "${key}": ${rule}`,
    });
  });

  it.each([
    [A, 'eks.amazonaws.com/skip-containers'],
    [L, 'app.kubernetes.io/part-of'],
    [A, 'app.kubernetes.io/version'],
    [L, 'example.com/kubernetes.io'],
    [L, 'notlanyard.dev/x'],
    [A, 'amazonaws.com/x'],
  ])('%s accepts %s', (annotation, key) => {
    expect(check({ [annotation]: JSON.stringify({ [key]: 'x' }) })).toMatchObject({ ok: true });
  });

  it("follows the webhook's configured annotation prefix and still protects eks.amazonaws.com", () => {
    const withPrefix = (annotations: Record<string, string>) =>
      checkDecorators({
        stage: stage({ annotations }),
        project: 'shop',
        agentNamespace: SETTINGS.agentNamespace,
        defaultServiceAccount: 'lanyard-promotion-orchestrator',
        serviceAccount: (n) => sas.get(n),
        annotationPrefix: 'iam.example.com',
      });
    expect(withPrefix({ [A]: '{"iam.example.com/skip-containers":"done"}' })).toMatchObject({ ok: true });
    expect(withPrefix({ [A]: '{"iam.example.com/token-expiration":"86400"}' })).toMatchObject({
      ok: false,
      message: `${p(A)}key "iam.example.com/token-expiration": keys under iam.example.com belong to the identity webhook; of these a Stage may set only iam.example.com/skip-containers`,
    });
    expect(withPrefix({ [A]: '{"eks.amazonaws.com/skip-containers":"done"}' })).toMatchObject({
      ok: false,
      message: `${p(A)}key "eks.amazonaws.com/skip-containers": keys under eks.amazonaws.com belong to the identity webhook; of these a Stage may set only iam.example.com/skip-containers`,
    });
  });
});

// docs/promotions.md, "Kargo decorator names": seed 000's names work as aliases, under every rule, with a notice.
describe('Kargo decorator aliases', () => {
  const KSA = 'ee.kargo.akuity.io/promotion-sa';
  const KL = 'ee.kargo.akuity.io/promotion-labels';
  const KA = 'ee.kargo.akuity.io/promotion-annotations';
  const p = (a: string) => `annotation ${a} on stage "prod": `;

  it('applies all three Kargo names and reports each as an alias to rename', () => {
    expect(
      check({ [KSA]: 's3-access', [KL]: '{"team":"payments"}', [KA]: '{"example.com/cc":"42"}' }),
    ).toEqual({
      ok: true,
      value: {
        serviceAccount: 's3-access',
        labels: { team: 'payments' },
        annotations: { 'example.com/cc': '42' },
        aliases: [
          { alias: KSA, name: SA, redundant: false },
          { alias: KL, name: L, redundant: false },
          { alias: KA, name: A, redundant: false },
        ],
      },
    });
  });
  it('treats an empty Kargo value as unset, as Kargo does (no alias reported)', () => {
    expect(check({ [KSA]: ' ', [KL]: '' })).toEqual({
      ok: true,
      value: { serviceAccount: 'lanyard-promotion-orchestrator', labels: {}, annotations: {}, aliases: [] },
    });
  });
  it('accepts both names with the same value and reports the alias as redundant', () => {
    expect(check({ [SA]: 's3-access', [KSA]: ' s3-access ' })).toMatchObject({
      ok: true,
      value: { serviceAccount: 's3-access', aliases: [{ alias: KSA, name: SA, redundant: true }] },
    });
  });
  it.each([
    [
      { [SA]: 's3-access', [KSA]: 'open' },
      'InvalidPromotionServiceAccount',
      `${p(SA)}conflicts with ${KSA} (Kargo's name for the same decorator) set to "open"; keep only ${SA}`,
    ],
    [
      { [L]: '{"a":"1"}', [KL]: '{"a":"2"}' },
      'InvalidPromotionLabels',
      `${p(L)}conflicts with ${KL} (Kargo's name for the same decorator) set to "{\\"a\\":\\"2\\"}"; keep only ${L}`,
    ],
  ])('refuses both names with different values: %j', (annotations, reason, message) => {
    expect(check(annotations)).toEqual({ ok: false, reason, message });
  });
  it.each([
    [
      'S1',
      { [KSA]: 'S3_access' },
      'InvalidPromotionServiceAccount',
      `${p(KSA)}"S3_access" is not a valid service account name`,
    ],
    [
      'S2',
      { [KSA]: 'missing' },
      'PromotionServiceAccountNotFound',
      `${p(KSA)}serviceaccount "missing" does not exist in namespace "lanyard-promotions"`,
    ],
    [
      'S3',
      { [KSA]: 'closed' },
      'PromotionServiceAccountNotAllowed',
      `${p(KSA)}serviceaccount "closed" in namespace "lanyard-promotions" is not open to project "shop" (allowed: none)`,
    ],
    ['J1', { [KL]: '{x' }, 'InvalidPromotionLabels', `${p(KL)}not valid JSON: ${jsonError('{x')}`],
    // docs/adr/0602: reserved keys stay reserved under Kargo's names.
    [
      'K4 labels',
      { [KL]: '{"lanyard.dev/stage":"x"}' },
      'InvalidPromotionLabels',
      `${p(KL)}key "lanyard.dev/stage": keys under lanyard.dev belong to Lanyard`,
    ],
    [
      'K4 webhook skip label',
      { [KL]: '{"eks.amazonaws.com/skip-pod-identity-webhook":"true"}' },
      'InvalidPromotionLabels',
      `${p(KL)}key "eks.amazonaws.com/skip-pod-identity-webhook": keys under eks.amazonaws.com belong to the identity webhook`,
    ],
    [
      'K4 annotations',
      { [KA]: '{"eks.amazonaws.com/role-arn":"arn:aws:iam::1:role/x"}' },
      'InvalidPromotionAnnotations',
      `${p(KA)}key "eks.amazonaws.com/role-arn": keys under eks.amazonaws.com belong to the identity webhook; of these a Stage may set only eks.amazonaws.com/skip-containers`,
    ],
    [
      'V1',
      { [KL]: '{"team":"pay ments"}' },
      'InvalidPromotionLabels',
      `${p(KL)}key "team": value "pay ments" must be empty or 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
    ],
  ])('applies rule %s to the Kargo name and names that annotation', (_rule, annotations, reason, message) => {
    expect(check(annotations)).toEqual({ ok: false, reason, message });
  });
  it('words the notice as a rename, or as a removal when redundant', () => {
    expect(aliasNotice('prod', { alias: KSA, name: SA, redundant: false })).toBe(
      `stage "prod" uses Kargo's annotation ${KSA}; Lanyard applies it, but rename it to ${SA}`,
    );
    expect(aliasNotice('prod', { alias: KSA, name: SA, redundant: true })).toBe(
      `stage "prod" sets both ${KSA} and ${SA} to the same value; remove ${KSA}`,
    );
  });
  it('names the Kargo annotation in the size message when that is where the annotations came from', () => {
    expect(checkAnnotationsSize('prod', { k: 'x'.repeat(270_335) }, KA)?.message).toMatch(
      new RegExp(`^annotation ${KA} on stage`),
    );
  });
});

describe('size of the pod annotations', () => {
  it('counts bytes of keys and values', () => {
    expect(annotationsSize({ ab: 'cdé' })).toBe(2 + 4);
  });
  it('passes at the limit and fails above it with the exact message', () => {
    expect(checkAnnotationsSize('prod', { k: 'x'.repeat(262_143) })).toBeUndefined();
    expect(checkAnnotationsSize('prod', { k: 'x'.repeat(270_335) })).toEqual({
      reason: 'InvalidPromotionAnnotations',
      message:
        'annotation lanyard.dev/promotion-annotations on stage "prod": the pod\'s annotations would total 270336 bytes; the limit is 262144',
    });
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('valid JSON');
}
