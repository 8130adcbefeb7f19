import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { buildPatch, escapePointer, IDENTITY_GATE, withGate } from './patch.ts';
import { planRequest } from './pod.ts';
import { resolveIdentity, type Injection } from './resolve.ts';
import { applyAddPatch, TEST_FLAGS } from '../../test/fixtures/identity.ts';
import type { Json } from '../core/json.ts';

const ROLE = 'arn:aws:iam::111122223333:role/uploader';

function injection(
  mode: 'WebIdentity' | 'ContainerCredentials',
  over: Partial<typeof TEST_FLAGS> = {},
  sa: object = {},
): Injection {
  const flags = { ...TEST_FLAGS, ...over };
  const r = resolveIdentity(
    {
      namespace: 'team-a',
      serviceAccount: 'uploader',
      podAnnotations: undefined,
      sa: {
        found: true,
        settings: { uid: 'u', ...(mode === 'WebIdentity' ? { roleARN: ROLE } : {}), ...sa },
      },
      inIdentitiesFile: mode === 'ContainerCredentials',
      configMap: new Map(),
    },
    flags,
    () => 1 - Number.EPSILON,
  );
  return r!.injection;
}
const opts = (o: Partial<{ gate: boolean; windows: boolean }> = {}) => ({
  gate: false,
  windows: false,
  annotationPrefix: 'eks.amazonaws.com',
  ...o,
});
const pod = (spec: Json, metadata: Json = { name: 'p', namespace: 'team-a' }) => ({
  apiVersion: 'v1' as const,
  kind: 'Pod' as const,
  metadata,
  spec,
});

