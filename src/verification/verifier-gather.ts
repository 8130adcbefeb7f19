// The verifier's gather step (docs/verified-start.md): its views of the shared cache, and what they say now about an
// identity group — the gated Pods, the identity the sources resolve to (the webhook's resolution), and the policy
// decision on the verifier's one policy view (docs/adr/0304-atomic-gate-release.md).
import type { ConfigMap, Pod } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
import type { IdentityPolicy, VerifiedIdentity } from './types.ts';
import type { CacheView, InformerFactory } from '../kube/cache.ts';
import type { Logger } from '../runtime/log.ts';
import { KOPS_CONFIGMAP_NAME } from '../webhook/config-sources.ts';
import type { AssociationIndex } from '../associations/lookup.ts';
import type { AssociationIdentity, FingerprintInput, IdentityMode } from '../identity/sources.ts';
import { parseServiceAccount, type SaSettings } from '../identity/annotations.ts';
import { EMPTY_TABLE, parseConfigMapDocument, type ConfigMapTable } from '../identity/configmap.ts';
import { resolveIdentity, type InjectionFlags } from '../identity/resolve.ts';
import type { CredentialOptions } from '../identity/pod-credentials.ts';
import { PolicyCompiler, decidePolicy, type PolicyDecision, type PolicySet } from './policy.ts';
import { toGatedPod, type GatedPod } from './pod.ts';
import { VI_API, fingerprintOf, type IdentityKey } from './verified-identity.ts';
import { namespaceLabels } from './admission-guard.ts';

/** One identity the verifier proves: namespace, ServiceAccount, mode, declared role (web identity) and audience. */
export interface IdentityGroup {
  namespace: string;
  serviceAccount: string;
  mode: IdentityMode;
  roleARN: string;
  audience: string;
}

/** The identity as the sources say now, for one group. */
export interface CurrentIdentity {
  key: IdentityKey;
  namespace: string;
  /** Undefined when the sources no longer give the Pod's declared identity: the exchange may still release it. */
  fingerprint?: string;
  association?: AssociationIdentity;
}

/** Queue keys of Pods that declare no identity (or one that cannot be read) start with this. */
export const PER_POD = 'pod:';
const GROUP_INDEX = 'group';
const PAIR_INDEX = 'pair';

/** The queue key of an identity. */
export function groupKey(
  p: Pick<GatedPod, 'namespace' | 'serviceAccount'>,
  d: GatedPod['declared'][number],
): string {
  return JSON.stringify([p.namespace, p.serviceAccount, d.mode, d.roleARN ?? '', d.audience]);
}
export function parseGroupKey(k: string): IdentityGroup {
  const [namespace, serviceAccount, mode, roleARN, audience] = JSON.parse(k) as [
    string,
    string,
    IdentityMode,
    string,
    string,
  ];
  return { namespace, serviceAccount, mode, roleARN, audience };
}
export const podKey = (p: { namespace: string; name: string }) => `${p.namespace}/${p.name}`;

/** The groups a Pod waits on: one per declared identity, a per-Pod key when it declares none, none once released. */
export function keysOf(p: GatedPod): string[] {
  if (p.gateIndex < 0 || p.deleting) return [];
  if (p.declared.length === 0) return [PER_POD + podKey(p)];
  return p.declared.map((d) => groupKey(p, d));
}

/** What the views tell the wiring: keys to enqueue, identity sources that changed. */
export interface ViewEvents {
  /** A group to reconcile. */
  enqueue(key: string): void;
  /** Every group (a policy or the kOps ConfigMap changed). */
  enqueueAll(): void;
  /** The groups of one namespace, or of one ServiceAccount of it. */
  enqueuePair(namespace: string, serviceAccount?: string): void;
  /** A ServiceAccount's or association's settings changed: its groups and its verified entries are re-judged. */
  sourceChanged(namespace: string, serviceAccount: string): void;
  /** The kOps ConfigMap changed: every verified entry is re-judged. */
  configMapChanged(): void;
  policyChanged(name: string): void;
  podGone(p: GatedPod): void;
}

export interface VerifierViewSettings {
  namespace: string;
  annotationPrefix: string;
  watchConfigMap: boolean;
  credentials: CredentialOptions;
  flags: InjectionFlags;
}

/**
 * The verifier's views of the shared cache and the identity and policy they resolve to. Pods are watched with a
 * server-side selector (unbound only) and indexed by the groups they wait on; VerifiedIdentities by
 * `namespace/serviceAccount`, so a source change looks at its pair's entries only.
 */
