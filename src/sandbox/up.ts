// `lanyard up` (`npm start`): the local sandbox. A real kube-apiserver + etcd + kube-controller-manager, a real node
// (containerd, kubelet, kube-scheduler, kube-proxy in a network namespace of its own), the AWS simulator, Lanyard
// itself (webhook with the identity gate, and the controller) in this process, and sample workloads. It shows a Pod
// held at the gate until its identity is proven, then Running with the ARN its AWS SDK got, and a promotion that
// runs to its end. Where the node cannot run (not root, not Linux, its set-up failed), the sandbox runs without
// it and says why (docs/adr/0714).
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { startControlPlane, ADMIN_USER, type ControlPlane } from './control-plane.ts';
import { startAwsSimulator, type AwsSimulator } from './aws-sim/index.ts';
import { createProgress, type Progress } from './progress.ts';
import { CRD_DIR, PACKAGE_ROOT, SAMPLES_DIR } from './paths.ts';
import {
  ensureNode,
  nodeUnavailable,
  startNodeControlPlane,
  startNodeWithImages,
  startSimulatorForNode,
  type NodeControlPlane,
  type NodeImageManifest,
} from './node-cluster.ts';
import type { RunningNode } from './node.ts';
import {
  SandboxAborted,
  associationReady,
  followPromotion,
  showGate,
  showRunning,
  throwIfAborted,
} from './watch-samples.ts';
import { createKubeClient, type KubeClient } from '../kube/client.ts';
import { applyCrds, applyObject, readManifests, type Manifest } from '../kube/apply.ts';
import { podIdentityWebhookConfiguration } from './webhook-configuration.ts';
import { createLogger, type Logger } from '../runtime/log.ts';
import { sleep, systemClock } from '../runtime/clock.ts';
import { createAwsClients } from '../aws/index.ts';
import { parseControllerFlags } from '../config/controller.ts';
import { parseWebhookFlags } from '../config/webhook.ts';
import type { AssociationLookup } from '../identity/sources.ts';
import { startController } from '../controller/index.ts';
import { createAdmissionGuard } from '../verification/admission-guard.ts';
import { identityAdmissionPolicy } from '../verification/admission-policy.ts';
import { associationAdmissionPolicy } from '../associations/admission-policy.ts';
import { startWebhook } from '../webhook/index.ts';
import { BUILTIN_ROLES } from '../projects/builtin-roles.ts';
import { projectNamespace, roleTrio } from '../projects/objects.ts';
import { errorMessage } from '../core/errors.ts';
import type { KubeObject, Stored } from '../core/kube-object.ts';
import type { Promotion } from '../promotions/types.ts';

const CLUSTER = 'lanyard-sandbox';
/**
 * Where Pods reach the AWS simulator: a Service without selector in lanyard-system whose one endpoint is the
 * simulator on the host's end of the node's link. The samples name its ClusterIP (there is no cluster DNS); it is
 * in the low band of the Service range, which the API server never hands out on its own.
 */
export const SIMULATOR_SERVICE = {
  namespace: 'lanyard-system',
  name: 'aws-simulator',
  clusterIP: '10.0.0.11',
} as const;

/** The sample promotion of shop/prod, as the sandbox reports it. */
interface SamplePromotion {
  name: string;
  /** Its Pod in lanyard-promotions. */
  pod: string;
}

export interface UpOptions {
  kubeconfig: string;
  /** Keep going after the samples are shown (false in tests). */
  stayUp: boolean;
  /** Milliseconds before the simulator lets eks-auth see a new association (shows the gate at work). */
  visibilityDelayMs: number;
  logFile: string;
  /** Run Pods on a real node (the default); without one they are admitted and released but never run. */
  node: boolean;
  /** Aborting it stops the start-up at its next step and removes what was started. */
  signal?: AbortSignal;
}

export interface Sandbox {
  kubeconfig: string;
  server: string;
  simulatorUrl: string;
  /** Name of the promotion Pod of shop/prod in lanyard-promotions. */
  promotionPod: string;
  /** Name of the sample Promotion of shop/prod. */
  promotion: string;
  /** The node the Pods run on, when there is one. */
  node?: { name: string; netns: string };
  /** Why the sandbox runs without a node, when it does. */
  noNode?: string;
  kube: KubeClient;
  stop(): Promise<void>;
}

