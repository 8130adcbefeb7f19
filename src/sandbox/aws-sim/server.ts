// HTTP front of the simulator: one loopback port for every service. Routing by SigV4 credential-scope service, then
// path; unsigned STS calls by Action; node agent and /_sim control routes by path (docs/aws-simulator.md).
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../runtime/log.ts';
import { credentialScope, verifySigV4, type SigV4Result } from './sigv4.ts';
import { AwsSim, SA_SUBJECT_RE, type Caller } from './sim.ts';
import {
  SimError,
  randomString,
  LOWER36,
  type AssociationState,
  type FaultSpec,
  type IssuedCredentials,
  type Protocol,
  type RoleState,
} from './model.ts';
import { sleep } from '../../runtime/clock.ts';

const STS_NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
const IAM_NS = 'https://iam.amazonaws.com/doc/2010-05-08/';

interface Reply {
  status: number;
  body: string;
  contentType: string;
  headers?: Record<string, string>;
}

interface Ctx {
  requestId: string;
  now: number;
  method: string;
  path: string;
  query: URLSearchParams;
  body: Buffer;
  caller?: Caller;
}

/** An operation resolved from the request, not yet run (faults apply in between). */
interface Routed {
  service: 'eks' | 'eks-auth' | 'sts' | 'iam' | 'node-agent';
  operation: string;
  protocol: Protocol | 'text';
  input: Record<string, string>;
  run: () => Promise<{
    status?: number;
    json?: unknown;
    xml?: string;
    text?: string;
    output?: Record<string, string>;
  }>;
}

// ---- serialization ----

function xmlEscape(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function el(name: string, content: string | number | boolean | undefined): string {
  return content === undefined
    ? ''
    : `<${name}>${typeof content === 'string' ? xmlEscape(content) : String(content)}</${name}>`;
}

function queryResponse(op: string, ns: string, requestId: string, result?: string): string {
  const inner = result === undefined ? '' : `<${op}Result>${result}</${op}Result>`;
  return `<${op}Response xmlns="${ns}">${inner}<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${op}Response>`;
}

function roleXml(r: RoleState): string {
  return `<Role>${el('Path', r.path)}${el('AssumeRolePolicyDocument', encodeURIComponent(r.document))}${el('MaxSessionDuration', r.maxSessionDuration)}${el('RoleId', r.roleId)}${el('RoleName', r.roleName)}${el('Arn', r.arn)}${el('CreateDate', new Date(r.createdAt).toISOString())}</Role>`;
}

function credentialsXml(c: IssuedCredentials): string {
  return `<Credentials>${el('AccessKeyId', c.accessKeyId)}${el('SecretAccessKey', c.secretAccessKey)}${el('SessionToken', c.sessionToken)}${el('Expiration', new Date(c.expiration).toISOString())}</Credentials>`;
}

function associationJson(a: AssociationState): Record<string, unknown> {
  return {
    clusterName: a.clusterName,
    namespace: a.namespace,
    serviceAccount: a.serviceAccount,
    roleArn: a.roleArn,
    associationArn: a.associationArn,
    associationId: a.associationId,
    tags: a.tags,
    createdAt: a.createdAt / 1000,
    modifiedAt: a.modifiedAt / 1000,
    disableSessionTags: a.disableSessionTags,
    ...(a.targetRoleArn ? { targetRoleArn: a.targetRoleArn } : {}),
    externalId: a.externalId,
    ...(a.policy ? { policy: a.policy } : {}),
  };
}

function errorReply(protocol: Protocol | 'text', err: SimError, requestId: string, service: string): Reply {
  if (protocol === 'json') {
    return {
      status: err.status,
      contentType: 'application/json',
      headers: { 'x-amzn-errortype': err.code },
      body: JSON.stringify({ message: err.message }),
    };
  }
  if (protocol === 'text') {
    return {
      status: err.status,
      contentType: 'text/plain; charset=utf-8',
      body: `[${requestId}]: (${err.code}): ${err.message}, fault: ${err.fault}\n`,
    };
  }
  const ns = service === 'iam' ? IAM_NS : STS_NS;
  const type = err.fault === 'server' ? 'Receiver' : 'Sender';
  return {
    status: err.status,
    contentType: 'text/xml',
    body: `<ErrorResponse xmlns="${ns}"><Error>${el('Type', type)}${el('Code', err.code)}${el('Message', err.message)}</Error>${el('RequestId', requestId)}</ErrorResponse>`,
  };
}

/** Injected error kinds as each protocol spells them. */
function faultError(
  kind: NonNullable<FaultSpec['error']>,
  service: string,
  protocol: Protocol | 'text',
): SimError {
  const query = protocol === 'query';
  switch (kind) {
    case 'ThrottlingException':
      return query
        ? new SimError('Throttling', 400, 'Rate exceeded')
        : new SimError('ThrottlingException', 429, 'Rate exceeded');
    case 'ServiceUnavailable':
      return query
        ? new SimError('ServiceUnavailable', 503, 'Service unavailable')
        : new SimError('ServiceUnavailableException', 503, 'Service unavailable');
    default:
      if (query) return new SimError('InternalFailure', 500, 'An internal error occurred');
      return service === 'eks'
        ? new SimError('ServerException', 500, 'An internal error occurred')
        : new SimError('InternalServerException', 500, 'An internal error occurred');
  }
}

// ---- routing ----

function list(params: URLSearchParams, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; params.has(`${prefix}.member.${i}`); i++) out.push(params.get(`${prefix}.member.${i}`)!);
  return out;
}

