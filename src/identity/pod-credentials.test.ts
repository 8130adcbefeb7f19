import { describe, expect, it } from 'vitest';
import type { Json } from '../core/json.ts';
import {
  credentialOptions,
  distinctIdentities,
  podCredentials,
  resolveContainerPath,
} from './pod-credentials.ts';

const O = credentialOptions();
const ROLE = 'arn:aws:iam::111122223333:role/uploader';
const OTHER = 'arn:aws:iam::111122223333:role/admin';
const WI_DIR = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
const CC_DIR = '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount';

const tokenVolume = (name: string, audience: string | undefined, tokenPath = 'token') => ({
  name,
  projected: {
    sources: [
      {
        serviceAccountToken: {
          ...(audience !== undefined ? { audience } : {}),
          expirationSeconds: 3600,
          path: tokenPath,
        },
      },
    ],
  },
});
const wiVolume = tokenVolume('aws-iam-token', 'sts.amazonaws.com');
const ccVolume = tokenVolume('eks-pod-identity-token', 'pods.eks.amazonaws.com', 'eks-pod-identity-token');
const wiMount = { name: 'aws-iam-token', mountPath: WI_DIR, readOnly: true };
const ccMount = { name: 'eks-pod-identity-token', mountPath: CC_DIR, readOnly: true };
const env = (vars: Record<string, string>) => Object.entries(vars).map(([name, value]) => ({ name, value }));
/** What the webhook injects for web identity. */
const injected = (name: string, role = ROLE, file = `${WI_DIR}/token`) => ({
  name,
  image: 'i',
  env: env({ AWS_ROLE_ARN: role, AWS_WEB_IDENTITY_TOKEN_FILE: file }),
  volumeMounts: [wiMount],
});
const pod = (spec: Json): Json => ({
  metadata: { name: 'p', namespace: 'team-a' },
  spec: { serviceAccountName: 'uploader', ...spec },
});

/** Compact view: container name, mode, role, audience. */
const ids = (p: Json) =>
  podCredentials(p, O).identities.map((i) => [i.container.name, i.mode, i.roleARN ?? '-', i.audience]);
const unreadable = (p: Json) => podCredentials(p, O).unreadable.map((u) => [u.container.name, u.field]);

