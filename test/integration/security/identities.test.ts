// Every AWS identity a Pod can use is checked at admission and proven before release (issue 9, defects 2 and 4),
// attacked as a namespace user with exactly the threat model's rights, on the real API server and the simulator.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { eventually } from '../../harness/context.ts';
import { serviceAccount } from '../verification/env.ts';
import {
  CC_DIR,
  GATE,
  WI_DIR,
  container,
  gates,
  getPod,
  pod,
  podEvents,
  refusal,
  startSecurityEnv,
  tokenVolume,
  wiEnv,
  type SecurityEnv,
} from './env.ts';

let s: SecurityEnv;
let ns: string;
beforeAll(async () => {
  s = await startSecurityEnv(91);
  ns = await s.namespace('sec-ids');
  await serviceAccount(s.admin, ns, 'uploader', { 'eks.amazonaws.com/role-arn': s.allowedRole });
  await serviceAccount(s.admin, ns, 'plain');
});
afterAll(async () => {
  await s?.stop();
});

const stsToken = tokenVolume('mine', 'sts.amazonaws.com');
const mountMine = (mountPath = WI_DIR) => ({ name: 'mine', mountPath, readOnly: true });
const mountInjected = { name: 'aws-iam-token', mountPath: WI_DIR, readOnly: true };

/** Successful STS exchanges for a role, as the simulator logged them. */
const exchanges = (role: string) =>
  s.env.sim.control
    .log({ service: 'sts', operation: 'AssumeRoleWithWebIdentity' })
    .filter((e) => e.input.roleArn === role && e.status === 200);

/** Waits until the verifier reported a failed attempt for the Pod, then returns the Pod (still gated, or not). */
async function afterFailedAttempt(namespace: string, name: string, text: RegExp): Promise<Json> {
  await eventually(
    async () => {
      const ev = (await podEvents(s.admin, namespace, name)).filter(
        (e) => e.reason === 'IdentityNotVerified',
      );
      if (!ev.some((e) => text.test(e.note ?? '')))
        throw new Error(`no IdentityNotVerified matching ${text} yet`);
    },
    20_000,
    100,
  );
  return getPod(s.admin, namespace, name);
}

