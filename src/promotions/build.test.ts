import { describe, expect, it } from 'vitest';
import { buildPromotionPod, outputBudget, type StepContainer } from './build.ts';
import {
  input,
  PUBLISH,
  S3_LS,
  serviceAccount,
  SETTINGS,
  stage,
  step,
  promotion,
  UID,
} from '../../test/fixtures/promotions.ts';

const lanyardEnv = (stepName: string, index: number) => [
  { name: 'LANYARD_PROJECT', value: 'shop' },
  { name: 'LANYARD_STAGE', value: 'prod' },
  { name: 'LANYARD_PROMOTION', value: 'prod-8f2kq' },
  { name: 'LANYARD_STEP', value: stepName },
  { name: 'LANYARD_STEP_INDEX', value: String(index) },
  { name: 'LANYARD_WORKSPACE', value: '/workspace' },
  { name: 'LANYARD_OUTPUT', value: '/dev/termination-log' },
  { name: 'HOME', value: '/lanyard/home' },
];
const SEC = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
const RES = { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } };

function ok(r: ReturnType<typeof buildPromotionPod>) {
  if (!r.ok) throw new Error(`expected a pod, got ${r.reason}: ${r.message}`);
  return r;
}

describe('buildPromotionPod: one pod per promotion, one container per step (docs/promotions.md#objects)', () => {
  it('builds the two-step pod field by field', () => {
    const r = ok(buildPromotionPod(input()));
    expect(r.pod).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `promotion-${UID}`,
        namespace: 'lanyard-promotions',
        labels: {
          'lanyard.dev/project': 'shop',
          'lanyard.dev/stage': 'prod',
          'lanyard.dev/promotion': 'prod-8f2kq',
          'lanyard.dev/promotion-uid': UID,
        },
        annotations: { 'lanyard.dev/promotion': 'shop/prod-8f2kq', 'lanyard.dev/stage-generation': '4' },
      },
      spec: {
        serviceAccountName: 'lanyard-promotion-orchestrator',
        automountServiceAccountToken: false,
        restartPolicy: 'Never',
        activeDeadlineSeconds: 600,
        enableServiceLinks: false,
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 65532,
          runAsGroup: 65532,
          fsGroup: 65532,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        volumes: [
          { name: 'workspace', emptyDir: {} },
          { name: 'home', emptyDir: {} },
        ],
        initContainers: [
          {
            name: 'step-1',
            image: 'public.ecr.aws/aws-cli/aws-cli:2.17.0',
            imagePullPolicy: 'IfNotPresent',
            command: ['sh', '-c'],
            args: ['aws s3 ls "s3://shop-artifacts/releases/1.4.2"'],
            workingDir: '/workspace',
            env: [...lanyardEnv('list s3', 1), { name: 'AWS_PAGER', value: '' }],
            volumeMounts: [
              { name: 'workspace', mountPath: '/workspace' },
              { name: 'home', mountPath: '/lanyard/home', subPath: 'step-1' },
            ],
            terminationMessagePolicy: 'FallbackToLogsOnError',
            securityContext: SEC,
            resources: RES,
          },
          {
            name: 'step-2',
            image: 'example.com/publish:1',
            imagePullPolicy: 'IfNotPresent',
            command: ['publish'],
            workingDir: '/workspace',
            env: lanyardEnv('step-2', 2),
            volumeMounts: [
              { name: 'workspace', mountPath: '/workspace' },
              { name: 'home', mountPath: '/lanyard/home', subPath: 'step-2' },
            ],
            terminationMessagePolicy: 'FallbackToLogsOnError',
            securityContext: SEC,
            resources: RES,
          },
        ],
        containers: [
          {
            name: 'done',
            image: SETTINGS.doneImage,
            imagePullPolicy: 'IfNotPresent',
            command: ['lanyard', 'promotion-done'],
            resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
            securityContext: SEC,
          },
        ],
      },
    });
    expect(r.steps.map((s) => [s.name, s.uses, s.container, s.from])).toEqual([
      ['list s3', 'aws-s3-ls', 'step-1', 'shop'],
      ['step-2', 'publish', 'step-2', 'lanyard-promotions'],
    ]);
  });

  it('applies all three decorators; decorators cannot override Lanyard labels', () => {
    const r = ok(
      buildPromotionPod(
        input({
          stage: stage({
            annotations: {
              'lanyard.dev/promotion-sa': 's3-access',
              'lanyard.dev/promotion-labels': '{"team":"payments"}',
              'lanyard.dev/promotion-annotations':
                '{"example.com/cost-center":"cc-1234","eks.amazonaws.com/skip-containers":"done"}',
            },
          }),
          sas: [serviceAccount('s3-access')],
        }),
      ),
    );
    expect(r.pod.spec.serviceAccountName).toBe('s3-access');
    expect(r.pod.metadata.labels.team).toBe('payments');
    expect(r.pod.metadata.annotations['example.com/cost-center']).toBe('cc-1234');
    expect(r.pod.metadata.annotations['eks.amazonaws.com/skip-containers']).toBe('done');
  });

  it('uses the Stage timeout as activeDeadlineSeconds and records step timeouts on the pod', () => {
    const s = stage();
    s.spec.promotionTemplate.spec.timeout = '15m';
    s.spec.promotionTemplate.spec.steps[0].timeout = '2m';
    const r = ok(buildPromotionPod(input({ stage: s })));
    expect(r.pod.spec.activeDeadlineSeconds).toBe(900);
    expect(r.pod.metadata.annotations['lanyard.dev/step-timeouts']).toBe('{"step-1":120}');
    expect(r.steps[0]!.timeoutSeconds).toBe(120);
  });

  it.each(['100m', '1', '0.5', '128Mi', '1Gi', '2e3', '1k', '1500M'])('accepts the quantity %s', (q) => {
    const steps = {
      'shop/aws-s3-ls': step('aws-s3-ls', 'shop', { ...S3_LS, resources: { requests: { cpu: q } } }),
      'shop/publish': step('publish', 'shop', PUBLISH),
    };
    expect(buildPromotionPod(input({ steps })).ok).toBe(true);
  });

  it("lets a step's own HOME and other defaults win, and keeps workingDir, pull policy and resources", () => {
    const steps = {
      'shop/aws-s3-ls': step('aws-s3-ls', 'shop', {
        ...S3_LS,
        env: [{ name: 'HOME', value: '/tmp/home' }],
        workingDir: '/src',
        imagePullPolicy: 'Always',
        resources: { limits: { cpu: '1' } },
      }),
      'shop/publish': step('publish', 'shop', PUBLISH),
    };
    const c = ok(buildPromotionPod(input({ steps }))).pod.spec.initContainers[0]!;
    expect(c.env.filter((e: { name: string }) => e.name === 'HOME')).toEqual([
      { name: 'HOME', value: '/tmp/home' },
    ]);
    expect(c.env.at(-1)).toEqual({ name: 'HOME', value: '/tmp/home' });
    expect([c.workingDir, c.imagePullPolicy, c.resources]).toEqual([
      '/src',
      'Always',
      { limits: { cpu: '1' } },
    ]);
  });
});

