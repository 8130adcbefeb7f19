// The identity gate as an authorization boundary (issue 9, defect 5): the ValidatingAdmissionPolicy, enforced by the
// real API server, lets only Lanyard's controller remove the gate and refuses AWS credentials on skip-labelled Pods,
// also where the mutating webhook never runs. Attacked as a namespace user with exactly the threat model's rights.
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json } from '../../../src/kube/client.ts';
import { helmBinary } from '../../../src/sandbox/binaries.ts';
import { PACKAGE_ROOT } from '../../../src/sandbox/paths.ts';
import { identityAdmissionPolicy } from '../../../src/verification/admission-policy.ts';
import { serviceAccount } from '../verification/env.ts';
import { eventually } from '../../harness/context.ts';
import {
  CC_DIR,
  GATE,
  container,
  gates,
  getPod,
  pod,
  refusal,
  startSecurityEnv,
  tokenVolume,
  wiEnv,
  type SecurityEnv,
} from './env.ts';

const SKIP = { 'eks.amazonaws.com/skip-pod-identity-webhook': 'true' };
const GATE_RULE = "only Lanyard's controller may remove the lanyard.dev/identity scheduling gate";
const SKIP_RULE = 'a Pod labelled eks.amazonaws.com/skip-pod-identity-webhook may not carry AWS credentials';

let s: SecurityEnv;
let served: string;
let unserved: string;
beforeAll(async () => {
  s = await startSecurityEnv(92);
  served = await s.namespace('sec-gate');
  unserved = await s.unservedNamespace('sec-nowebhook');
  for (const n of [served, unserved]) {
    await serviceAccount(s.admin, n, 'uploader', { 'eks.amazonaws.com/role-arn': s.allowedRole });
    await serviceAccount(s.admin, n, 'reporter');
  }
});
afterAll(async () => {
  await s?.stop();
});

const podsPath = (n: string) => `/api/v1/namespaces/${n}/pods`;

describe('only the controller removes the gate', () => {
  it.each<[string, (name: string) => [unknown, string | undefined]]>([
    ['a JSON patch that removes it', () => [[{ op: 'remove', path: '/spec/schedulingGates/0' }], undefined]],
    [
      'a merge patch that empties the list',
      () => [{ spec: { schedulingGates: null } }, 'application/merge-patch+json'],
    ],
    [
      'a strategic merge patch that deletes the entry',
      () => [
        { spec: { schedulingGates: [{ name: GATE, $patch: 'delete' }] } },
        'application/strategic-merge-patch+json',
      ],
    ],
  ])('%s is refused', async (_what, patch) => {
    const name = `gated-${Math.random().toString(36).slice(2, 8)}`;
    // Gated by the webhook: an identity whose role no exchange can prove yet (no association for container credentials).
    const created = await s.attacker.create(
      podsPath(served),
      pod(name, 'reporter', {
        volumes: [tokenVolume('pi', 'pods.eks.amazonaws.com', 't')],
        containers: [container('app', { volumeMounts: [{ name: 'pi', mountPath: CC_DIR }] })],
      }),
    );
    expect(gates(created)).toEqual([GATE]);
    const [body, type] = patch(name);
    const e = await refusal(s.attacker.patch(`${podsPath(served)}/${name}`, body, type));
    expect(e.status).toBe(403);
    expect(e.serverMessage).toContain(GATE_RULE);
    expect(gates(await getPod(s.admin, served, name))).toEqual([GATE]);
  });

  it('a PUT without the gate is refused too, where the webhook never ran', async () => {
    // The attacker may create a gated Pod by hand in a namespace no webhook serves; only the controller may lift it.
    const body = pod('own-gate', 'reporter', {
      volumes: [tokenVolume('pi', 'pods.eks.amazonaws.com', 't')],
      containers: [container('app', { volumeMounts: [{ name: 'pi', mountPath: CC_DIR }] })],
    });
    body.spec.schedulingGates = [{ name: GATE }];
    const created = await s.attacker.create(podsPath(unserved), body);
    // Without resourceVersion a Pod update is unconditional, so nothing but admission can refuse it.
    const { resourceVersion: _rv, ...metadata } = created.metadata;
    const e = await refusal(
      s.attacker.update(`${podsPath(unserved)}/own-gate`, {
        ...created,
        metadata,
        spec: { ...created.spec, schedulingGates: [] },
      }),
    );
    expect(e.status).toBe(403);
    expect(e.serverMessage).toContain(GATE_RULE);
  });

  it('the controller still releases a proven Pod (the policy lets its user through)', async () => {
    await s.attacker.create(podsPath(served), pod('proven', 'uploader'));
    await eventually(
      async () => {
        if (gates(await getPod(s.admin, served, 'proven')).includes(GATE)) throw new Error('still gated');
      },
      30_000,
      50,
    );
  });
});

