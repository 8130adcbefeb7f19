// The identity of every pending or running Pod, computed from the objects a caller can read (docs/identities.md):
// what `lanyard get identities` prints and what `lanyard doctor` can list. The decision is decide.ts's, the same the
// reconciler makes; only the inputs come from one round of LIST requests instead of informers.
import type { ReplicaSet } from 'kubernetes-types/apps/v1.js';
import type { ConfigMap, Namespace, Pod, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { KubeObject, Stored } from '../core/kube-object.ts';
import { KubeApiError } from '../kube/client.ts';
import { WEBHOOK_DEFAULTS } from '../config/webhook.ts';
import { parseServiceAccount, type SaSettings } from '../identity/annotations.ts';
import { EMPTY_TABLE, parseConfigMapDocument, type ConfigMapTable } from '../identity/configmap.ts';
import { credentialOptions } from '../identity/pod-credentials.ts';
import { WEB_IDENTITY_VOLUME, type InjectionFlags } from '../identity/resolve.ts';
import { lanyardRecord, type AssociationRecord } from '../associations/model.ts';
import type { PodIdentityAssociation } from '../associations/types.ts';
import { selectOwner } from '../associations/decide.ts';
import { KOPS_CONFIGMAP_NAME } from '../webhook/config-sources.ts';
import { EMPTY_POLICY_SET, PolicyCompiler, type PolicySet } from '../verification/policy.ts';
import type { IdentityPolicy, VerifiedIdentity } from '../verification/types.ts';
import {
  decideIdentity,
  toPodView,
  workloadOf,
  type OwnerRef,
  type PodIdentity,
  type PodView,
  type ViewOptions,
} from './decide.ts';
import { decideInput } from './gather.ts';

/** One Pod's row, as `lanyard get identities` and `lanyard doctor` print it. */
export interface IdentityRow extends PodIdentity {
  namespace: string;
  pod: string;
  serviceAccount: string;
  /** `deployment/web`, `statefulset/db`, `daemonset/agent`; undefined for bare Pods (only reported, never repaired). */
  workload?: string;
  creationTimestamp: string;
}

/** A Pod's row: its decision, the Pod and the workload it belongs to (the reconciler's rows too). */
export function identityRow(
  d: PodIdentity,
  pod: PodView,
  workload: { kind: string; name: string } | undefined,
  creationTimestamp: string,
): IdentityRow {
  return {
    ...d,
    namespace: pod.namespace,
    pod: pod.name,
    serviceAccount: pod.serviceAccount,
    ...(workload ? { workload: `${workload.kind.toLowerCase()}/${workload.name}` } : {}),
    creationTimestamp,
  };
}

export interface SnapshotOptions {
  /** One namespace, or undefined for all. */
  namespace?: string;
  /** Namespace of the kOps ConfigMap (the webhook's `--namespace`); '' skips it. */
  configMapNamespace: string;
  annotationPrefix?: string;
  nowMs: number;
}

export interface SnapshotResult {
  rows: IdentityRow[];
  /** Inputs the caller may not read (403), so the answer is partial: e.g. `identitypolicies`. */
  unreadable: string[];
}

/** How the snapshot reads: every item of a collection (all pages), and one object, as the API server stores them. */
export interface Reader {
  list<T extends KubeObject>(path: string, query?: Record<string, string>): Promise<Stored<T>[]>;
  get<T extends KubeObject>(path: string): Promise<Stored<T>>;
}

/** Reads what the caller may; a 403 or 404 on a collection reads as "nothing" and is named in `unreadable`. */
export async function identitySnapshot(read: Reader, o: SnapshotOptions): Promise<SnapshotResult> {
  const unreadable: string[] = [];
  const prefix = o.annotationPrefix ?? WEBHOOK_DEFAULTS.annotationPrefix;
  const lists = await readLists(read, o, unreadable);
  const flags: InjectionFlags = { ...WEBHOOK_DEFAULTS, annotationPrefix: prefix };
  const viewOptions: ViewOptions = {
    credentials: credentialOptions({
      stsAudiences: [flags.tokenAudience],
      podIdentityAudiences: [flags.containerCredentialsAudience],
    }),
    annotationPrefix: prefix,
    injectedVolumes: [WEB_IDENTITY_VOLUME, flags.containerCredentialsTokenVolumeName],
  };
  const sources = indexSources(lists, prefix, unreadable.includes('identitypolicies'));
  const rows: IdentityRow[] = [];
  for (const p of lists.pods) {
    const pod = toPodView(p, viewOptions);
    const row = pod && snapshotRow(p, pod, sources, flags, o.nowMs);
    if (row) rows.push(row);
  }
  rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod));
  return { rows, unreadable };
}

interface SnapshotLists {
  pods: Stored<Pod>[];
  serviceAccounts: Stored<ServiceAccount>[];
  associations: Stored<PodIdentityAssociation>[];
  policies: Stored<IdentityPolicy>[];
  namespaces: Stored<Namespace>[];
  verified: Stored<VerifiedIdentity>[];
  replicaSets: Stored<ReplicaSet>[];
  configMaps: Stored<ConfigMap>[];
}