describe('per-step roles and capabilities (docs/promotions.md#per-step-aws-roles, docs/promotions.md#kubernetes-api-access-and-the-token-manager-role)', () => {
  const ROLE = 'arn:aws:iam::111122223333:role/shop-s3-read';
  const steps = {
    'shop/aws-s3-ls': step('aws-s3-ls', 'shop', S3_LS),
    'lanyard-promotions/publish': step('publish', 'lanyard-promotions', {
      ...PUBLISH,
      identity: { roleARN: ROLE },
    }),
  };
  it('gives only the step with a role the AWS variables, the token volume and a skip-containers entry', () => {
    const seen: unknown[] = [];
    const r = ok(
      buildPromotionPod(
        input({
          steps,
          settings: { ...SETTINGS, awsRegion: 'eu-west-1' },
          decideRole: (i) => (seen.push(i), { allowed: true }),
        }),
      ),
    );
    expect(seen).toEqual([
      { namespace: 'shop', serviceAccount: 'lanyard-promotion-orchestrator', roleARN: ROLE },
    ]);
    const [s1, s2] = r.pod.spec.initContainers as [StepContainer, StepContainer];
    expect(s1.env.some((e: { name: string }) => e.name.startsWith('AWS_') && e.name !== 'AWS_PAGER')).toBe(
      false,
    );
    expect(s1.volumeMounts).toHaveLength(2);
    expect(s2.env.slice(8)).toEqual([
      { name: 'AWS_ROLE_ARN', value: ROLE },
      { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/var/run/secrets/lanyard.dev/aws/token' },
      { name: 'AWS_ROLE_SESSION_NAME', value: 'lanyard-prod-8f2kq-2' },
      { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' },
      { name: 'AWS_REGION', value: 'eu-west-1' },
      { name: 'AWS_DEFAULT_REGION', value: 'eu-west-1' },
    ]);
    expect(s2.volumeMounts[2]).toEqual({
      name: 'lanyard-aws-step-2',
      mountPath: '/var/run/secrets/lanyard.dev/aws',
      readOnly: true,
    });
    expect(r.pod.spec.volumes[2]).toEqual({
      name: 'lanyard-aws-step-2',
      projected: {
        sources: [
          {
            serviceAccountToken: {
              audience: 'lanyard-promotion-step',
              expirationSeconds: 3600,
              path: 'token',
            },
          },
        ],
      },
    });
    expect(r.pod.metadata.annotations['eks.amazonaws.com/skip-containers']).toBe('step-2');
  });

  it('merges a decorator skip-containers list with its own, and cuts the session name to 64 characters', () => {
    const long = 'p'.repeat(63);
    const r = ok(
      buildPromotionPod(
        input({
          steps,
          promotion: promotion({ name: long }),
          stage: stage({
            annotations: {
              'lanyard.dev/promotion-annotations': '{"eks.amazonaws.com/skip-containers":"done, step-1"}',
            },
          }),
        }),
      ),
    );
    expect(r.pod.metadata.annotations['eks.amazonaws.com/skip-containers']).toBe('done,step-1,step-2');
    const session = r.pod.spec.initContainers[1]!.env.find(
      (e: { name: string }) => e.name === 'AWS_ROLE_SESSION_NAME',
    )?.value;
    expect(session).toBe(`lanyard-${long}`.slice(0, 64));
  });

  it('refuses a denied role with StepRoleDenied and no pod', () => {
    const r = buildPromotionPod(
      input({
        steps: {
          ...steps,
          'shop/aws-s3-ls': step('aws-s3-ls', 'shop', { ...S3_LS, identity: { roleARN: ROLE } }),
        },
        stage: stage({ annotations: { 'lanyard.dev/promotion-sa': 's3-access' } }),
        sas: [serviceAccount('s3-access')],
        decideRole: (i) => ({
          allowed: false,
          message: `lanyard: no IdentityPolicy allows namespace "${i.namespace}" ServiceAccount "${i.serviceAccount}" to use role "${i.roleARN}"`,
        }),
      }),
    );
    expect(r).toEqual({
      ok: false,
      reason: 'StepRoleDenied',
      message: `step "list s3" (uses "aws-s3-ls"): no IdentityPolicy allows namespace "shop" ServiceAccount "s3-access" to use role "${ROLE}"`,
    });
  });

  it('mounts Kubernetes credentials for a shared kubernetes-api or mint-tokens step into that container only', () => {
    const r = ok(
      buildPromotionPod(
        input({
          steps: {
            'lanyard-promotions/aws-s3-ls': step('aws-s3-ls', 'lanyard-promotions', {
              ...S3_LS,
              capabilities: ['mint-tokens'],
            }),
            'shop/publish': step('publish', 'shop', PUBLISH),
          },
        }),
      ),
    );
    const [s1, s2] = r.pod.spec.initContainers as [StepContainer, StepContainer];
    expect(s1.volumeMounts[2]).toEqual({
      name: 'lanyard-kube-step-1',
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    });
    expect(s2.volumeMounts).toHaveLength(2);
    expect(r.pod.spec.volumes[2]!.projected?.sources).toEqual([
      { serviceAccountToken: { expirationSeconds: 3600, path: 'token' } },
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
      {
        downwardAPI: {
          items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }],
        },
      },
    ]);
  });
});

