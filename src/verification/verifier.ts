// The verifier (verification.md §9): watches unbound Pods holding the `lanyard.dev/identity` gate, groups them by
// identity, proves each identity with one real exchange (a Pod-bound token from TokenRequest, then STS or
// eks-auth), records the verified set, and only then removes the gate. Nothing lives only in memory: after a restart
// or a leader change everything is re-derived from the informers.
import { KOPS_CONFIGMAP_NAME } from '../webhook/config-sources.ts';
import type { ControllerConfig } from '../config/controller.ts';
import type { Registry } from 'prom-client';
import type { Json } from '../kube/client.ts';
import { KubeApiError, isAlreadyExists, isNotFound } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import { createEventRecorder, type EventRecorder } from '../kube/events.ts';
import { setCondition, conditionUnchanged } from '../kube/conditions.ts';
import { WorkQueue, runControllerLoop } from '../runtime/workqueue.ts';
import { counter, gauge, histogram } from '../runtime/metrics.ts';
import { WEBHOOK_DEFAULTS } from '../config/webhook.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import type { AwsClients } from '../aws/index.ts';
import { isAwsError, isThrottling, roleArnFromAssumed, roleArnMatches } from '../aws/index.ts';
import type { AssociationIndex } from '../associations/lookup.ts';
import type { RecordVerification } from '../associations/index.ts';
import type { AssociationIdentity, FingerprintInput, IdentityMode } from '../identity/sources.ts';
import { parseServiceAccount, type SaSettings } from '../identity/annotations.ts';
import { EMPTY_TABLE, parseConfigMapDocument, type ConfigMapTable } from '../identity/configmap.ts';
import { resolveIdentity, type InjectionFlags } from '../identity/resolve.ts';
import { PolicyCompiler, acceptedCondition, decidePolicy, type PolicyDecision, type PolicySet } from './policy.ts';
import { TokenBucket } from './rate.ts';
import { annotationOp, releasePatch, toGatedPod, verifyBackoffMs, type GatedPod } from './pod.ts';
import { credentialOptions } from '../identity/pod-credentials.ts';
import {
  VI_API,
  buildVerifiedIdentity,
  fingerprintOf,
  verifiedEntryTrusted,
  verifiedIdentityName,
  type IdentityKey,
} from './verified-identity.ts';
import { namespaceLabels } from './admission-guard.ts';

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
  | 'namespace'
  | 'annotationPrefix'
  | 'tokenAudience'
  | 'stsRegionalEndpoint'
  | 'watchConfigMap'
  | 'containerCredentialsAudience'
>;

export interface VerifierDeps extends Deps {
  aws: Pick<AwsClients, 'sts' | 'eksAuth'>;
  /** The association index (shared with the association controller in one process). */
  associations: AssociationIndex;
  /** The association controller's sink for ContainerCredentials outcomes (§10). */
  recordVerification?: RecordVerification;
  events?: EventRecorder;
}

export interface Verifier extends Running {
  synced(): boolean;
  waitForSync(timeoutMs: number): Promise<boolean>;
}

type Outcome = 'verified' | 'cached' | 'mismatch' | 'aws_error' | 'token_error' | 'policy_denied';
const MODE_LABEL: Record<IdentityMode, string> = { WebIdentity: 'web_identity', ContainerCredentials: 'container_credentials' };
const EVENT_REPEAT_MS = 60_000;
const SWEEP_MS = 60_000;
const TOKEN_SECONDS = 600;
const RELEASE_CONCURRENCY = 16;

/** The queue key of an identity: namespace, ServiceAccount, mode, declared role (web identity) and audience. */
export function groupKey(p: Pick<GatedPod, 'namespace' | 'serviceAccount'>, d: GatedPod['declared'][number]): string {
  return JSON.stringify([p.namespace, p.serviceAccount, d.mode, d.roleARN ?? '', d.audience]);
}
function parseGroupKey(k: string): { namespace: string; serviceAccount: string; mode: IdentityMode; roleARN: string; audience: string } {
  const [namespace, serviceAccount, mode, roleARN, audience] = JSON.parse(k) as [string, string, IdentityMode, string, string];
  return { namespace, serviceAccount, mode, roleARN, audience };
}
const podKey = (p: { namespace: string; name: string }) => `${p.namespace}/${p.name}`;
const PER_POD = 'pod:';

interface GroupState {
  failures: number;
  /** Last IdentityNotVerified per Pod: text and time, for the once-a-minute rule. */
  notified: Map<string, { text: string; at: number }>;
}

