// The verifier (docs/verified-start.md): watches unbound Pods holding the `lanyard.dev/identity` gate, groups them by
// identity, proves each identity with one real exchange (a Pod-bound token from TokenRequest, then STS or eks-auth),
// records the verified set, and only then removes the gate. Nothing lives only in memory: after a restart or a leader
// change everything is re-derived from the shared cache.
//
// One pass is `reconcileIdentity(ctx, key)`: gather (verifier-gather.ts: the views and what they resolve to), decide
// (verifier-decide.ts: pure), apply (verifier-apply.ts: the requests). This file is the chain and the wiring.
import { decideOutageRelease, type FailureKind } from './outage.ts';
import { sameIdentity } from './verified-identity.ts';
import type { ReleaseAnnotation } from './pod.ts';
import { roleArnFromAssumed } from '../aws/index.ts';
import type { ControllerConfig, PodIdentitySourceConfig } from '../config/controller.ts';
import { objectKey } from '../kube/informer.ts';
import { sharedOrOwnCache, type InformerFactory } from '../kube/cache.ts';
import { eventRecorderOf, type EventRecorder } from '../kube/events.ts';
import { WorkQueue, runControllerLoop, type ReconcileResult } from '../runtime/workqueue.ts';
import { podIdentitySettings } from '../config/controller.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import type { AwsClients } from '../aws/index.ts';
import type { AssociationIndex } from '../associations/lookup.ts';
import type { RecordVerification } from '../associations/index.ts';
import type { AssociationIdentity } from '../identity/sources.ts';
import type { CredentialOptions } from '../identity/pod-credentials.ts';
import { TokenBucket } from './rate.ts';
import type { GatedPod } from './pod.ts';
import { buildVerifiedIdentity, verifiedIdentityName } from './verified-identity.ts';
import {
  PER_POD,
  VerifierSources,
  keysOf,
  parseGroupKey,
  podKey,
  type CurrentIdentity,
  type IdentityGroup,
  type ViewEvents,
} from './verifier-gather.ts';
import {
  associationResult,
  judgeExchange,
  planFailure,
  staleVerifiedEntry,
  verifiedSetHit,
  type FailureOutcome,
  type GroupFailures,
} from './verifier-decide.ts';
import {
  deleteVerifiedIdentity,
  exchangeToken,
  markFailed,
  podRef,
  releasePod,
  requestPodToken,
  upsertVerifiedIdentity,
  writePolicyStatus,
} from './verifier-apply.ts';
import {
  MODE_LABEL,
  podModeLabel,
  refreshGauges,
  verifierMetrics,
  type VerifierMetrics,
} from './verifier-metrics.ts';

export { groupKey } from './verifier-gather.ts';

/** The controller settings the verifier reads (identity-source ones too, so fingerprints match the webhook's). */
export type VerifierConfig = Pick<
  ControllerConfig,
  | 'clusterName'
  | 'verifyBackoffInitialMs'
  | 'verifyBackoffMaxMs'
  | 'verifyQps'
  | 'verifyBurst'
  | 'verifyDeadlineMs'
  | 'verifyRetryAfterDeadlineMs'
  | 'verifiedTtlMs'
  | 'verifyWorkers'
  | 'verifyOutagePolicy'
  | 'verifyOutageGraceMs'
> &
  PodIdentitySourceConfig;

export interface VerifierDeps extends Deps {
  aws: Pick<AwsClients, 'sts' | 'eksAuth'>;
  /** The association index (shared with the association controller in one process). */
  associations: AssociationIndex;
  /** The association controller's sink for ContainerCredentials outcomes (docs/associations.md, "Verification"). */
  recordVerification?: RecordVerification;
  events?: EventRecorder;
}

export interface Verifier extends Running {
  synced(): boolean;
  waitForSync(timeoutMs: number): Promise<boolean>;
}

const SWEEP_MS = 60_000;
const RELEASE_CONCURRENCY = 16;

/** What the verifier remembers between passes (all of it re-derivable: a restart only repeats exchanges). */
class VerifierMemory {
  private readonly failures = new Map<string, GroupFailures>();
  /**
   * Identities this process proved, for Pods that declare several (released once all are proven). An identity whose
   * role only the exchange names keeps that role, so the release can check it against the policies again.
   */
  private readonly proven = new Map<string, { at: number; learntRole?: string; outageNote?: string }>();