describe('which container holds which token', () => {
  const ROLE = 'arn:aws:iam::111122223333:role/shop-s3-read';
  const AGENT = 'lanyard-promotions';
  // One step under test (step-1) next to a plain shared step (step-2); the mounts each container ends up with.
  it.each([
    ["a project's step", 'shop', PUBLISH, ['workspace', 'home']],
    [
      "a project's step with a role",
      'shop',
      { ...PUBLISH, identity: { roleARN: ROLE } },
      ['workspace', 'home', 'lanyard-aws-step-1'],
    ],
    ['a shared step', AGENT, PUBLISH, ['workspace', 'home']],
    [
      'a shared step with a role',
      AGENT,
      { ...PUBLISH, identity: { roleARN: ROLE } },
      ['workspace', 'home', 'lanyard-aws-step-1'],
    ],
    [
      'a shared kubernetes-api step',
      AGENT,
      { ...PUBLISH, capabilities: ['kubernetes-api'] },
      ['workspace', 'home', 'lanyard-kube-step-1'],
    ],
    [
      'a shared mint-tokens step with a role',
      AGENT,
      { ...PUBLISH, capabilities: ['mint-tokens'], identity: { roleARN: ROLE } },
      ['workspace', 'home', 'lanyard-aws-step-1', 'lanyard-kube-step-1'],
    ],
  ])('%s', (_name, ns, spec, mounts) => {
    const r = ok(
      buildPromotionPod(
        input({
          stage: stage({
            spec: { promotionTemplate: { spec: { steps: [{ uses: 'under-test' }, { uses: 'plain' }] } } },
          }),
          promotion: promotion({ vars: [] }),
          steps: {
            [`${ns}/under-test`]: step('under-test', ns, spec),
            [`${AGENT}/plain`]: step('plain', AGENT, PUBLISH),
          },
        }),
      ),
    );
    const pod = r.pod.spec;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(
      pod.initContainers.map((c: { volumeMounts: Array<{ name: string }> }) =>
        c.volumeMounts.map((m) => m.name),
      ),
    ).toEqual([mounts, ['workspace', 'home']]);
    expect(pod.containers[0]!.volumeMounts).toBeUndefined();
    // Every token volume belongs to exactly one container, the one it is named after.
    const tokenVolumes = pod.volumes
      .filter((v: { projected?: unknown }) => v.projected)
      .map((v: { name: string }) => v.name);
    expect(tokenVolumes.sort()).toEqual(mounts.filter((m) => m.startsWith('lanyard-')).sort());
  });

  it.each([
    ['kubernetes-api', ['kubernetes-api']],
    ['mint-tokens', ['mint-tokens']],
    ['both', ['kubernetes-api', 'mint-tokens']],
  ])(
    "refuses a project's own step asking for %s, even when it shadows a shared step that may",
    (_name, capabilities) => {
      const r = buildPromotionPod(
        input({
          steps: {
            'shop/aws-s3-ls': step('aws-s3-ls', 'shop', S3_LS),
            'shop/publish': step('publish', 'shop', { ...PUBLISH, capabilities }),
            'lanyard-promotions/publish': step('publish', 'lanyard-promotions', { ...PUBLISH, capabilities }),
          },
        }),
      );
      expect(r).toEqual({
        ok: false,
        reason: 'StepCapabilityDenied',
        message:
          `step "step-2" (uses "publish"): spec.capabilities [${capabilities.join(', ')}]: only PromotionSteps in namespace ` +
          '"lanyard-promotions" may hold Kubernetes credentials; steps of project "shop" run without them',
      });
    },
  );

  it("gives a project's step that shadows a shared kubernetes-api step no token", () => {
    const r = ok(
      buildPromotionPod(
        input({
          steps: {
            'shop/aws-s3-ls': step('aws-s3-ls', 'shop', S3_LS),
            'shop/publish': step('publish', 'shop', { ...PUBLISH, image: 'project/publish' }),
            'lanyard-promotions/publish': step('publish', 'lanyard-promotions', {
              ...PUBLISH,
              capabilities: ['kubernetes-api'],
            }),
          },
        }),
      ),
    );
    expect(r.pod.spec.initContainers[1]!).toMatchObject({
      image: 'project/publish',
      volumeMounts: [{ name: 'workspace' }, { name: 'home' }],
    });
    expect(r.steps[1]).toMatchObject({ from: 'shop', capabilities: [] });
  });
});

