// Every AWS identity each container of a Pod can obtain through the cluster, read from the Pod spec the way the AWS
// SDKs read it (docs/security.md §3). Pure: the Pod is raw JSON, the answer plain data. Used by the admission guard
// and by the verifier, so both hold a Pod to the same list.
//
// What grants credentials is a projected ServiceAccount token with an AWS audience: STS exchanges it for a role
// named by the container (web identity), the Pod Identity agent exchanges it for the ServiceAccount's association
// role (container credentials). So a container is judged by the tokens it mounts and the role it names; a role
// Lanyard cannot read while such a token is mounted is reported as unreadable, never skipped (docs/adr/0307).
import path from 'node:path';
import type { IdentityMode } from './sources.ts';

export type ContainerList = 'initContainers' | 'containers' | 'ephemeralContainers';
export const CONTAINER_LISTS: readonly ContainerList[] = [
  'initContainers',
  'containers',
  'ephemeralContainers',
];

export interface ContainerRef {
  list: ContainerList;
  index: number;
  name: string;
}

/** One identity one container can use. */
export interface PodCredential {
  container: ContainerRef;
  /** The field that gives it, e.g. `spec.containers[1].env[AWS_ROLE_ARN]`, for messages. */
  field: string;
  mode: IdentityMode;
  /** Web identity: the role the container names. Container credentials: undefined (the association decides). */
  roleARN?: string;
  /** Audience of the token; '' means the API server's default audiences. */
  audience: string;
}

/** A way to credentials whose role cannot be read from the Pod spec: it must hold (or be denied), never pass. */
export interface UnreadableCredential {
  container: ContainerRef;
  field: string;
  reason: string;
}

export interface PodCredentials {
  identities: PodCredential[];
  unreadable: UnreadableCredential[];
}

export interface CredentialOptions {
  /** Token audiences STS accepts for web identity (e.g. `sts.amazonaws.com`). '' is never one: see the ADR. */
  stsAudiences: ReadonlySet<string>;
  /** Token audiences of the Pod Identity agent (e.g. `pods.eks.amazonaws.com`). */
  podIdentityAudiences: ReadonlySet<string>;
}

export const DEFAULT_STS_AUDIENCE = 'sts.amazonaws.com';
export const DEFAULT_POD_IDENTITY_AUDIENCE = 'pods.eks.amazonaws.com';

/** The audiences for a configuration: the AWS defaults plus the configured ones (empty strings dropped). */
export function credentialOptions(
  o: { stsAudiences?: Iterable<string>; podIdentityAudiences?: Iterable<string> } = {},
): CredentialOptions {
  const set = (base: string, more: Iterable<string> = []) => new Set([base, ...more].filter((a) => a !== ''));
  const pi = set(DEFAULT_POD_IDENTITY_AUDIENCE, o.podIdentityAudiences);
  const sts = set(DEFAULT_STS_AUDIENCE, o.stsAudiences);
  for (const a of pi) sts.delete(a);
  return { stsAudiences: sts, podIdentityAudiences: pi };
}

export const ROLE_VAR = 'AWS_ROLE_ARN';
export const TOKEN_FILE_VAR = 'AWS_WEB_IDENTITY_TOKEN_FILE';
export const FULL_URI_VAR = 'AWS_CONTAINER_CREDENTIALS_FULL_URI';
export const RELATIVE_URI_VAR = 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI';
export const AUTH_TOKEN_FILE_VAR = 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE';
/** Every variable that points an SDK at credentials obtained through the cluster. */
export const CREDENTIAL_VARS = [
  ROLE_VAR,
  TOKEN_FILE_VAR,
  FULL_URI_VAR,
  RELATIVE_URI_VAR,
  AUTH_TOKEN_FILE_VAR,
] as const;

// The Pod is read as unknown JSON, every field narrowed where it is read: the guard judges whatever a request sent.
type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const nameOf = (ref: unknown): unknown => (isObject(ref) ? ref.name : undefined);

/** A projected ServiceAccount token as one container sees it. */
interface MountedToken {
  audience: string;
  /** Normalised absolute paths at which the container can open it; empty when the mount's layout is unknown. */
  files: string[];
  /** The mount, for messages: `spec.containers[0].volumeMounts[1]`. */
  field: string;
  mountPath: string;
}

type EnvSource =
  { kind: 'value'; value: string; field: string } | { kind: 'unreadable'; field: string; why: string };

/** POSIX form of a path as a Windows or Linux container would open it. */
function posixPath(p: string): string {
  return p.replace(/\\/g, '/').replace(/^[A-Za-z]:(?=\/|$)/, '');
}

