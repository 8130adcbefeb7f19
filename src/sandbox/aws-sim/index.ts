// The AWS simulator (docs/aws-simulator.md): test and sandbox infrastructure, never started by the product commands.
import type { Logger } from '../../runtime/log.ts';
import { silentLogger } from '../../runtime/log.ts';
import {
  SimError,
  type Cluster,
  type SimConfig,
  type SimLogEntry,
  type FaultSpec,
  type VisibilityApi,
} from './model.ts';
import { startServer } from './server.ts';
import {
  ADMIN_ACCESS_KEY_ID,
  ADMIN_SECRET_ACCESS_KEY,
  AwsSim,
  type AssociationControlView,
  type SessionControlView,
} from './sim.ts';

export type {
  SimConfig,
  SimLogEntry,
  FaultSpec,
  VisibilityApi,
  AssociationControlView,
  SessionControlView,
  Cluster,
};
export { ADMIN_ACCESS_KEY_ID, ADMIN_SECRET_ACCESS_KEY };

export interface AwsSimulatorOptions {
  /** 0 picks a free port. */
  port: number;
  /** Address to listen on (default 127.0.0.1); the test node's Pods reach the host's end of its link. */
  host?: string;
  /** Every random draw (visibility, fault rates, ids) comes from this seed. */
  seed: number;
  account?: string;
  region?: string;
  log?: Logger;
}

export interface AwsSimControl {
  readonly account: string;
  readonly region: string;
  /** The fixed admin key pair; caller arn:aws:iam::<account>:user/lanyard-sim-admin. */
  readonly adminCredentials: { accessKeyId: string; secretAccessKey: string };
  /** Registers a cluster whose tokens eks-auth (and STS, when IAM has a provider for the issuer) verify. */
  registerCluster(c: { name: string; issuer: string; caBundle?: string }): Cluster;
  /** Replaces the consistency and fault configuration; `count` faults restart. */
  configure(c: {
    visibility?: Partial<Record<VisibilityApi, [number, number]>>;
    faults?: FaultSpec[];
  }): SimConfig;
  association(id: string): AssociationControlView | undefined;
  /** Makes the latest version of an association visible to every API now. */
  makeVisible(id: string): boolean;
  /** ISO time at which EKS and STS see the latest version of a role. */
  roleVisibleAt(roleName: string): string | undefined;
  makeRoleVisible(roleName: string): boolean;
  /** Issued, unexpired credentials by access key id: their ARN, expiry and session policy (never the secret). */
  session(accessKeyId: string): SessionControlView | undefined;
  log(filter?: { service?: string; operation?: string; since?: string }): SimLogEntry[];
  reset(): void;
}

export interface AwsSimulator {
  url: string;
  control: AwsSimControl;
  close(): Promise<void>;
}

function controlError(e: unknown) {
  if (e instanceof SimError)
    return {
      status: e.status,
      contentType: 'application/json',
      body: JSON.stringify({ code: e.code, message: e.message }),
    };
  throw e;
}

function json(status: number, v: unknown) {
  return { status, contentType: 'application/json', body: JSON.stringify(v) };
}

function parse(body: Buffer): unknown {
  try {
    return body.length ? JSON.parse(body.toString('utf8')) : {};
  } catch {
    throw new SimError('InvalidJson', 400, 'the request body is not JSON');
  }
}

/** The control interface over the simulator's state (docs/aws-simulator.md). */
function controlOf(sim: AwsSim, account: string, region: string): AwsSimControl {
  return {
    account,
    region,
    adminCredentials: { accessKeyId: ADMIN_ACCESS_KEY_ID, secretAccessKey: ADMIN_SECRET_ACCESS_KEY },
    registerCluster: (c) => sim.registerCluster(c),
    configure: (c) => sim.configure(c),
    association: (id) => sim.associationView(id),
    makeVisible: (id) => sim.makeVisible(id, Date.now()),
    roleVisibleAt: (name) => sim.roleVisibleAt(name),
    makeRoleVisible: (name) => sim.makeRoleVisible(name, Date.now()),
    session: (id) => sim.sessionView(id, Date.now()),
    log: (f) =>
      sim.entries.filter(
        (e) =>
          (!f?.service || e.service === f.service) &&
          (!f?.operation || e.operation === f.operation) &&
          (!f?.since || e.time >= f.since),
      ),
    reset: () => sim.reset(),
  };
}

type ControlReply = ReturnType<typeof json>;

/** The /_sim/ routes: the control interface over HTTP, for tests in other processes. */
function controlRoutes(sim: AwsSim, control: AwsSimControl) {
  const exact = new Map<string, (query: URLSearchParams, body: Buffer) => ControlReply>([
    [
      'POST /_sim/clusters',
      (_q, body) => json(200, control.registerCluster(parse(body) as { name: string; issuer: string })),
    ],
    ['GET /_sim/clusters', () => json(200, { clusters: [...sim.clusters.values()] })],
    ['PUT /_sim/config', (_q, body) => json(200, control.configure(parse(body) as SimConfig))],
    ['GET /_sim/config', () => json(200, sim.config)],
    [
      'GET /_sim/log',
      (query) =>
        json(200, {
          entries: control.log({
            service: query.get('service') ?? '',
            operation: query.get('operation') ?? '',
            since: query.get('since') ?? '',
          }),
        }),
    ],
    [
      'POST /_sim/reset',
      () => {
        control.reset();
        return json(200, {});
      },
    ],
  ]);
  return async (method: string, path: string, query: URLSearchParams, body: Buffer) => {
    try {
      const route = exact.get(`${method} ${path}`);
      return route ? route(query, body) : objectRoute(control, method, path);
    } catch (e) {
      return controlError(e);
    }
  };
}

/** The control routes of one session or association. */
function objectRoute(control: AwsSimControl, method: string, path: string): ControlReply {
  const sm = /^\/_sim\/sessions\/([^/]+)$/.exec(path);
  if (sm && method === 'GET') {
    const v = control.session(decodeURIComponent(sm[1]!));
    return v ? json(200, v) : json(404, { code: 'NotFound', message: `no unexpired session ${sm[1]!}` });
  }
  const m = /^\/_sim\/associations\/([^/]+)(\/visible)?$/.exec(path);
  if (m) {
    const id = decodeURIComponent(m[1]!);
    const notFound = () => json(404, { code: 'NotFound', message: `association ${id} not found` });
    if (method === 'GET' && !m[2]) {
      const v = control.association(id);
      return v ? json(200, v) : notFound();
    }
    if (method === 'POST' && m[2])
      return control.makeVisible(id) ? json(200, control.association(id)) : notFound();
  }
  return json(404, { code: 'NotFound', message: `no control route ${method} ${path}` });
}

export async function startAwsSimulator(o: AwsSimulatorOptions): Promise<AwsSimulator> {
  const log = (o.log ?? silentLogger()).child({ component: 'aws-sim' });
  const account = o.account ?? '123456789012';
  const region = o.region ?? 'us-west-2';
  if (!/^[0-9]{12}$/.test(account)) throw new Error(`account ${account}: must be 12 digits`);
  const sim = new AwsSim({ seed: o.seed, account, region, partition: 'aws', log });
  const control = controlOf(sim, account, region);
  const server = await startServer(sim, controlRoutes(sim, control), o.port, log, o.host);
  log.info(
    { url: server.url, account, region },
    `AWS simulator listening on ${server.url}; admin key pair ${ADMIN_ACCESS_KEY_ID} / ${ADMIN_SECRET_ACCESS_KEY} (caller ${sim.adminCaller.arn})`,
  );
  return { url: server.url, control, close: server.close };
}
