// The edge of `lanyard explain` and `lanyard iam` (docs/explain-and-iam.md): reads what the pure modules decide on,
// with the caller's Kubernetes credentials (the CLI's client) and the caller's AWS credentials (src/aws, the SDK's
// default chain). Nothing here decides; it only fetches, and turns a read it may not do into a stated gap.
import type { ConfigMap } from 'kubernetes-types/core/v1.js';
import type { KubeList } from '../core/kube-object.ts';
import type { IdentityPolicy } from '../verification/types.ts';
import type { KubeClient } from '../kube/client.ts';
import { getOrUndefined, KubeApiError } from '../kube/errors.ts';
import {
  PLURAL,
  VERSION,
  GROUP,
  ACK_GROUP,
  lanyardRecord,
  ackRecord,
  type AssociationRecord,
} from '../associations/model.ts';
import { parseConfigMapDocument, EMPTY_TABLE, type ConfigMapTable } from '../identity/configmap.ts';
import type {
  AckPodIdentityAssociation,
  AssociationObject,
  PodIdentityAssociation,
} from '../associations/types.ts';
import { PolicyCompiler, EMPTY_POLICY_SET, type PolicySet } from '../verification/policy.ts';
import { VI_API } from '../verification/verified-identity.ts';
import type { AwsClients } from '../aws/index.ts';
import { isAwsError } from '../aws/errors.ts';
import { parseRoleArn } from '../aws/arn.ts';
import { compareTrust, issuerKey, oidcProviderArn, serviceAccountSubject, type Presented } from './trust.ts';
import type { Declared, TrustLine } from './chain.ts';

/** The kOps ConfigMap's name (docs/webhook.md, "The kOps ConfigMap"). */
export const CONFIG_MAP_NAME = 'pod-identity-webhook';

const enc = encodeURIComponent;

/** A read where a 404 means absent: the one kube/errors.ts getOrUndefined (explain/cli.ts imports it from here). */
export { getOrUndefined };

/** Every Lanyard association in the namespace and every observed ACK association for the pair. */
export async function associationsFor(
  kube: KubeClient,
  namespace: string,
  sa: string,
  clusterName: string | undefined,
): Promise<{ records: AssociationRecord[]; objects: Map<string, AssociationObject> }> {
  const objects = new Map<string, AssociationObject>();
  const records: AssociationRecord[] = [];
  const own = await getOrUndefined<KubeList<PodIdentityAssociation>>(
    kube,
    `/apis/${GROUP}/${VERSION}/namespaces/${enc(namespace)}/${PLURAL}`,
  );
  for (const o of own?.items ?? []) {
    if (o?.spec?.serviceAccount !== sa) continue;
    const r = lanyardRecord(o, clusterName ?? '');
    records.push(r);
    objects.set(r.uid, o);
  }
  // ACK's objects name the pair in spec.namespace, so they may live in any namespace (docs/migrate-from-ack.md).
  let ack: KubeList<AckPodIdentityAssociation> | undefined;
  try {
    ack = await getOrUndefined(kube, `/apis/${ACK_GROUP}/${VERSION}/${PLURAL}`);
  } catch (e) {
    if (!(e instanceof KubeApiError && e.status === 403)) throw e;
  }
  for (const o of ack?.items ?? []) {
    const r = ackRecord(o);
    if (r.namespace !== namespace || r.serviceAccount !== sa) continue;
    if (!r.cluster || (clusterName && r.cluster !== clusterName)) continue;
    records.push(r);
    objects.set(r.uid, o);
  }
  return { records, objects };
}

export async function configMapTable(
  kube: KubeClient,
  namespace: string,
): Promise<{ where: string; found: boolean; table: ConfigMapTable; error?: string }> {
  const where = `${namespace}/${CONFIG_MAP_NAME}`;
  try {
    const cm = await getOrUndefined<ConfigMap>(
      kube,
      `/api/v1/namespaces/${enc(namespace)}/configmaps/${CONFIG_MAP_NAME}`,
    );
    if (!cm) return { where, found: false, table: EMPTY_TABLE, error: 'ConfigMap not found' };
    const parsed = parseConfigMapDocument(cm.data?.config);
    return parsed.ok
      ? { where, found: true, table: parsed.table }
      : { where, found: true, table: EMPTY_TABLE, error: `invalid document: ${parsed.error}` };
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 403)
      return {
        where,
        found: false,
        table: EMPTY_TABLE,
        error: 'not readable with your credentials (forbidden)',
      };
    throw e;
  }
}