/** Normalised absolute path, or undefined when it is relative and the working directory is unknown. */
export function resolveContainerPath(file: string, workingDir: unknown): string | undefined {
  const f = posixPath(file);
  if (f.startsWith('/')) return path.posix.resolve(f);
  // The image's WORKDIR applies when the container sets none; it is not in the Pod spec.
  if (typeof workingDir !== 'string' || !posixPath(workingDir).startsWith('/')) return undefined;
  return path.posix.resolve(posixPath(workingDir), f);
}

function tokensOf(spec: JsonObject, c: JsonObject, at: string): MountedToken[] {
  const volumes = new Map<string, JsonObject>();
  for (const v of list(spec.volumes)) if (isObject(v) && typeof v.name === 'string') volumes.set(v.name, v);
  const out: MountedToken[] = [];
  list(c.volumeMounts).forEach((m, mi) => {
    if (!isObject(m) || typeof m.mountPath !== 'string') return;
    const vol = typeof m.name === 'string' ? volumes.get(m.name) : undefined;
    const projected = vol?.projected;
    if (!isObject(projected)) return;
    const mountPath = path.posix.resolve('/', posixPath(m.mountPath));
    const field = `${at}.volumeMounts[${mi}]`;
    for (const s of list(projected.sources)) {
      const t = isObject(s) ? s.serviceAccountToken : undefined;
      if (!isObject(t)) continue;
      const audience = typeof t.audience === 'string' ? t.audience : '';
      const tokenPath = typeof t.path === 'string' ? path.posix.normalize(t.path) : '';
      const files: string[] = [];
      if (typeof m.subPathExpr === 'string' && m.subPathExpr !== '') {
        // Expanded by the kubelet from env: where the token lands is not known here.
      } else if (typeof m.subPath === 'string' && m.subPath !== '') {
        const sub = path.posix.normalize(m.subPath).replace(/\/+$/, '');
        if (tokenPath === sub) files.push(mountPath);
        else if (tokenPath.startsWith(`${sub}/`))
          files.push(path.posix.join(mountPath, tokenPath.slice(sub.length + 1)));
      } else {
        files.push(path.posix.join(mountPath, tokenPath));
      }
      out.push({ audience, files, field, mountPath });
    }
  });
  return out;
}

/** The token a resolved file path opens, following the atomic writer's `..data/` and timestamped directories. */
function tokenAt(file: string, tokens: MountedToken[]): MountedToken | undefined {
  for (const t of tokens) {
    if (t.files.includes(file)) return t;
    // <mount>/..data/<path> and <mount>/..2026_12_02_…/<path> are the same file as <mount>/<path>.
    const rel = file.startsWith(`${t.mountPath}/`) ? file.slice(t.mountPath.length + 1) : undefined;
    const m = rel ? /^\.\.[^/]+\/(.+)$/.exec(rel) : null;
    if (m && t.files.includes(path.posix.join(t.mountPath, m[1]!))) return t;
  }
  return undefined;
}

/** Where a variable's value comes from: env (the last entry of a name wins), else possibly envFrom. */
function envReader(c: JsonObject, at: string): (name: string) => EnvSource | undefined {
  const env = new Map<string, { e: JsonObject; i: number }>();
  list(c.env).forEach((e, i) => {
    if (isObject(e) && typeof e.name === 'string') env.set(e.name, { e, i });
  });
  const prefixes: { prefix: string; field: string }[] = [];
  list(c.envFrom).forEach((s, i) => {
    if (!isObject(s)) return;
    const ref = s.configMapRef
      ? `configMapRef "${String(nameOf(s.configMapRef) ?? '')}"`
      : s.secretRef
        ? `secretRef "${String(nameOf(s.secretRef) ?? '')}"`
        : 'a source';
    prefixes.push({
      prefix: typeof s.prefix === 'string' ? s.prefix : '',
      field: `${at}.envFrom[${i}] (${ref})`,
    });
  });
  return (name) => {
    const hit = env.get(name);
    if (hit) {
      const field = `${at}.env[${name}]`;
      const { e } = hit;
      if (e.valueFrom !== undefined && e.valueFrom !== null)
        return {
          kind: 'unreadable',
          field,
          why: 'is set with valueFrom, which is resolved only when the container starts',
        };
      const value = typeof e.value === 'string' ? e.value : '';
      // The kubelet expands $(VAR) references from the container's other variables.
      if (/\$\([A-Za-z_][A-Za-z0-9_.-]*\)/.test(value))
        return {
          kind: 'unreadable',
          field,
          why: 'uses $(VAR) expansion, which is resolved only when the container starts',
        };
      return { kind: 'value', value, field };
    }
    const from = prefixes.find((p) => name.startsWith(p.prefix));
    if (from)
      return {
        kind: 'unreadable',
        field: from.field,
        why: 'may come from it: its keys are read only when the container starts',
      };
    return undefined;
  };
}

