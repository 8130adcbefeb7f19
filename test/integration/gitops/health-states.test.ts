// Argo CD's health of every Lanyard kind, one case per state its conditions can reach (docs/gitops.md). The objects
// are real: created on the real API server, their status written through the status subresource with the conditions
// the controllers build (their own functions where they are exported), then read back and assessed by Argo CD's own
// code (tools/argocd-health) with the scripts of deploy/argocd/argocd-cm.yaml.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { setCondition, type Condition } from '../../../src/kube/conditions.ts';
import {
  deriveReady,
  deriveVerified,
  policyDeniedMessage,
  type Cond,
  type SyncedFalseReason,
} from '../../../src/associations/decide.ts';
import type { AssociationVerification } from '../../../src/associations/index.ts';
import { FINALIZER } from '../../../src/associations/model.ts';
import { acceptedCondition, compilePolicy } from '../../../src/verification/policy.ts';
import { CRD_DIR } from '../../../src/sandbox/paths.ts';
import { adminClient, newNamespace } from '../../harness/context.ts';
import { ARGOCD_DIR, BUILD_TIMEOUT_MS, argocdHealth, argocdHealthBinary, type Health } from './argocd.ts';
import { renderArgocdConfig } from '../../../scripts/argocd-config.ts';

const API = '/apis/lanyard.dev/v1alpha1';
const MERGE = 'application/merge-patch+json';
const ROLE = 'arn:aws:iam::111122223333:role/uploader';

// Every reason the association controller writes with Synced=False, and the health it must give. A Record, so a new
// reason in src/associations/decide.ts does not compile until it has a case here.
const SYNCED_FALSE: Record<SyncedFalseReason, { message: string; status: 'Progressing' | 'Degraded' }> = {
  RolePropagating: {
    status: 'Progressing',
    message:
      'IAM has not propagated the role yet; retrying (InvalidParameterException: Role provided in the request does not exist)',
  },
  PolicyDenied: {
    status: 'Degraded',
    message: policyDeniedMessage(
      `lanyard: no IdentityPolicy allows namespace "shop" ServiceAccount "uploader" to use role "${ROLE}"`,
      { kind: 'none' },
      { namespace: 'shop', serviceAccount: 'uploader' },
      0,
    ),
  },
  RoleNotFound: {
    status: 'Degraded',
    message:
      'the role still does not exist 120s after the first attempt: InvalidParameterException: Role provided in the request does not exist',
  },
  InvalidSpec: {
    status: 'Degraded',
    message: 'InvalidParameterException: Target role cannot be the same as the role',
  },
  AccessDenied: {
    status: 'Degraded',
    message: 'AccessDeniedException: not authorized to perform eks:CreatePodIdentityAssociation',
  },
  ClusterNotFound: {
    status: 'Degraded',
    message: 'ResourceNotFoundException: No cluster found for name: prod-eu',
  },
  LimitExceeded: { status: 'Degraded', message: 'ResourceLimitExceededException: association limit reached' },
  Duplicate: {
    status: 'Degraded',
    message:
      'ServiceAccount shop/uploader in cluster lanyard-test is already associated by PodIdentityAssociation shop/first',
  },
  AWSError: { status: 'Degraded', message: 'ThrottlingException: Rate exceeded' },
  DeleteFailed: {
    status: 'Degraded',
    message: 'cannot delete association a-0123456789abcdefg: AccessDeniedException: not authorized',
  },
};

// What a verifier report can say (the Verified condition's reason), and the health it must give.
const REPORTS: Record<
  AssociationVerification['result'],
  { message: string; status: 'Healthy' | 'Degraded' }
