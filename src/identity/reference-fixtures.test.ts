// Replays the reference webhook's 24 handler fixtures (the upstream project's handler tests) through the pure core and
// compares the resulting Pods, not patch bytes: volumes by name (the reference prepends, Lanyard appends), everything
// else exactly. The reference's test harness is reproduced: SA default/default, role and audience from the fixture,
// `injectSTS`/`expiration` as SA annotations, the region flag, container-credentials flags from the fixture, and a
// random source pinned to 0 (jitter gives 79200).
import { describe, expect, it } from 'vitest';
import type { Json } from '../core/json.ts';
import { resolveIdentity, type InjectionFlags } from './resolve.ts';
import { buildPatch } from './patch.ts';
import { planRequest } from './pod.ts';
import type { SaSettings } from './annotations.ts';
import { applyAddPatch, TEST_FLAGS } from '../../test/fixtures/identity.ts';

const ARN = 'arn:aws:iam::111122223333:role/s3-reader';
const IRSA_MOUNT = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
const IRSA_FILE = `${IRSA_MOUNT}/token`;
const CC = {
  containerCredentialsFullUri: 'con-creds-uri',
  containerCredentialsAudience: 'con-creds-aud',
  containerCredentialsTokenMountPath: '/con-creds-mount-path',
  containerCredentialsTokenVolumeName: 'con-creds-volume-name',
  containerCredentialsTokenPath: 'con-creds-token-path',
};
const CC_FILE = '/con-creds-mount-path/con-creds-token-path';

interface Fixture {
  name: string;
  spec: Json;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  sa?: Partial<SaSettings>;
  region?: string;
  cc?: boolean;
  /** Expected env per container name (init containers included), in order. */
  env: Record<string, Array<[string, string]>>;
  /** Expected volumeMounts per container name. */
  mounts: Record<string, Json[]>;
  /** Expected volumes by name. */
  volumes: Record<string, Json>;
  podLabels?: Record<string, string>;
  /** Extra checks on the resulting Pod. */
  check?: (pod: Json) => void;
}

const irsaVolume = (exp = 86400) => ({
  projected: {
    sources: [
      { serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: exp, path: 'token' } },
    ],
  },
});
const ccVolume = (exp = 79200) => ({
  projected: {
    sources: [
      {
        serviceAccountToken: {
          audience: 'con-creds-aud',
          expirationSeconds: exp,
          path: 'con-creds-token-path',
        },
      },
    ],
  },
});
const irsaMount = { name: 'aws-iam-token', readOnly: true, mountPath: IRSA_MOUNT };
const ccMount = { name: 'con-creds-volume-name', readOnly: true, mountPath: '/con-creds-mount-path' };
const irsaEnv: Array<[string, string]> = [
  ['AWS_ROLE_ARN', ARN],
  ['AWS_WEB_IDENTITY_TOKEN_FILE', IRSA_FILE],
];
const ccEnv: Array<[string, string]> = [
  ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'con-creds-uri'],
  ['AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', CC_FILE],
];
const c = (name: string, extra: Json = {}) => ({ name, image: 'amazonlinux', ...extra });