export async function policySet(kube: KubeClient): Promise<PolicySet | string> {
  try {
    const list = await getOrUndefined<KubeList<IdentityPolicy>>(kube, `${VI_API}/identitypolicies`);
    return list ? new PolicyCompiler().compileAll(list.items ?? []) : EMPTY_POLICY_SET;
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 403)
      return 'IdentityPolicies are not readable with your credentials (forbidden)';
    throw e;
  }
}

/** The API server's service-account issuer, from its OIDC discovery document. */
export async function clusterIssuer(kube: KubeClient): Promise<string> {
  // Only `issuer` is read; the document is whatever the API server serves, so it is checked, not trusted.
  const doc = await kube.get<{ issuer?: unknown } | null>('/.well-known/openid-configuration');
  if (typeof doc?.issuer !== 'string' || !doc.issuer)
    throw new Error("the API server's OIDC discovery document carries no issuer");
  return doc.issuer;
}

/** The role name IAM's GetRole takes: the last segment of an ARN, or the argument as given. */
export function roleNameOf(role: string): string {
  const parsed = parseRoleArn(role);
  return parsed ? parsed.name : role.slice(role.lastIndexOf('/') + 1);
}

/** The text a user reads for an AWS failure (code and message, never credentials). */
export function awsText(e: unknown): string {
  if (isAwsError(e)) return e.describe();
  const err = e as { name?: string; message?: string };
  if (err?.name === 'CredentialsProviderError')
    return `no AWS credentials found by the SDK's default chain (${err.message ?? ''})`;
  return String(err?.message ?? e);
}

export interface TrustSubject {
  namespace: string;
  serviceAccount: string;
  declared: Declared;
  /** For Pod Identity: the association object (session tags, external id). */
  association?: AssociationObject;
  issuer?: string;
}

/**
 * Reads the declared role's trust policy (and, for a target role, the target's) and compares it with what the
 * exchange presents. Any AWS failure becomes `checked: false` with its reason.
 */
export async function checkTrust(aws: AwsClients, s: TrustSubject): Promise<TrustLine> {
  const d = s.declared;
  const role = d.roleARN;
  if (!role)
    return {
      checked: false,
      why: 'the role is unknown (identities file or ACK roleRef): nothing to compare',
    };
  const parsed = parseRoleArn(role);
  try {
    const r = await aws.iam.getRole(roleNameOf(role));
    if (d.mode === 'WebIdentity') {
      if (!s.issuer) return { checked: false, role, why: "the cluster's issuer is unknown" };
      let registered: string[] | undefined;
      try {
        registered = await aws.iam.listOpenIDConnectProviders();
      } catch {
        registered = undefined;
      }
      const presented: Presented = {
        mode: 'WebIdentity',
        providerArn: oidcProviderArn(parsed?.partition ?? 'aws', parsed?.account ?? '', s.issuer),
        issuerKey: issuerKey(s.issuer),
        sub: serviceAccountSubject(s.namespace, s.serviceAccount),
        aud: d.audience,
        ...(registered ? { registeredProviders: registered } : {}),
      };
      return {
        checked: true,
        role: r.arn,
        comparison: compareTrust(r.assumeRolePolicyDocument, presented),
        presented: `a token with provider ${presented.providerArn}, sub "${presented.sub}", aud "${presented.aud}"`,
      };
    }
    const sessionTags = s.association?.spec?.disableSessionTags !== true;
    const first = compareTrust(r.assumeRolePolicyDocument, { mode: 'ContainerCredentials', sessionTags });
    const presentedText = `Service pods.eks.amazonaws.com asking for sts:AssumeRole${sessionTags ? ' and sts:TagSession' : ''}`;
    if (!first.allowed || !d.targetRoleARN)
      return { checked: true, role: r.arn, comparison: first, presented: presentedText };
    const t = await aws.iam.getRole(roleNameOf(d.targetRoleARN));
    const externalId = s.association?.status?.externalID;
    return {
      checked: true,
      role: t.arn,
      comparison: compareTrust(t.assumeRolePolicyDocument, {
        mode: 'TargetRole',
        principalArn: role,
        ...(externalId ? { externalId } : {}),
      }),
      presented: `the association role ${role}${externalId ? ` with external id "${externalId}"` : ''}`,
    };
  } catch (e) {
    if (isAwsError(e) && e.code === 'NoSuchEntity') {
      return {
        checked: true,
        role,
        presented: 'a role that does not exist',
        comparison: {
          allowed: false,
          notes: [],
          mismatches: [{ field: 'document', text: `the role does not exist in IAM (${e.describe()})` }],
        },
      };
    }
    return { checked: false, role, why: `IAM is not readable with your AWS credentials: ${awsText(e)}` };
  }
}
