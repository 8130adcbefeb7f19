// Table tests of the identity reconciler's pass decisions (docs/identities.md, "Events, metrics, the association's
// Ready" and "Repair"): the row kept per Pod, what a new row changes in the counts, the Events and repair look a pass
// makes, and whether a workload is restarted. Plain objects in, plain objects out.
import { describe, expect, it } from 'vitest';
import type { Deployment } from 'kubernetes-types/apps/v1.js';
import { restartPatch, type IdentityState, type PodIdentity, type PodView } from './decide.ts';
import {
  isRepairKey,
  parseRepairKey,
  planRepair,
  podEffects,
  podRow,
  publicRow,
  repairKey,
  repairResyncKeys,
  rowChange,
  type PodRow,
  type Workload,
} from './decide-pass.ts';

const CREATED = Date.parse('2026-12-03T03:00:00Z');
const ROLE = 'arn:aws:iam::111122223333:role/team-a/web';
const WEB: Workload = { kind: 'Deployment', name: 'web' };

const pod = (name = 'web-1', o: Partial<PodView> = {}): PodView => ({
  namespace: 'team-a',
  name,
  uid: `uid-${name}`,
  serviceAccount: 'web',
  creationMs: CREATED,
  phase: 'Running',
  gated: false,
  optOut: false,
  used: [],
  injected: false,
  ...o,
});
const decision = (state: IdentityState, o: Partial<PodIdentity> = {}): PodIdentity => ({
  state,
  source: 'service_account',
  mode: 'WebIdentity',
  role: state === 'missing' ? '' : ROLE,
  message: `${state} message`,
  ...o,
});
const row = (
  state: IdentityState,
  o: { name?: string; workload?: Workload | null; decision?: Partial<PodIdentity>; creationMs?: number } = {},
): PodRow =>
  podRow(
    decision(state, o.decision),
    pod(o.name, o.creationMs === undefined ? {} : { creationMs: o.creationMs }),
    o.workload === null ? undefined : (o.workload ?? WEB),
  );

describe('podRow: the row kept per Pod', () => {
  it('carries the decision, the Pod, its workload as `kind/name` and its creation time', () => {
    expect(row('missing')).toEqual({
      state: 'missing',
      source: 'service_account',
      mode: 'WebIdentity',
      role: '',
      message: 'missing message',
      namespace: 'team-a',
      pod: 'web-1',
      serviceAccount: 'web',
      workload: 'deployment/web',
      creationTimestamp: '2026-12-03T03:00:00.000Z',
      creationMs: CREATED,
      workloadKind: 'Deployment',
      workloadName: 'web',
    });
  });
  it('a bare Pod has no workload; publicRow drops what only the reconciler reads', () => {
    const r = row('ok', { workload: null });
    expect(r.workload).toBeUndefined();
    expect(r.workloadKind).toBeUndefined();
    expect(publicRow(row('stale'))).toEqual({
      state: 'stale',
      source: 'service_account',
      mode: 'WebIdentity',
      role: ROLE,
      message: 'stale message',
      namespace: 'team-a',
      pod: 'web-1',
      serviceAccount: 'web',
      workload: 'deployment/web',
      creationTimestamp: '2026-12-03T03:00:00.000Z',
    });
  });
});

