// Seed 000 (docs/promotions.md, "Coming from Kargo"): the seed's CustomPromotionStep, ServiceAccount and Stage, with
// only their apiVersion changed, apply with strict field validation, and the promotion runs the step in a pod under
// the account Kargo's decorator names (not the default account), with Warning Events suggesting Lanyard's names
// (docs/adr/0603, docs/adr/0605). Kargo's labels and annotations
// decorators work too, under the reserved-key rules of docs/adr/0602.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { controlPlane, eventually, newNamespace } from '../../harness/context.ts';
import {
  tearDownPromotionEnv,
  G,
  getPod,
  phaseIs,
  promote,
  promotionEnv,
  waitPromotion,
  type PromotionEnv,
} from '../../fixtures/promotion-env.ts';
import { byKind, kubectlApply, seedManifests } from './helpers.ts';

let env: PromotionEnv;
let project: string;
let objs: Json[];

async function eventsOf(ns: string, kind: string, name: string): Promise<Json[]> {
  const list = await env.admin.get(`/apis/events.k8s.io/v1/namespaces/${ns}/events`);
  return (list.items as Json[]).filter((e) => e.regarding?.kind === kind && e.regarding?.name === name);
}

async function validOf(stage: string): Promise<Json | undefined> {
  const s = await env.admin.get(`${G}/namespaces/${project}/stages/${stage}`);
  const c = s.status?.conditions?.find((x: Json) => x.type === 'Valid');
  return c?.observedGeneration === s.metadata.generation ? c : undefined;
}

beforeAll(async () => {
  env = await promotionEnv({ kubeconfig: controlPlane().adminKubeconfig, newNamespace });
  project = await newNamespace(env.admin, 'kargo-demo', { 'lanyard.dev/project': 'true' });
  objs = seedManifests('000-kargo-promotion-identity.yaml', { AGENT_NS: env.agentNs, PROJECT: project });
  await env.startController();
});

afterAll(() => tearDownPromotionEnv(env, [project]));