> = {
  CredentialsMatch: { status: 'Healthy', message: `the exchange returned ${ROLE}` },
  RoleMismatch: {
    status: 'Degraded',
    message: `expected ${ROLE}, the exchange returned arn:aws:iam::111122223333:role/other`,
  },
  ExchangeFailed: {
    status: 'Degraded',
    message: 'AccessDeniedException: the role trust policy does not allow pods.eks.amazonaws.com',
  },
  VerificationTimeout: {
    status: 'Degraded',
    message: 'Pod shop/uploader-0 passed its verify deadline without a successful exchange',
  },
};

interface Case {
  title: string;
  /** Creates the object (and its status) on the API server and returns it as read back. */
  make(ns: string): Promise<Json>;
  status: string;
  message: string | RegExp;
}

let admin: KubeClient;
let ns: string;
const cleanups: Array<() => Promise<unknown>> = [];

const conditions = (at: Date, ...cs: Cond[]): Condition[] =>
  cs.reduce<Condition[]>((list, c) => setCondition(list, c, at), []);
const syncedCond = (
  generation: number,
  status: Condition['status'],
  reason: string,
  message: string,
): Cond => ({
  type: 'Synced',
  status,
  reason,
  message,
  observedGeneration: generation,
});

async function create(p: string, body: Json): Promise<Json> {
  return await admin.create(p, body);
}
async function writeStatus(p: string, status: Json): Promise<Json> {
  return await admin.patch(`${p}/status`, { status }, MERGE);
}

let counter = 0;
const escape = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const unique = (prefix: string) => `${prefix}-${(counter++).toString(36)}`;

/** A PodIdentityAssociation whose status the association controller wrote for its current generation. */
async function association(
  namespace: string,
  status: (generation: number) => { synced: Cond; verified?: Cond; at?: Date } | undefined,
  metadata: Json = {},
): Promise<Json> {
  const name = unique('lpia');
  const p = `${API}/namespaces/${namespace}/podidentityassociations/${name}`;
  const obj = await create(`${API}/namespaces/${namespace}/podidentityassociations`, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'PodIdentityAssociation',
    metadata: { name, ...metadata },
    spec: { serviceAccount: 'uploader', roleARN: ROLE },
  });
  const gen = obj.metadata.generation as number;
  const s = status(gen);
  if (!s) return obj;
  const verified =
    s.verified ?? deriveVerified({ generation: gen, synced: s.synced.status === 'True', current: undefined });
  const ready = deriveReady(gen, s.synced, verified);
  const extra =
    s.synced.status === 'True' ? { associationID: 'a-0123456789abcdefg', clusterName: 'lanyard-test' } : {};
  return await writeStatus(p, {
    ...extra,
    observedGeneration: gen,
    conditions: conditions(s.at ?? new Date(), s.synced, verified, ready),
  });
}

const inSync = (gen: number) =>
  syncedCond(
    gen,
    'True',
    'InSync',
    'EKS association a-0123456789abcdefg has the desired role, target role, session-tag flag and tags',
  );