describe('patch shape (docs/webhook.md#what-is-injected)', () => {
  it('reproduces the spec example exactly', () => {
    const inj = injection('WebIdentity', { awsDefaultRegion: 'eu-west-1' });
    const ops = buildPatch(
      pod({ containers: [{ name: 'app', env: [{ name: 'LOG', value: '1' }] }] }),
      inj,
      opts(),
    );
    expect(ops).toEqual([
      {
        op: 'add',
        path: '/spec/volumes',
        value: [
          {
            name: 'aws-iam-token',
            projected: {
              sources: [
                {
                  serviceAccountToken: {
                    audience: 'sts.amazonaws.com',
                    expirationSeconds: 86400,
                    path: 'token',
                  },
                },
              ],
            },
          },
        ],
      },
      {
        op: 'add',
        path: '/spec/containers/0/env/-',
        value: { name: 'AWS_DEFAULT_REGION', value: 'eu-west-1' },
      },
      { op: 'add', path: '/spec/containers/0/env/-', value: { name: 'AWS_REGION', value: 'eu-west-1' } },
      { op: 'add', path: '/spec/containers/0/env/-', value: { name: 'AWS_ROLE_ARN', value: ROLE } },
      {
        op: 'add',
        path: '/spec/containers/0/env/-',
        value: {
          name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
          value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
        },
      },
      {
        op: 'add',
        path: '/spec/containers/0/volumeMounts',
        value: [
          {
            name: 'aws-iam-token',
            readOnly: true,
            mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
          },
        ],
      },
    ]);
    // Key order of the serialised volume matters to byte-comparing readers.
    expect(JSON.stringify(ops[0]!.value)).toBe(
      '[{"name":"aws-iam-token","projected":{"sources":[{"serviceAccountToken":{"audience":"sts.amazonaws.com","expirationSeconds":86400,"path":"token"}}]}}]',
    );
  });

  it('orders label, gate, volume, init containers, containers; env as one array when absent', () => {
    const inj = injection('ContainerCredentials', { stsRegionalEndpoint: true });
    const ops = buildPatch(
      pod(
        {
          initContainers: [{ name: 'init' }],
          containers: [{ name: 'c', env: null }],
          volumes: [{ name: 'x' }],
          schedulingGates: [{ name: 'other' }],
        },
        { name: 'p', labels: { a: 'b' } },
      ),
      inj,
      opts({ gate: true }),
    );
    expect(ops.map((o) => o.path)).toEqual([
      '/metadata/labels/eks.amazonaws.com~1pod-identity',
      '/spec/schedulingGates/-',
      '/spec/volumes/-',
      '/spec/initContainers/0/env',
      '/spec/initContainers/0/volumeMounts',
      '/spec/containers/0/env',
      '/spec/containers/0/volumeMounts',
    ]);
    expect(ops[1]!.value).toEqual({ name: IDENTITY_GATE });
    expect((ops[5]!.value as Json[]).map((e) => e.name)).toEqual([
      'AWS_STS_REGIONAL_ENDPOINTS',
      'AWS_CONTAINER_CREDENTIALS_FULL_URI',
      'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
    ]);
  });

  it('adds the whole label map when labels are absent or null, and nothing when the label exists', () => {
    const inj = injection('ContainerCredentials');
    expect(buildPatch(pod({}, { name: 'p' }), inj, opts())[0]).toEqual({
      op: 'add',
      path: '/metadata/labels',
      value: { 'eks.amazonaws.com/pod-identity': 'enabled' },
    });
    expect(buildPatch(pod({}, { name: 'p', labels: null }), inj, opts())[0]!.path).toBe('/metadata/labels');
    expect(
      buildPatch(pod({}, { labels: { 'eks.amazonaws.com/pod-identity': 'no' } }), inj, opts()).map(
        (o) => o.path,
      ),
    ).toEqual(['/spec/volumes']);
  });

  it('adds the gate array when absent and never twice', () => {
    const inj = injection('WebIdentity');
    expect(buildPatch(pod({}), inj, opts({ gate: true }))[0]).toEqual({
      op: 'add',
      path: '/spec/schedulingGates',
      value: [{ name: IDENTITY_GATE }],
    });
    expect(
      buildPatch(pod({ schedulingGates: [{ name: IDENTITY_GATE }] }), inj, opts({ gate: true })).some((o) =>
        o.path.includes('schedulingGates'),
      ),
    ).toBe(false);
  });

  it('withGate puts the gate where buildPatch does: after the Pod label op, before the volume', () => {
    const pods = [
      pod({ containers: [{ name: 'app' }] }),
      pod({ containers: [{ name: 'app' }] }, {}),
      pod({ containers: [{ name: 'app' }], schedulingGates: [{ name: 'other' }] }, { labels: { a: 'b' } }),
      pod({ containers: [{ name: 'app' }], schedulingGates: [{ name: IDENTITY_GATE }] }),
      pod({ containers: [], volumes: [{ name: 'aws-iam-token' }, { name: 'eks-pod-identity-token' }] }),
    ];
    for (const mode of ['WebIdentity', 'ContainerCredentials'] as const) {
      const inj = injection(mode);
      for (const p of pods) {
        const gated = buildPatch(p, inj, opts({ gate: true }));
        expect(withGate(p, buildPatch(p, inj, opts()))).toEqual(gated);
      }
    }
    const cc = buildPatch(pods[2]!, injection('ContainerCredentials'), opts({ gate: true }));
    expect(cc.slice(0, 3).map((o) => o.path)).toEqual([
      '/metadata/labels/eks.amazonaws.com~1pod-identity',
      '/spec/schedulingGates/-',
      '/spec/volumes',
    ]);
  });

  it('adds the volume even when every container is skipped; no patch at all when nothing is missing', () => {
    const inj = injection('WebIdentity');
    const p = pod(
      { containers: [{ name: 'a' }, { name: 'b' }] },
      { annotations: { 'eks.amazonaws.com/skip-containers': '"a", b' } },
    );
    expect(buildPatch(p, inj, opts()).map((o) => o.path)).toEqual(['/spec/volumes']);
    expect(buildPatch(pod({ containers: [], volumes: [{ name: 'aws-iam-token' }] }), inj, opts())).toEqual(
      [],
    );
  });

  it('omits an empty audience and has no defaultMode', () => {
    const inj = injection('WebIdentity', {}, { audience: '' });
    const ops = buildPatch(pod({}), inj, opts());
    expect(ops[0]!.value).toEqual([
      {
        name: 'aws-iam-token',
        projected: { sources: [{ serviceAccountToken: { expirationSeconds: 86400, path: 'token' } }] },
      },
    ]);
  });

  it('escapes pointer segments', () => {
    expect(escapePointer('a/b~c')).toBe('a~1b~0c');
  });
});