describe('seed 000 with only its apiVersion changed', () => {
  it('applies strictly, and the promotion runs as the account named by ee.kargo.akuity.io/promotion-sa, with a Warning', async () => {
    for (const o of objs) await kubectlApply(env.admin, o);
    const stage = byKind(objs, 'Stage').metadata.name;

    // The Stage is valid for that account, and says which name to use instead and that requestedFreight is ignored.
    const valid = await eventually(async () => {
      const c = await validOf(stage);
      if (!c) throw new Error('Valid not written yet');
      return c;
    });
    expect(valid).toMatchObject({ status: 'True', reason: 'Valid' });
    expect(valid.message).toBe(
      `stage can be promoted: 1 step(s) as serviceaccount "s3-access"; ` +
        `stage "my-stage" uses Kargo's annotation ee.kargo.akuity.io/promotion-sa; Lanyard applies it, but rename it to lanyard.dev/promotion-sa; ` +
        `stage "my-stage" step "list s3" uses CustomPromotionStep "aws-s3-ls" in namespace "${env.agentNs}" (Kargo's kind); Lanyard runs it, but rename its kind to PromotionStep; ` +
        `stage "my-stage" has spec.requestedFreight (Kargo's Freight selection), which Lanyard ignores: a Promotion's vars say what is promoted`,
    );

    const created = await promote(env.admin, project, stage);
    const promo = await waitPromotion(
      env.admin,
      project,
      created.metadata.name,
      phaseIs('Running', 'Errored'),
    );
    expect(promo.status.phase, promo.status.message).toBe('Running');
    expect(promo.status.pod.serviceAccount).toBe('s3-access');
    const pod = await getPod(env.admin, env.agentNs, `promotion-${promo.metadata.uid}`);
    expect(pod!.spec.serviceAccountName).toBe('s3-access');
    // The step as the seed wrote it: its command templated with the Stage's config, its HOME kept.
    // The seed's one step is the pod's one step container, so it runs under that account.
    expect(pod!.spec.initContainers.map((c: Json) => c.name)).toEqual(['step-1']);
    const step = pod!.spec.initContainers.find((c: Json) => c.name === 'step-1');
    expect(step.image).toBe('amazon/aws-cli');
    expect(step.command).toEqual(['sh', '-c', 'mkdir -p $HOME; aws s3 ls s3://my_bucket_name']);
    expect(step.env).toContainEqual({ name: 'HOME', value: '/tmp/home' });

    expect(promo.status.steps.map((s: Json) => [s.name, s.uses])).toEqual([['list s3', 'aws-s3-ls']]);
    const notice = `stage "my-stage" uses Kargo's annotation ee.kargo.akuity.io/promotion-sa; Lanyard applies it, but rename it to lanyard.dev/promotion-sa`;
    const kindNotice = `stage "my-stage" step "list s3" uses CustomPromotionStep "aws-s3-ls" in namespace "${env.agentNs}" (Kargo's kind); Lanyard runs it, but rename its kind to PromotionStep`;
    await eventually(async () => {
      const onPromotion = await eventsOf(project, 'Promotion', promo.metadata.name);
      expect(onPromotion).toContainEqual(
        expect.objectContaining({ type: 'Warning', reason: 'DeprecatedDecorator', note: notice }),
      );
      const onStage = await eventsOf(project, 'Stage', stage);
      expect(onStage).toContainEqual(
        expect.objectContaining({ type: 'Warning', reason: 'DeprecatedDecorator', note: notice }),
      );
      expect(onStage).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'IgnoredField' }));
      for (const on of [onPromotion, onStage])
        expect(on).toContainEqual(
          expect.objectContaining({ type: 'Warning', reason: 'DeprecatedKind', note: kindNotice }),
        );
    });
  });

  it("Kargo's CustomPromotionStep is served with PromotionStep's schema; one name under both kinds in one namespace is Valid=False naming both (docs/adr/0605)", async () => {
    const step = byKind(objs, 'CustomPromotionStep');
    expect(step.apiVersion).toBe('lanyard.dev/v1alpha1');
    const stored = await env.admin.get(
      `${G}/namespaces/${env.agentNs}/custompromotionsteps/${step.metadata.name}`,
    );
    expect(stored).toMatchObject({ kind: 'CustomPromotionStep', spec: { image: 'amazon/aws-cli' } });
    const served = ((await env.admin.get(G)).resources as Json[])
      .filter((r) => !r.name.includes('/'))
      .map((r) => r.kind);
    expect(served).toEqual(expect.arrayContaining(['PromotionStep', 'CustomPromotionStep']));
    // Same validation as PromotionStep: the CRD's CEL rule on reserved env names refuses the object.
    await expect(
      kubectlApply(env.admin, {
        ...step,
        metadata: { ...step.metadata, name: 'bad-env' },
        spec: { ...step.spec, env: [{ name: 'LANYARD_X', value: '1' }] },
      }),
    ).rejects.toThrow('env names starting with LANYARD_ are reserved for Lanyard');

    // A PromotionStep of the same name next to it: never a silent pick.
    const stage = byKind(objs, 'Stage').metadata.name;
    await kubectlApply(env.admin, { ...step, kind: 'PromotionStep' });
    const invalid = await eventually(async () => {
      const c = await validOf(stage);
      if (c?.status !== 'False') throw new Error(`Valid is ${c?.status}`);
      return c;
    });
    expect(invalid).toMatchObject({
      reason: 'AmbiguousStep',
      message:
        `PromotionStep "aws-s3-ls" and CustomPromotionStep "aws-s3-ls" both exist in namespace "${env.agentNs}": ` +
        "delete the CustomPromotionStep (Kargo's name for the same kind)",
    });
    // A Promotion is refused the same way, with no pod (a copy of the Stage: my-stage's first Promotion still holds it).
    const seedStage = byKind(objs, 'Stage');
    await kubectlApply(env.admin, { ...seedStage, metadata: { ...seedStage.metadata, name: 'ambiguous' } });
    const refused = await waitPromotion(
      env.admin,
      project,
      (await promote(env.admin, project, 'ambiguous')).metadata.name,
      phaseIs('Errored', 'Running'),
    );
    expect(refused.status).toMatchObject({ phase: 'Errored', message: invalid.message });
    expect(await getPod(env.admin, env.agentNs, `promotion-${refused.metadata.uid}`)).toBeUndefined();

    // Renamed as the notice asks (the CustomPromotionStep deleted): valid again, with no kind notice.
    await env.admin.delete(`${G}/namespaces/${env.agentNs}/custompromotionsteps/${step.metadata.name}`);
    const valid = await eventually(async () => {
      const c = await validOf(stage);
      if (c?.status !== 'True') throw new Error(`Valid is ${c?.status}`);
      return c;
    });
    expect(valid.message).not.toContain('CustomPromotionStep');
  });

  it("applies Kargo's labels and annotations decorators to the pod, and refuses a reserved key under them (no pod)", async () => {
    const stage = byKind(objs, 'Stage');
    const decorated = {
      ...stage,
      metadata: {
        ...stage.metadata,
        name: 'decorated',
        annotations: {
          'ee.kargo.akuity.io/promotion-sa': 's3-access',
          'ee.kargo.akuity.io/promotion-labels': '{"team":"payments"}',
          'ee.kargo.akuity.io/promotion-annotations': '{"example.com/cost-center":"cc-1234"}',
        },
      },
    };
    await kubectlApply(env.admin, decorated);
    const ok = await waitPromotion(
      env.admin,
      project,
      (await promote(env.admin, project, 'decorated')).metadata.name,
      phaseIs('Running', 'Errored'),
    );
    expect(ok.status.phase, ok.status.message).toBe('Running');
    const pod = await getPod(env.admin, env.agentNs, `promotion-${ok.metadata.uid}`);
    expect(pod!.metadata.labels.team).toBe('payments');
    expect(pod!.metadata.annotations['example.com/cost-center']).toBe('cc-1234');

    // docs/adr/0602: the webhook's skip label stays reserved under Kargo's name.
    await kubectlApply(env.admin, {
      ...decorated,
      metadata: {
        ...decorated.metadata,
        name: 'reserved',
        annotations: {
          'ee.kargo.akuity.io/promotion-labels': '{"eks.amazonaws.com/skip-pod-identity-webhook":"true"}',
        },
      },
    });
    const bad = await waitPromotion(
      env.admin,
      project,
      (await promote(env.admin, project, 'reserved')).metadata.name,
      phaseIs('Errored', 'Running'),
    );
    expect(bad.status).toMatchObject({
      phase: 'Errored',
      message:
        'annotation ee.kargo.akuity.io/promotion-labels on stage "reserved": key "eks.amazonaws.com/skip-pod-identity-webhook": keys under eks.amazonaws.com belong to the identity webhook',
    });
    expect(bad.status.conditions.find((c: Json) => c.type === 'Valid')).toMatchObject({
      status: 'False',
      reason: 'InvalidPromotionLabels',
    });
    expect(await getPod(env.admin, env.agentNs, `promotion-${bad.metadata.uid}`)).toBeUndefined();
  });
});
