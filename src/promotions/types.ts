// Lanyard's promotion kinds as the API server stores them, matching the CRD schemas in deploy/helm/lanyard/crds/
// (docs/promotions.md#objects; docs/adr/1050-typed-kubernetes-objects.md). Types only.
import type { ResourceRequirements } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../core/kube-object.ts';
import type { Condition } from '../kube/conditions.ts';

/** `lanyard.dev/v1alpha1 PromotionStep` (and Kargo's CustomPromotionStep, the same schema, docs/adr/0605). */
export interface PromotionStep extends KubeObject {
  spec: PromotionStepSpec;
}

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
    requestedFreight?: unknown[];
    promotionTemplate?: { spec?: PromotionTemplateSpec };
  };
  status?: {
    currentPromotion?: string;
    lastPromotion?: { name?: string; phase?: string; finishedAt?: string };
    conditions?: Condition[];
  };
}

/**
 * The steps and vars of a Stage. The schema requires `steps` and each step's `uses`; the builder's readStage checks
 * what the schema cannot express (unique aliases, patterns, duration ranges).
 */
export interface PromotionTemplateSpec {
  timeout?: string;
  vars?: Array<{ name: string; value?: string; pattern?: string }>;
  steps?: Array<{ as?: string; uses: string; config?: unknown; timeout?: string }>;
}

/** `lanyard.dev/v1alpha1 Promotion`: one run of a Stage's template with its vars. */
export interface Promotion extends KubeObject {
  spec?: { stage: string; vars?: Array<{ name: string; value: string }> };
  status?: {
    phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Errored' | 'Aborted';
    message?: string;
    pod?: { namespace?: string; name?: string; serviceAccount?: string };
    startedAt?: string;
    finishedAt?: string;
    currentStep?: number;
    steps?: unknown[];
    conditions?: Condition[];
  };
}
