// docs/promotions.md: the pod a Promotion gets, and every validation error (no pod), against the
// real API server with the controller in-process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { createKubeClient } from '../../../src/kube/client.ts';
import { BUILTIN_ROLES, ADMIN_ROLE } from '../../../src/projects/builtin-roles.ts';
import { controlPlane, newNamespace, userKubeconfig } from '../../harness/context.ts';
import {
  tearDownPromotionEnv,
  createStage,
  createStep,
  G,
  getPod,
  phaseIs,
  podsOf,
  promote,
  promotionEnv,
  waitPromotion,
  type PromotionEnv,
} from '../../fixtures/promotion-env.ts';
import { buildPromotionPod } from '../../../src/promotions/build.ts';
import { TWO_STEP_STAGE_SPEC } from '../../fixtures/promotions.ts';
import { buildSettings } from '../../../src/promotions/controller.ts';

let env: PromotionEnv;
let project: string;
const ROLE = 'arn:aws:iam::111122223333:role/shop-s3-read';
const S3_LS = {
  image: 'public.ecr.aws/aws-cli/aws-cli:2.17.0',
  command: ['sh', '-c'],
  args: ['aws s3 ls "s3://{{ config.bucket }}/${{ config.prefix.path }}"'],
  env: [{ name: 'AWS_PAGER', value: '' }],
};
const TWO_STEPS = TWO_STEP_STAGE_SPEC;
const V = [{ name: 'version', value: '1.4.2' }];

let stageCounter = 0;
const stageName = () => `stg-${stageCounter++}`;

async function runningPod(stage: string, vars = V): Promise<{ promo: Json; pod: Json }> {
  const created = await promote(env.admin, project, stage, vars);
  const promo = await waitPromotion(env.admin, project, created.metadata.name, phaseIs('Running', 'Errored'));
  expect(promo.status.phase, promo.status.message).toBe('Running');
  const pod = await getPod(env.admin, env.agentNs, `promotion-${promo.metadata.uid}`);
  return { promo, pod };
}

async function erroredWith(stage: string, reason: string, message: string, vars = V): Promise<Json> {
  const created = await promote(env.admin, project, stage, vars);
  const promo = await waitPromotion(env.admin, project, created.metadata.name, phaseIs('Errored', 'Running'));
  expect(promo.status).toMatchObject({ phase: 'Errored', message });
  expect(promo.status.conditions.find((c: Json) => c.type === 'Valid')).toMatchObject({
    status: 'False',
    reason,
    message,
  });
  expect(await podsOf(env.admin, env.agentNs, promo.metadata.uid)).toEqual([]);
  return promo;
}

async function stageValid(stage: string): Promise<Json> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const s = await env.admin.get(`${G}/namespaces/${project}/stages/${stage}`);
    const c = s.status?.conditions?.find((x: Json) => x.type === 'Valid');
    if ((c && c.observedGeneration === s.metadata.generation) || Date.now() > deadline) return c;
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  env = await promotionEnv({ kubeconfig: controlPlane().adminKubeconfig, newNamespace });
  project = await newNamespace(env.admin, 'lp-shop', { 'lanyard.dev/project': 'true', team: 'shop-team' });
  await createStep(env.admin, project, 'aws-s3-ls', S3_LS);
  await createStep(env.admin, env.agentNs, 'publish', {
    image: 'example.com/publish:1',
    command: ['publish'],
  });
  await env.admin.create(`/api/v1/namespaces/${env.agentNs}/serviceaccounts`, {
    metadata: { name: 's3-access' },
  });
  await env.startController();
});

afterAll(() => tearDownPromotionEnv(env, [project]));