/** One round of LIST requests (the namespace itself by GET when one is named); what is unreadable is named. */
async function readLists(read: Reader, o: SnapshotOptions, unreadable: string[]): Promise<SnapshotLists> {
  const at = (p: string) =>
    o.namespace ? `${p.replace(/\/([a-z]+)$/, `/namespaces/${encodeURIComponent(o.namespace)}/$1`)}` : p;
  const list = async <T extends KubeObject>(
    what: string,
    path: string,
    query?: Record<string, string>,
  ): Promise<Stored<T>[]> => {
    try {
      return await read.list<T>(path, query);
    } catch (e) {
      if (e instanceof KubeApiError && (e.status === 403 || e.status === 404)) {
        unreadable.push(what);
        return [];
      }
      throw e;
    }
  };
  const [pods, serviceAccounts, associations, policies, namespaces, verified, replicaSets, configMaps] =
    await Promise.all([
      list<Pod>('pods', at('/api/v1/pods'), {
        fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
      }),
      list<ServiceAccount>('serviceaccounts', at('/api/v1/serviceaccounts')),
      list<PodIdentityAssociation>(
        'podidentityassociations',
        at('/apis/lanyard.dev/v1alpha1/podidentityassociations'),
      ),
      list<IdentityPolicy>('identitypolicies', '/apis/lanyard.dev/v1alpha1/identitypolicies'),
      o.namespace
        ? read.get<Namespace>(`/api/v1/namespaces/${encodeURIComponent(o.namespace)}`).then(
            (n) => [n],
            () => {
              unreadable.push('namespaces');
              return [];
            },
          )
        : list<Namespace>('namespaces', '/api/v1/namespaces'),
      list<VerifiedIdentity>('verifiedidentities', at('/apis/lanyard.dev/v1alpha1/verifiedidentities')),
      list<ReplicaSet>('replicasets', at('/apis/apps/v1/replicasets')),
      o.configMapNamespace
        ? list<ConfigMap>(
            'configmaps',
            `/api/v1/namespaces/${encodeURIComponent(o.configMapNamespace)}/configmaps`,
            { fieldSelector: `metadata.name=${KOPS_CONFIGMAP_NAME}` },
          )
        : Promise.resolve([]),
    ]);
  return { pods, serviceAccounts, associations, policies, namespaces, verified, replicaSets, configMaps };
}

/** The lists by the keys a Pod's decision looks them up with. */
interface SnapshotSources {
  serviceAccounts: Map<string, SaSettings>;
  associations: Map<string, AssociationRecord[]>;
  /** Undefined when the IdentityPolicies could not be read: nothing is denied then. */
  policies: PolicySet | undefined;
  labels: Map<string, Record<string, string>>;
  verified: Map<string, VerifiedIdentity>;
  replicaSetOwners: Map<string, OwnerRef>;
  configMap: ConfigMapTable;
}

function indexSources(l: SnapshotLists, prefix: string, policiesUnreadable: boolean): SnapshotSources {
  const associations = new Map<string, AssociationRecord[]>();
  for (const a of l.associations) {
    const r = lanyardRecord(a, '');
    const k = `${r.namespace}/${r.serviceAccount}`;
    associations.set(k, [...(associations.get(k) ?? []), r]);
  }
  const replicaSetOwners = new Map<string, OwnerRef>();
  for (const rs of l.replicaSets) {
    const r = (rs.metadata.ownerReferences ?? []).find((x) => x?.controller === true);
    if (r)
      replicaSetOwners.set(`${rs.metadata.namespace}/${rs.metadata.name}`, { kind: r.kind, name: r.name });
  }
  const cm = l.configMaps[0] ? parseConfigMapDocument(l.configMaps[0].data?.config) : undefined;
  return {
    serviceAccounts: new Map(
      l.serviceAccounts.map((s) => [
        `${s.metadata.namespace}/${s.metadata.name}`,
        parseServiceAccount(s, prefix),
      ]),
    ),
    associations,
    policies: policiesUnreadable
      ? undefined
      : l.policies.length
        ? new PolicyCompiler().compileAll(l.policies)
        : EMPTY_POLICY_SET,
    labels: new Map(l.namespaces.map((n) => [n.metadata.name, n.metadata.labels ?? {}])),
    verified: new Map(l.verified.map((v) => [`${v.metadata.namespace}/${v.metadata.name}`, v])),
    replicaSetOwners,
    configMap: cm?.ok ? cm.table : EMPTY_TABLE,
  };
}

/** One Pod's row, or undefined when it uses no identity and is declared none. */
function snapshotRow(
  p: Stored<Pod>,
  pod: PodView,
  s: SnapshotSources,
  flags: InjectionFlags,
  nowMs: number,
): IdentityRow | undefined {
  const pair = `${pod.namespace}/${pod.serviceAccount}`;
  const d = decideIdentity(
    decideInput(
      pod,
      {
        serviceAccount: s.serviceAccounts.get(pair),
        association: selectOwner(s.associations.get(pair) ?? []),
        configMap: s.configMap,
        policies: s.policies,
        namespaceLabels: s.labels.get(pod.namespace),
        verified: (name) => s.verified.get(`${pod.namespace}/${name}`),
      },
      flags,
      nowMs,
    ),
  );
  if (!d) return undefined;
  const w = workloadOf(pod.owner, (rs) => s.replicaSetOwners.get(`${pod.namespace}/${rs}`));
  return identityRow(d, pod, w, String(p.metadata.creationTimestamp ?? ''));
}
