// Leader election through a coordination.k8s.io/v1 Lease, with client-go's semantics: a candidate takes the lease
// only when its holder has not renewed it for leaseDuration as observed on the candidate's own clock (so clock
// skew between replicas does not matter), the leader renews every retryPeriod and steps down when it could not
// renew for renewDeadline, and a leader that stops cleanly releases the lease so a successor starts at once.
// Writes use the lease's resourceVersion, so two candidates can never both win the same round.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Lease } from 'kubernetes-types/coordination/v1.js';
import type { KubeClient } from '../kube/client.ts';
import { getOrUndefined, isConflict, isAlreadyExists } from '../kube/client.ts';
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
  const election = new LeaseElection(o, o.identity ?? defaultLeaderIdentity());
  election.start();
  return election;
}

/** What we last saw of the lease, and when (our clock): expiry is judged from observation, not from renewTime. */
interface Observation {
  holder: string;
  renewTime: string;
  rv: string;
  at: number;
}

class LeaseElection implements LeaderElector {
  private readonly path: string;
  private readonly stopCtl = new AbortController();
  private readonly leaderGauge: ((leading: boolean) => void) | undefined;
  private leading: AbortController | undefined;
  private leaderWork: Promise<void> | undefined;
  private observed: Observation | undefined;
  private lastRenew = 0;
  private knownLeader = '';
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly o: LeaderElectionOptions,
    readonly identity: string,
  ) {
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${o.namespace}/leases/${o.name}`;
    this.leaderGauge = o.metrics ? leaderMetrics(o.metrics, o.name) : undefined;
  }

  start(): void {
    this.done = this.loop();
  }

  isLeader(): boolean {
    return this.leading !== undefined;
  }

  async stop(): Promise<void> {
    this.stopCtl.abort();
    await this.done;
    const wasLeader = this.leading !== undefined;
    await this.stepDown();
    if (wasLeader) await this.release();
  }

  private get leaseName(): string {
    return `${this.o.namespace}/${this.o.name}`;
  }

  private leaseBody(prev: Lease | undefined, now: number): Lease {
    const prevHolder = prev?.spec?.holderIdentity ?? '';
    const transitions = Number(prev?.spec?.leaseTransitions ?? 0);
    const taking = prevHolder !== this.identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...(prev?.metadata ?? {}), name: this.o.name, namespace: this.o.namespace },
      spec: {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.max(1, Math.ceil(this.o.leaseDurationMs / 1000)),
        acquireTime: taking ? microTime(now) : (prev?.spec?.acquireTime ?? microTime(now)),
        renewTime: microTime(now),
        leaseTransitions: taking && prev ? transitions + 1 : transitions,
      },
    };
  }

  private async readLease(): Promise<Lease | undefined> {
    return await getOrUndefined<Lease>(this.o.kube, this.path);
  }

  /** No lease yet: create it holding it ourselves; false when another candidate created it first. */
  private async createLease(now: number): Promise<boolean> {
    try {
      await this.o.kube.create(
        `/apis/coordination.k8s.io/v1/namespaces/${this.o.namespace}/leases`,
        this.leaseBody(undefined, now),
      );
    } catch (e) {
      if (isAlreadyExists(e) || isConflict(e)) return false;
      throw e;
    }
    this.observed = { holder: this.identity, renewTime: microTime(now), rv: '', at: now };
    return true;
  }

  /** Notes the lease as read now (restarting its expiry when anything of it changed) and reports a new leader. */
  private observe(lease: Lease, now: number): string {
    const holder: string = lease.spec?.holderIdentity ?? '';
    const renewTime: string = lease.spec?.renewTime ?? '';
    const rv = lease.metadata?.resourceVersion as string;
    const seen = this.observed;
    if (!seen || seen.holder !== holder || seen.renewTime !== renewTime || seen.rv !== rv)
      this.observed = { holder, renewTime, rv, at: now };
    if (holder !== this.knownLeader && holder !== '') this.newLeader(holder);
    return holder;
  }

  private newLeader(holder: string): void {
    this.knownLeader = holder;
    this.o.onNewLeader?.(holder);
  }

  /** One round: true when we hold the lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.o.clock.now();
    const lease = await this.readLease();
    if (!lease) return this.createLease(now);
    const holder = this.observe(lease, now);
    const durationMs = Number(lease.spec?.leaseDurationSeconds ?? this.o.leaseDurationMs / 1000) * 1000;
    if (holder !== '' && holder !== this.identity && now < this.observed!.at + durationMs) return false;
    try {
      const updated = await this.o.kube.update<Lease>(this.path, this.leaseBody(lease, now));
      this.observed = {
        holder: this.identity,
        renewTime: updated.spec?.renewTime as string,
        rv: updated.metadata?.resourceVersion as string,
        at: now,
      };
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
    if (this.knownLeader !== this.identity) this.newLeader(this.identity);
    return true;
  }

  private startLeading(): void {
    this.o.log.info({ identity: this.identity, lease: this.leaseName }, 'became leader');
    this.leading = new AbortController();
    this.leaderGauge?.(true);
    const signal = this.leading.signal;
    this.leaderWork = Promise.resolve()
      .then(() => this.o.onStartedLeading(signal))
      .catch((e: unknown) => this.o.log.error({ err: e }, 'leader work failed'));
  }

  private async stepDown(): Promise<void> {
    if (!this.leading) return;
    const ctl = this.leading;
    this.leading = undefined;
    this.leaderGauge?.(false);
    ctl.abort();
    await this.leaderWork?.catch(() => undefined);
    this.leaderWork = undefined;
  }

  /** One round and what it means for leading: start, or step down when another holds the lease or renewal failed. */
  private async round(): Promise<void> {
    let held = false;
    try {
      held = await this.tryAcquireOrRenew();
    } catch (e) {
      this.o.log.warn({ err: e, lease: this.leaseName }, 'leader election round failed');
    }
    const now = this.o.clock.now();
    const observed = this.observed;
    if (held) {
      this.lastRenew = now;
      if (!this.leading && !this.stopCtl.signal.aborted) this.startLeading();
    } else if (this.leading && observed && observed.holder !== this.identity && observed.holder !== '') {
      this.o.log.warn(
        { identity: this.identity, holder: observed.holder },
        'another replica holds the lease; stepping down',
      );
      await this.stepDown();
    } else if (this.leading && now - this.lastRenew >= this.o.renewDeadlineMs) {
      this.o.log.warn(
        { identity: this.identity },
        'could not renew the lease within the renew deadline; stepping down',
      );
      await this.stepDown();
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopCtl.signal.aborted) {
      await this.round();
      await this.o.clock.sleep(this.o.retryPeriodMs, this.stopCtl.signal);
    }
  }

  /** Release: an empty holder lets the next candidate take over without waiting for expiry. */
  private async release(): Promise<void> {
    try {
      const lease = await this.o.kube.get<Lease>(this.path);
      if (lease.spec?.holderIdentity === this.identity) {
        lease.spec.holderIdentity = '';
        lease.spec.leaseDurationSeconds = 1;
        lease.spec.renewTime = microTime(this.o.clock.now());
        await this.o.kube.update(this.path, lease);
      }
    } catch (e) {
      this.o.log.warn({ err: e }, 'could not release the lease');
    }
  }
}
