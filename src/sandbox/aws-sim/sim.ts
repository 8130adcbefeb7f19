// The simulator's services as plain operations on in-memory state; server.ts handles HTTP, signatures, protocols
// and faults. Behaviour follows docs/aws-simulator.md.
import type { Logger } from '../../runtime/log.ts';
import type { JWTPayload } from 'jose';
import { OidcVerifier, TokenError, peekClaims } from './oidc.ts';
import { evaluateTrust, parseTrustPolicy, type TrustRequest } from './trust.ts';
import { sessionPolicyProblem } from './session-policy.ts';
import {
  BASE32,
  LOWER36,
  SimError,
  Versioned,
  randomString,
  seededRandom,
  uuid,
  VISIBILITY_APIS,
  type AssociationState,
  type Cluster,
  type FaultSpec,
  type IssuedCredentials,
  type OidcProvider,
  type RoleState,
  type SimConfig,
  type SimLogEntry,
  type VisibilityApi,
} from './model.ts';
import { errorMessage } from '../../core/errors.ts';

export const ADMIN_ACCESS_KEY_ID = 'AKIALANYARDSIMADMIN2';
export const ADMIN_SECRET_ACCESS_KEY = 'lanyardSimAdminSecretKey0000000000000000';
const ASSOCIATIONS_PER_CLUSTER = 5000;
const PODS_PRINCIPAL = 'pods.eks.amazonaws.com';
const LOG_LIMIT = 200_000;

const ROLE_ARN_RE =
  /^arn:([a-z][a-z0-9-]*):iam::([0-9]{12}):role(\/(?:[\u0021-\u007e]+\/)?)?([\w+=,.@-]{1,64})$/;
const ROLE_NAME_RE = /^[\w+=,.@-]{1,64}$/;
const ROLE_PATH_RE = /^\/$|^\/[\u0021-\u007e]{1,510}\/$/;
const SESSION_RE = /^[\w+=,.@-]{2,64}$/;
const NAME_RE = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
/** A Kubernetes ServiceAccount token subject: namespace and name. */
export const SA_SUBJECT_RE = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** AssumeRoleWithWebIdentity's parameters, checked as STS checks them (required ones, session name, duration). */
function webIdentityParams(p: {
  roleArn?: string;
  sessionName?: string;
  token?: string;
  durationSeconds?: string;
}): {
  roleArn: string;
  sessionName: string;
  token: string;
  duration: number;
} {
  const missing = (f: string) =>
    new SimError(
      'ValidationError',
      400,
      `1 validation error detected: Value null at '${f}' failed to satisfy constraint: Member must not be null`,
    );
  if (!p.roleArn) throw missing('roleArn');
  if (!p.sessionName) throw missing('roleSessionName');
  if (!p.token) throw missing('webIdentityToken');
  if (!SESSION_RE.test(p.sessionName)) {
    throw new SimError(
      'ValidationError',
      400,
      `1 validation error detected: Value '${p.sessionName}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`,
    );
  }
  const duration = p.durationSeconds === undefined ? 3600 : Number(p.durationSeconds);
  if (!Number.isInteger(duration) || duration < 900 || duration > 43200) {
    throw new SimError(
      'ValidationError',
      400,
      `1 validation error detected: Value '${p.durationSeconds}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200`,
    );
  }
  return { roleArn: p.roleArn, sessionName: p.sessionName, token: p.token, duration };
}

export interface Caller {
  arn: string;
  userId: string;
  account: string;
}

export interface ExchangeResult {
  subject: { namespace: string; serviceAccount: string };
  audience: string;
  podIdentityAssociation: { associationArn: string; associationId: string };
  assumedRoleUser: { arn: string; assumeRoleId: string };
  credentials: IssuedCredentials;
  accountId: string;
}

export interface SimOptions {
  seed: number;
  account: string;
  region: string;
  partition: string;
  log: Logger;
}

interface AssociationRecord {
  id: string;
  cluster: string;
  namespace: string;
  serviceAccount: string;
  versioned: Versioned<AssociationState>;
}

export class AwsSim {
  rng: () => number;
  config: SimConfig = { visibility: {}, faults: [] };
  private faultCounts = new Map<FaultSpec, number>();
  /** Each fault's operation glob, compiled once at configure. */
  private faultOps = new Map<FaultSpec, RegExp>();
  readonly clusters = new Map<string, Cluster>();
  readonly associations = new Map<string, AssociationRecord>();
  /** cluster \0 namespace \0 serviceAccount → records (a deleted one may still be visible to some API). */
  private readonly byPair = new Map<string, AssociationRecord[]>();
  private readonly liveCount = new Map<string, number>();
  private readonly requestTokens = new Map<string, { input: string; associationId: string }>();
  /** Lower-case role name → versions (IAM reads the latest, EKS and STS the `iam.role` view). */
  private readonly roles = new Map<string, Versioned<RoleState>>();
  readonly providers = new Map<string, OidcProvider>();
  private readonly issued = new Map<string, IssuedCredentials>();
  readonly entries: SimLogEntry[] = [];
  readonly oidc = new OidcVerifier();

  constructor(readonly o: SimOptions) {
    this.rng = seededRandom(o.seed);
  }

