// One admission review: read the request, resolve the ServiceAccount (the only possible I/O, bounded), resolve the
// identity, ask the guard, build the patch. The decisions are the pure functions of src/identity.
import { randomUUID } from 'node:crypto';
import type { AdmissionRequest } from './codec.ts';
import { logPreformatted, type Logger } from '../runtime/log.ts';
import { mutatedPodFields } from './mutation-line.ts';
import { planRequest, type PodView, type RequestPlan } from '../identity/pod.ts';
import {
  resolveIdentity,
  type Injection,
  type InjectionFlags,
  type Resolution,
  type SaLookup,
} from '../identity/resolve.ts';
import {
  gateOps,
  IDENTITY_GATE,
  identityOps,
  withAddOps,
  withGate,
  type JsonPatchOp,
} from '../identity/patch.ts';
import type {
  AdmissionGuard,
  AssociationIdentity,
  AssociationLookup,
  NoIdentityContext,
  ResolvedIdentity,
} from '../identity/sources.ts';
import { EMPTY_TABLE } from '../identity/configmap.ts';
import { identityRoleArnProblem } from '../identity/role-arn.ts';
import { encodeResponse, type ReviewAnswer } from './codec.ts';
import type { WebhookMetrics } from './metrics.ts';
import type { SaResult, ServiceAccountCache } from './service-accounts.ts';
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

/**
 * `timeout=10s` from the API server's webhook call (the query string after `?`), in ms; the first `timeout` pair
 * counts. Read without URLSearchParams: this runs at every admission, and the API server writes the pair plainly.
 */
export function timeoutParamMs(query: string): number | undefined {
  const pair = TIMEOUT_PAIR.exec(query);
  const seconds = pair && SECONDS.exec(pair[1]!);
  return seconds ? Number(seconds[1]) * 1000 : undefined;
}
const TIMEOUT_PAIR = /(?:^|&)timeout=([^&]*)/;
const SECONDS = /^(\d+)s$/;

/** One review being answered: what every answer and log line of it needs. */
interface Review {
  apiVersion: string;
  uid: string;
  started: number;
  ctx: AdmissionContext;
}

/** The review response; every path counts its outcome and source once here. */
function answer(rv: Review, a: ReviewAnswer, outcome: Outcome, source = 'none'): string {
  rv.ctx.metrics.admissions.inc({ outcome, source });
  return encodeResponse(rv.apiVersion, rv.uid, a);
}

const podFields = (rv: Review, pod: PodView) => ({
  uid: rv.uid,
  namespace: pod.namespace,
  pod: pod.name,
  serviceAccount: pod.serviceAccount,
});

function deny(rv: Review, pod: PodView, message: string, source: string): string {
  rv.ctx.log.warn({ ...podFields(rv, pod), reason: message }, 'identity forbidden');
  return answer(rv, { allowed: false, code: 403, reason: 'Forbidden', message }, 'denied_policy', source);
}

function badRequest(rv: Review, message: string, source?: string): string {
  return answer(rv, { allowed: false, code: 400, reason: 'BadRequest', message }, 'denied_invalid', source);
}

/** Answers one AdmissionReview request; never throws (an unexpected error is a 500 answer with an id to find the log). */
export async function admit(
  apiVersion: string,
  request: AdmissionRequest,
  apiTimeoutMs: number | undefined,
  ctx: AdmissionContext,
): Promise<string> {
  const rv: Review = { apiVersion, uid: request.uid, started: performance.now(), ctx };
  try {
    const plan = planRequest(request);
    if (plan.kind === 'not_applicable') return answer(rv, { allowed: true }, 'not_applicable');
    if (plan.kind === 'invalid') {
      ctx.log.warn({ uid: rv.uid, reason: plan.message }, 'unreadable Pod refused');
      return badRequest(rv, plan.message);
    }
    if (plan.kind === 'ephemeral') return admitEphemeral(rv, plan);
    return await admitPod(rv, plan, apiTimeoutMs);
  } catch (e) {
    const id = randomUUID();
    ctx.log.error({ uid: rv.uid, errorId: id, err: e }, 'internal error during admission');
    return answer(
      rv,
      { allowed: false, code: 500, reason: 'InternalError', message: `lanyard: internal error (id ${id})` },
      'error',
    );
  }
}

