// The verifier's apply step (docs/verified-start.md): the requests it sends — the Pod-bound TokenRequest and the
// exchange, the gate release pinned to the Pod view it judged (docs/adr/0304-atomic-gate-release.md), the `failed`
// annotation, VerifiedIdentity writes and deletes, and IdentityPolicy status. Answers of writes go to the cache.
import type { ReleaseAnnotation } from './pod.ts';
import type { Pod } from 'kubernetes-types/core/v1.js';
import type { KubeClient } from '../kube/client.ts';
import type { IdentityPolicy, VerifiedIdentity } from './types.ts';
import { KubeApiError, isAlreadyExists, isNotFound, orUndefinedIfNotFound } from '../kube/client.ts';
import type { CacheView } from '../kube/cache.ts';
import { setCondition, conditionUnchanged } from '../kube/conditions.ts';
import type { Logger } from '../runtime/log.ts';
import type { AwsClients } from '../aws/index.ts';
import { isAwsError, isThrottling } from '../aws/index.ts';
import { classifyExchangeFailure, type FailureKind } from './outage.ts';
import type { CredentialOptions } from '../identity/pod-credentials.ts';
import { errorMessage } from '../core/errors.ts';
import { acceptedCondition, type CompiledPolicy } from './policy.ts';
import { annotationOp, releasePatch, toGatedPod, type GatedPod } from './pod.ts';
import { VI_API } from './verified-identity.ts';
import type { ExchangeAnswer } from './verifier-decide.ts';
import type { IdentityGroup } from './verifier-gather.ts';

const TOKEN_SECONDS = 600;

export const podRef = (p: GatedPod) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { namespace: p.namespace, name: p.name, uid: p.uid },
});
const podPath = (p: { namespace: string; name: string }) =>
  `/api/v1/namespaces/${p.namespace}/pods/${p.name}`;

/** A Pod-bound token for the group's ServiceAccount, or why there is none (the message of a `token_error`). */
export async function requestPodToken(
  kube: KubeClient,
  g: IdentityGroup,
  pod: GatedPod,
): Promise<{ token: string } | { error: string }> {
  const what = `TokenRequest for ServiceAccount "${g.serviceAccount}" bound to Pod "${pod.name}" failed`;
  try {
    const tr = await kube.create(
      `/api/v1/namespaces/${g.namespace}/serviceaccounts/${g.serviceAccount}/token`,
      {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          ...(g.audience ? { audiences: [g.audience] } : {}),
          expirationSeconds: TOKEN_SECONDS,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid },
        },
      },
    );
    const token = tr?.status?.token;
    if (typeof token !== 'string' || !token) throw new Error('TokenRequest answered without a token');
    return { token };
  } catch (e) {
    // A 404: the Pod or ServiceAccount is gone; the cache will catch up.
    if (e instanceof KubeApiError && e.status === 404)
      return { error: `${what}: ${e.reason}: ${e.serverMessage}` };
    const msg = e instanceof KubeApiError ? `${e.status} ${e.reason}: ${e.serverMessage}` : errorMessage(e);
    return { error: `${what}: ${msg}` };
  }
}

/** STS (web identity) or eks-auth (ContainerCredentials) with the token; the error text names the role tried. */
export async function exchangeToken(
  aws: Pick<AwsClients, 'sts' | 'eksAuth'>,
  clusterName: string,
  g: IdentityGroup,
  pod: GatedPod,
  token: string,
  roleText: string,
): Promise<{ answer: ExchangeAnswer } | { error: string; throttled: boolean; failure?: FailureKind }> {
  try {
    if (g.mode === 'WebIdentity') {
      const r = await aws.sts.assumeRoleWithWebIdentity({
        roleArn: g.roleARN,
        sessionName: `lanyard-verify-${pod.uid}`.slice(0, 64),
        token,
        durationSeconds: 900,
      });
      return { answer: { assumedRoleArn: r.assumedRoleArn } };
    }
    const r = await aws.eksAuth.assumeRoleForPodIdentity({ clusterName, token });
    return {
      answer: { assumedRoleArn: r.assumedRoleArn, subject: r.subject, associationId: r.associationId },
    };
  } catch (e) {
    const detail = isAwsError(e) ? e.describe() : errorMessage(e);
    return {
      error: `${g.mode} exchange for role ${roleText} failed: ${detail}`,
      throttled: isAwsError(e) && isThrottling(e.code, e.httpStatus),
      failure: isAwsError(e) ? classifyExchangeFailure(e) : undefined,
    };
  }
}

