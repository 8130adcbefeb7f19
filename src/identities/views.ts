// The read-only views the identity reconciler decides from (docs/identities.md), behind one small interface.
// `startIdentityViews` takes them from the process's shared informer cache (docs/adr/1000-shared-informer-cache-and-
// reconcilers.md), or from a cache of its own when the reconciler is started alone: Pods (not finished),
// ServiceAccounts and Namespaces (metadata only), the kOps ConfigMap, IdentityPolicies, VerifiedIdentities and
// ReplicaSets (metadata only, for the Deployment that owns a Pod). Each view keeps only what a decision reads; the
// ServiceAccount, Namespace, ConfigMap, IdentityPolicy and VerifiedIdentity selections are the ones the verifier,
// the association controller and the webhook watch, so under `lanyard controller` and `lanyard run` they share one
// watch each. Associations come from the shared index.
import type { Json } from '../kube/client.ts';
import { sharedOrOwnCache, type CacheView } from '../kube/cache.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import type { AssociationIndex } from '../associations/lookup.ts';
import { parseServiceAccount, type SaSettings } from '../identity/annotations.ts';
import { EMPTY_TABLE, parseConfigMapDocument, type ConfigMapTable } from '../identity/configmap.ts';
import { KOPS_CONFIGMAP_NAME } from '../webhook/config-sources.ts';
import { PolicyCompiler, type PolicySet } from '../verification/policy.ts';
import { VI_API } from '../verification/verified-identity.ts';
import { REPAIR_ANNOTATION, toPodView, type OwnerRef, type PodView, type ViewOptions } from './decide.ts';

export interface NamespaceView {
  labels: Record<string, string>;
  /** `lanyard.dev/identity-repair` on the Namespace. */
  repair?: string;
}

/** What changed, so the reconciler requeues only the Pods it concerns. */
export type ViewChange =
  | { kind: 'pod'; key: string }
  | { kind: 'pair'; namespace: string; serviceAccount: string }
  | { kind: 'namespace'; namespace: string }
  | { kind: 'replicaset'; namespace: string; name: string }
  | { kind: 'all' };

export interface IdentityViews {
  pod(key: string): PodView | undefined;
  podKeys(): Iterable<string>;
  serviceAccount(namespace: string, name: string): SaSettings | undefined;
  configMap(): ConfigMapTable;
  policies(): PolicySet;
  namespace(name: string): NamespaceView | undefined;
  verified(namespace: string, name: string): Json | undefined;
  replicaSetOwner(namespace: string, name: string): OwnerRef | undefined;
  associations: Pick<AssociationIndex, 'forPair' | 'synced'>;
  synced(): boolean;
  waitForSync(timeoutMs: number): Promise<boolean>;
}

export interface ViewsConfig extends Pick<
  ViewOptions,
  'annotationPrefix' | 'credentials' | 'injectedVolumes'
> {
  watchConfigMap: boolean;
  /** Namespace of the kOps ConfigMap (`--namespace`). */
  namespace: string;
}

/** What the view keeps of an IdentityPolicy: what the policy compiler reads. */
const policyProjection = (o: Json): Json => ({
  metadata: { name: o?.metadata?.name, uid: o?.metadata?.uid, generation: o?.metadata?.generation },
  spec: o?.spec,
});
/** What the view keeps of a VerifiedIdentity: what `verifiedEntryTrusted` reads (as the webhook's guard keeps). */
const verifiedProjection = (o: Json): Json => ({
  metadata: { name: o?.metadata?.name, namespace: o?.metadata?.namespace },
  spec: o?.spec,
});