/** Trust policies of the sample roles, in the simulated IAM. */
async function createSampleRoles(sim: AwsSimulator, issuer: string): Promise<void> {
  const aws = createAwsClients({
    region: sim.control.region,
    endpointUrl: sim.url,
    credentials: sim.control.adminCredentials,
    log: createLogger({ component: 'sandbox', level: 'silent' }),
  });
  try {
    const host = issuer.replace(/^https:\/\//, '').replace(/\/$/, '');
    const provider = await aws.iam.createOpenIDConnectProvider({
      url: issuer,
      clientIds: ['sts.amazonaws.com', 'lanyard-promotion-step'],
    });
    const webIdentity = (sub: string, aud: string) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Federated: provider.arn },
            Action: 'sts:AssumeRoleWithWebIdentity',
            Condition: { StringEquals: { [`${host}:sub`]: sub, [`${host}:aud`]: aud } },
          },
        ],
      });
    await aws.iam.createRole({
      roleName: 'uploader',
      path: '/demo/',
      assumeRolePolicyDocument: webIdentity('system:serviceaccount:demo:uploader', 'sts.amazonaws.com'),
    });
    await aws.iam.createRole({
      roleName: 'demo-reporter',
      assumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: { Service: 'pods.eks.amazonaws.com' },
            Action: ['sts:AssumeRole', 'sts:TagSession'],
          },
        ],
      }),
    });
    await aws.iam.createRole({
      roleName: 'shop-deployer',
      assumeRolePolicyDocument: webIdentity(
        'system:serviceaccount:lanyard-promotions:deployer',
        'lanyard-promotion-step',
      ),
    });
  } finally {
    aws.destroy();
  }
}

/**
 * A project as `lanyard create project NAME` makes it (docs/projects-and-tokens.md): the labelled Namespace and the
 * three built-in role trios. A namespace with only the label is no project: `lanyard doctor` and the housekeeping
 * reconciler report its missing built-in roles.
 */
export function sampleProject(name: string): Manifest[] {
  const objects: KubeObject[] = [
    projectNamespace(name),
    ...BUILTIN_ROLES.flatMap((b) => {
      const t = roleTrio({ project: name, name: b.name, rules: b.rules });
      return [t.role, t.serviceAccount, t.roleBinding];
    }),
  ];
  // The builders set apiVersion, kind and name; kubernetes-types leaves the first two optional.
  return objects as Manifest[];
}

/**
 * Applies the samples in file order. After a PodIdentityAssociation it waits until the webhook's index has it: the
 * Deployment that follows would otherwise race the association's watch event, and a Pod admitted first runs without
 * its identity (the identity reconciler reports it `missing`, docs/identities.md) — not what a first look should show.
 */
async function applySamples(kube: KubeClient, associations: AssociationLookup): Promise<number> {
  let n = 0;
  for (const obj of sampleProject('shop')) {
    await applyObject(kube, obj, 'lanyard-sandbox');
    n++;
  }
  for (const f of fs
    .readdirSync(SAMPLES_DIR)
    .filter((x) => x.endsWith('.yaml'))
    .sort()) {
    for (const obj of readManifests<Manifest & { spec?: { serviceAccount?: string } }>(
      path.join(SAMPLES_DIR, f),
    )) {
      await applyObject(kube, obj, 'lanyard-sandbox');
      n++;
      if (obj.kind === 'PodIdentityAssociation')
        await untilIndexed(associations, String(obj.metadata?.namespace), String(obj.spec?.serviceAccount));
    }
  }
  return n;
}

async function untilIndexed(associations: AssociationLookup, namespace: string, serviceAccount: string) {
  for (
    const deadline = Date.now() + 30_000;
    !associations.forPair(namespace, serviceAccount);
    await sleep(20)
  ) {
    if (Date.now() > deadline)
      throw new Error(
        `the webhook did not see the PodIdentityAssociation of ${namespace}/${serviceAccount} within 30s`,
      );
  }
}

/**
 * Registers the webhook as docs/webhook.md#quick-start recommends, rewritten to a url on `host`: loopback, or the host's end of
 * the node's link when the API server runs in the node's network namespace.
 */
async function registerWebhook(kube: KubeClient, host: string, port: number, caPem: string): Promise<void> {
  const configuration = podIdentityWebhookConfiguration({
    name: 'lanyard-pod-identity',
    url: `https://${host}:${port}/mutate`,
    caPem,
    namespaceSelector: {
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'lanyard-system'] },
      ],
    },
  });
  await applyObject(kube, configuration, 'lanyard-sandbox');
}