  constructor(private readonly ttlMs: number) {}

  groupFailures(k: string): GroupFailures {
    let st = this.failures.get(k);
    if (!st) this.failures.set(k, (st = { failures: 0, notified: new Map() }));
    return st;
  }
  /** `outageNote`: the identity was released on an earlier proof (docs/adr/0309); the note says so on each Pod. */
  succeeded(k: string, now: number, learntRole?: string, outageNote?: string): void {
    this.failures.delete(k);
    this.proven.set(k, { at: now, learntRole, outageNote });
  }
  /** The outage note of a freshly "proven" identity that was only released on an earlier proof, if it was. */
  outageNote(k: string, now: number): string | undefined {
    return this.freshlyProven(k, now) ? this.proven.get(k)?.outageNote : undefined;
  }
  freshlyProven(k: string, now: number): boolean {
    return (this.proven.get(k)?.at ?? -Infinity) > now - this.ttlMs;
  }
  learntRole(k: string): string | undefined {
    return this.proven.get(k)?.learntRole;
  }
  forget(k: string): void {
    this.failures.delete(k);
    this.proven.delete(k);
  }
  pruneProven(now: number): void {
    for (const k of [...this.proven.keys()]) if (!this.freshlyProven(k, now)) this.proven.delete(k);
  }
}

/** Everything a pass reads and writes. */
export interface VerifierContext {
  deps: VerifierDeps;
  cfg: VerifierConfig;
  sources: VerifierSources;
  memory: VerifierMemory;
  queue: WorkQueue;
  limiter: TokenBucket;
  events: EventRecorder;
  metrics: VerifierMetrics;
  credentials: CredentialOptions;
  stopping: AbortSignal;
}

/** One attempt's subject: the group, its current identity and its gated Pods. */
interface Attempt {
  key: string;
  group: IdentityGroup;
  current: CurrentIdentity;
  pods: GatedPod[];
}

/** One pass for one queue key: a group of Pods sharing an identity, or one Pod that declares none. */
export async function reconcileIdentity(ctx: VerifierContext, key: string): Promise<ReconcileResult> {
  if (key.startsWith(PER_POD)) return reconcileUndeclared(ctx, key);
  const pods = ctx.sources.gatedPodsOf(key);
  if (pods.length === 0) {
    ctx.memory.forget(key);
    return;
  }
  const group = parseGroupKey(key);
  const a: Attempt = { key, group, current: ctx.sources.currentIdentity(group), pods };
  // 1. Policy on the declared roles.
  const before = ctx.sources.groupPolicy(group, a.current);
  if (!before.allowed) return fail(ctx, a, 'policy_denied', `PolicyDenied: ${before.message}`);
  // 2. Verified set: a fresh entry with the current fingerprint releases without an exchange.
  const cached = await releaseFromVerifiedSet(ctx, a);
  if (cached) return cached.result;
  // 3-6. Token for the group's oldest gated Pod, exchange, comparison.
  const proof = await prove(ctx, a);
  if ('done' in proof) return proof.done;
  // 7. Record, re-check, release.
  return recordAndRelease(ctx, a, proof);
}

async function releaseFromVerifiedSet(
  ctx: VerifierContext,
  a: Attempt,
): Promise<{ result: ReconcileResult } | undefined> {
  const { group: g, current: cur } = a;
  const vi = ctx.sources.verified.get(`${g.namespace}/${verifiedIdentityName(cur.key)}`);
  const hit = verifiedSetHit(vi, cur, ctx.deps.clock.now());
  if (!hit) return undefined;
  if (hit.learntRole) {
    const d = ctx.sources.groupPolicy(g, cur, hit.learntRole);
    if (!d.allowed) return { result: await fail(ctx, a, 'policy_denied', `PolicyDenied: ${d.message}`) };
  }
  ctx.metrics.outcomes.inc({ mode: MODE_LABEL[g.mode], result: 'cached' });
  await releaseAll(
    ctx,
    a,
    `${g.mode} identity verified earlier (VerifiedIdentity ${hit.name}, ${vi!.spec!.assumedRoleARN})`,
    hit.learntRole,
  );
  return { result: undefined };
}

