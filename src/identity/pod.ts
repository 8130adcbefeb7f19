// Reading an admission request and its Pod as raw JSON (docs/webhook.md, docs/security.md): what applies, and which
// fields are unreadable.
// Nothing is copied or re-typed: the patch is computed against the very object the API server sent.
import type { Pod, PodSpec } from 'kubernetes-types/core/v1.js';

export const SKIP_LABEL = 'eks.amazonaws.com/skip-pod-identity-webhook';
export const POD_IDENTITY_LABEL = 'eks.amazonaws.com/pod-identity';

export interface PodView {
  /** The raw Pod from the request, readable as podProblem checks (unknown fields kept as they came). */
  object: Pod;
  namespace: string;
  /** metadata.name, else generateName, for messages and logs. */
  name: string;
  serviceAccount: string;
  annotations: Record<string, unknown> | undefined;
  windows: boolean;
}

export type RequestPlan =
  | { kind: 'not_applicable'; reason: string }
  | { kind: 'invalid'; message: string }
  /** A Pod CREATE; `skipped` when it carries the skip label: never injected, still judged (docs/security.md). */
  | { kind: 'pod'; pod: PodView; skipped: boolean }
  /** An UPDATE of `pods/ephemeralcontainers`: judged, never mutated. */
  | { kind: 'ephemeral'; pod: PodView; oldPod: Pod };

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
/** Missing or `null`: an optional field left out, which the patch may also `add` (docs/webhook.md#what-is-injected). */
export const isAbsent = (v: unknown) => v === undefined || v === null;

/** Returns the first unreadable field of a Pod, described as `<path> must be <type>`. */
export function podProblem(pod: unknown): string | undefined {
  if (!isObject(pod)) return 'the object must be a JSON object';
  const meta = pod.metadata;
  if (!isAbsent(meta)) {
    if (!isObject(meta)) return 'metadata must be an object';
    if (!isAbsent(meta.labels) && !isObject(meta.labels)) return 'metadata.labels must be an object';
    if (!isAbsent(meta.annotations) && !isObject(meta.annotations))
      return 'metadata.annotations must be an object';
  }
  const spec = pod.spec;
  if (!isObject(spec)) return 'spec must be an object';
  for (const field of ['volumes', 'schedulingGates'] as const) {
    if (!isAbsent(spec[field]) && !Array.isArray(spec[field])) return `spec.${field} must be an array`;
  }
  if (!isAbsent(spec.nodeSelector) && !isObject(spec.nodeSelector))
    return 'spec.nodeSelector must be an object';
  for (const list of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
    const cs = spec[list];
    if (isAbsent(cs)) continue;
    if (!Array.isArray(cs)) return `spec.${list} must be an array`;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i];
      const at = `spec.${list}[${i}]`;
      if (!isObject(c)) return `${at} must be an object`;
      if (typeof c.name !== 'string') return `${at}.name must be a string`;
      if (!isAbsent(c.env) && !Array.isArray(c.env)) return `${at}.env must be an array`;
      if (!isAbsent(c.volumeMounts) && !Array.isArray(c.volumeMounts))
        return `${at}.volumeMounts must be an array`;
      if (!isAbsent(c.envFrom) && !Array.isArray(c.envFrom)) return `${at}.envFrom must be an array`;
    }
  }
  return undefined;
}

function displayName(pod: unknown): string {
  const m = isObject(pod) && isObject(pod.metadata) ? pod.metadata : {};
  if (typeof m.name === 'string' && m.name) return m.name;
  if (typeof m.generateName === 'string' && m.generateName) return m.generateName;
  return '<unnamed>';
}

export function isWindowsPod(spec: PodSpec): boolean {
  const sel = isObject(spec.nodeSelector) ? spec.nodeSelector : {};
  return (
    sel['kubernetes.io/os'] === 'windows' ||
    sel['beta.kubernetes.io/os'] === 'windows' ||
    (isObject(spec.os) && spec.os.name === 'windows')
  );
}

/** Classifies a decoded AdmissionReview `request` (already known to be an object with a uid). */
export function planRequest(request: Record<string, unknown>): RequestPlan {
  const res = request.resource;
  if (!isObject(res) || res.group !== '' || res.version !== 'v1' || res.resource !== 'pods')
    return { kind: 'not_applicable', reason: 'not a core v1 Pod' };
  const sub = typeof request.subResource === 'string' ? request.subResource : '';
  const ephemeral = sub === 'ephemeralcontainers' && request.operation === 'UPDATE';
  if (sub !== '' && !ephemeral) return { kind: 'not_applicable', reason: 'subresource' };
  if (!ephemeral && request.operation !== 'CREATE') return { kind: 'not_applicable', reason: 'not a CREATE' };
  const pod = request.object;
  const meta = isObject(pod) && isObject(pod.metadata) ? pod.metadata : {};
  const namespace =
    typeof request.namespace === 'string' && request.namespace
      ? request.namespace
      : typeof meta.namespace === 'string'
        ? meta.namespace
        : '';
  const problem = podProblem(pod) ?? (ephemeral ? podProblem(request.oldObject) : undefined);
  if (problem) {
    const who = isObject(pod) ? ` "${namespace ? `${namespace}/` : ''}${displayName(pod)}"` : '';
    return { kind: 'invalid', message: `lanyard: cannot read Pod${who}: ${problem}` };
  }
  // podProblem found every field read below readable.
  const spec = (pod as Pod).spec!;
  const serviceAccount =
    typeof spec.serviceAccountName === 'string' && spec.serviceAccountName
      ? spec.serviceAccountName
      : typeof spec.serviceAccount === 'string' && spec.serviceAccount
        ? spec.serviceAccount
        : 'default';
  const view: PodView = {
    object: pod as Pod,
    namespace,
    name: displayName(pod),
    serviceAccount,
    annotations: isObject(meta.annotations) ? meta.annotations : undefined,
    windows: isWindowsPod(spec),
  };
  if (ephemeral) return { kind: 'ephemeral', pod: view, oldPod: request.oldObject as Pod };
  return { kind: 'pod', pod: view, skipped: isObject(meta.labels) && Object.hasOwn(meta.labels, SKIP_LABEL) };
}
