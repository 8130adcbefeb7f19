// Seed 002 (docs/migrate-from-ack.md, "Applying an ACK manifest as is"): the sample chart's ServiceAccount, ACK-shaped
// PodIdentityAssociation (only its apiVersion changed) and Deployment apply with strict field validation through the
// real webhook and controller; the association is made in EKS (the simulator) and the Deployment's Pod starts only
// once a real exchange returned the role, which is the seed's point. A spec.namespace naming another namespace is
// refused by the API server with the admission policy's message. And the sandbox's own IdentityPolicy refuses a first
// workload in a new namespace with a message saying which rule to add, and that rule admits it
// (docs/verified-start.md, "When a Pod is denied").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse, parseAllDocuments } from 'yaml';
import { helmBinary } from '../../../src/sandbox/binaries.ts';
import { PACKAGE_ROOT } from '../../../src/sandbox/paths.ts';
import { associationAdmissionPolicy } from '../../../src/associations/admission-policy.ts';
import type { Json } from '../../../src/kube/client.ts';
import { KubeApiError } from '../../../src/kube/client.ts';
import { readManifests } from '../../../src/kube/apply.ts';
import { SAMPLES_DIR } from '../../../src/sandbox/paths.ts';
import { eventually } from '../../harness/context.ts';
import {
  CLUSTER,
  GATE,
  ccTrust,
  createPod,
  gates,
  podBody,
  serviceAccount,
  startVerificationEnv,
  type VerificationEnv,
} from '../verification/env.ts';
import { byKind, kubectlApply, seedManifests } from './helpers.ts';

let env: VerificationEnv;
const POLICIES = '/apis/lanyard.dev/v1alpha1/identitypolicies';
const policies: string[] = [];

const refusal = async (p: Promise<unknown>): Promise<KubeApiError> => {
  try {
    await p;
  } catch (e) {
    if (e instanceof KubeApiError) return e;
    throw e;
  }
  throw new Error('expected the API server to refuse');
};

beforeAll(async () => {
  env = await startVerificationEnv({ seed: 2002 });
});
afterAll(async () => {
  for (const n of policies) await env?.admin.delete(`${POLICIES}/${n}`).catch(() => undefined);
  await env?.stop();
});

describe('seed 002 with only its apiVersion changed', () => {
  it("applies, creates the association in EKS, and the Deployment's Pod is released only after a real exchange returned the role", async () => {
    const ns = await env.namespace('sample-argocd-ack-eks');
    const role = await env.aws.iam.createRole({
      roleName: `sample-argocd-ack-eks-role-${randomBytes(2).toString('hex')}`,
      assumeRolePolicyDocument: ccTrust(),
    });
    const objs = seedManifests('002-ack-pod-identity-association.yaml', {
      NAMESPACE: ns,
      CLUSTER,
      ROLE_ARN: role.arn,
    });
    // In the seed's order (hook weights -50, -50, 100): before the fix, the second failed with unknown field "spec.namespace".
    for (const o of objs) await kubectlApply(env.admin, o);
    const lpia = byKind(objs, 'PodIdentityAssociation');

    const ready = await eventually(
      async () => {
        const o = await env.admin.get(
          `/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations/${lpia.metadata.name}`,
        );
        const c = (o.status?.conditions ?? []).find((x: Json) => x.type === 'Ready');
        if (c?.status !== 'True') throw new Error(`not Ready: ${JSON.stringify(o.status?.conditions)}`);
        return o;
      },
      45_000,
      200,
    );
    const inEks = env.sim.control
      .log({ service: 'eks', operation: 'CreatePodIdentityAssociation' })
      .filter((e) => e.input.namespace === ns);
    expect(inEks).toHaveLength(1);
    expect(inEks[0]!.input).toMatchObject({
      cluster: CLUSTER,
      serviceAccount: 'argo-ack-eks-static',
      roleArn: role.arn,
    });
    expect(ready.status.associationID).toMatch(/^a-[0-9a-z]{17}$/);

    // The Deployment's Pod: the test control plane runs no deployment or replicaset controller, so the test creates
    // it from the Deployment's template as the ReplicaSet controller would. Injected, and not runnable before a proof.
    const template = byKind(objs, 'Deployment').spec.template;
    const pod = await createPod(env.admin, ns, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { ...template.metadata, generateName: 'argo-ack-eks-static-' },
      spec: template.spec,
    });
    expect(JSON.stringify(pod.spec.containers[0].env)).toContain('AWS_CONTAINER_CREDENTIALS_FULL_URI');
    const released = await eventually(
      async () => {
        const p = await env.admin.get(`/api/v1/namespaces/${ns}/pods/${pod.metadata.name}`);
        if (gates(p).includes(GATE)) throw new Error('still gated');
        return p;
      },
      30_000,
      200,
    );
    expect(gates(released)).not.toContain(GATE);
    // A successful eks-auth exchange for this ServiceAccount returned the declared role (the seed's Job, done right).
    const exchanges = env.sim.control
      .log({ service: 'eks-auth' })
      .filter((e) => e.status === 200 && JSON.stringify(e).includes(ns));
    expect(exchanges.length).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(exchanges)).toContain(role.arn.split('/').pop());
  });

  it('refuses spec.namespace of another namespace at the API server, naming field and rule, and stores nothing', async () => {
    const ns = await env.namespace('ack-mismatch');
    const objs = seedManifests('002-ack-pod-identity-association.yaml', {
      NAMESPACE: ns,
      CLUSTER,
      ROLE_ARN: `arn:aws:iam::${env.account}:role/x`,
    });
    const lpia = byKind(objs, 'PodIdentityAssociation');
    const wrong = { ...lpia, spec: { ...lpia.spec, namespace: 'somewhere-else' } };
    // The admission policy is compiled by the API server asynchronously after installation: retry until it answers.
    const e = await eventually(async () => refusal(kubectlApply(env.admin, wrong)), 15_000, 200);
    expect(e.status).toBe(422);
    expect(e.serverMessage).toContain(
      `spec.namespace "somewhere-else" must equal the object's namespace "${ns}": a Lanyard ` +
        'PodIdentityAssociation binds a ServiceAccount of its own namespace; create it in namespace "somewhere-else" or remove spec.namespace (docs/migrate-from-ack.md)',
    );
    const list = await env.admin.get(`/apis/lanyard.dev/v1alpha1/namespaces/${ns}/podidentityassociations`);
    expect(list.items).toEqual([]);
  });
});

