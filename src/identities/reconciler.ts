// The running-Pod identity reconciler (docs/identities.md): for every pending or running Pod, the identity it has
// against the identity its sources declare now and the proof Lanyard holds. Keys are Pods (`namespace/name`) and, for
// repairs, workloads (`repair:<Kind>/<namespace>/<name>`); a source change requeues the Pods of its pair, namespace
// or of every namespace. Decisions come from decide.ts; this module turns them into Events, metrics, the counts the
// association controller shows in `Ready`, and opt-in rollout restarts.
import type { DaemonSet, Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
import { isNotFound } from '../kube/client.ts';
import { createEventRecorder, type EventRecorder } from '../kube/events.ts';
import { WorkQueue, runControllerLoop, type ReconcileResult } from '../runtime/workqueue.ts';
import { counter, gauge } from '../runtime/metrics.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import type { AssociationIndex } from '../associations/lookup.ts';
import type { PodsWithoutIdentity } from '../associations/index.ts';
import { WEBHOOK_DEFAULTS } from '../config/webhook.ts';
import { podIdentitySettings, type PodIdentitySourceConfig } from '../config/controller.ts';
import { resolveIdentity, WEB_IDENTITY_VOLUME } from '../identity/resolve.ts';
import { decidePolicy } from '../verification/policy.ts';
import { fingerprintOf } from '../verification/verified-identity.ts';
import {
  EVENT_REASONS,
  IDENTITY_STATES,
  PROBLEM_STATES,
  REPAIRABLE_STATES,
  REPAIR_ANNOTATION,
  RESTARTED_AT_ANNOTATION,
  WORKLOAD_PATHS,
  decideIdentity,
  decideRepair,
  repairEnabled,
  restartPatch,
  workloadOf,
  type IdentityState,
  type WorkloadKind,
} from './decide.ts';
import { startIdentityViews, type IdentityViews, type ViewChange } from './views.ts';
import type { IdentityRow } from './snapshot.ts';

export const REPORTING_CONTROLLER = 'lanyard.dev/identities';

export interface IdentityReconciler extends Running, PodsWithoutIdentity {
  synced(): boolean;
  waitForSync(timeoutMs: number): Promise<boolean>;
  /** The current decision for a Pod (tests, doctor in-process). */
  stateOf(namespace: string, name: string): IdentityRow | undefined;
}

export type IdentityReconcilerConfig = PodIdentitySourceConfig & {
  workers?: number;
  /** How often workloads with wrong Pods are looked at again, so a repair annotation added later is seen (default 30 s). */
  repairResyncMs?: number;
};

export interface IdentityReconcilerDeps extends Deps {
  associations: AssociationIndex;
  events?: EventRecorder;
  /**
   * Views supplied by the caller (tests); else they come from `cache` (the process's shared informer cache), or from a
   * cache of the reconciler's own when it is started alone.
   */
  views?: (onChange: (c: ViewChange) => void) => IdentityViews & Running;
}

const REPAIR = 'repair:';
const podRef = (ns: string, name: string, uid: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace: ns, name, uid },
});
const workloadRef = (kind: WorkloadKind, ns: string, name: string, uid?: string): KubeObject => ({
  apiVersion: 'apps/v1',
  kind,
  metadata: { namespace: ns, name, ...(uid ? { uid } : {}) },
});

