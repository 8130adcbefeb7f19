import { describe, expect, it } from 'vitest';
import {
  declaredIdentities,
  gateIndex,
  releasePatch,
  toGatedPod,
  verifyBackoffMs,
  annotationOp,
} from './pod.ts';
import { TokenBucket } from './rate.ts';

const ccVolume = {
  name: 'eks-pod-identity-token',
  projected: {
    sources: [
      {
        serviceAccountToken: {
          audience: 'pods.eks.amazonaws.com',
          expirationSeconds: 86400,
          path: 'eks-pod-identity-token',
        },
      },
    ],
  },
};
const wiVolume = (aud?: string) => ({
  name: 'aws-iam-token',
  projected: {
    sources: [{ serviceAccountToken: { ...(aud !== undefined ? { audience: aud } : {}), path: 'token' } }],
  },
});
const cc = (name: string) => ({
  name,
  env: [
    { name: 'AWS_CONTAINER_CREDENTIALS_FULL_URI', value: 'http://169.254.170.23/v1/credentials' },
    {
      name: 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
      value: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
    },
  ],
  volumeMounts: [
    {
      name: 'eks-pod-identity-token',
      mountPath: '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount',
      readOnly: true,
    },
  ],
});
const wi = (name: string, role: string) => ({
  name,
  env: [
    { name: 'AWS_ROLE_ARN', value: role },
    { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token' },
  ],
  volumeMounts: [
    { name: 'aws-iam-token', mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount', readOnly: true },
  ],
});

describe('declaredIdentities (docs/verified-start.md#how-it-works)', () => {
  it('reads container credentials with the audience of the mounted token', () => {
    expect(
      declaredIdentities({ spec: { containers: [cc('a'), cc('b')], volumes: [ccVolume] } }).declared,
    ).toEqual([{ mode: 'ContainerCredentials', audience: 'pods.eks.amazonaws.com' }]);
  });
  it('reads web identity roles from init and regular containers, distinct', () => {
    const d = declaredIdentities({
      spec: {
        initContainers: [wi('i', 'arn:aws:iam::1:role/x')],
        containers: [wi('a', 'arn:aws:iam::1:role/y'), wi('b', 'arn:aws:iam::1:role/y')],
        volumes: [wiVolume('sts.amazonaws.com')],
      },
    });
    expect(d.declared).toEqual([
      { mode: 'WebIdentity', roleARN: 'arn:aws:iam::1:role/x', audience: 'sts.amazonaws.com' },
      { mode: 'WebIdentity', roleARN: 'arn:aws:iam::1:role/y', audience: 'sts.amazonaws.com' },
    ]);
  });
  it('an omitted audience means the API server default', () => {
    expect(
      declaredIdentities({ spec: { containers: [wi('a', 'r')], volumes: [wiVolume()] } }).declared[0]!
        .audience,
    ).toBe('');
  });
  it('a second container naming another role through a "." path is a second identity, not a skip', () => {
    const second = {
      ...wi('b', 'arn:aws:iam::1:role/other'),
      env: [
        { name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::1:role/other' },
        {
          name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
          value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/./token',
        },
      ],
    };
    const d = declaredIdentities({
      spec: {
        containers: [wi('a', 'arn:aws:iam::1:role/x'), second],
        volumes: [wiVolume('sts.amazonaws.com')],
      },
    });
    expect(d).toEqual({
      declared: [
        { mode: 'WebIdentity', roleARN: 'arn:aws:iam::1:role/x', audience: 'sts.amazonaws.com' },
        { mode: 'WebIdentity', roleARN: 'arn:aws:iam::1:role/other', audience: 'sts.amazonaws.com' },
      ],
    });
  });
  it('an identity that cannot be read holds the whole Pod: nothing is declared, the problem names container and field', () => {
    const unreadable = {
      ...wi('b', 'r'),
      env: [{ name: 'AWS_ROLE_ARN', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k' } } }],
    };
    const d = declaredIdentities({
      spec: {
        containers: [wi('a', 'arn:aws:iam::1:role/x'), unreadable],
        volumes: [wiVolume('sts.amazonaws.com')],
      },
    });
    expect(d.declared).toEqual([]);
    expect(d.problem).toContain('container "b": spec.containers[1].env[AWS_ROLE_ARN]');
    expect(
      toGatedPod({
        metadata: { name: 'p' },
        spec: { containers: [unreadable], volumes: [wiVolume('sts.amazonaws.com')] },
      }).problem,
    ).toContain('valueFrom');
  });
  it('ephemeral containers declare identities too', () => {
    expect(
      declaredIdentities({
        spec: { containers: [], ephemeralContainers: [cc('debug')], volumes: [ccVolume] },
      }).declared,
    ).toEqual([{ mode: 'ContainerCredentials', audience: 'pods.eks.amazonaws.com' }]);
  });
  it('half-set variables declare nothing', () => {
    expect(
      declaredIdentities({
        spec: { containers: [{ name: 'a', env: [{ name: 'AWS_ROLE_ARN', value: 'r' }] }] },
      }).declared,
    ).toEqual([]);
  });
});

describe('release patch (docs/verified-start.md#how-it-works)', () => {
  it('tests and removes the gate at its index, adds the annotation', () => {
    const pod = {
      metadata: { name: 'p', annotations: { a: 'b' } },
      spec: {
        containers: [],
        schedulingGates: [{ name: 'example.com/other' }, { name: 'lanyard.dev/identity' }],
      },
    };
    expect(gateIndex(pod)).toBe(1);
    expect(releasePatch(toGatedPod(pod), true)).toEqual([
      { op: 'test', path: '/spec/schedulingGates/1', value: { name: 'lanyard.dev/identity' } },
      { op: 'remove', path: '/spec/schedulingGates/1' },
      { op: 'add', path: '/metadata/annotations/lanyard.dev~1identity-verification', value: 'verified' },
    ]);
  });
  it('adds the annotations map when absent', () => {
    expect(annotationOp('failed', false)).toEqual({
      op: 'add',
      path: '/metadata/annotations',
      value: { 'lanyard.dev/identity-verification': 'failed' },
    });
  });
  it('no gate: index -1', () =>
    expect(gateIndex({ spec: { containers: [], schedulingGates: [{ name: 'x' }] } })).toBe(-1));
});

describe('verify backoff (docs/verified-start.md#controller-flags)', () => {
  const o = { initialMs: 100, maxMs: 500, throttled: false };
  it.each([
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 500],
    [10, 500],
  ])('failure %i -> %i ms without jitter', (n, want) => {
    expect(verifyBackoffMs(n, o, () => 0.5)).toBe(want);
  });
  it('jitter stays within ±20 %', () => {
    expect(verifyBackoffMs(2, o, () => 0)).toBe(160);
    expect(verifyBackoffMs(2, o, () => 1)).toBe(240);
  });
  it('throttling raises the cap to 5 s', () => {
    expect(verifyBackoffMs(10, { ...o, throttled: true }, () => 0.5)).toBe(5000);
  });
});

describe('TokenBucket', () => {
  it('allows the burst, then paces at qps', () => {
    let now = 0;
    const clock = {
      now: () => now,
      sleep: async (ms: number) => {
        now += ms;
      },
    };
    const b = new TokenBucket(10, 3, clock);
    expect([b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([0, 0, 0]);
    expect(b.tryTake()).toBe(100);
    now += 100;
    expect(b.tryTake()).toBe(0);
  });
});

describe('a declared role beyond IAM limits', () => {
  it('holds the Pod as unreadable with a bounded message, declaring nothing', () => {
    const role = `arn:aws:iam::111122223333:role/${'n'.repeat(100_000)}`;
    const p = toGatedPod({
      metadata: { namespace: 'ns', name: 'p', uid: 'u', resourceVersion: '7' },
      spec: {
        serviceAccountName: 'sa',
        schedulingGates: [{ name: 'lanyard.dev/identity' }],
        volumes: [
          {
            name: 'aws-iam-token',
            projected: {
              sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', path: 'token' } }],
            },
          },
        ],
        containers: [
          {
            name: 'app',
            env: [
              { name: 'AWS_ROLE_ARN', value: role },
              {
                name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
                value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
              },
            ],
            volumeMounts: [
              { name: 'aws-iam-token', mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount' },
            ],
          },
        ],
      },
    });
    expect(p.declared).toEqual([]);
    expect(p.resourceVersion).toBe('7');
    expect(p.problem).toMatch(
      /^env AWS_ROLE_ARN "arn:aws:iam::111122223333:role\/n+…\[\d+ more characters\]": is 100031 characters; an IAM role ARN has at most \d+/,
    );
    expect(p.problem!.length).toBeLessThan(500);
  });
});