describe('the pod of a two-step Stage', () => {
  it('equals the pure builder output, field by field, and holds the Stage lock', async () => {
    const stage = stageName();
    const st = await createStage(env.admin, project, stage, TWO_STEPS);
    const { promo, pod } = await runningPod(stage);
    const steps = new Map([
      [`${project}/aws-s3-ls`, { spec: S3_LS }],
      [`${env.agentNs}/publish`, { spec: { image: 'example.com/publish:1', command: ['publish'] } }],
    ]);
    const built = buildPromotionPod({
      stage: st,
      promotion: promo,
      promotionStep: (ns, n) => steps.get(`${ns}/${n}`),
      serviceAccount: () => undefined,
      decideRole: () => ({ allowed: true }),
      settings: buildSettings(env.config),
    });
    if (!built.ok) throw new Error(built.message);
    expect(pod.metadata.name).toBe(`promotion-${promo.metadata.uid}`);
    expect(pod.metadata.labels).toEqual({
      'lanyard.dev/project': project,
      'lanyard.dev/stage': stage,
      'lanyard.dev/promotion': promo.metadata.name,
      'lanyard.dev/promotion-uid': promo.metadata.uid,
    });
    expect(pod.metadata.annotations).toEqual({
      'lanyard.dev/promotion': `${project}/${promo.metadata.name}`,
      'lanyard.dev/stage-generation': '1',
    });
    const spec = pod.spec;
    expect(spec).toMatchObject({
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
    });
    expect(spec.initContainers.map((c: Json) => c.name)).toEqual(['step-1', 'step-2']);
    expect(spec.containers.map((c: Json) => c.name)).toEqual(['done']);
    // What the server stored equals what the builder made (the server adds defaults and drops empty env values).
    const stored = JSON.parse(
      JSON.stringify(built.pod.spec.initContainers, (k, v) => (k === 'value' && v === '' ? undefined : v)),
    );
    expect(spec.initContainers).toMatchObject(stored);
    expect(spec.containers).toMatchObject(built.pod.spec.containers);
    expect(spec.initContainers[0].args).toEqual(['aws s3 ls "s3://shop-artifacts/releases/1.4.2"']);
    expect(spec.initContainers[1].volumeMounts).toEqual([
      { name: 'workspace', mountPath: '/workspace' },
      { name: 'home', mountPath: '/lanyard/home', subPath: 'step-2' },
    ]);
    expect(spec.initContainers[0].env.slice(0, 8).map((e: Json) => e.name)).toEqual([
      'LANYARD_PROJECT',
      'LANYARD_STAGE',
      'LANYARD_PROMOTION',
      'LANYARD_STEP',
      'LANYARD_STEP_INDEX',
      'LANYARD_WORKSPACE',
      'LANYARD_OUTPUT',
      'HOME',
    ]);
    expect(promo.status).toMatchObject({
      phase: 'Running',
      currentStep: 1,
      pod: {
        namespace: env.agentNs,
        name: pod.metadata.name,
        serviceAccount: 'lanyard-promotion-orchestrator',
      },
      steps: [
        { name: 'list s3', uses: 'aws-s3-ls', container: 'step-1', phase: 'Pending' },
        { name: 'step-2', uses: 'publish', container: 'step-2', phase: 'Pending' },
      ],
    });
    const stageNow = await env.admin.get(`${G}/namespaces/${project}/stages/${stage}`);
    expect(stageNow.status.currentPromotion).toBe(promo.metadata.name);
    expect(await stageValid(stage)).toMatchObject({ status: 'True', reason: 'Valid' });
  });
});

describe('Stage decorator annotations on the pod', () => {
  it.each([
    ['sa', { 'lanyard.dev/promotion-sa': 's3-access' }, 's3-access', {}, {}],
    [
      'labels',
      { 'lanyard.dev/promotion-labels': '{"team":"payments"}' },
      'lanyard-promotion-orchestrator',
      { team: 'payments' },
      {},
    ],
    [
      'annotations',
      { 'lanyard.dev/promotion-annotations': '{"example.com/cost-center":"cc-1234"}' },
      'lanyard-promotion-orchestrator',
      {},
      { 'example.com/cost-center': 'cc-1234' },
    ],
    [
      'all three',
      {
        'lanyard.dev/promotion-sa': 's3-access',
        'lanyard.dev/promotion-labels': '{"team":"payments"}',
        'lanyard.dev/promotion-annotations': '{"example.com/cost-center":"cc-1234"}',
      },
      's3-access',
      { team: 'payments' },
      { 'example.com/cost-center': 'cc-1234' },
    ],
    [
      'all three empty',
      {
        'lanyard.dev/promotion-sa': '',
        'lanyard.dev/promotion-labels': '',
        'lanyard.dev/promotion-annotations': '',
      },
      'lanyard-promotion-orchestrator',
      {},
      {},
    ],
  ])('%s', async (_name, annotations, sa, labels, anns) => {
    const stage = stageName();
    await createStage(env.admin, project, stage, TWO_STEPS, annotations);
    const { promo, pod } = await runningPod(stage);
    expect(pod.spec.serviceAccountName).toBe(sa);
    expect(pod.metadata.labels).toEqual({
      ...labels,
      'lanyard.dev/project': project,
      'lanyard.dev/stage': stage,
      'lanyard.dev/promotion': promo.metadata.name,
      'lanyard.dev/promotion-uid': promo.metadata.uid,
    });
    expect(pod.metadata.annotations).toEqual({
      ...anns,
      'lanyard.dev/promotion': `${project}/${promo.metadata.name}`,
      'lanyard.dev/stage-generation': '1',
    });
    expect(promo.status.pod.serviceAccount).toBe(sa);
  });
});

