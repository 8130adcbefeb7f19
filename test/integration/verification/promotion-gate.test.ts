// A promotion whose pod waits at the identity gate carries the verifier's reason in status.message (docs/promotions.md,
// docs/verified-start.md): the AWS error reaches the project's users, who cannot read the agent namespace's Events.
// Real webhook (gate on), verifier and promotion controller, the simulator's STS and IAM.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupPromotions,
  createStage,
  createStep,
  promote,
  waitPromotion,
} from '../../fixtures/promotion-env.ts';
import { serviceAccount, startVerificationEnv, wiTrust, type VerificationEnv } from './env.ts';

let env: VerificationEnv;
let project: string;
let agentNs: string;

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 923, controller: false });
  env.sim.control.configure({ visibility: {} });
  project = await env.namespace('pg-shop', { 'lanyard.dev/project': 'true' });
  agentNs = await env.namespace('pg-agent', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  await serviceAccount(env.admin, agentNs, 'lanyard-promotion-orchestrator');
  // The Stage's account has a role whose trust policy names another ServiceAccount: STS answers AccessDenied.
  const role = await env.aws.iam.createRole({
    roleName: 'promo-deployer',
    assumeRolePolicyDocument: wiTrust(env, `system:serviceaccount:${agentNs}:someone-else`),
  });
  await serviceAccount(env.admin, agentNs, 'deployer', {
    'eks.amazonaws.com/role-arn': role.arn,
    'lanyard.dev/allowed-projects': project,
  });
  await createStep(env.admin, project, 'noop', { image: 'registry.k8s.io/pause:3.10', command: ['/pause'] });
  await createStage(
    env.admin,
    project,
    'prod',
    { promotionTemplate: { spec: { steps: [{ uses: 'noop' }] } } },
    { 'lanyard.dev/promotion-sa': 'deployer' },
  );
  await env.startController([
    `--promotion-namespace=${agentNs}`,
    '--promotion-done-image=ghcr.io/lanyard-dev/lanyard:test',
  ]);
});
afterAll(async () => {
  if (project) await cleanupPromotions(env.admin, [project]).catch(() => undefined);
  await env?.stop();
});

describe('promotion held at the identity gate', () => {
  it('shows the AWS error in status.message, then that the deadline passed, then moves on once the trust policy is fixed', async () => {
    const created = await promote(env.admin, project, 'prod');
    const name = created.metadata.name;
    const verifying = await waitPromotion(
      env.admin,
      project,
      name,
      (p) => /AccessDenied/.test(p.status?.message ?? ''),
      30_000,
    );
    expect(verifying.status.phase).toBe('Running');
    expect(verifying.status.message).toMatch(
      new RegExp(
        '^waiting: pod held by scheduling gate lanyard\\.dev/identity \\((identity not verified yet|identity not verified within the deadline; retrying)\\): ' +
          `WebIdentity exchange for role arn:aws:iam::\\d{12}:role/promo-deployer failed: AccessDenied: `,
      ),
    );

    // --verify-deadline=10s in this environment: the message says the Pod is past it.
    const failed = await waitPromotion(
      env.admin,
      project,
      name,
      (p) => /within the deadline; retrying\): .*AccessDenied/.test(p.status?.message ?? ''),
      30_000,
    );
    expect(failed.status.phase).toBe('Running');

    await env.aws.iam.updateAssumeRolePolicy(
      'promo-deployer',
      wiTrust(env, `system:serviceaccount:${agentNs}:deployer`),
    );
    const released = await waitPromotion(
      env.admin,
      project,
      name,
      (p) => !/^waiting: pod held by scheduling gate/.test(p.status?.message ?? ''),
      90_000,
    );
    expect(released.status.message).toBe('step "step-1" (1 of 1) pending');
  }, 180_000);
});