describe('admission: every identity of every container is checked against IdentityPolicy', () => {
  const denied = () => s.deniedRole;
  it.each<[string, () => Json, string]>([
    [
      'a container of an allowed ServiceAccount overriding AWS_ROLE_ARN, token mounted',
      () =>
        pod('override', 'uploader', {
          containers: [
            container('app'),
            container('second', { env: wiEnv(denied()), volumeMounts: [mountInjected] }),
          ],
        }),
      'container "second", field spec.containers[1].env[AWS_ROLE_ARN]',
    ],
    [
      'the same through a "." segment in the token path',
      () =>
        pod('dot', 'uploader', {
          containers: [
            container('app'),
            container('second', { env: wiEnv(denied(), `${WI_DIR}/./token`), volumeMounts: [mountInjected] }),
          ],
        }),
      'container "second", field spec.containers[1].env[AWS_ROLE_ARN]',
    ],
    [
      'a hand-made role and token (audience sts.amazonaws.com) on a Pod of an un-annotated ServiceAccount',
      () =>
        pod('handmade', 'plain', {
          volumes: [stsToken],
          containers: [container('app', { env: wiEnv(denied()), volumeMounts: [mountMine()] })],
        }),
      'container "app", field spec.containers[0].env[AWS_ROLE_ARN]',
    ],
    [
      'an init container',
      () =>
        pod('init', 'plain', {
          volumes: [stsToken],
          initContainers: [container('setup', { env: wiEnv(denied()), volumeMounts: [mountMine()] })],
        }),
      'container "setup", field spec.initContainers[0].env[AWS_ROLE_ARN]',
    ],
    [
      'a relative token path resolved against workingDir',
      () =>
        pod('relative', 'plain', {
          volumes: [stsToken],
          containers: [
            container('app', {
              workingDir: '/var/run/secrets',
              env: wiEnv(denied(), 'eks.amazonaws.com/serviceaccount/token'),
              volumeMounts: [mountMine()],
            }),
          ],
        }),
      'container "app", field spec.containers[0].env[AWS_ROLE_ARN]',
    ],
    [
      "a double slash and the atomic writer's ..data directory",
      () =>
        pod('slashes', 'plain', {
          volumes: [stsToken],
          containers: [
            container('app', {
              env: wiEnv(denied(), `/var/run//secrets/eks.amazonaws.com/serviceaccount/..data/token`),
              volumeMounts: [mountMine()],
            }),
          ],
        }),
      'container "app", field spec.containers[0].env[AWS_ROLE_ARN]',
    ],
    [
      'the token mounted at an unusual place',
      () =>
        pod('elsewhere', 'plain', {
          volumes: [stsToken],
          containers: [
            container('app', {
              env: wiEnv(denied(), '/opt/app/t/token'),
              volumeMounts: [mountMine('/opt/app/t')],
            }),
          ],
        }),
      'container "app", field spec.containers[0].env[AWS_ROLE_ARN]',
    ],
    [
      'AWS_ROLE_ARN without a token file, in a container holding the token',
      () =>
        pod('no-file', 'plain', {
          volumes: [stsToken],
          containers: [
            container('app', {
              env: [{ name: 'AWS_ROLE_ARN', value: denied() }],
              volumeMounts: [mountMine('/somewhere')],
            }),
          ],
        }),
      'container "app", field spec.containers[0].env[AWS_ROLE_ARN]',
    ],
    [
      'AWS_ROLE_ARN from a ConfigMap key (unreadable at admission)',
      () =>
        pod('from-cm', 'plain', {
          volumes: [stsToken],
          containers: [
            container('app', {
              env: [
                { name: 'AWS_ROLE_ARN', valueFrom: { configMapKeyRef: { name: 'aws', key: 'role' } } },
                { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: `${WI_DIR}/token` },
              ],
              volumeMounts: [mountMine()],
            }),
          ],
        }),
      'field spec.containers[0].env[AWS_ROLE_ARN]: AWS_ROLE_ARN is set with valueFrom',
    ],
    [
      'envFrom a ConfigMap in a container holding an STS token',
      () =>
        pod('env-from', 'plain', {
          volumes: [stsToken],
          containers: [
            container('app', { envFrom: [{ configMapRef: { name: 'aws' } }], volumeMounts: [mountMine()] }),
          ],
        }),
      'field spec.containers[0].envFrom[0] (configMapRef "aws"): AWS_ROLE_ARN may come from it',
    ],
    [
      'an STS token without any role (the role would come from a config file)',
      () =>
        pod('bare-token', 'plain', {
          volumes: [stsToken],
          containers: [container('app', { volumeMounts: [mountMine()] })],
        }),
      'names no AWS_ROLE_ARN',
    ],
  ])('%s is denied with 403 naming container and field', async (_what, body, where) => {
    const e = await refusal(s.attacker.create(`/api/v1/namespaces/${ns}/pods`, body()));
    expect(e.status).toBe(403);
    expect(e.serverMessage).toContain(where);
    if (!/unreadable|valueFrom|envFrom|no AWS_ROLE_ARN/.test(where)) {
      expect(e.serverMessage).toContain(`no IdentityPolicy allows namespace "${ns}" ServiceAccount`);
    }
  });

  it('a container naming another role gets no token from the webhook, so it cannot use it', async () => {
    const p = await s.attacker.create(
      `/api/v1/namespaces/${ns}/pods`,
      pod('no-mount', 'uploader', {
        containers: [container('app'), container('second', { env: wiEnv(s.deniedRole) })],
      }),
    );
    expect(p.spec.containers[0].volumeMounts?.map((m: Json) => m.name)).toContain('aws-iam-token');
    expect((p.spec.containers[1].volumeMounts ?? []).map((m: Json) => m.name)).not.toContain('aws-iam-token');
    expect(gates(p)).toContain(GATE);
  });
});

