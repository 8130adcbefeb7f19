// Stage decorator annotations (docs/promotions.md#decorator-annotations): one pure function applies rules S1–S3, J1–J3, K1–K4, V1 in
// order (first violation wins, JSON keys sorted); A1 needs the final pod annotations and is checked by the builder.
import type { KubeObject, Stored } from '../core/kube-object.ts';
import type { Stage } from './types.ts';

export const ANN_SA = 'lanyard.dev/promotion-sa';
export const ANN_LABELS = 'lanyard.dev/promotion-labels';
export const ANN_ANNOTATIONS = 'lanyard.dev/promotion-annotations';
export const ANN_ALLOWED_PROJECTS = 'lanyard.dev/allowed-projects';
/**
 * Kargo's names for the same three decorators (seed 000), accepted as aliases so a Stage copied from Kargo keeps its
 * account, labels and annotations instead of silently running as the default account (docs/promotions.md,
 * "Kargo decorator names"). Every rule applies to them exactly as to Lanyard's names, reserved keys included.
 */
export const KARGO_ANN_SA = 'ee.kargo.akuity.io/promotion-sa';
export const KARGO_ANN_LABELS = 'ee.kargo.akuity.io/promotion-labels';
export const KARGO_ANN_ANNOTATIONS = 'ee.kargo.akuity.io/promotion-annotations';
/** Lanyard's decorator name for each Kargo alias. */
export const DECORATOR_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  [KARGO_ANN_SA]: ANN_SA,
  [KARGO_ANN_LABELS]: ANN_LABELS,
  [KARGO_ANN_ANNOTATIONS]: ANN_ANNOTATIONS,
});
/** Kubernetes' limit on the total size of an object's annotations (keys plus values). */
export const ANNOTATIONS_LIMIT = 262_144;

export type DecoratorReason =
  | 'InvalidPromotionServiceAccount'
  | 'PromotionServiceAccountNotFound'
  | 'PromotionServiceAccountNotAllowed'
  | 'InvalidPromotionLabels'
  | 'InvalidPromotionAnnotations';

export interface Violation<R extends string = string> {
  reason: R;
  message: string;
}

/** A Kargo alias the Stage uses: `alias` was read (or is redundant) where `name` is Lanyard's decorator. */
export interface AliasUse {
  alias: string;
  name: string;
  /** True when the Stage sets both names to the same value: the alias is then only redundant. */
  redundant: boolean;
}

export interface Decorations {
  serviceAccount: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Kargo aliases found on the Stage, in the order sa, labels, annotations (empty when none). */
  aliases: AliasUse[];
}

/** The sentence of the Warning Event `DeprecatedDecorator` for one alias use (docs/promotions.md). */
export function aliasNotice(stageName: string, use: AliasUse): string {
  return use.redundant
    ? `stage "${stageName}" sets both ${use.alias} and ${use.name} to the same value; remove ${use.alias}`
    : `stage "${stageName}" uses Kargo's annotation ${use.alias}; Lanyard applies it, but rename it to ${use.name}`;
}

/** The sentence of the Warning Event `DeprecatedKind` for a step found as Kargo's CustomPromotionStep (docs/adr/0605). */
export function kindAliasNotice(
  stageName: string,
  use: { step: string; uses: string; namespace: string },
): string {
  return (
    `stage "${stageName}" step "${use.step}" uses CustomPromotionStep "${use.uses}" in namespace "${use.namespace}" ` +
    `(Kargo's kind); Lanyard runs it, but rename its kind to PromotionStep`
  );
}

/** Kargo's `spec.requestedFreight` is accepted by the Stage schema but has no meaning here: say so, never silently. */
export function requestedFreightNotice(stageName: string): string {
  return `stage "${stageName}" has spec.requestedFreight (Kargo's Freight selection), which Lanyard ignores: a Promotion's vars say what is promoted`;
}

/**
 * The value of one decorator, read under Lanyard's name or its Kargo alias (seed 000), and the annotation it came
 * from (messages name that one). Empty or whitespace counts as unset under either name, as in Kargo. Both set to
 * different values is a violation: running with either would surprise whoever wrote the other.
 */
export function decoratorValue(
  annotations: Record<string, string> | undefined,
  name: string,
): { annotation: string; raw: string | undefined; alias?: AliasUse; conflict?: string } {
  const alias = Object.keys(DECORATOR_ALIASES).find((k) => DECORATOR_ALIASES[k] === name)!;
  const own = annotations?.[name];
  const kargo = annotations?.[alias];
  if (blank(kargo)) return { annotation: name, raw: own };
  if (blank(own)) return { annotation: alias, raw: kargo, alias: { alias, name, redundant: false } };
  if (own!.trim() === kargo!.trim())
    return { annotation: name, raw: own, alias: { alias, name, redundant: true } };
  return {
    annotation: name,
    raw: own,
    conflict: `conflicts with ${alias} (Kargo's name for the same decorator) set to ${JSON.stringify(kargo!.trim()).slice(0, 200)}; keep only ${name}`,
  };
}