/** The Service through which Pods reach the simulator (SIMULATOR_SERVICE), its one endpoint the simulator itself. */
async function exposeSimulator(kube: KubeClient, simulatorUrl: string): Promise<void> {
  const u = new URL(simulatorUrl);
  const { namespace, name, clusterIP } = SIMULATOR_SERVICE;
  await applyObject(
    kube,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec: { clusterIP, ports: [{ name: 'http', port: 80, targetPort: Number(u.port), protocol: 'TCP' }] },
    },
    'lanyard-sandbox',
  );
  await applyObject(
    kube,
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name,
        namespace,
        labels: {
          'kubernetes.io/service-name': name,
          'endpointslice.kubernetes.io/managed-by': 'lanyard-sandbox',
        },
      },
      addressType: 'IPv4',
      ports: [{ name: 'http', port: Number(u.port), protocol: 'TCP' }],
      endpoints: [{ addresses: [u.hostname], conditions: { ready: true } }],
    },
    'lanyard-sandbox',
  );
}

/** What the sandbox prints once it is ready: how to look around, each command's output as README.md describes it. */
function readyText(o: {
  kubeconfig: string;
  logFile: string;
  stayUp: boolean;
  promotion: string;
  promotionPod: string;
  node?: { name: string; netns: string };
  noNode?: string;
}): string {
  const lines = [''];
  if (o.node) {
    lines.push(`Lanyard sandbox is up: Pods run on node ${o.node.name} (network namespace ${o.node.netns}).`);
  } else {
    lines.push(
      `Lanyard sandbox is up, without a node (${o.noNode}): Pods are admitted, gated and released, but never run.`,
    );
  }
  // The CLI on the Node that runs this sandbox (24; a bare `npx lanyard` would run the machine's Node and warn).
  lines.push(
    '',
    `  export KUBECONFIG=${o.kubeconfig}`,
    `  alias lanyard='${process.execPath} ${path.join(PACKAGE_ROOT, 'bin', 'lanyard.js')}'`,
    '',
  );
  if (o.node) {
    lines.push(
      '  # The demo Pods: mutated by the webhook, released after a real STS exchange, now Running:',
      "  kubectl -n demo get pods -l app -o 'custom-columns=NAME:.metadata.name,STATUS:.status.phase,VERIFIED:.metadata.annotations.lanyard\\.dev/identity-verification,GATES:.spec.schedulingGates'",
      '  # What their AWS SDK got on its first call (IRSA, then EKS Pod Identity):',
      '  kubectl -n demo logs deploy/uploader',
      '  kubectl -n demo logs deploy/reporter',
    );
  } else {
    lines.push(
      '  # The demo Pods: mutated by the webhook and released after a real STS exchange (no node runs them):',
      "  kubectl -n demo get pods -l app -o 'custom-columns=NAME:.metadata.name,VERIFIED:.metadata.annotations.lanyard\\.dev/identity-verification,GATES:.spec.schedulingGates'",
    );
  }
  lines.push(
    '  kubectl -n demo get pod -l app=uploader -o jsonpath=\'{.items[0].spec.containers[0].env}{"\\n"}\'',
    '  # The Pod Identity association, reconciled to the simulated EKS API and verified:',
    '  kubectl -n demo get podidentityassociations -o wide',
    '  kubectl get events -n demo --field-selector reason=IdentityVerified',
  );
  if (o.node) {
    lines.push(
      `  # Promotion ${o.promotion} of shop/prod: one Pod, each step a container, the per-step role on step "whoami":`,
      '  lanyard get promotions --project shop -o wide',
      `  kubectl -n lanyard-promotions logs ${o.promotionPod} -c step-1`,
    );
  } else {
    lines.push(
      `  # The promotion Pod of shop/prod (steps as init containers, decorators applied, per-step role on step-1):`,
      `  kubectl -n lanyard-promotions get pod ${o.promotionPod} -o yaml`,
      '  lanyard get promotions --project shop -o wide',
    );
  }
  lines.push(
    '  lanyard get stages --project shop',
    '  lanyard doctor',
    '',
    `Lanyard's own logs: ${o.logFile}`,
  );
  if (o.stayUp) lines.push('Press Ctrl-C to stop everything.');
  return lines.join('\n') + '\n';
}