/** Ephemeral containers are never injected; what they can use is judged against the Pod as it was. */
function admitEphemeral(rv: Review, plan: Extract<RequestPlan, { kind: 'ephemeral' }>): string {
  const { ctx } = rv;
  const { associations, guard } = ctx.sources;
  const pod = plan.pod;
  const d = guard?.decide({
    pod: pod.object,
    oldPod: plan.oldPod,
    namespace: pod.namespace,
    serviceAccount: pod.serviceAccount,
    association: associations?.forPair(pod.namespace, pod.serviceAccount),
    stsAudiences: [ctx.flags.tokenAudience],
    podIdentityAudiences: [ctx.flags.containerCredentialsAudience],
  });
  if (d?.kind === 'deny') return deny(rv, pod, d.message, 'none');
  return answer(rv, { allowed: true }, 'unchanged');
}

/** A Pod CREATE: resolve its ServiceAccount and identity, let the guard judge, build the patch. */
async function admitPod(
  rv: Review,
  plan: Extract<RequestPlan, { kind: 'pod' }>,
  apiTimeoutMs: number | undefined,
): Promise<string> {
  const { ctx } = rv;
  const pod = plan.pod;
  const looked = ctx.serviceAccounts.lookup(pod.namespace, pod.serviceAccount, apiTimeoutMs);
  // A cache hit is not a promise: no extra turn on the hot path.
  const r = looked instanceof Promise ? await looked : looked;
  const sa = serviceAccountOf(rv, pod, r);
  const association = ctx.sources.associations?.forPair(pod.namespace, pod.serviceAccount);
  const resolution = resolveIdentity(
    {
      namespace: pod.namespace,
      serviceAccount: pod.serviceAccount,
      podAnnotations: pod.annotations,
      sa,
      association,
      inIdentitiesFile: ctx.identities?.current.has(`${pod.namespace}/${pod.serviceAccount}`) ?? false,
      configMap: ctx.configMap?.current ?? EMPTY_TABLE,
    },
    ctx.flags,
    ctx.random,
  );
  // Before any matching or logging: a role ARN beyond IAM's limits costs nothing and is never echoed in full.
  const arnProblem = resolution && identityRoleArnProblem(resolution.identity, ctx.flags.annotationPrefix);
  if (arnProblem) {
    ctx.log.warn({ ...podFields(rv, pod), reason: arnProblem }, 'invalid role ARN refused');
    return badRequest(rv, arnProblem, resolution.identity.source);
  }
  // A skip-labelled Pod is never injected, but what it can use by hand is judged all the same.
  const injection = plan.skipped ? undefined : resolution?.injection;
  const identity = resolution?.identity;
  const judged = judge(rv, pod, { injection, identity, association, saResult: r });
  if (judged.deny !== undefined) return deny(rv, pod, judged.deny, identity?.source ?? 'none');
  if (!injection) return answerUninjected(rv, pod, identity, judged.gate);
  return answerInjected(rv, pod, injection, resolution!, judged);
}

/** The lookup's result as the identity core reads it; a miss is counted, and logged unless the SA does not exist. */
function serviceAccountOf(rv: Review, pod: PodView, r: SaResult): SaLookup {
  const { ctx } = rv;
  ctx.metrics.saLookups.inc({ result: r.result });
  if (r.found) return { found: true, settings: r.settings };
  ctx.metrics.missingSa.inc();
  if (r.result !== 'not_found')
    ctx.log.warn(
      { ...podFields(rv, pod), result: r.result, cause: r.cause },
      'ServiceAccount unresolved; only the ConfigMap and container-credentials sources apply',
    );
  return { found: false };
}

/**
 * The guard's decision (docs/security.md): a refusal message, or whether to gate, with the injection's ops (without the
 * gate) it judged, for the answer to reuse. Without a guard: allow, no gate.
 */