describe('step resolution (docs/promotions.md#objects)', () => {
  it("prefers the project's step, then the agent namespace's", () => {
    const r = ok(
      buildPromotionPod(
        input({
          steps: {
            'shop/publish': step('publish', 'shop', { ...PUBLISH, image: 'project/publish' }),
            'lanyard-promotions/publish': step('publish', 'lanyard-promotions', PUBLISH),
            'lanyard-promotions/aws-s3-ls': step('aws-s3-ls', 'lanyard-promotions', S3_LS),
          },
        }),
      ),
    );
    expect(r.pod.spec.initContainers.map((c: { image: string }) => c.image)).toEqual([
      S3_LS.image,
      'project/publish',
    ]);
    expect(r.steps.map((s) => s.from)).toEqual(['lanyard-promotions', 'shop']);
  });
  it("finds a step under Kargo's kind CustomPromotionStep, runs it and says so (docs/adr/0605)", () => {
    const custom = { 'lanyard-promotions/publish': step('publish', 'lanyard-promotions', PUBLISH) };
    const r = ok(
      buildPromotionPod(
        input({
          steps: { 'shop/aws-s3-ls': step('aws-s3-ls', 'shop', S3_LS) },
          customPromotionStep: (ns, name) => custom[`${ns}/${name}` as keyof typeof custom],
        }),
      ),
    );
    expect(r.pod.spec.initContainers.map((c: { image: string }) => c.image)).toEqual([
      S3_LS.image,
      PUBLISH.image,
    ]);
    expect(r.kindAliases).toEqual([{ step: 'step-2', uses: 'publish', namespace: 'lanyard-promotions' }]);
    // Steps found as PromotionSteps are no alias uses.
    expect(ok(buildPromotionPod(input())).kindAliases).toEqual([]);
  });
  it('refuses a PromotionStep and a CustomPromotionStep of one name in one namespace, naming both (never a silent pick)', () => {
    const both = step('publish', 'lanyard-promotions', PUBLISH);
    expect(
      buildPromotionPod(
        input({
          customPromotionStep: (ns, name) =>
            `${ns}/${name}` === 'lanyard-promotions/publish' ? both : undefined,
        }),
      ),
    ).toEqual({
      ok: false,
      reason: 'AmbiguousStep',
      message:
        'PromotionStep "publish" and CustomPromotionStep "publish" both exist in namespace "lanyard-promotions": ' +
        "delete the CustomPromotionStep (Kargo's name for the same kind)",
    });
  });
  it('reports StepNotFound', () => {
    expect(
      buildPromotionPod(input({ steps: { 'shop/aws-s3-ls': step('aws-s3-ls', 'shop', S3_LS) } })),
    ).toEqual({
      ok: false,
      reason: 'StepNotFound',
      message:
        'step "step-2" uses "publish", which exists neither in project "shop" nor in namespace "lanyard-promotions"',
    });
  });
  it.each([
    [
      { ...PUBLISH, env: [{ name: 'LANYARD_X', value: '1' }] },
      'env "LANYARD_X": names starting with LANYARD_ are reserved for Lanyard',
    ],
    [
      { ...PUBLISH, identity: { roleARN: 'arn:aws:iam::1:role/x' } },
      'spec.identity.roleARN "arn:aws:iam::1:role/x" must match',
    ],
    [
      {
        ...PUBLISH,
        identity: { roleARN: 'arn:aws:iam::111122223333:role/x' },
        env: [{ name: 'AWS_ROLE_ARN', value: 'y' }],
      },
      'env "AWS_ROLE_ARN": set by Lanyard for a step with spec.identity.roleARN',
    ],
    [{ ...PUBLISH, workingDir: 'rel' }, 'spec.workingDir "rel" must be an absolute path'],
    [{ ...PUBLISH, capabilities: ['root'] }, 'spec.capabilities: unknown capability "root"'],
    [
      { ...PUBLISH, resources: { limits: { cpu: 'lots' } } },
      'spec.resources.limits.cpu "lots" is not a Kubernetes quantity (such as 100m, 128Mi or 2)',
    ],
  ])('refuses an invalid PromotionStep %#', (spec, detail) => {
    const r = buildPromotionPod(
      input({
        steps: {
          'shop/aws-s3-ls': step('aws-s3-ls', 'shop', S3_LS),
          'shop/publish': step('publish', 'shop', spec),
        },
      }),
    );
    expect(r).toMatchObject({ ok: false, reason: 'InvalidStep' });
    expect(!r.ok && r.message).toContain(`step "step-2" (uses "publish"): ${detail}`);
  });
});

