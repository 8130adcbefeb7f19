// Lanyard's promotion kinds as the API server stores them, matching the CRD schemas in deploy/helm/lanyard/crds/
// (docs/promotions.md#objects; docs/adr/1050-typed-kubernetes-objects.md, docs/adr/1075-typed-promotion-objects.md).
// Types only: objects stay the JSON the API server sent, unknown fields included.
import type { ResourceRequirements } from 'kubernetes-types/core/v1.js';
import type { KubeObject, ObjectMeta, Stored } from '../core/kube-object.ts';
import type { Condition } from '../kube/conditions.ts';
import type { StepStatus } from './status.ts';

/** `lanyard.dev/v1alpha1 PromotionStep` (and Kargo's CustomPromotionStep, the same schema, docs/adr/0605). */
export interface PromotionStep extends KubeObject {
  spec: PromotionStepSpec;
}

/** Kargo's name for a PromotionStep: the same schema under a deprecated kind (docs/adr/0605-custompromotionstep-kind.md). */
export type CustomPromotionStep = PromotionStep;

/**
 * A step's container. The schema requires `image` and `command`; the builder still checks every field the schema
 * cannot express (checkStepSpec in build.ts), so each is read as the API server may hold it.
 */
export interface PromotionStepSpec {
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  command: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string }>;
  workingDir?: string;
  identity?: { roleARN?: string };
  capabilities?: string[];
  resources?: ResourceRequirements;
}

/** `lanyard.dev/v1alpha1 Stage`: the promotion template its Promotions run, and the Stage lock in its status. */
export interface Stage extends KubeObject {
  spec?: {
    /** Kargo's Freight request: accepted and ignored, with a notice (docs/promotions.md). */
    requestedFreight?: unknown[];
    promotionTemplate?: { spec?: PromotionTemplateSpec };
  };
  status?: StageStatus;
}

export interface StageStatus {
  /** The Stage lock: the Promotion that runs now. */
  currentPromotion?: string;
  lastPromotion?: LastPromotion;
  conditions?: Condition[];
}

export interface LastPromotion {
  name: string;
  phase: string;
  finishedAt: string;
}

/**
 * The steps and vars of a Stage. The schema requires `steps` and each step's `uses`; the builder's readStage checks
 * what the schema cannot express (unique aliases, patterns, duration ranges).
 */
export interface PromotionTemplateSpec {
  timeout?: string;
  vars?: StageVarSpec[];
  steps?: PromotionTemplateStep[];
}

export interface StageVarSpec {
  name: string;
  value?: string;
  pattern?: string;
}

/** One step of a Stage's template; `config` is the user's own block, unknown JSON (docs/promotions.md#templates). */
export interface PromotionTemplateStep {
  as?: string;
  uses: string;
  config?: unknown;
  timeout?: string;
}

export type PromotionPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Errored' | 'Aborted';

/** `lanyard.dev/v1alpha1 Promotion`: one run of a Stage's template with its vars. */
export interface Promotion extends KubeObject {
  spec?: PromotionSpec;
  status?: PromotionStatus;
}

export interface PromotionSpec {
  stage: string;
  vars?: PromotionVar[];
}

export interface PromotionVar {
  name: string;
  value: string;
}

export interface PromotionStatus {
  phase?: PromotionPhase;
  message?: string;
  pod?: { namespace?: string; name?: string; serviceAccount?: string };
  startedAt?: string;
  finishedAt?: string;
  currentStep?: number;
  steps?: StepStatus[];
  conditions?: Condition[];
}

/** A Promotion as a pass reads it: named, in a project, for a Stage (the schema requires `spec.stage`). */
export type NamedPromotion = Promotion & {
  metadata: ObjectMeta & { name: string; namespace: string; uid: string };
  spec: PromotionSpec;
};

/** What the promotion controller keeps of an agent-namespace ServiceAccount (the metadata-only view in gather.ts). */
export interface AgentAccount {
  metadata: { name: string; namespace: string; annotations: Record<string, string> };
}

/** A Promotion read back from the API server: named in its project, for a Stage (the schema requires `spec.stage`). */
export type StoredPromotion = Stored<Promotion> & { metadata: { namespace: string }; spec: PromotionSpec };

/** A Stage read back from the API server, in its project. */
export type StoredStage = Stored<Stage> & { metadata: { namespace: string } };
