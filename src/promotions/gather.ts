// The promotion reconciler's gather step (docs/promotions.md): its views of the process's shared cache, and what
// they say now about a Promotion or a Stage — the object (the cache first, the API server when the cache has not
// seen it yet), the line of Promotions waiting for a Stage, the verifier's note on a gated Pod, and the step-role
// decision on the IdentityPolicies in force. Reads only; apply.ts writes.
import type { Namespace, Pod, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { RoleBinding } from 'kubernetes-types/rbac/v1.js';
import type { KubeList, Stored } from '../core/kube-object.ts';
import { getOrUndefined, KubeApiError, resourcePath, type KubeClient } from '../kube/client.ts';
import type { CacheView, InformerFactory } from '../kube/cache.ts';
import { decidePolicy, PolicyCompiler } from '../verification/policy.ts';
import {
  VERIFIER_EVENTS_SELECTOR,
  gateNoteOf,
  latestGateNotes,
  type GateNote,
} from '../verification/gate-notes.ts';
import {
  buildPromotionPod,
  LABEL_PROJECT,
  LABEL_PROMOTION,
  LABEL_PROMOTION_UID,
  podName,
  type BuildInput,
  type BuildResult,
  type BuildSettings,
  type StepRoleDecision,
} from './build.ts';
import { hasTokenManagerBinding, waitingQueue } from './decide.ts';
import { isTerminal } from './status.ts';
import type { AgentAccount, PromotionStep, Stage, StoredPromotion, StoredStage } from './types.ts';
import type { IdentityPolicy } from '../verification/types.ts';

export const GROUP = 'lanyard.dev';
export const VERSION = 'v1alpha1';

export const apiPath = (plural: string, namespace?: string, name?: string, subresource?: string) =>
  resourcePath({ group: GROUP, version: VERSION, plural, namespace, name, subresource });

/** Queue keys: `s:ns/name` for a Stage, `p:ns/name` for a Promotion. */
export const stageKey = (ns: string, name: string) => `s:${ns}/${name}`;
export const promotionKey = (ns: string, name: string) => `p:${ns}/${name}`;
export function parseKey(key: string): { kind: 'stage' | 'promotion'; namespace: string; name: string } {
  const [namespace, name] = key.slice(2).split('/') as [string, string];
  return { kind: key.startsWith('s:') ? 'stage' : 'promotion', namespace, name };
}

/** The promotion controller's views; their handlers only enqueue keys. */
export class PromotionViews {
  readonly promotions: CacheView<StoredPromotion>;
  readonly stages: CacheView<StoredStage>;
  readonly steps: CacheView<Stored<PromotionStep>>;
  /** Kargo's CustomPromotionSteps: the same steps under their deprecated kind (docs/adr/0605). */
  readonly customSteps: CacheView<Stored<PromotionStep>>;
  readonly serviceAccounts: CacheView<AgentAccount>;
  readonly pods: CacheView<Stored<Pod>>;
  readonly gateEvents: CacheView<GateNote | undefined>;

  constructor(
    cache: InformerFactory,
    readonly agentNs: string,
    private readonly enqueue: (key: string) => void,
  ) {
    this.promotions = cache.view<StoredPromotion, StoredPromotion>({
      path: apiPath('promotions'),
      onAdd: (o) => enqueue(promotionKey(o.metadata.namespace, o.metadata.name)),
      onUpdate: (o) => enqueue(promotionKey(o.metadata.namespace, o.metadata.name)),
      onDelete: (o) => this.wakeStage(o.metadata.namespace, o.spec?.stage),
    });
    this.stages = cache.view<StoredStage, StoredStage>({
      path: apiPath('stages'),
      onAdd: (o) => enqueue(stageKey(o.metadata.namespace, o.metadata.name)),
      onUpdate: (o, old) => {
        const annotationsChanged =
          JSON.stringify(o.metadata.annotations ?? {}) !== JSON.stringify(old.metadata.annotations ?? {});
        if (o.metadata.generation !== old.metadata.generation || annotationsChanged)
          enqueue(stageKey(o.metadata.namespace, o.metadata.name));
        if (o.status?.currentPromotion !== old.status?.currentPromotion)
          this.wakeStage(o.metadata.namespace, o.metadata.name);
      },
      onDelete: (o) => this.wakeStage(o.metadata.namespace, o.metadata.name, true),
    });
    const recheck = (o?: Stored<PromotionStep>) => this.recheckStages(o?.metadata?.namespace);
    this.steps = cache.view<Stored<PromotionStep>, Stored<PromotionStep>>({
      path: apiPath('promotionsteps'),
      onAdd: recheck,
      onUpdate: recheck,
      onDelete: recheck,
    });
    this.customSteps = cache.view<Stored<PromotionStep>, Stored<PromotionStep>>({
      path: apiPath('custompromotionsteps'),
      onAdd: recheck,
      onUpdate: recheck,
      onDelete: recheck,
    });
    // The agent namespace's accounts, selected on the process's one ServiceAccount watch (metadata only).
    this.serviceAccounts = cache.view<
      AgentAccount,
      Stored<ServiceAccount> & { metadata: { namespace: string } }
    >({
      path: '/api/v1/serviceaccounts',
      metadataOnly: true,
      filter: (o) => o.metadata.namespace === agentNs,
      transform: (o) => ({
        metadata: {
          name: o.metadata.name,
          namespace: o.metadata.namespace,
          annotations: o.metadata.annotations ?? {},
        },
      }),
      onAdd: () => this.recheckStages(),
      onUpdate: () => this.recheckStages(),
      onDelete: () => this.recheckStages(),
    });
    const owner = (pod: Stored<Pod>) => this.enqueuePodOwner(pod);
    this.pods = cache.view<Stored<Pod>, Stored<Pod>>({
      path: `/api/v1/namespaces/${agentNs}/pods`,
      labelSelector: LABEL_PROMOTION_UID,
      onAdd: owner,
      onUpdate: owner,
      onDelete: owner,
    });
    // The verifier's Warnings about promotion pods held at the identity gate: project users cannot read the agent
    // namespace's Events, so their text goes into the Promotion's status.message (docs/promotions.md).
    this.gateEvents = cache.view<GateNote | undefined>({
      path: `/api/v1/namespaces/${agentNs}/events`,
      fieldSelector: VERIFIER_EVENTS_SELECTOR,
      transform: gateNoteOf,
      onAdd: (n) => this.wakePodOwner(n),
      onUpdate: (n) => this.wakePodOwner(n),
    });
  }

  all(): CacheView<unknown>[] {
    return [
      this.serviceAccounts,
      this.steps,
      this.customSteps,
      this.stages,
      this.promotions,
      this.pods,
      this.gateEvents,
    ];
  }

  close(): void {
    for (const v of this.all()) v.close();
  }

  /** Enqueues the Promotions of a Stage that are not finished (the next one may start); all of them when it is gone. */
  wakeStage(namespace: string, stage: string | undefined, all = false): void {
    if (!stage) return;
    for (const p of this.promotions.values()) {
      if (
        p.metadata.namespace === namespace &&
        p.spec?.stage === stage &&
        (all || !isTerminal(p.status?.phase))
      ) {
        this.enqueue(promotionKey(namespace, p.metadata.name));
      }
    }
  }

  /** Every Stage of a project (or all, for a change in the agent namespace) checks its `Valid` condition again. */
  recheckStages(namespace?: string): void {
    for (const s of this.stages.values()) {
      if (!namespace || namespace === this.agentNs || s.metadata.namespace === namespace)
        this.enqueue(stageKey(s.metadata.namespace, s.metadata.name));
    }
  }

  private enqueuePodOwner(pod: Stored<Pod>): void {
    const ns = pod.metadata.labels?.[LABEL_PROJECT];
    const name = pod.metadata.labels?.[LABEL_PROMOTION];
    if (ns && name) this.enqueue(promotionKey(ns, name));
  }

  private wakePodOwner(n: GateNote | undefined): void {
    const pod = n && this.pods.get(`${this.agentNs}/${n.podName}`);
    if (pod) this.enqueuePodOwner(pod);
  }

  /** The latest verifier note about a gated Pod, by the Pod's uid. */
  gateNote(podUid: string): string | undefined {
    return latestGateNotes([...this.gateEvents.values()].filter((n) => n?.podUid === podUid)).get(podUid)
      ?.note;
  }

  /** The Promotions waiting for a Stage, first in line first. */
  waiting(namespace: string, stage: string): StoredPromotion[] {
    return waitingQueue(this.promotions.values(), namespace, stage);
  }

  /** Whether a Promotion's Pod is in the cache. */
  hasPod(promotionUid: string): boolean {
    return this.pods.has(`${this.agentNs}/${podName(promotionUid)}`);
  }

  async promotion(kube: KubeClient, ns: string, name: string): Promise<StoredPromotion | undefined> {
    return (
      this.promotions.get(`${ns}/${name}`) ??
      (await getOrUndefined<StoredPromotion>(kube, apiPath('promotions', ns, name)))
    );
  }

  async stage(kube: KubeClient, ns: string, name: string): Promise<StoredStage | undefined> {
    return (
      this.stages.get(`${ns}/${name}`) ??
      (await getOrUndefined<StoredStage>(kube, apiPath('stages', ns, name)))
    );
  }

  async pod(kube: KubeClient, name: string): Promise<Stored<Pod> | undefined> {
    return (
      this.pods.get(`${this.agentNs}/${name}`) ??
      (await getOrUndefined<Stored<Pod>>(kube, `/api/v1/namespaces/${this.agentNs}/pods/${name}`))
    );
  }
}

/**
 * The policy decision for per-step roles: read only when a step of the Stage declares a role, from the API server (a
 * Stage is validated rarely; the IdentityPolicies and the project's labels are read fresh).
 */
async function roleDecider(
  kube: KubeClient,
  views: PromotionViews,
  compiler: PolicyCompiler,
  project: string,
  stage: Stage,
): Promise<StepRoleDecision> {
  const usesRoles = (stage.spec?.promotionTemplate?.spec?.steps ?? []).some((st) => {
    const found = [project, views.agentNs].flatMap((ns) => [
      views.steps.get(`${ns}/${st?.uses}`),
      views.customSteps.get(`${ns}/${st?.uses}`),
    ]);
    return found.some((f) => !!f?.spec?.identity?.roleARN);
  });
  if (!usesRoles) return () => ({ allowed: true });
  const res = await kube.raw<Partial<KubeList<IdentityPolicy>> & { reason?: string; message?: string }>({
    path: apiPath('identitypolicies'),
  });
  if (res.status !== 200 && res.status !== 404) {
    throw new KubeApiError(
      res.status,
      'GET',
      apiPath('identitypolicies'),
      String(res.body?.reason ?? res.status),
      String(res.body?.message ?? ''),
      res.body,
    );
  }
  const set = compiler.compileAll(res.status === 200 ? (res.body.items ?? []) : []);
  const ns = await kube.get<Namespace>(`/api/v1/namespaces/${encodeURIComponent(project)}`);
  return ({ namespace, serviceAccount, roleARN }) =>
    decidePolicy(set, { namespace, namespaceLabels: ns.metadata?.labels ?? {}, serviceAccount, roleARN });
}

/** The Pod a Promotion would run as now, or why it cannot (build.ts is the pure part). */
export async function buildFor(
  o: { kube: KubeClient; views: PromotionViews; compiler: PolicyCompiler; settings: BuildSettings },
  promo: BuildInput['promotion'],
  stage: StoredStage,
  checkVars = true,
): Promise<BuildResult> {
  const project = promo.metadata.namespace;
  return buildPromotionPod({
    stage,
    promotion: promo,
    promotionStep: (ns, name) => o.views.steps.get(`${ns}/${name}`),
    customPromotionStep: (ns, name) => o.views.customSteps.get(`${ns}/${name}`),
    serviceAccount: (name) => o.views.serviceAccounts.get(`${o.views.agentNs}/${name}`),
    decideRole: await roleDecider(o.kube, o.views, o.compiler, project, stage),
    settings: o.settings,
    checkVars,
  });
}

/** Whether the agent-namespace account `sa` is bound to the token-manager Role (read from the API server). */
export async function tokenManagerBound(kube: KubeClient, agentNs: string, sa: string): Promise<boolean> {
  const list = await kube.get<KubeList<RoleBinding>>(
    `/apis/rbac.authorization.k8s.io/v1/namespaces/${agentNs}/rolebindings`,
  );
  return hasTokenManagerBinding(list.items ?? [], agentNs, sa);
}
