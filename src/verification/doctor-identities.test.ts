// The identity checks of `lanyard doctor` (docs/verified-start.md, "lanyard doctor"), as pure functions over one view.
import { describe, expect, it } from 'vitest';
import {
  associationFindings,
  gatedPodFindings,
  reconcilerFindings,
  staticKeyFindings,
  type IdentityView,
} from './doctor.ts';
import { gateFixHint, gateNoteOf, latestGateNotes } from './gate-notes.ts';
import type { EnvVar, Pod } from 'kubernetes-types/core/v1.js';
import type { Condition } from '../kube/conditions.ts';
import type { PodIdentityAssociation } from '../associations/types.ts';

const NOW = Date.parse('2026-12-03T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();
const view = (over: Partial<IdentityView>): IdentityView => ({
  pods: [],
  associations: [],
  gateNotes: new Map(),
  identities: [],
  nowMs: NOW,
  ...over,
});
const pod = (
  name: string,
  over: {
    gated?: boolean;
    failed?: boolean;
    ageMs?: number;
    env?: unknown[];
    phase?: string;
    spec?: object;
  } = {},
): Pod => ({
  metadata: {
    name,
    namespace: 'team-a',
    uid: `uid-${name}`,
    creationTimestamp: ago(over.ageMs ?? 10 * 60_000),
    annotations: over.failed
      ? { 'lanyard.dev/identity-verification': 'failed' }
      : ({} as Record<string, string>),
  },
  spec: {
    serviceAccountName: 'uploader',
    ...(over.gated ? { schedulingGates: [{ name: 'lanyard.dev/identity' }] } : {}),
    // Env entries as a test writes them, hostile ones too.
    containers: [{ name: 'app', ...(over.env ? { env: over.env as EnvVar[] } : {}) }],
    ...over.spec,
  },
  status: { phase: over.phase ?? 'Pending' },
});
const ACCESS_DENIED =
  'WebIdentity exchange for role arn:aws:iam::111122223333:role/x failed: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity';

describe('gatedPodFindings', () => {
  it("a Pod past the deadline (failed) is an error carrying the verifier's last note and a fix for its cause", () => {
    const notes = new Map([
      [
        'uid-a',
        { podUid: 'uid-a', podName: 'a', reason: 'IdentityNotVerified', note: ACCESS_DENIED, atMs: NOW },
      ],
    ]);
    expect(
      gatedPodFindings(view({ pods: [pod('a', { gated: true, failed: true })], gateNotes: notes })),
    ).toEqual([
      {
        level: 'error',
        object: 'pod team-a/a',
        text: `held at the lanyard.dev/identity gate for 10m: identity not verified within the deadline (still retrying); last attempt: ${ACCESS_DENIED}`,
        fix: expect.stringContaining('trust policy'),
      },
    ]);
  });
  it('a Pod held over a minute is a warning; a younger one, or one released, is not reported', () => {
    const f = gatedPodFindings(
      view({
        pods: [
          pod('old', { gated: true, ageMs: 90_000 }),
          pod('young', { gated: true, ageMs: 5_000 }),
          pod('free', { failed: true }),
        ],
      }),
    );
    expect(f).toEqual([
      {
        level: 'warning',
        object: 'pod team-a/old',
        text: 'held at the lanyard.dev/identity gate for 90s; no attempt recorded: check that lanyard controller runs and holds its Lease',
        fix: 'kubectl describe pod old -n team-a (docs/verified-start.md, "Troubleshooting from the Event text")',
      },
    ]);
  });
});

describe('associationFindings', () => {
  /** Conditions as a test writes them: only the fields each case needs. */
  const lpia = (conditions: Array<Partial<Condition>>): PodIdentityAssociation => ({
    metadata: { name: 'up', namespace: 'team-a' },
    status: { conditions: conditions as Condition[] },
  });
  it('Ready=False is an error naming the failing condition, with a fix for its reason', () => {
    expect(
      associationFindings(
        view({
          associations: [
            lpia([
              {
                type: 'Synced',
                status: 'False',
                reason: 'PolicyDenied',
                message: 'lanyard: no IdentityPolicy allows …',
              },
              { type: 'Verified', status: 'Unknown', reason: 'NotSynced' },
              { type: 'Ready', status: 'False', reason: 'NotSynced' },
            ]),
          ],
        }),
      ),
    ).toEqual([
      {
        level: 'error',
        object: 'podidentityassociation team-a/up',
        text: 'not Ready: Synced=False PolicyDenied: lanyard: no IdentityPolicy allows …',
        fix: expect.stringContaining('--policy-preview'),
      },
    ]);
  });
  it('a failed exchange is a warning for its first minute (the verifier retries), then an error with a fix for its cause', () => {
    const failing = (sinceMs: number) =>
      lpia([
        { type: 'Synced', status: 'True', reason: 'InSync' },
        {
          type: 'Verified',
          status: 'False',
          reason: 'ExchangeFailed',
          message: 'ResourceNotFoundException: No Pod Identity Association found',
          lastTransitionTime: ago(sinceMs),
        },
        { type: 'Ready', status: 'False', reason: 'NotVerified' },
      ]);
    expect(associationFindings(view({ associations: [failing(5_000)] }))).toEqual([
      {
        level: 'warning',
        object: 'podidentityassociation team-a/up',
        text: 'not Ready yet: Verified=False ExchangeFailed: ResourceNotFoundException: No Pod Identity Association found',
      },
    ]);
    expect(associationFindings(view({ associations: [failing(120_000)] }))).toEqual([
      {
        level: 'error',
        object: 'podidentityassociation team-a/up',
        text: 'not Ready: Verified=False ExchangeFailed: ResourceNotFoundException: No Pod Identity Association found',
        fix: expect.stringContaining('kubectl get lpia'),
      },
    ]);
  });
  it('Ready=Unknown (verifying) is a warning; Ready=True is clean', () => {
    expect(
      associationFindings(
        view({
          associations: [
            lpia([
              { type: 'Synced', status: 'True', reason: 'InSync' },
              { type: 'Verified', status: 'Unknown', reason: 'Verifying' },
              { type: 'Ready', status: 'Unknown', reason: 'Verifying' },
            ]),
            lpia([{ type: 'Ready', status: 'True', reason: 'Ready' }]),
          ],
        }),
      ),
    ).toEqual([
      {
        level: 'warning',
        object: 'podidentityassociation team-a/up',
        text: 'not Ready yet: Verified=Unknown Verifying',
      },
    ]);
  });
});

describe('staticKeyFindings', () => {
  const keys = [
    { name: 'AWS_ACCESS_KEY_ID', value: 'AKIAIOSFODNN7EXAMPLE' },
    { name: 'AWS_SECRET_ACCESS_KEY', valueFrom: { secretKeyRef: { name: 'aws', key: 'secret' } } },
  ];
  it('names container, variables and where they come from, never the values; a warning without another identity', () => {
    const f = staticKeyFindings(view({ pods: [pod('k', { env: keys })] }));
    expect(f).toEqual([
      {
        level: 'warning',
        object: 'pod team-a/k',
        text: 'container "app" sets AWS_ACCESS_KEY_ID (a literal value) and AWS_SECRET_ACCESS_KEY (from Secret "aws" key "secret"): static AWS keys, which are no identity obtained through the cluster',
        fix: 'remove the static keys and give ServiceAccount "team-a/uploader" a role (eks.amazonaws.com/role-arn annotation or a PodIdentityAssociation)',
      },
    ]);
    expect(JSON.stringify(f)).not.toContain('AKIAIOSFODNN7EXAMPLE');
  });
  it("an error when the keys shadow the Pod's own identity through the cluster", () => {
    const wi = {
      volumes: [
        {
          name: 'aws-iam-token',
          projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', path: 'token' } }] },
        },
      ],
      containers: [
        {
          name: 'app',
          env: [
            ...keys,
            { name: 'AWS_ROLE_ARN', value: 'arn:aws:iam::111122223333:role/x' },
            {
              name: 'AWS_WEB_IDENTITY_TOKEN_FILE',
              value: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
            },
          ],
          volumeMounts: [
            { name: 'aws-iam-token', mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount' },
          ],
        },
      ],
    };
    expect(staticKeyFindings(view({ pods: [pod('k', { spec: wi })] }))[0]).toMatchObject({
      level: 'error',
      text: expect.stringContaining(
        "the SDK credential chain uses them before the Pod's WebIdentity identity, which is never used",
      ),
    });
  });
  it('ignores Pods that ended and containers without the keys', () => {
    expect(
      staticKeyFindings(
        view({
          pods: [
            pod('done', { env: keys, phase: 'Succeeded' }),
            pod('clean', { env: [{ name: 'AWS_REGION', value: 'x' }] }),
          ],
        }),
      ),
    ).toEqual([]);
  });
});

describe("gate notes from the verifier's Events", () => {
  const ev = (over: object) => ({
    type: 'Warning',
    reason: 'IdentityNotVerified',
    reportingComponent: 'lanyard.dev/verifier',
    message: 'm1',
    involvedObject: { kind: 'Pod', name: 'a', uid: 'u' },
    eventTime: '2026-12-03T11:00:00.000000Z',
    ...over,
  });
  it('keeps the latest Warning per Pod, series included, and ignores other Events', () => {
    const notes = latestGateNotes(
      [
        ev({}),
        ev({ message: 'm2', series: { count: 3, lastObservedTime: '2026-12-03T11:05:00.000000Z' } }),
        ev({ message: 'm3', eventTime: '2026-12-03T11:02:00.000000Z' }),
        ev({
          type: 'Normal',
          reason: 'IdentityVerified',
          message: 'ok',
          eventTime: '2026-12-03T11:09:00.000000Z',
        }),
        ev({ reportingComponent: 'someone-else', message: 'x', eventTime: '2026-12-03T11:10:00.000000Z' }),
      ].map(gateNoteOf),
    );
    expect(notes.get('u')?.note).toBe('m2');
  });
  it('keeps only the error of IdentityVerificationFailed, whose preamble says what the annotation says already', () => {
    expect(
      gateNoteOf(
        ev({
          reason: 'IdentityVerificationFailed',
          message: 'identity not verified within 300s; last error: AccessDenied: no',
        }),
      )?.note,
    ).toBe('AccessDenied: no');
  });
  it('hints a fix for each row of the troubleshooting table, and none for an unknown cause', () => {
    expect(gateFixHint('ContainerCredentials exchange … failed: ResourceNotFoundException: …')).toContain(
      'kubectl get lpia',
    );
    expect(gateFixHint('InvalidIdentityToken: No OpenIDConnect provider found')).toContain('OIDC provider');
    expect(gateFixHint('PolicyDenied: lanyard: no IdentityPolicy allows …')).toContain('IdentityPolicy');
    expect(gateFixHint('WebIdentity exchange returned another role: expected a, actual b')).toContain(
      'another role',
    );
    expect(gateFixHint('something new')).toBeUndefined();
  });
});

describe('reconcilerFindings (docs/identities.md)', () => {
  const row = (state: string, workload?: string) =>
    ({
      state,
      source: 'service_account',
      role: '',
      message: `why ${state}`,
      namespace: 'team-a',
      pod: `p-${state}`,
      serviceAccount: 'uploader',
      creationTimestamp: ago(60_000),
      ...(workload ? { workload } : {}),
    }) as unknown as IdentityView['identities'][number];
  it('missing, stale and denied are errors, unverified a warning, ok and verifying are clean; a workload gets a restart fix', () => {
    expect(
      reconcilerFindings(
        view({
          identities: ['ok', 'verifying', 'missing', 'stale', 'denied', 'unverified'].map((s) =>
            row(s, s === 'missing' ? 'deployment/web' : undefined),
          ),
        }),
      ),
    ).toEqual([
      {
        level: 'error',
        object: 'pod team-a/p-missing',
        text: 'identity missing (deployment/web): why missing',
        fix: 'kubectl rollout restart deployment/web -n team-a, or annotate it lanyard.dev/identity-repair=restart; lanyard get identities -n team-a lists its Pods',
      },
      {
        level: 'error',
        object: 'pod team-a/p-stale',
        text: 'identity stale: why stale',
        fix: 'recreate the Pod',
      },
      { level: 'error', object: 'pod team-a/p-denied', text: 'identity denied: why denied' },
      { level: 'warning', object: 'pod team-a/p-unverified', text: 'identity unverified: why unverified' },
    ]);
  });
  it("leaves out Pods at the gate, which gatedPodFindings reports with the verifier's reason", () => {
    expect(
      reconcilerFindings(
        view({ identities: [row('unverified')], pods: [{ ...pod('p-unverified', { gated: true }) }] }),
      ),
    ).toEqual([]);
  });
});