function jsonBody(ctx: Ctx): Record<string, unknown> {
  if (ctx.body.length === 0) return {};
  try {
    const v = JSON.parse(ctx.body.toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new SimError('SerializationException', 400, 'The request body is not a JSON object');
}

/** An operation resolved from the request; `run` is called once the faults drawn for it allow. */
function routed(
  service: Routed['service'],
  operation: string,
  protocol: Routed['protocol'],
  input: Record<string, string>,
  run: Routed['run'],
): Routed {
  return { service, operation, protocol, input, run };
}

// ---- EKS (REST-JSON) ----

/** What an EKS path names: the associations of a cluster, one association, or the tags of a resource. */
interface EksTarget {
  resource: 'associations' | 'association' | 'tags';
  cluster: string;
  id: string;
  arn: string;
}

function eksTarget(ctx: Ctx): EksTarget | undefined {
  const p = ctx.path.split('/').map((seg) => {
    try {
      return decodeURIComponent(seg);
    } catch {
      throw new SimError('InvalidParameterException', 400, `malformed path segment ${seg}`);
    }
  });
  if (p[1] === 'clusters' && p[3] === 'pod-identity-associations') {
    const t = { cluster: p[2]!, id: p[4] ?? '', arn: '' };
    if (p.length === 4) return { ...t, resource: 'associations' };
    if (p.length === 5) return { ...t, resource: 'association' };
  }
  if (p[1] === 'tags' && p.length >= 3)
    return { resource: 'tags', cluster: '', id: '', arn: p.slice(2).join('/') };
  return undefined;
}

type EksRoute = (sim: AwsSim, ctx: Ctx, t: EksTarget) => Routed;

const eks = (operation: string, input: Record<string, string>, run: Routed['run']) =>
  routed('eks', operation, 'json', input, run);

/** One handler per EKS operation, by method and what the path names (docs/aws-simulator.md). */
const EKS_ROUTES = new Map<string, EksRoute>([
  [
    'POST associations',
    (sim, ctx, { cluster }) => {
      const b = jsonBody(ctx);
      const input = {
        cluster,
        namespace: String(b.namespace ?? ''),
        serviceAccount: String(b.serviceAccount ?? ''),
        roleArn: String(b.roleArn ?? ''),
        ...(b.targetRoleArn ? { targetRoleArn: String(b.targetRoleArn) } : {}),
        ...(b.clientRequestToken ? { clientRequestToken: String(b.clientRequestToken) } : {}),
      };
      return eks('CreatePodIdentityAssociation', input, async () => {
        const a = sim.createAssociation(cluster, b, ctx.now);
        return { json: { association: associationJson(a) }, output: { associationId: a.associationId } };
      });
    },
  ],
  [
    'GET associations',
    (sim, ctx, { cluster }) => {
      const q = Object.fromEntries(ctx.query.entries()) as Record<string, string>;
      const input = {
        cluster,
        ...(q.namespace ? { namespace: q.namespace } : {}),
        ...(q.serviceAccount ? { serviceAccount: q.serviceAccount } : {}),
      };
      return eks('ListPodIdentityAssociations', input, async () => {
        const r = sim.listAssociations(cluster, q, ctx.now);
        return {
          json: {
            associations: r.items.map((a) => ({
              clusterName: a.clusterName,
              namespace: a.namespace,
              serviceAccount: a.serviceAccount,
              associationArn: a.associationArn,
              associationId: a.associationId,
            })),
            ...(r.nextToken ? { nextToken: r.nextToken } : {}),
          },
        };
      });
    },
  ],
  [
    'GET association',
    (sim, ctx, { cluster, id }) =>
      eks('DescribePodIdentityAssociation', { cluster, associationId: id }, async () => ({
        json: { association: associationJson(sim.describeAssociation(cluster, id, ctx.now)) },
      })),
  ],
  [
    'POST association',
    (sim, ctx, { cluster, id }) => {
      const b = jsonBody(ctx);
      const input = {
        cluster,
        associationId: id,
        ...(b.roleArn ? { roleArn: String(b.roleArn) } : {}),
        ...(b.targetRoleArn !== undefined ? { targetRoleArn: String(b.targetRoleArn) } : {}),
      };
      return eks('UpdatePodIdentityAssociation', input, async () => ({
        json: { association: associationJson(sim.updateAssociation(cluster, id, b, ctx.now)) },
      }));
    },
  ],
  [
    'DELETE association',
    (sim, ctx, { cluster, id }) =>
      eks('DeletePodIdentityAssociation', { cluster, associationId: id }, async () => ({
        json: { association: associationJson(sim.deleteAssociation(cluster, id, ctx.now)) },
      })),
  ],
  [
    'POST tags',
    (sim, ctx, { arn }) => {
      const b = jsonBody(ctx);
      return eks('TagResource', { resourceArn: arn }, async () => {
        sim.tagResource(arn, b.tags);
        return { json: {} };
      });
    },
  ],
  [
    'DELETE tags',
    (sim, ctx, { arn }) => {
      const keys = ctx.query.getAll('tagKeys');
      return eks('UntagResource', { resourceArn: arn }, async () => {
        sim.untagResource(arn, keys);
        return { json: {} };
      });
    },
  ],
  [
    'GET tags',
    (sim, _ctx, { arn }) =>
      eks('ListTagsForResource', { resourceArn: arn }, async () => ({ json: { tags: sim.listTags(arn) } })),
  ],
]);

function routeEks(sim: AwsSim, ctx: Ctx): Routed {
  const t = eksTarget(ctx);
  const route = t && EKS_ROUTES.get(`${ctx.method} ${t.resource}`);
  if (t && route) return route(sim, ctx, t);
  return eks('Unknown', { path: ctx.path }, async () => {
    throw new SimError('UnknownOperationException', 404, `No EKS operation for ${ctx.method} ${ctx.path}`);
  });
}

function routeEksAuth(sim: AwsSim, ctx: Ctx): Routed {
  const m = /^\/clusters\/([^/]+)\/assume-role-for-pod-identity$/.exec(ctx.path);
  if (!m || ctx.method !== 'POST') {
    return routed('eks-auth', 'Unknown', 'json', { path: ctx.path }, async () => {
      throw new SimError(
        'UnknownOperationException',
        404,
        `No eks-auth operation for ${ctx.method} ${ctx.path}`,
      );
    });
  }
  let cluster: string;
  try {
    cluster = decodeURIComponent(m[1]!);
  } catch {
    throw new SimError('InvalidParameterException', 400, `malformed cluster name ${m[1]!}`);
  }
  const b = jsonBody(ctx);
  return routed('eks-auth', 'AssumeRoleForPodIdentity', 'json', { cluster }, async () => {
    const r = await sim.assumeRoleForPodIdentity(cluster, b.token, ctx.now);
    return {
      json: {
        subject: r.subject,
        audience: r.audience,
        podIdentityAssociation: r.podIdentityAssociation,
        assumedRoleUser: r.assumedRoleUser,
        credentials: {
          sessionToken: r.credentials.sessionToken,
          secretAccessKey: r.credentials.secretAccessKey,
          accessKeyId: r.credentials.accessKeyId,
          expiration: r.credentials.expiration / 1000,
        },
      },
      output: exchangeOutput(r.subject, r.assumedRoleUser.arn, r.podIdentityAssociation.associationId),
    };
  });
}

function exchangeOutput(
  subject: { namespace: string; serviceAccount: string },
  arn: string,
  associationId?: string,
): Record<string, string> {
  return {
    namespace: subject.namespace,
    serviceAccount: subject.serviceAccount,
    assumedRoleArn: arn,
    ...(associationId ? { associationId } : {}),
  };
}

function routeNodeAgent(sim: AwsSim, ctx: Ctx, authorization: string | undefined): Routed {
  const cluster = sim.defaultCluster?.name ?? '';
  return routed('node-agent', 'AssumeRoleForPodIdentity', 'text', { cluster }, async () => {
    if (!authorization)
      throw new SimError(
        'InvalidParameterException',
        400,
        'Authorization header with the service account token is required',
      );
    if (!cluster)
      throw new SimError('ResourceNotFoundException', 404, 'No cluster registered with the simulator');
    const r = await sim.assumeRoleForPodIdentity(cluster, authorization.trim(), ctx.now);
    return {
      text: JSON.stringify({
        AccessKeyId: r.credentials.accessKeyId,
        SecretAccessKey: r.credentials.secretAccessKey,
        Token: r.credentials.sessionToken,
        AccountId: r.accountId,
        Expiration: new Date(r.credentials.expiration).toISOString(),
      }),
      output: exchangeOutput(r.subject, r.assumedRoleUser.arn, r.podIdentityAssociation.associationId),
    };
  });
}

// ---- STS and IAM (query protocol) ----

/** A query-protocol request as its action's handler reads it. */
interface QueryRequest {
  sim: AwsSim;
  ctx: Ctx;
  params: URLSearchParams;
  /** The action's response document around `result`. */
  reply: (result?: string) => string;
  roleName?: string;
}

/** What an action's handler resolves: the input logged, and the call. */
interface QueryRoute {
  input: Record<string, string>;
  run: () => Promise<{ xml?: string; output?: Record<string, string> }>;
}

type QueryHandler = (q: QueryRequest) => QueryRoute;

/** `{ [field]: value }` for each parameter the request has (absent and empty ones left out). */
function present(params: URLSearchParams, fields: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, param] of Object.entries(fields)) {
    const v = params.get(param);
    if (v) out[field] = v;
  }
  return out;
}