const FIXTURES: Fixture[] = [
  {
    name: 'rawPodWithoutVolumes',
    spec: { containers: [c('balajilovesoreos')] },
    env: { balajilovesoreos: irsaEnv },
    mounts: { balajilovesoreos: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'rawPodWithVolumes',
    spec: {
      containers: [c('app', { volumeMounts: [{ name: 'data', mountPath: '/data' }] })],
      volumes: [{ name: 'data', emptyDir: {} }],
    },
    env: { app: irsaEnv },
    mounts: { app: [{ name: 'data', mountPath: '/data' }, irsaMount] },
    volumes: { data: { emptyDir: {} }, 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'rawPodHasVolumeMount',
    spec: {
      containers: [
        c('app', {
          volumeMounts: [
            {
              name: 'aws-iam-token',
              mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
              path: 'x',
            },
          ],
        }),
      ],
      volumes: [{ name: 'aws-iam-token', hostPath: { path: '/tmp' } }],
    },
    env: { app: irsaEnv },
    // Lanyard keeps the mount as sent (the reference's Go round-trip dropped the unknown `path` field).
    mounts: {
      app: [
        { name: 'aws-iam-token', mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount', path: 'x' },
      ],
    },
    volumes: { 'aws-iam-token': { hostPath: { path: '/tmp' } } },
  },
  {
    name: 'rawPodNeedsRegion',
    region: 'seattle',
    spec: { containers: [c('app')] },
    env: { app: [['AWS_DEFAULT_REGION', 'seattle'], ['AWS_REGION', 'seattle'], ...irsaEnv] },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'rawPodRegionPresent',
    spec: { containers: [c('app', { env: [{ name: 'AWS_REGION', value: 'paris' }] })] },
    env: { app: [['AWS_REGION', 'paris'], ...irsaEnv] },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'rawPodNeedsSTS',
    sa: { regionalSts: true, roleARN: 'arn:aws-cn:iam::111122223333:role/s3-reader' },
    region: 'cn-north-1',
    spec: { containers: [c('app')] },
    env: {
      app: [
        ['AWS_STS_REGIONAL_ENDPOINTS', 'regional'],
        ['AWS_DEFAULT_REGION', 'cn-north-1'],
        ['AWS_REGION', 'cn-north-1'],
        ['AWS_ROLE_ARN', 'arn:aws-cn:iam::111122223333:role/s3-reader'],
        ['AWS_WEB_IDENTITY_TOKEN_FILE', IRSA_FILE],
      ],
    },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'rawPodHasSTS',
    sa: { regionalSts: true },
    region: 'us-west-2',
    spec: {
      containers: [
        c('app', {
          env: [
            { name: 'AWS_REGION', value: 'paris' },
            { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'legacy' },
          ],
        }),
      ],
    },
    env: { app: [['AWS_REGION', 'paris'], ['AWS_STS_REGIONAL_ENDPOINTS', 'legacy'], ...irsaEnv] },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    // SA sts-regional-endpoints "false" is the first present, so injectSTS "true" never reaches the cache.
    name: 'rawPodNoSTSAnnotationOverride',
    sa: { regionalSts: false },
    region: 'us-east-1',
    spec: { containers: [c('app')] },
    env: { app: [['AWS_DEFAULT_REGION', 'us-east-1'], ['AWS_REGION', 'us-east-1'], ...irsaEnv] },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'rawPodHasTokenExpiration',
    annotations: { 'eks.amazonaws.com/token-expiration': '3600' },
    spec: { containers: [c('app')] },
    env: { app: irsaEnv },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume(3600) },
  },
  {
    name: 'rawPodMinTokenExpiration',
    annotations: { 'eks.amazonaws.com/token-expiration': '0' },
    spec: { containers: [c('app')] },
    env: { app: irsaEnv },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume(600) },
  },
  {
    name: 'rawPodHasAll',
    sa: { tokenExpiration: 3600 },
    spec: {
      containers: [
        c('app', {
          env: [
            { name: 'AWS_REGION', value: 'paris' },
            { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' },
            { name: 'AWS_ROLE_ARN', value: 'preset' },
          ],
        }),
      ],
    },
    env: {
      app: [
        ['AWS_REGION', 'paris'],
        ['AWS_STS_REGIONAL_ENDPOINTS', 'regional'],
        ['AWS_ROLE_ARN', 'preset'],
      ],
    },
    mounts: { app: [] },
    volumes: { 'aws-iam-token': irsaVolume(3600) },
  },
  {
    name: 'rawPodSkip',
    region: 'us-west-2',
    annotations: { 'eks.amazonaws.com/skip-containers': 'sidecar' },
    spec: {
      containers: [c('app', { env: [{ name: 'AWS_ROLE_ARN', value: 'already-defined' }] }), c('sidecar')],
    },
    env: {
      app: [
        ['AWS_ROLE_ARN', 'already-defined'],
        ['AWS_DEFAULT_REGION', 'us-west-2'],
        ['AWS_REGION', 'us-west-2'],
      ],
      sidecar: [],
    },
    // Lanyard departs from the reference here: a container naming a role of its own gets no token (docs/security.md §2).
    mounts: { app: [], sidecar: [] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'initPodNeedsRegion',
    region: 'seattle',
    spec: { initContainers: [c('init')], containers: [c('app')] },
    env: {
      init: [['AWS_DEFAULT_REGION', 'seattle'], ['AWS_REGION', 'seattle'], ...irsaEnv],
      app: [['AWS_DEFAULT_REGION', 'seattle'], ['AWS_REGION', 'seattle'], ...irsaEnv],
    },
    mounts: { init: [irsaMount], app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'rawPodWithInitContainer',
    spec: { initContainers: [c('init'), c('sidecar', { restartPolicy: 'Always' })], containers: [c('app')] },
    env: { init: irsaEnv, sidecar: irsaEnv, app: irsaEnv },
    mounts: { init: [irsaMount], sidecar: [irsaMount], app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
    check: (p) => expect(p.spec.initContainers[1].restartPolicy).toBe('Always'),
  },
  {
    name: 'rawPodWithGRPC',
    spec: { containers: [c('app', { readinessProbe: { grpc: { port: 8080 }, initialDelaySeconds: 5 } })] },
    env: { app: irsaEnv },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
    // No `"service": null` artefact: the probe is exactly as sent.
    check: (p) =>
      expect(p.spec.containers[0].readinessProbe).toEqual({ grpc: { port: 8080 }, initialDelaySeconds: 5 }),
  },
  {
    name: 'rawPodWithsecCompProfile',
    spec: { containers: [c('app', { securityContext: { seccompProfile: { type: 'RuntimeDefault' } } })] },
    env: { app: irsaEnv },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
    check: (p) =>
      expect(p.spec.containers[0].securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' } }),
  },
  {
    name: 'windowsPodWithoutVolumes',
    spec: { nodeSelector: { 'kubernetes.io/os': 'windows' }, containers: [c('app')] },
    env: {
      app: [
        ['AWS_ROLE_ARN', ARN],
        ['AWS_WEB_IDENTITY_TOKEN_FILE', 'C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token'],
      ],
    },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'betaWindowsPodWithoutVolumes',
    spec: { nodeSelector: { 'beta.kubernetes.io/os': 'windows' }, containers: [c('app')] },
    env: {
      app: [
        ['AWS_ROLE_ARN', ARN],
        ['AWS_WEB_IDENTITY_TOKEN_FILE', 'C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token'],
      ],
    },
    mounts: { app: [irsaMount] },
    volumes: { 'aws-iam-token': irsaVolume() },
  },
  {
    name: 'containercredentials/rawPodWithoutVolumes',
    cc: true,
    spec: { containers: [c('app')] },
    env: { app: ccEnv },
    mounts: { app: [ccMount] },
    volumes: { 'con-creds-volume-name': ccVolume() },
    podLabels: { 'eks.amazonaws.com/pod-identity': 'enabled' },
  },
  {
    name: 'containercredentials/rawPodWithVolume',
    cc: true,
    spec: { containers: [c('app')], volumes: [{ name: 'tokenPath', emptyDir: {} }] },
    env: { app: ccEnv },
    mounts: { app: [ccMount] },
    volumes: { tokenPath: { emptyDir: {} }, 'con-creds-volume-name': ccVolume() },
    podLabels: { 'eks.amazonaws.com/pod-identity': 'enabled' },
  },
  {
    name: 'containercredentials/rawPodWithConflictingVolumeMount',
    cc: true,
    labels: { app: 'x' },
    spec: {
      containers: [
        c('app', { volumeMounts: [{ name: 'con-creds-volume-name', mountPath: '/some/other/path' }] }),
      ],
      volumes: [{ name: 'con-creds-volume-name', hostPath: { path: '/tmp' } }],
    },
    env: { app: ccEnv },
    mounts: { app: [{ name: 'con-creds-volume-name', mountPath: '/some/other/path' }] },
    volumes: { 'con-creds-volume-name': { hostPath: { path: '/tmp' } } },
    podLabels: { app: 'x', 'eks.amazonaws.com/pod-identity': 'enabled' },
  },
  {
    name: 'containercredentials/rawPodSkip',
    cc: true,
    annotations: { 'eks.amazonaws.com/skip-containers': 'sidecar' },
    spec: { containers: [c('app'), c('sidecar')] },
    env: { app: ccEnv, sidecar: [] },
    mounts: { app: [ccMount], sidecar: [] },
    volumes: { 'con-creds-volume-name': ccVolume() },
    podLabels: { 'eks.amazonaws.com/pod-identity': 'enabled' },
  },
  {
    name: 'containercredentials/rawPodWithRoleArn',
    cc: true,
    sa: { regionalSts: true, tokenExpiration: 10000 },
    spec: { containers: [c('app')] },
    env: { app: [['AWS_STS_REGIONAL_ENDPOINTS', 'regional'], ...ccEnv] },
    mounts: { app: [ccMount] },
    volumes: { 'con-creds-volume-name': ccVolume(10000) },
    podLabels: { 'eks.amazonaws.com/pod-identity': 'enabled' },
  },
  {
    name: 'containercredentials/rawPodNeedsAll',
    cc: true,
    region: 'cn-north-1',
    sa: { regionalSts: true, tokenExpiration: 10000 },
    spec: { containers: [c('app')] },
    env: {
      app: [
        ['AWS_STS_REGIONAL_ENDPOINTS', 'regional'],
        ['AWS_DEFAULT_REGION', 'cn-north-1'],
        ['AWS_REGION', 'cn-north-1'],
        ...ccEnv,
      ],
    },
    mounts: { app: [ccMount] },
    volumes: { 'con-creds-volume-name': ccVolume(10000) },
    podLabels: { 'eks.amazonaws.com/pod-identity': 'enabled' },
  },
];

function replay(f: Fixture): Json {
  const pod = {
    apiVersion: 'v1' as const,
    kind: 'Pod' as const,
    metadata: {
      name: f.name.replace('/', '-').toLowerCase(),
      namespace: 'default',
      ...(f.labels ? { labels: f.labels } : {}),
      ...(f.annotations ? { annotations: f.annotations } : {}),
    },
    spec: { serviceAccountName: 'default', ...f.spec },
  };
  const flags: InjectionFlags = { ...TEST_FLAGS, ...CC, awsDefaultRegion: f.region ?? '' };
  const plan = planRequest({
    uid: 'u',
    operation: 'CREATE',
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace: 'default',
    object: pod,
  });
  if (plan.kind !== 'pod') throw new Error(`${f.name}: ${JSON.stringify(plan)}`);
  // Every IRSA fixture's SA carries the role and the sts.amazonaws.com audience; cc fixtures put default/default in the file.
  const settings: SaSettings = { uid: 'sa', roleARN: ARN, audience: 'sts.amazonaws.com', ...f.sa };
  const r = resolveIdentity(
    {
      namespace: 'default',
      serviceAccount: 'default',
      podAnnotations: plan.pod.annotations,
      sa: { found: true, settings },
      inIdentitiesFile: f.cc ?? false,
      configMap: new Map(),
    },
    flags,
    () => 0,
  );
  if (!r) throw new Error(`${f.name}: no identity`);
  const ops = buildPatch(pod, r.injection, {
    gate: false,
    windows: plan.pod.windows,
    annotationPrefix: 'eks.amazonaws.com',
  });
  return applyAddPatch(pod, ops);
}

describe('reference fixtures (pkg/handler/testdata), compared as resulting Pods', () => {
  it('covers all 24 fixtures', () => expect(FIXTURES).toHaveLength(24));

  it.each(FIXTURES.map((f) => [f.name, f] as const))('%s', (_n, f) => {
    const pod = replay(f);
    const containers: Json[] = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
    for (const [name, env] of Object.entries(f.env)) {
      const got = containers.find((x) => x.name === name);
      expect(
        (got.env ?? []).map((e: Json) => [e.name, e.value]),
        `env of ${name}`,
      ).toEqual(env);
      expect(got.volumeMounts ?? [], `mounts of ${name}`).toEqual(f.mounts[name]);
    }
    const volumes = Object.fromEntries(
      (pod.spec.volumes ?? []).map(({ name, ...rest }: Json) => [name, rest]),
    );
    expect(volumes).toEqual(f.volumes);
    expect(pod.metadata.labels).toEqual(f.podLabels ?? f.labels);
    f.check?.(pod);
  });
});
