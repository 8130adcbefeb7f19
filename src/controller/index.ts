// `lanyard controller`: every reconciler behind one Lease (README.md, docs/adr/0303-controller-process-and-verify-cli.md). Only the leader runs the verifier
// and the association controller, so two replicas never reconcile at once; a standby takes over when the lease
// lapses, and re-derives all work from the API server (nothing lives only in memory).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ControllerConfig } from '../config/controller.ts';
import type { Deps, Running } from '../runtime/deps.ts';
import { startLeaderElection, type LeaderElector } from '../runtime/leader.ts';
import { createAwsClients, type AwsClients, type AwsCredentials } from '../aws/index.ts';
import {
  createAssociationLookup,
  startAssociationController,
  type AssociationIndex,
} from '../associations/index.ts';
import { startVerifier, type Verifier } from '../verification/verifier.ts';
import { startIdentityReconciler } from '../identities/reconciler.ts';
import { startPromotionController } from '../promotions/controller.ts';
import { startProjectsHousekeeping } from '../projects/housekeeping.ts';
import { certificateOptions, startCertificateReconciler } from '../webhook/certificates.ts';
import { InformerFactory } from '../kube/cache.ts';
import { errorMessage } from '../core/errors.ts';

export interface ControllerOptions {
  /** Static AWS credentials (tests, sandbox); default: the SDK's default chain. */
  awsCredentials?: AwsCredentials;
  /** The association index to share (with the webhook under `lanyard run`); else the controller starts its own. */
  lookup?: AssociationIndex & Running;
  /** Serve /metrics, /healthz, /readyz on config.metricsPort (off under `lanyard run`, whose webhook serves them). */
  serveMetrics?: boolean;
  /** Run the self-managed certificate reconciler when --tls-mode=self-managed (off under `lanyard run`: the webhook runs it). */
  certificates?: boolean;
}

export interface RunningController extends Running {
  lookup: AssociationIndex;
  isLeader(): boolean;
  /** Leader: its components synced; standby: true (it is ready to take over). */
  ready(): boolean;
  metricsPort?: number;
}

interface Leading {
  verifier: Verifier;
  parts: Running[];
}

/**
 * Starts the leader's reconcilers, each pushed to `parts` as soon as it runs (so a failure part-way stops those already
 * started); returns the verifier, whose sync is part of readiness.
 */
async function startComponents(
  c: {
    deps: Deps;
    config: ControllerConfig;
    o: ControllerOptions;
    lookup: AssociationIndex & Running;
    awsAssociations: AwsClients;
    awsVerify: AwsClients;
  },
  parts: Running[],
): Promise<Verifier> {
  const { deps, config, lookup } = c;
  // Every running Pod's identity against what is declared now (docs/identities.md); its counts feed Ready.
  const identities = await startIdentityReconciler({ ...deps, associations: lookup }, config);
  parts.push(identities);
  const associations = await startAssociationController(
    { ...deps, aws: c.awsAssociations, lookup, podsWithoutIdentity: identities },
    config.associations,
  );
  parts.push(associations);
  const verifier = await startVerifier(
    {
      ...deps,
      aws: c.awsVerify,
      associations: lookup,
      recordVerification: (v) => associations.recordVerification(v),
    },
    config,
  );
  parts.push(verifier);
  parts.push(await startPromotionController(deps, config.promotions));
  parts.push(await startProjectsHousekeeping(deps));
  if (config.tlsMode === 'self-managed' && c.o.certificates !== false) {
    parts.push(startCertificateReconciler(deps, certificateOptions(config)));
  }
  return verifier;
}

/** Serves /metrics, /healthz and /readyz (docs/observability.md). */
async function serveHealth(
  deps: Deps,
  port: number,
  ready: () => boolean,
  isLeader: () => boolean,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      void deps.metrics.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': deps.metrics.contentType });
          res.end(text);
        },
        (e: unknown) => {
          deps.log.error({ err: e }, 'metrics request failed');
          res.writeHead(500);
          res.end(errorMessage(e));
        },
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok' }));
    } else if (path === '/readyz') {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ready: ok, leader: isLeader() }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
  return server;
}