describe('rowChange: what a new row changes in the gauge, the workload counts and missingFor', () => {
  const viaAssociation = {
    decision: { source: 'association' as const, mode: 'ContainerCredentials' as const },
  };
  const cases: { name: string; prev?: PodRow; next?: PodRow; want: ReturnType<typeof rowChange> }[] = [
    { name: 'first decision: the state is entered', next: row('ok'), want: { entered: 'ok' } },
    {
      name: 'the Pod is gone: its problem state is left, with its workload count',
      prev: row('stale'),
      want: { left: 'stale', ownerLeft: 'Deployment/team-a/web/stale' },
    },
    {
      name: 'ok to missing: no workload count to leave (ok is not a problem state)',
      prev: row('ok'),
      next: row('missing'),
      want: { left: 'ok', entered: 'missing' },
    },
    {
      name: 'a bare Pod counts in no workload',
      prev: row('missing', { workload: null }),
      next: row('ok', { workload: null }),
      want: { left: 'missing', entered: 'ok' },
    },
    {
      name: 'missing its association: the pair is counted',
      prev: row('ok', viaAssociation),
      next: row('missing', viaAssociation),
      want: { left: 'ok', entered: 'missing', missing: { from: undefined, to: 'team-a/web' } },
    },
    {
      name: 'no longer missing its association: the pair is uncounted',
      prev: row('missing', viaAssociation),
      next: row('ok', viaAssociation),
      want: {
        left: 'missing',
        entered: 'ok',
        ownerLeft: 'Deployment/team-a/web/missing',
        missing: { from: 'team-a/web', to: undefined },
      },
    },
    {
      name: 'still missing its association (the message changed): the pair count does not move',
      prev: row('missing', viaAssociation),
      next: row('missing', { decision: { ...viaAssociation.decision, message: 'other' } }),
      want: { left: 'missing', entered: 'missing', ownerLeft: 'Deployment/team-a/web/missing' },
    },
    {
      name: 'missing a ServiceAccount annotation is not counted for the association',
      next: row('missing'),
      want: { entered: 'missing' },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      expect(rowChange(c.prev, c.next)).toEqual(c.want);
    });
});

describe('podEffects: Events, log, proof and repair look of a decided Pod', () => {
  const none = () => 0;
  const one = () => 1;
  const cases: {
    name: string;
    prev?: PodRow;
    row: PodRow;
    owners?: (k: string) => number;
    want: ReturnType<typeof podEffects>;
  }[] = [
    {
      name: "a workload's first Pod turning missing: Warning on the Pod and on the workload, a repair look",
      row: row('missing'),
      owners: none,
      want: {
        changed: true,
        podWarning: { reason: 'IdentityMissing', message: 'missing message' },
        workloadWarning: { reason: 'IdentityMissing', message: 'Pod web-1: missing message' },
        ownerProblem: 'Deployment/team-a/web/missing',
        prove: false,
        repairKey: 'repair:Deployment/team-a/web',
      },
    },
    {
      name: 'its second Pod in that state: a Warning on the Pod only (10,000 Pods must not flood the owner)',
      prev: row('ok', { name: 'web-2' }),
      row: row('missing', { name: 'web-2' }),
      owners: one,
      want: {
        changed: true,
        podWarning: { reason: 'IdentityMissing', message: 'missing message' },
        ownerProblem: 'Deployment/team-a/web/missing',
        prove: false,
        repairKey: 'repair:Deployment/team-a/web',
      },
    },
    {
      name: 'same state and message again: no Event, no log, but still counted and looked at',
      prev: row('stale'),
      row: row('stale'),
      owners: none,
      want: {
        changed: false,
        ownerProblem: 'Deployment/team-a/web/stale',
        prove: false,
        repairKey: 'repair:Deployment/team-a/web',
      },
    },
    {
      name: 'the message changed in a problem state: the Pod is warned again',
      prev: row('unverified'),
      row: row('unverified', { decision: { message: 'its verification failed' } }),
      owners: one,
      want: {
        changed: true,
        podWarning: { reason: 'IdentityUnverified', message: 'its verification failed' },
        ownerProblem: 'Deployment/team-a/web/unverified',
        prove: false,
      },
    },
    {
      name: 'denied: warned and counted, never restarted (a restart cannot fix it)',
      row: row('denied'),
      owners: none,
      want: {
        changed: true,
        podWarning: { reason: 'IdentityDenied', message: 'denied message' },
        workloadWarning: { reason: 'IdentityDenied', message: 'Pod web-1: denied message' },
        ownerProblem: 'Deployment/team-a/web/denied',
        prove: false,
      },
    },
    {
      name: 'ok and proven by a current VerifiedIdentity: logged and remembered, no Event',
      prev: row('verifying'),
      row: row('ok', { decision: { proven: true } }),
      want: { changed: true, prove: true },
    },
    {
      name: 'verifying: no Event',
      row: row('verifying'),
      want: { changed: true, prove: false },
    },
    {
      name: 'a bare Pod missing its identity: warned, neither counted for a workload nor repaired',
      row: row('missing', { workload: null }),
      want: {
        changed: true,
        podWarning: { reason: 'IdentityMissing', message: 'missing message' },
        prove: false,
      },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      expect(podEffects(c.prev, c.row, c.owners ?? none)).toEqual(c.want);
    });
});

