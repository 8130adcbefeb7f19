// One admission review: read the request, resolve the ServiceAccount (the only possible I/O, bounded), resolve the
// identity, ask the guard, build the patch. The decisions are the pure functions of src/identity.
import { randomUUID } from 'node:crypto';
import type { Json } from '../kube/client.ts';
import type { Logger } from '../runtime/log.ts';
import { planRequest } from '../identity/pod.ts';
import { resolveIdentity, type InjectionFlags, type SaLookup } from '../identity/resolve.ts';
import { buildPatch, gateOps, IDENTITY_GATE, withAddOps } from '../identity/patch.ts';
import type { AdmissionGuard, AssociationLookup } from '../identity/sources.ts';
import { EMPTY_TABLE } from '../identity/configmap.ts';
import { identityRoleArnProblem } from '../identity/role-arn.ts';
import { encodeResponse, type ReviewAnswer } from './codec.ts';
import type { WebhookMetrics } from './metrics.ts';
import type { ServiceAccountCache } from './service-accounts.ts';
import type { ConfigMapSource, IdentitiesFile } from './config-sources.ts';

export type Outcome =
  'mutated' | 'unchanged' | 'no_identity' | 'not_applicable' | 'denied_policy' | 'denied_invalid' | 'error';

export interface AdmissionContext {
  flags: InjectionFlags;
  metrics: WebhookMetrics;
  log: Logger;
  random: () => number;
  serviceAccounts: ServiceAccountCache;
  configMap?: ConfigMapSource;
  identities?: IdentitiesFile;
  /** Read at every admission: the command may add them once the lanyard.dev CRDs become served. */
  sources: { associations?: AssociationLookup; guard?: AdmissionGuard };
}

/** `timeout=10s` from the API server's webhook call, in ms. */
export function timeoutParamMs(search: URLSearchParams): number | undefined {
  const t = search.get('timeout');
  const m = t ? /^(\d+)s$/.exec(t) : null;
  return m ? Number(m[1]) * 1000 : undefined;
}