describe("the sandbox's default-deny IdentityPolicy", () => {
  it('refuses a first workload in a new namespace saying which rule to add; adding that rule admits it', async () => {
    const sample = readManifests(path.join(SAMPLES_DIR, '00-demo.yaml')).find(
      (o) => o.kind === 'IdentityPolicy',
    )!;
    const name = `${sample.metadata.name}-${randomBytes(3).toString('hex')}`;
    await env.admin.create(POLICIES, { ...sample, metadata: { name } });
    policies.push(name);

    const ns = await env.namespace('first-workload');
    const role = `arn:aws:iam::${env.account}:role/web`;
    await serviceAccount(env.admin, ns, 'web', { 'eks.amazonaws.com/role-arn': role });
    const e = await eventually(
      async () => refusal(createPod(env.admin, ns, podBody(`web-${Date.now()}`, 'web'))),
      15_000,
      200,
    );
    expect(e.status).toBe(403);
    const rule = `{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${ns}}}, serviceAccounts: ["web"], roles: ["${role}"]}`;
    expect(e.serverMessage).toContain(
      `lanyard: no IdentityPolicy allows namespace "${ns}" ServiceAccount "web" to use role "${role}": ` +
        `Pod "${ns}/web-`,
    );
    expect(e.serverMessage).toContain(
      `. To allow it, add to spec.rules of IdentityPolicy "${name}" (kubectl edit identitypolicy ${name}) ` +
        `the rule ${rule}; check first with: lanyard doctor --policy-preview <file> (docs/verified-start.md)`,
    );

    // Do what the message says: the rule it prints is YAML, added as it is.
    const printed = /the rule (\{.*\}); check first/.exec(e.serverMessage)![1]!;
    const current = await env.admin.get(`${POLICIES}/${name}`);
    await env.admin.update(`${POLICIES}/${name}`, {
      ...current,
      spec: { rules: [...current.spec.rules, parse(printed)] },
    });
    const pod = await eventually(
      async () => createPod(env.admin, ns, podBody(`web-${Date.now()}`, 'web')),
      15_000,
      200,
    );
    expect(JSON.stringify(pod.spec.containers[0].env)).toContain(role);
  });
});

describe('the chart installs the same association admission policy', () => {
  it('renders associations-validatingadmissionpolicy.yaml equal to the policy the tests and the sandbox install', () => {
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
        'templates/associations-validatingadmissionpolicy.yaml',
      ],
      { encoding: 'utf8' },
    );
    const rendered = parseAllDocuments(out).map((d) => d.toJSON());
    const want = associationAdmissionPolicy();
    expect(rendered.find((o) => o.kind === 'ValidatingAdmissionPolicy').spec).toEqual(want.policy.spec);
    expect(rendered.find((o) => o.kind === 'ValidatingAdmissionPolicyBinding').spec).toEqual(
      want.binding.spec,
    );
  });
});