/** Views on the shared cache (`deps.cache`), or on one of its own; `onChange` is called after each cache update. */
export function startIdentityViews(
  deps: Pick<Deps, 'kube' | 'log' | 'cache'> & { associations: AssociationIndex },
  cfg: ViewsConfig,
  onChange: (c: ViewChange) => void,
): IdentityViews & Running {
  const { log } = deps;
  const { cache, release } = sharedOrOwnCache(deps, (sel, e) =>
    log.warn({ err: e, path: sel.path }, 'identity watch failed; retrying'),
  );
  const viewOptions: ViewOptions = {
    credentials: cfg.credentials,
    annotationPrefix: cfg.annotationPrefix,
    injectedVolumes: cfg.injectedVolumes,
  };
  const pair = (k: string) => {
    const [namespace = '', serviceAccount = ''] = k.split('/');
    onChange({ kind: 'pair', namespace, serviceAccount });
  };

  // Sources first, Pods last: the first decisions are made on synced sources.
  const sas = cache.view<SaSettings>({
    path: '/api/v1/serviceaccounts',
    metadataOnly: true,
    transform: (o) => parseServiceAccount(o, cfg.annotationPrefix),
    onAdd: (_s, k) => pair(k),
    onUpdate: (s, old, k) => {
      if (JSON.stringify(s) !== JSON.stringify(old)) pair(k);
    },
    onDelete: (_s, k) => pair(k),
  });
  let table: ConfigMapTable = EMPTY_TABLE;
  const loadConfigMap = (text: string | undefined, present: boolean) => {
    const r = parseConfigMapDocument(text, table);
    if (r.ok) table = r.table;
    else if (!present) table = EMPTY_TABLE;
    else log.warn({ error: r.error }, 'kOps ConfigMap is invalid; keeping the previous table');
    onChange({ kind: 'all' });
  };
  // The same selection as the verifier's and the webhook's (the path is not encoded there either: a namespace name
  // is a DNS label).
  const cm = cfg.watchConfigMap
    ? cache.view<{ config?: string }>({
        path: `/api/v1/namespaces/${cfg.namespace}/configmaps`,
        fieldSelector: `metadata.name=${KOPS_CONFIGMAP_NAME}`,
        transform: (o) => ({ config: typeof o?.data?.config === 'string' ? o.data.config : undefined }),
        onAdd: (o) => loadConfigMap(o.config, true),
        onUpdate: (o) => loadConfigMap(o.config, true),
        onDelete: () => loadConfigMap(undefined, false),
      })
    : undefined;
  const compiler = new PolicyCompiler();
  let policySet: PolicySet | undefined;
  const policyChanged = () => {
    policySet = undefined;
    onChange({ kind: 'all' });
  };
  const policies = cache.view<Json>({
    path: `${VI_API}/identitypolicies`,
    transform: policyProjection,
    onAdd: policyChanged,
    onUpdate: policyChanged,
    onDelete: policyChanged,
  });
  const namespaces = cache.view<NamespaceView>({
    path: '/api/v1/namespaces',
    metadataOnly: true,
    transform: (o) => ({
      labels: { ...(o?.metadata?.labels ?? {}) },
      ...(typeof o?.metadata?.annotations?.[REPAIR_ANNOTATION] === 'string'
        ? { repair: o.metadata.annotations[REPAIR_ANNOTATION] }
        : {}),
    }),
    onUpdate: (n, old, k) => {
      if (JSON.stringify(n) !== JSON.stringify(old)) onChange({ kind: 'namespace', namespace: k });
    },
  });
  const viPair = (o: Json) => pair(`${o.metadata?.namespace}/${o.spec?.serviceAccount}`);
  const verified = cache.view<Json>({
    path: `${VI_API}/verifiedidentities`,
    transform: verifiedProjection,
    onAdd: viPair,
    onUpdate: viPair,
    onDelete: viPair,
  });
  const rsChanged = (k: string) => {
    const [namespace = '', name = ''] = k.split('/');
    onChange({ kind: 'replicaset', namespace, name });
  };
  const replicaSets = cache.view<OwnerRef | null>({
    path: '/apis/apps/v1/replicasets',
    metadataOnly: true,
    transform: (o) => {
      const r = (o?.metadata?.ownerReferences ?? []).find((x: Json) => x?.controller === true);
      return r ? { kind: String(r.kind), name: String(r.name) } : null;
    },
    onAdd: (_r, k) => rsChanged(k),
    onUpdate: (r, old, k) => {
      if (r?.name !== old?.name) rsChanged(k);
    },
  });
  const unsubscribe = deps.associations.subscribe((c) => {
    for (const r of [c.before, c.after])
      if (r) onChange({ kind: 'pair', namespace: r.namespace, serviceAccount: r.serviceAccount });
  });
  // Only this reconciler watches every not-finished Pod (docs/adr/0900); a Pod it does not follow is kept as null.
  const pods = cache.view<PodView | null>({
    path: '/api/v1/pods',
    fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
    transform: (o) => toPodView(o, viewOptions) ?? null,
    onAdd: (_p, key) => onChange({ kind: 'pod', key }),
    onUpdate: (_p, _old, key) => onChange({ kind: 'pod', key }),
    onDelete: (_p, key) => onChange({ kind: 'pod', key }),
  });
  const all = [sas, cm, policies, namespaces, verified, replicaSets, pods].filter(
    (v) => !!v,
  ) as CacheView<unknown>[];

  return {
    pod: (key) => pods.get(key) ?? undefined,
    podKeys: () => pods.keys(),
    serviceAccount: (ns, name) => sas.get(`${ns}/${name}`),
    configMap: () => table,
    policies: () => (policySet ??= compiler.compileAll(policies.values())),
    namespace: (name) => namespaces.get(name),
    verified: (ns, name) => verified.get(`${ns}/${name}`),
    replicaSetOwner: (ns, name) => replicaSets.get(`${ns}/${name}`) ?? undefined,
    associations: deps.associations,
    synced: () => all.every((v) => v.synced) && deps.associations.synced(),
    async waitForSync(timeoutMs) {
      const r = await Promise.all([
        ...all.map((v) => v.waitForSync(timeoutMs)),
        deps.associations.waitForSync(timeoutMs),
      ]);
      return r.every(Boolean);
    },
    async stop() {
      unsubscribe();
      for (const v of all) v.close();
      release();
    },
  };
}
