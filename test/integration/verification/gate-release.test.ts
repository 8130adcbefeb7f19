// The gate (docs/verified-start.md#how-it-works): release only after a successful exchange past visibleAt, only our
// gate is removed, and the verified set lets a second Pod of a proven identity in ungated.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../../harness/context.ts';
import {
  GATE,
  SECRET_PATTERNS,
  association,
  ccTrust,
  createPod,
  gates,
  getPod,
  podBody,
  podEvents,
  serviceAccount,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from './env.ts';

let env: VerificationEnv;
beforeAll(async () => {
  env = await startVerificationEnv({ seed: 9 });
});
afterAll(async () => {
  await env?.stop();
});

/** Polls until the gate is gone and returns when that was first seen. */
async function releasedAt(ns: string, name: string, timeoutMs = 20_000): Promise<number> {
  return eventually(
    async () => {
      const p = await getPod(env.admin, ns, name);
      if (gates(p).includes(GATE)) throw new Error(`${name} still gated`);
      return Date.now();
    },
    timeoutMs,
    25,
  );
}

describe('gate at admission, release after a real exchange', () => {
  it('ContainerCredentials: association and Pod together, eksAuth visibility 3 s', async () => {
    env.sim.control.configure({ visibility: { eksAuth: [3000, 3000] } });
    const ns = await env.namespace('a9cc');
    await env.aws.iam.createRole({ roleName: 'a9-cc', assumeRolePolicyDocument: ccTrust() });
    await serviceAccount(env.admin, ns, 'uploader');
    await association(env.admin, ns, 'uploader', 'uploader', `arn:aws:iam::${env.account}:role/a9-cc`);
    await eventually(async () => {
      if (!env.lookup.forPair(ns, 'uploader')) throw new Error('not cached');
    });
    const pod = await createPod(env.admin, ns, podBody('app', 'uploader'));
    expect(gates(pod)).toContain(GATE);
    expect(JSON.stringify(pod.spec.containers[0].env)).toContain('AWS_CONTAINER_CREDENTIALS_FULL_URI');
    const released = await releasedAt(ns, 'app');
    const obj = await env.admin.get(
      `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations/uploader`,
    );
    const id = obj.status.associationID;
    const visibleAt = Date.parse(env.sim.control.association(id)!.visibleAt.eksAuth!);
    const exchanges = env.sim.control
      .log({ service: 'eks-auth' })
      .filter((e) => e.input.namespace === ns || JSON.stringify(e).includes(ns));
    const ok = exchanges.filter((e) => e.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    // No success before visibleAt, and the first success precedes the release.
    for (const e of exchanges) if (Date.parse(e.time) < visibleAt) expect(e.status).not.toBe(200);
    expect(Date.parse(ok[0]!.time)).toBeGreaterThanOrEqual(visibleAt);
    expect(released).toBeGreaterThanOrEqual(visibleAt);
    expect(released - visibleAt).toBeLessThan(1000);
    const after = await getPod(env.admin, ns, 'app');
    expect(after.metadata.annotations['lanyard.dev/identity-verification']).toBe('verified');
    await eventually(async () => {
      const ev = await podEvents(env.admin, ns, 'app');
      expect(ev.map((e) => e.reason)).toContain('IdentityVerified');
      expect(ev.map((e) => e.reason)).toContain('IdentityNotVerified');
    });
  });

  it('WebIdentity: SA annotation with a role that IAM shows after 3 s', async () => {
    env.sim.control.configure({ visibility: { 'iam.role': [3000, 3000] } });
    const ns = await env.namespace('a9wi');
    const role = await env.aws.iam.createRole({
      roleName: 'a9-wi',
      path: '/team-a/',
      assumeRolePolicyDocument: wiTrust(env),
    });
    await serviceAccount(env.admin, ns, 'reader', { 'eks.amazonaws.com/role-arn': role.arn });
    const visibleAt = Date.parse(env.sim.control.roleVisibleAt('a9-wi')!);
    const pod = await createPod(env.admin, ns, podBody('app', 'reader'));
    expect(gates(pod)).toContain(GATE);
    const released = await releasedAt(ns, 'app');
    const sts = env.sim.control
      .log({ service: 'sts', operation: 'AssumeRoleWithWebIdentity' })
      .filter((e) => e.input.roleArn === role.arn);
    const ok = sts.filter((e) => e.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    for (const e of sts) if (Date.parse(e.time) < visibleAt) expect(e.status).not.toBe(200);
    expect(released).toBeGreaterThanOrEqual(visibleAt);
    expect(released - visibleAt).toBeLessThan(1000);
    expect(env.sim.control.log().every((e) => !JSON.stringify(e).includes('eyJ'))).toBe(true);
  });
});

describe('release removes only the lanyard.dev/identity gate', () => {
  it('keeps example.com/other', async () => {
    env.sim.control.configure({ visibility: {} });
    const ns = await env.namespace('a11');
    const role = await env.aws.iam.createRole({ roleName: 'a11', assumeRolePolicyDocument: wiTrust(env) });
    await serviceAccount(env.admin, ns, 'sa', { 'eks.amazonaws.com/role-arn': role.arn });
    const pod = await createPod(env.admin, ns, podBody('app', 'sa', { gates: ['example.com/other'] }));
    expect(gates(pod)).toEqual(['example.com/other', GATE]);
    await releasedAt(ns, 'app');
    expect(gates(await getPod(env.admin, ns, 'app'))).toEqual(['example.com/other']);
  });
});

describe('the verified set skips the gate', () => {
  it('a second Pod of a verified identity is admitted ungated with no API calls from the webhook', async () => {
    env.sim.control.configure({ visibility: {} });
    const ns = await env.namespace('a12');
    const role = await env.aws.iam.createRole({ roleName: 'a12', assumeRolePolicyDocument: wiTrust(env) });
    await serviceAccount(env.admin, ns, 'sa', { 'eks.amazonaws.com/role-arn': role.arn });
    await createPod(env.admin, ns, podBody('first', 'sa'));
    await releasedAt(ns, 'first');
    const vis = await env.admin.get(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/verifiedidentities`);
    expect(vis.items).toHaveLength(1);
    expect(vis.items[0].metadata.name).toMatch(/^wi-[0-9a-f]{20}$/);
    expect(vis.items[0].spec).toMatchObject({
      serviceAccount: 'sa',
      mode: 'WebIdentity',
      roleARN: role.arn,
      audience: 'sts.amazonaws.com',
      verifiedWith: 'Pod/first',
    });
    expect(vis.items[0].spec.assumedRoleARN).toMatch(/^arn:aws:sts::\d{12}:assumed-role\/a12\//);
    // The webhook's cache must have the entry before the next admission.
    const skipped = async () =>
      await env.metrics.getSingleMetricAsString('lanyard_webhook_gate_skipped_total');
    const stsBefore = env.sim.control.log({ service: 'sts' }).length;
    let requestsBefore = 0;
    await eventually(
      async () => {
        requestsBefore = env.webhookRequests();
        const p = await createPod(env.admin, ns, podBody(`second-${Date.now()}`, 'sa'));
        if (gates(p).includes(GATE)) {
          await env.admin.delete(`/api/v1/namespaces/${ns}/pods/${p.metadata.name}`);
          throw new Error('still gated: VerifiedIdentity not cached yet');
        }
      },
      10_000,
      200,
    );
    // The ungated admission was decided from caches: the webhook sent no API request for it.
    expect(env.webhookRequests()).toBe(requestsBefore);
    expect(await skipped()).toContain('reason="verified"');
    // No exchange was needed for the ungated Pod (the webhook reads caches only).
    expect(env.sim.control.log({ service: 'sts' }).length).toBe(stsBefore);
  });

  it('lanyard.dev/verify: "false" admits ungated', async () => {
    const ns = await env.namespace('a12opt');
    const role = await env.aws.iam.createRole({ roleName: 'a12opt', assumeRolePolicyDocument: wiTrust(env) });
    await serviceAccount(env.admin, ns, 'sa', { 'eks.amazonaws.com/role-arn': role.arn });
    const p = await createPod(
      env.admin,
      ns,
      podBody('app', 'sa', { annotations: { 'lanyard.dev/verify': 'false' } }),
    );
    expect(gates(p)).not.toContain(GATE);
    expect(JSON.stringify(p.spec.containers[0].env)).toContain('AWS_ROLE_ARN');
  });

  it('editing the SA audience annotation gates the next Pod, and the stale entry is deleted', async () => {
    const ns = await env.namespace('a12aud');
    const role = await env.aws.iam.createRole({ roleName: 'a12aud', assumeRolePolicyDocument: wiTrust(env) });
    await serviceAccount(env.admin, ns, 'sa', { 'eks.amazonaws.com/role-arn': role.arn });
    await createPod(env.admin, ns, podBody('first', 'sa'));
    await releasedAt(ns, 'first');
    await env.admin.patch(
      `/api/v1/namespaces/${ns}/serviceaccounts/sa`,
      { metadata: { annotations: { 'eks.amazonaws.com/audience': 'other.example.com' } } },
      'application/merge-patch+json',
    );
    await eventually(async () => {
      const vis = await env.admin.get(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/verifiedidentities`);
      expect(vis.items).toHaveLength(0);
    });
    await eventually(
      async () => {
        const p = await createPod(env.admin, ns, podBody(`next-${Date.now()}`, 'sa'));
        if (!gates(p).includes(GATE)) {
          await env.admin.delete(`/api/v1/namespaces/${ns}/pods/${p.metadata.name}`);
          throw new Error('not gated yet: webhook has not seen the SA change');
        }
      },
      10_000,
      200,
    );
  });

  it('no Lanyard log line carries a token or credential', () => {
    const leaks = env.logs.lines.filter((l) => SECRET_PATTERNS.some((re) => re.test(l)));
    expect(leaks).toEqual([]);
    expect(env.logs.lines.length).toBeGreaterThan(10);
  });
});