export async function startIdentityReconciler(
  deps: IdentityReconcilerDeps,
  cfg: IdentityReconcilerConfig,
): Promise<IdentityReconciler> {
  const { kube, log, clock } = deps;
  const events =
    deps.events ??
    createEventRecorder({
      kube,
      reportingController: REPORTING_CONTROLLER,
      log,
      now: () => new Date(clock.now()),
    });
  const podGauge = gauge(
    deps.metrics,
    'lanyard_pod_identities',
    'Pending and running Pods by identity state (docs/identities.md).',
    ['state'],
  );
  const repairs = counter(
    deps.metrics,
    'lanyard_identity_repairs_total',
    'Rollout restarts for Pods missing their identity, by result.',
    ['result'],
  );
  for (const s of IDENTITY_STATES) podGauge.set({ state: s }, 0);

  const { flags, credentials } = podIdentitySettings(cfg);
  const queue = new WorkQueue({ initialMs: 1000, maxMs: 300_000, jitter: 0.1 });

  // Pods by pair and by namespace, so a source change requeues only its Pods.
  const byPair = new Map<string, Set<string>>();
  const byNamespace = new Map<string, Set<string>>();
  const podIndex = new Map<string, { pair: string; namespace: string; uid: string }>();
  const indexAdd = (m: Map<string, Set<string>>, k: string, v: string) => {
    let s = m.get(k);
    if (!s) m.set(k, (s = new Set()));
    s.add(v);
  };
  const indexDel = (m: Map<string, Set<string>>, k: string, v: string) => {
    const s = m.get(k);
    if (s) {
      s.delete(v);
      if (s.size === 0) m.delete(k);
    }
  };

  const onChange = (c: ViewChange) => {
    switch (c.kind) {
      case 'pod':
        queue.add(c.key);
        return;
      case 'pair':
        for (const k of byPair.get(`${c.namespace}/${c.serviceAccount}`) ?? []) queue.add(k);
        return;
      case 'namespace':
      case 'replicaset':
        for (const k of byNamespace.get(c.namespace) ?? []) queue.add(k);
        return;
      case 'all':
        for (const k of podIndex.keys()) queue.add(k);
    }
  };
  const views = deps.views
    ? deps.views(onChange)
    : startIdentityViews(
        { kube, log, cache: deps.cache, associations: deps.associations },
        {
          annotationPrefix: cfg.annotationPrefix,
          credentials,
          watchConfigMap: cfg.watchConfigMap,
          namespace: cfg.namespace,
          injectedVolumes: [WEB_IDENTITY_VOLUME, WEBHOOK_DEFAULTS.containerCredentialsTokenVolumeName],
        },
        onChange,
      );

  // ---- State: the last decision per Pod, counts per state, per pair (missing) and per workload ----
  const rows = new Map<
    string,
    IdentityRow & { creationMs: number; workloadKind?: WorkloadKind; workloadName?: string }
  >();
  const counts = new Map<IdentityState, number>(IDENTITY_STATES.map((s) => [s, 0]));
  const missing = new Map<string, number>();
  const ownerProblems = new Map<string, number>();
  const subscribers = new Set<(ns: string, sa: string) => void>();
  // Pods (by uid) a fresh VerifiedIdentity vouched for while this process watched: proof that outlives the entry.
  const proven = new Set<string>();
  /** Pods created before this (allowing for clock skew) were not watched from their admission on. */
  const startedMs = clock.now() - 5_000;
  const bump = (m: Map<string, number>, k: string, d: number) => {
    const n = (m.get(k) ?? 0) + d;
    if (n <= 0) m.delete(k);
    else m.set(k, n);
    return n;
  };
  const missingKey = (r: IdentityRow) =>
    r.state === 'missing' && r.source === 'association' ? `${r.namespace}/${r.serviceAccount}` : undefined;

  function setRow(
    key: string,
    next:
      (IdentityRow & { creationMs: number; workloadKind?: WorkloadKind; workloadName?: string }) | undefined,
  ) {
    const prev = rows.get(key);
    if (prev) {
      counts.set(prev.state, counts.get(prev.state)! - 1);
      podGauge.dec({ state: prev.state });
      if (prev.workloadKind && PROBLEM_STATES.has(prev.state))
        bump(ownerProblems, `${prev.workloadKind}/${prev.namespace}/${prev.workloadName}/${prev.state}`, -1);
    }
    if (next) {
      rows.set(key, next);
      counts.set(next.state, counts.get(next.state)! + 1);
      podGauge.inc({ state: next.state });
    } else rows.delete(key);
    const before = prev && missingKey(prev);
    const after = next && missingKey(next);
    if (before !== after) {
      if (before) bump(missing, before, -1);
      if (after) bump(missing, after, 1);
      for (const p of new Set([before, after])) {
        if (!p) continue;
        const [ns = '', sa = ''] = p.split('/');
        for (const fn of subscribers) fn(ns, sa);
      }
    }
  }

  async function reconcilePod(key: string): Promise<ReconcileResult> {
    const pod = views.pod(key);
    const indexed = podIndex.get(key);
    if (!pod) {
      if (indexed) {
        indexDel(byPair, indexed.pair, key);
        indexDel(byNamespace, indexed.namespace, key);
        podIndex.delete(key);
      }
      if (indexed) proven.delete(indexed.uid);
      setRow(key, undefined);
      return;
    }
    const pair = `${pod.namespace}/${pod.serviceAccount}`;
    if (indexed && (indexed.uid !== pod.uid || indexed.pair !== pair)) {
      // The name was reused by a new Pod (perhaps of another ServiceAccount): forget the old one's index and proof.
      indexDel(byPair, indexed.pair, key);
      indexDel(byNamespace, indexed.namespace, key);
      podIndex.delete(key);
      proven.delete(indexed.uid);
    }
    if (!podIndex.has(key)) {
      podIndex.set(key, { pair, namespace: pod.namespace, uid: pod.uid });
      indexAdd(byPair, pair, key);
      indexAdd(byNamespace, pod.namespace, key);
    }
    const sa = views.serviceAccount(pod.namespace, pod.serviceAccount);
    const association = views.associations.forPair(pod.namespace, pod.serviceAccount);
    const declared = resolveIdentity(
      {
        namespace: pod.namespace,
        serviceAccount: pod.serviceAccount,
        podAnnotations: undefined,
        sa: sa ? { found: true, settings: sa } : { found: false },
        association,
        // The identities file lives with the webhook: a Pod using container credentials without an association got them
        // from it, and is judged as such (its pair cannot be reported missing from here).
        inIdentitiesFile: !association && pod.used.some((u) => u.mode === 'ContainerCredentials'),
        configMap: views.configMap(),
      },
      flags,
      () => 0,
    )?.identity;
    const ns = views.namespace(pod.namespace);
    const policies = views.policies();
    const decision = decideIdentity({
      pod,
      declared,
      declaredFingerprint: declared ? fingerprintOf(declared.fingerprint) : undefined,
      association,
      policy: (roleARN, targetRoleARN) =>
        decidePolicy(policies, {
          namespace: pod.namespace,
          namespaceLabels: ns?.labels,
          serviceAccount: pod.serviceAccount,
          roleARN,
          targetRoleARN,
        }),
      verified: (name) => views.verified(pod.namespace, name),
      provenEarlier: proven.has(pod.uid),
      observedSinceCreation: pod.creationMs >= startedMs,
      nowMs: clock.now(),
    });
    const prev = rows.get(key);
    if (!decision) {
      setRow(key, undefined);
      return;
    }
    const workload = workloadOf(pod.owner, (rs) => views.replicaSetOwner(pod.namespace, rs));
    const row = {
      ...decision,
      namespace: pod.namespace,
      pod: pod.name,
      serviceAccount: pod.serviceAccount,
      creationMs: pod.creationMs,
      creationTimestamp: new Date(pod.creationMs).toISOString(),
      ...(workload
        ? {
            workload: `${workload.kind.toLowerCase()}/${workload.name}`,
            workloadKind: workload.kind,
            workloadName: workload.name,
          }
        : {}),
    };
    setRow(key, row);
    const changed = !prev || prev.state !== row.state || prev.message !== row.message;
    const reason = EVENT_REASONS[row.state];
    if (changed && reason) {
      events.warning(podRef(pod.namespace, pod.name, pod.uid), reason, row.message);
      if (workload) {
        const n = bump(ownerProblems, `${workload.kind}/${pod.namespace}/${workload.name}/${row.state}`, 1);
        if (n === 1)
          events.warning(
            workloadRef(workload.kind, pod.namespace, workload.name),
            reason,
            `Pod ${pod.name}: ${row.message}`,
          );
      }
    } else if (workload && PROBLEM_STATES.has(row.state)) {
      bump(ownerProblems, `${workload.kind}/${pod.namespace}/${workload.name}/${row.state}`, 1);
    }
    if (changed)
      log.info(
        {
          namespace: pod.namespace,
          pod: pod.name,
          state: row.state,
          source: row.source,
          role: row.role || undefined,
        },
        'Pod identity state',
      );

    if (decision.proven) proven.add(pod.uid);
    if (workload && REPAIRABLE_STATES.has(row.state))
      queue.add(`${REPAIR}${workload.kind}/${pod.namespace}/${workload.name}`);
  }

  async function reconcileRepair(key: string): Promise<ReconcileResult> {
    const [kind, namespace, name] = key.slice(REPAIR.length).split('/') as [WorkloadKind, string, string];
    const problemPods: number[] = [];
    for (const r of rows.values()) {
      if (
        r.workloadKind === kind &&
        r.namespace === namespace &&
        r.workloadName === name &&
        REPAIRABLE_STATES.has(r.state)
      )
        problemPods.push(r.creationMs);
    }
    const ns = views.namespace(namespace);
    // Cheap exit before any request: repair is off unless the namespace or some workload asks for it.
    if (problemPods.length === 0) return;
    const path = `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/${WORKLOAD_PATHS[kind]}/${encodeURIComponent(name)}`;
    // A Deployment, StatefulSet or DaemonSet: only its metadata and Pod template's annotations are read.
    let w: Deployment | StatefulSet | DaemonSet;
    try {
      w = await kube.get<Deployment | StatefulSet | DaemonSet>(path);
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    const enabled = repairEnabled(w?.metadata?.annotations?.[REPAIR_ANNOTATION], ns?.repair);
    const last = Date.parse(w?.spec?.template?.metadata?.annotations?.[RESTARTED_AT_ANNOTATION] ?? '');
    const d = decideRepair({ enabled, problemPods, lastRestartMs: Number.isFinite(last) ? last : undefined });
    const ref = workloadRef(kind, namespace, name, w?.metadata?.uid);
    if (d.kind === 'restart') {
      await kube.patch(path, restartPatch(new Date(clock.now())), 'application/merge-patch+json');
      repairs.inc({ result: 'restarted' });
      events.normal(
        ref,
        'IdentityRepair',
        `rollout restart: ${problemPods.length} Pod(s) lack the identity their ServiceAccount declares now ` +
          `(${REPAIR_ANNOTATION}: restart)`,
      );
      log.info(
        { kind, namespace, name, pods: problemPods.length },
        'rollout restart for Pods missing their identity',
      );
    } else if (d.kind === 'ineffective' && ineffective.get(key) !== last) {
      // Once per restart: the periodic look at the workload must not repeat it.
      ineffective.set(key, last);
      repairs.inc({ result: 'ineffective' });
      events.warning(ref, 'IdentityRepairIneffective', d.message);
    }
  }

  const ineffective = new Map<string, number>();
  // A workload's own repair annotation is not watched: workloads with wrong Pods are looked at again periodically.
  const resync = setInterval(() => {
    for (const r of rows.values()) {
      if (r.workloadKind && REPAIRABLE_STATES.has(r.state))
        queue.add(`${REPAIR}${r.workloadKind}/${r.namespace}/${r.workloadName}`);
    }
  }, cfg.repairResyncMs ?? 30_000);
  resync.unref?.();

  const stopping = runControllerLoop({
    name: 'identities',
    queue,
    workers: cfg.workers ?? 4,
    metrics: deps.metrics,
    reconcile: (key) => (key.startsWith(REPAIR) ? reconcileRepair(key) : reconcilePod(key)),
    onError: (key, e, retryInMs) =>
      log.warn({ key, err: e, retryInMs }, 'identity reconcile failed; retrying'),
  });

  return {
    synced: () => views.synced(),
    waitForSync: (ms) => views.waitForSync(ms),
    missingFor: (ns, sa) => missing.get(`${ns}/${sa}`) ?? 0,
    subscribe(fn) {
      subscribers.add(fn);
      return () => subscribers.delete(fn);
    },
    stateOf(ns, name) {
      const r = rows.get(`${ns}/${name}`);
      if (!r) return undefined;
      const { creationMs: _c, workloadKind: _k, workloadName: _n, ...row } = r;
      return row;
    },
    async stop() {
      clearInterval(resync);
      queue.shutdown();
      await views.stop();
      await stopping;
      for (const s of IDENTITY_STATES) podGauge.set({ state: s }, 0);
    },
  };
}