export class VerifierSources {
  readonly pods: CacheView<GatedPod>;
  readonly serviceAccounts: CacheView<SaSettings>;
  readonly configMapView?: CacheView<ConfigMap>;
  readonly policies: CacheView<IdentityPolicy>;
  readonly namespaces: CacheView<{ name: string; labels: Record<string, string> }>;
  readonly verified: CacheView<VerifiedIdentity>;
  private readonly compiler = new PolicyCompiler();
  private policySet: PolicySet | undefined;
  private configMap: ConfigMapTable = EMPTY_TABLE;

  constructor(
    cache: InformerFactory,
    private readonly associations: AssociationIndex,
    private readonly s: VerifierViewSettings,
    on: ViewEvents,
    log: Logger,
  ) {
    this.serviceAccounts = cache.view<SaSettings>({
      path: '/api/v1/serviceaccounts',
      metadataOnly: true,
      transform: (o: KubeObject) => parseServiceAccount(o, s.annotationPrefix),
      // A newly listed SA changes nothing already verified (the 60 s sweep covers changes made while we were down).
      onAdd: (_s, k) => this.withPair(k, (ns, sa) => on.enqueuePair(ns, sa)),
      onUpdate: (sa, old, k) => {
        if (sa !== old) this.withPair(k, (ns, name) => on.sourceChanged(ns, name));
      },
      onDelete: (_s, k) => this.withPair(k, (ns, sa) => on.sourceChanged(ns, sa)),
    });
    const loadConfigMap = (o: ConfigMap | undefined) => {
      const r = parseConfigMapDocument(o?.data?.config, this.configMap);
      if (r.ok) this.configMap = r.table;
      else if (!o) this.configMap = EMPTY_TABLE;
      else log.warn({ error: r.error }, 'kOps ConfigMap is invalid; keeping the previous table');
      on.configMapChanged();
    };
    this.configMapView = s.watchConfigMap
      ? cache.view<ConfigMap, ConfigMap>({
          path: `/api/v1/namespaces/${s.namespace}/configmaps`,
          fieldSelector: `metadata.name=${KOPS_CONFIGMAP_NAME}`,
          onAdd: (o) => loadConfigMap(o),
          onUpdate: (o) => loadConfigMap(o),
          onDelete: () => loadConfigMap(undefined),
        })
      : undefined;
    this.policies = cache.view<IdentityPolicy, IdentityPolicy>({
      path: `${VI_API}/identitypolicies`,
      onAdd: (o) => {
        this.policySet = undefined;
        on.enqueueAll();
        on.policyChanged(o.metadata!.name!);
      },
      onUpdate: (o) => {
        this.policySet = undefined;
        on.enqueueAll();
        on.policyChanged(o.metadata!.name!);
      },
      onDelete: () => {
        this.policySet = undefined;
        on.enqueueAll();
      },
    });
    this.namespaces = cache.view({
      path: '/api/v1/namespaces',
      metadataOnly: true,
      transform: namespaceLabels,
      onUpdate: (n, old) => {
        if (JSON.stringify(n.labels) !== JSON.stringify(old.labels)) on.enqueuePair(n.name);
      },
    });
    this.verified = cache.view<VerifiedIdentity, VerifiedIdentity>({
      path: `${VI_API}/verifiedidentities`,
      indexes: { [PAIR_INDEX]: (o) => [`${o.metadata?.namespace}/${o.spec?.serviceAccount}`] },
    });
    this.pods = this.openPods(cache, on);
  }

  /** Opened apart from the sources in the wiring's order: a Pod is never judged against an empty cache. */
  private openPods(cache: InformerFactory, on: ViewEvents): CacheView<GatedPod> {
    const pods: CacheView<GatedPod> = cache.view<GatedPod, Pod>({
      path: '/api/v1/pods',
      fieldSelector: 'spec.nodeName=',
      transform: (o) => toGatedPod(o, this.s.credentials),
      indexes: { [GROUP_INDEX]: keysOf },
      onAdd: (p) => {
        for (const k of keysOf(p)) on.enqueue(k);
      },
      onUpdate: (p, old) => {
        // A group the Pod left is reconciled once it is empty (to forget it); the groups it waits on, always.
        for (const k of keysOf(old)) if (pods.keysByIndex(GROUP_INDEX, k).length === 0) on.enqueue(k);
        for (const k of keysOf(p)) on.enqueue(k);
      },
      onDelete: (p) => {
        for (const k of keysOf(p)) if (pods.keysByIndex(GROUP_INDEX, k).length === 0) on.enqueue(k);
        on.podGone(p);
      },
    });
    return pods;
  }