const STS_ACTIONS = new Map<string, QueryHandler>([
  [
    'AssumeRoleWithWebIdentity',
    ({ sim, ctx, params, reply }) => ({
      input: { roleArn: params.get('RoleArn') ?? '', sessionName: params.get('RoleSessionName') ?? '' },
      run: async () => {
        const r = await sim.assumeRoleWithWebIdentity(
          present(params, {
            roleArn: 'RoleArn',
            sessionName: 'RoleSessionName',
            token: 'WebIdentityToken',
            durationSeconds: 'DurationSeconds',
          }),
          ctx.now,
        );
        const m = SA_SUBJECT_RE.exec(r.subject);
        return {
          xml: reply(
            `${credentialsXml(r.credentials)}${el('SubjectFromWebIdentityToken', r.subject)}<AssumedRoleUser>${el('AssumedRoleId', r.assumedRoleId)}${el('Arn', r.credentials.arn)}</AssumedRoleUser>${el('Provider', r.provider)}${el('Audience', r.audience)}`,
          ),
          output: m
            ? exchangeOutput({ namespace: m[1]!, serviceAccount: m[2]! }, r.credentials.arn)
            : { assumedRoleArn: r.credentials.arn },
        };
      },
    }),
  ],
  [
    'GetCallerIdentity',
    ({ ctx, reply }) => ({
      input: {},
      run: async () => {
        const c = ctx.caller!;
        return {
          xml: reply(`${el('Arn', c.arn)}${el('UserId', c.userId)}${el('Account', c.account)}`),
          output: { arn: c.arn },
        };
      },
    }),
  ],
]);