type Proof = { pod: GatedPod; actual: string; learntRole?: string } | { done: ReconcileResult };

/**
 * The outage policy (docs/adr/0309): only while AWS is unavailable, never on its "no", and only on a proof of this
 * identity, with unchanged sources, within the grace window; the IdentityPolicy is checked as for any release.
 * Returns undefined when the Pods stay held.
 */
async function releaseDuringOutage(
  ctx: VerifierContext,
  a: Attempt,
  failure: FailureKind | undefined,
  error: string,
): Promise<{ result: ReconcileResult } | undefined> {
  const { group: g, current: cur } = a;
  const name = verifiedIdentityName(cur.key);
  const vi = ctx.sources.verified.get(`${g.namespace}/${name}`);
  const decision = decideOutageRelease({
    policy: ctx.cfg.verifyOutagePolicy,
    graceMs: ctx.cfg.verifyOutageGraceMs,
    nowMs: ctx.deps.clock.now(),
    failure,
    fingerprint: cur.fingerprint,
    lastProof: vi?.spec?.fingerprint
      ? { fingerprint: String(vi.spec.fingerprint), verifiedAtMs: Date.parse(vi.spec.verifiedAt) }
      : undefined,
  });
  if (!decision.release || !sameIdentity(vi, cur.key)) return undefined;
  const expected = cur.key.targetRoleARN || cur.key.roleARN;
  const learnt = expected ? undefined : roleArnFromAssumed(String(vi!.spec!.assumedRoleARN));
  if (learnt) {
    const d = ctx.sources.groupPolicy(g, cur, learnt);
    if (!d.allowed) return { result: await fail(ctx, a, 'policy_denied', `PolicyDenied: ${d.message}`) };
  }
  ctx.metrics.outcomes.inc({ mode: MODE_LABEL[g.mode], result: 'aws_error' });
  const ago = Math.round(decision.provenAgoMs / 1000);
  ctx.deps.log.warn(
    { identity: a.key, error, provenAgoS: ago },
    'AWS unavailable: released on an earlier proof',
  );
  const detail = error.replace(/^.* failed: /, '');
  await releaseAll(
    ctx,
    a,
    `${g.mode} exchange for role ${expected ?? '<unknown>'} failed (${detail}); released by ` +
      `--verify-outage-policy=${ctx.cfg.verifyOutagePolicy}: this identity was proven ${ago}s ago (VerifiedIdentity ${name}, ` +
      `${vi!.spec!.assumedRoleARN}) and its sources are unchanged`,
    learnt,
    true,
  );
  return { result: undefined };
}

/** A Pod-bound token, the exchange, and the judgement of its answer. */
async function prove(ctx: VerifierContext, a: Attempt): Promise<Proof> {
  const { group: g, current: cur } = a;
  await ctx.limiter.take(ctx.stopping);
  if (ctx.stopping.aborted) return { done: undefined };
  const pod = a.pods.reduce((x, y) =>
    (y.creationMs - x.creationMs || y.name.localeCompare(x.name)) < 0 ? y : x,
  );
  const minted = await requestPodToken(ctx.deps.kube, g, pod);
  if ('error' in minted) return { done: await fail(ctx, a, 'token_error', minted.error) };
  const expected = cur.key.targetRoleARN || cur.key.roleARN;
  const started = performance.now();
  const exchanged = await exchangeToken(
    ctx.deps.aws,
    ctx.cfg.clusterName,
    g,
    pod,
    minted.token,
    expected ?? '<unknown>',
  );
  // The token is not kept past its one use.
  minted.token = '';
  ctx.metrics.exchangeSeconds.observe({ mode: MODE_LABEL[g.mode] }, (performance.now() - started) / 1000);
  if ('error' in exchanged) {
    const released = await releaseDuringOutage(ctx, a, exchanged.failure, exchanged.error);
    if (released) return { done: released.result };
    return { done: await fail(ctx, a, 'aws_error', exchanged.error, exchanged.throttled) };
  }
  const judged = judgeExchange(g, cur, exchanged.answer);
  if (!judged.ok) return { done: await fail(ctx, a, 'mismatch', judged.message) };
  return { pod, actual: exchanged.answer.assumedRoleArn, learntRole: judged.learntRole };
}

