// The read-only views the identity reconciler decides from (docs/identities.md), behind one small interface so a
// shared informer factory can supply them. `startIdentityViews` builds them from src/kube's Informer: Pods (not
// finished), ServiceAccounts and Namespaces (metadata only), the kOps ConfigMap, IdentityPolicies, VerifiedIdentities
// and ReplicaSets (metadata only, for the Deployment that owns a Pod). Associations come from the shared index.
import type { Json } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
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

export interface ViewsConfig extends Pick<ViewOptions, 'annotationPrefix' | 'credentials' | 'injectedVolumes'> {
  watchConfigMap: boolean;
  /** Namespace of the kOps ConfigMap (`--namespace`). */
  namespace: string;
}

/** Informer-backed views; `onChange` is called after each cache update. */
export function startIdentityViews(
  deps: Pick<Deps, 'kube' | 'log'> & { associations: AssociationIndex },
  cfg: ViewsConfig,
  onChange: (c: ViewChange) => void,
): IdentityViews & Running {
  const { kube, log } = deps;
  const onError = (what: string) => (e: unknown) => log.warn({ err: e }, `watch of ${what} failed; retrying`);
  const viewOptions: ViewOptions = { credentials: cfg.credentials, annotationPrefix: cfg.annotationPrefix, injectedVolumes: cfg.injectedVolumes };
  const pair = (k: string) => {
    const [namespace = '', serviceAccount = ''] = k.split('/');
    onChange({ kind: 'pair', namespace, serviceAccount });
  };

  const pods = new Informer<PodView | null>({
    client: kube,
    path: '/api/v1/pods',
    fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
    transform: (o) => toPodView(o, viewOptions) ?? null,
    onAdd: (_p, key) => onChange({ kind: 'pod', key }),
    onUpdate: (_p, _old, key) => onChange({ kind: 'pod', key }),
    onDelete: (_p, key) => onChange({ kind: 'pod', key }),
    onError: onError('pods'),
  });
  const sas = new Informer<SaSettings>({
    client: kube,
    path: '/api/v1/serviceaccounts',
    metadataOnly: true,
    transform: (o) => parseServiceAccount(o, cfg.annotationPrefix),
    onAdd: (_s, k) => pair(k),
    onUpdate: (s, old, k) => { if (JSON.stringify(s) !== JSON.stringify(old)) pair(k); },
    onDelete: (_s, k) => pair(k),
    onError: onError('serviceaccounts'),
  });
  let table: ConfigMapTable = EMPTY_TABLE;
  const loadConfigMap = (o: Json | undefined) => {
    const r = parseConfigMapDocument(o?.data?.config, table);
    if (r.ok) table = r.table;
    else if (!o) table = EMPTY_TABLE;
    else log.warn({ error: r.error }, 'kOps ConfigMap is invalid; keeping the previous table');
    onChange({ kind: 'all' });
  };
  const cm = cfg.watchConfigMap
    ? new Informer<Json>({
      client: kube,
      path: `/api/v1/namespaces/${encodeURIComponent(cfg.namespace)}/configmaps`,
      fieldSelector: `metadata.name=${KOPS_CONFIGMAP_NAME}`,
      onAdd: (o) => loadConfigMap(o),
      onUpdate: (o) => loadConfigMap(o),
      onDelete: () => loadConfigMap(undefined),
      onError: onError('configmap'),
    })
    : undefined;
  const compiler = new PolicyCompiler();
  let policySet: PolicySet | undefined;
  const policyChanged = () => { policySet = undefined; onChange({ kind: 'all' }); };
  const policies = new Informer<Json>({
    client: kube,
    path: `${VI_API}/identitypolicies`,
    onAdd: policyChanged,
    onUpdate: policyChanged,
    onDelete: policyChanged,
    onError: onError('identitypolicies'),
  });
  const namespaces = new Informer<NamespaceView>({
    client: kube,
    path: '/api/v1/namespaces',
    metadataOnly: true,
    transform: (o) => ({ labels: { ...(o?.metadata?.labels ?? {}) },
      ...(typeof o?.metadata?.annotations?.[REPAIR_ANNOTATION] === 'string' ? { repair: o.metadata.annotations[REPAIR_ANNOTATION] } : {}) }),
    onUpdate: (n, old, k) => {
      if (JSON.stringify(n) !== JSON.stringify(old)) onChange({ kind: 'namespace', namespace: k });
    },
    onError: onError('namespaces'),
  });
  const verified = new Informer<Json>({
    client: kube,
    path: `${VI_API}/verifiedidentities`,
    onAdd: (o) => pair(`${o.metadata?.namespace}/${o.spec?.serviceAccount}`),
    onUpdate: (o) => pair(`${o.metadata?.namespace}/${o.spec?.serviceAccount}`),
    onDelete: (o) => pair(`${o.metadata?.namespace}/${o.spec?.serviceAccount}`),
    onError: onError('verifiedidentities'),
  });
  const replicaSets = new Informer<OwnerRef | null>({
    client: kube,
    path: '/apis/apps/v1/replicasets',
    metadataOnly: true,
    transform: (o) => {
      const r = (o?.metadata?.ownerReferences ?? []).find((x: Json) => x?.controller === true);
      return r ? { kind: String(r.kind), name: String(r.name) } : null;
    },
    onAdd: (_r, k) => rsChanged(k),
    onUpdate: (r, old, k) => { if (r?.name !== old?.name) rsChanged(k); },
    onError: onError('replicasets'),
  });
  function rsChanged(k: string) {
    const [namespace = '', name = ''] = k.split('/');
    onChange({ kind: 'replicaset', namespace, name });
  }
  const unsubscribe = deps.associations.subscribe((c) => {
    for (const r of [c.before, c.after]) if (r) onChange({ kind: 'pair', namespace: r.namespace, serviceAccount: r.serviceAccount });
  });

  // Sources first, Pods last: the first decisions are made on synced sources.
  const informers = [sas, cm, policies, namespaces, verified, replicaSets].filter((x) => !!x) as Informer<unknown>[];
  for (const inf of informers) inf.start();
  pods.start();
  const all = [...informers, pods];

  return {
    pod: (key) => pods.store.get(key) ?? undefined,
    podKeys: () => pods.store.keys(),
    serviceAccount: (ns, name) => sas.store.get(`${ns}/${name}`),
    configMap: () => table,
    policies: () => (policySet ??= compiler.compileAll(policies.store.values())),
    namespace: (name) => namespaces.store.get(name),
    verified: (ns, name) => verified.store.get(`${ns}/${name}`),
    replicaSetOwner: (ns, name) => replicaSets.store.get(`${ns}/${name}`) ?? undefined,
    associations: deps.associations,
    synced: () => all.every((i) => i.synced) && deps.associations.synced(),
    async waitForSync(timeoutMs) {
      const r = await Promise.all([...all.map((i) => i.waitForSync(timeoutMs)), deps.associations.waitForSync(timeoutMs)]);
      return r.every(Boolean);
    },
    async stop() {
      unsubscribe();
      for (const i of all) i.stop();
    },
  };
}