function containerCredentials(
  spec: JsonObject,
  c: JsonObject,
  ref: ContainerRef,
  o: CredentialOptions,
): PodCredentials {
  const at = `spec.${ref.list}[${ref.index}]`;
  const tokens = tokensOf(spec, c, at);
  const read = envReader(c, at);
  const identities: PodCredential[] = [];
  const unreadable: UnreadableCredential[] = [];
  const add = (id: Omit<PodCredential, 'container'>) => {
    if (!identities.some((x) => x.mode === id.mode && x.roleARN === id.roleARN && x.audience === id.audience))
      identities.push({ container: ref, ...id });
  };
  const fileToken = (src: EnvSource | undefined): MountedToken | undefined => {
    if (src?.kind !== 'value' || src.value === '') return undefined;
    const file = resolveContainerPath(src.value, c.workingDir);
    return file ? tokenAt(file, tokens) : undefined;
  };

  // Container credentials: the agent answers for the ServiceAccount's association whatever the container names.
  for (const t of tokens) {
    if (o.podIdentityAudiences.has(t.audience))
      add({
        mode: 'ContainerCredentials',
        audience: t.audience,
        field: `${t.field} (token for audience "${t.audience}")`,
      });
  }
  const uri = read(FULL_URI_VAR) ?? read(RELATIVE_URI_VAR);
  const authFile = read(AUTH_TOKEN_FILE_VAR);
  const ccToken = uri ? fileToken(authFile) : undefined;
  if (ccToken && authFile?.kind === 'value')
    add({ mode: 'ContainerCredentials', audience: ccToken.audience, field: authFile.field });

  // Web identity: the role the container names, with the token it points at or any STS token it holds.
  const stsTokens = tokens.filter((t) => o.stsAudiences.has(t.audience));
  const role = read(ROLE_VAR);
  const tokenFile = read(TOKEN_FILE_VAR);
  const wiToken = fileToken(tokenFile);
  if (role?.kind === 'value' && role.value !== '') {
    if (wiToken)
      add({ mode: 'WebIdentity', roleARN: role.value, audience: wiToken.audience, field: role.field });
    // A token file Lanyard cannot follow (or none) still leaves every STS token of the container within reach.
    else
      for (const t of stsTokens)
        add({ mode: 'WebIdentity', roleARN: role.value, audience: t.audience, field: role.field });
  } else if (wiToken || stsTokens.length > 0) {
    const t = wiToken ?? stsTokens[0]!;
    if (role?.kind === 'unreadable') {
      unreadable.push({
        container: ref,
        field: role.field,
        reason: `${ROLE_VAR} ${role.why}, and the container holds a ServiceAccount token for audience "${t.audience}"`,
      });
    } else {
      unreadable.push({
        container: ref,
        field: t.field,
        reason: `the container holds a ServiceAccount token for audience "${t.audience}" but names no ${ROLE_VAR}: the role it would use cannot be read`,
      });
    }
  }
  return { identities, unreadable };
}

/** Every identity each container (init, regular, ephemeral) of the Pod can use, and what cannot be read. */
export function podCredentials(pod: unknown, o: CredentialOptions): PodCredentials {
  const spec = isObject(pod) && isObject(pod.spec) ? pod.spec : {};
  const out: PodCredentials = { identities: [], unreadable: [] };
  for (const l of CONTAINER_LISTS) {
    list(spec[l]).forEach((c, index) => {
      if (!isObject(c)) return;
      const r = containerCredentials(
        spec,
        c,
        { list: l, index, name: typeof c.name === 'string' ? c.name : `#${index}` },
        o,
      );
      out.identities.push(...r.identities);
      out.unreadable.push(...r.unreadable);
    });
  }
  return out;
}

/** The distinct (mode, role, audience) triples, in first-seen order. */
export function distinctIdentities(ids: readonly PodCredential[]): PodCredential[] {
  const seen = new Map<string, PodCredential>();
  for (const id of ids) {
    const k = JSON.stringify([id.mode, id.roleARN ?? '', id.audience]);
    if (!seen.has(k)) seen.set(k, id);
  }
  return [...seen.values()];
}