/** Runs `lead` while this replica holds the Lease (--leader-elect), else at once until stopped. */
function runLead(
  deps: Deps,
  config: ControllerConfig,
  lead: (signal: AbortSignal) => Promise<void>,
): { isLeader(): boolean; stop(): Promise<void> } {
  const log = deps.log;
  if (!config.leaderElect) {
    const ctl = new AbortController();
    const done = lead(ctl.signal).catch((e: unknown) => log.error({ err: e }, 'controller failed'));
    return {
      isLeader: () => true,
      stop: async () => {
        ctl.abort();
        await done;
      },
    };
  }
  const elector: LeaderElector = startLeaderElection({
    kube: deps.kube,
    log,
    clock: deps.clock,
    namespace: config.leaseNamespace,
    name: config.leaseName,
    identity: config.leaderElectIdentity || undefined,
    leaseDurationMs: config.leaseDurationMs,
    renewDeadlineMs: config.renewDeadlineMs,
    retryPeriodMs: config.retryPeriodMs,
    onStartedLeading: lead,
    onNewLeader: (id) => log.info({ leader: id }, 'leader observed'),
    metrics: deps.metrics,
  });
  return { isLeader: () => elector.isLeader(), stop: () => elector.stop() };
}

export async function startController(
  deps: Deps,
  config: ControllerConfig,
  o: ControllerOptions = {},
): Promise<RunningController> {
  const log = deps.log;
  const awsOptions = {
    region: config.awsRegion,
    endpointUrl: config.awsEndpointUrl || undefined,
    credentials: o.awsCredentials,
    metrics: deps.metrics,
    log,
  };
  const awsAssociations: AwsClients = createAwsClients(awsOptions);
  // The verifier retries with its own short backoff (docs/verified-start.md#controller-flags); SDK retries would only
  // add latency. One attempt waits --verify-request-timeout (5 s) for an answer: no answer is an outage (docs/adr/0309).
  const awsVerify: AwsClients = createAwsClients({
    ...awsOptions,
    maxAttempts: 1,
    requestTimeoutMs: config.verifyRequestTimeoutMs,
  });
  // One shared cache for every reconciler of the process (docs/adr/1000-shared-informer-cache-and-reconcilers.md); a
  // watch ends with its last view, so a replica that stops leading stops watching.
  const ownCache = !deps.cache;
  const cache =
    deps.cache ??
    new InformerFactory({
      client: deps.kube,
      onError: (sel, e) => log.warn({ err: e, path: sel.path }, 'watch failed; retrying'),
    });
  deps = { ...deps, cache };
  const ownLookup = !o.lookup;
  const lookup =
    o.lookup ??
    createAssociationLookup(deps, {
      clusterName: config.clusterName,
      observeAck: config.associations.observeAck,
    });
  let leading: Leading | undefined;

  const lead = async (signal: AbortSignal) => {
    const parts: Running[] = [];
    try {
      const verifier = await startComponents({ deps, config, o, lookup, awsAssociations, awsVerify }, parts);
      leading = { verifier, parts };
      log.info('controller components started');
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      leading = undefined;
      for (const p of parts.reverse())
        await p.stop().catch((e: unknown) => log.warn({ err: e }, 'component stop failed'));
    }
  };

  const leadership = runLead(deps, config, lead);
  const isLeader = () => leadership.isLeader();
  const ready = () => (isLeader() ? !!leading && leading.verifier.synced() && lookup.synced() : true);

  const server =
    o.serveMetrics !== false && config.metricsPort > 0
      ? await serveHealth(deps, config.metricsPort, ready, isLeader)
      : undefined;

  return {
    lookup,
    isLeader,
    ready,
    metricsPort: server ? (server.address() as AddressInfo).port : undefined,
    async stop() {
      await leadership.stop();
      if (ownLookup) await (lookup as AssociationIndex & Running).stop();
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
      awsAssociations.destroy();
      awsVerify.destroy();
      if (ownCache) cache.stop();
    },
  };
}