/**
 * Records the verified entry, re-checks the sources and the policies (a policy may have landed while the exchange was
 * in flight: step 1 judged an older view), releases; the release checks once more per Pod right before its patch.
 */
async function recordAndRelease(
  ctx: VerifierContext,
  a: Attempt,
  proof: { pod: GatedPod; actual: string; learntRole?: string },
): Promise<ReconcileResult> {
  const { group: g, current: cur } = a;
  if (cur.fingerprint) {
    const obj = buildVerifiedIdentity({
      namespace: g.namespace,
      id: cur.key,
      fingerprint: cur.fingerprint,
      assumedRoleARN: proof.actual,
      verifiedAtMs: ctx.deps.clock.now(),
      ttlMs: ctx.cfg.verifiedTtlMs,
      podName: proof.pod.name,
    });
    await upsertVerifiedIdentity(ctx.deps.kube, ctx.sources.verified, obj);
    if (ctx.sources.currentIdentity(g).fingerprint !== cur.fingerprint) {
      ctx.deps.log.info({ identity: a.key }, 'identity sources changed during verification; retrying');
      return { requeueAfterMs: 0 };
    }
  }
  const after = ctx.sources.groupPolicy(g, cur, proof.learntRole);
  if (!after.allowed) return fail(ctx, a, 'policy_denied', `PolicyDenied: ${after.message}`);
  ctx.metrics.outcomes.inc({ mode: MODE_LABEL[g.mode], result: 'verified' });
  const expected = cur.key.targetRoleARN || cur.key.roleARN;
  await releaseAll(
    ctx,
    a,
    `${g.mode} exchange for role ${expected ?? '(from the answer)'} returned ${proof.actual}`,
    proof.learntRole,
  );
  // Reported after the release: the association controller deletes a probe Pod on success.
  if (cur.association)
    report(
      ctx,
      cur.association,
      'CredentialsMatch',
      `exchange returned ${proof.actual}`,
      proof.pod,
      proof.actual,
    );
}

/** A failed attempt: Events (once a minute per text), the `failed` mark past the deadline, reports, the retry delay. */
async function fail(
  ctx: VerifierContext,
  a: Attempt,
  outcome: FailureOutcome,
  message: string,
  throttled = false,
): Promise<{ requeueAfterMs: number }> {
  const { group: g, current: cur } = a;
  ctx.metrics.outcomes.inc({ mode: MODE_LABEL[g.mode], result: outcome });
  const st = ctx.memory.groupFailures(a.key);
  st.failures += 1;
  const plan = planFailure({
    st,
    pods: a.pods,
    outcome,
    message,
    throttled,
    now: ctx.deps.clock.now(),
    settings: ctx.cfg,
    random: Math.random,
    podKey,
  });
  for (const p of plan.notify) ctx.events.warning(podRef(p), 'IdentityNotVerified', message, 'Verify');
  for (const p of plan.timedOut) {
    await markFailed(ctx.deps.kube, p);
    ctx.events.warning(
      podRef(p),
      'IdentityVerificationFailed',
      `identity not verified within ${Math.round(ctx.cfg.verifyDeadlineMs / 1000)}s; last error: ${message}`,
      'Verify',
    );
    if (cur.association) report(ctx, cur.association, 'VerificationTimeout', message, p);
  }
  const result = associationResult(outcome);
  if (cur.association && result) report(ctx, cur.association, result, message, a.pods[0]);
  if (st.failures === 1)
    ctx.deps.log.info({ identity: a.key, outcome, message: plan.gist }, 'identity not verified; retrying');
  else ctx.deps.log.debug({ identity: a.key, outcome, failures: st.failures }, 'identity not verified');
  return { requeueAfterMs: plan.requeueAfterMs };
}

function report(
  ctx: VerifierContext,
  association: AssociationIdentity,
  result: 'CredentialsMatch' | 'RoleMismatch' | 'ExchangeFailed' | 'VerificationTimeout',
  message: string,
  p?: GatedPod,
  assumedRoleARN?: string,
): void {
  try {
    ctx.deps.recordVerification?.({
      association,
      result,
      message,
      assumedRoleARN,
      pod: p ? { namespace: p.namespace, name: p.name } : undefined,
      at: new Date(ctx.deps.clock.now()),
    });
  } catch (e) {
    ctx.deps.log.warn({ err: e }, 'association verification report failed');
  }
}

