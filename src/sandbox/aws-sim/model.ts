// Simulator state: seeded randomness, versioned objects whose versions become visible per API at drawn times
// (docs/aws-simulator.md, "Consistency and faults"), and the error type handlers throw.
import type { TrustPolicy } from './trust.ts';

/** mulberry32: small, fast, and every draw reproducible from the seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomString(rng: () => number, alphabet: string, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rng() * alphabet.length)];
  return s;
}

export const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const LOWER36 = '0123456789abcdefghijklmnopqrstuvwxyz';
const HEX = '0123456789abcdef';

export function uuid(rng: () => number): string {
  const h = randomString(rng, HEX, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[Math.floor(rng() * 4)]}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export type VisibilityApi = 'eks.describe' | 'eks.list' | 'eksAuth' | 'iam.role';
export const VISIBILITY_APIS: VisibilityApi[] = ['eks.describe', 'eks.list', 'eksAuth', 'iam.role'];

interface Version<T> {
  value: T | undefined;
  visibleAt: Partial<Record<VisibilityApi, number>>;
}

/** An object as each API sees it: until its visibleAt, an API sees the previous version (or nothing). */
export class Versioned<T> {
  readonly versions: Version<T>[] = [];

  get latest(): T | undefined {
    return this.versions.at(-1)?.value;
  }

  get latestVisibleAt(): Partial<Record<VisibilityApi, number>> {
    return { ...(this.versions.at(-1)?.visibleAt ?? {}) };
  }

  push(value: T | undefined, visibleAt: Partial<Record<VisibilityApi, number>>): void {
    this.versions.push({ value, visibleAt });
  }

  view(api: VisibilityApi, now: number): T | undefined {
    for (let i = this.versions.length - 1; i >= 0; i--) {
      const v = this.versions[i]!;
      if ((v.visibleAt[api] ?? 0) <= now) return v.value;
    }
    return undefined;
  }

  /** Rewrites every version in place (tags: metadata that does not change what the APIs decide, so no new version). */
  mutateAll(fn: (v: T) => T): void {
    for (const v of this.versions) if (v.value !== undefined) v.value = fn(v.value);
  }

  makeVisible(now: number): void {
    const last = this.versions.at(-1);
    if (!last) return;
    for (const api of Object.keys(last.visibleAt) as VisibilityApi[])
      last.visibleAt[api] = Math.min(last.visibleAt[api]!, now);
    this.prune(now);
  }

  /** Drops versions no API can see any more. */
  prune(now: number): void {
    let keepFrom = 0;
    for (let i = this.versions.length - 1; i >= 0; i--) {
      if (Object.values(this.versions[i]!.visibleAt).every((t) => t <= now)) {
        keepFrom = i;
        break;
      }
    }
    if (keepFrom > 0) this.versions.splice(0, keepFrom);
  }

  /** True once every API sees a deletion: the record can go. */
  gone(now: number): boolean {
    this.prune(now);
    return this.versions.length === 1 && this.versions[0]!.value === undefined;
  }
}

export interface AssociationState {
  associationId: string;
  associationArn: string;
  clusterName: string;
  namespace: string;
  serviceAccount: string;
  roleArn: string;
  targetRoleArn?: string;
  disableSessionTags: boolean;
  externalId: string;
  /** Inline session policy, as sent. */
  policy?: string;
  tags: Record<string, string>;
  createdAt: number;
  modifiedAt: number;
}

export interface RoleState {
  roleName: string;
  roleId: string;
  path: string;
  arn: string;
  document: string;
  policy: TrustPolicy;
  createdAt: number;
  maxSessionDuration: number;
}

export interface Cluster {
  name: string;
  issuer: string;
  arn: string;
}

export interface OidcProvider {
  arn: string;
  /** Issuer without https:// and trailing slash: the Federated principal suffix and condition-key prefix. */
  key: string;
  url: string;
  clientIds: string[];
  thumbprints: string[];
  createdAt: number;
}

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: number;
  arn: string;
  userId: string;
  /** The association's inline session policy the credentials were issued under (eks-auth). */
  sessionPolicy?: string;
}

export type Protocol = 'json' | 'query';

export class SimError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly fault: 'client' | 'server' = status >= 500 ? 'server' : 'client',
  ) {
    super(message);
  }
}

export interface FaultSpec {
  service: string;
  operation: string;
  error?: 'ThrottlingException' | 'ServiceUnavailable' | 'InternalServerError' | 'timeout' | 'reset';
  rate?: number;
  count?: number;
  latencyMs?: number;
}

export interface SimConfig {
  visibility: Partial<Record<VisibilityApi, [number, number]>>;
  faults: FaultSpec[];
}

export interface SimLogEntry {
  time: string;
  requestId: string;
  service: string;
  operation: string;
  /** Key inputs only (names, ARNs, ids); never tokens or secrets. */
  input: Record<string, string>;
  status: number;
  code?: string;
  /** Key outputs (assumed-role ARN, association id). */
  output?: Record<string, string>;
  /** Injected fault, when one decided the answer. */
  fault?: string;
}