/** The identity as the sources say now, for one group. */
interface CurrentIdentity {
  key: IdentityKey;
  namespace: string;
  /** Undefined when the sources no longer give the Pod's declared identity: the exchange may still release it. */
  fingerprint?: string;
  association?: AssociationIdentity;
}

function metrics(registry: Registry) {
  return {
    gatedSeconds: histogram(registry, 'lanyard_verification_gated_seconds', 'Time from Pod creation to gate release or deletion.',
      [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800], ['mode', 'result']),
    outcomes: counter(registry, 'lanyard_verification_outcomes_total', 'Verification attempts by mode and result.', ['mode', 'result']),
    exchangeSeconds: histogram(registry, 'lanyard_verification_exchange_seconds', 'Latency of STS and eks-auth exchanges.',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], ['mode']),
    gatedPods: gauge(registry, 'lanyard_verification_gated_pods', 'Pods holding the identity gate now.', ['mode', 'state']),
    verifiedIdentities: gauge(registry, 'lanyard_verified_identities', 'Unexpired VerifiedIdentity objects.', ['mode']),
  };
}

export async function startVerifier(deps: VerifierDeps, cfg: VerifierConfig): Promise<Verifier> {
  const { kube, log, clock } = deps;
  const events = deps.events ?? createEventRecorder({ kube, reportingController: 'lanyard.dev/verifier', log, now: () => new Date(clock.now()) });
  const m = metrics(deps.metrics);
  const queue = new WorkQueue();
  const limiter = new TokenBucket(cfg.verifyQps, cfg.verifyBurst, clock);
  const stopping = new AbortController();
  const groups = new Map<string, Set<string>>();
  const state = new Map<string, GroupState>();
  const groupState = (k: string): GroupState => {
    let st = state.get(k);
    if (!st) state.set(k, (st = { failures: 0, notified: new Map() }));
    return st;
  };
  /**
   * Identities this process proved, for Pods that declare several (released once all are proven). An identity whose
   * role only the exchange names keeps that role, so the release can check it against the policies again.
   */
  const proven = new Map<string, { at: number; learntRole?: string }>();
  const freshlyProven = (k: string, now: number) => (proven.get(k)?.at ?? -Infinity) > now - cfg.verifiedTtlMs;
  const compiler = new PolicyCompiler();
  let policySet: PolicySet | undefined;
  let configMap: ConfigMapTable = EMPTY_TABLE;
  const onError = (what: string) => (e: unknown) => log.warn({ err: String(e) }, `watch of ${what} failed; retrying`);
  // Only the fingerprint of the resolution is used; the injection details (paths, URI) keep the webhook's defaults.
  const flags: InjectionFlags = {
    ...WEBHOOK_DEFAULTS,
    annotationPrefix: cfg.annotationPrefix,
    tokenAudience: cfg.tokenAudience,
    stsRegionalEndpoint: cfg.stsRegionalEndpoint,
    containerCredentialsAudience: cfg.containerCredentialsAudience,
  };

  // The audiences that make a mounted token an AWS credential (docs/security.md §3).
  const credentials = credentialOptions({ stsAudiences: [cfg.tokenAudience], podIdentityAudiences: [cfg.containerCredentialsAudience] });

  const enqueueAll = () => { for (const k of groups.keys()) queue.add(k); };
  const enqueuePair = (ns: string, sa?: string) => {
    for (const k of groups.keys()) {
      if (k.startsWith(PER_POD)) continue;
      const g = parseGroupKey(k);
      if (g.namespace === ns && (sa === undefined || g.serviceAccount === sa)) queue.add(k);
    }
  };

  // ---- Pods: unbound only; those holding the gate are grouped by identity ----
  const keysOf = (p: GatedPod): string[] => {
    if (p.gateIndex < 0 || p.deleting) return [];
    if (p.declared.length === 0) return [PER_POD + podKey(p)];
    return p.declared.map((d) => groupKey(p, d));
  };
  const index = (p: GatedPod, add: boolean) => {
    for (const k of keysOf(p)) {
      let s = groups.get(k);
      if (add) {
        if (!s) groups.set(k, (s = new Set()));
        s.add(podKey(p));
        queue.add(k);
      } else if (s) {
        s.delete(podKey(p));
        if (s.size === 0) queue.add(k);
      }
    }
  };
  const modeOf = (p: GatedPod) => p.declared[0]?.mode ? MODE_LABEL[p.declared[0].mode] : 'none';
  const pods = new Informer<GatedPod>({
    client: kube,
    path: '/api/v1/pods',
    fieldSelector: 'spec.nodeName=',
    transform: (o: Json) => toGatedPod(o, credentials),
    onAdd: (p) => index(p, true),
    onUpdate: (p, old) => {
      index(old, false);
      index(p, true);
    },
    onDelete: (p) => {
      index(p, false);
      if (p.gateIndex >= 0) m.gatedSeconds.observe({ mode: modeOf(p), result: 'deleted' }, Math.max(0, clock.now() - p.creationMs) / 1000);
    },
    onError: onError('pods'),
  });

  // ---- Identity sources, policies, namespaces, the verified set ----
  const sas = new Informer<SaSettings>({
    client: kube,
    path: '/api/v1/serviceaccounts',
    metadataOnly: true,
    transform: (o: Json) => parseServiceAccount(o, cfg.annotationPrefix),
    // A newly listed SA changes nothing already verified (the 60 s sweep covers changes made while we were down).
    onAdd: (_s, k) => enqueueSa(k),
    onUpdate: (s, old, k) => { if (s !== old) onSourceChange(k); },
    onDelete: (_s, k) => onSourceChange(k),
    onError: onError('serviceaccounts'),
  });
  const cm = cfg.watchConfigMap
    ? new Informer<Json>({
      client: kube,
      path: `/api/v1/namespaces/${cfg.namespace}/configmaps`,
      fieldSelector: `metadata.name=${KOPS_CONFIGMAP_NAME}`,
      onAdd: (o) => loadConfigMap(o),
      onUpdate: (o) => loadConfigMap(o),
      onDelete: () => loadConfigMap(undefined),
      onError: onError('configmap'),
    })
    : undefined;
  const policies = new Informer<Json>({
    client: kube,
    path: `${VI_API}/identitypolicies`,
    onAdd: (o) => onPolicy(o),
    onUpdate: (o) => onPolicy(o),
    onDelete: () => { policySet = undefined; enqueueAll(); },
    onError: onError('identitypolicies'),
  });
  const namespaces = new Informer<{ name: string; labels: Record<string, string> }>({
    client: kube,
    path: '/api/v1/namespaces',
    metadataOnly: true,
    transform: namespaceLabels,
    onUpdate: (n, old) => { if (JSON.stringify(n.labels) !== JSON.stringify(old.labels)) enqueuePair(n.name); },
    onError: onError('namespaces'),
  });
  // VerifiedIdentities by `namespace/serviceAccount`, so a source change looks at its pair's entries only.
  const viByPair = new Map<string, Set<string>>();
  const viPair = (o: Json) => `${o.metadata?.namespace}/${o.spec?.serviceAccount}`;
  const indexVi = (o: Json, key: string, add: boolean) => {
    const p = viPair(o);
    let set = viByPair.get(p);
    if (add) {
      if (!set) viByPair.set(p, (set = new Set()));
      set.add(key);
    } else if (set) {
      set.delete(key);
      if (set.size === 0) viByPair.delete(p);
    }
  };
  const verified = new Informer<Json>({
    client: kube,
    path: `${VI_API}/verifiedidentities`,
    onAdd: (o, k) => indexVi(o, k, true),
    onUpdate: (o, old, k) => { indexVi(old, k, false); indexVi(o, k, true); },
    onDelete: (o, k) => indexVi(o, k, false),
    onError: onError('verifiedidentities'),
  });
  // An update usually keeps the pair: handle it once, not once for `before` and again for `after`.
  const unsubscribe = deps.associations.subscribe((c) => {
    const pairs = new Set([c.before, c.after].filter((r) => !!r).map((r) => `${r.namespace}/${r.serviceAccount}`));
    for (const pair of pairs) onSourceChange(pair);
  });

  function loadConfigMap(o: Json | undefined) {
    const r = parseConfigMapDocument(o?.data?.config, configMap);
    if (r.ok) configMap = r.table;
    else if (!o) configMap = EMPTY_TABLE;
    else log.warn({ error: r.error }, 'kOps ConfigMap is invalid; keeping the previous table');
    enqueueAll();
    void collectStale();
  }
  function enqueueSa(saKey: string) {
    const [ns, sa] = saKey.split('/');
    if (ns && sa && groups.size > 0) enqueuePair(ns, sa);
  }
  function onSourceChange(saKey: string) {
    const [ns, sa] = saKey.split('/');
    if (!ns || !sa) return;
    enqueuePair(ns, sa);
    void collectStale(ns, sa);
  }
  const policyStatusQueue = new WorkQueue();
  function onPolicy(o: Json) {
    policySet = undefined;
    enqueueAll();
    policyStatusQueue.add(o.metadata.name);
  }
  const currentPolicies = () => (policySet ??= compiler.compileAll(policies.store.values()));

  // ---- Current identity of a group, from the caches (the same resolution the webhook runs) ----
  function currentIdentity(g: ReturnType<typeof parseGroupKey>): CurrentIdentity {
    const saSettings = sas.store.get(`${g.namespace}/${g.serviceAccount}`);
    const association = g.mode === 'ContainerCredentials' ? deps.associations.forPair(g.namespace, g.serviceAccount) : undefined;
    const key: IdentityKey = g.mode === 'WebIdentity'
      ? { mode: g.mode, serviceAccount: g.serviceAccount, roleARN: g.roleARN, audience: g.audience }
      : { mode: g.mode, serviceAccount: g.serviceAccount, roleARN: association?.roleARN, targetRoleARN: association?.targetRoleARN, audience: g.audience };
    const res = resolveIdentity({
      namespace: g.namespace,
      serviceAccount: g.serviceAccount,
      podAnnotations: undefined,
      sa: saSettings ? { found: true, settings: saSettings } : { found: false },
      association,
      // The identities file lives with the webhook; a ContainerCredentials Pod without an association came from it.
      inIdentitiesFile: g.mode === 'ContainerCredentials' && !association,
      configMap,
    }, flags, () => 0);
    const id = res?.identity;
    const same = id && id.mode === key.mode && (id.roleARN ?? '') === (key.roleARN ?? '') &&
      (id.targetRoleARN ?? '') === (key.targetRoleARN ?? '') && id.audience === key.audience;
    return { key, namespace: g.namespace, association, fingerprint: same ? fingerprintOf(id.fingerprint as FingerprintInput) : undefined };
  }

  /**
   * The policy decision for a group on the verifier's one view (its IdentityPolicy and Namespace informers). Both the
   * attempt and the release ask here, so they can never judge against different policies. `learntRole` is the role an
   * exchange named for an identity that declares none (identities file).
   */
  function groupPolicy(g: ReturnType<typeof parseGroupKey>, cur: CurrentIdentity, learntRole?: string): PolicyDecision {
    return decidePolicy(currentPolicies(), { namespace: g.namespace, namespaceLabels: namespaces.store.get(g.namespace)?.labels,
      serviceAccount: g.serviceAccount, roleARN: cur.key.roleARN || learntRole, targetRoleARN: cur.key.targetRoleARN });
  }

  /**
   * The identities that keep a Pod gated now: each one it declares must be proven and allowed by the policies in force
   * (see docs/verified-start.md, "Release"). Judged on the given view of the Pod, right before its patch.
   */
  function releaseBlockers(p: GatedPod): string[] {
    if (p.declared.length === 0) return p.problem ? [PER_POD + podKey(p)] : [];
    const now = clock.now();
    return keysOf(p).filter((k) => {
      if (!freshlyProven(k, now)) return true;
      const g = parseGroupKey(k);
      return !groupPolicy(g, currentIdentity(g), proven.get(k)?.learntRole).allowed;
    });
  }

  // ---- Verified set upkeep: expired entries, and entries whose sources changed (§8) ----
  async function deleteVi(vi: Json, why: string) {
    try {
      await kube.delete(`${VI_API}/namespaces/${vi.metadata.namespace}/verifiedidentities/${vi.metadata.name}`,
        { preconditions: { uid: vi.metadata.uid } });
      log.info({ vi: `${vi.metadata.namespace}/${vi.metadata.name}`, why }, 'deleted VerifiedIdentity');
    } catch (e) {
      if (!isNotFound(e) && !(e instanceof KubeApiError && e.status === 409)) log.warn({ err: String(e) }, 'could not delete VerifiedIdentity');
    }
  }
  async function collectStale(ns?: string, sa?: string) {
    if (!verified.synced || stopping.signal.aborted) return;
    const now = clock.now();
    const keys = ns !== undefined && sa !== undefined ? [...(viByPair.get(`${ns}/${sa}`) ?? [])] : [...verified.store.keys()];
    for (const key of keys) {
      const vi = verified.store.get(key);
      if (!vi) continue;
      const s = vi.spec ?? {};
      if (!(Date.parse(s.expiresAt) > now)) {
        await deleteVi(vi, 'expired');
        continue;
      }
      if (s.mode !== 'WebIdentity' && s.mode !== 'ContainerCredentials') continue;
      const cur = currentIdentity({ namespace: vi.metadata.namespace, serviceAccount: s.serviceAccount, mode: s.mode,
        roleARN: s.mode === 'WebIdentity' ? s.roleARN : '', audience: s.audience ?? '' });
      const stillSame = cur.fingerprint === s.fingerprint && verifiedIdentityName(cur.key) === vi.metadata.name;
      if (!stillSame) await deleteVi(vi, 'identity source changed');
    }
  }

  // ---- Events and annotations ----
  const podRef = (p: GatedPod) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { namespace: p.namespace, name: p.name, uid: p.uid } });
  const podPath = (p: { namespace: string; name: string }) => `/api/v1/namespaces/${p.namespace}/pods/${p.name}`;

  /**
   * Removes the gate from one Pod. The policies are checked on the same view of the Pod the patch is pinned to (its
   * resourceVersion), with no await in between, so a policy that arrived during the exchange keeps the Pod gated and
   * a Pod that changed since it was judged is re-read and judged again (docs/adr/0304-atomic-gate-release.md).
   */
  async function release(p: GatedPod, annotate: boolean): Promise<boolean> {
    let view = p;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (view.gateIndex < 0) return false;
      const blockers = releaseBlockers(view);
      if (blockers.length > 0) {
        // Their own attempts say why (PolicyDenied, or the exchange still to run).
        for (const k of blockers) queue.add(k);
        return false;
      }
      const ops = [{ op: 'test', path: '/metadata/resourceVersion', value: view.resourceVersion }, ...releasePatch(view, view.hasAnnotations)];
      try {
        await kube.patch(podPath(p), annotate ? ops : ops.slice(0, 3));
        return true;
      } catch (e) {
        if (isNotFound(e)) return false;
        if (!(e instanceof KubeApiError && (e.status === 422 || e.status === 409))) throw e;
        let fresh: Json;
        try {
          fresh = await kube.get(podPath(p));
        } catch (e2) {
          if (isNotFound(e2)) return false;
          throw e2;
        }
        if (fresh.metadata?.uid !== p.uid) return false;
        view = toGatedPod(fresh, credentials);
      }
    }
    throw new Error(`could not release Pod ${podKey(p)}: its gates kept changing`);
  }

  async function markFailed(p: GatedPod) {
    try {
      await kube.patch(podPath(p), [
        { op: 'test', path: '/metadata/uid', value: p.uid },
        annotationOp('failed', p.hasAnnotations),
      ]);
    } catch (e) {
      if (!isNotFound(e) && !(e instanceof KubeApiError && e.status === 422)) throw e;
    }
  }

  // ---- One attempt for one identity ----
  const gatedPodsOf = (k: string) =>
    [...(groups.get(k) ?? [])].map((pk) => pods.store.get(pk)).filter((p): p is GatedPod =>
      !!p && p.gateIndex >= 0 && !p.deleting);

  async function releaseAll(k: string, list: GatedPod[], note: string, learntRole?: string) {
    const now = clock.now();
    proven.set(k, { at: now, learntRole });
    const ready: GatedPod[] = [];
    for (const p of list) {
      // A Pod declaring several identities waits until each of them is proven.
      const pending = keysOf(p).filter((o) => o !== k && !freshlyProven(o, now));
      if (pending.length > 0) for (const o of pending) queue.add(o);
      else ready.push(p);
    }
    // Patches of one group go out in parallel (bounded), so a 200-Pod Deployment is released in a few round trips.
    for (let i = 0; i < ready.length; i += RELEASE_CONCURRENCY) {
      await Promise.all(ready.slice(i, i + RELEASE_CONCURRENCY).map(async (p) => {
        if (await release(p, true)) {
          m.gatedSeconds.observe({ mode: modeOf(p), result: 'released' }, Math.max(0, clock.now() - p.creationMs) / 1000);
          events.normal(podRef(p), 'IdentityVerified', note, 'Release');
        }
      }));
    }
  }

  async function fail(
    k: string,
    g: ReturnType<typeof parseGroupKey>,
    cur: CurrentIdentity | undefined,
    list: GatedPod[],
    outcome: Exclude<Outcome, 'verified' | 'cached'>,
    message: string,
    throttled = false,
  ): Promise<{ requeueAfterMs: number }> {
    m.outcomes.inc({ mode: MODE_LABEL[g.mode], result: outcome });
    const st = groupState(k);
    st.failures += 1;
    const now = clock.now();
    let beforeDeadline = false;
    let nearestDeadline = Infinity;
    // Request ids differ on every attempt; they must not turn each retry into a new Event.
    const gist = message.replace(/ \(request id [^)]*\)/g, '');
    for (const p of list) {
      const last = st.notified.get(podKey(p));
      if (!last || last.text !== gist || now - last.at >= EVENT_REPEAT_MS) {
        st.notified.set(podKey(p), { text: gist, at: now });
        events.warning(podRef(p), 'IdentityNotVerified', message, 'Verify');
      }
      const deadline = p.creationMs + cfg.verifyDeadlineMs;
      if (now < deadline) {
        beforeDeadline = true;
        nearestDeadline = Math.min(nearestDeadline, deadline - now);
      } else if (p.verification !== 'failed') {
        await markFailed(p);
        events.warning(podRef(p), 'IdentityVerificationFailed',
          `identity not verified within ${Math.round(cfg.verifyDeadlineMs / 1000)}s; last error: ${message}`, 'Verify');
        if (cur?.association) report(cur.association, 'VerificationTimeout', message, p);
      }
    }
    if (cur?.association && outcome !== 'policy_denied') {
      report(cur.association, outcome === 'mismatch' ? 'RoleMismatch' : 'ExchangeFailed', message, list[0]);
    }
    if (st.failures === 1) log.info({ identity: k, outcome, message: gist }, 'identity not verified; retrying');
    else log.debug({ identity: k, outcome, failures: st.failures }, 'identity not verified');
    if (!beforeDeadline) return { requeueAfterMs: cfg.verifyRetryAfterDeadlineMs };
    // A policy change requeues at once, so a denial only needs waking for the deadline.
    const delay = outcome === 'policy_denied'
      ? cfg.verifyRetryAfterDeadlineMs
      : verifyBackoffMs(st.failures, { initialMs: cfg.verifyBackoffInitialMs, maxMs: cfg.verifyBackoffMaxMs, throttled }, Math.random);
    // Wake up at the nearest deadline too, so the `failed` annotation is not late.
    return { requeueAfterMs: Math.min(delay, Math.max(1, nearestDeadline + 1)) };
  }

  function report(a: AssociationIdentity, result: 'CredentialsMatch' | 'RoleMismatch' | 'ExchangeFailed' | 'VerificationTimeout',
    message: string, p?: GatedPod, assumedRoleARN?: string) {
    try {
      deps.recordVerification?.({ association: a, result, message, assumedRoleARN,
        pod: p ? { namespace: p.namespace, name: p.name } : undefined, at: new Date(clock.now()) });
    } catch (e) {
      log.warn({ err: String(e) }, 'association verification report failed');
    }
  }

  async function reconcilePerPod(k: string): Promise<void> {
    const p = pods.store.get(k.slice(PER_POD.length));
    if (!p || p.gateIndex < 0 || p.deleting || p.declared.length > 0) return;
    if (p.problem) {
      // It declares an identity we cannot read: never release without an exchange.
      const st = groupState(k);
      const last = st.notified.get(k);
      if (!last || last.text !== p.problem) {
        st.notified.set(k, { text: p.problem, at: clock.now() });
        events.warning(podRef(p), 'IdentityNotVerified', `cannot read the Pod's identity: ${p.problem}`, 'Verify');
      }
      return;
    }
    if (await release(p, false)) {
      m.gatedSeconds.observe({ mode: 'none', result: 'released' }, Math.max(0, clock.now() - p.creationMs) / 1000);
      events.normal(podRef(p), 'NoIdentity', 'the Pod declares no AWS identity; gate removed', 'Release');
    }
  }

  async function reconcile(k: string): Promise<{ requeueAfterMs?: number } | void> {
    if (k.startsWith(PER_POD)) return reconcilePerPod(k);
    const list = gatedPodsOf(k);
    if (list.length === 0) {
      groups.delete(k);
      state.delete(k);
      proven.delete(k);
      return;
    }
    const g = parseGroupKey(k);
    const cur = currentIdentity(g);
    const mode = MODE_LABEL[g.mode];
    const expected = cur.key.targetRoleARN || cur.key.roleARN;
    const denied = (d: PolicyDecision) => d.allowed ? undefined : fail(k, g, cur, list, 'policy_denied', `PolicyDenied: ${d.message}`);

    // 1. Policy on the declared roles.
    const before = denied(groupPolicy(g, cur));
    if (before) return before;

    // 2. Verified set: a fresh entry with the current fingerprint releases without an exchange. An identity that
    // declares no role is judged on the role the entry's exchange named, as a fresh exchange would be.
    const viName = verifiedIdentityName(cur.key);
    const vi = verified.store.get(`${g.namespace}/${viName}`);
    if (cur.fingerprint && verifiedEntryTrusted(vi, cur.key, cur.fingerprint, clock.now())) {
      const learnt = expected ? undefined : roleArnFromAssumed(String(vi.spec.assumedRoleARN));
      const cachedDenied = learnt ? denied(groupPolicy(g, cur, learnt)) : undefined;
      if (cachedDenied) return cachedDenied;
      m.outcomes.inc({ mode, result: 'cached' });
      state.delete(k);
      await releaseAll(k, list, `${g.mode} identity verified earlier (VerifiedIdentity ${viName}, ${vi.spec.assumedRoleARN})`, learnt);
      return;
    }

    // 3. Token for the group's oldest gated Pod.
    await limiter.take(stopping.signal);
    if (stopping.signal.aborted) return;
    const pod = list.reduce((a, b) => (b.creationMs - a.creationMs || b.name.localeCompare(a.name)) < 0 ? b : a);
    let token: string;
    try {
      const tr = await kube.create(`/api/v1/namespaces/${g.namespace}/serviceaccounts/${g.serviceAccount}/token`, {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          ...(g.audience ? { audiences: [g.audience] } : {}),
          expirationSeconds: TOKEN_SECONDS,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid },
        },
      });
      token = tr?.status?.token;
      if (typeof token !== 'string' || !token) throw new Error('TokenRequest answered without a token');
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 404) {
        // The Pod or ServiceAccount is gone; the informer will catch up.
        return fail(k, g, cur, list, 'token_error',
          `TokenRequest for ServiceAccount "${g.serviceAccount}" bound to Pod "${pod.name}" failed: ${e.reason}: ${e.serverMessage}`);
      }
      const msg = e instanceof KubeApiError ? `${e.status} ${e.reason}: ${e.serverMessage}` : String(e instanceof Error ? e.message : e);
      return fail(k, g, cur, list, 'token_error', `TokenRequest for ServiceAccount "${g.serviceAccount}" bound to Pod "${pod.name}" failed: ${msg}`);
    }

    // 4-5. Exchange; the AWS module drops the credentials and returns ARNs only.
    const roleText = expected ?? '<unknown>';
    let actual: string;
    const started = performance.now();
    try {
      if (g.mode === 'WebIdentity') {
        const r = await deps.aws.sts.assumeRoleWithWebIdentity({
          roleArn: g.roleARN, sessionName: `lanyard-verify-${pod.uid}`.slice(0, 64), token, durationSeconds: 900,
        });
        actual = r.assumedRoleArn;
      } else {
        const r = await deps.aws.eksAuth.assumeRoleForPodIdentity({ clusterName: cfg.clusterName, token });
        actual = r.assumedRoleArn;
        if (r.subject.namespace !== g.namespace || r.subject.serviceAccount !== g.serviceAccount) {
          return fail(k, g, cur, list, 'mismatch', `ContainerCredentials exchange for role ${roleText} answered for ` +
            `${r.subject.namespace}/${r.subject.serviceAccount}, not ${g.namespace}/${g.serviceAccount}`);
        }
        const wantId = cur.association?.associationID;
        if (wantId && r.associationId !== wantId) {
          return fail(k, g, cur, list, 'mismatch', `ContainerCredentials exchange for role ${roleText} used association ` +
            `${r.associationId}, not ${wantId} (stale)`);
        }
      }
    } catch (e) {
      m.exchangeSeconds.observe({ mode }, (performance.now() - started) / 1000);
      const detail = isAwsError(e) ? e.describe() : String(e instanceof Error ? e.message : e);
      const throttled = isAwsError(e) && isThrottling(e.code, e.httpStatus);
      return fail(k, g, cur, list, 'aws_error', `${g.mode} exchange for role ${roleText} failed: ${detail}`, throttled);
    } finally {
      token = '';
    }
    m.exchangeSeconds.observe({ mode }, (performance.now() - started) / 1000);

    // 6. Compare with the effective role; exchange-only identities are judged on the learnt role.
    let learnt: string | undefined;
    if (expected) {
      if (!roleArnMatches(expected, actual)) {
        return fail(k, g, cur, list, 'mismatch', `${g.mode} exchange returned another role: expected ${expected}, actual ${actual}`);
      }
    } else {
      learnt = roleArnFromAssumed(actual);
      if (!learnt) return fail(k, g, cur, list, 'mismatch', `${g.mode} exchange returned ${actual}, which is not an assumed-role ARN`);
    }

    // 7. Record, re-check the sources and the policies (a policy may have landed while the exchange was in flight:
    // step 1 judged an older view), release; release() checks once more per Pod right before its patch.
    if (cur.fingerprint) {
      const obj = buildVerifiedIdentity({ namespace: g.namespace, id: cur.key, fingerprint: cur.fingerprint, assumedRoleARN: actual,
        verifiedAtMs: clock.now(), ttlMs: cfg.verifiedTtlMs, podName: pod.name });
      await upsertVi(obj);
      const again = currentIdentity(g);
      if (again.fingerprint !== cur.fingerprint) {
        log.info({ identity: k }, 'identity sources changed during verification; retrying');
        return { requeueAfterMs: 0 };
      }
    }
    const after = denied(groupPolicy(g, cur, learnt));
    if (after) return after;
    m.outcomes.inc({ mode, result: 'verified' });
    state.delete(k);
    await releaseAll(k, list, `${g.mode} exchange for role ${expected ?? '(from the answer)'} returned ${actual}`, learnt);
    // Reported after the release: the association controller deletes a probe Pod on success.
    if (cur.association) report(cur.association, 'CredentialsMatch', `exchange returned ${actual}`, pod, actual);
  }

  async function upsertVi(obj: Json) {
    const path = `${VI_API}/namespaces/${obj.metadata.namespace}/verifiedidentities`;
    try {
      await kube.create(path, obj);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      await kube.patch(`${path}/${obj.metadata.name}`, { spec: obj.spec }, 'application/merge-patch+json');
    }
  }

  // ---- IdentityPolicy status (Accepted) ----
  async function reconcilePolicyStatus(name: string) {
    const o = policies.store.get(name);
    if (!o) return;
    const c = compiler.compile(o);
    const cond = acceptedCondition(c);
    const conds = o.status?.conditions;
    if (o.status?.observedGeneration === c.generation && conditionUnchanged(conds, cond)) return;
    const status = { observedGeneration: c.generation, conditions: setCondition(conds, cond, new Date(clock.now())) };
    try {
      await kube.patch(`${VI_API}/identitypolicies/${name}/status`, { status }, 'application/merge-patch+json');
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (!c.accepted) log.warn({ policy: name, problem: c.invalidMessage }, 'IdentityPolicy ignored: invalid pattern');
  }

  // ---- Gauges, recounted from the caches every second ----
  const refreshGauges = () => {
    m.gatedPods.reset();
    for (const mo of ['web_identity', 'container_credentials', 'none']) for (const s of ['pending', 'failed']) m.gatedPods.set({ mode: mo, state: s }, 0);
    for (const p of pods.store.values()) {
      if (p.gateIndex < 0 || p.deleting) continue;
      m.gatedPods.inc({ mode: modeOf(p), state: p.verification === 'failed' ? 'failed' : 'pending' });
    }
    m.verifiedIdentities.reset();
    const now = clock.now();
    for (const mo of ['WebIdentity', 'ContainerCredentials'] as const) m.verifiedIdentities.set({ mode: MODE_LABEL[mo] }, 0);
    for (const vi of verified.store.values()) {
      const mo = vi.spec?.mode as IdentityMode;
      if (MODE_LABEL[mo] && Date.parse(vi.spec?.expiresAt) > now) m.verifiedIdentities.inc({ mode: MODE_LABEL[mo] });
    }
  };
  const gaugeTimer = setInterval(refreshGauges, 1000);
  gaugeTimer.unref?.();

  // Sources first, then Pods: a Pod is never judged against an empty cache.
  for (const inf of [sas, cm, policies, namespaces, verified]) inf?.start();
  const sourcesSynced = async (ms: number) =>
    (await Promise.all([sas, cm, policies, namespaces, verified].map((i) => i?.waitForSync(ms) ?? true))).every(Boolean) &&
    (await deps.associations.waitForSync(ms));
  await sourcesSynced(60_000);
  pods.start();
  const loops = runControllerLoop({
    name: 'verifier', queue, workers: cfg.verifyWorkers, reconcile,
    onError: (key, e, retry) => log.warn({ identity: key, err: String(e), retryInMs: retry }, 'verification attempt failed'),
  });
  const policyLoop = runControllerLoop({
    name: 'identitypolicy-status', queue: policyStatusQueue, workers: 1, reconcile: reconcilePolicyStatus,
    onError: (key, e) => log.warn({ policy: key, err: String(e) }, 'IdentityPolicy status write failed'),
  });
  for (const o of policies.store.values()) policyStatusQueue.add(o.metadata.name);
  const sweep = setInterval(() => {
    void collectStale();
    for (const k of [...proven.keys()]) if (!freshlyProven(k, clock.now())) proven.delete(k);
    // Retries after the deadline continue even if a requeue was lost (a defensive floor, §9.3).
    for (const k of groups.keys()) queue.addAfter(k, 0);
  }, SWEEP_MS);
  sweep.unref?.();

  const all = [pods, sas, cm, policies, namespaces, verified];
  return {
    synced: () => all.every((i) => !i || i.synced),
    waitForSync: async (ms) => (await sourcesSynced(ms)) && (await pods.waitForSync(ms)),
    async stop() {
      stopping.abort();
      clearInterval(sweep);
      clearInterval(gaugeTimer);
      unsubscribe();
      queue.shutdown();
      policyStatusQueue.shutdown();
      for (const i of all) i?.stop();
      await Promise.all([loops, policyLoop]);
    },
  };
}