/**
 * The identities that keep a Pod gated now: each one it declares must be proven and allowed by the policies in force
 * (docs/verified-start.md, "Release"). Judged on the given view of the Pod, right before its patch.
 */
function releaseBlockers(ctx: VerifierContext, p: GatedPod): string[] {
  if (p.declared.length === 0) return p.problem ? [PER_POD + podKey(p)] : [];
  const now = ctx.deps.clock.now();
  return keysOf(p).filter((k) => {
    if (!ctx.memory.freshlyProven(k, now)) return true;
    const g = parseGroupKey(k);
    return !ctx.sources.groupPolicy(g, ctx.sources.currentIdentity(g), ctx.memory.learntRole(k)).allowed;
  });
}

function releaseOne(
  ctx: VerifierContext,
  p: GatedPod,
  annotate: boolean,
  value?: ReleaseAnnotation,
): Promise<boolean> {
  return releasePod({
    kube: ctx.deps.kube,
    pods: ctx.sources.pods,
    credentials: ctx.credentials,
    pod: p,
    annotate,
    value,
    blockers: (view) => releaseBlockers(ctx, view),
    onBlocked: (keys) => {
      for (const k of keys) ctx.queue.add(k);
    },
  });
}

/** The group is proven: release each of its Pods whose other identities are proven too. */
async function releaseAll(
  ctx: VerifierContext,
  a: Attempt,
  note: string,
  learntRole?: string,
  outage = false,
): Promise<void> {
  const now = ctx.deps.clock.now();
  ctx.memory.succeeded(a.key, now, learntRole, outage ? note : undefined);
  const ready: GatedPod[] = [];
  for (const p of a.pods) {
    // A Pod declaring several identities waits until each of them is proven.
    const pending = keysOf(p).filter((o) => o !== a.key && !ctx.memory.freshlyProven(o, now));
    if (pending.length > 0) for (const o of pending) ctx.queue.add(o);
    else ready.push(p);
  }
  // Patches of one group go out in parallel (bounded), so a 200-Pod Deployment is released in a few round trips.
  for (let i = 0; i < ready.length; i += RELEASE_CONCURRENCY) {
    await Promise.all(
      ready.slice(i, i + RELEASE_CONCURRENCY).map(async (p) => {
        // A Pod with several identities rests on an old proof if any of them was released that way, whichever
        // identity is decided last (docs/adr/0309: every Pod released so is marked).
        const onOldProof = outage
          ? note
          : keysOf(p)
              .map((o) => ctx.memory.outageNote(o, now))
              .find((n) => n !== undefined);
        if (await releaseOne(ctx, p, true, onOldProof ? 'released-during-outage' : 'verified')) {
          ctx.metrics.gatedSeconds.observe(
            { mode: podModeLabel(p), result: 'released' },
            Math.max(0, ctx.deps.clock.now() - p.creationMs) / 1000,
          );
          if (!onOldProof) ctx.events.normal(podRef(p), 'IdentityVerified', note, 'Release');
          else {
            // Marked three ways (docs/verified-start.md, "When AWS is down"): this annotation, a Warning, a metric.
            ctx.metrics.outageReleases.inc({ mode: podModeLabel(p) });
            ctx.events.warning(podRef(p), 'IdentityReleasedDuringOutage', onOldProof, 'Release');
          }
        }
      }),
    );
  }
}

/** A Pod that declares no identity is released without an exchange; one whose declaration cannot be read never is. */
async function reconcileUndeclared(ctx: VerifierContext, key: string): Promise<void> {
  const p = ctx.sources.pods.get(key.slice(PER_POD.length));
  if (!p || p.gateIndex < 0 || p.deleting || p.declared.length > 0) return;
  if (p.problem) {
    const st = ctx.memory.groupFailures(key);
    const last = st.notified.get(key);
    if (!last || last.text !== p.problem) {
      st.notified.set(key, { text: p.problem, at: ctx.deps.clock.now() });
      ctx.events.warning(
        podRef(p),
        'IdentityNotVerified',
        `cannot read the Pod's identity: ${p.problem}`,
        'Verify',
      );
    }
    return;
  }
  if (await releaseOne(ctx, p, false)) {
    ctx.metrics.gatedSeconds.observe(
      { mode: 'none', result: 'released' },
      Math.max(0, ctx.deps.clock.now() - p.creationMs) / 1000,
    );
    ctx.events.normal(podRef(p), 'NoIdentity', 'the Pod declares no AWS identity; gate removed', 'Release');
  }
}