const IAM_ACTIONS = new Map<string, QueryHandler>([
  [
    'CreateRole',
    ({ sim, ctx, params, reply, roleName }) => ({
      input: { roleName: roleName ?? '', path: params.get('Path') ?? '/' },
      run: async () => {
        const r = sim.createRole(
          present(params, { roleName: 'RoleName', path: 'Path', document: 'AssumeRolePolicyDocument' }),
          ctx.now,
        );
        return { xml: reply(roleXml(r)), output: { arn: r.arn } };
      },
    }),
  ],
  [
    'GetRole',
    ({ sim, reply, roleName }) => ({
      input: { roleName: roleName ?? '' },
      run: async () => ({ xml: reply(roleXml(sim.getRole(roleName))) }),
    }),
  ],
  [
    'DeleteRole',
    ({ sim, ctx, reply, roleName }) => ({
      input: { roleName: roleName ?? '' },
      run: async () => {
        sim.deleteRole(roleName, ctx.now);
        return { xml: reply() };
      },
    }),
  ],
  [
    'UpdateAssumeRolePolicy',
    ({ sim, ctx, params, reply, roleName }) => ({
      input: { roleName: roleName ?? '' },
      run: async () => {
        sim.updateAssumeRolePolicy(roleName, params.get('PolicyDocument') ?? undefined, ctx.now);
        return { xml: reply() };
      },
    }),
  ],
  [
    'CreateOpenIDConnectProvider',
    ({ sim, ctx, params, reply }) => ({
      input: { url: params.get('Url') ?? '' },
      run: async () => {
        const p = sim.createOidcProvider(
          {
            ...present(params, { url: 'Url' }),
            clientIds: list(params, 'ClientIDList'),
            thumbprints: list(params, 'ThumbprintList'),
          },
          ctx.now,
        );
        return { xml: reply(el('OpenIDConnectProviderArn', p.arn)), output: { arn: p.arn } };
      },
    }),
  ],
  [
    'ListOpenIDConnectProviders',
    ({ sim, reply }) => ({
      input: {},
      run: async () => ({
        xml: reply(
          `<OpenIDConnectProviderList>${[...sim.providers.keys()].map((a) => `<member>${el('Arn', a)}</member>`).join('')}</OpenIDConnectProviderList>`,
        ),
      }),
    }),
  ],
  [
    'DeleteOpenIDConnectProvider',
    ({ sim, params, reply }) => ({
      input: { arn: params.get('OpenIDConnectProviderArn') ?? '' },
      run: async () => {
        sim.deleteOidcProvider(params.get('OpenIDConnectProviderArn') ?? undefined);
        return { xml: reply() };
      },
    }),
  ],
]);

