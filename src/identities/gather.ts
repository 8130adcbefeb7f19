// The identity reconciler's gather step (docs/identities.md): what one pass reads, as plain values. A Pod's decision
// input comes from the views (views.ts), through `decideInput`, which `lanyard get identities` also uses on its lists
// (snapshot.ts), so both resolve what a pair declares now in one way; a workload to repair is read from the API server
// (workloads are not watched, docs/adr/0900-running-pod-identity-reconciler.md).
import type { DaemonSet, Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import { getOrUndefined, type KubeClient } from '../kube/client.ts';
import type { SaSettings } from '../identity/annotations.ts';
import type { ConfigMapTable } from '../identity/configmap.ts';
import type { AssociationIdentity } from '../identity/sources.ts';
import { resolveIdentity, type InjectionFlags } from '../identity/resolve.ts';
import { decidePolicy, type PolicySet } from '../verification/policy.ts';
import type { VerifiedIdentity } from '../verification/types.ts';
import { fingerprintOf } from '../verification/verified-identity.ts';
import { WORKLOAD_PATHS, workloadOf, type DecideInput, type PodView } from './decide.ts';
import type { IdentityViews } from './views.ts';
import type { RepairTarget, Workload } from './decide-pass.ts';

/** The sources of a Pod's pair as they are now, however the caller read them. */
export interface PodSources {
  serviceAccount: SaSettings | undefined;
  /** The pair's owner association. */
  association: AssociationIdentity | undefined;
  configMap: ConfigMapTable;
  /** The IdentityPolicies; undefined when the caller may not read them (`lanyard get identities`): none denies. */
  policies: PolicySet | undefined;
  namespaceLabels: Record<string, string> | undefined;
  /** The VerifiedIdentity of that name in the Pod's namespace. */
  verified(name: string): VerifiedIdentity | undefined;
}

/** What decide.ts judges a Pod on: the identity its sources declare now (as the webhook resolves it) and the policy. */
export function decideInput(pod: PodView, s: PodSources, flags: InjectionFlags, nowMs: number): DecideInput {
  const declared = resolveIdentity(
    {
      namespace: pod.namespace,
      serviceAccount: pod.serviceAccount,
      podAnnotations: undefined,
      sa: s.serviceAccount ? { found: true, settings: s.serviceAccount } : { found: false },
      association: s.association,
      // The identities file lives with the webhook: a Pod using container credentials without an association got them
      // from it, and is judged as such (its pair cannot be reported missing from here).
      inIdentitiesFile: !s.association && pod.used.some((u) => u.mode === 'ContainerCredentials'),
      configMap: s.configMap,
    },
    flags,
    () => 0,
  )?.identity;
  const policies = s.policies;
  return {
    pod,
    declared,
    declaredFingerprint: declared ? fingerprintOf(declared.fingerprint) : undefined,
    association: s.association,
    policy: (roleARN, targetRoleARN) =>
      policies
        ? decidePolicy(policies, {
            namespace: pod.namespace,
            namespaceLabels: s.namespaceLabels,
            serviceAccount: pod.serviceAccount,
            roleARN,
            targetRoleARN,
          })
        : { allowed: true, reason: 'allowed' },
    verified: (name) => s.verified(name),
    nowMs,
  };
}

/** What the reconciler knows of the Pod beyond its sources (docs/adr/0900, "Proof is not written back to Pods"). */
export interface PodMemory {
  /** This process saw a proof for the Pod earlier. */
  provenEarlier: boolean;
  /** Pods created before this (allowing for clock skew) were not watched from their admission on. */
  startedMs: number;
  nowMs: number;
}

/** One Pod's decision input and the workload it belongs to, from the views. */
export function gatherPod(
  views: IdentityViews,
  pod: PodView,
  flags: InjectionFlags,
  m: PodMemory,
): { input: DecideInput; workload: Workload | undefined } {
  const sources: PodSources = {
    serviceAccount: views.serviceAccount(pod.namespace, pod.serviceAccount),
    association: views.associations.forPair(pod.namespace, pod.serviceAccount),
    configMap: views.configMap(),
    policies: views.policies(),
    namespaceLabels: views.namespace(pod.namespace)?.labels,
    verified: (name) => views.verified(pod.namespace, name),
  };
  return {
    input: {
      ...decideInput(pod, sources, flags, m.nowMs),
      provenEarlier: m.provenEarlier,
      observedSinceCreation: pod.creationMs >= m.startedMs,
    },
    workload: workloadOf(pod.owner, (rs) => views.replicaSetOwner(pod.namespace, rs)),
  };
}

export const workloadPath = (t: RepairTarget) =>
  `/apis/apps/v1/namespaces/${encodeURIComponent(t.namespace)}/${WORKLOAD_PATHS[t.kind]}/${encodeURIComponent(t.name)}`;

/** A Deployment, StatefulSet or DaemonSet, or undefined once it is gone. */
export async function readWorkload(
  kube: KubeClient,
  t: RepairTarget,
): Promise<Deployment | StatefulSet | DaemonSet | undefined> {
  return getOrUndefined<Deployment | StatefulSet | DaemonSet>(kube, workloadPath(t));
}
