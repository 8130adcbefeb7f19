// Vitest global setup of the `node` project (docs/adr/0710): a control plane and a real node (containerd,
// kubelet, kube-scheduler, kube-proxy) in a network namespace of their own, the images the tests run
// imported into containerd, and the AWS simulator on the host's end of the node's link, where Pods reach it.
// Everything is set up by the project's own scripts when missing (scripts/ensure-node.sh).
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createKubeClient } from '../../src/kube/client.ts';
import { applyCrds } from '../../src/kube/apply.ts';
import { CRD_DIR } from '../../src/sandbox/paths.ts';
import { binaryDir, helmBinary } from '../../src/sandbox/binaries.ts';
import type { RunningNode } from '../../src/sandbox/node.ts';
import type { AwsSimulator } from '../../src/sandbox/aws-sim/index.ts';
import {
  ensureNode,
  startNodeControlPlane,
  startNodeWithImages,
  startSimulatorForNode,
  type NodeControlPlane,
} from '../../src/sandbox/node-cluster.ts';

export const NODE_CLUSTER = 'lanyard-node-test';

export interface SharedNode {
  server: string;
  issuer: string;
  caPem: string;
  adminKubeconfig: string;
  nodeName: string;
  podLogsDir: string;
  /** The host's end of the node link; Pods reach servers listening here. */
  hostIp: string;
  simulatorUrl: string;
  region: string;
  images: { lanyard: string; awsWhoami: string; pause: string };
  helm: string;
  kubectl: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    node: SharedNode;
  }
}

/**
 * Starts the node cluster: the set-up scripts, a control plane and a real node in a network namespace of their
 * own, the AWS simulator on the host's end of the link. Used by the `node` project's global setup and by
 * bench/node-first-call.bench.ts.
 */
export async function startNodeCluster(
  say: (l: string) => void,
): Promise<{ shared: SharedNode; teardown: () => Promise<void> }> {
  const t0 = Date.now();
  const images = await ensureNode((l) => say(l));
  say(`set-up checked in ${((Date.now() - t0) / 1000).toFixed(1)}s`);

  let ncp: NodeControlPlane | undefined;
  let node: RunningNode | undefined;
  let sim: AwsSimulator | undefined;
  const teardown = async () => {
    await node?.stop();
    await ncp?.stop();
    await sim?.close();
  };
  try {
    // Runs killed mid-way leave their network, processes and directories behind: removed first (docs/adr/0711).
    ncp = await startNodeControlPlane({ log: (l) => say(l) });
    const admin = await createKubeClient({ kubeconfig: ncp.cp.adminKubeconfig });
    await applyCrds(admin, CRD_DIR);
    admin.close();
    sim = await startSimulatorForNode(ncp.network, { seed: 7 });
    sim.control.registerCluster({ name: NODE_CLUSTER, issuer: ncp.cp.issuer, caBundle: ncp.cp.caPem });
    node = await startNodeWithImages({ ncp, images, simulatorUrl: sim.url, log: (l) => say(l) });
    say(
      `cluster with node ${node.name} ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (${ncp.cp.dir}, ${node.dir})`,
    );
  } catch (e) {
    await teardown();
    throw e;
  }
  const { cp, network } = ncp;
  return {
    shared: {
      server: cp.server,
      issuer: cp.issuer,
      caPem: cp.caPem,
      adminKubeconfig: cp.adminKubeconfig,
      nodeName: node.name,
      podLogsDir: node.podLogsDir,
      hostIp: network.hostIp,
      simulatorUrl: sim.url,
      region: sim.control.region,
      images: { lanyard: images.lanyard.name, awsWhoami: images.awsWhoami.name, pause: images.pause.name },
      helm: helmBinary(),
      kubectl: path.join(binaryDir(), 'kubectl'),
    },
    teardown,
  };
}

export default async function setup(project: TestProject) {
  const { shared, teardown } = await startNodeCluster((l) => process.stderr.write(`[node] ${l}\n`));
  project.provide('node', shared);
  return teardown;
}
