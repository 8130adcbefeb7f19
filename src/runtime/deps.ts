// The I/O a capability is given, explicitly: no module-level singletons (docs/adr/1011-import-boundaries.md).
import type { Registry } from 'prom-client';
import type { KubeClient } from '../kube/client.ts';
import type { InformerFactory } from '../kube/cache.ts';
import type { Logger } from './log.ts';
import type { Clock } from './clock.ts';

export interface Deps {
  kube: KubeClient;
  log: Logger;
  metrics: Registry;
  clock: Clock;
  /**
   * The process's shared informer cache (src/kube/cache.ts): controllers take their views from it, so each resource
   * selection is watched once per process. Absent when a component is started alone; it then makes its own.
   */
  cache?: InformerFactory;
}

/** A started component; stop() releases watches, timers and servers. */
export interface Running {
  stop(): Promise<void>;
}
