// docs/promotions.md#lifecycle (success, failure, timeouts, deletion, queueing, abort, doctor, a controller restart)
// and docs/promotions.md#cli: a stand-in kubelet writes pod status, the
// controller runs in-process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { runCli } from '../../../src/cli/run.ts';
import { controlPlane, newNamespace } from '../../harness/context.ts';
import {
  tearDownPromotionEnv,
  createStage,
  createStep,
  exited,
  G,
  getPod,
  getPromotion,
  kubelet,
  phaseIs,
  podsOf,
  promote,
  promotionEnv,
  running,
  waitPromotion,
  type PromotionEnv,
} from '../../fixtures/promotion-env.ts';

let env: PromotionEnv;
let project: string;
let cliEnv: Record<string, string>;
let n = 0;
const stageName = () => `life-${n++}`;
const steps = (...uses: string[]) => ({
  promotionTemplate: { spec: { steps: uses.map((u, i) => ({ as: `s${i + 1}`, uses: u })) } },
});
const podNameOf = (p: Json) => `promotion-${p.metadata.uid}`;
const cli = (...argv: string[]) => runCli([...argv, '--project', project], { env: cliEnv });

async function waitPod(p: Json): Promise<Json> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const pod = await getPod(env.admin, env.agentNs, podNameOf(p));
    if (pod || Date.now() > deadline) return pod;
    await new Promise((r) => setTimeout(r, 50));
  }
}
async function waitGone(ns: string, name: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (await getPod(env.admin, ns, name)) {
    if (Date.now() > deadline) throw new Error(`pod ${name} still exists`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const stageStatus = async (stage: string) =>
  (await env.admin.get(`${G}/namespaces/${project}/stages/${stage}`)).status ?? {};

beforeAll(async () => {
  env = await promotionEnv({
    kubeconfig: controlPlane().adminKubeconfig,
    newNamespace,
    flags: { 'promotion-pod-retention': '0s' },
    orphanSweepMs: 500,
    orphanGraceMs: 2_000,
  });
  project = await newNamespace(env.admin, 'lp-life', { 'lanyard.dev/project': 'true' });
  cliEnv = { KUBECONFIG: controlPlane().adminKubeconfig, LANYARD_PROMOTION_NAMESPACE: env.agentNs };
  for (const s of ['a', 'b', 'c'])
    await createStep(env.admin, project, s, { image: `example.com/${s}:1`, command: [s] });
  await env.startController();
});

afterAll(() => tearDownPromotionEnv(env, [project]));

describe('a successful promotion', () => {
  it('copies outputs and times, releases the lock and deletes the pod (retention 0)', async () => {
    const stage = stageName();
    await createStage(env.admin, project, stage, steps('a', 'b'));
    const p = await promote(env.admin, project, stage);
    const pod = await waitPod(p);
    await kubelet(env.admin, env.agentNs, pod.metadata.name, {
      phase: 'Pending',
      init: { 'step-1': running() },
    });
    await waitPromotion(
      env.admin,
      project,
      p.metadata.name,
      (x) => x.status?.steps?.[0]?.phase === 'Running',
    );
    await kubelet(env.admin, env.agentNs, pod.metadata.name, {
      phase: 'Succeeded',
      init: { 'step-1': exited(0, '{"chart":"web-1.4.2"}'), 'step-2': exited(0, 'a=1') },
      done: exited(0),
    });
    const done = await waitPromotion(
      env.admin,
      project,
      p.metadata.name,
      phaseIs('Succeeded', 'Failed', 'Errored'),
    );
    expect(done.status).toMatchObject({
      phase: 'Succeeded',
      currentStep: 2,
      message: 'all 2 steps succeeded',
    });
    expect(done.status.steps.map((s: Json) => [s.phase, s.exitCode, s.output])).toEqual([
      ['Succeeded', 0, { chart: 'web-1.4.2' }],
      ['Succeeded', 0, { a: '1' }],
    ]);
    const times = [done.status.steps[0].startedAt, done.status.steps[0].finishedAt, done.status.finishedAt];
    for (const t of times) expect(t).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(times.map((t) => Date.parse(t))).toEqual(times.map((t) => Date.parse(t)).sort((a, b) => a - b));
    expect(done.status.conditions.find((c: Json) => c.type === 'Finished')).toMatchObject({
      status: 'True',
      reason: 'Succeeded',
    });
    await expect.poll(async () => (await stageStatus(stage)).lastPromotion?.phase).toBe('Succeeded');
    expect((await stageStatus(stage)).currentPromotion).toBeUndefined();
    await waitGone(env.agentNs, pod.metadata.name);
    const metrics = await env.metrics.getSingleMetricAsString('lanyard_promotions_total');
    expect(metrics).toMatch(/lanyard_promotions_total\{phase="Succeeded"\} [1-9]/);
  });
});

describe('a failed step, and promote --wait', () => {
  it('marks step-2 Failed and step-3 Skipped; promote --wait prints progress and exits 10', async () => {
    const stage = stageName();
    await createStage(env.admin, project, stage, steps('a', 'b', 'c'));
    const waiting = cli('promote', '--stage', stage, '--wait', '--timeout', '30s');
    const deadline = Date.now() + 10_000;
    let p: Json | undefined;
    while (!p && Date.now() < deadline) {
      p = (await env.admin.get(`${G}/namespaces/${project}/promotions`)).items.find(
        (x: Json) => x.spec.stage === stage,
      );
      if (!p) await new Promise((r) => setTimeout(r, 50));
    }
    const pod = await waitPod(p!);
    await kubelet(env.admin, env.agentNs, pod.metadata.name, {
      phase: 'Pending',
      init: { 'step-1': running() },
    });
    await waitPromotion(
      env.admin,
      project,
      p!.metadata.name,
      (x) => x.status?.steps?.[0]?.phase === 'Running',
    );
    await kubelet(env.admin, env.agentNs, pod.metadata.name, {
      phase: 'Failed',
      init: { 'step-1': exited(0), 'step-2': exited(3, 'boom') },
    });
    const r = await waiting;
    const done = await getPromotion(env.admin, project, p!.metadata.name);
    expect(done.status.steps.map((s: Json) => s.phase)).toEqual(['Succeeded', 'Failed', 'Skipped']);
    expect(done.status.steps[1]).toMatchObject({ exitCode: 3, message: 'boom' });
    expect(done.status).toMatchObject({
      phase: 'Failed',
      message: 'step "s2" (2 of 3) failed with exit code 3: boom',
    });
    expect(r.stderr).toBe('');
    const name = p!.metadata.name;
    expect(r.stdout.split('\n')).toEqual([
      `promotion/${name} created`,
      `${name}: running in pod ${env.agentNs}/${pod.metadata.name} as serviceaccount "lanyard-promotion-orchestrator"`,
      '[1/3] s1    running',
      expect.stringMatching(/^\[1\/3\] s1    succeeded in \d+s$/),
      '[2/3] s2    running',
      expect.stringMatching(/^\[2\/3\] s2    failed in \d+s, exit code 3: boom$/),
      `promotion/${name} Failed: step "s2" (2 of 3) failed with exit code 3: boom`,
      '',
    ]);
    expect(r.exitCode).toBe(10);
  });

  it('refuses a malformed --var before sending anything, and times out with exit 6', async () => {
    const bad = await cli('promote', '--stage', 'x', '--var', 'no-equals');
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('invalid --var "no-equals"');
    const stage = stageName();
    await createStage(env.admin, project, stage, steps('a'));
    const r = await cli('promote', '--stage', stage, '--wait', '--timeout', '1s');
    expect(r.exitCode).toBe(6);
    const name = r.stdout.split('\n')[0]!.replace(/^promotion\/(.*) created$/, '$1');
    expect(r.stderr).toBe(
      `error: promotion "${name}" in project "${project}" is still Running after 1s; it was not stopped (lanyard abort promotion ${name} stops it)\n`,
    );
    const ab = await cli('abort', 'promotion', name);
    expect(ab).toMatchObject({ exitCode: 0, stdout: `promotion/${name} abort requested\n` });
    await waitPromotion(env.admin, project, name, phaseIs('Aborted'));
    const again = await cli('abort', 'promo', name);
    expect(again.exitCode).toBe(5);
    expect(again.stderr).toBe(
      `error: promotion "${name}" in project "${project}" already finished (Aborted); nothing to abort\n`,
    );
  });
});

describe('timeouts', () => {
  it('reads the pod deadline as PromotionTimedOut', async () => {
    const stage = stageName();
    await createStage(env.admin, project, stage, {
      promotionTemplate: {
        spec: {
          timeout: '15m',
          steps: [
            { as: 'list s3', uses: 'a' },
            { as: 'publish', uses: 'b' },
          ],
        },
      },
    });
    const p = await promote(env.admin, project, stage);
    const pod = await waitPod(p);
    expect(pod.spec.activeDeadlineSeconds).toBe(900);
    await kubelet(env.admin, env.agentNs, pod.metadata.name, {
      phase: 'Failed',
      reason: 'DeadlineExceeded',
      message: 'Pod was active on the node longer than the specified deadline',
      init: { 'step-1': exited(0), 'step-2': running() },
    });
    const done = await waitPromotion(env.admin, project, p.metadata.name, phaseIs('Failed'));
    expect(done.status.message).toBe('promotion timed out after 15m during step "publish" (2 of 2)');
    expect(done.status.steps[1]).toMatchObject({
      phase: 'Failed',
      message: 'stopped at the promotion timeout',
    });
  });

  it('enforces a 2s step timeout: status first, then the pod is deleted', async () => {
    const stage = stageName();
    await createStage(env.admin, project, stage, {
      promotionTemplate: { spec: { steps: [{ as: 'slow', uses: 'a', timeout: '2s' }, { uses: 'b' }] } },
    });
    const p = await promote(env.admin, project, stage);
    const pod = await waitPod(p);
    await kubelet(env.admin, env.agentNs, pod.metadata.name, {
      phase: 'Pending',
      init: { 'step-1': running() },
    });
    const t0 = Date.now();
    const done = await waitPromotion(
      env.admin,
      project,
      p.metadata.name,
      phaseIs('Failed', 'Errored'),
      8_000,
    );
    expect(done.status).toMatchObject({
      phase: 'Failed',
      message: 'step "slow" (1 of 2) timed out after 2s',
    });
    expect(done.status.steps.map((s: Json) => [s.phase, s.message])).toEqual([
      ['Failed', 'timed out after 2s'],
      ['Skipped', undefined],
    ]);
    await waitGone(env.agentNs, pod.metadata.name, 5_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    // The pod's disappearance was not taken for PodLost.
    expect((await getPromotion(env.admin, project, p.metadata.name)).status.phase).toBe('Failed');
  });
});

describe('deletion and orphans', () => {
  it('deletes the pod, then the Promotion; the next Pending one gets its pod', async () => {
    const stage = stageName();
    await createStage(env.admin, project, stage, steps('a'));
    const first = await promote(env.admin, project, stage);
    const pod = await waitPod(first);
    const second = await promote(env.admin, project, stage);
    await waitPromotion(
      env.admin,
      project,
      second.metadata.name,
      (x) => x.status?.message === `waiting for promotion "${first.metadata.name}" on stage "${stage}"`,
    );
    expect((await getPromotion(env.admin, project, first.metadata.name)).metadata.finalizers).toEqual([
      'lanyard.dev/promotion-pod',
    ]);
    await env.admin.delete(`${G}/namespaces/${project}/promotions/${first.metadata.name}`);
    await waitGone(env.agentNs, pod.metadata.name);
    await expect
      .poll(
        async () =>
          getPromotion(env.admin, project, first.metadata.name).then(
            () => 'present',
            () => 'gone',
          ),
        { timeout: 10_000 },
      )
      .toBe('gone');
    await waitPromotion(env.admin, project, second.metadata.name, phaseIs('Running'));
    expect((await waitPod(second))?.metadata.name).toBe(podNameOf(second));
  });

  it('sweeps, at start-up, a pod whose Promotion vanished without the finalizer', async () => {
    const stage = stageName();
    await createStage(env.admin, project, stage, steps('a'));
    const p = await promote(env.admin, project, stage);
    const pod = await waitPod(p);
    await waitPromotion(env.admin, project, p.metadata.name, phaseIs('Running'));
    await env.stopController();
    // Someone strips the finalizer and deletes the Promotion while the controller is down.
    await env.admin.patch(
      `${G}/namespaces/${project}/promotions/${p.metadata.name}`,
      { metadata: { finalizers: null } },
      'application/merge-patch+json',
    );
    await env.admin.delete(`${G}/namespaces/${project}/promotions/${p.metadata.name}`);
    await expect
      .poll(async () =>
        getPromotion(env.admin, project, p.metadata.name).then(
          () => 'present',
          () => 'gone',
        ),
      )
      .toBe('gone');
    expect((await getPod(env.admin, env.agentNs, pod.metadata.name))?.metadata.uid).toBe(pod.metadata.uid);
    await new Promise((r) => setTimeout(r, 2_000)); // past the test's orphan grace period
    await env.startController();
    await waitGone(env.agentNs, pod.metadata.name, 5_000);
  });
});

describe('queueing and abort', () => {
  it('runs one pod at a time, in creation order; aborts a Pending one without a pod and a Running one with its pod', async () => {
    const stage = stageName();
    await createStage(env.admin, project, stage, steps('a'));
    const ps: Json[] = [];
    for (let i = 0; i < 3; i++) {
      ps.push(await promote(env.admin, project, stage));
      // creationTimestamp has one-second resolution: keep creation order visible in it.
      if (i < 2) await new Promise((r) => setTimeout(r, 1050));
    }
    const [p1, p2, p3] = ps as [Json, Json, Json];
    await waitPromotion(env.admin, project, p1.metadata.name, phaseIs('Running'));
    await waitPromotion(env.admin, project, p3.metadata.name, phaseIs('Pending'));
    expect(await podsOf(env.admin, env.agentNs, p2.metadata.uid)).toEqual([]);
    expect(await podsOf(env.admin, env.agentNs, p3.metadata.uid)).toEqual([]);
    // Abort the Pending p2: Aborted without a pod.
    await env.admin.patch(
      `${G}/namespaces/${project}/promotions/${p2.metadata.name}`,
      { metadata: { annotations: { 'lanyard.dev/abort': 'true' } } },
      'application/merge-patch+json',
    );
    const a2 = await waitPromotion(env.admin, project, p2.metadata.name, phaseIs('Aborted'));
    expect(a2.status.pod).toBeUndefined();
    // Abort the Running p1: Aborted, pod deleted, p3 starts.
    const pod1 = await waitPod(p1);
    const ab = await cli('abort', 'promotion', p1.metadata.name);
    expect(ab.exitCode).toBe(0);
    const a1 = await waitPromotion(env.admin, project, p1.metadata.name, phaseIs('Aborted'));
    expect(a1.status.message).toBe('aborted on request');
    await waitGone(env.agentNs, pod1.metadata.name);
    await waitPromotion(env.admin, project, p3.metadata.name, phaseIs('Running'));
    expect(await podsOf(env.admin, env.agentNs, p2.metadata.uid)).toEqual([]);

    const get = await cli('get', 'promotions', '--stage', stage);
    expect(get.exitCode).toBe(0);
    const rows = get.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+STAGE\s+PHASE\s+STEP\s+AGE$/);
    expect(rows.slice(1).map((r) => r.split(/\s+/).slice(0, 4))).toEqual([
      [p1.metadata.name, stage, 'Aborted', '1/1'],
      [p2.metadata.name, stage, 'Aborted', '<none>'],
      [p3.metadata.name, stage, 'Running', '1/1'],
    ]);
    const stg = await cli('get', 'stages', stage, '-o', 'wide');
    expect(stg.stdout.split('\n')[0]).toMatch(
      /^NAME\s+STEPS\s+SERVICE ACCOUNT\s+CURRENT\s+LAST\s+VALID\s+MESSAGE\s+AGE$/,
    );
    expect(stg.stdout.split('\n')[1]).toContain(
      `${stage}   1       lanyard-promotion-orchestrator   ${p3.metadata.name}   ${p1.metadata.name}/Aborted   True`,
    );
    const missing = await cli('get', 'stages', stage, 'nope');
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr).toBe(`error: stage "nope" not found in project "${project}"\n`);
  });
});

describe('Stage deleted, CLI details', () => {
  it('aborts the running Promotion of a deleted Stage and deletes its pod', async () => {
    const stage = stageName();
    await createStage(env.admin, project, stage, steps('a'));
    const created = await cli('promote', '--stage', stage);
    expect(created.exitCode).toBe(0);
    expect(created.stdout).toMatch(new RegExp(`^promotion/${stage}-[a-z0-9]{5} created\n$`));
    const name = created.stdout.trim().split(' ')[0]!.slice('promotion/'.length);
    const p = await waitPromotion(env.admin, project, name, phaseIs('Running'));
    const pod = await waitPod(p);
    const wide = await cli('get', 'promotion', name, '-o', 'wide');
    expect(wide.stdout.split('\n')[0]).toMatch(
      /^NAME\s+STAGE\s+PHASE\s+STEP\s+SERVICE ACCOUNT\s+POD\s+MESSAGE\s+AGE$/,
    );
    expect(wide.stdout.split('\n')[1]).toMatch(
      new RegExp(
        `^${name}\\s+${stage}\\s+Running\\s+1/1\\s+lanyard-promotion-orchestrator\\s+${pod.metadata.name}\\s+`,
      ),
    );
    await env.admin.delete(`${G}/namespaces/${project}/stages/${stage}`);
    const done = await waitPromotion(env.admin, project, name, phaseIs('Aborted'));
    expect(done.status.message).toBe(`stage "${stage}" was deleted`);
    await waitGone(env.agentNs, pod.metadata.name);
    const nf = await cli('abort', 'promotion', 'no-such-promotion');
    expect(nf).toMatchObject({
      exitCode: 3,
      stderr: `error: promotion "no-such-promotion" not found in project "${project}"\n`,
    });
  });
});

describe('doctor and the token-manager binding', () => {
  it('errors without the binding (and warns on the Promotion), passes with it', async () => {
    await createStep(env.admin, env.agentNs, 'argocd-update', {
      image: 'example.com/argocd:1',
      command: ['sync'],
      capabilities: ['mint-tokens'],
    });
    const stage = stageName();
    await createStage(env.admin, project, stage, {
      promotionTemplate: { spec: { steps: [{ as: 'sync', uses: 'argocd-update' }] } },
    });
    const p = await promote(env.admin, project, stage);
    const pod = await waitPod(p);
    expect(pod.spec.initContainers[0].volumeMounts.map((m: Json) => m.mountPath)).toContain(
      '/var/run/secrets/kubernetes.io/serviceaccount',
    );
    await expect
      .poll(
        async () => {
          const list = await env.admin.get(`/apis/events.k8s.io/v1/namespaces/${project}/events`);
          return list.items.some(
            (e: Json) => e.regarding?.uid === p.metadata.uid && e.reason === 'TokenManagerBindingMissing',
          );
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    // Kargo's CustomPromotionStep is checked like a PromotionStep (docs/adr/0605).
    await env.admin.create(`/apis/lanyard.dev/v1alpha1/namespaces/${env.agentNs}/custompromotionsteps`, {
      apiVersion: 'lanyard.dev/v1alpha1',
      kind: 'CustomPromotionStep',
      metadata: { name: 'kargo-sync' },
      spec: { image: 'example.com/argocd:1', command: ['sync'], capabilities: ['mint-tokens'] },
    });
    const kargoStage = stageName();
    await createStage(env.admin, project, kargoStage, {
      promotionTemplate: { spec: { steps: [{ as: 'sync', uses: 'kargo-sync' }] } },
    });
    const bad = await cli('doctor');
    expect(bad.exitCode, bad.stdout).toBe(7);
    expect(bad.stdout).toContain(
      `ERROR  stage ${project}/${kargoStage}  step "sync" (uses "kargo-sync") needs mint-tokens, but serviceaccount "lanyard-promotion-orchestrator" in namespace "${env.agentNs}" is not bound to role "lanyard-promotion-token-manager"\n`,
    );
    expect(bad.stdout).toContain(
      `ERROR  stage ${project}/${stage}  step "sync" (uses "argocd-update") needs mint-tokens, but serviceaccount "lanyard-promotion-orchestrator" in namespace "${env.agentNs}" is not bound to role "lanyard-promotion-token-manager"\n` +
        `       fix: kubectl create rolebinding lanyard-promotion-token-manager-lanyard-promotion-orchestrator -n ${env.agentNs} --role lanyard-promotion-token-manager --serviceaccount ${env.agentNs}:lanyard-promotion-orchestrator\n`,
    );
    await env.admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${env.agentNs}/rolebindings`, {
      metadata: { name: 'lanyard-promotion-token-manager-orchestrator' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'lanyard-promotion-token-manager',
      },
      subjects: [{ kind: 'ServiceAccount', name: 'lanyard-promotion-orchestrator', namespace: env.agentNs }],
    });
    // The projects capability's doctor check wants the built-in roles of a real project: adopt the test namespace.
    expect((await runCli(['create', 'project', project, '--adopt'], { env: cliEnv })).exitCode).toBe(0);
    const good = await cli('doctor');
    expect(good.stdout).toMatch(/^0 errors, \d+ warnings?\n$/m);
    expect(good.stdout).not.toMatch(/^ERROR/m);
    expect(good.exitCode).toBe(0);
  });
});

describe('doctor and per-step roles on a shared account', () => {
  it("warns when a step role runs as an account other projects may use, and not once the account is the project's own", async () => {
    const role = 'arn:aws:iam::111122223333:role/shop-publish';
    await createStep(env.admin, project, 'publish-as-role', {
      image: 'example.com/publish:1',
      command: ['publish'],
      identity: { roleARN: role },
    });
    const stage = stageName();
    await createStage(env.admin, project, stage, {
      promotionTemplate: { spec: { steps: [{ as: 'publish', uses: 'publish-as-role' }] } },
    });
    const warning =
      `WARN   stage ${project}/${stage}  step "publish" (uses "publish-as-role") holds role "${role}" as serviceaccount ` +
      '"lanyard-promotion-orchestrator", which is open to every project: steps of those projects can assume the role with their own step token\n' +
      `       fix: give project ${project} its own promotion account (lanyard.dev/allowed-projects=${project}) and let the role trust only it\n`;
    expect((await cli('doctor')).stdout).toContain(warning);

    const own = `own-${stage}`;
    await env.admin.create(`/api/v1/namespaces/${env.agentNs}/serviceaccounts`, {
      metadata: { name: own, annotations: { 'lanyard.dev/allowed-projects': project } },
    });
    await env.admin.patch(
      `${G}/namespaces/${project}/stages/${stage}`,
      { metadata: { annotations: { 'lanyard.dev/promotion-sa': own } } },
      'application/merge-patch+json',
    );
    expect((await cli('doctor')).stdout).not.toContain(`stage ${project}/${stage}  step "publish"`);
  });
});

describe('controller restart during a run', () => {
  it('creates no second pod and carries on from the pod status', async () => {
    const stage = stageName();
    await createStage(env.admin, project, stage, steps('a', 'b'));
    const p = await promote(env.admin, project, stage);
    const pod = await waitPod(p);
    await waitPromotion(env.admin, project, p.metadata.name, phaseIs('Running'));
    await env.stopController();
    await kubelet(env.admin, env.agentNs, pod.metadata.name, {
      phase: 'Pending',
      init: { 'step-1': exited(0, 'k=v'), 'step-2': running() },
    });
    await env.startController();
    const mid = await waitPromotion(
      env.admin,
      project,
      p.metadata.name,
      (x) => x.status?.steps?.[1]?.phase === 'Running',
    );
    expect(mid.status.steps[0]).toMatchObject({ phase: 'Succeeded', output: { k: 'v' } });
    await kubelet(env.admin, env.agentNs, pod.metadata.name, {
      phase: 'Succeeded',
      init: { 'step-1': exited(0, 'k=v'), 'step-2': exited(0) },
      done: exited(0),
    });
    await waitPromotion(env.admin, project, p.metadata.name, phaseIs('Succeeded'));
    const all = (
      await env.admin.get(`/api/v1/namespaces/${env.agentNs}/pods`, {
        labelSelector: `lanyard.dev/promotion-uid=${p.metadata.uid}`,
      })
    ).items;
    expect(all.length).toBeLessThanOrEqual(1);
    expect(all.every((x: Json) => x.metadata.uid === pod.metadata.uid)).toBe(true);
  });
});
