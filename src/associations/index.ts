// Public surface of the association capability (docs/associations.md#what-the-controller-does, docs/migrate-from-ack.md, docs/associations.md#how-verified-is-obtained). Other capabilities import from here.
import type { AssociationIdentity } from '../identity/sources.ts';

export { createAssociationLookup } from './lookup.ts';
export type { AssociationIndex, AssociationRecord } from './lookup.ts';
export { startAssociationController } from './controller.ts';
export type { AssociationController, AssociationControllerDeps } from './controller.ts';

/**
 * What the verifier reports for one ContainerCredentials exchange made for a Pod whose pair is owned by an
 * association (a probe Pod or a workload Pod), docs/associations.md#how-verified-is-obtained. The controller turns it into the `Verified`
 * condition of a Lanyard association (at most one status write per association per 5 s; stale reports, for
 * another role or association id than the object now declares, are dropped) or into an Event on an ACK object.
 */
export interface AssociationVerification {
  /** The owner association as the verifier saw it (AssociationLookup.forPair). */
  association: AssociationIdentity;
  /**
   * `CredentialsMatch`: the exchange returned the effective role. `RoleMismatch`: it returned another role (or a
   * stale association id). `ExchangeFailed`: token or AWS error. `VerificationTimeout`: the Pod passed its verify
   * deadline without a successful exchange.
   */
  result: 'CredentialsMatch' | 'RoleMismatch' | 'ExchangeFailed' | 'VerificationTimeout';
  /** Human-readable detail: AWS code and message, or expected and returned ARNs. Never a token or credential. */
  message: string;
  /** The assumed-role ARN the exchange returned, when there was an answer. */
  assumedRoleARN?: string;
  /** The Pod whose token was exchanged. */
  pod?: { namespace: string; name: string };
  /** When the exchange finished; defaults to the controller clock. */
  at?: Date;
}

/** The callback the verifier is given (the controller's `recordVerification`). Never throws, never blocks. */
export type RecordVerification = (v: AssociationVerification) => void;

/**
 * Running Pods of a pair left without the association's identity (created before it), as the identity reconciler
 * counts them (docs/identities.md). The controller puts the count in `Ready`'s message and re-evaluates a pair when
 * its count changes.
 */
export interface PodsWithoutIdentity {
  missingFor(namespace: string, serviceAccount: string): number;
  subscribe(fn: (namespace: string, serviceAccount: string) => void): () => void;
}
