// The pure pod builder (docs/promotions.md#objects): Stage + Promotion + PromotionSteps -> a complete Pod, or one
// validation error, never both. Everything a user can get wrong is checked here, before any pod exists.
import type { Container, EnvVar, Pod, PodSpec, Volume, VolumeMount } from 'kubernetes-types/core/v1.js';
import type { KubeObject, ObjectMeta, Stored } from '../core/kube-object.ts';
import type {
  Promotion,
  PromotionStep,
  PromotionStepSpec,
  PromotionTemplateSpec,
  PromotionVar,
  Stage,
} from './types.ts';
import {
  ANN_ANNOTATIONS,
  checkAnnotationsSize,
  checkDecorators,
  decoratorValue,
  type AliasUse,
  type DecoratorReason,
} from './decorators.ts';
import { formatDuration, parseDuration } from '../core/duration.ts';

/** Stage and step timeouts: whole hours, minutes and seconds (pods take whole seconds; docs/promotions.md). */
const STAGE_DURATION = { units: ['h', 'm', 's'], fractions: false, negative: false } as const;
const stageSeconds = (text: string): number | undefined => {
  const ms = parseDuration(text, STAGE_DURATION);
  return ms === undefined ? undefined : ms / 1000;
};
import { renderConfig, renderTemplate, TemplateFailure, type TemplateScope } from './template.ts';

export const FINALIZER = 'lanyard.dev/promotion-pod';
export const LABEL_PROJECT = 'lanyard.dev/project';
export const LABEL_STAGE = 'lanyard.dev/stage';
export const LABEL_PROMOTION = 'lanyard.dev/promotion';
export const LABEL_PROMOTION_UID = 'lanyard.dev/promotion-uid';
export const ANN_PROMOTION = 'lanyard.dev/promotion';
export const ANN_STAGE_GENERATION = 'lanyard.dev/stage-generation';
/** Step timeouts travel with the pod, so a restarted controller enforces the ones the pod was built with. */
export const ANN_STEP_TIMEOUTS = 'lanyard.dev/step-timeouts';
export const ANN_ABORT = 'lanyard.dev/abort';
export const WORKSPACE = '/workspace';
export const HOME_DIR = '/lanyard/home';
export const AWS_TOKEN_DIR = '/var/run/secrets/lanyard.dev/aws';
export const KUBE_TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
export const MAX_STEPS = 20;
export const DEFAULT_VAR_PATTERN = '[A-Za-z0-9._:/@+=,-]*';
export const MAX_VAR_LENGTH = 1024;
export const STEP_CAPABILITIES = ['kubernetes-api', 'mint-tokens'] as const;
export const ROLE_ARN_RE = /^arn:[a-z][a-z0-9-]*:iam::[0-9]{12}:role\/[\w+=,.@/-]+$/;

export interface BuildSettings {
  agentNamespace: string;
  defaultServiceAccount: string;
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  doneImage: string;
  stepAudience: string;
  awsRegion: string;
  /** The identity webhook's annotation prefix (`eks.amazonaws.com`), for `<prefix>/skip-containers`. */
  annotationPrefix: string;
}

/** The IdentityPolicy decision of docs/verified-start.md#identitypolicy, bound to the policies and namespace labels in force. */
export type StepRoleDecision = (input: {
  namespace: string;
  serviceAccount: string;
  roleARN: string;
}) => { allowed: true } | { allowed: false; message: string };

export interface BuildInput {
  stage: Stored<Stage>;
  /** Needs metadata.name/namespace/uid and spec.vars; for the Stage's own `Valid` check, see `checkVars`. */
  promotion: Promotion & { metadata: ObjectMeta & { name: string; namespace: string; uid: string } };
  /** PromotionStep by namespace and name. */
  promotionStep: (namespace: string, name: string) => PromotionStep | undefined;
  /** Kargo's CustomPromotionStep by namespace and name: the same step under its deprecated kind (docs/adr/0605). */
  customPromotionStep?: (namespace: string, name: string) => PromotionStep | undefined;
  /** Agent-namespace ServiceAccount by name. */
  serviceAccount: (name: string) => KubeObject | undefined;
  decideRole: StepRoleDecision;
  settings: BuildSettings;
  /** False for the Stage's `Valid` condition: every check but the Promotion's vars. */
  checkVars?: boolean;
}