export interface DecoratorInput {
  stage: Stored<Stage>;
  project: string;
  agentNamespace: string;
  defaultServiceAccount: string;
  /** Agent-namespace ServiceAccount by name, or undefined. */
  serviceAccount: (name: string) => KubeObject | undefined;
  /** The identity webhook's annotation prefix (`eks.amazonaws.com` unless configured). */
  annotationPrefix: string;
}

const DNS_SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;

export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && DNS_SUBDOMAIN_RE.test(s);
}

function blank(v: string | undefined): boolean {
  return v === undefined || v.trim() === '';
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v;
}

/** The projects an agent ServiceAccount is open to: undefined = every project (no annotation). */
export function allowedProjects(sa: KubeObject): string[] | undefined {
  const raw: unknown = sa?.metadata?.annotations?.[ANN_ALLOWED_PROJECTS];
  if (typeof raw !== 'string') return undefined;
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function saOpenTo(sa: KubeObject, project: string): boolean {
  const allowed = allowedProjects(sa);
  return allowed === undefined || allowed.includes('*') || allowed.includes(project);
}

function checkServiceAccount(
  input: DecoratorInput,
  annotation: string,
  raw: string | undefined,
): Violation<DecoratorReason> | string {
  if (blank(raw)) return input.defaultServiceAccount;
  const name = raw!.trim();
  const prefix = `annotation ${annotation} on stage "${input.stage.metadata.name}": `;
  if (!isDnsSubdomain(name)) {
    return {
      reason: 'InvalidPromotionServiceAccount',
      message: `${prefix}"${name}" is not a valid service account name`,
    };
  }
  const sa = input.serviceAccount(name);
  if (!sa) {
    return {
      reason: 'PromotionServiceAccountNotFound',
      message: `${prefix}serviceaccount "${name}" does not exist in namespace "${input.agentNamespace}"`,
    };
  }
  if (!saOpenTo(sa, input.project)) {
    return {
      reason: 'PromotionServiceAccountNotAllowed',
      message:
        `${prefix}serviceaccount "${name}" in namespace "${input.agentNamespace}" is not open to project ` +
        `"${input.project}" (allowed: ${(allowedProjects(sa) ?? []).join(', ') || 'none'})`,
    };
  }
  return name;
}

const WEBHOOK_PREFIX = 'eks.amazonaws.com';
/** Kubernetes reserves these prefixes for its own components; it leaves this one to applications. */
const KUBERNETES_PREFIXES = ['kubernetes.io', 'k8s.io'];
const KUBERNETES_APP_PREFIX = 'app.kubernetes.io';

const under = (prefix: string, domain: string) => prefix === domain || prefix.endsWith(`.${domain}`);

/**
 * K4, reserved keys (docs/promotions.md, "Decorator annotations"): keys that would change what Lanyard, the
 * identity webhook or Kubernetes do with the pod, rather than describe it. Lanyard's own labels select promotion
 * pods (the controller, NetworkPolicies); the webhook's skip label takes the pod out of its object selector and its
 * pod annotations change token injection. Only `<prefix>/skip-containers`, which merely narrows injection, is open.
 */
function reservedKeyRule(
  prefix: string,
  name: string,
  kind: 'labels' | 'annotations',
  annotationPrefix: string,
): string | undefined {
  if (under(prefix, 'lanyard.dev')) return 'keys under lanyard.dev belong to Lanyard';
  for (const domain of new Set([annotationPrefix, WEBHOOK_PREFIX])) {
    if (!under(prefix, domain)) continue;
    if (kind === 'annotations' && prefix === annotationPrefix && name === 'skip-containers') return undefined;
    const open =
      kind === 'annotations' ? `; of these a Stage may set only ${annotationPrefix}/skip-containers` : '';
    return `keys under ${domain} belong to the identity webhook${open}`;
  }
  if (prefix === KUBERNETES_APP_PREFIX) return undefined;
  const k8s = KUBERNETES_PREFIXES.find((d) => under(prefix, d));
  return k8s
    ? `keys under ${k8s} belong to Kubernetes components (${KUBERNETES_APP_PREFIX} is allowed)`
    : undefined;
}

/** The two JSON map decorators: the annotation each is read from and the reason its violations carry. */
const MAP_DECORATORS = {
  labels: { annotation: ANN_LABELS, reason: 'InvalidPromotionLabels' },
  annotations: { annotation: ANN_ANNOTATIONS, reason: 'InvalidPromotionAnnotations' },
} as const satisfies Record<string, { annotation: string; reason: DecoratorReason }>;

/** J1–J3, K1–K4 and (labels only) V1 on one JSON map annotation. */
function checkMap(
  annotation: string,
  stageName: string,
  raw: string | undefined,
  kind: 'labels' | 'annotations',
  annotationPrefix: string,
): Violation<DecoratorReason> | Record<string, string> {
  if (blank(raw)) return {};
  const reason: DecoratorReason = MAP_DECORATORS[kind].reason;
  const fail = (detail: string) => ({
    reason,
    message: `annotation ${annotation} on stage "${stageName}": ${detail}`,
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw!);
  } catch (e) {
    return fail(`not valid JSON: ${(e as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return fail(`must be a JSON object, got ${jsonKind(parsed)}`);
  }
  const obj = parsed as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  // Rule-major: each rule looks at every key (sorted) before the next rule runs.
  for (const k of keys) {
    if (typeof obj[k] !== 'string')
      return fail(`key "${k}": value must be a string, got ${jsonKind(obj[k])}`);
  }
  const split = (k: string) => {
    const i = k.indexOf('/');
    return i < 0 ? { prefix: undefined, name: k } : { prefix: k.slice(0, i), name: k.slice(i + 1) };
  };
  for (const k of keys) {
    if (k.split('/').length > 2) return fail(`key "${k}": at most one "/" is allowed`);
  }
  for (const k of keys) {
    const { prefix } = split(k);
    if (prefix !== undefined && !isDnsSubdomain(prefix)) {
      return fail(
        `key "${k}": prefix "${prefix}" must be a lowercase DNS subdomain of at most 253 characters`,
      );
    }
  }
  for (const k of keys) {
    const { name } = split(k);
    if (!QUALIFIED_NAME_RE.test(name)) {
      return fail(
        `key "${k}": name "${name}" must be 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
      );
    }
  }
  for (const k of keys) {
    const { prefix, name } = split(k);
    const reserved = prefix === undefined ? undefined : reservedKeyRule(prefix, name, kind, annotationPrefix);
    if (reserved) return fail(`key "${k}": ${reserved}`);
  }
  if (kind === 'labels') {
    for (const k of keys) {
      const v = obj[k] as string;
      if (v !== '' && !QUALIFIED_NAME_RE.test(v)) {
        return fail(
          `key "${k}": value "${v}" must be empty or 1-63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`,
        );
      }
    }
  }
  return obj as Record<string, string>;
}