const associationCases: Case[] = [
  {
    title: 'a new association the controller has not reconciled yet is Progressing',
    make: (n) => association(n, () => undefined),
    status: 'Progressing',
    message: 'Waiting for the Lanyard controller to reconcile the association',
  },
  {
    title:
      'an association whose spec changed since the last reconcile is Progressing, whatever its old conditions',
    make: async (n) => {
      const obj = await association(n, (g) => ({
        synced: inSync(g),
        verified: {
          type: 'Verified',
          status: 'True',
          reason: 'CredentialsMatch',
          message: 'ok',
          observedGeneration: g,
        },
      }));
      const p = `${API}/namespaces/${n}/podidentityassociations/${obj.metadata.name}`;
      const changed = await admin.patch(
        p,
        { spec: { roleARN: 'arn:aws:iam::111122223333:role/uploader-v2' } },
        MERGE,
      );
      expect(changed.metadata.generation).toBe(2);
      return changed;
    },
    status: 'Progressing',
    message: 'Waiting for the Lanyard controller to reconcile the association',
  },
  {
    title:
      'an association waiting for another object to release its ServiceAccount (Synced=Unknown) is Progressing',
    make: (n) =>
      association(n, (g) => ({
        synced: syncedCond(
          g,
          'Unknown',
          'Reconciling',
          'waiting for PodIdentityAssociation shop/old to delete association a-0123456789abcdefg before taking over ServiceAccount shop/uploader',
        ),
      })),
    status: 'Progressing',
    message: /^Reconciling: waiting for PodIdentityAssociation shop\/old to delete/,
  },
  ...Object.entries(SYNCED_FALSE)
    .filter(([reason]) => reason !== 'DeleteFailed')
    .map(([reason, { message, status }]): Case => ({
      title: `Synced=False ${reason} is ${status}, with the condition's message`,
      make: (n) => association(n, (g) => ({ synced: syncedCond(g, 'False', reason, message) })),
      status,
      message: `${reason}: ${message}`,
    })),
  {
    title:
      'Synced=False DeleteFailed, on an object being deleted, shows what Argo CD shows for any deleting object',
    make: async (n) => {
      const obj = await association(
        n,
        (g) => ({ synced: syncedCond(g, 'False', 'DeleteFailed', SYNCED_FALSE.DeleteFailed.message) }),
        { finalizers: [FINALIZER] },
      );
      const p = `${API}/namespaces/${n}/podidentityassociations/${obj.metadata.name}`;
      cleanups.push(() => admin.patch(p, { metadata: { finalizers: null } }, MERGE));
      await admin.delete(p);
      const deleting = await admin.get(p);
      expect(deleting.metadata.deletionTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      return deleting;
    },
    // gitops-engine decides "Pending deletion" before any health script runs; the Warning Event carries the reason.
    status: 'Progressing',
    message: 'Pending deletion',
  },
  {
    title:
      "in sync and waiting for the probe Pod's credential exchange (Verified=Unknown Verifying) is Progressing",
    make: (n) =>
      association(n, (g) => ({
        synced: inSync(g),
        verified: deriveVerified({ generation: g, synced: true, current: undefined }),
      })),
    status: 'Progressing',
    message: 'Verifying: waiting for a credential exchange through the probe Pod',
  },
  {
    title: 'in sync with probes turned off, waiting for a workload Pod to be verified, is Progressing',
    make: (n) =>
      association(n, (g) => ({
        synced: inSync(g),
        verified: deriveVerified({
          generation: g,
          synced: true,
          current: undefined,
          waitingFor:
            'waiting for a workload Pod of the ServiceAccount to be verified (--association-probe=false)',
        }),
      })),
    status: 'Progressing',
    message:
      'Verifying: waiting for a workload Pod of the ServiceAccount to be verified (--association-probe=false)',
  },
  {
    title: 'in sync for another cluster, which this controller cannot verify, stays Progressing and says why',
    make: (n) =>
      association(n, (g) => ({
        synced: inSync(g),
        verified: deriveVerified({
          generation: g,
          synced: true,
          current: undefined,
          waitingFor:
            'the association is for cluster "prod-us"; only associations of "prod-eu" (--cluster-name) can be verified from here',
        }),
      })),
    status: 'Progressing',
    message: /^Verifying: the association is for cluster "prod-us"/,
  },
  {
    title:
      'in sync but the probe Pod cannot be created (Verified=Unknown ProbeFailed) is Progressing with the API error',
    make: (n) =>
      association(n, (g) => ({
        synced: inSync(g),
        verified: deriveVerified({
          generation: g,
          synced: true,
          current: undefined,
          probeError: 'cannot create the probe Pod: pods "lanyard-probe-x" is forbidden: exceeded quota',
        }),
      })),
    status: 'Progressing',
    message: 'ProbeFailed: cannot create the probe Pod: pods "lanyard-probe-x" is forbidden: exceeded quota',
  },
  ...Object.entries(REPORTS).flatMap(([result, { message, status }]): Case[] => {
    const verified = (g: number): Cond =>
      deriveVerified({
        generation: g,
        synced: true,
        current: {
          type: 'Verified',
          status: result === 'CredentialsMatch' ? 'True' : 'False',
          reason: result,
          message,
          observedGeneration: g,
          lastTransitionTime: '',
        },
      });
    const longAgo = new Date(Date.now() - 6 * 60_000);
    if (status === 'Healthy' || result === 'VerificationTimeout') {
      return [
        {
          title: `in sync and the verifier reported ${result}: ${status}`,
          make: (n) => association(n, (g) => ({ synced: inSync(g), verified: verified(g) })),
          status,
          message: `${result}: ${message}`,
        },
      ];
    }
    return [
      {
        title: `in sync and the verifier just reported ${result}: Progressing, the error shown, while it retries within its deadline`,
        make: (n) => association(n, (g) => ({ synced: inSync(g), verified: verified(g) })),
        status: 'Progressing',
        message: new RegExp(
          `^${result}: ${escape(message)} \\(retrying since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\)$`,
        ),
      },
      {
        title: `in sync and the verifier has reported ${result} for longer than its 5-minute deadline: Degraded`,
        make: (n) => association(n, (g) => ({ synced: inSync(g), verified: verified(g), at: longAgo })),
        status,
        message: `${result}: ${message}`,
      },
    ];
  }),
  {
    title: 'in sync and verified through a fresh VerifiedIdentity (no report) is Healthy',
    make: (n) =>
      association(n, (g) => ({
        synced: inSync(g),
        verified: deriveVerified({
          generation: g,
          synced: true,
          current: undefined,
          freshVerifiedAt: '2026-12-02T20:00:00Z',
        }),
      })),
    status: 'Healthy',
    message: 'CredentialsMatch: an exchange at 2026-12-02T20:00:00Z returned the effective role',
  },
];

/** An IdentityPolicy with the Accepted condition the verifier computes for it (its own compiler). */
async function policy(
  serviceAccounts: string[],
  opts: { status?: boolean; bump?: boolean } = {},
): Promise<Json> {
  const name = unique(`lip-${ns}`).slice(0, 63);
  cleanups.push(() => admin.delete(`${API}/identitypolicies/${name}`));
  // Never matches a real namespace: the cluster-wide default-deny it turns on stays out of other tests' way.
  const rules = [
    { namespaceSelector: { matchLabels: { 'lanyard-gitops-test': 'none' } }, serviceAccounts, roles: [ROLE] },
  ];
  let obj = await create(`${API}/identitypolicies`, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'IdentityPolicy',
    metadata: { name },
    spec: { rules },
  });
  if (opts.status === false) return obj;
  const cond = acceptedCondition(compilePolicy(obj));
  obj = await writeStatus(`${API}/identitypolicies/${name}`, {
    observedGeneration: obj.metadata.generation,
    conditions: conditions(new Date(), cond),
  });
  if (opts.bump)
    obj = await admin.patch(
      `${API}/identitypolicies/${name}`,
      { spec: { rules: [...rules, rules[0]] } },
      MERGE,
    );
  return obj;
}