/** The Lanyard processes of the sandbox, as far as its later steps need them. */
interface StartedLanyard {
  port: number;
  metricsPort: number;
  associations: AssociationLookup;
}

/** The parts of the sandbox's control plane: the plain one, or the one in the node's network namespace. */
interface StartedControlPlane {
  cp: ControlPlane;
  ncp?: NodeControlPlane;
}

/**
 * One start of the sandbox: the progress it prints, its log, why it runs without a node (if it does), and what to
 * undo, in reverse order, when it stops or a step fails: Lanyard, the node, the simulator, the control plane and the
 * node's network.
 */
class SandboxStart {
  readonly progress: Progress;
  readonly log: Logger;
  readonly signal?: AbortSignal;
  noNode: string | undefined;
  private readonly undo: Array<() => Promise<void>> = [];

  constructor(
    readonly o: UpOptions,
    out: NodeJS.WriteStream,
  ) {
    this.progress = createProgress(out);
    this.signal = o.signal;
    fs.mkdirSync(path.dirname(o.logFile), { recursive: true });
    this.log = createLogger({
      component: 'sandbox',
      level: 'info',
      destination: fs.createWriteStream(o.logFile, { flags: 'a' }) as never,
    });
    this.noNode = o.node
      ? nodeUnavailable({ platform: process.platform, uid: process.getuid?.() })
      : 'started with --no-node';
    if (this.noNode && o.node) this.withoutNode(this.noNode);
  }

  readonly logLine = (l: string): void => this.log.info(l);

  onStop(u: () => Promise<void>): void {
    this.undo.push(u);
  }

  async stopAll(): Promise<void> {
    for (const u of this.undo.splice(0).reverse()) await u().catch(() => {});
  }

  /** Says why the sandbox runs without a node; returns the reason, which becomes `noNode`. */
  withoutNode(why: string): string {
    this.progress.warn(`no node: ${why}`);
    this.progress.warn(
      '  the sandbox runs without one: Pods are admitted, gated and released, but never run (docs/adr/0714-sandbox-on-the-node.md)',
    );
    this.noNode = why;
    return why;
  }

  /** The node's packages, binaries and images (scripts/ensure-node.sh); undefined when the sandbox runs without one. */
  async prepareNode(): Promise<NodeImageManifest | undefined> {
    if (this.noNode) return undefined;
    try {
      return await this.progress.step(
        'setting up the node: Debian packages, kubelet, images (scripts/ensure-node.sh, only what is missing)',
        () =>
          ensureNode((l) => {
            this.logLine(l);
            this.progress.note(l);
          }, this.signal),
      );
    } catch (e) {
      throwIfAborted(this.signal);
      this.withoutNode(`its set-up failed: ${errorMessage(e)}`);
      return undefined;
    }
  }

  /** The control plane in the node's network namespace when there is a node, else on loopback. */
  async startControlPlane(): Promise<StartedControlPlane> {
    const { progress } = this;
    if (!this.noNode) {
      try {
        const ncp = await progress.step(
          "starting kube-apiserver, etcd and kube-controller-manager in the node's network namespace",
          () => startNodeControlPlane({ log: this.logLine }),
        );
        this.onStop(() => ncp.stop());
        progress.note(
          `node network ${ncp.network.netns}: host ${ncp.network.hostIp}, API server and node ${ncp.network.nodeIp}, Pods ${ncp.network.podCidr}`,
        );
        return { cp: ncp.cp, ncp };
      } catch (e) {
        this.withoutNode(`its network namespace or control plane did not start: ${errorMessage(e)}`);
      }
    }
    const cp = await progress.step('starting kube-apiserver, etcd and kube-controller-manager', () =>
      startControlPlane({
        controllers: ['deployment-controller', 'replicaset-controller'],
        log: this.logLine,
      }),
    );
    this.onStop(async () => {
      await cp.stop();
      fs.rmSync(cp.dir, { recursive: true, force: true });
    });
    return { cp };
  }

  /** The kubeconfig written where the user asked, Lanyard's CRDs and its namespaces. */
  async prepareCluster(cp: ControlPlane): Promise<KubeClient> {
    fs.mkdirSync(path.dirname(this.o.kubeconfig), { recursive: true });
    fs.copyFileSync(cp.adminKubeconfig, this.o.kubeconfig);
    const k = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
    try {
      await this.progress.step('installing Lanyard CRDs', () => applyCrds(k, CRD_DIR));
      await this.progress.step('creating namespaces lanyard-system and lanyard-promotions', async () => {
        for (const obj of readManifests<Manifest>(path.join(SAMPLES_DIR, '05-lanyard-namespaces.yaml')))
          await applyObject(k, obj, 'lanyard-sandbox');
      });
    } catch (e) {
      k.close();
      throw e;
    }
    return k;
  }