function isViolation(v: unknown): v is Violation<DecoratorReason> {
  return typeof v === 'object' && v !== null && 'reason' in v && 'message' in v;
}

/** Applies S1–S3, then the labels rules, then the annotations rules. */
export function checkDecorators(
  input: DecoratorInput,
): { ok: true; value: Decorations } | ({ ok: false } & Violation<DecoratorReason>) {
  const ann: Record<string, string> = input.stage?.metadata?.annotations ?? {};
  const stageName = input.stage.metadata.name;
  const aliases: AliasUse[] = [];
  // Each decorator under Lanyard's name or Kargo's (seed 000); the same rules run on whichever was read.
  const read = (name: string, reason: DecoratorReason) => {
    const v = decoratorValue(ann, name);
    if (v.conflict)
      return {
        reason,
        message: `annotation ${name} on stage "${stageName}": ${v.conflict}`,
      } as Violation<DecoratorReason>;
    if (v.alias) aliases.push(v.alias);
    return v;
  };
  const saValue = read(ANN_SA, 'InvalidPromotionServiceAccount');
  if (isViolation(saValue)) return { ok: false, ...saValue };
  const sa = checkServiceAccount(input, saValue.annotation, saValue.raw);
  if (isViolation(sa)) return { ok: false, ...sa };
  // The labels and the annotations decorators: the same reading and rules, each under its own annotation and reason.
  const readMap = (kind: 'labels' | 'annotations') => {
    const { annotation, reason } = MAP_DECORATORS[kind];
    const v = read(annotation, reason);
    return isViolation(v) ? v : checkMap(v.annotation, stageName, v.raw, kind, input.annotationPrefix);
  };
  const labels = readMap('labels');
  if (isViolation(labels)) return { ok: false, ...labels };
  const annotations = readMap('annotations');
  if (isViolation(annotations)) return { ok: false, ...annotations };
  return { ok: true, value: { serviceAccount: sa, labels, annotations, aliases } };
}

/** A1: Kubernetes counts the bytes of every key and value. */
export function annotationsSize(annotations: Record<string, string>): number {
  let n = 0;
  for (const [k, v] of Object.entries(annotations)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  return n;
}

export function checkAnnotationsSize(
  stageName: string,
  annotations: Record<string, string>,
  annotation: string = ANN_ANNOTATIONS,
): Violation<'InvalidPromotionAnnotations'> | undefined {
  const size = annotationsSize(annotations);
  if (size <= ANNOTATIONS_LIMIT) return undefined;
  return {
    reason: 'InvalidPromotionAnnotations',
    message: `annotation ${annotation} on stage "${stageName}": the pod's annotations would total ${size} bytes; the limit is ${ANNOTATIONS_LIMIT}`,
  };
}