function routeQuery(sim: AwsSim, ctx: Ctx, service: 'sts' | 'iam', params: URLSearchParams): Routed {
  const action = params.get('Action') ?? '';
  const ns = service === 'iam' ? IAM_NS : STS_NS;
  const handler = (service === 'sts' ? STS_ACTIONS : IAM_ACTIONS).get(action);
  const { input, run } = handler
    ? handler({
        sim,
        ctx,
        params,
        reply: (result) => queryResponse(action, ns, ctx.requestId, result),
        roleName: params.get('RoleName') ?? undefined,
      })
    : {
        input: {},
        run: async () => {
          throw new SimError(
            'InvalidAction',
            400,
            `Could not find operation ${action} for version ${params.get('Version') ?? ''}`,
          );
        },
      };
  return routed(service, action || 'Unknown', 'query', input, async () => {
    const version = params.get('Version');
    const want = service === 'iam' ? '2010-05-08' : '2011-06-15';
    if (version !== want) throw new SimError('InvalidParameterValue', 400, `Version must be ${want}`);
    return run();
  });
}

// ---- server ----

export interface SimServer {
  url: string;
  close(): Promise<void>;
}

type ControlRoutes = (method: string, path: string, query: URLSearchParams, body: Buffer) => Promise<Reply>;

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: http.ServerResponse, r: Reply, requestId: string): void {
  res.writeHead(r.status, {
    'content-type': r.contentType,
    'x-amzn-requestid': requestId,
    'content-length': Buffer.byteLength(r.body),
    ...(r.headers ?? {}),
  });
  res.end(r.body);
}

