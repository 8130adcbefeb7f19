// Crash safety (docs/associations.md#what-the-controller-does): a controller crash between Create and the status write leaves no second association;
// the restarted controller records the same id, because Create's clientRequestToken is the object's uid.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { KubeClient } from '../../../src/kube/client.ts';
import { adminClient, eventually, newNamespace } from '../../harness/context.ts';
import type { Association } from '../../../src/aws/index.ts';
import {
  CLUSTER,
  createAssociation,
  hasCond,
  lpiaPath,
  startController,
  startEnv,
  testConfig,
  waitFor,
  type Env,
} from './helpers.ts';

let kube: KubeClient;
let env: Env;
let ns: string;

beforeAll(async () => {
  kube = await adminClient();
  env = await startEnv(11);
  ns = await newNamespace(kube, 'a2');
});
afterAll(async () => {
  await kube.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  await env?.close();
  kube?.close();
});

it('crash between Create and the status write, then restart: one association, the same id', async () => {
  const role = await env.createRole('a2-app');
  let crashedWith: Association | undefined;
  let stopped: Promise<void> | undefined;
  const first = await startController(kube, env, testConfig(), {
    hooks: {
      afterCreate: async (_key, created) => {
        crashedWith = created;
        // The process dies here: nothing after Create runs, and the controller is gone.
        stopped = new Promise((r) => setImmediate(() => void first.stop().then(r)));
        throw new Error('simulated crash between Create and the status write');
      },
    },
  });
  const obj = await createAssociation(kube, ns, 'app', { serviceAccount: 'app', roleARN: role });
  // The crash came after EKS created the association for this object's pair and role.
  await eventually(async () =>
    expect(crashedWith).toMatchObject({
      clusterName: CLUSTER,
      namespace: ns,
      serviceAccount: 'app',
      roleArn: role,
      associationId: expect.any(String),
    }),
  );
  await stopped;
  const afterCrash = await kube.get(lpiaPath(ns, 'app'));
  expect(afterCrash.status?.associationID).toBeUndefined();

  const second = await startController(kube, env, testConfig());
  try {
    const synced = await waitFor(
      kube,
      ns,
      'app',
      hasCond('Synced', 'True', 'InSync'),
      20_000,
      'Synced=True after restart',
    );
    expect(synced.status.associationID).toBe(crashedWith!.associationId);
    expect(await env.aws.eks.list(CLUSTER, { namespace: ns, serviceAccount: 'app' })).toHaveLength(1);
    const creates = env.sim.control
      .log({ service: 'eks', operation: 'CreatePodIdentityAssociation' })
      .filter((e) => e.input.namespace === ns);
    // The dying controller may have retried once before it stopped; every attempt used the same token.
    expect(creates.length).toBeGreaterThanOrEqual(2);
    expect(creates.every((e) => e.input.clientRequestToken === obj.metadata.uid && e.status === 200)).toBe(
      true,
    );
  } finally {
    await second.stop();
  }
});