describe('podCredentials: web identity from container env', () => {
  it.each<[string, string]>([
    ['the injected path', `${WI_DIR}/token`],
    ['a "." segment', `${WI_DIR}/./token`],
    ['a ".." segment', `${WI_DIR}/../serviceaccount/token`],
    ['double slashes', `/var/run//secrets/eks.amazonaws.com/serviceaccount//token`],
    ["the atomic writer's ..data directory", `${WI_DIR}/..data/token`],
    ['a timestamped atomic-writer directory', `${WI_DIR}/..2026_12_02_20_00_00.123456789/token`],
    ['a Windows path', 'C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token'],
  ])('follows the token file through %s', (_what, file) => {
    const p = pod({ volumes: [wiVolume], containers: [injected('app'), injected('second', OTHER, file)] });
    expect(ids(p)).toEqual([
      ['app', 'WebIdentity', ROLE, 'sts.amazonaws.com'],
      ['second', 'WebIdentity', OTHER, 'sts.amazonaws.com'],
    ]);
    expect(unreadable(p)).toEqual([]);
  });

  it("resolves a relative token file against the container's workingDir", () => {
    const c = {
      name: 'rel',
      workingDir: WI_DIR,
      env: env({ AWS_ROLE_ARN: OTHER, AWS_WEB_IDENTITY_TOKEN_FILE: './token' }),
      volumeMounts: [wiMount],
    };
    expect(ids(pod({ volumes: [wiVolume], containers: [c] }))).toEqual([
      ['rel', 'WebIdentity', OTHER, 'sts.amazonaws.com'],
    ]);
  });

  it('a relative token file without workingDir still reaches every STS token the container holds', () => {
    const c = {
      name: 'rel',
      env: env({ AWS_ROLE_ARN: OTHER, AWS_WEB_IDENTITY_TOKEN_FILE: 'token' }),
      volumeMounts: [wiMount],
    };
    expect(ids(pod({ volumes: [wiVolume], containers: [c] }))).toEqual([
      ['rel', 'WebIdentity', OTHER, 'sts.amazonaws.com'],
    ]);
  });

  it('AWS_ROLE_ARN without a token file counts when the container holds an STS token', () => {
    const c = { name: 'half', env: env({ AWS_ROLE_ARN: OTHER }), volumeMounts: [wiMount] };
    expect(ids(pod({ volumes: [wiVolume], containers: [c] }))).toEqual([
      ['half', 'WebIdentity', OTHER, 'sts.amazonaws.com'],
    ]);
  });

  it('AWS_ROLE_ARN in a container without any token gives nothing through the cluster', () => {
    const c = {
      name: 'bare',
      env: env({ AWS_ROLE_ARN: OTHER, AWS_WEB_IDENTITY_TOKEN_FILE: `${WI_DIR}/token` }),
    };
    expect(podCredentials(pod({ volumes: [wiVolume], containers: [c] }), O)).toEqual({
      identities: [],
      unreadable: [],
    });
  });

  it('a token mounted anywhere with subPath is found at its mount path', () => {
    const c = {
      name: 'sub',
      env: env({ AWS_ROLE_ARN: OTHER, AWS_WEB_IDENTITY_TOKEN_FILE: '/tmp/t' }),
      volumeMounts: [{ name: 'mine', mountPath: '/tmp/t', subPath: 'tok' }],
    };
    expect(ids(pod({ volumes: [tokenVolume('mine', 'sts.amazonaws.com', 'tok')], containers: [c] }))).toEqual(
      [['sub', 'WebIdentity', OTHER, 'sts.amazonaws.com']],
    );
  });

  it('a token file pointing at a token with the default audience declares that identity (audience "")', () => {
    const c = {
      name: 'default',
      env: env({
        AWS_ROLE_ARN: OTHER,
        AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      }),
      volumeMounts: [
        { name: 'kube-api-access-x', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
      ],
    };
    expect(ids(pod({ volumes: [tokenVolume('kube-api-access-x', undefined)], containers: [c] }))).toEqual([
      ['default', 'WebIdentity', OTHER, ''],
    ]);
  });

  it('the default-audience token alone is not an AWS token', () => {
    const c = {
      name: 'plain',
      volumeMounts: [
        { name: 'kube-api-access-x', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
      ],
    };
    expect(
      podCredentials(pod({ volumes: [tokenVolume('kube-api-access-x', undefined)], containers: [c] }), O),
    ).toEqual({ identities: [], unreadable: [] });
  });

  it('reads init, regular and ephemeral containers, and names the field', () => {
    const p = pod({
      volumes: [wiVolume],
      initContainers: [injected('init')],
      containers: [injected('app')],
      ephemeralContainers: [{ ...injected('debugger', OTHER), targetContainerName: 'app' }],
    });
    const r = podCredentials(p, O);
    expect(r.identities.map((i) => [i.container.list, i.container.index, i.field])).toEqual([
      ['initContainers', 0, 'spec.initContainers[0].env[AWS_ROLE_ARN]'],
      ['containers', 0, 'spec.containers[0].env[AWS_ROLE_ARN]'],
      ['ephemeralContainers', 0, 'spec.ephemeralContainers[0].env[AWS_ROLE_ARN]'],
    ]);
    expect(distinctIdentities(r.identities).map((i) => i.roleARN)).toEqual([ROLE, OTHER]);
  });

  it('the last env entry of a name wins, as in the kubelet', () => {
    const c = {
      name: 'dup',
      env: [
        ...env({ AWS_ROLE_ARN: ROLE }),
        ...env({ AWS_ROLE_ARN: OTHER, AWS_WEB_IDENTITY_TOKEN_FILE: `${WI_DIR}/token` }),
      ],
      volumeMounts: [wiMount],
    };
    expect(ids(pod({ volumes: [wiVolume], containers: [c] }))).toEqual([
      ['dup', 'WebIdentity', OTHER, 'sts.amazonaws.com'],
    ]);
  });
});

describe('podCredentials: container credentials', () => {
  it('a Pod Identity token mounted in a container is container credentials, whatever the env says', () => {
    const p = pod({
      volumes: [ccVolume],
      containers: [{ name: 'quiet', volumeMounts: [{ ...ccMount, mountPath: '/somewhere/else' }] }],
    });
    expect(ids(p)).toEqual([['quiet', 'ContainerCredentials', '-', 'pods.eks.amazonaws.com']]);
  });
  it.each([
    ['FULL_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI'],
    ['RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI'],
  ])("the %s variable with the token file gives the token's audience", (_n, uriVar) => {
    const c = {
      name: 'cc',
      env: env({
        [uriVar]: 'http://169.254.170.23/v1/credentials',
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: `${CC_DIR}/eks-pod-identity-token`,
      }),
      volumeMounts: [ccMount],
    };
    expect(ids(pod({ volumes: [ccVolume], containers: [c] }))).toEqual([
      ['cc', 'ContainerCredentials', '-', 'pods.eks.amazonaws.com'],
    ]);
  });
  it('container-credentials variables pointing at an STS token declare that audience too (held: eks-auth refuses it)', () => {
    const c = {
      name: 'odd',
      env: env({
        AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://x',
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: `${WI_DIR}/token`,
        AWS_ROLE_ARN: ROLE,
      }),
      volumeMounts: [wiMount],
    };
    expect(ids(pod({ volumes: [wiVolume], containers: [c] }))).toEqual([
      ['odd', 'ContainerCredentials', '-', 'sts.amazonaws.com'],
      ['odd', 'WebIdentity', ROLE, 'sts.amazonaws.com'],
    ]);
  });
  it('configured audiences count as AWS audiences', () => {
    const o = credentialOptions({ stsAudiences: ['amazonaws.com'], podIdentityAudiences: ['agent.example'] });
    const p = pod({
      volumes: [tokenVolume('a', 'amazonaws.com'), tokenVolume('b', 'agent.example')],
      containers: [
        {
          name: 'c',
          env: env({ AWS_ROLE_ARN: ROLE }),
          volumeMounts: [
            { name: 'a', mountPath: '/a' },
            { name: 'b', mountPath: '/b' },
          ],
        },
      ],
    });
    expect(podCredentials(p, o).identities.map((i) => [i.mode, i.audience])).toEqual([
      ['ContainerCredentials', 'agent.example'],
      ['WebIdentity', 'amazonaws.com'],
    ]);
  });
});

describe('podCredentials: what cannot be read is reported, never skipped', () => {
  const withToken = (c: Json) =>
    pod({ volumes: [wiVolume], containers: [{ name: 'c', volumeMounts: [wiMount], ...c }] });
  it.each<[string, Json, string]>([
    [
      'AWS_ROLE_ARN from a ConfigMap key',
      { env: [{ name: 'AWS_ROLE_ARN', valueFrom: { configMapKeyRef: { name: 'cm', key: 'role' } } }] },
      'spec.containers[0].env[AWS_ROLE_ARN]',
    ],
    [
      'AWS_ROLE_ARN from a Secret key',
      { env: [{ name: 'AWS_ROLE_ARN', valueFrom: { secretKeyRef: { name: 's', key: 'role' } } }] },
      'spec.containers[0].env[AWS_ROLE_ARN]',
    ],
    [
      'AWS_ROLE_ARN from the downward API',
      {
        env: [{ name: 'AWS_ROLE_ARN', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['r']" } } }],
      },
      'spec.containers[0].env[AWS_ROLE_ARN]',
    ],
    [
      'AWS_ROLE_ARN with $(VAR) expansion',
      { env: env({ R: OTHER, AWS_ROLE_ARN: '$(R)' }) },
      'spec.containers[0].env[AWS_ROLE_ARN]',
    ],
    [
      'envFrom a ConfigMap',
      { envFrom: [{ configMapRef: { name: 'cm' } }] },
      'spec.containers[0].envFrom[0] (configMapRef "cm")',
    ],
    [
      'envFrom a Secret with prefix AWS_',
      { envFrom: [{ prefix: 'AWS_', secretRef: { name: 's' } }] },
      'spec.containers[0].envFrom[0] (secretRef "s")',
    ],
    ['a token and no role at all', {}, 'spec.containers[0].volumeMounts[0]'],
  ])('%s', (_what, c, field) => {
    const r = podCredentials(withToken(c), O);
    expect(r.identities).toEqual([]);
    expect(r.unreadable.map((u) => u.field)).toEqual([field]);
    expect(r.unreadable[0]!.reason).toMatch(/AWS_ROLE_ARN|role/);
  });
  it('envFrom with a prefix no credential variable starts with is harmless', () => {
    expect(
      podCredentials(
        withToken({
          env: env({ AWS_ROLE_ARN: ROLE }),
          envFrom: [{ prefix: 'APP_', configMapRef: { name: 'cm' } }],
        }),
        O,
      ).unreadable,
    ).toEqual([]);
  });
  it('an explicit value beats envFrom (the kubelet lets env override envFrom)', () => {
    const r = podCredentials(
      withToken({
        env: env({ AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: `${WI_DIR}/token` }),
        envFrom: [{ configMapRef: { name: 'cm' } }],
      }),
      O,
    );
    expect(r.unreadable).toEqual([]);
    expect(r.identities.map((i) => i.roleARN)).toEqual([ROLE]);
  });
  it('envFrom in a container without an AWS token is no way to credentials', () => {
    expect(
      podCredentials(
        pod({
          volumes: [wiVolume],
          containers: [{ name: 'c', envFrom: [{ configMapRef: { name: 'cm' } }] }],
        }),
        O,
      ),
    ).toEqual({ identities: [], unreadable: [] });
  });
  it('a token mounted with subPathExpr is still within reach of the named role', () => {
    const c = {
      name: 'expr',
      env: env({ AWS_ROLE_ARN: OTHER, AWS_WEB_IDENTITY_TOKEN_FILE: '/t/token' }),
      volumeMounts: [{ name: 'aws-iam-token', mountPath: '/t', subPathExpr: '$(X)' }],
    };
    expect(ids(pod({ volumes: [wiVolume], containers: [c] }))).toEqual([
      ['expr', 'WebIdentity', OTHER, 'sts.amazonaws.com'],
    ]);
  });
});

describe('podCredentials: robustness', () => {
  it.each<[string, Json]>([
    ['no spec', {}],
    ['null', null],
    ['containers not an array', { spec: { containers: 'x' } }],
    [
      'garbage entries',
      {
        spec: {
          volumes: [null, 1, { name: 'v' }],
          containers: [null, { name: 'a', env: [null, { name: 1 }], volumeMounts: [null, { name: 'v' }] }],
        },
      },
    ],
  ])('%s yields nothing and does not throw', (_w, p) => {
    expect(podCredentials(p, O)).toEqual({ identities: [], unreadable: [] });
  });
  it('resolveContainerPath normalises absolute paths and needs a working dir for relative ones', () => {
    expect(resolveContainerPath('/a//b/./c/../d', undefined)).toBe('/a/b/d');
    expect(resolveContainerPath('d', undefined)).toBeUndefined();
    expect(resolveContainerPath('../d', '/w/x')).toBe('/w/d');
  });
});