describe('per-container rules (docs/webhook.md#what-is-injected)', () => {
  const env = (...names: string[]) => names.map((name) => ({ name, value: 'x' }));
  const envOps = (
    container: Json,
    over: Partial<typeof TEST_FLAGS> = { awsDefaultRegion: 'us-east-1', stsRegionalEndpoint: true },
    mode: 'WebIdentity' | 'ContainerCredentials' = 'WebIdentity',
  ) =>
    buildPatch(
      pod(
        { containers: [container], volumes: [{ name: 'aws-iam-token' }, { name: 'eks-pod-identity-token' }] },
        { labels: { 'eks.amazonaws.com/pod-identity': 'enabled' } },
      ),
      injection(mode, over),
      opts(),
    )
      .filter((o) => o.path.includes('/env'))
      .map((o) => (o.value as Json).name);

  it.each<[string, Json, string[]]>([
    [
      'nothing present',
      { name: 'c', env: [] },
      [
        'AWS_STS_REGIONAL_ENDPOINTS',
        'AWS_DEFAULT_REGION',
        'AWS_REGION',
        'AWS_ROLE_ARN',
        'AWS_WEB_IDENTITY_TOKEN_FILE',
      ],
    ],
    [
      'early exit when id, region and STS exist (mount included)',
      { name: 'c', env: env('AWS_ROLE_ARN', 'AWS_REGION', 'AWS_STS_REGIONAL_ENDPOINTS') },
      [],
    ],
    [
      'a lone identity variable blocks its partner',
      { name: 'c', env: env('AWS_WEB_IDENTITY_TOKEN_FILE') },
      ['AWS_STS_REGIONAL_ENDPOINTS', 'AWS_DEFAULT_REGION', 'AWS_REGION'],
    ],
    [
      'either region variable suppresses both',
      { name: 'c', env: env('AWS_DEFAULT_REGION') },
      ['AWS_STS_REGIONAL_ENDPOINTS', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE'],
    ],
    [
      'valueFrom entries count by name',
      {
        name: 'c',
        env: [
          { name: 'AWS_STS_REGIONAL_ENDPOINTS', valueFrom: { configMapKeyRef: { name: 'x', key: 'y' } } },
        ],
      },
      ['AWS_DEFAULT_REGION', 'AWS_REGION', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE'],
    ],
  ])('%s', (_n, c, want) => expect(envOps(c)).toEqual(want));

  it('the early exit leaves the mount out too', () => {
    const c = { name: 'c', env: env('AWS_ROLE_ARN', 'AWS_REGION', 'AWS_STS_REGIONAL_ENDPOINTS') };
    expect(
      buildPatch(
        pod({ containers: [c], volumes: [{ name: 'aws-iam-token' }] }),
        injection('WebIdentity'),
        opts(),
      ),
    ).toEqual([]);
  });

  it('container-credentials pair and web-identity pair are independent', () => {
    expect(envOps({ name: 'c', env: env('AWS_ROLE_ARN') }, {}, 'ContainerCredentials')).toEqual([
      'AWS_CONTAINER_CREDENTIALS_FULL_URI',
      'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
    ]);
  });

  it('keeps a same-name mount at another path; the token variable keeps the configured path', () => {
    const ops = buildPatch(
      pod({
        containers: [{ name: 'c', volumeMounts: [{ name: 'aws-iam-token', mountPath: '/elsewhere' }] }],
      }),
      injection('WebIdentity'),
      opts(),
    );
    expect(ops.some((o) => o.path.includes('volumeMounts'))).toBe(false);
    const env = ops.flatMap((o) => (Array.isArray(o.value) ? (o.value as Json[]) : [o.value as Json]));
    expect(env).toContainEqual({
      name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
      value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
    });
  });

  it.each<[string, Json]>([
    ['nodeSelector kubernetes.io/os', { nodeSelector: { 'kubernetes.io/os': 'windows' } }],
    ['nodeSelector beta.kubernetes.io/os', { nodeSelector: { 'beta.kubernetes.io/os': 'windows' } }],
    ['spec.os.name', { os: { name: 'windows' } }],
  ])('Windows via %s: only the token-file value changes', (_n, extra) => {
    const object = pod({ containers: [{ name: 'c' }], ...extra });
    const plan = planRequest({
      uid: 'u',
      operation: 'CREATE',
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'team-a',
      object,
    });
    if (plan.kind !== 'pod') throw new Error(plan.kind);
    expect(plan.pod.windows).toBe(true);
    const ops = buildPatch(object, injection('WebIdentity'), opts({ windows: true }));
    const envs = ops.find((o) => o.path === '/spec/containers/0/env')!.value as Json[];
    expect(envs[1]).toEqual({
      name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
      value: 'C:\\var\\run\\secrets\\eks.amazonaws.com\\serviceaccount\\token',
    });
    expect(
      (ops.find((o) => o.path === '/spec/containers/0/volumeMounts')!.value as Json[])[0].mountPath,
    ).toBe('/var/run/secrets/eks.amazonaws.com/serviceaccount');
  });

  it('Windows is exact: "Windows" or affinity do not count', () => {
    const plan = planRequest({
      uid: 'u',
      operation: 'CREATE',
      resource: { group: '', version: 'v1', resource: 'pods' },
      object: pod({ nodeSelector: { 'kubernetes.io/os': 'Windows' } }),
    });
    expect(plan.kind === 'pod' && plan.pod.windows).toBe(false);
  });
});

describe('request classification and unreadable Pods (docs/webhook.md#admission-answers)', () => {
  const res = { group: '', version: 'v1', resource: 'pods' };
  const req = (over: Json) => ({
    uid: 'u',
    operation: 'CREATE',
    resource: res,
    namespace: 'team-a',
    object: pod({ containers: [{ name: 'c' }] }, { name: 'web-7d9f' }),
    ...over,
  });
  it.each<[string, Json, string]>([
    ['UPDATE', { operation: 'UPDATE' }, 'not_applicable'],
    ['a subresource', { subResource: 'status' }, 'not_applicable'],
    [
      'another resource',
      { resource: { group: 'apps', version: 'v1', resource: 'deployments' } },
      'not_applicable',
    ],
    ['a missing resource', { resource: undefined }, 'not_applicable'],
    [
      'the skip label (judged, never injected)',
      { object: pod({}, { labels: { 'eks.amazonaws.com/skip-pod-identity-webhook': '' } }) },
      'pod',
    ],
    [
      'an UPDATE of pods/ephemeralcontainers',
      {
        operation: 'UPDATE',
        subResource: 'ephemeralcontainers',
        oldObject: pod({ containers: [{ name: 'c' }] }),
      },
      'ephemeral',
    ],
    [
      'a CREATE of pods/ephemeralcontainers (not an API operation)',
      { subResource: 'ephemeralcontainers' },
      'not_applicable',
    ],
    ['a readable Pod', {}, 'pod'],
  ])('%s', (_n, over, kind) => expect(planRequest(req(over)).kind).toBe(kind));
  it('marks a skip-labelled Pod as skipped', () => {
    const p = planRequest(
      req({ object: pod({}, { labels: { 'eks.amazonaws.com/skip-pod-identity-webhook': 'true' } }) }),
    );
    expect(p.kind === 'pod' && p.skipped).toBe(true);
  });
  it('refuses an unreadable ephemeral container', () => {
    const p = planRequest(
      req({
        operation: 'UPDATE',
        subResource: 'ephemeralcontainers',
        oldObject: pod({ containers: [{ name: 'c' }] }),
        object: pod(
          { containers: [{ name: 'c' }], ephemeralContainers: [{ name: 'd', envFrom: {} }] },
          { name: 'web' },
        ),
      }),
    );
    expect(p).toEqual({
      kind: 'invalid',
      message: 'lanyard: cannot read Pod "team-a/web": spec.ephemeralContainers[0].envFrom must be an array',
    });
  });

  it.each<[Json, string]>([
    ['string', 'lanyard: cannot read Pod: the object must be a JSON object'],
    [undefined, 'lanyard: cannot read Pod: the object must be a JSON object'],
    [
      pod({ containers: [{ name: 'a' }, { name: 'b', env: {} }] }, { name: 'web-7d9f' }),
      'lanyard: cannot read Pod "team-a/web-7d9f": spec.containers[1].env must be an array',
    ],
    [
      pod({ containers: [{ name: 5 }] }, { generateName: 'web-' }),
      'lanyard: cannot read Pod "team-a/web-": spec.containers[0].name must be a string',
    ],
    [
      pod({ initContainers: [{ name: 'i', volumeMounts: 'x' }] }),
      'spec.initContainers[0].volumeMounts must be an array',
    ],
    [pod({ volumes: {} }), 'spec.volumes must be an array'],
    [pod({ schedulingGates: 'g' }), 'spec.schedulingGates must be an array'],
    [pod({ nodeSelector: [] }), 'spec.nodeSelector must be an object'],
    [pod({ containers: {} }), 'spec.containers must be an array'],
    [pod({}, { labels: [] }), 'metadata.labels must be an object'],
    [pod({}, { annotations: 'a' }), 'metadata.annotations must be an object'],
    [{ metadata: 5, spec: {} }, 'metadata must be an object'],
    [{ metadata: {} }, 'spec must be an object'],
  ])('unreadable %j', (object, message) => {
    const p = planRequest(req({ object }));
    expect(p.kind).toBe('invalid');
    expect(p.kind === 'invalid' && p.message).toContain(message);
  });

  it.each<[Json, string]>([
    [{ serviceAccountName: 'a', serviceAccount: 'b' }, 'a'],
    [{ serviceAccount: 'b' }, 'b'],
    [{}, 'default'],
  ])('ServiceAccount of %j is %s', (spec, want) => {
    const p = planRequest(req({ object: pod(spec) }));
    expect(p.kind === 'pod' && p.pod.serviceAccount).toBe(want);
  });

  it('takes the namespace from the request, else the Pod', () => {
    const p = planRequest(req({ namespace: undefined, object: pod({}, { namespace: 'from-pod' }) }));
    expect(p.kind === 'pod' && p.pod.namespace).toBe('from-pod');
  });
});

// Arbitrary readable Pods, with unknown fields everywhere, to check the patch never loses or replaces anything.
const envVarNames = fc.constantFrom(
  'AWS_ROLE_ARN',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_STS_REGIONAL_ENDPOINTS',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'LOG',
  'X',
);
const unknown = fc.dictionary(
  fc.constantFrom('futureField', 'x-extra', 'weird/key', 'tilde~key'),
  fc.jsonValue({ maxDepth: 2 }),
  { maxKeys: 2 },
);
const maybeList = <T>(arb: fc.Arbitrary<T>) =>
  fc
    .option(fc.array(arb, { maxLength: 4 }), { nil: undefined, freq: 3 })
    .chain((v) => fc.constantFrom(v, null as unknown as T[] | undefined));
const container = fc
  .record(
    {
      name: fc.constantFrom('app', 'sidecar', 'init', 'c1', 'c2'),
      env: maybeList(fc.record({ name: envVarNames, value: fc.string({ maxLength: 5 }) })),
      volumeMounts: maybeList(
        fc.record({
          name: fc.constantFrom('aws-iam-token', 'eks-pod-identity-token', 'data'),
          mountPath: fc.constantFrom('/a', '/b'),
        }),
      ),
      restartPolicy: fc.constantFrom('Always', undefined),
      startupProbe: fc.constant({ grpc: { port: 9000 }, futureProbe: { x: 1 } }),
    },
    { requiredKeys: ['name'] },
  )
  .chain((c) => unknown.map((u) => ({ ...u, ...c })));
const podArb = fc.record({
  apiVersion: fc.constant('v1'),
  kind: fc.constant('Pod'),
  metadata: fc.record(
    {
      name: fc.constant('p'),
      labels: fc.option(
        fc.dictionary(fc.constantFrom('a', 'eks.amazonaws.com/pod-identity'), fc.string({ maxLength: 3 })),
        { nil: null },
      ),
      annotations: fc.option(
        fc.record(
          { 'eks.amazonaws.com/skip-containers': fc.constantFrom('app', 'c1, "c2"', '') },
          { requiredKeys: [] },
        ),
        { nil: undefined },
      ),
    },
    { requiredKeys: ['name'] },
  ),
  spec: fc.record(
    {
      containers: fc.array(container, { maxLength: 4 }),
      initContainers: maybeList(container),
      volumes: maybeList(
        fc.record({
          name: fc.constantFrom('aws-iam-token', 'eks-pod-identity-token', 'data'),
          emptyDir: fc.constant({}),
        }),
      ),
      schedulingGates: maybeList(fc.record({ name: fc.constantFrom('lanyard.dev/identity', 'other') })),
      nodeSelector: fc.constantFrom(undefined, { 'kubernetes.io/os': 'windows' }),
      futureSpecField: fc.jsonValue({ maxDepth: 2 }),
    },
    { requiredKeys: ['containers'] },
  ),
});

/** Every value in `before` is still at the same place in `after` (arrays may only have grown at the end). */
function contains(after: Json, before: Json, at = ''): void {
  if (before === null || typeof before !== 'object') {
    expect(after, at).toStrictEqual(before);
    return;
  }
  if (Array.isArray(before)) {
    expect(Array.isArray(after), at).toBe(true);
    before.forEach((v, i) => contains(after[i], v, `${at}/${i}`));
    return;
  }
  for (const [k, v] of Object.entries(before)) {
    if (v === null || v === undefined) continue; // an absent-or-null member may be added
    contains(after[k], v, `${at}/${k}`);
  }
}

describe('patch properties', () => {
  it('applies cleanly, keeps every input field, and a second pass yields no ops', () => {
    fc.assert(
      fc.property(
        podArb,
        fc.constantFrom<'WebIdentity' | 'ContainerCredentials'>('WebIdentity', 'ContainerCredentials'),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom('', 'eu-west-1'),
        (p, mode, gate, sts, region) => {
          const plan = planRequest({
            uid: 'u',
            operation: 'CREATE',
            resource: { group: '', version: 'v1', resource: 'pods' },
            namespace: 'ns',
            object: p,
          });
          if (plan.kind !== 'pod') throw new Error(`fixture unreadable: ${JSON.stringify(plan)}`);
          const inj = injection(mode, { stsRegionalEndpoint: sts, awsDefaultRegion: region });
          const o = opts({ gate, windows: plan.pod.windows });
          const ops = buildPatch(plan.pod.object, inj, o);
          const patched = applyAddPatch(p, ops);
          contains(patched, p);
          expect(
            planRequest({
              uid: 'u',
              operation: 'CREATE',
              resource: { group: '', version: 'v1', resource: 'pods' },
              namespace: 'ns',
              object: patched,
            }).kind,
          ).toBe('pod');
          expect(buildPatch(patched, inj, o)).toEqual([]);
        },
      ),
      { numRuns: 500 },
    );
  }, 30_000); // 500 CPU-bound runs: seconds on a loaded machine
});

describe('LANYARD_EXPECTED_ROLE for association Pods (docs/adr/0921-verify-expected-role.md)', () => {
  const TARGET = 'arn:aws:iam::444455556666:role/bucket-writer';
  const assoc = (over: Record<string, unknown> = {}) =>
    resolveIdentity(
      {
        namespace: 'team-a',
        serviceAccount: 'uploader',
        podAnnotations: undefined,
        sa: { found: true, settings: { uid: 'u' } },
        association: {
          kind: 'lanyard',
          uid: 'a',
          objectNamespace: 'team-a',
          objectName: 'x',
          namespace: 'team-a',
          serviceAccount: 'uploader',
          roleARN: ROLE,
          disableSessionTags: false,
          creationTimestamp: '2026-01-01T00:00:00Z',
          ...over,
        },
        inIdentitiesFile: false,
        configMap: new Map(),
      },
      TEST_FLAGS,
      () => 0,
    )!.injection;
  const envNames = (p: Json) =>
    (p.spec.containers[0].env ?? []).map((e: Json) => `${e.name}=${e.value ?? ''}`);

  it("is injected after the identity pair with the association's effective role (the target role when it chains)", () => {
    const out = applyAddPatch(
      pod({ containers: [{ name: 'app' }] }),
      buildPatch(pod({ containers: [{ name: 'app' }] }), assoc(), opts()),
    );
    expect(envNames(out)).toEqual([
      'AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials',
      'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
      `LANYARD_EXPECTED_ROLE=${ROLE}`,
    ]);
    const chained = applyAddPatch(
      pod({ containers: [{ name: 'app' }] }),
      buildPatch(pod({ containers: [{ name: 'app' }] }), assoc({ targetRoleARN: TARGET }), opts()),
    );
    expect(envNames(chained)).toContain(`LANYARD_EXPECTED_ROLE=${TARGET}`);
  });
  it('is not injected where the reference webhook injects (identities file, SA annotation, ConfigMap), nor for an ACK roleRef', () => {
    for (const inj of [
      injection('ContainerCredentials'),
      injection('WebIdentity'),
      assoc({ kind: 'ack', roleARN: undefined }),
    ]) {
      const out = applyAddPatch(
        pod({ containers: [{ name: 'app' }] }),
        buildPatch(pod({ containers: [{ name: 'app' }] }), inj, opts()),
      );
      expect(envNames(out).join(',')).not.toContain('LANYARD_EXPECTED_ROLE');
    }
  });
  it('is not injected into a container that brings its own identity or its own expectation, and a second pass adds nothing', () => {
    const own = pod({
      containers: [
        { name: 'app', env: [{ name: 'AWS_CONTAINER_CREDENTIALS_FULL_URI', value: 'http://x' }] },
        {
          name: 'told',
          env: [{ name: 'LANYARD_EXPECTED_ROLE', value: 'arn:aws:iam::111122223333:role/mine' }],
        },
      ],
    });
    const out = applyAddPatch(own, buildPatch(own, assoc(), opts()));
    expect(out.spec.containers[0].env.map((e: Json) => e.name)).not.toContain('LANYARD_EXPECTED_ROLE');
    expect(out.spec.containers[1].env.filter((e: Json) => e.name === 'LANYARD_EXPECTED_ROLE')).toEqual([
      { name: 'LANYARD_EXPECTED_ROLE', value: 'arn:aws:iam::111122223333:role/mine' },
    ]);
    expect(buildPatch(out, assoc(), opts())).toEqual([]);
  });
});