export async function admit(
  apiVersion: string,
  request: Json,
  apiTimeoutMs: number | undefined,
  ctx: AdmissionContext,
): Promise<Buffer> {
  const uid: string = request.uid;
  const started = performance.now();
  /** The review response; every path counts its outcome and source once here. */
  const answer = (a: ReviewAnswer, outcome: Outcome, source = 'none'): Buffer => {
    ctx.metrics.admissions.inc({ outcome, source });
    return encodeResponse(apiVersion, uid, a);
  };
  const deny = (
    pod: { namespace: string; name: string; serviceAccount: string },
    message: string,
    source: string,
  ): Buffer => {
    ctx.log.warn(
      { uid, namespace: pod.namespace, pod: pod.name, serviceAccount: pod.serviceAccount, reason: message },
      'identity forbidden',
    );
    return answer({ allowed: false, code: 403, reason: 'Forbidden', message }, 'denied_policy', source);
  };
  try {
    const plan = planRequest(request);
    if (plan.kind === 'not_applicable') return answer({ allowed: true }, 'not_applicable');
    if (plan.kind === 'invalid') {
      ctx.log.warn({ uid, reason: plan.message }, 'unreadable Pod refused');
      return answer(
        { allowed: false, code: 400, reason: 'BadRequest', message: plan.message },
        'denied_invalid',
      );
    }
    const { associations, guard } = ctx.sources;
    const pod = plan.pod;
    if (plan.kind === 'ephemeral') {
      // Ephemeral containers are never injected; what they can use is judged against the Pod as it was.
      const d = guard?.decide({
        pod: pod.object,
        oldPod: plan.oldPod,
        namespace: pod.namespace,
        serviceAccount: pod.serviceAccount,
        association: associations?.forPair(pod.namespace, pod.serviceAccount),
        stsAudiences: [ctx.flags.tokenAudience],
        podIdentityAudiences: [ctx.flags.containerCredentialsAudience],
      });
      if (d?.kind === 'deny') return deny(pod, d.message, 'none');
      return answer({ allowed: true }, 'unchanged');
    }
    const key = `${pod.namespace}/${pod.serviceAccount}`;
    const looked = ctx.serviceAccounts.lookup(pod.namespace, pod.serviceAccount, apiTimeoutMs);
    const r = looked instanceof Promise ? await looked : looked;
    ctx.metrics.saLookups.inc({ result: r.result });
    let sa: SaLookup;
    if (r.found) sa = { found: true, settings: r.settings };
    else {
      sa = { found: false };
      ctx.metrics.missingSa.inc();
      if (r.result !== 'not_found')
        ctx.log.warn(
          {
            uid,
            namespace: pod.namespace,
            pod: pod.name,
            serviceAccount: pod.serviceAccount,
            result: r.result,
            cause: r.cause,
          },
          'ServiceAccount unresolved; only the ConfigMap and container-credentials sources apply',
        );
    }
    const association = associations?.forPair(pod.namespace, pod.serviceAccount);
    const resolution = resolveIdentity(
      {
        namespace: pod.namespace,
        serviceAccount: pod.serviceAccount,
        podAnnotations: pod.annotations,
        sa,
        association,
        inIdentitiesFile: ctx.identities?.current.has(key) ?? false,
        configMap: ctx.configMap?.current ?? EMPTY_TABLE,
      },
      ctx.flags,
      ctx.random,
    );
    // Before any matching or logging: a role ARN beyond IAM's limits costs nothing and is never echoed in full.
    const arnProblem = resolution && identityRoleArnProblem(resolution.identity, ctx.flags.annotationPrefix);
    if (arnProblem) {
      ctx.log.warn(
        {
          uid,
          namespace: pod.namespace,
          pod: pod.name,
          serviceAccount: pod.serviceAccount,
          reason: arnProblem,
        },
        'invalid role ARN refused',
      );
      return answer(
        { allowed: false, code: 400, reason: 'BadRequest', message: arnProblem },
        'denied_invalid',
        resolution.identity.source,
      );
    }
    // A skip-labelled Pod is never injected, but what it can use by hand is judged all the same.
    const injection = plan.skipped ? undefined : resolution?.injection;
    const identity = resolution?.identity;
    const patchOptions = { windows: pod.windows, annotationPrefix: ctx.flags.annotationPrefix };
    let gate = false;
    if (guard) {
      // Judged as it will be stored: every container's identities after Lanyard's own patch (docs/security.md).
      const stored = injection
        ? withAddOps(pod.object, buildPatch(pod.object, injection, { ...patchOptions, gate: false }))
        : pod.object;
      // With no identity, what was consulted: the guard names it when the Pod requires one (docs/adr/0920-identity-required.md).
      const noIdentity = identity
        ? undefined
        : {
            serviceAccount: r.found
              ? ('found' as const)
              : r.result === 'not_found'
                ? ('not_found' as const)
                : ('unresolved' as const),
            annotationPrefix: ctx.flags.annotationPrefix,
            configMap: !!ctx.configMap,
            identitiesFile: !!ctx.identities,
          };
      const d = guard.decide({
        pod: stored,
        namespace: pod.namespace,
        serviceAccount: pod.serviceAccount,
        identity,
        association,
        stsAudiences: [ctx.flags.tokenAudience, identity?.mode === 'WebIdentity' ? identity.audience : ''],
        podIdentityAudiences: [ctx.flags.containerCredentialsAudience],
        noIdentity,
      });
      if (d.kind === 'deny') return deny(pod, d.message, identity?.source ?? 'none');
      // The guard counts its own skip reasons (lanyard_webhook_gate_skipped_total).
      gate = d.gate;
    }
    if (!injection) {
      if (!gate) {
        ctx.log.debug(
          { uid, namespace: pod.namespace, pod: pod.name, serviceAccount: pod.serviceAccount },
          'no identity',
        );
        return answer({ allowed: true }, 'no_identity');
      }
      const ops = gateOps(pod.object);
      if (!ops.length) return answer({ allowed: true }, 'unchanged', identity?.source);
      ctx.metrics.gatesAdded.inc();
      ctx.log.info(
        {
          uid,
          namespace: pod.namespace,
          pod: pod.name,
          serviceAccount: pod.serviceAccount,
          gate: IDENTITY_GATE,
        },
        'Pod gated: it can use an identity set by hand',
      );
      return answer({ allowed: true, patch: ops }, 'mutated', identity?.source);
    }
    ctx.metrics.podCount.inc({
      method: injection.mode === 'WebIdentity' ? 'sts_web_identity' : 'container_credentials',
    });
    const ops = buildPatch(pod.object, injection, { ...patchOptions, gate });
    if (gate && ops.some((op) => op.path.startsWith('/spec/schedulingGates'))) ctx.metrics.gatesAdded.inc();
    if (!ops.length) return answer({ allowed: true }, 'unchanged', identity?.source);
    ctx.log.info(
      {
        uid,
        namespace: pod.namespace,
        pod: pod.name,
        serviceAccount: pod.serviceAccount,
        mode: injection.mode,
        source: identity?.source,
        roleARN: identity?.roleARN,
        gate: gate ? IDENTITY_GATE : undefined,
        ops: ops.length,
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      },
      'Pod mutated',
    );
    return answer({ allowed: true, patch: ops }, 'mutated', identity?.source);
  } catch (e) {
    const id = randomUUID();
    ctx.log.error({ uid, errorId: id, err: e }, 'internal error during admission');
    return answer(
      { allowed: false, code: 500, reason: 'InternalError', message: `lanyard: internal error (id ${id})` },
      'error',
    );
  }
}