describe('repair keys', () => {
  it('name the workload and read back as it', () => {
    const t = { kind: 'StatefulSet' as const, namespace: 'team-a', name: 'db' };
    expect(repairKey(t)).toBe('repair:StatefulSet/team-a/db');
    expect(isRepairKey(repairKey(t))).toBe(true);
    expect(isRepairKey('team-a/db-0')).toBe(false);
    expect(parseRepairKey(repairKey(t))).toEqual(t);
  });
  it('the periodic look covers each workload with a missing or stale Pod, and no other', () => {
    const rows = [
      row('missing'),
      row('stale', { name: 'web-2' }),
      row('denied', { workload: { kind: 'DaemonSet', name: 'agent' } }),
      row('missing', { workload: null }),
      row('ok', { workload: { kind: 'StatefulSet', name: 'db' } }),
    ];
    expect(repairResyncKeys(rows)).toEqual(['repair:Deployment/team-a/web', 'repair:Deployment/team-a/web']);
  });
});

describe('planRepair: a workload restarted once per generation of Pods', () => {
  const NOW = new Date('2026-12-03T04:00:00.123Z');
  const RESTART = '2026-12-03T03:30:00Z';
  const deployment = (repair?: string, restartedAt?: string): Deployment => ({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      namespace: 'team-a',
      uid: 'd1',
      ...(repair ? { annotations: { 'lanyard.dev/identity-repair': repair } } : {}),
    },
    spec: {
      selector: {},
      template: {
        metadata: restartedAt ? { annotations: { 'lanyard.dev/identity-restarted-at': restartedAt } } : {},
      },
    },
  });
  const before = Date.parse(RESTART) - 60_000;
  const after = Date.parse(RESTART) + 60_000;
  const cases: {
    name: string;
    workload: Deployment;
    namespaceRepair?: string;
    problemPods: number[];
    reported?: number;
    want: ReturnType<typeof planRepair>;
  }[] = [
    {
      name: 'repair not asked for: nothing',
      workload: deployment(),
      problemPods: [before],
      want: { kind: 'none' },
    },
    {
      name: 'asked on the namespace, never restarted: a rollout restart as kubectl writes it',
      workload: deployment(),
      namespaceRepair: 'restart',
      problemPods: [before, before],
      want: {
        kind: 'restart',
        // The patch of `kubectl rollout restart` at the pass's time (its shape: decide.test.ts).
        patch: restartPatch(NOW),
        note: 'rollout restart: 2 Pod(s) lack the identity their ServiceAccount declares now (lanyard.dev/identity-repair: restart)',
      },
    },
    {
      name: "the workload's own `off` wins over the namespace's `restart`",
      workload: deployment('off'),
      namespaceRepair: 'restart',
      problemPods: [before],
      want: { kind: 'none' },
    },
    {
      name: 'a Pod older than the last restart is still wrong: the restart is in progress',
      workload: deployment('restart', RESTART),
      problemPods: [before, after],
      want: { kind: 'none' },
    },
    {
      name: 'every wrong Pod is newer than the last restart: ineffective, said once for that restart',
      workload: deployment('restart', RESTART),
      problemPods: [after],
      want: {
        kind: 'ineffective',
        restartMs: Date.parse(RESTART),
        message:
          "Pods created after Lanyard's restart at 2026-12-03T03:30:00.000Z still lack the identity declared now; not " +
          'restarting again (check the webhook and the IdentityPolicy; remove lanyard.dev/identity-restarted-at from the Pod template to allow another restart)',
      },
    },
    {
      name: 'ineffective and already said for that restart: nothing (the periodic look must not repeat it)',
      workload: deployment('restart', RESTART),
      problemPods: [after],
      reported: Date.parse(RESTART),
      want: { kind: 'none' },
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      expect(
        planRepair({
          problemPods: c.problemPods,
          workload: c.workload,
          namespaceRepair: c.namespaceRepair,
          reportedIneffective: c.reported,
          now: NOW,
        }),
      ).toEqual(c.want);
    });
});
