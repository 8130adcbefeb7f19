// The PodIdentityAssociation kinds the association capability reads and writes, as the API server stores them:
// Lanyard's own (deploy/helm/lanyard/crds/podidentityassociations.lanyard.dev.yaml, docs/associations.md) and ACK's,
// which Lanyard only observes (docs/migrate-from-ack.md). Type-only; objects stay the raw JSON the API sent, unknown
// fields included (docs/adr/1050-typed-kubernetes-objects.md).
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { Condition } from '../kube/conditions.ts';

/** `spec` of a lanyard.dev/v1alpha1 PodIdentityAssociation. */
export interface PodIdentityAssociationSpec {
  serviceAccount: string;
  /** ACK's field, accepted so an ACK manifest applies with only its apiVersion changed; must equal the namespace. */
  namespace?: string;
  roleARN: string;
  targetRoleARN?: string;
  /** Immutable once set. */
  clusterName?: string;
  disableSessionTags?: boolean;
  /** Inline session policy (a JSON policy document); requires disableSessionTags. */
  policy?: string;
  tags?: Record<string, string>;
}

/** `status` of a lanyard.dev/v1alpha1 PodIdentityAssociation. */
// A type alias, not an interface: the controller reads status fields by name (decide.ts statusUnchanged).
export type PodIdentityAssociationStatus = {
  clusterName?: string;
  associationID?: string;
  /** The association Lanyard removed from EKS because no IdentityPolicy allowed it (docs/adr/0202). */
  removedAssociationID?: string;
  associationARN?: string;
  externalID?: string;
  observedGeneration?: number;
  lastVerifiedTime?: string;
  conditions?: Condition[];
};

/** lanyard.dev/v1alpha1 PodIdentityAssociation. */
export interface PodIdentityAssociation {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: PodIdentityAssociationSpec;
  status?: PodIdentityAssociationStatus;
}

/** eks.services.k8s.aws/v1alpha1 PodIdentityAssociation (ACK), the fields Lanyard reads. */
export interface AckPodIdentityAssociation {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: {
    clusterName?: string;
    /** ACK's reference to a Cluster object: Lanyard ignores an object that sets only this. */
    clusterRef?: unknown;
    namespace?: string;
    serviceAccount?: string;
    roleARN?: string;
    /** ACK's reference to a Role object: the role stays unknown. */
    roleRef?: unknown;
    targetRoleARN?: string;
    disableSessionTags?: boolean;
    tags?: Record<string, string>;
  };
  status?: { associationID?: string; externalID?: string; conditions?: Partial<Condition>[] };
}

/** Either kind, as read for messages and trust checks. */
export type AssociationObject = PodIdentityAssociation | AckPodIdentityAssociation;
