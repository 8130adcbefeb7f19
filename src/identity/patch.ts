// The RFC 6902 patch (docs/webhook.md#what-is-injected): granular `add` ops computed on the raw Pod, never replacing or reordering
// anything, so fields this code does not know survive, and a second pass over a mutated Pod yields no ops.
import type {
  Container,
  EnvVar,
  Pod,
  ServiceAccountTokenProjection,
  Volume,
} from 'kubernetes-types/core/v1.js';
import { parseSkipContainers } from './annotations.ts';
import { isAbsent, POD_IDENTITY_LABEL } from './pod.ts';
import type { Injection } from './resolve.ts';

export interface JsonPatchOp {
  op: 'add';
  path: string;
  value: unknown;
}

export const IDENTITY_GATE = 'lanyard.dev/identity';
/** The role `lanyard verify` expects, injected for association Pods (docs/adr/0921-verify-expected-role.md). */
export const EXPECTED_ROLE_ENV = 'LANYARD_EXPECTED_ROLE';

export interface PatchOptions {
  /** Append the `lanyard.dev/identity` scheduling gate (docs/webhook.md#associations-policies-and-the-verification-gate). */
  gate: boolean;
  windows: boolean;
  annotationPrefix: string;
}

/** RFC 6901 segment escaping. */
export function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

const hasName = (list: unknown, name: string) =>
  Array.isArray(list) &&
  list.some((x) => x !== null && typeof x === 'object' && (x as { name?: unknown }).name === name);

const IDENTITY_PAIR = {
  WebIdentity: ['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE'],
  ContainerCredentials: ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'],
} as const;

export function windowsPath(p: string): string {
  return `C:${p.replace(/\//g, '\\')}`;
}

export function tokenVolume(inj: Injection): Volume {
  // Key order as the reference webhook writes it: audience (when set), expirationSeconds, path.
  const token: ServiceAccountTokenProjection = {
    ...(inj.audience !== '' ? { audience: inj.audience } : {}),
    expirationSeconds: inj.expirationSeconds,
    path: inj.tokenFileName,
  };
  return { name: inj.volumeName, projected: { sources: [{ serviceAccountToken: token }] } };
}