describe('the verifier releases a Pod only when every identity is proven', () => {
  it('a second container with another allowed role: gated, released only after that role was exchanged too', async () => {
    const p = await s.attacker.create(
      `/api/v1/namespaces/${ns}/pods`,
      pod('two-roles', 'uploader', {
        containers: [
          container('app'),
          container('second', {
            env: wiEnv(s.otherAllowedRole, `${WI_DIR}/./token`),
            volumeMounts: [mountInjected],
          }),
        ],
      }),
    );
    expect(gates(p)).toContain(GATE);
    const released = await eventually(
      async () => {
        const cur = await getPod(s.admin, ns, 'two-roles');
        if (gates(cur).includes(GATE)) throw new Error('still gated');
        return Date.now();
      },
      30_000,
      50,
    );
    for (const role of [s.allowedRole, s.otherAllowedRole]) {
      const ok = exchanges(role);
      expect(ok.length, `exchanges for ${role}`).toBeGreaterThanOrEqual(1);
      expect(Date.parse(ok[0]!.time)).toBeLessThanOrEqual(released);
    }
    // The second role was proven with a token bound to this very Pod.
    expect(exchanges(s.otherAllowedRole).map((e) => e.input.sessionName)).toContain(
      `lanyard-verify-${p.metadata.uid}`,
    );
  });

  it('a hand-made allowed role on an un-annotated ServiceAccount is gated and proven before release', async () => {
    const p = await s.attacker.create(
      `/api/v1/namespaces/${ns}/pods`,
      pod('handmade-ok', 'plain', {
        volumes: [stsToken],
        containers: [container('app', { env: wiEnv(s.otherAllowedRole), volumeMounts: [mountMine()] })],
      }),
    );
    expect(gates(p)).toContain(GATE);
    const released = await eventually(
      async () => {
        if (gates(await getPod(s.admin, ns, 'handmade-ok')).includes(GATE)) throw new Error('still gated');
        return Date.now();
      },
      30_000,
      50,
    );
    const own = exchanges(s.otherAllowedRole).filter(
      (e) => e.input.sessionName === `lanyard-verify-${p.metadata.uid}`,
    );
    expect(own.length).toBeGreaterThanOrEqual(1);
    expect(Date.parse(own[0]!.time)).toBeLessThanOrEqual(released);
  });

  it.each<[string, (n: string) => Json]>([
    [
      'a hand-made Pod Identity token',
      (n) =>
        pod(n, 'plain', {
          volumes: [tokenVolume('pi', 'pods.eks.amazonaws.com', 'eks-pod-identity-token')],
          containers: [container('app', { volumeMounts: [{ name: 'pi', mountPath: CC_DIR }] })],
        }),
    ],
    [
      'hand-made container-credentials variables and token',
      (n) =>
        pod(n, 'plain', {
          volumes: [tokenVolume('pi', 'pods.eks.amazonaws.com', 'eks-pod-identity-token')],
          containers: [
            container('app', {
              env: [
                { name: 'AWS_CONTAINER_CREDENTIALS_FULL_URI', value: 'http://169.254.170.23/v1/credentials' },
                { name: 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', value: `${CC_DIR}/eks-pod-identity-token` },
              ],
              volumeMounts: [{ name: 'pi', mountPath: CC_DIR }],
            }),
          ],
        }),
    ],
  ])(
    '%s on a ServiceAccount without an association stays gated: eks-auth has nothing to give',
    async (_what, body) => {
      const name = `pi-${Math.random().toString(36).slice(2, 8)}`;
      const p = await s.attacker.create(`/api/v1/namespaces/${ns}/pods`, body(name));
      expect(gates(p)).toContain(GATE);
      const after = await afterFailedAttempt(ns, name, /ContainerCredentials exchange .* failed/);
      expect(gates(after)).toContain(GATE);
    },
  );

  it('a gated Pod that never met the webhook, with a second container naming a denied role, stays gated', async () => {
    // Created by an admin in a namespace the webhook does not serve, gate included: only the verifier stands between it and a node.
    const un = await s.unservedNamespace('sec-verifier');
    await serviceAccount(s.admin, un, 'uploader');
    const body = pod('pre-gated', 'uploader', {
      volumes: [tokenVolume('aws-iam-token', 'sts.amazonaws.com')],
      containers: [
        container('app', { env: wiEnv(s.allowedRole), volumeMounts: [mountInjected] }),
        container('second', { env: wiEnv(s.deniedRole, `${WI_DIR}/./token`), volumeMounts: [mountInjected] }),
      ],
    });
    body.spec.schedulingGates = [{ name: GATE }];
    await s.admin.create(`/api/v1/namespaces/${un}/pods`, body);
    const after = await afterFailedAttempt(
      un,
      'pre-gated',
      new RegExp(`PolicyDenied: .*${s.deniedRole.replace(/[/.]/g, '\\$&')}`),
    );
    expect(gates(after)).toContain(GATE);
    expect(exchanges(s.deniedRole)).toEqual([]);
  });

  it('a gated Pod with an identity the verifier cannot read stays gated, whatever else it proves', async () => {
    const un = await s.unservedNamespace('sec-unreadable');
    await serviceAccount(s.admin, un, 'uploader');
    const body = pod('unreadable', 'uploader', {
      volumes: [tokenVolume('aws-iam-token', 'sts.amazonaws.com')],
      containers: [
        container('app', { env: wiEnv(s.allowedRole), volumeMounts: [mountInjected] }),
        container('second', { envFrom: [{ configMapRef: { name: 'aws' } }], volumeMounts: [mountInjected] }),
      ],
    });
    body.spec.schedulingGates = [{ name: GATE }];
    await s.admin.create(`/api/v1/namespaces/${un}/pods`, body);
    const after = await afterFailedAttempt(
      un,
      'unreadable',
      /cannot read the Pod's identity: container "second"/,
    );
    expect(gates(after)).toContain(GATE);
  });
});

describe('ephemeral containers (pods/ephemeralcontainers) are checked too', () => {
  let running: string;
  beforeAll(async () => {
    running = 'running';
    await s.attacker.create(`/api/v1/namespaces/${ns}/pods`, pod(running, 'uploader'));
    await eventually(
      async () => {
        if (gates(await getPod(s.admin, ns, running)).includes(GATE)) throw new Error('still gated');
      },
      30_000,
      50,
    );
  });
  const debug = (name: string, extra: Json) =>
    s.attacker.patch(`/api/v1/namespaces/${ns}/pods/${running}/ephemeralcontainers`, [
      {
        op: 'add',
        path: '/spec/ephemeralContainers',
        value: [{ name, image: 'busybox', targetContainerName: 'app', ...extra }],
      },
    ]);

  it("one naming a denied role and mounting the Pod's token is denied", async () => {
    const e = await refusal(
      debug('debug-denied', { env: wiEnv(s.deniedRole), volumeMounts: [mountInjected] }),
    );
    expect(e.status).toBe(403);
    expect(e.serverMessage).toContain(
      'container "debug-denied", field spec.ephemeralContainers[0].env[AWS_ROLE_ARN]',
    );
  });
  it('one naming an allowed but unproven role on a started Pod is denied', async () => {
    const e = await refusal(
      debug('debug-other', { env: wiEnv(s.otherAllowedRole), volumeMounts: [mountInjected] }),
    );
    expect(e.status).toBe(403);
    expect(e.serverMessage).toContain('has started');
  });
  it('one without AWS access is admitted (kubectl debug keeps working)', async () => {
    const p = await debug('debug-plain', {});
    expect(p.spec.ephemeralContainers.map((c: Json) => c.name)).toEqual(['debug-plain']);
  });
});