/** The error a failed signature check answers with, as each protocol spells it. */
function signatureError(v: Extract<SigV4Result, { ok: false }>, protocol: Protocol): SimError {
  const query = protocol === 'query';
  if (v.kind === 'unknownKey' || v.kind === 'badToken')
    return new SimError(query ? 'InvalidClientTokenId' : 'UnrecognizedClientException', 403, v.message);
  if (v.kind === 'incomplete' || v.kind === 'missing')
    return new SimError(query ? 'IncompleteSignature' : 'IncompleteSignatureException', 400, v.message);
  return new SimError(query ? 'SignatureDoesNotMatch' : 'InvalidSignatureException', 403, v.message);
}

/** A request to an AWS API, read: its context, the raw query (signed as sent) and the query-protocol parameters. */
interface Incoming {
  req: http.IncomingMessage;
  ctx: Ctx;
  rawQuery: string;
  form: URLSearchParams;
}

/** The simulator's HTTP handling: resolve a request to an operation (or an answer), then run it under the faults. */
class SimHttp {
  /** Requests held by a `timeout` fault until the client gives up or the simulator closes. */
  readonly hung = new Set<http.ServerResponse>();

  constructor(
    private readonly sim: AwsSim,
    private readonly control: ControlRoutes,
    private readonly log: Logger,
  ) {}