describe('invalid decorator annotations fail the promotion', () => {
  const L = 'lanyard.dev/promotion-labels';
  const A = 'lanyard.dev/promotion-annotations';
  const pre = (a: string, s: string) => `annotation ${a} on stage "${s}": `;
  let badJson = '';
  try {
    JSON.parse('{"team":');
  } catch (e) {
    badJson = (e as Error).message;
  }
  it.each([
    [
      'S1',
      { 'lanyard.dev/promotion-sa': 'S3_access' },
      'InvalidPromotionServiceAccount',
      (s: string) => `${pre('lanyard.dev/promotion-sa', s)}"S3_access" is not a valid service account name`,
    ],
    [
      'J1 labels',
      { [L]: '{"team":' },
      'InvalidPromotionLabels',
      (s: string) => `${pre(L, s)}not valid JSON: ${badJson}`,
    ],
    [
      'J2 annotations',
      { [A]: '["a"]' },
      'InvalidPromotionAnnotations',
      (s: string) => `${pre(A, s)}must be a JSON object, got array`,
    ],
    [
      'J3 labels',
      { [L]: '{"replicas":3}' },
      'InvalidPromotionLabels',
      (s: string) => `${pre(L, s)}key "replicas": value must be a string, got number`,
    ],
    [
      'K1 labels',
      { [L]: '{"a/b/c":"x"}' },
      'InvalidPromotionLabels',
      (s: string) => `${pre(L, s)}key "a/b/c": at most one "/" is allowed`,
    ],
    [
      'K1 annotations',
      { [A]: '{"a/b/c":"x"}' },
      'InvalidPromotionAnnotations',
      (s: string) => `${pre(A, s)}key "a/b/c": at most one "/" is allowed`,
    ],
    [
      'K2 labels',
      { [L]: '{"Team.io/app":"x"}' },
      'InvalidPromotionLabels',
      (s: string) =>
        `${pre(L, s)}key "Team.io/app": prefix "Team.io" must be a lowercase DNS subdomain of at most 253 characters`,
    ],
    [
      'K2 annotations',
      { [A]: '{"Team.io/app":"x"}' },
      'InvalidPromotionAnnotations',
      (s: string) =>
        `${pre(A, s)}key "Team.io/app": prefix "Team.io" must be a lowercase DNS subdomain of at most 253 characters`,
    ],
    [
      'K3 labels',
      { [L]: '{"app name":"x"}' },
      'InvalidPromotionLabels',
      (s: string) =>
        `${pre(L, s)}key "app name": name "app name" must be 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
    ],
    [
      'K3 annotations',
      { [A]: '{"app name":"x"}' },
      'InvalidPromotionAnnotations',
      (s: string) =>
        `${pre(A, s)}key "app name": name "app name" must be 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
    ],
    [
      'K4 labels',
      { [L]: '{"lanyard.dev/stage":"x"}' },
      'InvalidPromotionLabels',
      (s: string) => `${pre(L, s)}key "lanyard.dev/stage": keys under lanyard.dev belong to Lanyard`,
    ],
    [
      'K4 annotations',
      { [A]: '{"lanyard.dev/stage":"x"}' },
      'InvalidPromotionAnnotations',
      (s: string) => `${pre(A, s)}key "lanyard.dev/stage": keys under lanyard.dev belong to Lanyard`,
    ],
    [
      'reserved: the webhook skip label',
      { [L]: '{"eks.amazonaws.com/skip-pod-identity-webhook":"true"}' },
      'InvalidPromotionLabels',
      (s: string) =>
        `${pre(L, s)}key "eks.amazonaws.com/skip-pod-identity-webhook": keys under eks.amazonaws.com belong to the identity webhook`,
    ],
    [
      'reserved: a webhook injection annotation',
      { [A]: '{"eks.amazonaws.com/token-expiration":"86400"}' },
      'InvalidPromotionAnnotations',
      (s: string) =>
        `${pre(A, s)}key "eks.amazonaws.com/token-expiration": keys under eks.amazonaws.com belong to the identity webhook; of these a Stage may set only eks.amazonaws.com/skip-containers`,
    ],
    [
      'reserved: a Kubernetes label',
      { [L]: '{"pod-security.kubernetes.io/enforce":"privileged"}' },
      'InvalidPromotionLabels',
      (s: string) =>
        `${pre(L, s)}key "pod-security.kubernetes.io/enforce": keys under kubernetes.io belong to Kubernetes components (app.kubernetes.io is allowed)`,
    ],
    [
      'V1',
      { [L]: '{"team":"pay ments"}' },
      'InvalidPromotionLabels',
      (s: string) =>
        `${pre(L, s)}key "team": value "pay ments" must be empty or 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
    ],
  ])('%s', async (rule, annotations, reason, message) => {
    const stage = stageName();
    const want = message(stage);
    await createStage(env.admin, project, stage, TWO_STEPS, annotations as Record<string, string>);
    const promo = await erroredWith(stage, reason, want);
    expect(promo.status.conditions.find((c: Json) => c.type === 'Finished')).toMatchObject({
      status: 'True',
      reason: 'Errored',
    });
    const ev = await waitEvent(promo, 'PromotionErrored');
    expect(ev.type).toBe('Warning');
    expect(await stageValid(stage)).toMatchObject({ status: 'False', reason, message: want });
  });
});

async function waitEvent(promo: Json, reason: string): Promise<Json> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const list = await env.admin.get(`/apis/events.k8s.io/v1/namespaces/${project}/events`);
    const ev = list.items.find((e: Json) => e.regarding?.uid === promo.metadata.uid && e.reason === reason);
    if (ev || Date.now() > deadline) return ev ?? {};
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the final pod annotations are too large', () => {
  it('counts Lanyard annotations on top of a decorator that just fits on the Stage', async () => {
    const A = 'lanyard.dev/promotion-annotations';
    const stage = stageName();
    // The Stage's own annotations may total 262,144 bytes: fill them exactly, so only the pod is over the limit.
    const key = 'example.com/big';
    const value = 'x'.repeat(262_144 - A.length - JSON.stringify({ [key]: '' }).length - key.length);
    await createStage(env.admin, project, stage, TWO_STEPS, { [A]: JSON.stringify({ [key]: value }) });
    const created = await promote(env.admin, project, stage, V);
    const lanyard =
      'lanyard.dev/promotion'.length +
      `${project}/${created.metadata.name}`.length +
      'lanyard.dev/stage-generation'.length +
      1;
    const size = key.length + value.length + lanyard;
    const want = `annotation ${A} on stage "${stage}": the pod's annotations would total ${size} bytes; the limit is 262144`;
    const promo = await waitPromotion(
      env.admin,
      project,
      created.metadata.name,
      phaseIs('Errored', 'Running'),
    );
    expect(promo.status).toMatchObject({ phase: 'Errored', message: want });
    expect(promo.status.conditions.find((c: Json) => c.type === 'Valid')).toMatchObject({
      status: 'False',
      reason: 'InvalidPromotionAnnotations',
    });
    expect(await podsOf(env.admin, env.agentNs, promo.metadata.uid)).toEqual([]);
  });
});

describe('the promotion ServiceAccount must exist and be open to the project', () => {
  it('errors PromotionServiceAccountNotFound, then a new Promotion runs once the account exists', async () => {
    const stage = stageName();
    const sa = `sa-${stage}`;
    await createStage(env.admin, project, stage, TWO_STEPS, { 'lanyard.dev/promotion-sa': sa });
    await erroredWith(
      stage,
      'PromotionServiceAccountNotFound',
      `annotation lanyard.dev/promotion-sa on stage "${stage}": serviceaccount "${sa}" does not exist in namespace "${env.agentNs}"`,
    );
    await env.admin.create(`/api/v1/namespaces/${env.agentNs}/serviceaccounts`, { metadata: { name: sa } });
    await expect.poll(async () => (await stageValid(stage))?.status, { timeout: 10_000 }).toBe('True');
    const { pod } = await runningPod(stage);
    expect(pod.spec.serviceAccountName).toBe(sa);
  });
  it('errors PromotionServiceAccountNotAllowed, then a new Promotion runs once the project is allowed', async () => {
    const stage = stageName();
    const sa = `sa-${stage}`;
    await env.admin.create(`/api/v1/namespaces/${env.agentNs}/serviceaccounts`, {
      metadata: { name: sa, annotations: { 'lanyard.dev/allowed-projects': 'payments' } },
    });
    await createStage(env.admin, project, stage, TWO_STEPS, { 'lanyard.dev/promotion-sa': sa });
    await erroredWith(
      stage,
      'PromotionServiceAccountNotAllowed',
      `annotation lanyard.dev/promotion-sa on stage "${stage}": serviceaccount "${sa}" in namespace "${env.agentNs}" is not open to project "${project}" (allowed: payments)`,
    );
    await env.admin.patch(
      `/api/v1/namespaces/${env.agentNs}/serviceaccounts/${sa}`,
      { metadata: { annotations: { 'lanyard.dev/allowed-projects': `payments,${project}` } } },
      'application/merge-patch+json',
    );
    await expect.poll(async () => (await stageValid(stage))?.status, { timeout: 10_000 }).toBe('True');
    await runningPod(stage);
  });
});

describe('templating', () => {
  it('renders both marker forms in command, args and env and keeps literals', async () => {
    await createStep(env.admin, project, 'templated', {
      image: 'example.com/t:1',
      command: ['sh', '-c', 'echo ${{ ctx.stage }} {{ vars.version }}'],
      args: [
        '{{ config.hosts.0 }}',
        '${{ config.prefix.path }}',
        '{{.metadata.name}}',
        '\\${{ not.a.template }}',
      ],
      env: [{ name: 'TARGET', value: '{{ config.prefix.path }}@${{ vars.channel }}' }],
    });
    const stage = stageName();
    await createStage(env.admin, project, stage, {
      promotionTemplate: {
        spec: {
          vars: [
            { name: 'version', value: '0.0.1' },
            { name: 'channel', value: 'stable' },
          ],
          steps: [
            {
              uses: 'templated',
              config: {
                hosts: ['h0.example', 'h1.example'],
                prefix: { path: 'releases/${{ vars.version }}' },
              },
            },
          ],
        },
      },
    });
    const { pod } = await runningPod(stage, [{ name: 'version', value: '2.0.0' }]);
    const c = pod.spec.initContainers[0];
    expect(c.command).toEqual(['sh', '-c', `echo ${stage} 2.0.0`]);
    expect(c.args).toEqual(['h0.example', 'releases/2.0.0', '{{.metadata.name}}', '${{ not.a.template }}']);
    expect(c.env.at(-1)).toEqual({ name: 'TARGET', value: 'releases/2.0.0@stable' });
  });
});

describe('template and var errors', () => {
  const cases: Array<
    [
      string,
      Json,
      Json,
      Array<{ name: string; value: string }>,
      string,
      (stage: string, step: string) => string,
    ]
  > = [
    [
      'unknown key',
      { bukket: 'b', prefix: { path: 'p' } },
      { args: ['${{ config.bukket }} {{ config.bucket }}'] },
      V,
      'TemplateError',
      (_s, step) =>
        `step "list s3" (uses "${step}"): args[0]: config has no key "bucket" (known keys: bukket, prefix)`,
    ],
    [
      'unknown root',
      {},
      { env: [{ name: 'FOO', value: '${{ secrets.token }}' }], args: [] },
      V,
      'TemplateError',
      (_s, step) =>
        `step "list s3" (uses "${step}"): env FOO: "secrets.token" does not start with config, vars or ctx`,
    ],
    [
      'unterminated',
      { bucket: 'b' },
      { command: ['sh', '-c', '${{ config.bucket'], args: [] },
      V,
      'TemplateError',
      (_s, step) => `step "list s3" (uses "${step}"): command[2]: "\${{ config.bucket" has no closing "}}"`,
    ],
    [
      'undeclared var',
      { bucket: 'b', prefix: { path: 'p' } },
      {},
      [...V, { name: 'color', value: 'red' }],
      'InvalidVars',
      (s) => `var "color" is not declared by stage "${s}"`,
    ],
    [
      'missing var',
      { bucket: 'b', prefix: { path: 'p' } },
      {},
      [],
      'InvalidVars',
      (s) => `var "version" is required by stage "${s}" and was not given`,
    ],
    [
      'var pattern',
      { bucket: 'b', prefix: { path: 'p' } },
      {},
      [{ name: 'version', value: '1.4; rm -rf /' }],
      'InvalidVars',
      () => 'var "version": value "1.4; rm -rf /" does not match [0-9]+\\.[0-9]+\\.[0-9]+',
    ],
  ];
  it.each(cases)('%s', async (name, config, stepSpec, vars, reason, message) => {
    const stepName = `s3-${name.replace(/ /g, '-')}`;
    await createStep(env.admin, project, stepName, { ...S3_LS, ...stepSpec });
    const stage = stageName();
    await createStage(env.admin, project, stage, {
      promotionTemplate: {
        spec: {
          vars: TWO_STEPS.promotionTemplate.spec.vars,
          steps: [{ as: 'list s3', uses: stepName, config }],
        },
      },
    });
    await erroredWith(stage, reason, message(stage, stepName), vars);
  });
});

describe('per-step roles under IdentityPolicy', () => {
  const policy = `lp-policy-${Date.now().toString(36)}`;
  afterAll(async () => {
    await env.admin.delete(`${G}/identitypolicies/${policy}`).catch(() => undefined);
  });
  it('gives only step-2 the role when a policy on the project labels allows it; denies otherwise', async () => {
    await createStep(env.admin, project, 'publish-role', {
      image: 'example.com/publish:1',
      command: ['publish'],
      identity: { roleARN: ROLE },
    });
    const stage = stageName();
    await createStage(
      env.admin,
      project,
      stage,
      {
        promotionTemplate: {
          spec: {
            vars: TWO_STEPS.promotionTemplate.spec.vars,
            steps: [TWO_STEPS.promotionTemplate.spec.steps[0], { as: 'publish', uses: 'publish-role' }],
          },
        },
      },
      { 'lanyard.dev/promotion-sa': 's3-access' },
    );
    await env.admin.create(`${G}/identitypolicies`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'IdentityPolicy',
      metadata: { name: policy },
      spec: {
        rules: [
          {
            namespaceSelector: { matchLabels: { team: 'shop-team', 'kubernetes.io/metadata.name': project } },
            serviceAccounts: ['s3-*'],
            roles: ['arn:aws:iam::111122223333:role/shop-*'],
          },
        ],
      },
    });
    const { pod } = await runningPod(stage);
    const [s1, s2] = pod.spec.initContainers;
    const awsNames = (c: Json) =>
      c.env.map((e: Json) => e.name).filter((n: string) => n.startsWith('AWS_') && n !== 'AWS_PAGER');
    expect(awsNames(s1)).toEqual([]);
    expect(awsNames(s2)).toEqual([
      'AWS_ROLE_ARN',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
      'AWS_ROLE_SESSION_NAME',
      'AWS_STS_REGIONAL_ENDPOINTS',
    ]);
    expect(s2.env.find((e: Json) => e.name === 'AWS_ROLE_ARN').value).toBe(ROLE);
    expect(s1.volumeMounts.map((m: Json) => m.name)).toEqual(['workspace', 'home']);
    expect(s2.volumeMounts.map((m: Json) => m.name)).toEqual(['workspace', 'home', 'lanyard-aws-step-2']);
    expect(
      pod.spec.volumes.find((v: Json) => v.name === 'lanyard-aws-step-2').projected.sources[0]
        .serviceAccountToken,
    ).toEqual({ audience: 'lanyard-promotion-step', expirationSeconds: 3600, path: 'token' });
    expect(pod.metadata.annotations['eks.amazonaws.com/skip-containers']).toBe('step-2');

    // The project loses the label the policy selects: denied, no pod.
    await env.admin.patch(
      `/api/v1/namespaces/${project}`,
      { metadata: { labels: { team: null } } },
      'application/merge-patch+json',
    );
    try {
      await erroredWith(
        stage,
        'StepRoleDenied',
        `step "publish" (uses "publish-role"): no IdentityPolicy allows namespace "${project}" ServiceAccount "s3-access" to use role "${ROLE}"`,
      );
    } finally {
      await env.admin.patch(
        `/api/v1/namespaces/${project}`,
        { metadata: { labels: { team: 'shop-team' } } },
        'application/merge-patch+json',
      );
    }
  });
});