const policyCases: Case[] = [
  {
    title: 'an IdentityPolicy the controller has not checked is Progressing',
    make: () => policy(['uploader'], { status: false }),
    status: 'Progressing',
    message: 'Waiting for the Lanyard controller to check the policy',
  },
  {
    title: 'an accepted IdentityPolicy is Healthy',
    make: () => policy(['uploader']),
    status: 'Healthy',
    message: 'Accepted: 1 rule(s) in force',
  },
  {
    title: 'an IdentityPolicy the controller rejected (ignored) is Degraded, with the entry that is wrong',
    make: () => policy(['Uploader_Bad']),
    status: 'Degraded',
    message: /^InvalidPattern: .*spec\.rules\[0\]\.serviceAccounts\[0\].*the policy is ignored$/,
  },
  {
    title: 'an IdentityPolicy changed since it was checked is Progressing',
    make: () => policy(['uploader'], { bump: true }),
    status: 'Progressing',
    message: 'Waiting for the Lanyard controller to check the policy',
  },
];

/** A Stage with the Valid condition the promotion controller writes (status.conditions, status.currentPromotion). */
async function stage(
  namespace: string,
  valid?: { status: 'True' | 'False'; reason: string; message: string },
  extra: Json = {},
  bump = false,
): Promise<Json> {
  const name = unique('stage');
  const p = `${API}/namespaces/${namespace}/stages/${name}`;
  let obj = await create(`${API}/namespaces/${namespace}/stages`, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'Stage',
    metadata: { name },
    spec: { promotionTemplate: { spec: { steps: [{ uses: 'argocd-update' }] } } },
  });
  if (!valid) return obj;
  obj = await writeStatus(p, {
    ...extra,
    conditions: conditions(new Date(), {
      type: 'Valid',
      ...valid,
      observedGeneration: obj.metadata.generation,
    }),
  });
  if (bump) obj = await admin.patch(p, { spec: { promotionTemplate: { spec: { timeout: '5m' } } } }, MERGE);
  return obj;
}

