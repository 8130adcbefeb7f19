// Leader election through a coordination.k8s.io/v1 Lease, with client-go's semantics: a candidate takes the lease
// only when its holder has not renewed it for leaseDuration as observed on the candidate's own clock (so clock
// skew between replicas does not matter), the leader renews every retryPeriod and steps down when it could not
// renew for renewDeadline, and a leader that stops cleanly releases the lease so a successor starts at once.
// Writes use the lease's resourceVersion, so two candidates can never both win the same round.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Json, KubeClient } from '../kube/client.ts';
import { isConflict, isNotFound, isAlreadyExists } from '../kube/client.ts';
import type { Clock } from './clock.ts';
import type { Logger } from './log.ts';
import type { Running } from './deps.ts';
import type { Registry } from 'prom-client';
import { leaderMetrics } from './controller-metrics.ts';

export interface LeaderElectionOptions {
  kube: KubeClient;
  log: Logger;
  clock: Clock;
  namespace: string;
  name: string;
  /** Unique per process; defaults to `<hostname>_<random>`. */
  identity?: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Called when this process becomes leader; the signal aborts when it stops leading. */
  onStartedLeading: (signal: AbortSignal) => Promise<void> | void;
  onNewLeader?: (identity: string) => void;
  /** Where to report `leader_election_master_status{name}` (docs/observability.md); none: no metric. */
  metrics?: Registry;
}

export interface LeaderElector extends Running {
  readonly identity: string;
  isLeader(): boolean;
}

function defaultLeaderIdentity(): string {
  return `${os.hostname()}_${randomBytes(4).toString('hex')}`;
}

const microTime = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');

export function startLeaderElection(o: LeaderElectionOptions): LeaderElector {
  const identity = o.identity ?? defaultLeaderIdentity();
  const path = `/apis/coordination.k8s.io/v1/namespaces/${o.namespace}/leases/${o.name}`;
  const stopCtl = new AbortController();
  const leaderGauge = o.metrics ? leaderMetrics(o.metrics, o.name) : undefined;
  let leading: AbortController | undefined;
  let leaderWork: Promise<void> | undefined;
  // What we last saw of the lease, and when (our clock): expiry is judged from observation, not from renewTime.
  let observed: { holder: string; renewTime: string; rv: string } | undefined;
  let observedAt = 0;
  let lastRenew = 0;
  let knownLeader = '';

  const leaseBody = (prev: Json | undefined, now: number): Json => {
    const prevHolder = prev?.spec?.holderIdentity ?? '';
    const transitions = Number(prev?.spec?.leaseTransitions ?? 0);
    const taking = prevHolder !== identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...(prev?.metadata ?? {}), name: o.name, namespace: o.namespace },
      spec: {
        holderIdentity: identity,
        leaseDurationSeconds: Math.max(1, Math.ceil(o.leaseDurationMs / 1000)),
        acquireTime: taking ? microTime(now) : (prev?.spec?.acquireTime ?? microTime(now)),
        renewTime: microTime(now),
        leaseTransitions: taking && prev ? transitions + 1 : transitions,
      },
    };
  };

  /** One round: true when we hold the lease afterwards. */
  const tryAcquireOrRenew = async (): Promise<boolean> => {
    const now = o.clock.now();
    let lease: Json | undefined;
    try {
      lease = await o.kube.get(path);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    if (!lease) {
      try {
        await o.kube.create(
          `/apis/coordination.k8s.io/v1/namespaces/${o.namespace}/leases`,
          leaseBody(undefined, now),
        );
      } catch (e) {
        if (isAlreadyExists(e) || isConflict(e)) return false;
        throw e;
      }
      observed = { holder: identity, renewTime: microTime(now), rv: '' };
      observedAt = now;
      return true;
    }
    const holder: string = lease.spec?.holderIdentity ?? '';
    const renewTime: string = lease.spec?.renewTime ?? '';
    if (
      !observed ||
      observed.holder !== holder ||
      observed.renewTime !== renewTime ||
      observed.rv !== lease.metadata?.resourceVersion
    ) {
      observed = { holder, renewTime, rv: lease.metadata?.resourceVersion };
      observedAt = now;
    }
    if (holder !== knownLeader && holder !== '') {
      knownLeader = holder;
      o.onNewLeader?.(holder);
    }
    const durationMs = Number(lease.spec?.leaseDurationSeconds ?? o.leaseDurationMs / 1000) * 1000;
    if (holder !== '' && holder !== identity && now < observedAt + durationMs) return false;
    try {
      const updated = await o.kube.update(path, leaseBody(lease, now));
      observed = {
        holder: identity,
        renewTime: updated.spec?.renewTime,
        rv: updated.metadata?.resourceVersion,
      };
      observedAt = now;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
    if (knownLeader !== identity) {
      knownLeader = identity;
      o.onNewLeader?.(identity);
    }
    return true;
  };

  const stepDown = async () => {
    if (!leading) return;
    const ctl = leading;
    leading = undefined;
    leaderGauge?.(false);
    ctl.abort();
    await leaderWork?.catch(() => undefined);
    leaderWork = undefined;
  };

  const loop = async () => {
    while (!stopCtl.signal.aborted) {
      let held = false;
      try {
        held = await tryAcquireOrRenew();
      } catch (e) {
        o.log.warn({ err: e, lease: `${o.namespace}/${o.name}` }, 'leader election round failed');
      }
      const now = o.clock.now();
      if (held) {
        lastRenew = now;
        if (!leading && !stopCtl.signal.aborted) {
          o.log.info({ identity, lease: `${o.namespace}/${o.name}` }, 'became leader');
          leading = new AbortController();
          leaderGauge?.(true);
          const signal = leading.signal;
          leaderWork = Promise.resolve()
            .then(() => o.onStartedLeading(signal))
            .catch((e: unknown) => o.log.error({ err: e }, 'leader work failed'));
        }
      } else if (leading && observed && observed.holder !== identity && observed.holder !== '') {
        o.log.warn({ identity, holder: observed.holder }, 'another replica holds the lease; stepping down');
        await stepDown();
      } else if (leading && now - lastRenew >= o.renewDeadlineMs) {
        o.log.warn({ identity }, 'could not renew the lease within the renew deadline; stepping down');
        await stepDown();
      }
      await o.clock.sleep(o.retryPeriodMs, stopCtl.signal);
    }
  };
  const done = loop();

  return {
    identity,
    isLeader: () => leading !== undefined,
    async stop() {
      stopCtl.abort();
      await done;
      const wasLeader = leading !== undefined;
      await stepDown();
      if (!wasLeader) return;
      // Release: an empty holder lets the next candidate take over without waiting for expiry.
      try {
        const lease = await o.kube.get(path);
        if (lease.spec?.holderIdentity === identity) {
          lease.spec.holderIdentity = '';
          lease.spec.leaseDurationSeconds = 1;
          lease.spec.renewTime = microTime(o.clock.now());
          await o.kube.update(path, lease);
        }
      } catch (e) {
        o.log.warn({ err: e }, 'could not release the lease');
      }
    },
  };
}