describe('step resolution and capabilities', () => {
  it("uses the project's step, then the agent namespace's, else StepNotFound", async () => {
    await createStep(env.admin, project, 'shadowed', { image: 'project/step:1', command: ['x'] });
    await createStep(env.admin, env.agentNs, 'shadowed', { image: 'agent/step:1', command: ['x'] });
    await createStep(env.admin, env.agentNs, 'shared-only', {
      image: 'agent/shared:1',
      command: ['x'],
      capabilities: ['kubernetes-api'],
    });
    const stage = stageName();
    await createStage(env.admin, project, stage, {
      promotionTemplate: {
        spec: { steps: [{ uses: 'shadowed' }, { uses: 'shared-only' }, { uses: 'publish' }] },
      },
    });
    const { pod } = await runningPod(stage, []);
    expect(pod.spec.initContainers.map((c: Json) => c.image)).toEqual([
      'project/step:1',
      'agent/shared:1',
      'example.com/publish:1',
    ]);
    const kubeMounts = pod.spec.initContainers.map((c: Json) =>
      c.volumeMounts.filter((m: Json) => m.name.startsWith('lanyard-kube-')).map((m: Json) => m.mountPath),
    );
    expect(kubeMounts).toEqual([[], ['/var/run/secrets/kubernetes.io/serviceaccount'], []]);

    const missing = stageName();
    await createStage(env.admin, project, missing, {
      promotionTemplate: { spec: { steps: [{ uses: 'shadowed' }, { as: 'sync', uses: 'nowhere' }] } },
    });
    await erroredWith(
      missing,
      'StepNotFound',
      `step "sync" uses "nowhere", which exists neither in project "${project}" nor in namespace "${env.agentNs}"`,
      [],
    );
  });
});