/** The env entries one container gets, in order (docs/webhook.md#what-is-injected); empty for the early exit. */
export function envFor(
  container: Container,
  inj: Injection,
  windows: boolean,
): { env: EnvVar[]; mount: boolean } {
  const names = new Set<string>();
  if (Array.isArray(container.env))
    for (const e of container.env)
      if (e && typeof e === 'object' && typeof e.name === 'string') names.add(e.name);
  const [idVar, tokenVar] = IDENTITY_PAIR[inj.mode];
  const idDefined = names.has(idVar) || names.has(tokenVar);
  const regionDefined = names.has('AWS_REGION') || names.has('AWS_DEFAULT_REGION');
  const stsDefined = names.has('AWS_STS_REGIONAL_ENDPOINTS');
  if (idDefined && regionDefined && stsDefined) return { env: [], mount: false };
  const env: EnvVar[] = [];
  if (inj.regionalSts && !stsDefined) env.push({ name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' });
  if (inj.region && !regionDefined) {
    env.push({ name: 'AWS_DEFAULT_REGION', value: inj.region });
    env.push({ name: 'AWS_REGION', value: inj.region });
  }
  if (!idDefined) {
    const tokenFile = windows ? windowsPath(inj.tokenFilePath) : inj.tokenFilePath;
    env.push({ name: idVar, value: inj.mode === 'WebIdentity' ? inj.roleARN : inj.fullUri });
    env.push({ name: tokenVar, value: tokenFile });
    // Only with the pair it describes, so a container that brings its own identity is never told another role.
    if (inj.expectedRole && !names.has(EXPECTED_ROLE_ENV))
      env.push({ name: EXPECTED_ROLE_ENV, value: inj.expectedRole });
  }
  return { env, mount: !hasName(container.volumeMounts, inj.volumeName) && usesInjectedRole(container, inj) };
}

/**
 * Whether a container takes the injected web identity rather than naming a role of its own: the token is mounted
 * only then, so a container that sets another `AWS_ROLE_ARN` never holds a token for it (docs/security.md §2).
 * Container credentials always get the association's role, whatever the container says.
 */
function usesInjectedRole(container: Container, inj: Injection): boolean {
  if (inj.mode !== 'WebIdentity' || !Array.isArray(container.env)) return true;
  const own = container.env.filter(
    (e) => e?.name === 'AWS_ROLE_ARN' || e?.name === 'AWS_WEB_IDENTITY_TOKEN_FILE',
  );
  if (own.length === 0) return true;
  const role = own.filter((e) => e.name === 'AWS_ROLE_ARN').pop();
  return role !== undefined && isAbsent(role.valueFrom) && role.value === inj.roleARN;
}

/** The op that appends the identity gate, or none when it is there already. */
export function gateOps(pod: Pod): JsonPatchOp[] {
  const gates = pod.spec?.schedulingGates;
  if (isAbsent(gates))
    return [{ op: 'add', path: '/spec/schedulingGates', value: [{ name: IDENTITY_GATE }] }];
  return hasName(gates, IDENTITY_GATE)
    ? []
    : [{ op: 'add', path: '/spec/schedulingGates/-', value: { name: IDENTITY_GATE } }];
}

/**
 * The Pod with `add` ops applied, copying only the objects on each op's path, so the guard can judge the Pod as it
 * will be stored without cloning a large Pod. The input is not modified.
 */
export function withAddOps(pod: Pod, ops: readonly JsonPatchOp[]): Pod {
  // A JSON pointer walks plain JSON: objects and arrays indexed by the pointer's segments.
  type Node = Record<string, unknown> & unknown[];
  const root = { ...pod } as Node;
  for (const op of ops) {
    const segs = op.path
      .split('/')
      .slice(1)
      .map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = segs.pop()!;
    let node = root;
    for (const s of segs) {
      const child = node[s];
      node[s] = Array.isArray(child) ? [...child] : { ...(child as object) };
      node = node[s] as Node;
    }
    if (Array.isArray(node) && last === '-') node.push(op.value);
    else node[last] = op.value;
  }
  return root as Pod;
}

/** Builds the ops for a readable Pod (see pod.ts podProblem) in the order of docs/webhook.md#what-is-injected. */
export function buildPatch(pod: Pod, inj: Injection, opts: PatchOptions): JsonPatchOp[] {
  const ops = identityOps(pod, inj, opts);
  return opts.gate ? withGate(pod, ops) : ops;
}

/**
 * `ops` (buildPatch's without the gate) with the gate op put where buildPatch puts it: after the Pod label op, which
 * is always first when there is one. Lets admission reuse the ops the guard judged instead of building them again.
 */
export function withGate(pod: Pod, ops: readonly JsonPatchOp[]): JsonPatchOp[] {
  const gate = gateOps(pod);
  if (!gate.length) return [...ops];
  const at = ops[0]?.path.startsWith('/metadata') ? 1 : 0;
  return [...ops.slice(0, at), ...gate, ...ops.slice(at)];
}

/** buildPatch's ops without the gate (admission adds it with withGate once the guard has asked for it). */
export function identityOps(pod: Pod, inj: Injection, opts: Omit<PatchOptions, 'gate'>): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  const spec = pod.spec!;
  if (inj.mode === 'ContainerCredentials') {
    const meta = pod.metadata;
    if (isAbsent(meta))
      ops.push({ op: 'add', path: '/metadata', value: { labels: { [POD_IDENTITY_LABEL]: 'enabled' } } });
    else if (isAbsent(meta.labels))
      ops.push({ op: 'add', path: '/metadata/labels', value: { [POD_IDENTITY_LABEL]: 'enabled' } });
    else if (!Object.hasOwn(meta.labels, POD_IDENTITY_LABEL))
      ops.push({
        op: 'add',
        path: `/metadata/labels/${escapePointer(POD_IDENTITY_LABEL)}`,
        value: 'enabled',
      });
  }
  if (isAbsent(spec.volumes)) ops.push({ op: 'add', path: '/spec/volumes', value: [tokenVolume(inj)] });
  else if (!hasName(spec.volumes, inj.volumeName))
    ops.push({ op: 'add', path: '/spec/volumes/-', value: tokenVolume(inj) });

  const annotations = pod.metadata?.annotations;
  const skipRaw = annotations?.[`${opts.annotationPrefix}/skip-containers`];
  const skip = parseSkipContainers(typeof skipRaw === 'string' ? skipRaw : undefined);
  const mount = { name: inj.volumeName, readOnly: true, mountPath: inj.mountPath };
  for (const list of ['initContainers', 'containers'] as const) {
    const containers = spec[list];
    if (!Array.isArray(containers)) continue;
    containers.forEach((c, i) => {
      if (skip.has(c.name)) return;
      const base = `/spec/${list}/${i}`;
      const { env, mount: addMount } = envFor(c, inj, opts.windows);
      if (env.length) {
        if (isAbsent(c.env)) ops.push({ op: 'add', path: `${base}/env`, value: env });
        else for (const e of env) ops.push({ op: 'add', path: `${base}/env/-`, value: e });
      }
      if (addMount) {
        if (isAbsent(c.volumeMounts)) ops.push({ op: 'add', path: `${base}/volumeMounts`, value: [mount] });
        else ops.push({ op: 'add', path: `${base}/volumeMounts/-`, value: mount });
      }
    });
  }
  return ops;
}