  /** The AWS simulator with the sandbox's cluster and the sample roles; where Pods reach it when there is a node. */
  async startSimulator({ cp, ncp }: StartedControlPlane): Promise<AwsSimulator> {
    const log = this.log;
    const sim = await this.progress.step('starting the AWS simulator', async () => {
      const s = ncp
        ? await startSimulatorForNode(ncp.network, { seed: 42, log })
        : await startAwsSimulator({ port: 0, seed: 42, log });
      s.control.registerCluster({ name: CLUSTER, issuer: cp.issuer, caBundle: cp.caPem });
      await createSampleRoles(s, cp.issuer);
      // New associations reach eks-auth only after a while, as in EKS: Pods wait at the gate meanwhile.
      s.control.configure({
        visibility: { eksAuth: [this.o.visibilityDelayMs, this.o.visibilityDelayMs], 'iam.role': [0, 0] },
      });
      return s;
    });
    this.onStop(() => sim.close());
    this.progress.note(
      `AWS simulator at ${sim.url} (account ${sim.control.account}, region ${sim.control.region})`,
    );
    return sim;
  }

  /** The node and the Service through which its Pods reach the simulator; undefined when it did not start. */
  async startNode(
    ncp: NodeControlPlane | undefined,
    images: NodeImageManifest | undefined,
    sim: AwsSimulator,
    k: KubeClient,
  ): Promise<RunningNode | undefined> {
    if (!ncp || !images) return undefined;
    let node: RunningNode;
    try {
      node = await this.progress.step(
        'starting the node: containerd, kubelet, kube-scheduler, kube-proxy',
        () => startNodeWithImages({ ncp, images, simulatorUrl: sim.url, log: this.logLine }),
      );
      this.onStop(() => node.stop());
    } catch (e) {
      throwIfAborted(this.signal);
      this.withoutNode(`it did not start: ${errorMessage(e)}`);
      return undefined;
    }
    await exposeSimulator(k, sim.url);
    this.progress.note(
      `node ${node.name} Ready; Pods reach the AWS simulator at ${SIMULATOR_SERVICE.clusterIP} (Service ${SIMULATOR_SERVICE.namespace}/${SIMULATOR_SERVICE.name}) and its EKS Pod Identity Agent at 169.254.170.23`,
    );
    return node;
  }

  /** Lanyard in this process: the controller, and the webhook with the identity gate, registered with the cluster. */
  async startLanyard(
    k: KubeClient,
    sim: AwsSimulator,
    images: NodeImageManifest | undefined,
    webhookHost: string,
  ): Promise<StartedLanyard> {
    const webhook = await this.progress.step(
      'starting Lanyard (webhook with the identity gate, and the controller)',
      async () => {
        const deps = { kube: k, log: this.log, metrics: new Registry(), clock: systemClock };
        const ctl = await startController(deps, sandboxControllerConfig(sim, images), {
          serveMetrics: false,
          awsCredentials: sim.control.adminCredentials,
        });
        this.onStop(() => ctl.stop());
        const guard = createAdmissionGuard(deps, { gateEnabled: true, allowOptOut: true });
        this.onStop(() => guard.stop());
        const wh = await startWebhook(sandboxWebhookConfig(sim, webhookHost), {
          ...deps,
          associations: ctl.lookup,
          guard,
        });
        this.onStop(() => wh.stop());
        if (!wh.caPem) throw new Error('the webhook did not report its CA');
        await registerWebhook(k, webhookHost, wh.port, wh.caPem);
        await applyAdmissionPolicies(k);
        return { port: wh.port, metricsPort: wh.metricsPort, associations: ctl.lookup };
      },
    );
    this.progress.note(
      `webhook on https://${webhookHost}:${webhook.port}/mutate, metrics on http://127.0.0.1:${webhook.metricsPort}/metrics`,
    );
    return webhook;
  }