  get adminCaller(): Caller {
    return {
      arn: `arn:${this.o.partition}:iam::${this.o.account}:user/lanyard-sim-admin`,
      userId: 'AIDALANYARDSIMADMIN23',
      account: this.o.account,
    };
  }

  reset(): void {
    this.rng = seededRandom(this.o.seed);
    this.config = { visibility: {}, faults: [] };
    this.faultCounts.clear();
    this.faultOps.clear();
    this.clusters.clear();
    this.associations.clear();
    this.byPair.clear();
    this.liveCount.clear();
    this.requestTokens.clear();
    this.roles.clear();
    this.providers.clear();
    this.issued.clear();
    this.entries.length = 0;
    this.oidc.reset();
  }

  // ---- configuration, faults, log ----

  configure(input: unknown): SimConfig {
    const c = (input ?? {}) as { visibility?: unknown; faults?: unknown };
    const visibility: SimConfig['visibility'] = {};
    if (c.visibility !== undefined) {
      if (typeof c.visibility !== 'object' || c.visibility === null)
        throw new SimError('InvalidConfig', 400, 'visibility must be an object');
      for (const [api, range] of Object.entries(c.visibility)) {
        if (!VISIBILITY_APIS.includes(api as VisibilityApi)) {
          throw new SimError(
            'InvalidConfig',
            400,
            `visibility.${api}: unknown API (one of ${VISIBILITY_APIS.join(', ')})`,
          );
        }
        if (
          !Array.isArray(range) ||
          range.length !== 2 ||
          !range.every((n) => typeof n === 'number' && n >= 0) ||
          range[0] > range[1]
        ) {
          throw new SimError(
            'InvalidConfig',
            400,
            `visibility.${api}: must be [minMs, maxMs] with 0 <= min <= max`,
          );
        }
        visibility[api as VisibilityApi] = [range[0], range[1]];
      }
    }
    const faults: FaultSpec[] = [];
    if (c.faults !== undefined) {
      if (!Array.isArray(c.faults)) throw new SimError('InvalidConfig', 400, 'faults must be an array');
      for (const [i, f] of (c.faults as FaultSpec[]).entries()) {
        const where = `faults[${i}]`;
        if (typeof f !== 'object' || f === null)
          throw new SimError('InvalidConfig', 400, `${where}: must be an object`);
        if (!['eks', 'eks-auth', 'sts', 'iam', '*'].includes(f.service)) {
          throw new SimError('InvalidConfig', 400, `${where}.service: one of eks, eks-auth, sts, iam, *`);
        }
        if (typeof f.operation !== 'string' || f.operation === '')
          throw new SimError('InvalidConfig', 400, `${where}.operation: required (glob, "*" for all)`);
        if (
          f.error !== undefined &&
          !['ThrottlingException', 'ServiceUnavailable', 'InternalServerError', 'timeout', 'reset'].includes(
            f.error,
          )
        ) {
          throw new SimError(
            'InvalidConfig',
            400,
            `${where}.error: one of ThrottlingException, ServiceUnavailable, InternalServerError, timeout, reset`,
          );
        }
        if (f.rate !== undefined && !(typeof f.rate === 'number' && f.rate >= 0 && f.rate <= 1))
          throw new SimError('InvalidConfig', 400, `${where}.rate: a number in [0, 1]`);
        if (f.count !== undefined && !(Number.isInteger(f.count) && f.count >= 0))
          throw new SimError('InvalidConfig', 400, `${where}.count: a non-negative integer`);
        if (f.latencyMs !== undefined && !(typeof f.latencyMs === 'number' && f.latencyMs >= 0))
          throw new SimError('InvalidConfig', 400, `${where}.latencyMs: a non-negative number`);
        if (f.error === undefined && f.latencyMs === undefined)
          throw new SimError('InvalidConfig', 400, `${where}: needs error or latencyMs`);
        faults.push({ ...f });
      }
    }
    this.config = { visibility, faults };
    this.faultCounts = new Map(faults.filter((f) => f.count !== undefined).map((f) => [f, f.count!]));
    this.faultOps = new Map(faults.map((f) => [f, globRe(f.operation)]));
    return this.config;
  }

  /** Faults that apply to this call: total latency, and the error to answer with, if any. */
  drawFaults(
    service: string,
    operation: string,
  ): { latencyMs: number; error?: NonNullable<FaultSpec['error']> } {
    let latencyMs = 0;
    let error: FaultSpec['error'];
    for (const f of this.config.faults) {
      if (f.service !== '*' && f.service !== service) continue;
      if (!this.faultOps.get(f)?.test(operation)) continue;
      latencyMs += f.latencyMs ?? 0;
      if (!f.error || error) continue;
      if (f.count !== undefined) {
        const left = this.faultCounts.get(f) ?? 0;
        if (left > 0) {
          this.faultCounts.set(f, left - 1);
          error = f.error;
        }
      } else if (f.rate === undefined || this.rng() < f.rate) {
        error = f.error;
      }
    }
    return { latencyMs, ...(error ? { error } : {}) };
  }

  record(e: SimLogEntry): void {
    this.entries.push(e);
    if (this.entries.length > LOG_LIMIT) this.entries.splice(0, this.entries.length - LOG_LIMIT);
  }