export type BuildReason =
  | DecoratorReason
  | 'InvalidStage'
  | 'StepNotFound'
  | 'AmbiguousStep'
  | 'InvalidStep'
  | 'InvalidVars'
  | 'TemplateError'
  | 'StepRoleDenied'
  | 'StepCapabilityDenied';

export interface BuiltStep {
  /** The alias (`as`, default `step-<n>`). */
  name: string;
  uses: string;
  container: string;
  /** Namespace the PromotionStep was found in. */
  from: string;
  timeoutSeconds?: number;
  roleARN?: string;
  capabilities: string[];
}

/** The promotion pod as built: every field the controller and the status reader rely on is set. */
export type BuiltPod = Pod & {
  metadata: ObjectMeta & {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  };
  spec: PodSpec & { initContainers: StepContainer[]; containers: Container[]; volumes: Volume[] };
};

/** A step's init container as built: its image, command, environment and mounts are always set. */
export type StepContainer = Container & {
  image: string;
  command: string[];
  env: EnvVar[];
  volumeMounts: VolumeMount[];
};

export type BuildResult =
  | {
      ok: true;
      pod: BuiltPod;
      serviceAccount: string;
      steps: BuiltStep[];
      timeoutSeconds: number;
      aliases: AliasUse[];
      /** Steps found as Kargo's CustomPromotionStep (docs/adr/0605), in step order (empty when none). */
      kindAliases: KindAliasUse[];
    }
  | { ok: false; reason: BuildReason; message: string };

class Invalid extends Error {
  constructor(
    readonly reason: BuildReason,
    message: string,
  ) {
    super(message);
  }
}

/** A step a Stage uses that exists only under Kargo's kind CustomPromotionStep (docs/adr/0605). */
export interface KindAliasUse {
  /** The step's alias in the Stage (`as`). */
  step: string;
  uses: string;
  namespace: string;
}

/**
 * The step named `name` in `namespace`, under either kind. Both kinds with one name in one namespace is an error
 * naming both (never a silent pick: whoever wrote the other would be surprised), docs/adr/0605.
 */
function lookupStep(
  input: BuildInput,
  namespace: string,
  name: string,
): { spec: PromotionStepSpec; custom: boolean } | undefined {
  const step = input.promotionStep(namespace, name);
  const custom = input.customPromotionStep?.(namespace, name);
  if (step && custom) {
    throw new Invalid(
      'AmbiguousStep',
      `PromotionStep "${name}" and CustomPromotionStep "${name}" both exist in namespace "${namespace}": ` +
        `delete the CustomPromotionStep (Kargo's name for the same kind)`,
    );
  }
  const found = step ?? custom;
  return found && { spec: found.spec, custom: !step };
}

const VAR_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_NAME_RE = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
// Kubernetes' resource.Quantity syntax (the API server refuses the whole pod otherwise).
const QUANTITY_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$/;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

/** Kubernetes keeps 4 KiB per container and 12 KiB per pod, split among the containers (steps + `done`). */
export function outputBudget(steps: number): number {
  return Math.min(4096, Math.floor(12288 / (steps + 1)));
}

export function podName(promotionUid: string): string {
  return `promotion-${promotionUid}`;
}

function fullMatch(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'u');
}

interface StageStep {
  name: string;
  uses: string;
  /** The user's own block: any JSON object (docs/promotions.md#templates). */
  config: unknown;
  timeoutSeconds?: number;
}

interface StageVar {
  name: string;
  value?: string;
  pattern: RegExp;
  patternText: string;
}

