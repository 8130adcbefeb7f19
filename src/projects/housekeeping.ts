// The controller's "projects housekeeping" reconciler (docs/projects-and-tokens.md#1-create-a-project): for each project namespace it compares the
// built-in trios with src/projects/builtin-roles.ts and, on drift, emits a Warning Event `BuiltInRoleDrift` on the
// Namespace and sets `lanyard_project_builtin_roles_drifted{project}`. It never writes RBAC and never reads Secrets:
// repairing is the user's call (`lanyard create project NAME --adopt`), made with the user's own credentials.
import { Gauge } from 'prom-client';
import type { Json } from '../kube/client.ts';
import { sharedOrOwnCache, type CacheView } from '../kube/cache.ts';
import { createEventRecorder } from '../kube/events.ts';
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
function keepBuiltIn(obj: Json): Json {
  if (BUILTIN_NAMES.has(obj.metadata?.name)) return obj;
  return { metadata: { name: obj.metadata?.name, namespace: obj.metadata?.namespace } };
}

/**
 * ServiceAccounts: the built-in ones in full; one marked by Kargo's label (seed 001) keeps the two labels that say so,
 * for the Warning Event `DeprecatedLabel` (docs/projects-and-tokens.md, "Kargo's label").
 */
function keepAccount(obj: Json): Json {
  if (BUILTIN_NAMES.has(obj.metadata?.name) || !usesKargoLabel(obj)) return keepBuiltIn(obj);
  const { name, namespace, uid, labels } = obj.metadata;
  return {
    metadata: {
      name,
      namespace,
      uid,
      labels: {
        [KARGO_SERVICE_ACCOUNT_LABEL]: labels[KARGO_SERVICE_ACCOUNT_LABEL],
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

export async function startProjectsHousekeeping(
  deps: Deps,
  opts: { workers?: number; creationGraceMs?: number } = {},
): Promise<Running> {
  const { kube, log, metrics, clock } = deps;
  const grace = opts.creationGraceMs ?? CREATION_GRACE_MS;
  const gauge =
    (metrics.getSingleMetric(DRIFT_GAUGE) as Gauge<'project'> | undefined) ??
    new Gauge({
      name: DRIFT_GAUGE,
      help: "1 when a project's built-in roles (lanyard-admin, lanyard-viewer, lanyard-promoter) are missing or altered",
      labelNames: ['project'],
      registers: [metrics],
    });
  const events = createEventRecorder({ kube, reportingController: 'lanyard.dev/projects-housekeeping', log });
  const queue = new WorkQueue();
  const reported = new Map<string, string>();
  const enqueueNs = (o: Json) => {
    const ns = o?.metadata?.namespace;
    if (ns && BUILTIN_NAMES.has(o.metadata.name)) queue.add(ns);
  };
  const enqueueProject = (o: Json) => queue.add(o.metadata.name);
  const enqueueAccount = (o: Json) => {
    enqueueNs(o);
    if (usesKargoLabel(o)) queue.add(`${ACCOUNT_KEY}${o.metadata.namespace}/${o.metadata.name}`);
  };
  const nsHandlers = { onAdd: enqueueProject, onUpdate: enqueueProject, onDelete: enqueueProject };
  const objHandlers = { onAdd: enqueueNs, onUpdate: enqueueNs, onDelete: enqueueNs };
  const { cache, release: releaseCache } = sharedOrOwnCache(deps, (sel, e) =>
    log.warn({ err: e, path: sel.path }, 'watch failed; retrying'),
  );
  // Project namespaces are selected on the process's one Namespace watch (metadata only), not a watch of their own.
  const namespaces = cache.view<Json>({
    path: '/api/v1/namespaces',
    metadataOnly: true,
    filter: (o) => o?.metadata?.labels?.[PROJECT_LABEL] === 'true',
    ...nsHandlers,
  });
  const roles = cache.view<Json>({
    path: '/apis/rbac.authorization.k8s.io/v1/roles',
    transform: keepBuiltIn,
    ...objHandlers,
  });
  const bindings = cache.view<Json>({
    path: '/apis/rbac.authorization.k8s.io/v1/rolebindings',
    transform: keepBuiltIn,
    ...objHandlers,
  });
  const accounts = cache.view<Json>({
    path: '/api/v1/serviceaccounts',
    metadataOnly: true,
    transform: keepAccount,
    onAdd: enqueueAccount,
    onUpdate: enqueueAccount,
    onDelete: enqueueNs,
  });
  const views = [namespaces, roles, bindings, accounts];
  await Promise.all(views.map((v) => v.waitForSync()));

  const warnedAccounts = new Set<string>();
  /** Once per account (uid) and process: a Warning Event suggesting Lanyard's label instead of Kargo's. */
  const reconcileAccount = (key: string): void => {
    const sa = accounts.get(key);
    if (
      !sa ||
      !usesKargoLabel(sa) ||
      !namespaces.has(sa.metadata.namespace) ||
      warnedAccounts.has(sa.metadata.uid)
    )
      return;
    warnedAccounts.add(sa.metadata.uid);
    events.warning(
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: sa.metadata },
      KARGO_LABEL_REASON,
      kargoLabelNotice(sa.metadata.namespace, sa.metadata.name),
      'Rename',
    );
  };

  const reconcile = async (key: string): Promise<ReconcileResult> => {
    if (key.startsWith(ACCOUNT_KEY)) return reconcileAccount(key.slice(ACCOUNT_KEY.length));
    const project = key;
    const ns = namespaces.get(project);
    if (!ns) {
      gauge.remove({ project });
      reported.delete(project);
      return;
    }
    const at = (view: CacheView<Json>) => (name: string) => view.get(`${project}/${name}`);
    const drift = builtInDrift(project, {
      role: at(roles),
      serviceAccount: at(accounts),
      roleBinding: at(bindings),
    });
    if (!drift.length) {
      gauge.set({ project }, 0);
      reported.delete(project);
      return;
    }
    const age = clock.now() - Date.parse(ns.metadata.creationTimestamp);
    if (age < grace) return { requeueAfterMs: grace - age };
    gauge.set({ project }, 1);
    const message = driftMessage(project, drift);
    if (reported.get(project) === message) return;
    reported.set(project, message);
    log.warn({ project, drift }, 'built-in roles drifted');
    events.warning(
      { apiVersion: 'v1', kind: 'Namespace', metadata: ns.metadata },
      DRIFT_REASON,
      message,
      'Compare',
    );
  };
  const loop = runControllerLoop({
    name: 'projects-housekeeping',
    queue,
    workers: opts.workers ?? 1,
    metrics,
    reconcile,
    onError: (key, e, retryInMs) => log.warn({ project: key, err: e, retryInMs }, 'housekeeping failed'),
  });
  return {
    async stop() {
      for (const v of views) v.close();
      releaseCache();
      queue.shutdown();
      await loop;
    },
  };
}
