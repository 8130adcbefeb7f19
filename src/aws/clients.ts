// SDK v3 clients behind the small interfaces of index.ts. Every call is counted in lanyard_aws_requests_total and
// every failure becomes an AwsError. Tokens, credentials and request bodies are never logged.
import {
  EKSClient,
  CreatePodIdentityAssociationCommand,
  DeletePodIdentityAssociationCommand,
  DescribePodIdentityAssociationCommand,
  ListPodIdentityAssociationsCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdatePodIdentityAssociationCommand,
  type PodIdentityAssociation,
} from '@aws-sdk/client-eks';
import { STSClient, AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import {
  IAMClient,
  CreateOpenIDConnectProviderCommand,
  CreateRoleCommand,
  DeleteOpenIDConnectProviderCommand,
  DeleteRoleCommand,
  GetRoleCommand,
  ListOpenIDConnectProvidersCommand,
  UpdateAssumeRolePolicyCommand,
  type Role as SdkRole,
} from '@aws-sdk/client-iam';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { Counter, Registry } from 'prom-client';
import { counter } from '../runtime/metrics.ts';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { Logger } from '../runtime/log.ts';
import { invalidResponse, toAwsError } from './errors.ts';
import { createEksAuthClient } from './eks-auth.ts';
import type {
  Association,
  AssociationSummary,
  AwsClientOptions,
  AwsClients,
  EksApi,
  IamApi,
  Role,
  StsApi,
} from './index.ts';

function requestCounter(
  registry: Registry | undefined,
): Counter<'service' | 'operation' | 'code'> | undefined {
  if (!registry) return undefined;
  return counter(
    registry,
    'lanyard_aws_requests_total',
    'AWS API calls by service, operation and result code ("OK" on success).',
    ['service', 'operation', 'code'],
  );
}

/** Runs one logical call (SDK retries included), counting it and mapping its error. */
export type Instrument = <T>(service: string, operation: string, fn: () => Promise<T>) => Promise<T>;

function makeInstrument(registry: Registry | undefined, log: Logger): Instrument {
  const counter = requestCounter(registry);
  return async (service, operation, fn) => {
    const started = performance.now();
    try {
      const out = await fn();
      counter?.inc({ service, operation, code: 'OK' });
      log.debug({ service, operation, ms: Math.round(performance.now() - started) }, 'aws call');
      return out;
    } catch (e) {
      const err = toAwsError(e, service, operation);
      counter?.inc({ service, operation, code: err.code });
      log.debug(
        {
          service,
          operation,
          code: err.code,
          status: err.httpStatus,
          requestId: err.requestId,
          ms: Math.round(performance.now() - started),
        },
        'aws call failed',
      );
      throw err;
    }
  };
}

function credentialProvider(o: AwsClientOptions): AwsCredentialIdentityProvider {
  if (o.credentials) {
    const c: AwsCredentialIdentity = { ...o.credentials };
    return async () => c;
  }
  // Resolved lazily so a web-identity-only caller (unsigned STS) never needs credentials.
  return fromNodeProviderChain();
}

function toAssociation(a: PodIdentityAssociation | undefined, operation: string): Association {
  if (
    !a?.associationId ||
    !a.associationArn ||
    !a.clusterName ||
    !a.namespace ||
    !a.serviceAccount ||
    !a.roleArn
  ) {
    throw invalidResponse('response carries no complete association', 'eks', operation);
  }
  return {
    associationId: a.associationId,
    associationArn: a.associationArn,
    clusterName: a.clusterName,
    namespace: a.namespace,
    serviceAccount: a.serviceAccount,
    roleArn: a.roleArn,
    ...(a.targetRoleArn ? { targetRoleArn: a.targetRoleArn } : {}),
    disableSessionTags: a.disableSessionTags ?? false,
    ...(a.externalId ? { externalId: a.externalId } : {}),
    ...(a.policy ? { policy: a.policy } : {}),
    tags: { ...(a.tags ?? {}) },
  };
}

/** IAM returns trust documents URL-encoded; some peers return them plain. */
function decodePolicy(doc: string | undefined): string {
  if (!doc) return '';
  if (doc.trimStart().startsWith('{')) return doc;
  try {
    return decodeURIComponent(doc);
  } catch {
    return doc;
  }
}

function toRole(r: SdkRole | undefined, operation: string): Role {
  if (!r?.RoleName || !r.Arn) throw invalidResponse('response carries no role', 'iam', operation);
  return {
    roleName: r.RoleName,
    roleId: r.RoleId ?? '',
    arn: r.Arn,
    path: r.Path ?? '/',
    assumeRolePolicyDocument: decodePolicy(r.AssumeRolePolicyDocument),
    ...(r.CreateDate ? { createDate: r.CreateDate } : {}),
  };
}

/** Every page of ListPodIdentityAssociations, skipping summaries that lack an identifying field. */
async function listAssociations(
  eksClient: EKSClient,
  clusterName: string,
  filter: Parameters<EksApi['list']>[1],
): Promise<AssociationSummary[]> {
  const all: AssociationSummary[] = [];
  let nextToken: string | undefined;
  do {
    const out = await eksClient.send(
      new ListPodIdentityAssociationsCommand({
        clusterName,
        ...(filter?.namespace ? { namespace: filter.namespace } : {}),
        ...(filter?.serviceAccount ? { serviceAccount: filter.serviceAccount } : {}),
        maxResults: 100,
        ...(nextToken ? { nextToken } : {}),
      }),
    );
    for (const s of out.associations ?? []) {
      if (!s.associationId || !s.associationArn || !s.namespace || !s.serviceAccount) continue;
      all.push({
        associationId: s.associationId,
        associationArn: s.associationArn,
        clusterName: s.clusterName ?? clusterName,
        namespace: s.namespace,
        serviceAccount: s.serviceAccount,
      });
    }
    nextToken = out.nextToken;
  } while (nextToken);
  return all;
}

/** The EKS pod identity association calls. */
function eksApi(eksClient: EKSClient, instrument: Instrument): EksApi {
  return {
    createPodIdentityAssociation: (i) =>
      instrument('eks', 'CreatePodIdentityAssociation', async () => {
        const out = await eksClient.send(
          new CreatePodIdentityAssociationCommand({
            clusterName: i.clusterName,
            namespace: i.namespace,
            serviceAccount: i.serviceAccount,
            roleArn: i.roleArn,
            ...(i.targetRoleArn ? { targetRoleArn: i.targetRoleArn } : {}),
            ...(i.disableSessionTags !== undefined ? { disableSessionTags: i.disableSessionTags } : {}),
            ...(i.policy ? { policy: i.policy } : {}),
            tags: i.tags,
            clientRequestToken: i.clientRequestToken,
          }),
        );
        return toAssociation(out.association, 'CreatePodIdentityAssociation');
      }),
    describe: (clusterName, associationId) =>
      instrument('eks', 'DescribePodIdentityAssociation', async () => {
        const out = await eksClient.send(
          new DescribePodIdentityAssociationCommand({ clusterName, associationId }),
        );
        return toAssociation(out.association, 'DescribePodIdentityAssociation');
      }),
    list: (clusterName, filter) =>
      instrument('eks', 'ListPodIdentityAssociations', () =>
        listAssociations(eksClient, clusterName, filter),
      ),
    update: (i) =>
      instrument('eks', 'UpdatePodIdentityAssociation', async () => {
        const out = await eksClient.send(
          new UpdatePodIdentityAssociationCommand({
            clusterName: i.clusterName,
            associationId: i.associationId,
            roleArn: i.roleArn,
            // "" clears: EKS ignores an absent or null field.
            targetRoleArn: i.targetRoleArn,
            disableSessionTags: i.disableSessionTags,
            // "" removes the session policy, as "" clears the target role.
            ...(i.policy !== undefined ? { policy: i.policy } : {}),
            clientRequestToken: i.clientRequestToken,
          }),
        );
        return toAssociation(out.association, 'UpdatePodIdentityAssociation');
      }),
    delete: (clusterName, associationId) =>
      instrument('eks', 'DeletePodIdentityAssociation', async () => {
        await eksClient.send(new DeletePodIdentityAssociationCommand({ clusterName, associationId }));
      }),
    tagResource: (resourceArn, tags) =>
      instrument('eks', 'TagResource', async () => {
        await eksClient.send(new TagResourceCommand({ resourceArn, tags }));
      }),
    untagResource: (resourceArn, tagKeys) =>
      instrument('eks', 'UntagResource', async () => {
        await eksClient.send(new UntagResourceCommand({ resourceArn, tagKeys }));
      }),
  };
}

/** The STS calls; credentials from an exchange never leave it. */
function stsApi(stsClient: STSClient, instrument: Instrument): StsApi {
  return {
    assumeRoleWithWebIdentity: (i) =>
      instrument('sts', 'AssumeRoleWithWebIdentity', async () => {
        const out = await stsClient.send(
          new AssumeRoleWithWebIdentityCommand({
            RoleArn: i.roleArn,
            RoleSessionName: i.sessionName,
            WebIdentityToken: i.token,
            DurationSeconds: i.durationSeconds ?? 900,
          }),
        );
        // Only the ARN leaves this function; out.Credentials is dropped with `out`.
        const arn = out.AssumedRoleUser?.Arn;
        if (!arn)
          throw invalidResponse('response carries no AssumedRoleUser', 'sts', 'AssumeRoleWithWebIdentity');
        return { assumedRoleArn: arn };
      }),
    getCallerIdentity: () =>
      instrument('sts', 'GetCallerIdentity', async () => {
        const out = await stsClient.send(new GetCallerIdentityCommand({}));
        if (!out.Arn) throw invalidResponse('response carries no Arn', 'sts', 'GetCallerIdentity');
        return { arn: out.Arn, account: out.Account ?? '', userId: out.UserId ?? '' };
      }),
  };
}

/** The IAM role and OIDC provider calls. */
function iamApi(iamClient: IAMClient, instrument: Instrument): IamApi {
  return {
    createRole: (i) =>
      instrument('iam', 'CreateRole', async () => {
        const out = await iamClient.send(
          new CreateRoleCommand({
            RoleName: i.roleName,
            ...(i.path ? { Path: i.path } : {}),
            AssumeRolePolicyDocument: i.assumeRolePolicyDocument,
          }),
        );
        return toRole(out.Role, 'CreateRole');
      }),
    getRole: (roleName) =>
      instrument('iam', 'GetRole', async () =>
        toRole((await iamClient.send(new GetRoleCommand({ RoleName: roleName }))).Role, 'GetRole'),
      ),
    deleteRole: (roleName) =>
      instrument('iam', 'DeleteRole', async () => {
        await iamClient.send(new DeleteRoleCommand({ RoleName: roleName }));
      }),
    updateAssumeRolePolicy: (roleName, policyDocument) =>
      instrument('iam', 'UpdateAssumeRolePolicy', async () => {
        await iamClient.send(
          new UpdateAssumeRolePolicyCommand({ RoleName: roleName, PolicyDocument: policyDocument }),
        );
      }),
    createOpenIDConnectProvider: (i) =>
      instrument('iam', 'CreateOpenIDConnectProvider', async () => {
        const out = await iamClient.send(
          new CreateOpenIDConnectProviderCommand({
            Url: i.url,
            ClientIDList: i.clientIds,
            ...(i.thumbprints ? { ThumbprintList: i.thumbprints } : {}),
          }),
        );
        if (!out.OpenIDConnectProviderArn) {
          throw invalidResponse('response carries no provider ARN', 'iam', 'CreateOpenIDConnectProvider');
        }
        return { arn: out.OpenIDConnectProviderArn };
      }),
    listOpenIDConnectProviders: () =>
      instrument('iam', 'ListOpenIDConnectProviders', async () => {
        const out = await iamClient.send(new ListOpenIDConnectProvidersCommand({}));
        return (out.OpenIDConnectProviderList ?? []).flatMap((p) => (p.Arn ? [p.Arn] : []));
      }),
    deleteOpenIDConnectProvider: (arn) =>
      instrument('iam', 'DeleteOpenIDConnectProvider', async () => {
        await iamClient.send(new DeleteOpenIDConnectProviderCommand({ OpenIDConnectProviderArn: arn }));
      }),
  };
}

export function createAwsClients(o: AwsClientOptions): AwsClients {
  const log = o.log.child({ component: 'aws' });
  const instrument = makeInstrument(o.metrics, log);
  const credentials = credentialProvider(o);
  const endpoint = (svc: 'eks' | 'eksAuth' | 'sts' | 'iam') => o.endpoints?.[svc] ?? o.endpointUrl;
  const common = {
    region: o.region,
    credentials,
    maxAttempts: o.maxAttempts ?? 3,
    retryMode: 'standard',
    requestHandler: {
      requestTimeout: o.requestTimeoutMs ?? 10_000,
      throwOnRequestTimeout: true,
      connectionTimeout: 5_000,
    },
  } as const;
  const withEndpoint = (svc: 'eks' | 'sts' | 'iam') => {
    const url = endpoint(svc);
    return url ? { ...common, endpoint: url } : common;
  };
  const eksClient = new EKSClient(withEndpoint('eks'));
  const stsClient = new STSClient(withEndpoint('sts'));
  const iamClient = new IAMClient(withEndpoint('iam'));

  const eks = eksApi(eksClient, instrument);
  const sts = stsApi(stsClient, instrument);
  const iam = iamApi(iamClient, instrument);

  const eksAuth = createEksAuthClient({
    region: o.region,
    endpoint: endpoint('eksAuth'),
    credentials,
    maxAttempts: o.maxAttempts ?? 3,
    requestTimeoutMs: o.requestTimeoutMs ?? 10_000,
    instrument,
  });

  return {
    eks,
    eksAuth,
    sts,
    iam,
    destroy() {
      eksClient.destroy();
      stsClient.destroy();
      iamClient.destroy();
      eksAuth.destroy();
    },
  };
}
