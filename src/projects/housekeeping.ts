// The controller's "projects housekeeping" reconciler (docs/projects-and-tokens.md#1-create-a-project): for each project namespace it compares the
// built-in trios with src/projects/builtin-roles.ts and, on drift, emits a Warning Event `BuiltInRoleDrift` on the
// Namespace and sets `lanyard_project_builtin_roles_drifted{project}`. It never writes RBAC and never reads Secrets:
// repairing is the user's call (`lanyard create project NAME --adopt`), made with the user's own credentials.
import { Gauge } from 'prom-client';
import type { Namespace, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { Role, RoleBinding } from 'kubernetes-types/rbac/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
import { sharedOrOwnCache, type CacheView, type InformerFactory } from '../kube/cache.ts';
import { createEventRecorder, type EventRecorder } from '../kube/events.ts';
import { WorkQueue, runControllerLoop, type ReconcileResult } from '../runtime/workqueue.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import { BUILTIN_ROLES } from './builtin-roles.ts';
import { builtInDrift, driftMessage } from './drift.ts';
import {
  KARGO_SERVICE_ACCOUNT_LABEL,
  PROJECT_LABEL,
  SERVICE_ACCOUNT_LABEL,
  kargoLabelNotice,
  usesKargoLabel,
} from './labels.ts';

const BUILTIN_NAMES = new Set(BUILTIN_ROLES.map((r) => r.name));
export const DRIFT_GAUGE = 'lanyard_project_builtin_roles_drifted';
export const DRIFT_REASON = 'BuiltInRoleDrift';

/** Only built-in trios matter; other objects are reduced to their key so the caches stay small. */
function keepBuiltIn<T extends KubeObject>(obj: T): T {
  if (BUILTIN_NAMES.has(obj.metadata?.name ?? '')) return obj;
  return { metadata: { name: obj.metadata?.name, namespace: obj.metadata?.namespace } } as T;
}

/**
 * ServiceAccounts: the built-in ones in full; one marked by Kargo's label (seed 001) keeps the two labels that say so,
 * for the Warning Event `DeprecatedLabel` (docs/projects-and-tokens.md, "Kargo's label").
 */
function keepAccount(obj: ServiceAccount): ServiceAccount {
  if (BUILTIN_NAMES.has(obj.metadata?.name ?? '') || !usesKargoLabel(obj)) return keepBuiltIn(obj);
  const { name, namespace, uid, labels = {} } = obj.metadata ?? {};
  return {
    metadata: {
      name,
      namespace,
      uid,
      labels: {
        [KARGO_SERVICE_ACCOUNT_LABEL]: labels[KARGO_SERVICE_ACCOUNT_LABEL]!,
        ...(labels[SERVICE_ACCOUNT_LABEL] !== undefined
          ? { [SERVICE_ACCOUNT_LABEL]: labels[SERVICE_ACCOUNT_LABEL] }
          : {}),
      },
    },
  };
}
export const KARGO_LABEL_REASON = 'DeprecatedLabel';
const ACCOUNT_KEY = 'sa:';

/** `create project` makes the namespace first and the trios after it; a young project is not drifted yet. */
export const CREATION_GRACE_MS = 30_000;

/** The drift gauge, registered once per registry (a second start in one process reuses it). */
function driftGauge(metrics: Deps['metrics']): Gauge<'project'> {
  return (
    (metrics.getSingleMetric(DRIFT_GAUGE) as Gauge<'project'> | undefined) ??
    new Gauge({
      name: DRIFT_GAUGE,
      help: "1 when a project's built-in roles (lanyard-admin, lanyard-viewer, lanyard-promoter) are missing or altered",
      labelNames: ['project'],
      registers: [metrics],
    })
  );
}

/** The four views housekeeping reads; their handlers only enqueue a project (or an account) key. */
interface HousekeepingViews {
  namespaces: CacheView<Namespace>;
  roles: CacheView<Role>;
  bindings: CacheView<RoleBinding>;
  accounts: CacheView<ServiceAccount>;
}

function openHousekeepingViews(cache: InformerFactory, queue: WorkQueue): HousekeepingViews {
  const enqueueNs = (o: KubeObject) => {
    const ns = o?.metadata?.namespace;
    if (ns && BUILTIN_NAMES.has(o.metadata?.name ?? '')) queue.add(ns);
  };
  const enqueueProject = (o: KubeObject) => queue.add(o.metadata?.name as string);
  const enqueueAccount = (o: ServiceAccount) => {
    enqueueNs(o);
    if (usesKargoLabel(o)) queue.add(`${ACCOUNT_KEY}${o.metadata?.namespace}/${o.metadata?.name}`);
  };
  const nsHandlers = { onAdd: enqueueProject, onUpdate: enqueueProject, onDelete: enqueueProject };
  const objHandlers = { onAdd: enqueueNs, onUpdate: enqueueNs, onDelete: enqueueNs };
  return {
    // Project namespaces are selected on the process's one Namespace watch (metadata only), not a watch of their own.
    namespaces: cache.view<Namespace, Namespace>({
      path: '/api/v1/namespaces',
      metadataOnly: true,
      filter: (o) => o?.metadata?.labels?.[PROJECT_LABEL] === 'true',
      ...nsHandlers,
    }),
    roles: cache.view<Role, Role>({
      path: '/apis/rbac.authorization.k8s.io/v1/roles',
      transform: keepBuiltIn,
      ...objHandlers,
    }),
    bindings: cache.view<RoleBinding, RoleBinding>({
      path: '/apis/rbac.authorization.k8s.io/v1/rolebindings',
      transform: keepBuiltIn,
      ...objHandlers,
    }),
    accounts: cache.view<ServiceAccount, ServiceAccount>({
      path: '/api/v1/serviceaccounts',
      metadataOnly: true,
      transform: keepAccount,
      onAdd: enqueueAccount,
      onUpdate: enqueueAccount,
      onDelete: enqueueNs,
    }),
  };
}

/** What one housekeeping pass reads and writes, built once per start. */
interface HousekeepingContext {
  views: HousekeepingViews;
  gauge: Gauge<'project'>;
  events: EventRecorder;
  log: Deps['log'];
  clock: Deps['clock'];
  grace: number;
  /** The drift message last reported per project (an unchanged drift is not reported again). */
  reported: Map<string, string>;
  /** Accounts (uid) warned about Kargo's label in this process. */
  warnedAccounts: Set<string>;
}

/** Once per account (uid) and process: a Warning Event suggesting Lanyard's label instead of Kargo's. */
function reconcileAccount(ctx: HousekeepingContext, key: string): void {
  const sa = ctx.views.accounts.get(key);
  const meta = sa?.metadata;
  if (
    !sa ||
    !meta ||
    !usesKargoLabel(sa) ||
    !ctx.views.namespaces.has(meta.namespace as string) ||
    ctx.warnedAccounts.has(meta.uid as string)
  )
    return;
  ctx.warnedAccounts.add(meta.uid as string);
  ctx.events.warning(
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta },
    KARGO_LABEL_REASON,
    kargoLabelNotice(meta.namespace as string, meta.name as string),
    'Rename',
  );
}

