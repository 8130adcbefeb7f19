// The labels and annotations of docs/projects-and-tokens.md. Lanyard recognises its objects by the labels and decides whether
// it may change them by the managed annotation alone.
import type { Secret } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
export const PROJECT_LABEL = 'lanyard.dev/project';
export const MANAGED_ANNOTATION = 'rbac.lanyard.dev/managed';
export const SERVICE_ACCOUNT_LABEL = 'rbac.lanyard.dev/service-account';
/**
 * Kargo's label for the same thing (seed 001), recognised as an alias so ServiceAccounts GitOps'd for Kargo work
 * unchanged; the CLI and a Warning Event suggest renaming it (docs/projects-and-tokens.md, "Kargo's label").
 */
export const KARGO_SERVICE_ACCOUNT_LABEL = 'rbac.kargo.akuity.io/service-account';
export const TOKEN_LABEL = 'rbac.lanyard.dev/service-account-token';
export const DESCRIPTION_ANNOTATION = 'lanyard.dev/description';
export const SA_NAME_ANNOTATION = 'kubernetes.io/service-account.name';
export const SA_UID_ANNOTATION = 'kubernetes.io/service-account.uid';
export const LAST_USED_LABEL = 'kubernetes.io/legacy-token-last-used';
export const TOKEN_SECRET_TYPE = 'kubernetes.io/service-account-token';
export const RBAC_GROUP = 'rbac.authorization.k8s.io';

export function isManaged(obj: KubeObject | undefined): boolean {
  return obj?.metadata?.annotations?.[MANAGED_ANNOTATION] === 'true';
}
export function isProject(ns: KubeObject | undefined): boolean {
  return ns?.metadata?.labels?.[PROJECT_LABEL] === 'true';
}
export function isProjectServiceAccount(sa: KubeObject | undefined): boolean {
  return sa?.metadata?.labels?.[SERVICE_ACCOUNT_LABEL] === 'true' || usesKargoLabel(sa);
}
/** Marked a project ServiceAccount by Kargo's label alone (not by Lanyard's). */
export function usesKargoLabel(sa: KubeObject | undefined): boolean {
  return (
    sa?.metadata?.labels?.[KARGO_SERVICE_ACCOUNT_LABEL] === 'true' &&
    sa?.metadata?.labels?.[SERVICE_ACCOUNT_LABEL] !== 'true'
  );
}
/** The sentence the CLI warning and the Warning Event `DeprecatedLabel` carry. */
export function kargoLabelNotice(namespace: string, name: string): string {
  return (
    `serviceaccount "${name}" in project "${namespace}" is marked by Kargo's label ${KARGO_SERVICE_ACCOUNT_LABEL}; ` +
    `Lanyard accepts it, but rename it to ${SERVICE_ACCOUNT_LABEL}: "true"`
  );
}
export function isProjectToken(secret: Secret | undefined): boolean {
  return secret?.type === TOKEN_SECRET_TYPE && secret?.metadata?.labels?.[TOKEN_LABEL] === 'true';
}

/** The refusal for an object without the managed annotation (docs/cli.md#conventions, "not managed"). */
export function notManagedRefusal(what: string, project: string, reason: string): string {
  return `${what} in project "${project}" is not managed by Lanyard (${reason}); change it where it is declared, for example in Git`;
}

/** `${object} has no rbac.lanyard.dev/managed: "true" annotation`, the usual reason for notManagedRefusal. */
export function noManagedAnnotation(object: string): string {
  return `${object} has no ${MANAGED_ANNOTATION}: "true" annotation`;
}
