// A control plane with a real node, as `lanyard up` and the node tests both start it (docs/adr/0710, 0714): the
// set-up script, the image set, the network namespace with the control plane in it, the AWS simulator where Pods
// reach it, and the node whose Pods find the simulated EKS Pod Identity Agent at its usual address. One place, so
// the sandbox and the tests run the same node (and share one containerd image template).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from './paths.ts';
import { startControlPlane, type ControlPlane } from './control-plane.ts';
import {
  createNodeNetwork,
  removeStaleNodeRuns,
  startNode,
  type NodeImage,
  type NodeNetwork,
  type RunningNode,
} from './node.ts';
import { startAwsSimulator, type AwsSimulator, type AwsSimulatorOptions } from './aws-sim/index.ts';

/** The images scripts/build-node-images.sh builds: its manifest (name and OCI archive of each). */
export interface NodeImageManifest {
  pause: NodeImage;
  lanyard: NodeImage;
  awsWhoami: NodeImage;
}

/**
 * The stable name of the aws-whoami image, which deploy/samples use (its own name carries a hash of its inputs, so
 * it changes with them). Pods use it with `imagePullPolicy: Never`: it exists only in the node's containerd.
 */
export const SAMPLE_WHOAMI_IMAGE = 'lanyard.local/aws-whoami:sandbox';

export const ENSURE_NODE_SCRIPT = path.join(PACKAGE_ROOT, 'scripts', 'ensure-node.sh');

/** The node's kube-controller-manager controllers; node-lifecycle-controller lifts the not-ready taint of a new node. */
export const NODE_CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'job-controller',
  'endpointslice-controller',
  'node-lifecycle-controller',
];

/**
 * Why the node cannot run on this machine, before trying anything; undefined when it may. The node creates network
 * namespaces, iptables rules and mounts, and runs containerd and the kubelet: Linux and root.
 */
export function nodeUnavailable(machine: { platform: string; uid: number | undefined }): string | undefined {
  if (machine.platform !== 'linux')
    return `the node runs on Linux only (this machine is ${machine.platform})`;
  if (machine.uid !== 0)
    return `the node needs root for its network namespace, containerd and the kubelet (running as uid ${machine.uid})`;
  return undefined;
}

/**
 * Runs scripts/ensure-node.sh (Debian packages, kubelet and the other binaries, the images; each only when missing)
 * and returns the image manifest it names on its last line. Its progress lines go to `onLine` as they come; on
 * failure the error carries its last lines. An aborted signal stops it.
 */
export async function ensureNode(
  onLine: (line: string) => void,
  signal?: AbortSignal,
): Promise<NodeImageManifest> {
  if (!fs.existsSync(ENSURE_NODE_SCRIPT))
    throw new Error(`${ENSURE_NODE_SCRIPT} is missing (the node needs a source checkout)`);
  const child = spawn('bash', [ENSURE_NODE_SCRIPT], { cwd: PACKAGE_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const onAbort = () => child.kill('SIGTERM');
  signal?.addEventListener('abort', onAbort, { once: true });
  let stdout = '';
  const tail: string[] = [];
  let partial = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => {
    const lines = (partial + c.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines.filter((x) => x.trim())) {
      tail.push(l);
      if (tail.length > 8) tail.shift();
      onLine(l);
    }
  });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c) => resolve(c));
    });
    if (code !== 0)
      throw new Error(
        `scripts/ensure-node.sh exited with code ${code}${tail.length ? `:\n${tail.join('\n')}` : ''}`,
      );
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const manifest = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(fs.readFileSync(manifest, 'utf8')) as NodeImageManifest;
}

/** The images a node runs: the same set for the sandbox and the tests, so both use one containerd template. */
export function nodeImages(m: NodeImageManifest): NodeImage[] {
  return [m.pause, m.lanyard, { ...m.awsWhoami, tags: [SAMPLE_WHOAMI_IMAGE] }];
}

export interface NodeControlPlane {
  network: NodeNetwork;
  cp: ControlPlane;
  /** Stops the control plane, removes its directory and the network. */
  stop(): Promise<void>;
}

/**
 * Removes what killed runs left behind (docs/adr/0712), makes the node's network namespace and starts the control
 * plane in it. On failure nothing of it is left.
 */
export async function startNodeControlPlane(
  o: { log?: (l: string) => void; controllers?: string[] } = {},
): Promise<NodeControlPlane> {
  removeStaleNodeRuns(o.log);
  const network = createNodeNetwork();
  let cp: ControlPlane;
  try {
    cp = await startControlPlane({
      network: { netns: network.netns, address: network.nodeIp },
      controllers: [...NODE_CONTROLLERS, ...(o.controllers ?? [])],
      log: o.log,
    });
  } catch (e) {
    network.remove();
    throw e;
  }
  return {
    network,
    cp,
    stop: async () => {
      await cp.stop();
      fs.rmSync(cp.dir, { recursive: true, force: true });
      network.remove();
    },
  };
}

/** The AWS simulator on the host's end of the node's link, where Pods (and the control plane) reach it. */
export async function startSimulatorForNode(
  network: NodeNetwork,
  o: Omit<AwsSimulatorOptions, 'host' | 'port'>,
): Promise<AwsSimulator> {
  return await startAwsSimulator({ ...o, port: 0, host: network.hostIp });
}

/** The node, with the images imported and the simulator's node-agent endpoint at 169.254.170.23 for its Pods. */
export async function startNodeWithImages(o: {
  ncp: NodeControlPlane;
  images: NodeImageManifest;
  simulatorUrl: string;
  log?: (l: string) => void;
}): Promise<RunningNode> {
  return await startNode({
    controlPlane: o.ncp.cp,
    network: o.ncp.network,
    images: nodeImages(o.images),
    pauseImage: o.images.pause.name,
    podIdentityAgent: { ip: o.ncp.network.hostIp, port: Number(new URL(o.simulatorUrl).port) },
    log: o.log,
  });
}
