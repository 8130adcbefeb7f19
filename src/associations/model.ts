// Plain-object views of the objects the association capability reads: Lanyard PodIdentityAssociations, observed ACK
// ones, and what EKS answers. Pure: raw JSON in, small frozen records out (docs/associations.md#what-the-controller-does, docs/migrate-from-ack.md).
import type { AssociationIdentity } from '../identity/sources.ts';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { Condition } from '../kube/conditions.ts';
import type {
  AckPodIdentityAssociation,
  PodIdentityAssociation,
  PodIdentityAssociationSpec,
  PodIdentityAssociationStatus,
} from './types.ts';

export type * from './types.ts';

export const GROUP = 'lanyard.dev';
export const VERSION = 'v1alpha1';
export const PLURAL = 'podidentityassociations';
export const KIND = 'PodIdentityAssociation';
export const ACK_GROUP = 'eks.services.k8s.aws';
export const FINALIZER = 'lanyard.dev/pod-identity-association';
export const DELETION_POLICY_ANNOTATION = 'lanyard.dev/deletion-policy';
export const PROBE_LABEL = 'lanyard.dev/probe';
export const PROBE_GATE = 'lanyard.dev/probe';
export const PROBE_GENERATION_ANNOTATION = 'lanyard.dev/probe-generation';
export const MANAGED_TAGS = { managedBy: 'lanyard.dev/managed-by', uid: 'lanyard.dev/uid' } as const;
export const REPORTING_CONTROLLER = 'lanyard.dev/associations';

/** The spec fields Lanyard sends to EKS, normalised: absent target role is "", absent flag false. */
export interface DesiredAssociation {
  clusterName: string;
  namespace: string;
  serviceAccount: string;
  roleArn: string;
  targetRoleArn: string;
  disableSessionTags: boolean;
  /** Inline session policy (JSON text); "" when none. */
  policy: string;
  /** User tags plus the managed ones. */
  tags: Record<string, string>;
}

/** A Lanyard PodIdentityAssociation, as the reconciler needs it. */
export interface LanyardAssociation {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  resourceVersion: string;
  creationTimestamp: string;
  deleting: boolean;
  finalizers: string[];
  retain: boolean;
  spec: {
    serviceAccount: string;
    /**
     * ACK's field (seed 002), accepted so an ACK manifest applies with only its apiVersion changed; it must equal the
     * object's namespace (docs/migrate-from-ack.md). Undefined when absent.
     */
    namespace?: string;
    roleARN: string;
    targetRoleARN?: string;
    clusterName?: string;
    disableSessionTags: boolean;
    policy?: string;
    tags: Record<string, string>;
  };
  /** The object's status as stored (types.ts), its conditions always a list. */
  status: PodIdentityAssociationStatus & { conditions: Condition[] };
}

export function parseLanyardAssociation(obj: PodIdentityAssociation | undefined): LanyardAssociation {
  const m: ObjectMeta = obj?.metadata ?? {};
  const s: Partial<PodIdentityAssociationSpec> = obj?.spec ?? {};
  const st: PodIdentityAssociationStatus = obj?.status ?? {};
  return {
    namespace: String(m.namespace ?? ''),
    name: String(m.name ?? ''),
    uid: String(m.uid ?? ''),
    generation: Number(m.generation ?? 0),
    resourceVersion: String(m.resourceVersion ?? ''),
    creationTimestamp: String(m.creationTimestamp ?? ''),
    deleting: !!m.deletionTimestamp,
    finalizers: Array.isArray(m.finalizers) ? m.finalizers.map(String) : [],
    retain: m.annotations?.[DELETION_POLICY_ANNOTATION] === 'retain',
    spec: {
      serviceAccount: String(s.serviceAccount ?? ''),
      namespace: typeof s.namespace === 'string' ? s.namespace : undefined,
      roleARN: String(s.roleARN ?? ''),
      targetRoleARN: s.targetRoleARN ? String(s.targetRoleARN) : undefined,
      clusterName: s.clusterName ? String(s.clusterName) : undefined,
      disableSessionTags: s.disableSessionTags === true,
      policy: typeof s.policy === 'string' && s.policy !== '' ? s.policy : undefined,
      tags: isStringMap(s.tags) ? { ...s.tags } : {},
    },
    status: {
      clusterName: st.clusterName || undefined,
      associationID: st.associationID || undefined,
      removedAssociationID: st.removedAssociationID || undefined,
      associationARN: st.associationARN || undefined,
      externalID: st.externalID || undefined,
      observedGeneration: typeof st.observedGeneration === 'number' ? st.observedGeneration : undefined,
      lastVerifiedTime: st.lastVerifiedTime || undefined,
      conditions: Array.isArray(st.conditions) ? st.conditions : [],
    },
  };
}