/** Structural checks of the Stage the CRD cannot express (uniqueness, regexps, duration ranges). */
function readStage(
  stage: Stored<Stage>,
  s: BuildSettings,
): { steps: StageStep[]; vars: StageVar[]; timeoutSeconds: number } {
  const name = stage.metadata.name;
  const spec: PromotionTemplateSpec = stage.spec?.promotionTemplate?.spec ?? {};
  const bad = (field: string, detail: string) =>
    new Invalid('InvalidStage', `stage "${name}": spec.promotionTemplate.spec.${field} ${detail}`);
  let timeoutSeconds = s.defaultTimeoutSeconds;
  if (spec.timeout !== undefined) {
    const t = stageSeconds(String(spec.timeout));
    if (t === undefined || t < 30 || t > s.maxTimeoutSeconds) {
      throw bad(
        'timeout',
        `"${spec.timeout}" must be a duration (30s, 2m, 1h30m) between 30s and ${formatDuration(s.maxTimeoutSeconds * 1000)}`,
      );
    }
    timeoutSeconds = t;
  }
  const rawSteps = Array.isArray(spec.steps) ? spec.steps : [];
  if (rawSteps.length < 1 || rawSteps.length > MAX_STEPS) {
    throw bad('steps', `has ${rawSteps.length} items; a stage needs 1 to ${MAX_STEPS}`);
  }
  const seen = new Set<string>();
  const steps = rawSteps.map((st, i): StageStep => {
    const alias = st?.as ?? `step-${i + 1}`;
    if (typeof alias !== 'string' || alias.length < 1 || alias.length > 63 || CONTROL_RE.test(alias)) {
      throw bad(
        `steps[${i}].as`,
        `${JSON.stringify(alias)} must be 1-63 characters without control characters`,
      );
    }
    if (seen.has(alias))
      throw bad(`steps[${i}].as`, `"${alias}" is used by an earlier step; names must be unique`);
    seen.add(alias);
    if (typeof st?.uses !== 'string' || st.uses === '') throw bad(`steps[${i}].uses`, 'is required');
    let stepTimeout: number | undefined;
    if (st.timeout !== undefined) {
      stepTimeout = stageSeconds(String(st.timeout));
      if (stepTimeout === undefined || stepTimeout < 1) {
        throw bad(`steps[${i}].timeout`, `"${st.timeout}" must be a duration of at least 1s`);
      }
    }
    const config = st.config ?? {};
    if (config === null || typeof config !== 'object' || Array.isArray(config))
      throw bad(`steps[${i}].config`, 'must be an object');
    return { name: alias, uses: st.uses, config, timeoutSeconds: stepTimeout };
  });
  const varNames = new Set<string>();
  const vars = (Array.isArray(spec.vars) ? spec.vars : []).map((v, i): StageVar => {
    if (typeof v?.name !== 'string' || !VAR_NAME_RE.test(v.name)) {
      throw bad(`vars[${i}].name`, `${JSON.stringify(v?.name)} must match ^[A-Za-z_][A-Za-z0-9_]*$`);
    }
    if (varNames.has(v.name)) throw bad(`vars[${i}].name`, `"${v.name}" is declared twice`);
    varNames.add(v.name);
    const patternText = v.pattern ?? DEFAULT_VAR_PATTERN;
    let pattern: RegExp;
    try {
      pattern = fullMatch(patternText);
    } catch (e) {
      throw bad(
        `vars[${i}].pattern`,
        `"${patternText}" is not a valid regular expression: ${(e as Error).message}`,
      );
    }
    return {
      name: v.name,
      value: v.value === undefined || v.value === null ? undefined : String(v.value),
      pattern,
      patternText,
    };
  });
  return { steps, vars, timeoutSeconds };
}

/** docs/verified-start.md#identitypolicy vars: declared, given when required, ≤ 1,024 characters, matching the pattern. */
function resolveVars(
  stageName: string,
  declared: StageVar[],
  given: PromotionVar[] | undefined,
  checkGiven: boolean,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of declared) if (v.value !== undefined) out[v.name] = v.value;
  if (!checkGiven) {
    // The Stage's own check: required vars get a neutral stand-in so templates can still be checked.
    for (const v of declared) if (!(v.name in out)) out[v.name] = '';
    return out;
  }
  const byName = new Map(declared.map((v) => [v.name, v]));
  const seen = new Set<string>();
  for (const g of Array.isArray(given) ? given : []) {
    const name = String(g?.name);
    const decl = byName.get(name);
    if (!decl) throw new Invalid('InvalidVars', `var "${name}" is not declared by stage "${stageName}"`);
    if (seen.has(name)) throw new Invalid('InvalidVars', `var "${name}" is given twice`);
    seen.add(name);
    const value = String(g?.value ?? '');
    if (value.length > MAX_VAR_LENGTH) {
      throw new Invalid(
        'InvalidVars',
        `var "${name}": value has ${value.length} characters; the limit is ${MAX_VAR_LENGTH}`,
      );
    }
    if (!decl.pattern.test(value)) {
      throw new Invalid(
        'InvalidVars',
        `var "${name}": value ${JSON.stringify(value)} does not match ${decl.patternText}`,
      );
    }
    out[name] = value;
  }
  for (const v of declared) {
    if (!(v.name in out))
      throw new Invalid(
        'InvalidVars',
        `var "${v.name}" is required by stage "${stageName}" and was not given`,
      );
  }
  return out;
}