  private draw(now: number, apis: VisibilityApi[]): Partial<Record<VisibilityApi, number>> {
    const out: Partial<Record<VisibilityApi, number>> = {};
    for (const api of apis) {
      const [lo, hi] = this.config.visibility[api] ?? [0, 0];
      out[api] = now + lo + (hi > lo ? this.rng() * (hi - lo) : 0);
    }
    return out;
  }

  // ---- clusters ----

  registerCluster(input: unknown): Cluster {
    const c = (input ?? {}) as { name?: unknown; issuer?: unknown; caBundle?: unknown };
    if (typeof c.name !== 'string' || !NAME_RE.test(c.name))
      throw new SimError(
        'InvalidParameterException',
        400,
        'name: required, ^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$',
      );
    if (typeof c.issuer !== 'string' || !/^https?:\/\//.test(c.issuer))
      throw new SimError('InvalidParameterException', 400, 'issuer: required, an http(s) URL');
    if (c.caBundle !== undefined && typeof c.caBundle !== 'string')
      throw new SimError('InvalidParameterException', 400, 'caBundle: PEM text');
    const cluster: Cluster = {
      name: c.name,
      issuer: c.issuer,
      arn: `arn:${this.o.partition}:eks:${this.o.region}:${this.o.account}:cluster/${c.name}`,
    };
    this.clusters.set(c.name, cluster);
    this.oidc.trust(c.issuer, c.caBundle as string | undefined);
    return cluster;
  }

  get defaultCluster(): Cluster | undefined {
    return this.clusters.values().next().value;
  }

  private cluster(name: string): Cluster {
    const c = this.clusters.get(name);
    if (!c) throw new SimError('ResourceNotFoundException', 404, `No cluster found for name: ${name}.`);
    return c;
  }

  // ---- IAM ----

  private roleVersions(name: string): Versioned<RoleState> | undefined {
    return this.roles.get(name.toLowerCase());
  }

  /** The role an ARN names, as EKS and STS see it now (`iam.role` visibility). */
  visibleRole(arn: string, now: number): RoleState | undefined {
    const m = ROLE_ARN_RE.exec(arn);
    if (!m || m[2] !== this.o.account || m[1] !== this.o.partition) return undefined;
    const role = this.roleVersions(m[4]!)?.view('iam.role', now);
    return role && role.path === (m[3] ?? '/') ? role : undefined;
  }

  private parsePolicy(doc: string | undefined, field: string) {
    if (!doc)
      throw new SimError(
        'ValidationError',
        400,
        `1 validation error detected: Value null at '${field}' failed to satisfy constraint: Member must not be null`,
      );
    const parsed = parseTrustPolicy(doc);
    if (!parsed.ok) throw new SimError('MalformedPolicyDocument', 400, parsed.message);
    return parsed.policy;
  }

  createRole(p: { roleName?: string; path?: string; document?: string }, now: number): RoleState {
    if (!p.roleName || !ROLE_NAME_RE.test(p.roleName)) {
      throw new SimError(
        'ValidationError',
        400,
        `1 validation error detected: Value '${p.roleName ?? 'null'}' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+`,
      );
    }
    const path = p.path ?? '/';
    if (!ROLE_PATH_RE.test(path)) {
      throw new SimError(
        'ValidationError',
        400,
        `The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.`,
      );
    }
    const policy = this.parsePolicy(p.document, 'assumeRolePolicyDocument');
    const existing = this.roleVersions(p.roleName);
    if (existing?.latest)
      throw new SimError('EntityAlreadyExists', 409, `Role with name ${p.roleName} already exists.`);
    const role: RoleState = {
      roleName: p.roleName,
      roleId: `AROA${randomString(this.rng, BASE32, 17)}`,
      path,
      arn: `arn:${this.o.partition}:iam::${this.o.account}:role${path}${p.roleName}`,
      document: p.document!,
      policy,
      createdAt: now,
      maxSessionDuration: 3600,
    };
    const v = existing ?? new Versioned<RoleState>();
    v.push(role, this.draw(now, ['iam.role']));
    this.roles.set(p.roleName.toLowerCase(), v);
    return role;
  }

  getRole(name: string | undefined): RoleState {
    const role = name ? this.roleVersions(name)?.latest : undefined;
    if (!role) throw new SimError('NoSuchEntity', 404, `The role with name ${name ?? ''} cannot be found.`);
    return role;
  }

  deleteRole(name: string | undefined, now: number): void {
    const role = this.getRole(name);
    this.roleVersions(role.roleName)!.push(undefined, this.draw(now, ['iam.role']));
  }

  updateAssumeRolePolicy(name: string | undefined, document: string | undefined, now: number): void {
    const role = this.getRole(name);
    const policy = this.parsePolicy(document, 'policyDocument');
    this.roleVersions(role.roleName)!.push(
      { ...role, document: document!, policy },
      this.draw(now, ['iam.role']),
    );
  }

  createOidcProvider(
    p: { url?: string; clientIds: string[]; thumbprints: string[] },
    now: number,
  ): OidcProvider {
    if (!p.url || !/^https:\/\/[^\s]+$/.test(p.url))
      throw new SimError(
        'InvalidInput',
        400,
        `Invalid URL: ${p.url ?? 'null'}. The URL must begin with https://`,
      );
    if (p.clientIds.length > 100)
      throw new SimError(
        'LimitExceeded',
        409,
        'Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: 100',
      );
    for (const t of p.thumbprints) {
      if (!/^[0-9a-fA-F]{40}$/.test(t))
        throw new SimError('ValidationError', 400, `Thumbprint ${t} must be 40 hexadecimal characters`);
    }
    const key = providerKey(p.url);
    const arn = `arn:${this.o.partition}:iam::${this.o.account}:oidc-provider/${key}`;
    if (this.providers.has(arn))
      throw new SimError('EntityAlreadyExists', 409, `Provider with url ${p.url} already exists.`);
    const provider: OidcProvider = {
      arn,
      key,
      url: p.url,
      clientIds: p.clientIds,
      thumbprints: p.thumbprints,
      createdAt: now,
    };
    this.providers.set(arn, provider);
    return provider;
  }

  deleteOidcProvider(arn: string | undefined): void {
    if (!arn || !this.providers.delete(arn))
      throw new SimError('NoSuchEntity', 404, `OpenIDConnect Provider not found for arn ${arn ?? ''}`);
  }

  // ---- credentials ----

  private issue(
    arn: string,
    userId: string,
    now: number,
    seconds: number,
    sessionPolicy?: string,
  ): IssuedCredentials {
    const c: IssuedCredentials = {
      accessKeyId: `ASIA${randomString(this.rng, BASE32, 16)}`,
      secretAccessKey: randomString(
        this.rng,
        'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/',
        40,
      ),
      sessionToken: Buffer.from(randomString(this.rng, LOWER36, 180)).toString('base64'),
      expiration: now + seconds * 1000,
      arn,
      userId,
      ...(sessionPolicy ? { sessionPolicy } : {}),
    };
    this.issued.set(c.accessKeyId, c);
    return c;
  }

  /** Secret (and session token) for a signing key; expired keys are unknown. */
  lookupKey(
    accessKeyId: string,
    now: number,
  ): { secretAccessKey: string; sessionToken?: string; caller: Caller } | undefined {
    if (accessKeyId === ADMIN_ACCESS_KEY_ID)
      return { secretAccessKey: ADMIN_SECRET_ACCESS_KEY, caller: this.adminCaller };
    const c = this.issued.get(accessKeyId);
    if (!c) return undefined;
    if (c.expiration <= now) {
      this.issued.delete(accessKeyId);
      return undefined;
    }
    return {
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
      caller: { arn: c.arn, userId: c.userId, account: this.o.account },
    };
  }

  private trustNotes(role: RoleState, notes: string[]): void {
    for (const n of notes)
      this.o.log.warn({ role: role.arn, note: n }, 'trust statement skipped: unsupported by the simulator');
  }

  // ---- STS ----

  async assumeRoleWithWebIdentity(
    p: { roleArn?: string; sessionName?: string; token?: string; durationSeconds?: string },
    now: number,
  ): Promise<{
    credentials: IssuedCredentials;
    assumedRoleId: string;
    subject: string;
    audience: string;
    provider: string;
  }> {
    const { roleArn, sessionName, token, duration } = webIdentityParams(p);
    const { claims, provider, audience, auds } = await this.webIdentityToken(token);
    const role = this.visibleRole(roleArn, now);
    const sub = String(claims.sub ?? '');
    if (!role || !this.trustsWebIdentity(role, provider, { sub, audience, auds }))
      throw new SimError('AccessDenied', 403, 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    if (duration > role.maxSessionDuration) {
      throw new SimError(
        'ValidationError',
        400,
        'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
      );
    }
    const arn = `arn:${this.o.partition}:sts::${this.o.account}:assumed-role/${role.roleName}/${sessionName}`;
    const assumedRoleId = `${role.roleId}:${sessionName}`;
    return {
      credentials: this.issue(arn, assumedRoleId, now, duration),
      assumedRoleId,
      subject: sub,
      audience,
      provider: provider.url,
    };
  }

  /** A web identity token's claims, once its issuer has a provider in IAM, its audience is one of the provider's and it verifies. */
  private async webIdentityToken(
    token: string,
  ): Promise<{ claims: JWTPayload; provider: OidcProvider; audience: string; auds: string[] }> {
    let claims;
    try {
      claims = peekClaims(token);
    } catch {
      throw new SimError('InvalidIdentityToken', 400, "Couldn't parse the web identity token");
    }
    const iss = typeof claims.iss === 'string' ? claims.iss : '';
    const provider = this.providers.get(
      `arn:${this.o.partition}:iam::${this.o.account}:oidc-provider/${providerKey(iss)}`,
    );
    if (!iss || !provider)
      throw new SimError(
        'InvalidIdentityToken',
        400,
        `No OpenIDConnect provider found in your account for ${iss}`,
      );
    const auds = Array.isArray(claims.aud) ? claims.aud : claims.aud ? [claims.aud] : [];
    const audience = auds.find((a) => provider.clientIds.includes(a));
    if (!audience) throw new SimError('InvalidIdentityToken', 400, 'Incorrect token audience');
    try {
      await this.oidc.verify(token, iss, provider.clientIds);
    } catch (e) {
      if (e instanceof TokenError && e.kind === 'expired')
        throw new SimError(
          'ExpiredTokenException',
          400,
          'Token expired: current date/time must be before the expiration date/time',
        );
      if (e instanceof TokenError && e.kind === 'fetch')
        throw new SimError('IDPCommunicationError', 400, e.message);
      throw new SimError('InvalidIdentityToken', 400, errorMessage(e));
    }
    return { claims, provider, audience, auds };
  }

  /** Whether the role's trust policy lets the provider's federated principal assume it with these claims. */
  private trustsWebIdentity(
    role: RoleState,
    provider: OidcProvider,
    t: { sub: string; audience: string; auds: string[] },
  ): boolean {
    const req: TrustRequest = {
      principal: { type: 'Federated', id: provider.arn },
      action: 'sts:AssumeRoleWithWebIdentity',
      context: {
        [`${provider.key}:sub`]: t.sub,
        [`${provider.key}:aud`]: t.audience,
        [`${provider.key}:oaud`]: t.auds,
      },
      supportedKeys: [`${provider.key}:sub`, `${provider.key}:aud`, `${provider.key}:oaud`],
    };
    const d = evaluateTrust(role.policy, req);
    this.trustNotes(role, d.notes);
    return d.decision === 'allow';
  }

  // ---- EKS ----

  private validateRoleArn(v: unknown, field: string): string {
    if (typeof v !== 'string' || !ROLE_ARN_RE.test(v))
      throw new SimError(
        'InvalidParameterException',
        400,
        `${field} is not a valid IAM role ARN: ${String(v)}`,
      );
    return v;
  }

  private validateTags(tags: unknown): Record<string, string> {
    if (tags === undefined || tags === null) return {};
    if (typeof tags !== 'object' || Array.isArray(tags))
      throw new SimError('InvalidParameterException', 400, 'tags must be a map of strings');
    const entries = Object.entries(tags as Record<string, unknown>);
    if (entries.length > 50)
      throw new SimError('InvalidParameterException', 400, 'A resource can have at most 50 tags');
    for (const [k, v] of entries) {
      if (typeof v !== 'string' || k.length < 1 || k.length > 128 || v.length > 256)
        throw new SimError('InvalidParameterException', 400, `invalid tag ${k}`);
      if (k.toLowerCase().startsWith('aws:'))
        throw new SimError('InvalidParameterException', 400, `tag keys may not start with aws: (${k})`);
    }
    return { ...(tags as Record<string, string>) };
  }

  /** undefined or "" means none; anything else must be a session policy EKS accepts. */
  private validatePolicy(v: unknown): string | undefined {
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string')
      throw new SimError('InvalidParameterException', 400, 'policy must be a string');
    const problem = sessionPolicyProblem(v);
    if (problem) throw new SimError('InvalidParameterException', 400, problem);
    return v;
  }

  private policyNeedsNoSessionTags(policy: string | undefined, disableSessionTags: boolean): void {
    if (policy && !disableSessionTags)
      throw new SimError(
        'InvalidParameterException',
        400,
        'disableSessionTags must be true when a policy is specified',
      );
  }

  private roleMustExist(arn: string, now: number): void {
    if (!this.visibleRole(arn, now))
      throw new SimError('InvalidParameterException', 400, 'Role provided in the request does not exist');
  }

  private idempotent(
    cluster: string,
    op: string,
    token: unknown,
    input: unknown,
  ): { key: string; hit?: AssociationState } {
    if (token === undefined) return { key: '' };
    if (typeof token !== 'string' || token.length < 1 || token.length > 64)
      throw new SimError('InvalidParameterException', 400, 'clientRequestToken must be 1-64 characters');
    const key = `${cluster}\0${op}\0${token}`;
    const seen = this.requestTokens.get(key);
    if (!seen) return { key };
    if (seen.input !== JSON.stringify(input)) {
      throw new SimError(
        'InvalidRequestException',
        400,
        `The client request token ${token} was already used with different request parameters`,
      );
    }
    const rec = this.associations.get(seen.associationId);
    return { key, hit: rec?.versioned.latest ?? rec?.versioned.versions.findLast((v) => v.value)?.value };
  }

  createAssociation(clusterName: string, body: Record<string, unknown>, now: number): AssociationState {
    const cluster = this.cluster(clusterName);
    const ns = body.namespace;
    const sa = body.serviceAccount;
    if (typeof ns !== 'string' || ns === '')
      throw new SimError('InvalidParameterException', 400, 'namespace is required');
    if (typeof sa !== 'string' || sa === '')
      throw new SimError('InvalidParameterException', 400, 'serviceAccount is required');
    const roleArn = this.validateRoleArn(body.roleArn, 'roleArn');
    const targetRoleArn =
      body.targetRoleArn === undefined || body.targetRoleArn === null || body.targetRoleArn === ''
        ? undefined
        : this.validateRoleArn(body.targetRoleArn, 'targetRoleArn');
    const tags = this.validateTags(body.tags);
    const disableSessionTags = body.disableSessionTags === true;
    const policy = this.validatePolicy(body.policy);
    this.policyNeedsNoSessionTags(policy, disableSessionTags);
    const input = { ns, sa, roleArn, targetRoleArn, tags, disableSessionTags, policy };
    const idem = this.idempotent(clusterName, 'create', body.clientRequestToken, input);
    if (idem.hit) return idem.hit;
    const pairKey = `${clusterName}\0${ns}\0${sa}`;
    const pair = (this.byPair.get(pairKey) ?? []).filter((rec) => {
      if (!rec.versioned.gone(now)) return true;
      this.associations.delete(rec.id);
      return false;
    });
    this.byPair.set(pairKey, pair);
    const live = pair.find((rec) => rec.versioned.latest);
    if (live) throw new SimError('ResourceInUseException', 409, `Association already exists: ${live.id}`);
    if ((this.liveCount.get(clusterName) ?? 0) >= ASSOCIATIONS_PER_CLUSTER) {
      throw new SimError(
        'ResourceLimitExceededException',
        400,
        `Cluster ${clusterName} already has ${ASSOCIATIONS_PER_CLUSTER} pod identity associations`,
      );
    }
    this.roleMustExist(roleArn, now);
    const id = `a-${randomString(this.rng, LOWER36, 17)}`;
    const state: AssociationState = {
      associationId: id,
      associationArn: `arn:${this.o.partition}:eks:${this.o.region}:${this.o.account}:podidentityassociation/${cluster.name}/${id}`,
      clusterName,
      namespace: ns,
      serviceAccount: sa,
      roleArn,
      ...(targetRoleArn ? { targetRoleArn } : {}),
      disableSessionTags,
      externalId: uuid(this.rng),
      ...(policy ? { policy } : {}),
      tags,
      createdAt: now,
      modifiedAt: now,
    };
    const versioned = new Versioned<AssociationState>();
    versioned.push(state, this.draw(now, ['eks.describe', 'eks.list', 'eksAuth']));
    const rec = { id, cluster: clusterName, namespace: ns, serviceAccount: sa, versioned };
    this.associations.set(id, rec);
    pair.push(rec);
    this.liveCount.set(clusterName, (this.liveCount.get(clusterName) ?? 0) + 1);
    if (idem.key) this.requestTokens.set(idem.key, { input: JSON.stringify(input), associationId: id });
    return state;
  }

  private record_(clusterName: string, id: string): AssociationRecord {
    this.cluster(clusterName);
    const rec = this.associations.get(id);
    if (!rec || rec.cluster !== clusterName || !rec.versioned.latest) {
      throw new SimError(
        'ResourceNotFoundException',
        404,
        `No Pod Identity Association found with id ${id} in cluster ${clusterName}`,
      );
    }
    return rec;
  }

  describeAssociation(clusterName: string, id: string, now: number): AssociationState {
    this.cluster(clusterName);
    const rec = this.associations.get(id);
    const state = rec?.cluster === clusterName ? rec.versioned.view('eks.describe', now) : undefined;
    if (!state)
      throw new SimError(
        'ResourceNotFoundException',
        404,
        `No Pod Identity Association found with id ${id} in cluster ${clusterName}`,
      );
    return state;
  }

  listAssociations(
    clusterName: string,
    q: { namespace?: string; serviceAccount?: string; maxResults?: string; nextToken?: string },
    now: number,
  ): { items: AssociationState[]; nextToken?: string } {
    this.cluster(clusterName);
    const max = q.maxResults === undefined ? 100 : Number(q.maxResults);
    if (!Number.isInteger(max) || max < 1 || max > 100)
      throw new SimError('InvalidParameterException', 400, 'maxResults must be between 1 and 100');
    let start = 0;
    if (q.nextToken !== undefined) {
      start = Number(Buffer.from(q.nextToken, 'base64url').toString('utf8'));
      if (!Number.isInteger(start) || start < 0)
        throw new SimError('InvalidParameterException', 400, 'The nextToken is invalid');
    }
    const all: AssociationState[] = [];
    for (const rec of this.associations.values()) {
      if (rec.cluster !== clusterName) continue;
      if (q.namespace && rec.namespace !== q.namespace) continue;
      if (q.serviceAccount && rec.serviceAccount !== q.serviceAccount) continue;
      const v = rec.versioned.view('eks.list', now);
      if (v) all.push(v);
    }
    // Creation order (Map order; the sort is stable), so pages stay put while associations are added.
    all.sort((a, b) => a.createdAt - b.createdAt);
    const items = all.slice(start, start + max);
    return {
      items,
      ...(start + max < all.length
        ? { nextToken: Buffer.from(String(start + max)).toString('base64url') }
        : {}),
    };
  }

  updateAssociation(
    clusterName: string,
    id: string,
    body: Record<string, unknown>,
    now: number,
  ): AssociationState {
    const rec = this.record_(clusterName, id);
    const cur = rec.versioned.latest!;
    const roleArn =
      body.roleArn === undefined || body.roleArn === null
        ? cur.roleArn
        : this.validateRoleArn(body.roleArn, 'roleArn');
    let targetRoleArn = cur.targetRoleArn;
    if (body.targetRoleArn === '') targetRoleArn = undefined;
    else if (body.targetRoleArn !== undefined && body.targetRoleArn !== null)
      targetRoleArn = this.validateRoleArn(body.targetRoleArn, 'targetRoleArn');
    const disableSessionTags =
      typeof body.disableSessionTags === 'boolean' ? body.disableSessionTags : cur.disableSessionTags;
    // Absent or null keeps the policy; "" removes it.
    const policy =
      body.policy === undefined || body.policy === null ? cur.policy : this.validatePolicy(body.policy);
    const input = {
      id,
      roleArn: body.roleArn,
      targetRoleArn: body.targetRoleArn,
      disableSessionTags: body.disableSessionTags,
      policy: body.policy,
    };
    const idem = this.idempotent(clusterName, 'update', body.clientRequestToken, input);
    if (idem.hit) return idem.hit;
    if (
      roleArn === cur.roleArn &&
      targetRoleArn === cur.targetRoleArn &&
      disableSessionTags === cur.disableSessionTags &&
      policy === cur.policy
    ) {
      throw new SimError(
        'InvalidParameterException',
        400,
        'No updates were specified. At least one of roleArn, targetRoleArn, disableSessionTags or policy must change',
      );
    }
    this.policyNeedsNoSessionTags(policy, disableSessionTags);
    if (roleArn !== cur.roleArn) this.roleMustExist(roleArn, now);
    const next: AssociationState = { ...cur, roleArn, disableSessionTags, modifiedAt: now };
    if (targetRoleArn) next.targetRoleArn = targetRoleArn;
    else delete next.targetRoleArn;
    if (policy) next.policy = policy;
    else delete next.policy;
    rec.versioned.push(next, this.draw(now, ['eks.describe', 'eks.list', 'eksAuth']));
    if (idem.key) this.requestTokens.set(idem.key, { input: JSON.stringify(input), associationId: id });
    return next;
  }

  deleteAssociation(clusterName: string, id: string, now: number): AssociationState {
    const rec = this.record_(clusterName, id);
    const cur = rec.versioned.latest!;
    rec.versioned.push(undefined, this.draw(now, ['eks.describe', 'eks.list', 'eksAuth']));
    this.liveCount.set(clusterName, (this.liveCount.get(clusterName) ?? 1) - 1);
    return cur;
  }

  private byArn(arn: string): AssociationRecord {
    for (const rec of this.associations.values()) {
      const s = rec.versioned.latest;
      if (s?.associationArn === arn) return rec;
    }
    throw new SimError('NotFoundException', 404, `Resource not found: ${arn}`);
  }

  tagResource(arn: string, tags: unknown): void {
    const rec = this.byArn(arn);
    const add = this.validateTags(tags);
    const merged = { ...rec.versioned.latest!.tags, ...add };
    if (Object.keys(merged).length > 50)
      throw new SimError('BadRequestException', 400, 'A resource can have at most 50 tags');
    rec.versioned.mutateAll((s) => ({ ...s, tags: { ...s.tags, ...add } }));
  }

  untagResource(arn: string, keys: string[]): void {
    const rec = this.byArn(arn);
    if (keys.length === 0) throw new SimError('BadRequestException', 400, 'tagKeys is required');
    rec.versioned.mutateAll((s) => ({
      ...s,
      tags: Object.fromEntries(Object.entries(s.tags).filter(([k]) => !keys.includes(k))),
    }));
  }

  listTags(arn: string): Record<string, string> {
    return { ...this.byArn(arn).versioned.latest!.tags };
  }

  // ---- eks-auth ----

  async assumeRoleForPodIdentity(clusterName: string, token: unknown, now: number): Promise<ExchangeResult> {
    if (typeof token !== 'string' || token === '')
      throw new SimError('InvalidParameterException', 400, 'token is required');
    const cluster = this.cluster(clusterName);
    const { namespace, serviceAccount, pod } = await this.podToken(cluster, token);
    let assoc: AssociationState | undefined;
    // The newest record eks-auth sees wins (a re-created association replaces a deleted one).
    for (const rec of this.byPair.get(`${clusterName}\0${namespace}\0${serviceAccount}`) ?? []) {
      assoc = rec.versioned.view('eksAuth', now) ?? assoc;
    }
    if (!assoc) {
      throw new SimError(
        'ResourceNotFoundException',
        404,
        `No Pod Identity Association found for service account ${serviceAccount} in namespace ${namespace} on cluster ${clusterName}`,
      );
    }
    const effective = this.podIdentityRole(cluster, assoc, now);
    const session = `eks-${clusterName}-${pod}-${uuid(this.rng)}`.slice(0, 64);
    const arn = `arn:${this.o.partition}:sts::${this.o.account}:assumed-role/${effective.roleName}/${session}`;
    const assumeRoleId = `${effective.roleId}:${session}`;
    return {
      subject: { namespace, serviceAccount },
      audience: PODS_PRINCIPAL,
      podIdentityAssociation: { associationArn: assoc.associationArn, associationId: assoc.associationId },
      assumedRoleUser: { arn, assumeRoleId },
      // The association's session policy scopes these credentials (for a target role: the target role's session).
      credentials: this.issue(arn, assumeRoleId, now, 6 * 3600, assoc.policy),
      accountId: this.o.account,
    };
  }

  /** The ServiceAccount and Pod of a token the cluster signed for eks-auth's audience. */
  private async podToken(
    cluster: Cluster,
    token: string,
  ): Promise<{ namespace: string; serviceAccount: string; pod: string }> {
    let claims;
    try {
      claims = await this.oidc.verify(token, cluster.issuer, [PODS_PRINCIPAL]);
    } catch (e) {
      if (e instanceof TokenError && e.kind === 'malformed')
        throw new SimError('InvalidParameterException', 400, 'token does not match the JWT format');
      if (e instanceof TokenError && e.kind === 'expired')
        throw new SimError('ExpiredTokenException', 400, 'The service account token has expired');
      if (e instanceof TokenError && e.kind === 'fetch')
        throw new SimError('InternalServerException', 500, e.message);
      throw new SimError(
        'InvalidTokenException',
        400,
        `The service account token is invalid: ${errorMessage(e)}`,
      );
    }
    const m = SA_SUBJECT_RE.exec(String(claims.sub ?? ''));
    if (!m)
      throw new SimError(
        'InvalidTokenException',
        400,
        'The token subject is not a Kubernetes service account',
      );
    const [, namespace, serviceAccount] = m as unknown as [string, string, string];
    const pod = (claims['kubernetes.io'] as { pod?: { name?: string } } | undefined)?.pod?.name;
    if (!pod)
      throw new SimError('InvalidTokenException', 400, 'The service account token is not bound to a Pod');
    return { namespace, serviceAccount, pod };
  }

  /**
   * The role the association's credentials are for: its role, once its trust policy lets EKS Pod Identity assume
   * it (and tag the session, unless session tags are off), or its target role, once that trusts the first.
   */
  private podIdentityRole(cluster: Cluster, assoc: AssociationState, now: number): RoleState {
    const role = this.visibleRole(assoc.roleArn, now);
    const denied = (why: string) =>
      new SimError('AccessDeniedException', 400, `Unable to assume role ${why}`);
    if (!role) throw denied(`${assoc.roleArn}: the role does not exist`);
    const actions = assoc.disableSessionTags ? ['sts:AssumeRole'] : ['sts:AssumeRole', 'sts:TagSession'];
    const context = { 'aws:SourceAccount': this.o.account, 'aws:SourceArn': cluster.arn };
    for (const action of actions) {
      const d = evaluateTrust(role.policy, {
        principal: { type: 'Service', id: PODS_PRINCIPAL },
        action,
        context,
        supportedKeys: Object.keys(context),
      });
      this.trustNotes(role, d.notes);
      if (d.decision !== 'allow')
        throw denied(`${role.arn}: its trust policy does not allow ${PODS_PRINCIPAL} to ${action}`);
    }
    if (!assoc.targetRoleArn) return role;
    const target = this.visibleRole(assoc.targetRoleArn, now);
    if (!target) throw denied(`${assoc.targetRoleArn}: the target role does not exist`);
    const d = evaluateTrust(target.policy, {
      principal: { type: 'AWS', id: role.arn },
      action: 'sts:AssumeRole',
      context: { 'sts:ExternalId': assoc.externalId, 'aws:SourceAccount': this.o.account },
      supportedKeys: ['sts:ExternalId', 'aws:SourceAccount'],
    });
    this.trustNotes(target, d.notes);
    if (d.decision !== 'allow') {
      throw denied(
        `${target.arn}: its trust policy does not allow ${role.arn} to sts:AssumeRole with sts:ExternalId ${assoc.externalId}`,
      );
    }
    return target;
  }

  /** Control view of issued credentials: whose they are and the session policy they carry; never the secret. */
  sessionView(accessKeyId: string, now: number): SessionControlView | undefined {
    const c = this.issued.get(accessKeyId);
    if (!c || c.expiration <= now) return undefined;
    return {
      arn: c.arn,
      expiration: new Date(c.expiration).toISOString(),
      ...(c.sessionPolicy ? { sessionPolicy: c.sessionPolicy } : {}),
    };
  }

  /** Control view of one association: latest state, whether deleted, visibleAt per API. */
  associationView(id: string): AssociationControlView | undefined {
    const rec = this.associations.get(id);
    if (!rec) return undefined;
    const last = rec.versioned.versions.at(-1);
    const state = last?.value ?? rec.versioned.versions.findLast((v) => v.value)?.value;
    if (!state) return undefined;
    const visibleAt: Record<string, string> = {};
    for (const [api, t] of Object.entries(last?.visibleAt ?? {})) visibleAt[api] = new Date(t).toISOString();
    return { state, deleted: last?.value === undefined, visibleAt };
  }

  makeVisible(id: string, now: number): boolean {
    const rec = this.associations.get(id);
    if (!rec) return false;
    rec.versioned.makeVisible(now);
    return true;
  }

  /** When EKS and STS see the latest version of a role (creation, trust update or deletion). */
  roleVisibleAt(name: string): string | undefined {
    const t = this.roleVersions(name)?.latestVisibleAt['iam.role'];
    return t === undefined ? undefined : new Date(t).toISOString();
  }

  makeRoleVisible(name: string, now: number): boolean {
    const v = this.roleVersions(name);
    if (!v) return false;
    v.makeVisible(now);
    return true;
  }
}

export interface SessionControlView {
  arn: string;
  expiration: string;
  sessionPolicy?: string;
}

export interface AssociationControlView {
  state: AssociationState;
  deleted: boolean;
  /** ISO time per API (`eks.describe`, `eks.list`, `eksAuth`) at which the latest version becomes visible. */
  visibleAt: Record<string, string>;
}

/** Issuer URL minus https:// and any trailing slash: IAM's provider key. */
function providerKey(url: string): string {
  return url.replace(/^https:\/\//, '').replace(/\/+$/, '');
}

function globRe(pattern: string): RegExp {
  return new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\?]/g, '\\$&').replace(/\*/g, '.*') + '$');
}