function isStringMap(v: unknown): v is Record<string, string> {
  return (
    !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string')
  );
}

/**
 * The cluster an association belongs to: the spec's, else the one fixed in status at first Create or adoption (so a
 * later change of `--cluster-name` does not move existing associations), else `--cluster-name`.
 */
export function effectiveCluster(
  a: Pick<LanyardAssociation, 'spec' | 'status'>,
  defaultCluster: string,
): string {
  return a.spec.clusterName ?? a.status.clusterName ?? defaultCluster;
}

export function desiredOf(a: LanyardAssociation, defaultCluster: string): DesiredAssociation {
  return {
    clusterName: effectiveCluster(a, defaultCluster),
    namespace: a.namespace,
    serviceAccount: a.spec.serviceAccount,
    roleArn: a.spec.roleARN,
    targetRoleArn: a.spec.targetRoleARN ?? '',
    disableSessionTags: a.spec.disableSessionTags,
    policy: a.spec.policy ?? '',
    tags: { ...a.spec.tags, [MANAGED_TAGS.managedBy]: 'lanyard', [MANAGED_TAGS.uid]: a.uid },
  };
}

/** What the lookup and the owner rule need from either kind of association: the webhook's view plus bookkeeping. */
export interface AssociationRecord extends AssociationIdentity {
  resourceVersion: string;
  /** Cluster the association is for; undefined for an ACK object with only `clusterRef` (ignored). */
  cluster?: string;
  deleting: boolean;
  /** Generation, deletion, other finalizers and deletion policy: a change here needs a reconcile; status writes do not. */
  stamp: string;
  /** Deleting, and Lanyard will still delete its association in EKS (finalizer present, policy delete, id known). */
  pendingDelete: boolean;
}

export function lanyardRecord(obj: PodIdentityAssociation, defaultCluster: string): AssociationRecord {
  return recordOf(parseLanyardAssociation(obj), defaultCluster);
}

/** The record of an already parsed Lanyard association. */
export function recordOf(a: LanyardAssociation, defaultCluster: string): AssociationRecord {
  return {
    kind: 'lanyard',
    objectNamespace: a.namespace,
    objectName: a.name,
    uid: a.uid,
    resourceVersion: a.resourceVersion,
    cluster: effectiveCluster(a, defaultCluster),
    namespace: a.namespace,
    serviceAccount: a.spec.serviceAccount,
    roleARN: a.spec.roleARN || undefined,
    targetRoleARN: a.spec.targetRoleARN,
    disableSessionTags: a.spec.disableSessionTags,
    ...(a.spec.policy ? { policy: a.spec.policy } : {}),
    associationID: a.status.associationID,
    creationTimestamp: a.creationTimestamp,
    deleting: a.deleting,
    // Our own finalizer is left out: adding it needs no second reconcile.
    stamp: `${a.generation}|${a.deleting}|${a.finalizers.filter((f) => f !== FINALIZER).join(',')}|${a.retain}`,
    pendingDelete: a.deleting && a.finalizers.includes(FINALIZER) && !a.retain && !!a.status.associationID,
  };
}

/** An ACK object: the pair is ACK's `spec.namespace`, not the object's namespace; roleRef leaves the role unknown. */
export function ackRecord(obj: AckPodIdentityAssociation | undefined): AssociationRecord {
  const m: ObjectMeta = obj?.metadata ?? {};
  const s: NonNullable<AckPodIdentityAssociation['spec']> = obj?.spec ?? {};
  return {
    kind: 'ack',
    objectNamespace: String(m.namespace ?? ''),
    objectName: String(m.name ?? ''),
    uid: String(m.uid ?? ''),
    resourceVersion: String(m.resourceVersion ?? ''),
    cluster: s.clusterName ? String(s.clusterName) : undefined,
    namespace: String(s.namespace ?? ''),
    serviceAccount: String(s.serviceAccount ?? ''),
    roleARN: s.roleARN ? String(s.roleARN) : undefined,
    targetRoleARN: s.targetRoleARN ? String(s.targetRoleARN) : undefined,
    disableSessionTags: s.disableSessionTags === true,
    associationID: obj?.status?.associationID || undefined,
    creationTimestamp: String(m.creationTimestamp ?? ''),
    deleting: !!m.deletionTimestamp,
    stamp: String(m.resourceVersion ?? ''),
    pendingDelete: false,
  };
}

export function pairKey(cluster: string, namespace: string, serviceAccount: string): string {
  return `${cluster}/${namespace}/${serviceAccount}`;
}