/** PromotionStep fields the CRD schema cannot fully express. */
function checkStepSpec(label: string, spec: PromotionStepSpec): void {
  const bad = (detail: string) => new Invalid('InvalidStep', `${label}: ${detail}`);
  if (typeof spec?.image !== 'string' || spec.image === '') throw bad('spec.image is required');
  if (!Array.isArray(spec.command) || spec.command.length === 0)
    throw bad('spec.command needs at least one item');
  if (spec.workingDir !== undefined && !String(spec.workingDir).startsWith('/')) {
    throw bad(`spec.workingDir "${spec.workingDir}" must be an absolute path`);
  }
  const role: unknown = spec.identity?.roleARN;
  if (role !== undefined && (typeof role !== 'string' || role.length > 2048 || !ROLE_ARN_RE.test(role))) {
    throw bad(`spec.identity.roleARN ${JSON.stringify(role)} must match ${ROLE_ARN_RE.source}`);
  }
  for (const e of spec.env ?? []) {
    const n = String(e?.name);
    if (!ENV_NAME_RE.test(n)) throw bad(`env "${n}": not a valid environment variable name`);
    if (n.startsWith('LANYARD_'))
      throw bad(`env "${n}": names starting with LANYARD_ are reserved for Lanyard`);
    if (role !== undefined && (n === 'AWS_ROLE_ARN' || n === 'AWS_WEB_IDENTITY_TOKEN_FILE')) {
      throw bad(`env "${n}": set by Lanyard for a step with spec.identity.roleARN`);
    }
  }
  for (const kind of ['requests', 'limits'] as const) {
    for (const [name, q] of Object.entries(spec.resources?.[kind] ?? {})) {
      if (!QUANTITY_RE.test(String(q))) {
        throw bad(
          `spec.resources.${kind}.${name} ${JSON.stringify(q)} is not a Kubernetes quantity (such as 100m, 128Mi or 2)`,
        );
      }
    }
  }
  for (const c of spec.capabilities ?? []) {
    if (!(STEP_CAPABILITIES as readonly string[]).includes(c)) {
      throw bad(
        `spec.capabilities: unknown capability ${JSON.stringify(c)} (known: ${STEP_CAPABILITIES.join(', ')})`,
      );
    }
  }
}

function render(label: string, where: string, text: unknown, scope: TemplateScope): string {
  try {
    return renderTemplate(String(text), scope);
  } catch (e) {
    if (e instanceof TemplateFailure) throw new Invalid('TemplateError', `${label}: ${where}: ${e.detail}`);
    throw e;
  }
}

const SECURITY_CONTEXT = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
const DEFAULT_RESOURCES = { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '1Gi' } };

/** Builds the pod, or returns the first violation (decorators, steps, A1, vars, templates, step roles). */
export function buildPromotionPod(input: BuildInput): BuildResult {
  try {
    return build(input);
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, reason: e.reason, message: e.message };
    throw e;
  }
}

/** A Stage's step with the PromotionStep it uses. */
interface ResolvedStep {
  st: StageStep;
  /** 1-based: the step's container is `step-<index>`. */
  index: number;
  /** `step "<as>" (uses "<name>")`, the start of every message about the step. */
  label: string;
  spec: PromotionStepSpec;
  /** Namespace the PromotionStep was found in. */
  from: string;
  /** Found under Kargo's kind CustomPromotionStep (docs/adr/0605). */
  custom: boolean;
}

/** Who a promotion pod is: what its containers' environment and labels name. */
interface PromotionNames {
  project: string;
  stage: string;
  promotion: string;
  uid: string;
}