function judge(
  rv: Review,
  pod: PodView,
  o: {
    injection: Injection | undefined;
    identity: ResolvedIdentity | undefined;
    association: AssociationIdentity | undefined;
    saResult: SaResult;
  },
): Judgement {
  const { ctx } = rv;
  const guard = ctx.sources.guard;
  if (!guard) return { gate: false };
  const { injection, identity } = o;
  // Judged as it will be stored: every container's identities after Lanyard's own patch (docs/security.md).
  const ops = injection && podIdentityOps(ctx, pod, injection);
  const stored = ops ? withAddOps(pod.object, ops) : pod.object;
  const d = guard.decide({
    pod: stored,
    namespace: pod.namespace,
    serviceAccount: pod.serviceAccount,
    identity,
    association: o.association,
    stsAudiences: [ctx.flags.tokenAudience, identity?.mode === 'WebIdentity' ? identity.audience : ''],
    podIdentityAudiences: [ctx.flags.containerCredentialsAudience],
    noIdentity: identity ? undefined : noIdentityContext(ctx, o.saResult),
  });
  if (d.kind === 'deny') return { deny: d.message, gate: false };
  // The guard counts its own skip reasons (lanyard_webhook_gate_skipped_total).
  return { gate: d.gate, ops };
}

interface Judgement {
  deny?: string;
  gate: boolean;
  /** The injection's ops without the gate, when the guard judged them. */
  ops?: JsonPatchOp[];
}

/** With no identity, what was consulted: the guard names it when the Pod requires one (docs/adr/0920-identity-required.md). */
function noIdentityContext(ctx: AdmissionContext, r: SaResult): NoIdentityContext {
  return {
    serviceAccount: r.found ? 'found' : r.result === 'not_found' ? 'not_found' : 'unresolved',
    annotationPrefix: ctx.flags.annotationPrefix,
    configMap: !!ctx.configMap,
    identitiesFile: !!ctx.identities,
  };
}

/** The injection's ops without the gate: the gate is added by withGate once the guard has asked for it. */
const podIdentityOps = (ctx: AdmissionContext, pod: PodView, injection: Injection) =>
  identityOps(pod.object, injection, { windows: pod.windows, annotationPrefix: ctx.flags.annotationPrefix });

/** No injection: allowed as is, or only gated (an identity the Pod may set by hand). */
function answerUninjected(
  rv: Review,
  pod: PodView,
  identity: ResolvedIdentity | undefined,
  gate: boolean,
): string {
  const { ctx } = rv;
  if (!gate) {
    ctx.log.debug(podFields(rv, pod), 'no identity');
    return answer(rv, { allowed: true }, 'no_identity');
  }
  const ops = gateOps(pod.object);
  if (!ops.length) return answer(rv, { allowed: true }, 'unchanged', identity?.source);
  ctx.metrics.gatesAdded.inc();
  ctx.log.info(
    { ...podFields(rv, pod), gate: IDENTITY_GATE },
    'Pod gated: it can use an identity set by hand',
  );
  return answer(rv, { allowed: true, patch: ops }, 'mutated', identity?.source);
}

/** The injection's patch, and the one `info` line per mutated Pod (docs/adr/0110-webhook-log-line.md, 0121). */
function answerInjected(
  rv: Review,
  pod: PodView,
  injection: Injection,
  { identity }: Resolution,
  { gate, ops: judgedOps }: Judgement,
): string {
  const { ctx } = rv;
  ctx.metrics.podCount.inc({
    method: injection.mode === 'WebIdentity' ? 'sts_web_identity' : 'container_credentials',
  });
  const ungated = judgedOps ?? podIdentityOps(ctx, pod, injection);
  const ops = gate ? withGate(pod.object, ungated) : ungated;
  if (gate && ops.some((op) => op.path.startsWith('/spec/schedulingGates'))) ctx.metrics.gatesAdded.inc();
  if (!ops.length) return answer(rv, { allowed: true }, 'unchanged', identity.source);
  logPreformatted(
    ctx.log,
    'info',
    mutatedPodFields({
      uid: rv.uid,
      namespace: pod.namespace,
      pod: pod.name,
      serviceAccount: pod.serviceAccount,
      mode: injection.mode,
      source: identity.source,
      roleARN: identity.roleARN,
      gate: gate ? IDENTITY_GATE : undefined,
      ops: ops.length,
      durationMs: Math.round((performance.now() - rv.started) * 1000) / 1000,
    }),
    'Pod mutated',
  );
  return answer(rv, { allowed: true, patch: ops }, 'mutated', identity.source);
}