describe('a skip-labelled Pod may not carry AWS credentials, with or without the webhook', () => {
  const ccByHand = (name: string) =>
    pod(name, 'reporter', {
      labels: SKIP,
      volumes: [tokenVolume('eks-pod-identity-token', 'pods.eks.amazonaws.com', 'eks-pod-identity-token')],
      containers: [
        container('app', {
          env: [
            { name: 'AWS_CONTAINER_CREDENTIALS_FULL_URI', value: 'http://169.254.170.23/v1/credentials' },
            { name: 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE', value: `${CC_DIR}/eks-pod-identity-token` },
          ],
          volumeMounts: [{ name: 'eks-pod-identity-token', mountPath: CC_DIR }],
        }),
      ],
    });
  const variants: [string, (name: string) => Json][] = [
    ['hand-written container-credentials variables and token', ccByHand],
    [
      'AWS_ROLE_ARN alone',
      (name) =>
        pod(name, 'reporter', {
          labels: SKIP,
          containers: [container('app', { env: [{ name: 'AWS_ROLE_ARN', value: s.deniedRole }] })],
        }),
    ],
    [
      'a token with audience sts.amazonaws.com and no variables',
      (name) =>
        pod(name, 'reporter', {
          labels: SKIP,
          volumes: [tokenVolume('t', 'sts.amazonaws.com')],
          containers: [container('app', { volumeMounts: [{ name: 't', mountPath: '/t' }] })],
        }),
    ],
    [
      'an init container with web identity variables',
      (name) =>
        pod(name, 'reporter', {
          labels: SKIP,
          volumes: [tokenVolume('t', 'sts.amazonaws.com')],
          initContainers: [
            container('setup', {
              env: wiEnv(s.deniedRole, '/t/token'),
              volumeMounts: [{ name: 't', mountPath: '/t' }],
            }),
          ],
        }),
    ],
  ];
  for (const where of ['served', 'unserved'] as const) {
    it.each(variants)(
      `%s is refused (${where === 'served' ? 'the webhook skips it by label' : 'no webhook at all'})`,
      async (_what, body) => {
        const n = where === 'served' ? served : unserved;
        const e = await refusal(
          s.attacker.create(podsPath(n), body(`skip-${Math.random().toString(36).slice(2, 8)}`)),
        );
        expect(e.status).toBe(403);
        expect(e.serverMessage).toContain(SKIP_RULE);
      },
    );
  }

  it('a skip-labelled Pod without AWS credentials is admitted', async () => {
    const p = await s.attacker.create(podsPath(unserved), pod('skip-plain', 'reporter', { labels: SKIP }));
    expect(p.metadata.labels).toEqual(SKIP);
  });

  it('adding the label to a Pod with credentials, or credentials to a labelled Pod by ephemeral container, is refused', async () => {
    const withCreds = pod('has-creds', 'reporter', {
      volumes: [tokenVolume('t', 'sts.amazonaws.com')],
      containers: [
        container('app', {
          env: wiEnv(s.allowedRole, '/t/token'),
          volumeMounts: [{ name: 't', mountPath: '/t' }],
        }),
      ],
    });
    withCreds.spec.schedulingGates = [{ name: GATE }];
    await s.attacker.create(podsPath(unserved), withCreds);
    const e1 = await refusal(
      s.attacker.patch(
        `${podsPath(unserved)}/has-creds`,
        { metadata: { labels: SKIP } },
        'application/merge-patch+json',
      ),
    );
    expect(e1.serverMessage).toContain(SKIP_RULE);

    const e2 = await refusal(
      s.attacker.patch(`${podsPath(unserved)}/skip-plain/ephemeralcontainers`, [
        {
          op: 'add',
          path: '/spec/ephemeralContainers',
          value: [{ name: 'debug', image: 'busybox', env: [{ name: 'AWS_ROLE_ARN', value: s.deniedRole }] }],
        },
      ]),
    );
    expect(e2.status).toBe(403);
    expect(e2.serverMessage).toContain(SKIP_RULE);
  });
});

describe('the chart installs the same policy', () => {
  it('renders validatingadmissionpolicy.yaml equal to the policy the tests and the sandbox install', () => {
    const out = execFileSync(
      helmBinary(),
      [
        'template',
        'lanyard',
        `${PACKAGE_ROOT}/deploy/helm/lanyard`,
        '--namespace',
        'lanyard-system',
        '--kube-version',
        '1.36.3',
        '--show-only',
        'templates/validatingadmissionpolicy.yaml',
      ],
      { encoding: 'utf8' },
    );
    const rendered = parseAllDocuments(out).map((d) => d.toJSON());
    const want = identityAdmissionPolicy({
      releasers: ['system:serviceaccount:lanyard-system:lanyard-controller'],
    });
    const byKind = (k: string) => rendered.find((o) => o.kind === k);
    expect(byKind('ValidatingAdmissionPolicy').spec).toEqual(want.policy.spec);
    expect(byKind('ValidatingAdmissionPolicyBinding').spec).toEqual(want.binding.spec);
  });
});