function build(input: BuildInput): BuildResult {
  const { stage, promotion, settings: s } = input;
  const names: PromotionNames = {
    project: promotion.metadata.namespace,
    stage: stage.metadata.name,
    promotion: promotion.metadata.name,
    uid: promotion.metadata.uid,
  };
  const deco = checkDecorators({
    stage,
    project: names.project,
    agentNamespace: s.agentNamespace,
    defaultServiceAccount: s.defaultServiceAccount,
    serviceAccount: input.serviceAccount,
    annotationPrefix: s.annotationPrefix,
  });
  if (!deco.ok) throw new Invalid(deco.reason, deco.message);
  const { serviceAccount, aliases } = deco.value;
  const tpl = readStage(stage, s);
  // Resolve every step first: a missing step is reported before anything that depends on it.
  const resolved = tpl.steps.map((st, i) => resolveStep(input, names.project, st, i + 1));
  const metadata = podMetadata(input, names, resolved, deco.value);
  const vars = resolveVars(names.stage, tpl.vars, promotion.spec?.vars, input.checkVars !== false);
  const volumes: Volume[] = [
    { name: 'workspace', emptyDir: {} },
    { name: 'home', emptyDir: {} },
  ];
  const initContainers = resolved.map((r) => {
    const step = stepContainer(input, names, serviceAccount, vars, r);
    volumes.push(...step.volumes);
    return step.container;
  });
  const pod = promotionPod(s, metadata, serviceAccount, tpl.timeoutSeconds, volumes, initContainers);
  const steps: BuiltStep[] = resolved.map((r) => ({
    name: r.st.name,
    uses: r.st.uses,
    container: `step-${r.index}`,
    from: r.from,
    timeoutSeconds: r.st.timeoutSeconds,
    roleARN: r.spec.identity?.roleARN,
    capabilities: r.spec.capabilities ?? [],
  }));
  const kindAliases: KindAliasUse[] = resolved
    .filter((r) => r.custom)
    .map((r) => ({ step: r.st.name, uses: r.st.uses, namespace: r.from }));
  return { ok: true, pod, serviceAccount, steps, timeoutSeconds: tpl.timeoutSeconds, aliases, kindAliases };
}

/** The PromotionStep a Stage's step uses, in the project first, then in the agent namespace; checked. */
function resolveStep(input: BuildInput, project: string, st: StageStep, index: number): ResolvedStep {
  const s = input.settings;
  const label = `step "${st.name}" (uses "${st.uses}")`;
  const local = lookupStep(input, project, st.uses);
  const found = local ?? lookupStep(input, s.agentNamespace, st.uses);
  if (!found) {
    throw new Invalid(
      'StepNotFound',
      `step "${st.name}" uses "${st.uses}", which exists neither in project "${project}" nor in namespace "${s.agentNamespace}"`,
    );
  }
  checkStepSpec(label, found.spec);
  // Kubernetes credentials go only to the agent namespace's shared steps, which operators write: a project's own
  // step would otherwise run any image with the promotion account's token (docs/promotions.md).
  const capabilities: string[] = found.spec.capabilities ?? [];
  if (local && capabilities.length > 0) {
    throw new Invalid(
      'StepCapabilityDenied',
      `${label}: spec.capabilities [${capabilities.join(', ')}]: only PromotionSteps in namespace "${s.agentNamespace}" ` +
        `may hold Kubernetes credentials; steps of project "${project}" run without them`,
    );
  }
  return {
    st,
    index,
    label,
    spec: found.spec,
    from: local ? project : s.agentNamespace,
    custom: found.custom,
  };
}

/**
 * The pod's labels and annotations: the Stage's decorators, Lanyard's own, the webhook's skip list (steps with a
 * role of their own get their credentials from Lanyard) and the step timeouts; refused when over the size limit.
 */
