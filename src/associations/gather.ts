// The association controller's gather step (docs/associations.md): its views of the process's shared cache and what
// they say now about one PodIdentityAssociation — the object (the cache, which shows our own last write until the
// watch delivers it; the API server when the cache has not seen it), the policy decision, the other objects of its
// pair, its VerifiedIdentities and probe Pods. Handlers only enqueue keys. Reads only; apply.ts writes.
import type { Namespace, Pod, PodList } from 'kubernetes-types/core/v1.js';
import { getOrUndefined, type KubeClient } from '../kube/client.ts';
import type { CacheView, InformerFactory } from '../kube/cache.ts';
import { getCondition } from '../kube/conditions.ts';
import type { Logger } from '../runtime/log.ts';
import { PolicyCompiler, decidePolicy, type PolicyDecision, type PolicySet } from '../verification/policy.ts';
import type { IdentityPolicy, VerifiedIdentity } from '../verification/types.ts';
import type { AssociationIndex } from './lookup.ts';
import {
  GROUP,
  KIND,
  PLURAL,
  PROBE_GENERATION_ANNOTATION,
  PROBE_LABEL,
  VERSION,
  recordOf,
  type AssociationRecord,
  type LanyardAssociation,
  type PodIdentityAssociation,
} from './model.ts';
import { selectOwner, type ProbeRecord, type ViRecord } from './decide.ts';

export const API = `/apis/${GROUP}/${VERSION}`;

export function assocPath(namespace: string, name?: string, sub?: string): string {
  return `${API}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}${name ? `/${encodeURIComponent(name)}` : ''}${sub ? `/${sub}` : ''}`;
}

export const keyOf = (r: { objectNamespace: string; objectName: string }) =>
  `${r.objectNamespace}/${r.objectName}`;

function viRecord(o: VerifiedIdentity | undefined): ViRecord {
  return {
    namespace: String(o?.metadata?.namespace ?? ''),
    name: String(o?.metadata?.name ?? ''),
    serviceAccount: String(o?.spec?.serviceAccount ?? ''),
    mode: String(o?.spec?.mode ?? ''),
    roleARN: String(o?.spec?.roleARN ?? ''),
    targetRoleARN: String(o?.spec?.targetRoleARN ?? ''),
    fingerprint: String(o?.spec?.fingerprint ?? ''),
    verifiedAt: String(o?.spec?.verifiedAt ?? ''),
    expiresAt: String(o?.spec?.expiresAt ?? ''),
  };
}

function probeRecord(o: Pod | undefined): ProbeRecord {
  const ref = (o?.metadata?.ownerReferences ?? []).find(
    (r) => r.kind === KIND && String(r.apiVersion).startsWith(`${GROUP}/`),
  );
  return {
    namespace: String(o?.metadata?.namespace ?? ''),
    name: String(o?.metadata?.name ?? ''),
    ownerUid: String(ref?.uid ?? ''),
    ownerName: String(ref?.name ?? ''),
    generation: Number(o?.metadata?.annotations?.[PROBE_GENERATION_ANNOTATION] ?? 0),
  };
}

/** The association controller's views; changes enqueue the keys they concern. */
export class AssociationViews {
  readonly policies: CacheView<IdentityPolicy>;
  readonly namespaces: CacheView<{ name: string; labels: Record<string, string> }>;
  readonly objects: CacheView<PodIdentityAssociation>;
  readonly vis: CacheView<ViRecord>;
  readonly probes: CacheView<ProbeRecord>;
  private readonly compiler = new PolicyCompiler();
  private policySet: PolicySet | undefined;

  constructor(
    cache: InformerFactory,
    private readonly lookup: AssociationIndex,
    private readonly clusterName: string,
    private readonly enqueue: (key: string) => void,
  ) {
    const policyChanged = () => {
      this.policySet = undefined;
      this.enqueueAll();
    };
    this.policies = cache.view<IdentityPolicy, IdentityPolicy>({
      path: `${API}/identitypolicies`,
      onAdd: policyChanged,
      onUpdate: (o, old) => {
        if (o?.metadata?.generation !== old?.metadata?.generation) policyChanged();
      },
      onDelete: policyChanged,
    });
    this.namespaces = cache.view<{ name: string; labels: Record<string, string> }, Namespace>({
      path: '/api/v1/namespaces',
      metadataOnly: true,
      transform: (o) => ({ name: String(o?.metadata?.name), labels: { ...(o?.metadata?.labels ?? {}) } }),
      onUpdate: (n, old) => {
        if (JSON.stringify(n.labels) !== JSON.stringify(old.labels)) this.enqueueNamespace(n.name);
      },
    });
    this.objects = cache.view<PodIdentityAssociation, PodIdentityAssociation>({ path: `${API}/${PLURAL}` });
    // The verifier refreshes entries on every exchange; an owner already verified for its generation has nothing to
    // learn from that.
    const viChanged = (v: ViRecord) => {
      const owner = lookup.ownerOf(clusterName, v.namespace, v.serviceAccount);
      if (owner?.kind === 'lanyard') this.requeueUnlessVerified(keyOf(owner));
    };
    this.vis = cache.view<ViRecord, VerifiedIdentity>({
      path: `${API}/verifiedidentities`,
      transform: viRecord,
      onAdd: viChanged,
      onUpdate: viChanged,
      onDelete: viChanged,
    });
    // A probe deleted before its exchange must be made again; one deleted after success (by us) changes nothing.
    this.probes = cache.view<ProbeRecord, Pod>({
      path: '/api/v1/pods',
      labelSelector: `${PROBE_LABEL}=true`,
      transform: probeRecord,
      onDelete: (p) => {
        if (p.ownerName) this.requeueUnlessVerified(`${p.namespace}/${p.ownerName}`);
      },
    });
  }