/** A project's built-in trios compared with builtin-roles.ts: the gauge set, a Warning Event when the drift is new. */
function reconcileProject(ctx: HousekeepingContext, project: string): ReconcileResult {
  const { views, gauge, reported } = ctx;
  const ns = views.namespaces.get(project);
  if (!ns) {
    gauge.remove({ project });
    reported.delete(project);
    return;
  }
  const at =
    <T>(view: CacheView<T>) =>
    (name: string) =>
      view.get(`${project}/${name}`);
  const drift = builtInDrift(project, {
    role: at(views.roles),
    serviceAccount: at(views.accounts),
    roleBinding: at(views.bindings),
  });
  if (!drift.length) {
    gauge.set({ project }, 0);
    reported.delete(project);
    return;
  }
  const age = ctx.clock.now() - Date.parse(ns.metadata?.creationTimestamp as string);
  if (age < ctx.grace) return { requeueAfterMs: ctx.grace - age };
  gauge.set({ project }, 1);
  const message = driftMessage(project, drift);
  if (reported.get(project) === message) return;
  reported.set(project, message);
  ctx.log.warn({ project, drift }, 'built-in roles drifted');
  ctx.events.warning(
    { apiVersion: 'v1', kind: 'Namespace', metadata: ns.metadata },
    DRIFT_REASON,
    message,
    'Compare',
  );
}

export async function startProjectsHousekeeping(
  deps: Deps,
  opts: { workers?: number; creationGraceMs?: number } = {},
): Promise<Running> {
  const { kube, log, metrics, clock } = deps;
  const gauge = driftGauge(metrics);
  const events = createEventRecorder({ kube, reportingController: 'lanyard.dev/projects-housekeeping', log });
  const queue = new WorkQueue();
  const { cache, release: releaseCache } = sharedOrOwnCache(deps, (sel, e) =>
    log.warn({ err: e, path: sel.path }, 'watch failed; retrying'),
  );
  const views = openHousekeepingViews(cache, queue);
  const all = [views.namespaces, views.roles, views.bindings, views.accounts];
  await Promise.all(all.map((v) => v.waitForSync()));
  const ctx: HousekeepingContext = {
    views,
    gauge,
    events,
    log,
    clock,
    grace: opts.creationGraceMs ?? CREATION_GRACE_MS,
    reported: new Map(),
    warnedAccounts: new Set(),
  };
  const loop = runControllerLoop({
    name: 'projects-housekeeping',
    queue,
    workers: opts.workers ?? 1,
    metrics,
    reconcile: async (key) =>
      key.startsWith(ACCOUNT_KEY)
        ? reconcileAccount(ctx, key.slice(ACCOUNT_KEY.length))
        : reconcileProject(ctx, key),
    onError: (key, e, retryInMs) => log.warn({ project: key, err: e, retryInMs }, 'housekeeping failed'),
  });
  return {
    async stop() {
      for (const v of all) v.close();
      releaseCache();
      queue.shutdown();
      await loop;
    },
  };
}
