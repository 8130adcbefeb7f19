// Kubernetes Events (events.k8s.io/v1) for what a user must see. Repeats of the same event on the same object
// become an Event series (count and lastObservedTime) instead of new objects.
import { randomBytes } from 'node:crypto';
import type { KubeClient, KubeObject } from './client.ts';
import type { Logger } from '../runtime/log.ts';
import type { ObjectMeta } from '../core/kube-object.ts';

export interface EventRecorder {
  normal(regarding: KubeObject, reason: string, note: string, action?: string): void;
  warning(regarding: KubeObject, reason: string, note: string, action?: string): void;
}

/** Event writes in flight at once, per recorder (docs/identities.md, "Cost"). */
const MAX_IN_FLIGHT = 4;
/** Event writes waiting beyond that; more are dropped (logged once per burst), as client-go's broadcaster drops. */
const MAX_QUEUED = 20_000;

/**
 * Runs writes a few at a time: a burst (5,000 Pods turning `missing` at once) otherwise puts thousands of writes on the
 * API server together, slowing every other client's requests and this process's own, which share its connections
 * (bench/identities.bench.ts recorded the association create's round trip). Beyond `maxQueued` waiting, writes are
 * dropped and `onOverflow` is called once per burst.
 */
function writeQueue(
  maxInFlight: number,
  maxQueued: number,
  onOverflow: (queued: number) => void,
): (write: () => Promise<void>) => void {
  const waiting: (() => Promise<void>)[] = [];
  let inFlight = 0;
  let dropping = false;
  const pump = () => {
    while (inFlight < maxInFlight && waiting.length > 0) {
      const next = waiting.shift()!;
      inFlight++;
      void next().finally(() => {
        inFlight--;
        pump();
      });
    }
    if (waiting.length === 0) dropping = false;
  };
  return (write) => {
    if (waiting.length >= maxQueued) {
      if (!dropping) onOverflow(waiting.length);
      dropping = true;
      return;
    }
    waiting.push(write);
    pump();
  };
}

/**
 * A controller's recorder: the one its caller passed in (tests, one process's shared recorder), else one of its own
 * that reports as `reportingController` and stamps Events with the controller's clock.
 */
export function eventRecorderOf(
  deps: { kube: KubeClient; log: Logger; clock: { now(): number }; events?: EventRecorder },
  reportingController: string,
): EventRecorder {
  return (
    deps.events ??
    createEventRecorder({
      kube: deps.kube,
      reportingController,
      log: deps.log,
      now: () => new Date(deps.clock.now()),
    })
  );
}

export function createEventRecorder(o: {
  kube: KubeClient;
  reportingController: string;
  reportingInstance?: string;
  log: Logger;
  now?: () => Date;
  /** Defaults MAX_IN_FLIGHT / MAX_QUEUED. */
  maxInFlight?: number;
  maxQueued?: number;
}): EventRecorder {
  const series = new Map<string, { name: string; namespace: string; count: number; first: string }>();
  const enqueue = writeQueue(o.maxInFlight ?? MAX_IN_FLIGHT, o.maxQueued ?? MAX_QUEUED, (queued) =>
    o.log.warn({ queued }, 'too many events waiting to be written; dropping'),
  );
  const now = o.now ?? (() => new Date());
  const micro = (d: Date) => d.toISOString().replace(/Z$/, '000Z');

  const emit = (
    type: 'Normal' | 'Warning',
    regarding: KubeObject,
    reason: string,
    note: string,
    action?: string,
  ) => {
    const meta: ObjectMeta = regarding?.metadata ?? {};
    const namespace = meta.namespace || 'default';
    const key = `${regarding.apiVersion}/${regarding.kind}/${namespace}/${meta.name}/${meta.uid}/${type}/${reason}/${note}`;
    const t = micro(now());
    const prev = series.get(key);
    const ref = {
      apiVersion: regarding.apiVersion,
      kind: regarding.kind,
      name: meta.name,
      namespace: meta.namespace,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
    };
    const send = async () => {
      if (prev) {
        prev.count += 1;
        await o.kube.patch(
          `/apis/events.k8s.io/v1/namespaces/${prev.namespace}/events/${prev.name}`,
          { series: { count: prev.count, lastObservedTime: t } },
          'application/merge-patch+json',
        );
        return;
      }
      const name = `${meta.name}.${randomBytes(8).toString('hex')}`;
      await o.kube.create(`/apis/events.k8s.io/v1/namespaces/${namespace}/events`, {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name, namespace },
        eventTime: t,
        type,
        reason,
        note: note.slice(0, 1024),
        action: action ?? reason,
        regarding: ref,
        reportingController: o.reportingController,
        reportingInstance: o.reportingInstance ?? `${o.reportingController}-${process.pid}`,
      });
      series.set(key, { name, namespace, count: 1, first: t });
      if (series.size > 10_000) series.delete(series.keys().next().value as string);
    };
    enqueue(() =>
      send().catch((e: unknown) => {
        series.delete(key);
        o.log.debug({ err: e, reason }, 'could not record event');
      }),
    );
  };
  return {
    normal: (r, reason, note, action) => emit('Normal', r, reason, note, action),
    warning: (r, reason, note, action) => emit('Warning', r, reason, note, action),
  };
}
