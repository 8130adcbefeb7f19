// A Pod admitted from the verified set skips the gate and carries no annotation: the identity reconciler remembers in
// memory that a fresh VerifiedIdentity vouched for it (docs/adr/0900, "Proof is not written back to Pods"). This test
// restarts the controller after the VerifiedIdentity expired, so the remembered proof is gone, and checks that no
// decision depends on it: the Pod stays `ok` (only the message changes) and gets no IdentityUnverified Event.
// --verified-ttl=20s: long enough for the second Pod to be admitted from the entry (admission wants 5 s left), short
// enough to expire within the test.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { runCli } from '../../../src/cli/run.ts';
import { controlPlane, eventually } from '../../harness/context.ts';
import {
  GATE,
  createPod,
  gates,
  getPod,
  podBody,
  podEvents,
  serviceAccount,
  startVerificationEnv,
  wiTrust,
  type VerificationEnv,
} from '../verification/env.ts';

let env: VerificationEnv;

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 901, controllerFlags: ['--verified-ttl=20s'] });
  env.sim.control.configure({ visibility: {} });
});
afterAll(async () => {
  await env?.stop();
});

/** The controller's own decisions about a Pod (its "Pod identity state" log lines), from line `from` on. */
function decisions(ns: string, pod: string, from = 0): Json[] {
  return env.logs.lines
    .slice(from)
    .map((l) => JSON.parse(l) as Json)
    .filter((l) => l.msg === 'Pod identity state' && l.namespace === ns && l.pod === pod);
}

async function rowOf(ns: string, pod: string): Promise<Json | undefined> {
  const r = await runCli([
    'get',
    'identities',
    '-n',
    ns,
    '-o',
    'json',
    '--kubeconfig',
    controlPlane().adminKubeconfig,
  ]);
  if (r.exitCode !== 0) throw new Error(`get identities: ${r.stderr}`);
  const items: Json[] = r.stdout.trim() ? (JSON.parse(r.stdout).items ?? [JSON.parse(r.stdout)]) : [];
  return items.find((i) => i.pod === pod);
}

describe('a gate-skipped Pod across a controller restart (docs/adr/0900)', () => {
  it('stays ok once its VerifiedIdentity expired and the controller restarted: the lost in-memory proof decides nothing', async () => {
    const ns = await env.namespace('restart-proof');
    const role = await env.aws.iam.createRole({
      roleName: `app-${ns}`.slice(0, 64),
      assumeRolePolicyDocument: wiTrust(env, `system:serviceaccount:${ns}:app`),
    });
    await serviceAccount(env.admin, ns, 'app', { 'eks.amazonaws.com/role-arn': role.arn });
    await createPod(env.admin, ns, podBody('first', 'app'));
    await eventually(
      async () => {
        if (gates(await getPod(env.admin, ns, 'first')).includes(GATE)) throw new Error('still gated');
      },
      30_000,
      200,
    );
    // Admitted from the fresh entry: no gate, no annotation.
    const skipped = await createPod(env.admin, ns, podBody('skipped', 'app'));
    expect(gates(skipped)).not.toContain(GATE);
    expect(skipped.metadata.annotations?.['lanyard.dev/identity-verification']).toBeUndefined();
    const vouched = await eventually(async () => {
      const row = await rowOf(ns, 'skipped');
      expect(row).toMatchObject({ state: 'ok', message: 'proven by a current VerifiedIdentity' });
      return row!;
    });
    expect(vouched.role).toBe(role.arn);
    // The controller decided the same, and remembers (in memory only) that the entry vouched for this Pod.
    await eventually(async () => expect(decisions(ns, 'skipped').map((d) => d.state)).toEqual(['ok']));

    // The entry expires (20 s after the first Pod's exchange), then the controller restarts: its memory is empty.
    const vi = (await env.admin.get(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/verifiedidentities`))
      .items[0] as Json;
    const wait = Date.parse(vi.spec.expiresAt) - Date.now() + 1_000;
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    await env.stopController();
    const from = env.logs.lines.length;
    await env.startController();

    // The new process decides the Pod again, without the proof: still ok (decide.ts: a Pod older than the process with
    // no failure on record), so no Event, metric or doctor line changes.
    await eventually(
      async () => expect(decisions(ns, 'skipped', from).map((d) => d.state)).toEqual(['ok']),
      30_000,
      200,
    );
    expect((await rowOf(ns, 'skipped'))?.message).toBe(
      'admitted before this controller started; no verification failure on record',
    );
    const events = await podEvents(env.admin, ns, 'skipped');
    expect(events.filter((e) => e.reason === 'IdentityUnverified')).toEqual([]);
  });
});
