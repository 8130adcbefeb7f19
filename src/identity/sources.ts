// Contracts between the webhook (which resolves a Pod's identity) and src/associations and src/verification
// (which supply association objects, IdentityPolicy and the verified set). Pure types only.
import type { Json } from '../kube/client.ts';

export type IdentityMode = 'WebIdentity' | 'ContainerCredentials';

/** Which source decided the mode (webhook.md §2.1); also the `source` metric label. */
export type IdentitySourceKind =
  | 'association'
  | 'identities_file'
  | 'service_account'
  | 'configmap'
  | 'configmap_wildcard';

/** A Lanyard or observed ACK PodIdentityAssociation as the webhook needs it (verification.md §3, §4). */
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

/** Index of associations by the pair they target; the oldest non-deleting one wins (webhook.md §2.5). */
export interface AssociationLookup {
  forPair(namespace: string, serviceAccount: string): AssociationIdentity | undefined;
  synced(): boolean;
}

/** Inputs of a VerifiedIdentity fingerprint, per source (verification.md §8). */
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

export type GateSkipReason = 'opt_out' | 'prebound' | 'verified';

/** IdentityPolicy and gate decision at admission (webhook.md §5, verification.md §7). Reads caches only. */
export interface AdmissionGuard {
  decide(input: { identity: ResolvedIdentity; pod: Json }):
    | { kind: 'deny'; message: string }
    | { kind: 'allow'; gate: boolean; skipReason?: GateSkipReason };
  synced(): boolean;
}