/** Verified set upkeep: expired entries, and entries whose sources changed (of one pair, or all). */
async function collectStale(
  ctx: VerifierContext,
  namespace?: string,
  serviceAccount?: string,
): Promise<void> {
  if (!ctx.sources.verified.synced || ctx.stopping.aborted) return;
  const now = ctx.deps.clock.now();
  for (const key of ctx.sources.verifiedEntries(namespace, serviceAccount).map(objectKey)) {
    const vi = ctx.sources.verified.get(key);
    if (!vi) continue;
    const why = staleVerifiedEntry(
      vi,
      now,
      (g) => ctx.sources.currentIdentity(g),
      ctx.cfg.verifyOutagePolicy === 'hold' ? 0 : ctx.cfg.verifyOutageGraceMs,
    );
    if (why) await deleteVerifiedIdentity(ctx.deps.kube, ctx.deps.log, vi, why);
  }
}

/** IdentityPolicy status (`Accepted`), from the same compiled policies the decisions use. */
async function reconcilePolicyStatus(ctx: VerifierContext, name: string): Promise<void> {
  const p = ctx.sources.compiledPolicy(name);
  if (p)
    await writePolicyStatus(
      ctx.deps.kube,
      ctx.deps.log,
      p.object,
      p.compiled,
      new Date(ctx.deps.clock.now()),
    );
}

/** What the views' changes enqueue. */
function viewEvents(ctx: () => VerifierContext, policyStatusQueue: WorkQueue): ViewEvents {
  const enqueuePair = (ns: string, sa?: string) => {
    for (const k of ctx().sources.groupKeys()) {
      if (k.startsWith(PER_POD)) continue;
      const g = parseGroupKey(k);
      if (g.namespace === ns && (sa === undefined || g.serviceAccount === sa)) ctx().queue.add(k);
    }
  };
  return {
    enqueue: (k) => ctx().queue.add(k),
    enqueueAll: () => {
      for (const k of ctx().sources.groupKeys()) ctx().queue.add(k);
    },
    enqueuePair,
    sourceChanged: (ns, sa) => {
      enqueuePair(ns, sa);
      void collectStale(ctx(), ns, sa);
    },
    configMapChanged: () => {
      for (const k of ctx().sources.groupKeys()) ctx().queue.add(k);
      void collectStale(ctx());
    },
    policyChanged: (name) => policyStatusQueue.add(name),
    podGone: (p) => {
      if (p.gateIndex >= 0) {
        ctx().metrics.gatedSeconds.observe(
          { mode: podModeLabel(p), result: 'deleted' },
          Math.max(0, ctx().deps.clock.now() - p.creationMs) / 1000,
        );
      }
    },
  };
}

export async function startVerifier(deps: VerifierDeps, cfg: VerifierConfig): Promise<Verifier> {
  const { cache, release: releaseCache } = sharedOrOwnCache(deps, (sel, e) =>
    deps.log.warn({ err: e }, `watch of ${sel.path} failed; retrying`),
  );
  const stopping = new AbortController();
  const policyStatusQueue = new WorkQueue();
  const { ctx, on } = verifierContext(deps, cfg, cache, policyStatusQueue, stopping.signal);
  const { sources, queue } = ctx;
  const unsubscribe = followAssociations(deps.associations, on);
  const gaugeTimer = setInterval(
    () => refreshGauges(ctx.metrics, sources.pods.values(), sources.verified.values(), deps.clock.now()),
    1000,
  );
  gaugeTimer.unref?.();
  // The sources are listed before any pass runs: a Pod is never judged against an empty cache.
  const sourcesSynced = async (ms: number) =>
    (await Promise.all(sources.sourceViews().map((v) => v.waitForSync(ms)))).every(Boolean) &&
    (await deps.associations.waitForSync(ms));
  await sourcesSynced(60_000);
  const loops = startLoops(ctx, policyStatusQueue);
  const sweep = startSweep(ctx);
  return {
    synced: () => [sources.pods, ...sources.sourceViews()].every((v) => v.synced),
    waitForSync: async (ms) => (await sourcesSynced(ms)) && (await sources.pods.waitForSync(ms)),
    async stop() {
      stopping.abort();
      clearInterval(sweep);
      clearInterval(gaugeTimer);
      unsubscribe();
      queue.shutdown();
      policyStatusQueue.shutdown();
      sources.close();
      releaseCache();
      await loops;
    },
  };
}