describe('vars and templates (docs/promotions.md#templates-and-vars)', () => {
  const withVars = (vars: unknown[]) =>
    buildPromotionPod(input({ promotion: promotion({ vars: vars as never }) }));
  it.each([
    [
      [
        { name: 'version', value: '1.4.2' },
        { name: 'color', value: 'red' },
      ],
      'var "color" is not declared by stage "prod"',
    ],
    [[], 'var "version" is required by stage "prod" and was not given'],
    [
      [{ name: 'version', value: '1.4; rm -rf /' }],
      'var "version": value "1.4; rm -rf /" does not match [0-9]+\\.[0-9]+\\.[0-9]+',
    ],
    [
      [
        { name: 'version', value: '1.4.2' },
        { name: 'channel', value: 'a b' },
      ],
      'var "channel": value "a b" does not match [A-Za-z0-9._:/@+=,-]*',
    ],
    [
      [
        { name: 'version', value: '1.4.2' },
        { name: 'version', value: '1.4.3' },
      ],
      'var "version" is given twice',
    ],
    [
      [
        { name: 'version', value: '1.4.2' },
        { name: 'channel', value: 'x'.repeat(1025) },
      ],
      'var "channel": value has 1025 characters; the limit is 1024',
    ],
  ])('InvalidVars %#', (vars, message) => {
    expect(withVars(vars)).toEqual({ ok: false, reason: 'InvalidVars', message });
  });
  it('lets Promotion vars override Stage defaults', () => {
    const s = stage();
    s.spec.promotionTemplate.spec.steps[1].config = { c: '${{ vars.channel }}' };
    const steps = {
      'shop/aws-s3-ls': step('aws-s3-ls', 'shop', S3_LS),
      'shop/publish': step('publish', 'shop', {
        ...PUBLISH,
        args: ['${{ config.c }}', '{{ vars.channel }}'],
      }),
    };
    const args = (vars: unknown[]) =>
      ok(buildPromotionPod(input({ stage: s, steps, promotion: promotion({ vars: vars as never }) }))).pod
        .spec.initContainers[1]!.args;
    expect(args([{ name: 'version', value: '1.0.0' }])).toEqual(['stable', 'stable']);
    expect(
      args([
        { name: 'version', value: '1.0.0' },
        { name: 'channel', value: 'beta' },
      ]),
    ).toEqual(['beta', 'beta']);
  });

  const tpl = (cfg: object, spec: object) => {
    const s = stage();
    s.spec.promotionTemplate.spec.steps[0].config = cfg;
    return buildPromotionPod(
      input({
        stage: s,
        steps: {
          'shop/aws-s3-ls': step('aws-s3-ls', 'shop', { ...S3_LS, ...spec }),
          'shop/publish': step('publish', 'shop', PUBLISH),
        },
      }),
    );
  };
  it.each([
    [
      { bucket: 'b', prefix: { path: 'p' } },
      { args: ['${{ config.bukket }}'] },
      'step "list s3" (uses "aws-s3-ls"): args[0]: config has no key "bukket" (known keys: bucket, prefix)',
    ],
    [
      {},
      { args: undefined, env: [{ name: 'FOO', value: '${{ secrets.token }}' }] },
      'step "list s3" (uses "aws-s3-ls"): env FOO: "secrets.token" does not start with config, vars or ctx',
    ],
    [
      { bucket: 'b' },
      { command: ['sh', '-c', '${{ config.bucket'] },
      'step "list s3" (uses "aws-s3-ls"): command[2]: "${{ config.bucket" has no closing "}}"',
    ],
    [
      { target: '${{ config.bucket }}' },
      {},
      'step "list s3": config.target refers to config; config values may use vars and ctx only',
    ],
  ])('TemplateError %#', (cfg, spec, message) => {
    expect(tpl(cfg, spec)).toEqual({ ok: false, reason: 'TemplateError', message });
  });
  it('renders both marker forms in command, args and env, and keeps literals', () => {
    const r = ok(
      tpl(
        { bucket: 'b', prefix: { path: 'r/${{ vars.version }}' }, hosts: ['h0', 'h1'] },
        {
          command: ['sh', '-c', 'echo ${{ ctx.stage }} {{ ctx.stepIndex }}'],
          args: ['{{ config.hosts.0 }} ${{ config.prefix.path }} {{.metadata.name}} \\${{ x }}'],
          env: [{ name: 'A', value: '${{ vars.version }}/{{ config.bucket }}' }],
        },
      ),
    );
    const c = r.pod.spec.initContainers[0]!;
    expect(c.command).toEqual(['sh', '-c', 'echo prod 1']);
    expect(c.args).toEqual(['h0 r/1.4.2 {{.metadata.name}} ${{ x }}']);
    expect(c.env.at(-1)).toEqual({ name: 'A', value: '1.4.2/b' });
  });
});

