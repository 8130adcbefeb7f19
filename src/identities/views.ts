// The read-only views the identity reconciler decides from (docs/identities.md), behind one small interface.
// `startIdentityViews` takes them from the process's shared informer cache (docs/adr/1000-shared-informer-cache-and-
// reconcilers.md), or from a cache of its own when the reconciler is started alone: Pods (not finished),
// ServiceAccounts and Namespaces (metadata only), the kOps ConfigMap, IdentityPolicies, VerifiedIdentities and
// ReplicaSets (metadata only, for the Deployment that owns a Pod). Each view keeps only what a decision reads; the
// ServiceAccount, Namespace, ConfigMap, IdentityPolicy and VerifiedIdentity selections are the ones the verifier,
// the association controller and the webhook watch, so under `lanyard controller` and `lanyard run` they share one
// watch each. Associations come from the shared index.
import type { ConfigMap, Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
import { sharedOrOwnCache, type CacheView, type InformerFactory } from '../kube/cache.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import type { AssociationIndex } from '../associations/lookup.ts';
import { parseServiceAccount, type SaSettings } from '../identity/annotations.ts';
import { EMPTY_TABLE, parseConfigMapDocument, type ConfigMapTable } from '../identity/configmap.ts';
import { KOPS_CONFIGMAP_NAME } from '../webhook/config-sources.ts';
import { PolicyCompiler, type PolicySet } from '../verification/policy.ts';
import type { IdentityPolicy, VerifiedIdentity } from '../verification/types.ts';
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
  verified(namespace: string, name: string): VerifiedIdentity | undefined;
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
const policyProjection = (o: IdentityPolicy | undefined): IdentityPolicy => ({
  metadata: { name: o?.metadata?.name, uid: o?.metadata?.uid, generation: o?.metadata?.generation },
  spec: o?.spec,
});
/** What the view keeps of a VerifiedIdentity: what `verifiedEntryTrusted` reads (as the webhook's guard keeps). */
const verifiedProjection = (o: VerifiedIdentity | undefined): VerifiedIdentity => ({
  metadata: { name: o?.metadata?.name, namespace: o?.metadata?.namespace },
  spec: o?.spec,
});

type ViewsDeps = Pick<Deps, 'kube' | 'log' | 'cache'> & { associations: AssociationIndex };
type OnChange = (c: ViewChange) => void;

/** Views on the shared cache (`deps.cache`), or on one of its own; `onChange` is called after each cache update. */
export function startIdentityViews(
  deps: ViewsDeps,
  cfg: ViewsConfig,
  onChange: OnChange,
): IdentityViews & Running {
  const { cache, release } = sharedOrOwnCache(deps, (sel, e) =>
    deps.log.warn({ err: e, path: sel.path }, 'identity watch failed; retrying'),
  );
  // Sources first, Pods last: the first decisions are made on synced sources.
  const sas = serviceAccountView(cache, cfg, onChange);
  const cm = configMapSource(cache, cfg, deps.log, onChange);
  const policies = policySource(cache, onChange);
  const namespaces = namespaceView(cache, onChange);
  const verified = verifiedView(cache, onChange);
  const replicaSets = replicaSetView(cache, onChange);
  const unsubscribe = deps.associations.subscribe((c) => {
    for (const r of [c.before, c.after])
      if (r) onChange({ kind: 'pair', namespace: r.namespace, serviceAccount: r.serviceAccount });
  });
  const pods = podView(cache, cfg, onChange);
  const all = [sas, cm.view, policies.view, namespaces, verified, replicaSets, pods].filter(
    (v) => !!v,
  ) as CacheView<unknown>[];

  return {
    pod: (key) => pods.get(key) ?? undefined,
    podKeys: () => pods.keys(),
    serviceAccount: (ns, name) => sas.get(`${ns}/${name}`),
    configMap: () => cm.table(),
    policies: () => policies.set(),
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

/** A change of one ServiceAccount or VerifiedIdentity, by its `<namespace>/<serviceAccount>`. */
function pairChanged(onChange: OnChange, k: string): void {
  const [namespace = '', serviceAccount = ''] = k.split('/');
  onChange({ kind: 'pair', namespace, serviceAccount });
}

function serviceAccountView(
  cache: InformerFactory,
  cfg: ViewsConfig,
  onChange: OnChange,
): CacheView<SaSettings> {
  return cache.view<SaSettings, KubeObject>({
    path: '/api/v1/serviceaccounts',
    metadataOnly: true,
    transform: (o) => parseServiceAccount(o, cfg.annotationPrefix),
    onAdd: (_s, k) => pairChanged(onChange, k),
    onUpdate: (s, old, k) => {
      if (JSON.stringify(s) !== JSON.stringify(old)) pairChanged(onChange, k);
    },
    onDelete: (_s, k) => pairChanged(onChange, k),
  });
}

/** The kOps ConfigMap's table; an invalid update keeps the previous one. */
function configMapSource(
  cache: InformerFactory,
  cfg: ViewsConfig,
  log: Deps['log'],
  onChange: OnChange,
): { view: CacheView<{ config?: string }> | undefined; table(): ConfigMapTable } {
  let table: ConfigMapTable = EMPTY_TABLE;
  const load = (text: string | undefined, present: boolean) => {
    const r = parseConfigMapDocument(text, table);
    if (r.ok) table = r.table;
    else if (!present) table = EMPTY_TABLE;
    else log.warn({ error: r.error }, 'kOps ConfigMap is invalid; keeping the previous table');
    onChange({ kind: 'all' });
  };
  // The same selection as the verifier's and the webhook's (the path is not encoded there either: a namespace name
  // is a DNS label).
  const view = cfg.watchConfigMap
    ? cache.view<{ config?: string }, ConfigMap>({
        path: `/api/v1/namespaces/${cfg.namespace}/configmaps`,
        fieldSelector: `metadata.name=${KOPS_CONFIGMAP_NAME}`,
        transform: (o) => ({ config: typeof o?.data?.config === 'string' ? o.data.config : undefined }),
        onAdd: (o) => load(o.config, true),
        onUpdate: (o) => load(o.config, true),
        onDelete: () => load(undefined, false),
      })
    : undefined;
  return { view, table: () => table };
}

/** IdentityPolicies, compiled once per change. */
function policySource(
  cache: InformerFactory,
  onChange: OnChange,
): { view: CacheView<IdentityPolicy>; set(): PolicySet } {
  const compiler = new PolicyCompiler();
  let policySet: PolicySet | undefined;
  const policyChanged = () => {
    policySet = undefined;
    onChange({ kind: 'all' });
  };
  const view = cache.view<IdentityPolicy, IdentityPolicy>({
    path: `${VI_API}/identitypolicies`,
    transform: policyProjection,
    onAdd: policyChanged,
    onUpdate: policyChanged,
    onDelete: policyChanged,
  });
  return { view, set: () => (policySet ??= compiler.compileAll(view.values())) };
}

function namespaceView(cache: InformerFactory, onChange: OnChange): CacheView<NamespaceView> {
  return cache.view<NamespaceView, KubeObject>({
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
}

function verifiedView(cache: InformerFactory, onChange: OnChange): CacheView<VerifiedIdentity> {
  const viPair = (o: VerifiedIdentity) =>
    pairChanged(onChange, `${o.metadata?.namespace}/${o.spec?.serviceAccount}`);
  return cache.view<VerifiedIdentity, VerifiedIdentity>({
    path: `${VI_API}/verifiedidentities`,
    transform: verifiedProjection,
    onAdd: viPair,
    onUpdate: viPair,
    onDelete: viPair,
  });
}

/** The controller that owns each ReplicaSet (the Deployment a Pod belongs to). */
function replicaSetView(cache: InformerFactory, onChange: OnChange): CacheView<OwnerRef | null> {
  const rsChanged = (k: string) => {
    const [namespace = '', name = ''] = k.split('/');
    onChange({ kind: 'replicaset', namespace, name });
  };
  return cache.view<OwnerRef | null, KubeObject>({
    path: '/apis/apps/v1/replicasets',
    metadataOnly: true,
    transform: (o) => {
      const r = (o?.metadata?.ownerReferences ?? []).find((x) => x?.controller === true);
      return r ? { kind: String(r.kind), name: String(r.name) } : null;
    },
    onAdd: (_r, k) => rsChanged(k),
    onUpdate: (r, old, k) => {
      if (r?.name !== old?.name) rsChanged(k);
    },
  });
}

/** Only this reconciler watches every not-finished Pod (docs/adr/0900); a Pod it does not follow is kept as null. */
function podView(cache: InformerFactory, cfg: ViewsConfig, onChange: OnChange): CacheView<PodView | null> {
  const viewOptions: ViewOptions = {
    credentials: cfg.credentials,
    annotationPrefix: cfg.annotationPrefix,
    injectedVolumes: cfg.injectedVolumes,
  };
  return cache.view<PodView | null, Pod>({
    path: '/api/v1/pods',
    fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
    transform: (o) => toPodView(o, viewOptions) ?? null,
    onAdd: (_p, key) => onChange({ kind: 'pod', key }),
    onUpdate: (_p, _old, key) => onChange({ kind: 'pod', key }),
    onDelete: (_p, key) => onChange({ kind: 'pod', key }),
  });
}
