// Flags of the association controller (docs/associations.md#what-the-controller-does, docs/migrate-from-ack.md, docs/associations.md#how-verified-is-obtained) -> one validated, frozen config. The
// `lanyard controller` / `lanyard run` flag parser (src/config/controller.ts) collects the raw values and passes them
// here, keyed by the camelCase flag name.
import { CliError, EXIT } from '../core/exit.ts';
import { parseDuration } from '../core/duration.ts';

export type ObserveAck = 'auto' | 'true' | 'false';
/** docs/adr/0202: remove an association no IdentityPolicy allows from EKS, or only report it. */
export type DeniedAssociationAction = 'delete' | 'preview';

export interface AssociationConfig {
  /** EKS cluster of associations without spec.clusterName; only its associations give identities to local Pods. */
  clusterName: string;
  workers: number;
  resyncMs: number;
  rolePropagationTimeoutMs: number;
  observeAck: ObserveAck;
  probe: boolean;
  probeImage: string;
  deniedAssociationAction: DeniedAssociationAction;
}

const ASSOCIATION_DEFAULTS = {
  workers: 16,
  resync: '10m',
  rolePropagationTimeout: '2m',
  observeAck: 'auto' as ObserveAck,
  probe: true,
  probeImage: 'registry.k8s.io/pause:3.10',
  deniedAssociationAction: 'delete' as DeniedAssociationAction,
};

const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;

function usage(message: string): never {
  throw new CliError(message, EXIT.usage);
}

function duration(flag: string, v: unknown, fallback: string): number {
  const text = v === undefined ? fallback : String(v);
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0)
    usage(`invalid ${flag} "${text}": use a positive duration such as 30s, 2m or 1h`);
  return ms;
}

/** Validates commander's parsed options (camelCase keys); throws a usage CliError naming the flag. */
export function associationConfigFrom(opts: Record<string, unknown>): Readonly<AssociationConfig> {
  const clusterName = opts.clusterName === undefined ? '' : String(opts.clusterName);
  if (!clusterName)
    usage('--cluster-name is required: the EKS cluster whose associations this controller manages');
  if (!CLUSTER_NAME.test(clusterName)) {
    usage(`invalid --cluster-name "${clusterName}": must match ^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$`);
  }
  const workersText = String(opts.associationWorkers ?? ASSOCIATION_DEFAULTS.workers);
  const workers = Number(workersText);
  if (!/^\d+$/.test(workersText) || workers < 1 || workers > 256) {
    usage(`invalid --association-workers "${workersText}": use an integer from 1 to 256`);
  }
  const observeAck = String(opts.observeAckAssociations ?? ASSOCIATION_DEFAULTS.observeAck);
  if (observeAck !== 'auto' && observeAck !== 'true' && observeAck !== 'false') {
    usage(`invalid --observe-ack-associations "${observeAck}": use auto, true or false`);
  }
  const probeText = String(opts.associationProbe ?? ASSOCIATION_DEFAULTS.probe);
  if (probeText !== 'true' && probeText !== 'false')
    usage(`invalid --association-probe "${probeText}": use true or false`);
  const probeImage = String(opts.probeImage ?? ASSOCIATION_DEFAULTS.probeImage);
  if (!probeImage || /\s/.test(probeImage))
    usage(`invalid --probe-image "${probeImage}": must be an image reference`);
  const denied = String(opts.deniedAssociationAction ?? ASSOCIATION_DEFAULTS.deniedAssociationAction);
  if (denied !== 'delete' && denied !== 'preview')
    usage(`invalid --denied-association-action "${denied}": use delete or preview`);
  return Object.freeze({
    clusterName,
    workers,
    resyncMs: duration('--association-resync', opts.associationResync, ASSOCIATION_DEFAULTS.resync),
    rolePropagationTimeoutMs: duration(
      '--role-propagation-timeout',
      opts.rolePropagationTimeout,
      ASSOCIATION_DEFAULTS.rolePropagationTimeout,
    ),
    observeAck,
    probe: probeText === 'true',
    probeImage,
    deniedAssociationAction: denied,
  });
}