function podMetadata(
  input: BuildInput,
  names: PromotionNames,
  resolved: ResolvedStep[],
  deco: { labels: Record<string, string>; annotations: Record<string, string> },
): { labels: Record<string, string>; annotations: Record<string, string> } {
  const s = input.settings;
  const skip = new Set<string>();
  const decoSkipKey = `${s.annotationPrefix}/skip-containers`;
  for (const c of (deco.annotations[decoSkipKey] ?? '').split(',')) if (c.trim()) skip.add(c.trim());
  for (const r of resolved) if (r.spec.identity?.roleARN) skip.add(`step-${r.index}`);
  const timeouts: Record<string, number> = {};
  for (const r of resolved)
    if (r.st.timeoutSeconds !== undefined) timeouts[`step-${r.index}`] = r.st.timeoutSeconds;
  const labels: Record<string, string> = {
    ...deco.labels,
    [LABEL_PROJECT]: names.project,
    [LABEL_STAGE]: names.stage,
    [LABEL_PROMOTION]: names.promotion,
    [LABEL_PROMOTION_UID]: names.uid,
  };
  const annotations: Record<string, string> = {
    ...deco.annotations,
    [ANN_PROMOTION]: `${names.project}/${names.promotion}`,
    [ANN_STAGE_GENERATION]: String(input.stage.metadata.generation ?? 0),
  };
  if (skip.size > 0) annotations[decoSkipKey] = [...skip].join(',');
  if (Object.keys(timeouts).length > 0) annotations[ANN_STEP_TIMEOUTS] = JSON.stringify(timeouts);
  const sizeViolation = checkAnnotationsSize(
    names.stage,
    annotations,
    decoratorValue(input.stage.metadata.annotations, ANN_ANNOTATIONS).annotation,
  );
  if (sizeViolation) throw new Invalid(sizeViolation.reason, sizeViolation.message);
  return { labels, annotations };
}

/** A step's init container with its templates rendered and its credentials mounted, and the volumes they need. */
function stepContainer(
  input: BuildInput,
  names: PromotionNames,
  serviceAccount: string,
  vars: Record<string, string>,
  r: ResolvedStep,
): { container: StepContainer; volumes: Volume[] } {
  const container = `step-${r.index}`;
  const rendered = renderStep(names, vars, r);
  const roleARN = r.spec.identity?.roleARN;
  if (roleARN) {
    const d = input.decideRole({ namespace: names.project, serviceAccount, roleARN });
    if (!d.allowed) throw new Invalid('StepRoleDenied', `${r.label}: ${d.message.replace(/^lanyard: /, '')}`);
  }
  const ours: EnvVar[] = [
    { name: 'LANYARD_PROJECT', value: names.project },
    { name: 'LANYARD_STAGE', value: names.stage },
    { name: 'LANYARD_PROMOTION', value: names.promotion },
    { name: 'LANYARD_STEP', value: r.st.name },
    { name: 'LANYARD_STEP_INDEX', value: String(r.index) },
    { name: 'LANYARD_WORKSPACE', value: WORKSPACE },
    { name: 'LANYARD_OUTPUT', value: '/dev/termination-log' },
    { name: 'HOME', value: HOME_DIR },
  ];
  const mounts: VolumeMount[] = [
    { name: 'workspace', mountPath: WORKSPACE },
    { name: 'home', mountPath: HOME_DIR, subPath: container },
  ];
  const volumes: Volume[] = [];
  if (roleARN) {
    const aws = awsCredentials(input.settings, names.promotion, container, r.index, roleARN);
    volumes.push(aws.volume);
    mounts.push(aws.mount);
    ours.push(...aws.env);
  }
  const caps: string[] = r.spec.capabilities ?? [];
  if (caps.includes('kubernetes-api') || caps.includes('mint-tokens')) {
    const kube = kubeCredentials(container);
    volumes.push(kube.volume);
    mounts.push(kube.mount);
  }
  // The step's own variables come last; where it sets one of our defaults (HOME, AWS_REGION), its value wins.
  const own = new Set(rendered.env.map((e) => e.name));
  const env = [...ours.filter((e) => !own.has(e.name)), ...rendered.env];
  // Fields in this order (args only when given), as the pod has always been written.
  const c: StepContainer = {
    name: container,
    image: r.spec.image,
    imagePullPolicy: r.spec.imagePullPolicy ?? 'IfNotPresent',
    command: rendered.command,
    ...(rendered.args !== undefined ? { args: rendered.args } : {}),
    workingDir: r.spec.workingDir ?? WORKSPACE,
    env,
    volumeMounts: mounts,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    securityContext: SECURITY_CONTEXT,
    resources: r.spec.resources ?? DEFAULT_RESOURCES,
  };
  return { container: c, volumes };
}