const VALID = {
  status: 'True' as const,
  reason: 'Valid',
  message: 'stage can be promoted: 1 step(s) as serviceaccount "lanyard-promotion-argocd"',
};
const stageCases: Case[] = [
  {
    title: 'a Stage the controller has not checked is Progressing',
    make: (n) => stage(n),
    status: 'Progressing',
    message: 'Waiting for the Lanyard controller to check the stage',
  },
  {
    title: 'a valid Stage is Healthy',
    make: (n) => stage(n, VALID),
    status: 'Healthy',
    message: `Valid: ${VALID.message}`,
  },
  {
    title: 'a valid Stage stays Healthy while a promotion runs on it, and names the promotion',
    make: (n) => stage(n, VALID, { currentPromotion: 'release-42' }),
    status: 'Healthy',
    message: `Valid: ${VALID.message}; promotion release-42 is running`,
  },
  {
    title: 'a Stage that cannot be promoted (Valid=False) is Degraded with the reason',
    make: (n) =>
      stage(n, {
        status: 'False',
        reason: 'StepNotFound',
        message:
          'step "step-1" uses "argocd-update", which exists neither in project "shop" nor in namespace "lanyard-promotions"',
      }),
    status: 'Degraded',
    message: /^StepNotFound: step "step-1" uses "argocd-update"/,
  },
  {
    title: 'a Stage whose role a policy denies (Valid=False StepRoleDenied) is Degraded',
    make: (n) =>
      stage(n, {
        status: 'False',
        reason: 'StepRoleDenied',
        message: `step "step-1" (uses "s3-sync"): no IdentityPolicy allows namespace "shop" ServiceAccount "lanyard-promotion" to use role "${ROLE}"`,
      }),
    status: 'Degraded',
    message: /^StepRoleDenied: /,
  },
  {
    title: 'a Stage changed since it was checked is Progressing',
    make: (n) => stage(n, VALID, {}, true),
    status: 'Progressing',
    message: 'Waiting for the Lanyard controller to check the stage',
  },
];

/** A Promotion in a phase, with the status the promotion controller writes for it. */
async function promotion(namespace: string, status?: Json): Promise<Json> {
  const name = unique('promo');
  const obj = await create(`${API}/namespaces/${namespace}/promotions`, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'Promotion',
    metadata: { name },
    spec: { stage: 'prod' },
  });
  if (!status) return obj;
  return await writeStatus(`${API}/namespaces/${namespace}/promotions/${name}`, status);
}

