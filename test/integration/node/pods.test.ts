// The test node runs Pods for real: scheduled by kube-scheduler, started by the kubelet through containerd,
// on the CNI bridge network, with their output readable through the API server (kubectl logs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeClient } from '../../../src/kube/client.ts';
import { eventually } from '../../harness/context.ts';
import {
  kubectl,
  newNodeNamespace,
  node,
  nodeAdmin,
  podLogs,
  waitForPodPhase,
} from '../../harness/node-context.ts';

let admin: KubeClient;
let ns: string;
beforeAll(async () => {
  admin = await nodeAdmin();
  ns = await newNodeNamespace(admin, 'pods');
});
afterAll(() => admin?.close());

function nodePod(name: string, command: string[], env: { name: string; value: string }[] = []) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: node().images.awsWhoami, imagePullPolicy: 'Never', command, env }],
    },
  };
}
const shellPod = (name: string, script: string) => nodePod(name, ['sh', '-c', script]);

describe('a real node', () => {
  it('is Ready and registered under its own address', async () => {
    const n = await admin.get(`/api/v1/nodes/${node().nodeName}`);
    expect(n.status.conditions.find((c: { type: string }) => c.type === 'Ready').status).toBe('True');
    expect(n.status.addresses).toContainEqual({
      type: 'InternalIP',
      address: expect.not.stringMatching(/^127\./),
    });
  });

  it('runs a Pod to Succeeded on the bridge network, and kubectl logs returns what it printed', async () => {
    await admin.create(
      `/api/v1/namespaces/${ns}/pods`,
      shellPod('hello', 'echo "pod ip $(hostname -i) says hello"'),
    );
    const pod = await waitForPodPhase(admin, ns, 'hello', ['Succeeded', 'Failed']);
    expect(pod.status.phase).toBe('Succeeded');
    expect(pod.spec.nodeName).toBe(node().nodeName);
    expect(await podLogs(ns, 'hello')).toContain(`pod ip ${pod.status.podIP} says hello`);
  });

  it('mounts the projected ServiceAccount token and the cluster CA a workload needs', async () => {
    await admin.create(
      `/api/v1/namespaces/${ns}/pods`,
      shellPod(
        'token',
        'wc -c < /var/run/secrets/kubernetes.io/serviceaccount/token; head -1 /var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
      ),
    );
    const pod = await waitForPodPhase(admin, ns, 'token', ['Succeeded', 'Failed']);
    expect(pod.status.phase).toBe('Succeeded');
    const out = await podLogs(ns, 'token');
    expect(Number(out.split('\n')[0])).toBeGreaterThan(100);
    expect(out).toContain('-----BEGIN CERTIFICATE-----');
  });

  it('reaches the API server through the kubernetes Service (kube-proxy) from a Pod', async () => {
    await admin.create(
      `/api/v1/namespaces/${ns}/pods`,
      nodePod(
        'api',
        [
          'node',
          '-e',
          'fetch(`https://${process.env.KUBERNETES_SERVICE_HOST}:${process.env.KUBERNETES_SERVICE_PORT}/version`)' +
            ".then((r) => console.log('status', r.status)).catch((e) => console.log('error', e.cause?.code ?? e.message))",
        ],
        [{ name: 'NODE_EXTRA_CA_CERTS', value: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt' }],
      ),
    );
    const pod = await waitForPodPhase(admin, ns, 'api', ['Succeeded', 'Failed']);
    expect(pod.status.phase).toBe('Succeeded');
    // Anonymous /version is allowed: the TLS handshake with the cluster CA and the HTTP answer prove the path.
    expect(await podLogs(ns, 'api')).toContain('status 200');
  });

  it('lets no Pod traffic leave the machine (the node has no route out)', async () => {
    await admin.create(
      `/api/v1/namespaces/${ns}/pods`,
      nodePod('offline', [
        'node',
        '-e',
        "require('net').connect({ host: '192.0.2.1', port: 443, timeout: 3000 })" +
          ".on('connect', () => console.log('connected')).on('timeout', function () { console.log('timeout'); this.destroy(); })" +
          ".on('error', (e) => console.log('error', e.code))",
      ]),
    );
    const pod = await waitForPodPhase(admin, ns, 'offline', ['Succeeded', 'Failed']);
    expect(pod.status.phase).toBe('Succeeded');
    const out = await eventually(async () => {
      const l = await podLogs(ns, 'offline');
      if (!l.trim()) throw new Error('no output yet');
      return l;
    });
    expect(out).not.toContain('connected');
  });

  it('shows the Pods with kubectl as a user sees them', async () => {
    const out = await kubectl(['-n', ns, 'get', 'pods', '-o', 'wide']);
    expect(out).toMatch(/hello\s+0\/1\s+Completed/);
  });
});