  /** The samples applied, the demo Pods through the gate (and running, on a node), the sample promotion run. */
  async showSamples(
    k: KubeClient,
    associations: AssociationLookup,
    node: RunningNode | undefined,
  ): Promise<SamplePromotion> {
    const { progress, signal } = this;
    await progress.step('applying sample workloads (deploy/samples)', () => applySamples(k, associations));
    await progress.step('waiting for the demo Pods to pass the identity gate', async () => {
      if (!(await showGate(k, progress.note, 90_000, signal))) {
        throw new Error('the demo Pods were not released within 90s; see the log file');
      }
      // The association reports its verification a few seconds after the Pods' release (writes are paced): the
      // sandbox is ready once it says Ready, so `lanyard doctor` is clean from the first command.
      if (!(await associationReady(k, 'demo', 'reporter', 30_000, signal))) {
        throw new Error(
          'PodIdentityAssociation demo/reporter did not become Ready within 30s; see the log file',
        );
      }
    });
    if (node) {
      await progress.step('waiting for the demo Pods to run and make their first AWS call', () =>
        showRunning(k, progress.note, 120_000, signal),
      );
    }
    return await this.promote(k, node !== undefined);
  }

  /** Promotes shop/prod to version 1.4.2: to its end on a node, until its Pod exists without one. */
  private async promote(k: KubeClient, onNode: boolean): Promise<SamplePromotion> {
    const { progress } = this;
    const promotion = await progress.step(
      onNode
        ? 'promoting stage shop/prod (version 1.4.2) to the end'
        : 'promoting stage shop/prod (version 1.4.2)',
      async () => {
        const p = await k.create<Stored<Promotion>>('/apis/lanyard.dev/v1alpha1/namespaces/shop/promotions', {
          apiVersion: 'lanyard.dev/v1alpha1',
          kind: 'Promotion',
          metadata: { generateName: 'prod-', namespace: 'shop' },
          spec: { stage: 'prod', vars: [{ name: 'version', value: '1.4.2' }] },
        });
        progress.note(`promotion shop/${p.metadata.name}`);
        return await followPromotion(k, 'shop', p.metadata.name, {
          note: progress.note,
          timeoutMs: onNode ? 180_000 : 20_000,
          untilPod: !onNode,
          signal: this.signal,
        });
      },
    );
    const name = promotion.metadata.name;
    const pod = promotion.status?.pod?.name;
    if (!pod) throw new Error(`promotion shop/${name} has no Pod`);
    if (onNode)
      progress.note(
        `promotion shop/${name} ${promotion.status?.phase}: ${promotion.status?.message ?? ''}`.trimEnd(),
      );
    return { name, pod };
  }
}

/** `lanyard controller`'s flags as the sandbox runs it: against the simulator, no leader election, no metrics port. */
function sandboxControllerConfig(sim: AwsSimulator, images: NodeImageManifest | undefined) {
  return parseControllerFlags([
    `--cluster-name=${CLUSTER}`,
    `--aws-region=${sim.control.region}`,
    `--aws-endpoint-url=${sim.url}`,
    '--leader-elect=false',
    '--metrics-port=0',
    '--association-resync=30s',
    // The promotion Pod's last container runs `lanyard promotion-done`: Lanyard's own image, built locally.
    ...(images ? [`--promotion-done-image=${images.lanyard.name}`] : []),
  ]).config;
}

/** `lanyard webhook`'s flags as the sandbox runs it: its own CA, serving on `webhookHost`, the identity gate on. */
function sandboxWebhookConfig(sim: AwsSimulator, webhookHost: string) {
  return parseWebhookFlags(
    [
      '--port=0',
      '--metrics-port=0',
      '--tls-mode=self-managed',
      `--tls-extra-sans=127.0.0.1,localhost,${webhookHost}`,
      '--identity-gate=true',
      `--cluster-name=${CLUSTER}`,
      '--namespace=lanyard-system',
      `--aws-default-region=${sim.control.region}`,
      // No Service routes to this in-process webhook: on Ctrl-C there is nothing to drain for.
      '--shutdown-delay=0s',
    ],
    { env: { POD_NAMESPACE: 'lanyard-system' } },
  );
}

/** As the chart does; in the sandbox the controller runs as the admin user (docs/security.md). */
async function applyAdmissionPolicies(k: KubeClient): Promise<void> {
  const vap = identityAdmissionPolicy({ releasers: [ADMIN_USER] });
  const lpia = associationAdmissionPolicy();
  for (const obj of [vap.policy, vap.binding, lpia.policy, lpia.binding])
    await applyObject(k, obj, 'lanyard-sandbox');
}