const PROMOTION_PHASES: Record<string, { status: Json; health: string; message: string | RegExp }> = {
  Pending: {
    status: { phase: 'Pending', message: 'waiting for promotion "release-41" on stage "prod"' },
    health: 'Progressing',
    message: 'Pending: waiting for promotion "release-41" on stage "prod"',
  },
  Running: {
    status: {
      phase: 'Running',
      message: 'waiting: pod held by scheduling gate lanyard.dev/identity',
      currentStep: 1,
    },
    health: 'Progressing',
    message: 'Running: waiting: pod held by scheduling gate lanyard.dev/identity',
  },
  Succeeded: {
    status: { phase: 'Succeeded', message: 'all 2 steps succeeded', finishedAt: '2026-12-02T20:00:00Z' },
    health: 'Healthy',
    message: 'Succeeded: all 2 steps succeeded',
  },
  Failed: {
    status: { phase: 'Failed', message: 'step "sync" (2 of 2) failed with exit code 1: denied' },
    health: 'Degraded',
    message: 'Failed: step "sync" (2 of 2) failed with exit code 1: denied',
  },
  Errored: {
    status: {
      phase: 'Errored',
      message: 'pod lanyard-promotions/p-1 was deleted before the promotion finished',
    },
    health: 'Degraded',
    message: /^Errored: pod .* was deleted/,
  },
  Aborted: {
    status: { phase: 'Aborted', message: 'aborted on request' },
    health: 'Degraded',
    message: 'Aborted: aborted on request',
  },
};

const promotionCases: Case[] = [
  {
    title: 'a Promotion the controller has not picked up is Progressing',
    make: (n) => promotion(n),
    status: 'Progressing',
    message: 'Waiting for the Lanyard controller to start the promotion',
  },
  ...Object.entries(PROMOTION_PHASES).map(([phase, c]): Case => ({
    title: `a Promotion in phase ${phase} is ${c.health}`,
    make: (n) => promotion(n, c.status),
    status: c.health,
    message: c.message,
  })),
];

/** A step definition of `kind` (PromotionStep, or Kargo's CustomPromotionStep) is Healthy once it exists. */
const stepCases = (kind: 'PromotionStep' | 'CustomPromotionStep'): Case[] => [
  {
    title: `a ${kind} (a definition without status) is Healthy`,
    make: (n) =>
      create(`${API}/namespaces/${n}/${kind.toLowerCase()}s`, {
        apiVersion: 'lanyard.dev/v1alpha1',
        kind,
        metadata: { name: unique('step') },
        spec: { image: 'registry.example/argocd-update:1', command: ['/update'] },
      }),
    status: 'Healthy',
    message: 'Step definition; Stages that use it report problems in their Valid condition',
  },
];

/** A VerifiedIdentity as the verifier writes it (buildVerifiedIdentity's shape), verified at `verifiedAt`. */
async function verifiedIdentity(namespace: string, verifiedAt: Date, ttlMs: number): Promise<Json> {
  const iso = (d: Date) => d.toISOString();
  return await create(`${API}/namespaces/${namespace}/verifiedidentities`, {
    apiVersion: 'lanyard.dev/v1alpha1',
    kind: 'VerifiedIdentity',
    metadata: { name: unique('cc') },
    spec: {
      serviceAccount: 'uploader',
      mode: 'ContainerCredentials',
      roleARN: ROLE,
      targetRoleARN: '',
      audience: '',
      fingerprint: 'a'.repeat(64),
      assumedRoleARN: 'arn:aws:sts::111122223333:assumed-role/uploader/eks-lanyard-test-uploader-0',
      verifiedAt: iso(verifiedAt),
      expiresAt: iso(new Date(verifiedAt.getTime() + ttlMs)),
      verifiedWith: 'Pod/uploader-0',
    },
  });
}