  all(): CacheView<unknown>[] {
    return [this.objects, this.policies, this.namespaces, this.vis, this.probes];
  }

  close(): void {
    for (const v of this.all()) v.close();
  }

  /** Before the first list of IdentityPolicies the set would look empty, and no policies allows everything. */
  ready(): boolean {
    return this.policies.synced && this.namespaces.synced;
  }

  /** The Lanyard objects of a pair (cluster, namespace, ServiceAccount). */
  keysOfPair(cluster: string | undefined, namespace: string, serviceAccount: string): string[] {
    return cluster
      ? this.lookup
          .recordsFor(cluster, namespace, serviceAccount)
          .filter((r) => r.kind === 'lanyard')
          .map(keyOf)
      : [];
  }

  enqueueAll(): void {
    for (const r of this.lookup.lanyardRecords()) this.enqueue(keyOf(r));
  }

  private enqueueNamespace(ns: string): void {
    for (const r of this.lookup.lanyardRecords()) if (r.objectNamespace === ns) this.enqueue(keyOf(r));
  }

  private requeueUnlessVerified(key: string): void {
    const raw = this.objects.get(key);
    const verified = raw && getCondition(raw.status?.conditions, 'Verified');
    if (verified?.status === 'True' && verified.observedGeneration === raw?.metadata?.generation) return;
    this.enqueue(key);
  }

  /** The cached copy (with our own last write), else the API server's; undefined when the object is gone. */
  async read(kube: KubeClient, key: string): Promise<PodIdentityAssociation | undefined> {
    const cached = this.objects.get(key);
    if (cached) return cached;
    const slash = key.indexOf('/');
    const raw = await getOrUndefined<PodIdentityAssociation>(
      kube,
      assocPath(key.slice(0, slash), key.slice(slash + 1)),
    );
    if (raw) this.objects.recordWrite(raw);
    return raw;
  }

  /** The IdentityPolicy decision on the object's namespace, ServiceAccount and roles. */
  policyFor(obj: LanyardAssociation): PolicyDecision {
    this.policySet ??= this.compiler.compileAll(this.policies.values());
    return decidePolicy(this.policySet, {
      namespace: obj.namespace,
      namespaceLabels: this.namespaces.get(obj.namespace)?.labels,
      serviceAccount: obj.spec.serviceAccount,
      roleARN: obj.spec.roleARN,
      targetRoleARN: obj.spec.targetRoleARN,
    });
  }

  /** The owner of the object's pair (the object counts even before the index has seen it) and one being deleted. */
  pairOf(
    obj: LanyardAssociation,
    cluster: string,
  ): { owner: AssociationRecord | undefined; deleting: AssociationRecord | undefined } {
    const others = this.lookup
      .recordsFor(cluster, obj.namespace, obj.spec.serviceAccount)
      .filter((r) => r.uid !== obj.uid);
    return {
      owner: selectOwner([...others, recordOf(obj, this.clusterName)]),
      deleting: others.find((r) => r.pendingDelete),
    };
  }

  /** The VerifiedIdentities of a pair. */
  verifiedOf(namespace: string, serviceAccount: string): ViRecord[] {
    return [...this.vis.values()].filter(
      (v) => v.namespace === namespace && v.serviceAccount === serviceAccount,
    );
  }

  /** The probe Pods an object owns. */
  probesOf(obj: Pick<LanyardAssociation, 'namespace' | 'uid'>): ProbeRecord[] {
    return [...this.probes.values()].filter((p) => p.namespace === obj.namespace && p.ownerUid === obj.uid);
  }

  async waitForSync(timeoutMs: number): Promise<boolean> {
    return (await Promise.all(this.all().map((v) => v.waitForSync(timeoutMs)))).every(Boolean);
  }
}

/** Pods of the ServiceAccount that have not finished (probe Pods aside); undefined when they cannot be listed. */
export async function runningPods(
  kube: KubeClient,
  log: Logger,
  namespace: string,
  serviceAccount: string,
): Promise<number | undefined> {
  try {
    const list = await kube.get<PodList | undefined>(
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
      {
        fieldSelector: `spec.serviceAccountName=${serviceAccount}`,
      },
    );
    return (list?.items ?? []).filter(
      (p) =>
        p?.status?.phase !== 'Succeeded' &&
        p?.status?.phase !== 'Failed' &&
        p?.metadata?.labels?.[PROBE_LABEL] !== 'true',
    ).length;
  } catch (e) {
    log.warn({ namespace, serviceAccount, err: e }, 'cannot count Pods');
    return undefined;
  }
}