describe('order and Stage checks', () => {
  it('reports decorators before missing steps, and missing steps before vars', () => {
    const bad = stage({ annotations: { 'lanyard.dev/promotion-labels': '[]' } });
    expect(buildPromotionPod(input({ stage: bad, steps: {} }))).toMatchObject({
      reason: 'InvalidPromotionLabels',
    });
    expect(buildPromotionPod(input({ steps: {}, promotion: promotion({ vars: [] }) }))).toMatchObject({
      reason: 'StepNotFound',
    });
  });
  it('checks the final annotations size, Lanyard annotations included', () => {
    // 262,144 bytes of decorator annotation, plus Lanyard's two (65 bytes): over the limit only with Lanyard's.
    const big = JSON.stringify({ 'example.com/big': 'x'.repeat(262_144 - 'example.com/big'.length) });
    const r = buildPromotionPod(
      input({ stage: stage({ annotations: { 'lanyard.dev/promotion-annotations': big } }) }),
    );
    expect(r).toMatchObject({ ok: false, reason: 'InvalidPromotionAnnotations' });
    expect(!r.ok && r.message).toMatch(
      /the pod's annotations would total 262209 bytes; the limit is 262144$/,
    );
  });
  it.each([
    [
      { timeout: '10s' },
      'stage "prod": spec.promotionTemplate.spec.timeout "10s" must be a duration (30s, 2m, 1h30m) between 30s and 6h',
    ],
    [
      { timeout: '7h' },
      'stage "prod": spec.promotionTemplate.spec.timeout "7h" must be a duration (30s, 2m, 1h30m) between 30s and 6h',
    ],
    [{ steps: [] }, 'stage "prod": spec.promotionTemplate.spec.steps has 0 items; a stage needs 1 to 20'],
    [
      {
        steps: [
          { as: 'a', uses: 'x' },
          { as: 'a', uses: 'y' },
        ],
      },
      'stage "prod": spec.promotionTemplate.spec.steps[1].as "a" is used by an earlier step; names must be unique',
    ],
    [
      { steps: [{ uses: 'x', timeout: '0s' }] },
      'stage "prod": spec.promotionTemplate.spec.steps[0].timeout "0s" must be a duration of at least 1s',
    ],
    [
      { steps: [{ uses: 'x' }], vars: [{ name: 'a' }, { name: 'a' }] },
      'stage "prod": spec.promotionTemplate.spec.vars[1].name "a" is declared twice',
    ],
    [
      { steps: [{ uses: 'x' }], vars: [{ name: 'a', pattern: '(' }] },
      'stage "prod": spec.promotionTemplate.spec.vars[0].pattern "(" is not a valid regular expression',
    ],
  ])('InvalidStage %#', (spec, message) => {
    const base = stage().spec.promotionTemplate.spec;
    const r = buildPromotionPod(
      input({ stage: stage({ spec: { promotionTemplate: { spec: { ...base, ...spec } } } }) }),
    );
    expect(r).toMatchObject({ ok: false, reason: 'InvalidStage' });
    expect(!r.ok && r.message).toContain(message);
  });
  it('checks a Stage without Promotion vars (the Valid condition)', () => {
    expect(buildPromotionPod(input({ promotion: promotion({ vars: [] }), checkVars: false })).ok).toBe(true);
  });
});

describe('outputBudget', () => {
  it.each([
    [1, 4096],
    [2, 4096],
    [5, 2048],
    [20, 585],
  ])('%i steps -> %i bytes', (n, b) => expect(outputBudget(n)).toBe(b));
});
