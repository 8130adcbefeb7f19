// The identity of every pending or running Pod, computed from the objects a caller can read (docs/identities.md):
// what `lanyard get identities` prints and what `lanyard doctor` can list. The decision is decide.ts's, the same the
// reconciler makes; only the inputs come from one round of LIST requests instead of informers.
import type { Json } from '../kube/client.ts';
import { KubeApiError } from '../kube/client.ts';
import { WEBHOOK_DEFAULTS } from '../config/webhook.ts';
import { parseServiceAccount, type SaSettings } from '../identity/annotations.ts';
import { EMPTY_TABLE, parseConfigMapDocument } from '../identity/configmap.ts';
import { credentialOptions } from '../identity/pod-credentials.ts';
import { resolveIdentity, WEB_IDENTITY_VOLUME, type InjectionFlags } from '../identity/resolve.ts';
import { lanyardRecord, type AssociationRecord } from '../associations/model.ts';
import { selectOwner } from '../associations/decide.ts';
import { KOPS_CONFIGMAP_NAME } from '../webhook/config-sources.ts';
import { EMPTY_POLICY_SET, PolicyCompiler, decidePolicy } from '../verification/policy.ts';
import { fingerprintOf } from '../verification/verified-identity.ts';
import { decideIdentity, toPodView, workloadOf, type OwnerRef, type PodIdentity } from './decide.ts';

