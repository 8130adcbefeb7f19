// Lanyard's kinds owned by the verification capability, as the API server stores them: IdentityPolicy
// (deploy/helm/lanyard/crds/identitypolicies.lanyard.dev.yaml, docs/verified-start.md) and VerifiedIdentity
// (deploy/helm/lanyard/crds/verifiedidentities.lanyard.dev.yaml). Type-only; objects stay the raw JSON the API sent,
// unknown fields included (docs/adr/1050-typed-kubernetes-objects.md). Fields are read defensively all the same: an
// older object or a hand-written one may not match the schema of this version.
import type { LabelSelector, ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { Condition } from '../kube/conditions.ts';

/** One rule of an IdentityPolicy: namespaces by label, ServiceAccount globs, role ARN globs. */
export interface IdentityPolicyRule {
  namespaceSelector: LabelSelector;
  serviceAccounts: string[];
  roles: string[];
}

/** lanyard.dev/v1alpha1 IdentityPolicy (cluster-scoped). */
export interface IdentityPolicy {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: { rules: IdentityPolicyRule[] };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

/** `spec` of a VerifiedIdentity: one identity proven by a real credential exchange, until `expiresAt`. */
export interface VerifiedIdentitySpec {
  serviceAccount: string;
  mode: 'WebIdentity' | 'ContainerCredentials';
  roleARN?: string;
  targetRoleARN?: string;
  audience?: string;
  /** sha256 hex of the identity's inputs (docs/verified-start.md#how-it-works). */
  fingerprint: string;
  assumedRoleARN?: string;
  verifiedAt: string;
  expiresAt: string;
  verifiedWith?: string;
}

/** lanyard.dev/v1alpha1 VerifiedIdentity (namespaced). */
export interface VerifiedIdentity {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  spec?: VerifiedIdentitySpec;
}
