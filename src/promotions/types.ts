// Lanyard's promotion kinds as the API server stores them, matching the CRD schemas in deploy/helm/lanyard/crds/
// (docs/promotions.md#objects; docs/adr/1050-typed-kubernetes-objects.md). Types only.
import type { ResourceRequirements } from 'kubernetes-types/core/v1.js';
import type { KubeObject } from '../core/kube-object.ts';

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