export async function startSandbox(o: UpOptions, out: NodeJS.WriteStream = process.stderr): Promise<Sandbox> {
  const run = new SandboxStart(o, out);
  const { signal } = o;
  let kube: KubeClient | undefined;
  try {
    const images = await run.prepareNode();
    throwIfAborted(signal);
    const started = await run.startControlPlane();
    throwIfAborted(signal);
    const k = await run.prepareCluster(started.cp);
    kube = k;
    const sim = await run.startSimulator(started);
    const node = await run.startNode(started.ncp, images, sim, k);
    throwIfAborted(signal);
    const webhook = await run.startLanyard(k, sim, images, started.ncp?.network.hostIp ?? '127.0.0.1');
    throwIfAborted(signal);
    const promotion = await run.showSamples(k, webhook.associations, node);
    const nodeInfo = node && started.ncp ? { name: node.name, netns: started.ncp.network.netns } : undefined;
    const sandbox: Sandbox = {
      kubeconfig: o.kubeconfig,
      server: started.cp.server,
      simulatorUrl: sim.url,
      promotion: promotion.name,
      promotionPod: promotion.pod,
      node: nodeInfo,
      noNode: nodeInfo ? undefined : run.noNode,
      kube: k,
      stop: async () => {
        await run.stopAll();
        k.close();
      },
    };
    out.write(
      readyText({
        ...o,
        promotion: sandbox.promotion,
        promotionPod: sandbox.promotionPod,
        node: nodeInfo,
        noNode: run.noNode,
      }),
    );
    return sandbox;
  } catch (e) {
    await run.stopAll();
    kube?.close();
    throw e;
  }
}

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description(
      'Start the local sandbox: a real control plane and node, the AWS simulator, Lanyard and sample workloads',
    )
    .option('--kubeconfig <path>', 'where to write the sandbox admin kubeconfig', '.lanyard/kubeconfig')
    .option('--log-file <path>', "where Lanyard's JSON logs go", '.lanyard/lanyard.log')
    .option(
      '--visibility-delay <ms>',
      'how long the simulated eks-auth takes to see a new association',
      '6000',
    )
    .option('--no-node', 'run without a node (Pods are admitted, gated and released, but never run)')
    .option('--exit-when-ready', 'stop after the samples were shown (for scripts and tests)')
    .action(
      async (opts: {
        kubeconfig: string;
        logFile: string;
        visibilityDelay: string;
        node: boolean;
        exitWhenReady?: boolean;
      }) => {
        const delay = Number(opts.visibilityDelay);
        if (!Number.isInteger(delay) || delay < 0)
          throw new Error(
            `invalid --visibility-delay "${opts.visibilityDelay}": use milliseconds, e.g. 6000`,
          );
        // Ctrl-C (or SIGTERM) at any time stops everything that was started; a second one exits at once and leaves
        // the rest to the next run's clean-up (docs/adr/0712).
        const abort = new AbortController();
        let sandbox: Sandbox | undefined;
        let stopped: (() => void) | undefined;
        const stoppedP = new Promise<void>((r) => (stopped = r));
        const onSignal = (sig: NodeJS.Signals) => {
          if (abort.signal.aborted) {
            process.stderr.write(
              `\n${sig} again: exiting without stopping the sandbox; the next \`lanyard up\` removes what is left\n`,
            );
            process.exit(130);
          }
          process.stderr.write(`\n${sig}: stopping the sandbox\n`);
          abort.abort();
          if (sandbox) void sandbox.stop().then(stopped);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        try {
          try {
            sandbox = await startSandbox({
              kubeconfig: path.resolve(opts.kubeconfig),
              logFile: path.resolve(opts.logFile),
              stayUp: !opts.exitWhenReady,
              visibilityDelayMs: delay,
              node: opts.node,
              signal: abort.signal,
            });
          } catch (e) {
            if (!(e instanceof SandboxAborted)) throw e;
            process.stderr.write('sandbox stopped before it was ready; everything it started is stopped\n');
            process.exitCode = 130;
            return;
          }
          if (opts.exitWhenReady || abort.signal.aborted) {
            await sandbox.stop();
          } else {
            await stoppedP;
          }
          process.stderr.write(
            `sandbox stopped${sandbox.node ? `: node ${sandbox.node.name} and network namespace ${sandbox.node.netns} removed` : ''}\n`,
          );
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      },
    );
}