/** The step's config, command, args and env with the Stage's templates rendered (docs/promotions.md#templates). */
function renderStep(
  names: PromotionNames,
  vars: Record<string, string>,
  r: ResolvedStep,
): { command: string[]; args?: string[]; env: EnvVar[] } {
  const ctx = {
    project: names.project,
    stage: names.stage,
    promotion: names.promotion,
    step: r.st.name,
    stepIndex: r.index,
  };
  let config: unknown;
  try {
    config = renderConfig(r.st.config, { vars, ctx });
  } catch (e) {
    if (e instanceof TemplateFailure) throw new Invalid('TemplateError', `step "${r.st.name}": ${e.detail}`);
    throw e;
  }
  const scope: TemplateScope = { config, vars, ctx };
  const command = (r.spec.command as unknown[]).map((c, i) => render(r.label, `command[${i}]`, c, scope));
  const args =
    r.spec.args === undefined
      ? undefined
      : (r.spec.args as unknown[]).map((a, i) => render(r.label, `args[${i}]`, a, scope));
  const env: EnvVar[] = (r.spec.env ?? []).map((e) => ({
    name: String(e.name),
    value: render(r.label, `env ${e.name}`, e.value ?? '', scope),
  }));
  return { command, args, env };
}

/** A step's own AWS role: a projected token for the step audience and the SDK's web-identity variables. */
function awsCredentials(
  s: BuildSettings,
  promotionName: string,
  container: string,
  index: number,
  roleARN: string,
): { volume: Volume; mount: VolumeMount; env: EnvVar[] } {
  const vol = `lanyard-aws-${container}`;
  const env: EnvVar[] = [
    { name: 'AWS_ROLE_ARN', value: roleARN },
    { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: `${AWS_TOKEN_DIR}/token` },
    { name: 'AWS_ROLE_SESSION_NAME', value: `lanyard-${promotionName}-${index}`.slice(0, 64) },
    { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' },
  ];
  if (s.awsRegion)
    env.push({ name: 'AWS_REGION', value: s.awsRegion }, { name: 'AWS_DEFAULT_REGION', value: s.awsRegion });
  return {
    volume: {
      name: vol,
      projected: {
        sources: [
          { serviceAccountToken: { audience: s.stepAudience, expirationSeconds: 3600, path: 'token' } },
        ],
      },
    },
    mount: { name: vol, mountPath: AWS_TOKEN_DIR, readOnly: true },
    env,
  };
}

/** Kubernetes credentials for a step with a capability: the promotion account's token, the CA and the namespace. */
function kubeCredentials(container: string): { volume: Volume; mount: VolumeMount } {
  const vol = `lanyard-kube-${container}`;
  return {
    volume: {
      name: vol,
      projected: {
        sources: [
          { serviceAccountToken: { expirationSeconds: 3600, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          {
            downwardAPI: {
              items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }],
            },
          },
        ],
      },
    },
    mount: { name: vol, mountPath: KUBE_TOKEN_DIR, readOnly: true },
  };
}

/** The promotion pod: the steps as init containers in order, `done` last, non-root, no service links. */
function promotionPod(
  s: BuildSettings,
  meta: { labels: Record<string, string>; annotations: Record<string, string> },
  serviceAccount: string,
  timeoutSeconds: number,
  volumes: Volume[],
  initContainers: StepContainer[],
): BuiltPod {
  const uid = meta.labels[LABEL_PROMOTION_UID]!;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: podName(uid),
      namespace: s.agentNamespace,
      labels: meta.labels,
      annotations: meta.annotations,
    },
    spec: {
      serviceAccountName: serviceAccount,
      automountServiceAccountToken: false,
      restartPolicy: 'Never',
      activeDeadlineSeconds: timeoutSeconds,
      enableServiceLinks: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: 65532,
        runAsGroup: 65532,
        fsGroup: 65532,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      volumes,
      initContainers,
      containers: [
        {
          name: 'done',
          image: s.doneImage,
          imagePullPolicy: 'IfNotPresent',
          command: ['lanyard', 'promotion-done'],
          resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
          securityContext: SECURITY_CONTEXT,
        },
      ],
    },
  };
}
