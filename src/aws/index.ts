// Public surface of the AWS module (docs/associations.md#what-the-controller-does, docs/verified-start.md#how-it-works, docs/observability.md#capability-metrics): the only importer of the AWS SDK. Returns
// plain objects with ARNs, ids and error codes only; credentials returned by STS or eks-auth are dropped here.
import type { Registry } from 'prom-client';
import type { Logger } from '../runtime/log.ts';

export { AwsError, isAwsError, isThrottling } from './errors.ts';
export { createAwsClients } from './clients.ts';
export * from '../core/arn.ts';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface AwsClientOptions {
  region: string;
  /** One endpoint for every service (the simulator, `--aws-endpoint-url`). */
  endpointUrl?: string;
  /** Per-service overrides; win over endpointUrl. */
  endpoints?: Partial<Record<'eks' | 'eksAuth' | 'sts' | 'iam', string>>;
  /** Static credentials; default: the SDK's default provider chain. */
  credentials?: AwsCredentials;
  metrics?: Registry;
  log: Logger;
  /** SDK attempts per call (standard retry mode); default 3. */
  maxAttempts?: number;
  /** Per-attempt socket/request timeout in ms; default 10000. */
  requestTimeoutMs?: number;
}

export interface Association {
  associationId: string;
  associationArn: string;
  clusterName: string;
  namespace: string;
  serviceAccount: string;
  roleArn: string;
  /** Absent when none (EKS may answer "" or omit it; both become undefined). */
  targetRoleArn?: string;
  disableSessionTags: boolean;
  externalId?: string;
  /** Inline session policy (JSON text); absent when none (EKS omits it or answers ""). */
  policy?: string;
  tags: Record<string, string>;
}

/** A List entry: EKS's summary carries no role. */
export interface AssociationSummary {
  associationId: string;
  associationArn: string;
  clusterName: string;
  namespace: string;
  serviceAccount: string;
}

export interface CreateAssociationInput {
  clusterName: string;
  namespace: string;
  serviceAccount: string;
  roleArn: string;
  targetRoleArn?: string;
  disableSessionTags?: boolean;
  /** Inline session policy; EKS requires disableSessionTags with it. */
  policy?: string;
  tags: Record<string, string>;
  clientRequestToken: string;
}

export interface UpdateAssociationInput {
  clusterName: string;
  associationId: string;
  roleArn: string;
  /** "" clears the target role (EKS ignores null). */
  targetRoleArn: string;
  disableSessionTags: boolean;
  /** "" removes the session policy; undefined leaves it as it is. */
  policy?: string;
  clientRequestToken: string;
}

export interface EksApi {
  createPodIdentityAssociation(input: CreateAssociationInput): Promise<Association>;
  describe(clusterName: string, associationId: string): Promise<Association>;
  /** Every page; filters are optional. */
  list(
    clusterName: string,
    filter?: { namespace?: string; serviceAccount?: string },
  ): Promise<AssociationSummary[]>;
  update(input: UpdateAssociationInput): Promise<Association>;
  delete(clusterName: string, associationId: string): Promise<void>;
  tagResource(arn: string, tags: Record<string, string>): Promise<void>;
  untagResource(arn: string, keys: string[]): Promise<void>;
}

export interface PodIdentityExchange {
  assumedRoleArn: string;
  subject: { namespace: string; serviceAccount: string };
  associationId: string;
  associationArn: string;
}

export interface EksAuthApi {
  /** Hand-signed SigV4 (service eks-auth); the returned credentials are dropped. */
  assumeRoleForPodIdentity(input: { clusterName: string; token: string }): Promise<PodIdentityExchange>;
}

export interface StsApi {
  /** Unsigned; the returned credentials are dropped. */
  assumeRoleWithWebIdentity(input: {
    roleArn: string;
    sessionName: string;
    token: string;
    durationSeconds?: number;
  }): Promise<{ assumedRoleArn: string }>;
  getCallerIdentity(): Promise<{ arn: string; account: string; userId: string }>;
}

export interface Role {
  roleName: string;
  roleId: string;
  arn: string;
  path: string;
  /** Decoded JSON text. */
  assumeRolePolicyDocument: string;
  createDate?: Date;
}

export interface IamApi {
  createRole(input: { roleName: string; path?: string; assumeRolePolicyDocument: string }): Promise<Role>;
  getRole(roleName: string): Promise<Role>;
  deleteRole(roleName: string): Promise<void>;
  updateAssumeRolePolicy(roleName: string, policyDocument: string): Promise<void>;
  createOpenIDConnectProvider(input: {
    url: string;
    clientIds: string[];
    thumbprints?: string[];
  }): Promise<{ arn: string }>;
  listOpenIDConnectProviders(): Promise<string[]>;
  deleteOpenIDConnectProvider(arn: string): Promise<void>;
}

export interface AwsClients {
  eks: EksApi;
  eksAuth: EksAuthApi;
  sts: StsApi;
  iam: IamApi;
  /** Releases sockets. */
  destroy(): void;
}