/** The verifier's views and the context every pass reads. */
function verifierContext(
  deps: VerifierDeps,
  cfg: VerifierConfig,
  cache: InformerFactory,
  policyStatusQueue: WorkQueue,
  stopping: AbortSignal,
): { ctx: VerifierContext; on: ViewEvents } {
  const { log, clock } = deps;
  const { flags, credentials } = podIdentitySettings(cfg);
  // The views' events need the context and the context needs the views: the events read `ctx` through a closure,
  // and no event is delivered before `ctx` below is initialized (the views only call back from watch events).
  const on = viewEvents(() => ctx, policyStatusQueue);
  const sources = new VerifierSources(
    cache,
    deps.associations,
    {
      namespace: cfg.namespace,
      annotationPrefix: cfg.annotationPrefix,
      watchConfigMap: cfg.watchConfigMap,
      credentials,
      flags,
    },
    on,
    log,
  );
  const ctx: VerifierContext = {
    deps,
    cfg,
    sources,
    queue: new WorkQueue(),
    credentials,
    stopping,
    memory: new VerifierMemory(cfg.verifiedTtlMs),
    limiter: new TokenBucket(cfg.verifyQps, cfg.verifyBurst, clock),
    events: eventRecorderOf(deps, 'lanyard.dev/verifier'),
    metrics: verifierMetrics(deps.metrics),
  };
  return { ctx, on };
}

/** An association change requeues the Pods of its pair; an update usually keeps the pair, so once, not twice. */
function followAssociations(associations: VerifierDeps['associations'], on: ViewEvents): () => void {
  return associations.subscribe((c) => {
    const pairs = new Set(
      [c.before, c.after].filter((r) => !!r).map((r) => `${r.namespace}/${r.serviceAccount}`),
    );
    for (const pair of pairs) {
      const [ns, sa] = pair.split('/');
      if (ns && sa) on.sourceChanged(ns, sa);
    }
  });
}

/** The verification loop and the IdentityPolicy status loop (every policy queued once at start). */
function startLoops(ctx: VerifierContext, policyStatusQueue: WorkQueue): Promise<unknown> {
  const { deps, cfg, sources, queue } = ctx;
  const { log } = deps;
  const loops = runControllerLoop({
    name: 'verifier',
    queue,
    workers: cfg.verifyWorkers,
    metrics: deps.metrics,
    reconcile: (k) => reconcileIdentity(ctx, k),
    onError: (key, e, retry) =>
      log.warn({ identity: key, err: e, retryInMs: retry }, 'verification attempt failed'),
  });
  const policyLoop = runControllerLoop({
    name: 'identitypolicy-status',
    queue: policyStatusQueue,
    workers: 1,
    metrics: deps.metrics,
    reconcile: (name) => reconcilePolicyStatus(ctx, name),
    onError: (key, e) => log.warn({ policy: key, err: e }, 'IdentityPolicy status write failed'),
  });
  for (const o of sources.policies.values()) policyStatusQueue.add(o.metadata!.name!);
  return Promise.all([loops, policyLoop]);
}

/** Every SWEEP_MS: stale VerifiedIdentities collected, old proofs forgotten, every group requeued. */
function startSweep(ctx: VerifierContext): NodeJS.Timeout {
  const sweep = setInterval(() => {
    void collectStale(ctx);
    ctx.memory.pruneProven(ctx.deps.clock.now());
    // Retries after the deadline continue even if a requeue was lost (a defensive floor).
    for (const k of ctx.sources.groupKeys()) ctx.queue.addAfter(k, 0);
  }, SWEEP_MS);
  sweep.unref?.();
  return sweep;
}