  private withPair(key: string, fn: (namespace: string, serviceAccount: string) => void): void {
    const [ns, sa] = key.split('/');
    if (ns && sa) fn(ns, sa);
  }

  /** The sources the Pods are judged against, all listed once (Pods are listed apart: see the wiring). */
  sourceViews(): Array<CacheView<unknown>> {
    return [this.serviceAccounts, this.configMapView, this.policies, this.namespaces, this.verified].filter(
      (v) => v !== undefined,
    );
  }

  /** Every group some Pod waits on now. */
  groupKeys(): string[] {
    return [...this.pods.indexValues(GROUP_INDEX)];
  }

  /** The Pods still gated in a group. */
  gatedPodsOf(key: string): GatedPod[] {
    return this.pods.byIndex(GROUP_INDEX, key).filter((p) => p.gateIndex >= 0 && !p.deleting);
  }

  /** The VerifiedIdentities of one pair (all of them without a pair). */
  verifiedEntries(namespace?: string, serviceAccount?: string): VerifiedIdentity[] {
    if (namespace === undefined || serviceAccount === undefined) return [...this.verified.values()];
    return this.verified.byIndex(PAIR_INDEX, `${namespace}/${serviceAccount}`);
  }

  /** The current identity of a group, from the caches (the same resolution the webhook runs). */
  currentIdentity(g: IdentityGroup): CurrentIdentity {
    const saSettings = this.serviceAccounts.get(`${g.namespace}/${g.serviceAccount}`);
    const association =
      g.mode === 'ContainerCredentials'
        ? this.associations.forPair(g.namespace, g.serviceAccount)
        : undefined;
    const key: IdentityKey =
      g.mode === 'WebIdentity'
        ? { mode: g.mode, serviceAccount: g.serviceAccount, roleARN: g.roleARN, audience: g.audience }
        : {
            mode: g.mode,
            serviceAccount: g.serviceAccount,
            roleARN: association?.roleARN,
            targetRoleARN: association?.targetRoleARN,
            audience: g.audience,
          };
    const res = resolveIdentity(
      {
        namespace: g.namespace,
        serviceAccount: g.serviceAccount,
        podAnnotations: undefined,
        sa: saSettings ? { found: true, settings: saSettings } : { found: false },
        association,
        // The identities file lives with the webhook; a ContainerCredentials Pod without an association came from it.
        inIdentitiesFile: g.mode === 'ContainerCredentials' && !association,
        configMap: this.configMap,
      },
      this.s.flags,
      () => 0,
    );
    const id = res?.identity;
    const same =
      id &&
      id.mode === key.mode &&
      (id.roleARN ?? '') === (key.roleARN ?? '') &&
      (id.targetRoleARN ?? '') === (key.targetRoleARN ?? '') &&
      id.audience === key.audience;
    return {
      key,
      namespace: g.namespace,
      association,
      fingerprint: same ? fingerprintOf(id.fingerprint as FingerprintInput) : undefined,
    };
  }

  /**
   * The policy decision for a group on the verifier's one view (its IdentityPolicy and Namespace views). Both the
   * attempt and the release ask here, so they can never judge against different policies. `learntRole` is the role an
   * exchange named for an identity that declares none (identities file).
   */
  groupPolicy(g: IdentityGroup, cur: CurrentIdentity, learntRole?: string): PolicyDecision {
    this.policySet ??= this.compiler.compileAll(this.policies.values());
    return decidePolicy(this.policySet, {
      namespace: g.namespace,
      namespaceLabels: this.namespaces.get(g.namespace)?.labels,
      serviceAccount: g.serviceAccount,
      roleARN: cur.key.roleARN || learntRole,
      targetRoleARN: cur.key.targetRoleARN,
    });
  }

  /** The compiled policy of one IdentityPolicy (for its `Accepted` status). */
  compiledPolicy(name: string) {
    const o = this.policies.get(name);
    return o ? { object: o, compiled: this.compiler.compile(o) } : undefined;
  }

  close(): void {
    for (const v of [this.pods, ...this.sourceViews()]) v.close();
  }
}