describe("Kubernetes tokens: a project admin's own steps get none", () => {
  const TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
  it('builds a pod whose project steps hold no token, and errors a project step asking for one, as the project admin', async () => {
    // The attacker: a user holding the project's built-in admin role, nothing else.
    const user = `mallory-${project}`.slice(0, 60);
    const rules = BUILTIN_ROLES.find((r) => r.name === ADMIN_ROLE)!.rules;
    await env.admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${project}/roles`, {
      metadata: { name: 'mallory-admin' },
      rules,
    });
    await env.admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${project}/rolebindings`, {
      metadata: { name: 'mallory-admin' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'mallory-admin' },
      subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: user }],
    });
    const mallory = await createKubeClient({ kubeconfig: await userKubeconfig(user) });
    try {
      // Shared steps are out of reach: only operators write the agent namespace.
      await expect(
        createStep(mallory, env.agentNs, 'evil-shared', {
          image: 'evil/step:1',
          command: ['x'],
          capabilities: ['mint-tokens'],
        }),
      ).rejects.toThrow(/forbidden/i);

      await expect
        .poll(
          async () =>
            createStep(mallory, project, 'own-step', { image: 'evil/step:1', command: ['x'] }).then(
              () => 'created',
              (e) => String(e),
            ),
          { timeout: 10_000 },
        )
        .toBe('created');
      const plain = stageName();
      await createStage(mallory, project, plain, {
        promotionTemplate: { spec: { steps: [{ uses: 'own-step' }, { uses: 'publish' }] } },
      });
      const created = await promote(mallory, project, plain);
      const promo = await waitPromotion(
        env.admin,
        project,
        created.metadata.name,
        phaseIs('Running', 'Errored'),
      );
      expect(promo.status.phase, promo.status.message).toBe('Running');
      const pod = await getPod(env.admin, env.agentNs, `promotion-${promo.metadata.uid}`);
      // What the API server stored: no token volume was added by ServiceAccount admission, none is mounted anywhere.
      expect(pod.spec.serviceAccountName).toBe('lanyard-promotion-orchestrator');
      expect(pod.spec.automountServiceAccountToken).toBe(false);
      expect(pod.spec.volumes.filter((v: Json) => v.projected || v.secret)).toEqual([]);
      for (const c of [...pod.spec.initContainers, ...pod.spec.containers]) {
        expect(
          (c.volumeMounts ?? []).map((m: Json) => m.mountPath),
          c.name,
        ).not.toContain(TOKEN_DIR);
      }

      // The same step asking for the orchestrator's token (which may mint Argo CD tokens): Errored, no pod.
      await createStep(mallory, project, 'own-minter', {
        image: 'evil/step:1',
        command: ['x'],
        capabilities: ['mint-tokens'],
      });
      const minting = stageName();
      await createStage(mallory, project, minting, {
        promotionTemplate: { spec: { steps: [{ as: 'sync', uses: 'own-minter' }] } },
      });
      await erroredWith(
        minting,
        'StepCapabilityDenied',
        `step "sync" (uses "own-minter"): spec.capabilities [mint-tokens]: only PromotionSteps in namespace "${env.agentNs}" ` +
          `may hold Kubernetes credentials; steps of project "${project}" run without them`,
        [],
      );
    } finally {
      mallory.close();
    }
  });
});