  async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readBody(req);
    const raw = req.url ?? '/';
    const qi = raw.indexOf('?');
    const path = qi < 0 ? raw : raw.slice(0, qi);
    const rawQuery = qi < 0 ? '' : raw.slice(qi + 1);
    const requestId = `${randomString(Math.random, LOWER36, 8)}-${randomString(Math.random, LOWER36, 4)}-${randomString(Math.random, LOWER36, 12)}`;
    const method = (req.method ?? 'GET').toUpperCase();
    if (path.startsWith('/_sim/')) {
      send(res, await this.control(method, path, new URLSearchParams(rawQuery), body), requestId);
      return;
    }
    const ctx: Ctx = { requestId, now: Date.now(), method, path, query: new URLSearchParams(rawQuery), body };
    const isForm = String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
    const form = isForm ? new URLSearchParams(body.toString('utf8')) : new URLSearchParams(rawQuery);
    const r = this.resolve({ req, ctx, rawQuery, form });
    if ('run' in r) await this.execute(req, res, ctx, r);
    else send(res, r, requestId);
  }

  /** The operation a request names, or the answer when it names none it may run (bad signature, no credentials). */
  private resolve(i: Incoming): Routed | Reply {
    const { req, ctx, form } = i;
    const authorization = req.headers.authorization;
    const scope = credentialScope(authorization);
    try {
      if (ctx.method === 'GET' && ctx.path === '/v1/credentials')
        return routeNodeAgent(this.sim, ctx, authorization);
      if (scope) return this.resolveSigned(i, scope);
      if (form.get('Action') === 'AssumeRoleWithWebIdentity') return routeQuery(this.sim, ctx, 'sts', form);
      const err = new SimError('MissingAuthenticationToken', 403, 'Request is missing Authentication Token');
      return errorReply(form.get('Action') ? 'query' : 'json', err, ctx.requestId, 'sts');
    } catch (e) {
      if (!(e instanceof SimError)) throw e;
      return errorReply('json', e, ctx.requestId, '');
    }
  }

  /** A signed request: the signature checked (the caller comes from the same key lookup), then routed by service. */
  private resolveSigned(
    { req, ctx, rawQuery, form }: Incoming,
    scope: NonNullable<ReturnType<typeof credentialScope>>,
  ): Routed | Reply {
    const { sim } = this;
    const protocol: Protocol = scope.service === 'sts' || scope.service === 'iam' ? 'query' : 'json';
    // Kept from the signature check: the caller comes from the same lookup (which also expires keys).
    let key: ReturnType<AwsSim['lookupKey']>;
    const v = verifySigV4(
      { method: ctx.method, path: ctx.path, query: rawQuery, headers: req.headers, body: ctx.body },
      (id) => (key = sim.lookupKey(id, ctx.now)),
      ctx.now,
    );
    if (!v.ok) {
      const err = signatureError(v, protocol);
      sim.record({
        time: new Date().toISOString(),
        requestId: ctx.requestId,
        service: scope.service,
        operation: 'Authenticate',
        input: { accessKeyId: scope.accessKeyId },
        status: err.status,
        code: err.code,
      });
      return errorReply(protocol, err, ctx.requestId, scope.service);
    }
    ctx.caller = key!.caller;
    if (scope.service === 'eks') return routeEks(sim, ctx);
    if (scope.service === 'eks-auth') return routeEksAuth(sim, ctx);
    if (scope.service === 'sts' || scope.service === 'iam') return routeQuery(sim, ctx, scope.service, form);
    const err = new SimError('UnknownServiceException', 400, `The simulator does not serve ${scope.service}`);
    return errorReply('json', err, ctx.requestId, scope.service);
  }

  /** Runs an operation under the faults drawn for it, records it in the log and answers. */
  private async execute(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: Ctx,
    routed: Routed,
  ): Promise<void> {
    const { sim } = this;
    const faultService = routed.service === 'node-agent' ? 'eks-auth' : routed.service;
    const fault = sim.drawFaults(faultService, routed.operation);
    if (fault.latencyMs > 0) await sleep(fault.latencyMs);
    ctx.now = Date.now();
    // The entry's time is the decision time: what the call saw was decided at ctx.now.
    const entry = {
      time: new Date(ctx.now).toISOString(),
      requestId: ctx.requestId,
      service: routed.service,
      operation: routed.operation,
      input: routed.input,
    };
    if (fault.error === 'timeout' || fault.error === 'reset') {
      sim.record({ ...entry, status: 0, code: fault.error, fault: fault.error });
      if (fault.error === 'reset') req.socket.destroy();
      else {
        // Held until the client gives up (its socket closes) or the simulator closes.
        this.hung.add(res);
        res.on('close', () => this.hung.delete(res));
      }
      return;
    }
    let reply: Reply;
    try {
      if (fault.error) throw faultError(fault.error, faultService, routed.protocol);
      const out = await routed.run();
      reply = successReply(out);
      sim.record({ ...entry, status: reply.status, ...(out.output ? { output: out.output } : {}) });
    } catch (e) {
      const err =
        e instanceof SimError ? e : new SimError('InternalFailure', 500, 'internal simulator error');
      if (!(e instanceof SimError))
        this.log.error({ err: e, operation: routed.operation }, 'simulator handler failed');
      reply = errorReply(routed.protocol, err, ctx.requestId, routed.service);
      sim.record({
        ...entry,
        status: err.status,
        code: err.code,
        ...(fault.error ? { fault: fault.error } : {}),
      });
    }
    send(res, reply, ctx.requestId);
  }
}

/** The answer of an operation that ran: its JSON, XML or text body. */
function successReply(out: Awaited<ReturnType<Routed['run']>>): Reply {
  if (out.json !== undefined)
    return { status: out.status ?? 200, contentType: 'application/json', body: JSON.stringify(out.json) };
  if (out.xml !== undefined) return { status: 200, contentType: 'text/xml', body: out.xml };
  return { status: 200, contentType: 'application/json', body: out.text ?? '' };
}

export async function startServer(
  sim: AwsSim,
  control: ControlRoutes,
  port: number,
  log: Logger,
  host = '127.0.0.1',
): Promise<SimServer> {
  const front = new SimHttp(sim, control, log);
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    front.handle(req, res).catch((e: unknown) => {
      log.error({ err: e }, 'simulator request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal simulator error');
    });
  });
  server.keepAliveTimeout = 5000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as { port: number };
  return {
    url: `http://${host}:${addr.port}`,
    close: async () => {
      for (const res of front.hung) res.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