const viCases: Case[] = [
  {
    title: 'a VerifiedIdentity before its expiry is Healthy and says what was proved',
    make: (n) => verifiedIdentity(n, new Date(), 3600_000),
    status: 'Healthy',
    message:
      /^ServiceAccount uploader proved arn:aws:sts::111122223333:assumed-role\/uploader\/.* \(Pod\/uploader-0\); trusted until /,
  },
  {
    title: 'an expired VerifiedIdentity is Suspended until Lanyard verifies the next Pod',
    make: (n) => verifiedIdentity(n, new Date(Date.now() - 7200_000), 3600_000),
    status: 'Suspended',
    message: /^Expired at .*; the next Pod of ServiceAccount uploader is verified again$/,
  },
];

const KINDS: Record<string, Case[]> = {
  PodIdentityAssociation: associationCases,
  IdentityPolicy: policyCases,
  Stage: stageCases,
  Promotion: promotionCases,
  PromotionStep: stepCases('PromotionStep'),
  CustomPromotionStep: stepCases('CustomPromotionStep'),
  VerifiedIdentity: viCases,
};

const results = new Map<Case, { object: Json; health: Health }>();

beforeAll(async () => {
  argocdHealthBinary();
  admin = await adminClient();
  ns = await newNamespace(admin, 'gitops-health');
  const made: Array<[Case, Json]> = [];
  for (const cases of Object.values(KINDS)) for (const c of cases) made.push([c, await c.make(ns)]);
  const health = argocdHealth(made.map(([, o]) => o));
  made.forEach(([c, o], i) => results.set(c, { object: o, health: health[i]! }));
  // For docs/gitops.md: LANYARD_GITOPS_TIMELINE=dir writes every case's result as Argo CD computed it.
  const dir = process.env.LANYARD_GITOPS_TIMELINE;
  if (dir)
    fs.writeFileSync(
      `${dir}/health-states.json`,
      JSON.stringify(
        made.map(([c], i) => ({ case: c.title, ...health[i] })),
        null,
        1,
      ),
    );
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  for (const c of cleanups) await c().catch(() => undefined);
  await admin?.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  admin?.close();
});

describe('the shipped Argo CD configuration', () => {
  it('has a health script for every Lanyard CRD, and only for those', () => {
    const kinds = fs
      .readdirSync(CRD_DIR)
      .map((f) => parse(fs.readFileSync(path.join(CRD_DIR, f), 'utf8')).spec.names.kind)
      .sort();
    expect(
      fs
        .readdirSync(path.join(ARGOCD_DIR, 'health'))
        .map((f) => f.replace(/\.lua$/, ''))
        .sort(),
    ).toEqual(kinds);
    expect(Object.keys(KINDS).sort()).toEqual(kinds);
  });

  it('has argocd-cm.yaml and argo-cd-values.yaml generated from the current scripts', () => {
    for (const [name, text] of Object.entries(renderArgocdConfig())) {
      expect(
        fs.readFileSync(path.join(ARGOCD_DIR, name), 'utf8'),
        `${name} is stale: run npx tsx scripts/argocd-config.ts`,
      ).toBe(text);
    }
  });

  it('covers every Promotion phase of the CRD', () => {
    const crd = parse(fs.readFileSync(path.join(CRD_DIR, 'promotions.lanyard.dev.yaml'), 'utf8'));
    const phases = crd.spec.versions[0].schema.openAPIV3Schema.properties.status.properties.phase.enum;
    expect(Object.keys(PROMOTION_PHASES).sort()).toEqual([...phases].sort());
  });
});

for (const [kind, cases] of Object.entries(KINDS)) {
  describe(`Argo CD health of a ${kind}`, () => {
    it.each(cases.map((c) => [c.title, c] as const))('%s', (_title, c) => {
      const r = results.get(c)!;
      expect(r.health.kind).toBe(kind);
      expect(r.health.name).toBe(r.object.metadata.name);
      expect(r.health.status).toBe(c.status);
      if (typeof c.message === 'string') expect(r.health.message).toBe(c.message);
      else expect(r.health.message).toMatch(c.message);
    });
  });
}