/** One Pod's row, as `lanyard get identities` and `lanyard doctor` print it. */
export interface IdentityRow extends PodIdentity {
  namespace: string;
  pod: string;
  serviceAccount: string;
  /** `deployment/web`, `statefulset/db`, `daemonset/agent`; undefined for bare Pods (only reported, never repaired). */
  workload?: string;
  creationTimestamp: string;
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

/** How the snapshot reads: every item of a collection (all pages), and one object. */
export interface Reader {
  list(path: string, query?: Record<string, string>): Promise<Json[]>;
  get(path: string): Promise<Json>;
}

/** Reads what the caller may; a 403 or 404 on a collection reads as "nothing" and is named in `unreadable`. */
export async function identitySnapshot(read: Reader, o: SnapshotOptions): Promise<SnapshotResult> {
  const unreadable: string[] = [];
  const prefix = o.annotationPrefix ?? WEBHOOK_DEFAULTS.annotationPrefix;
  const at = (p: string) =>
    o.namespace ? `${p.replace(/\/([a-z]+)$/, `/namespaces/${encodeURIComponent(o.namespace)}/$1`)}` : p;
  const list = async (what: string, path: string, query?: Record<string, string>): Promise<Json[]> => {
    try {
      return await read.list(path, query);
    } catch (e) {
      if (e instanceof KubeApiError && (e.status === 403 || e.status === 404)) {
        unreadable.push(what);
        return [];
      }
      throw e;
    }
  };
  const [pods, sas, assocs, policies, namespaces, vis, rss, cms] = await Promise.all([
    list('pods', at('/api/v1/pods'), { fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' }),
    list('serviceaccounts', at('/api/v1/serviceaccounts')),
    list('podidentityassociations', at('/apis/lanyard.dev/v1alpha1/podidentityassociations')),
    list('identitypolicies', '/apis/lanyard.dev/v1alpha1/identitypolicies'),
    o.namespace
      ? read.get(`/api/v1/namespaces/${encodeURIComponent(o.namespace)}`).then(
          (n) => [n],
          () => {
            unreadable.push('namespaces');
            return [];
          },
        )
      : list('namespaces', '/api/v1/namespaces'),
    list('verifiedidentities', at('/apis/lanyard.dev/v1alpha1/verifiedidentities')),
    list('replicasets', at('/apis/apps/v1/replicasets')),
    o.configMapNamespace
      ? list('configmaps', `/api/v1/namespaces/${encodeURIComponent(o.configMapNamespace)}/configmaps`, {
          fieldSelector: `metadata.name=${KOPS_CONFIGMAP_NAME}`,
        })
      : Promise.resolve([]),
  ]);

  const flags: InjectionFlags = { ...WEBHOOK_DEFAULTS, annotationPrefix: prefix };
  const credentials = credentialOptions({
    stsAudiences: [flags.tokenAudience],
    podIdentityAudiences: [flags.containerCredentialsAudience],
  });
  const viewOptions = {
    credentials,
    annotationPrefix: prefix,
    injectedVolumes: [WEB_IDENTITY_VOLUME, flags.containerCredentialsTokenVolumeName],
  };
  const saByKey = new Map<string, SaSettings>(
    sas.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, parseServiceAccount(s, prefix)]),
  );
  const byPair = new Map<string, AssociationRecord[]>();
  for (const a of assocs) {
    const r = lanyardRecord(a, '');
    const k = `${r.namespace}/${r.serviceAccount}`;
    byPair.set(k, [...(byPair.get(k) ?? []), r]);
  }
  const policySet = policies.length ? new PolicyCompiler().compileAll(policies) : EMPTY_POLICY_SET;
  const labels = new Map<string, Record<string, string>>(
    namespaces.map((n) => [n.metadata.name, n.metadata.labels ?? {}]),
  );
  const viByKey = new Map<string, Json>(vis.map((v) => [`${v.metadata.namespace}/${v.metadata.name}`, v]));
  const rsOwner = new Map<string, OwnerRef>();
  for (const rs of rss) {
    const r = (rs.metadata.ownerReferences ?? []).find((x: Json) => x?.controller === true);
    if (r) rsOwner.set(`${rs.metadata.namespace}/${rs.metadata.name}`, { kind: r.kind, name: r.name });
  }
  const cm = cms[0] ? parseConfigMapDocument(cms[0].data?.config) : undefined;
  const table = cm?.ok ? cm.table : EMPTY_TABLE;

  const rows: IdentityRow[] = [];
  for (const p of pods) {
    const pod = toPodView(p, viewOptions);
    if (!pod) continue;
    const sa = saByKey.get(`${pod.namespace}/${pod.serviceAccount}`);
    const association = selectOwner(byPair.get(`${pod.namespace}/${pod.serviceAccount}`) ?? []);
    const declared = resolveIdentity(
      {
        namespace: pod.namespace,
        serviceAccount: pod.serviceAccount,
        podAnnotations: undefined,
        sa: sa ? { found: true, settings: sa } : { found: false },
        association,
        inIdentitiesFile: !association && pod.used.some((u) => u.mode === 'ContainerCredentials'),
        configMap: table,
      },
      flags,
      () => 0,
    )?.identity;
    const d = decideIdentity({
      pod,
      declared,
      declaredFingerprint: declared ? fingerprintOf(declared.fingerprint) : undefined,
      association,
      policy: (roleARN, targetRoleARN) =>
        unreadable.includes('identitypolicies')
          ? { allowed: true, reason: 'allowed' }
          : decidePolicy(policySet, {
              namespace: pod.namespace,
              namespaceLabels: labels.get(pod.namespace),
              serviceAccount: pod.serviceAccount,
              roleARN,
              targetRoleARN,
            }),
      verified: (name) => viByKey.get(`${pod.namespace}/${name}`),
      nowMs: o.nowMs,
    });
    if (!d) continue;
    const w = workloadOf(pod.owner, (rs) => rsOwner.get(`${pod.namespace}/${rs}`));
    rows.push({
      ...d,
      namespace: pod.namespace,
      pod: pod.name,
      serviceAccount: pod.serviceAccount,
      ...(w ? { workload: `${w.kind.toLowerCase()}/${w.name}` } : {}),
      creationTimestamp: String(p.metadata.creationTimestamp ?? ''),
    });
  }
  rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.pod.localeCompare(b.pod));
  return { rows, unreadable };
}
