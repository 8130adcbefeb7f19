// Vitest global setup of the `node` project (docs/adr/0710): a control plane and a real node (containerd,
// kubelet, kube-scheduler, kube-proxy) in a network namespace of their own, the images the tests run
// imported into containerd, and the AWS simulator on the host's end of the node's link, where Pods reach it.
// Everything is set up by the project's own scripts when missing (scripts/ensure-node.sh).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createKubeClient } from '../../src/kube/client.ts';
import { applyCrds } from '../../src/kube/apply.ts';
import { CRD_DIR, PACKAGE_ROOT } from '../../src/sandbox/paths.ts';
import { binaryDir, helmBinary } from '../../src/sandbox/binaries.ts';
import { startControlPlane, type ControlPlane } from '../../src/sandbox/control-plane.ts';
import { createNodeNetwork, removeStaleNodeRuns, startNode, type NodeNetwork, type RunningNode } from '../../src/sandbox/node.ts';
import { startAwsSimulator, type AwsSimulator } from '../../src/sandbox/aws-sim/index.ts';

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

interface ImageManifest {
  pause: { name: string; archive: string };
  lanyard: { name: string; archive: string };
  awsWhoami: { name: string; archive: string };
}

/**
 * Starts the node cluster: the set-up scripts, a control plane and a real node in a network namespace of their
 * own, the AWS simulator on the host's end of the link. Used by the `node` project's global setup and by
 * bench/node-first-call.bench.ts.
 */
export async function startNodeCluster(say: (l: string) => void): Promise<{ shared: SharedNode; teardown: () => Promise<void> }> {
  const t0 = Date.now();
  const out = execFileSync('bash', [path.join(PACKAGE_ROOT, 'scripts', 'ensure-node.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const images = JSON.parse(fs.readFileSync(out.trim().split('\n').at(-1)!, 'utf8')) as ImageManifest;
  say(`set-up checked in ${((Date.now() - t0) / 1000).toFixed(1)}s`);

  let network: NodeNetwork | undefined;
  let cp: ControlPlane | undefined;
  let node: RunningNode | undefined;
  let sim: AwsSimulator | undefined;
  const teardown = async () => {
    await node?.stop();
    await cp?.stop();
    if (cp) fs.rmSync(cp.dir, { recursive: true, force: true });
    network?.remove();
    await sim?.close();
  };
  try {
    // Runs killed mid-way leave their network, processes and directories behind (docs/adr/0711).
    removeStaleNodeRuns((l) => say(l));
    network = createNodeNetwork();
    cp = await startControlPlane({
      network: { netns: network.netns, address: network.nodeIp },
      // node-lifecycle-controller lifts the not-ready taint the kubelet registers its node with.
      controllers: ['deployment-controller', 'replicaset-controller', 'job-controller', 'endpointslice-controller',
        'node-lifecycle-controller'],
      log: (l) => say(l),
    });
    const admin = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
    await applyCrds(admin, CRD_DIR);
    admin.close();
    sim = await startAwsSimulator({ port: 0, seed: 7, host: network.hostIp });
    sim.control.registerCluster({ name: NODE_CLUSTER, issuer: cp.issuer, caBundle: cp.caPem });
    const simPort = Number(new URL(sim.url).port);
    node = await startNode({
      controlPlane: cp,
      network,
      images: [images.pause, images.lanyard, images.awsWhoami],
      pauseImage: images.pause.name,
      podIdentityAgent: { ip: network.hostIp, port: simPort },
      log: (l) => say(l),
    });
    say(`cluster with node ${node.name} ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (${cp.dir}, ${node.dir})`);
  } catch (e) {
    await teardown();
    throw e;
  }
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
