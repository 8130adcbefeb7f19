// Contracts between the webhook (which resolves a Pod's identity) and src/associations and src/verification
// (which supply association objects, IdentityPolicy and the verified set). Pure types only.
import type { Pod } from 'kubernetes-types/core/v1.js';

export type IdentityMode = 'WebIdentity' | 'ContainerCredentials';

/** Which source decided the mode (docs/webhook.md#where-an-identity-comes-from); also the `source` metric label. */
export type IdentitySourceKind =
  'association' | 'identities_file' | 'service_account' | 'configmap' | 'configmap_wildcard';

/** A Lanyard or observed ACK PodIdentityAssociation as the webhook needs it (docs/associations.md#what-the-controller-does, docs/migrate-from-ack.md). */
export interface AssociationIdentity {
  kind: 'lanyard' | 'ack';
  uid: string;
  /** Object namespace/name, for messages. */
  objectNamespace: string;
  objectName: string;
  /** The pair the association gives an identity to. */
  namespace: string;
  serviceAccount: string;
  /** Undefined when unknown (ACK roleRef). */
  roleARN?: string;
  targetRoleARN?: string;
  disableSessionTags: boolean;
  /** Inline session policy of a Lanyard association (docs/associations.md); undefined when none. */
  policy?: string;
  associationID?: string;
  creationTimestamp: string;
}

/** Index of associations by the pair they target; the oldest non-deleting one wins (docs/webhook.md#associations-policies-and-the-verification-gate). */
export interface AssociationLookup {
  forPair(namespace: string, serviceAccount: string): AssociationIdentity | undefined;
  synced(): boolean;
}

/** Inputs of a VerifiedIdentity fingerprint, per source (docs/verified-start.md#how-it-works). */
export type FingerprintInput =
  | { source: 'service_account'; saUid: string; roleARN: string; audience: string; regionalSts: boolean }
  | { source: 'configmap' | 'configmap_wildcard'; key: string; entryJson: string }
  | {
      source: 'association';
      uid: string;
      associationID?: string;
      roleARN?: string;
      targetRoleARN?: string;
      disableSessionTags: boolean;
      policy?: string;
    }
  | { source: 'identities_file' };

/** The identity the webhook resolved for a Pod, before any patch is built. */
export interface ResolvedIdentity {
  namespace: string;
  serviceAccount: string;
  mode: IdentityMode;
  source: IdentitySourceKind;
  /** Declared role; undefined when unknown (identities file only, ACK roleRef). */
  roleARN?: string;
  targetRoleARN?: string;
  /** Token audience; '' means omitted (the API server's default audiences). */
  audience: string;
  fingerprint: FingerprintInput;
}

export type GateSkipReason = 'opt_out' | 'verified';

/**
 * Why no source gave the pair an identity, for the "identity required" refusal (docs/adr/0920-identity-required.md):
 * what the ServiceAccount lookup found (docs/webhook.md#serviceaccounts-that-are-not-cached-yet) and which optional sources the webhook consults.
 */
export interface NoIdentityContext {
  serviceAccount: 'found' | 'not_found' | 'unresolved';
  annotationPrefix: string;
  configMap: boolean;
  identitiesFile: boolean;
}

/** What the admission guard decides on: the Pod as it will be stored and the pair's identity sources. */
export interface GuardInput {
  /** The request's Pod with Lanyard's own patch applied. */
  pod: Pod;
  /** UPDATE of `pods/ephemeralcontainers`: the Pod before the request. */
  oldPod?: Pod;
  namespace: string;
  serviceAccount: string;
  /** What the sources give the pair; undefined when none does. */
  identity?: ResolvedIdentity;
  association?: AssociationIdentity;
  /** Token audiences STS accepts besides `sts.amazonaws.com`: the configured and the resolved one. */
  stsAudiences: readonly string[];
  /** Token audiences of the Pod Identity agent besides `pods.eks.amazonaws.com`. */
  podIdentityAudiences: readonly string[];
  /** Set when no source gives the pair an identity (CREATE only): what was consulted, for messages. */
  noIdentity?: NoIdentityContext;
}

/** IdentityPolicy and gate decision at admission for every identity a Pod can use (docs/security.md). Reads caches only. */
export interface AdmissionGuard {
  decide(
    input: GuardInput,
  ): { kind: 'deny'; message: string } | { kind: 'allow'; gate: boolean; skipReason?: GateSkipReason };
  synced(): boolean;
}