describe('pod creation refused by the API server', () => {
  it("is Errored with PodRejected and the server's reason, and releases the Stage lock", async () => {
    // A ValidatingAdmissionPolicy that refuses every pod of this test's agent namespace.
    const name = `lp-freeze-${env.agentNs}`.slice(0, 63);
    const vap = '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies';
    const binding = '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings';
    await env.admin.create(vap, {
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] },
          ],
        },
        validations: [{ expression: 'false', message: 'pods are frozen in this namespace' }],
      },
    });
    await env.admin.create(binding, {
      metadata: { name },
      spec: {
        policyName: name,
        validationActions: ['Deny'],
        matchResources: {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': env.agentNs } },
        },
      },
    });
    try {
      // Policies take effect asynchronously: wait until a dry-run pod is refused.
      await expect
        .poll(
          async () =>
            env.admin
              .create(
                `/api/v1/namespaces/${env.agentNs}/pods`,
                {
                  metadata: { name: 'probe' },
                  spec: {
                    containers: [
                      {
                        name: 'c',
                        image: 'x',
                        securityContext: {
                          allowPrivilegeEscalation: false,
                          capabilities: { drop: ['ALL'] },
                          runAsNonRoot: true,
                          seccompProfile: { type: 'RuntimeDefault' },
                        },
                      },
                    ],
                  },
                },
                { dryRun: 'All' },
              )
              .then(
                () => 'admitted',
                (e) => String(e),
              ),
          { timeout: 10_000 },
        )
        .toContain('pods are frozen');
      const stage = stageName();
      await createStage(env.admin, project, stage, TWO_STEPS);
      const created = await promote(env.admin, project, stage, V);
      const promo = await waitPromotion(
        env.admin,
        project,
        created.metadata.name,
        phaseIs('Errored', 'Running'),
      );
      expect(promo.status.phase).toBe('Errored');
      expect(promo.status.message, promo.status.message).toMatch(
        /^the API server refused the pod: .*pods are frozen in this namespace/,
      );
      expect(promo.status.conditions.find((c: Json) => c.type === 'Finished')).toMatchObject({
        reason: 'Errored',
      });
      expect(await podsOf(env.admin, env.agentNs, promo.metadata.uid)).toEqual([]);
      await expect
        .poll(
          async () =>
            (await env.admin.get(`${G}/namespaces/${project}/stages/${stage}`)).status?.currentPromotion ??
            'none',
        )
        .toBe('none');
    } finally {
      await env.admin.delete(`${binding}/${name}`).catch(() => undefined);
      await env.admin.delete(`${vap}/${name}`).catch(() => undefined);
    }
  });
});

describe('admission', () => {
  it('rejects a Stage with `if`, a bad name and an immutable spec change', async () => {
    await expect(
      createStage(env.admin, project, stageName(), {
        promotionTemplate: { spec: { steps: [{ uses: 'publish', if: '${{ true }}' }] } },
      }),
    ).rejects.toThrow(/unknown field "spec.promotionTemplate.spec.steps\[0\].if"/);
    await expect(createStage(env.admin, project, 'Bad_Name', TWO_STEPS)).rejects.toThrow(
      /RFC 1123 label|metadata.name/,
    );
    const stage = stageName();
    await createStage(env.admin, project, stage, TWO_STEPS);
    const p = await promote(env.admin, project, stage, V, { 'lanyard.dev/abort': 'true' });
    await expect(
      env.admin.patch(
        `${G}/namespaces/${project}/promotions/${p.metadata.name}`,
        { spec: { stage: 'other' } },
        'application/merge-patch+json',
      ),
    ).rejects.toThrow(/spec is immutable/);
  });
});