/**
 * Removes the gate from one Pod. `blockers` judges the view of the Pod about to be patched (the identities that keep
 * it gated now); the patch is sent in the same synchronous step and pins that view (its resourceVersion), so a policy
 * that arrived during the exchange keeps the Pod gated and a Pod that changed since it was judged is re-read and judged
 * again. Returns whether this call removed the gate.
 */
export async function releasePod(o: {
  kube: KubeClient;
  pods: CacheView<GatedPod>;
  credentials: CredentialOptions;
  pod: GatedPod;
  annotate: boolean;
  /** The annotation value: `released-during-outage` for an outage release (docs/adr/0309). */
  value?: ReleaseAnnotation;
  blockers: (view: GatedPod) => string[];
  onBlocked: (keys: string[]) => void;
}): Promise<boolean> {
  const p = o.pod;
  let view = p;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (view.gateIndex < 0) return false;
    const blockers = o.blockers(view);
    if (blockers.length > 0) {
      // Their own attempts say why (PolicyDenied, or the exchange still to run).
      o.onBlocked(blockers);
      return false;
    }
    const ops = [
      { op: 'test', path: '/metadata/resourceVersion', value: view.resourceVersion },
      ...releasePatch(view, view.hasAnnotations, o.value),
    ];
    try {
      o.pods.recordWrite(await o.kube.patch(podPath(p), o.annotate ? ops : ops.slice(0, 3)));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      if (!(e instanceof KubeApiError && (e.status === 422 || e.status === 409))) throw e;
      let fresh: Pod;
      try {
        fresh = await o.kube.get<Pod>(podPath(p));
      } catch (e2) {
        if (isNotFound(e2)) return false;
        throw e2;
      }
      if (fresh.metadata?.uid !== p.uid) return false;
      view = toGatedPod(fresh, o.credentials);
    }
  }
  throw new Error(`could not release Pod ${p.namespace}/${p.name}: its gates kept changing`);
}

/**
 * Sets the verification annotation to `failed` (the Pod stays gated; docs/verified-start.md). The answer is not put in
 * the cache: the watch event requeues the group once, as it always did; an early copy would requeue it twice.
 */
export async function markFailed(kube: KubeClient, p: GatedPod): Promise<void> {
  try {
    await kube.patch(podPath(p), [
      { op: 'test', path: '/metadata/uid', value: p.uid },
      annotationOp('failed', p.hasAnnotations),
    ]);
  } catch (e) {
    if (!isNotFound(e) && !(e instanceof KubeApiError && e.status === 422)) throw e;
  }
}

export async function upsertVerifiedIdentity(
  kube: KubeClient,
  verified: CacheView<VerifiedIdentity>,
  obj: VerifiedIdentity & { metadata: { name: string; namespace: string } },
): Promise<void> {
  const path = `${VI_API}/namespaces/${obj.metadata.namespace}/verifiedidentities`;
  try {
    verified.recordWrite(await kube.create(path, obj));
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
    verified.recordWrite(
      await kube.patch(`${path}/${obj.metadata.name}`, { spec: obj.spec }, 'application/merge-patch+json'),
    );
  }
}

export async function deleteVerifiedIdentity(
  kube: KubeClient,
  log: Logger,
  vi: VerifiedIdentity,
  why: string,
): Promise<void> {
  try {
    await kube.delete(
      `${VI_API}/namespaces/${vi.metadata!.namespace}/verifiedidentities/${vi.metadata!.name}`,
      { preconditions: { uid: vi.metadata!.uid } },
    );
    log.info({ vi: `${vi.metadata!.namespace}/${vi.metadata!.name}`, why }, 'deleted VerifiedIdentity');
  } catch (e) {
    if (!isNotFound(e) && !(e instanceof KubeApiError && e.status === 409))
      log.warn({ err: e }, 'could not delete VerifiedIdentity');
  }
}

/** Writes an IdentityPolicy's `Accepted` condition when it changed (docs/verified-start.md, "IdentityPolicy"). */
export async function writePolicyStatus(
  kube: KubeClient,
  log: Logger,
  o: IdentityPolicy,
  c: CompiledPolicy,
  now: Date,
): Promise<void> {
  const name = o.metadata!.name;
  const cond = acceptedCondition(c);
  const conds = o.status?.conditions;
  if (o.status?.observedGeneration === c.generation && conditionUnchanged(conds, cond)) return;
  const status = { observedGeneration: c.generation, conditions: setCondition(conds, cond, now) };
  await kube
    .patch(`${VI_API}/identitypolicies/${name}/status`, { status }, 'application/merge-patch+json')
    .catch(orUndefinedIfNotFound);
  if (!c.accepted)
    log.warn({ policy: name, problem: c.invalidMessage }, 'IdentityPolicy ignored: invalid pattern');
}
