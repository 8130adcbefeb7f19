// `lanyard up` (`npm start`): the local sandbox. A real kube-apiserver + etcd + kube-controller-manager on
// loopback, the AWS simulator, Lanyard itself (webhook with the identity gate, and the controller) in this
// process, and sample workloads. It shows a Pod held at the gate until its identity is proven, then released.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Registry } from 'prom-client';
import { startControlPlane, ADMIN_USER } from './control-plane.ts';
import { startAwsSimulator, type AwsSimulator } from './aws-sim/index.ts';
import { createProgress } from './progress.ts';
import { CRD_DIR, SAMPLES_DIR } from './paths.ts';
import { createKubeClient, type Json, type KubeClient } from '../kube/client.ts';
import { applyCrds, applyObject, readManifests } from '../kube/apply.ts';
import { createLogger } from '../runtime/log.ts';
import { systemClock } from '../runtime/clock.ts';
import type { Running } from '../runtime/deps.ts';
import { createAwsClients } from '../aws/index.ts';
import { parseControllerFlags } from '../config/controller.ts';
import { parseWebhookFlags } from '../config/webhook.ts';
import { startController } from '../controller/index.ts';
import { createAdmissionGuard } from '../verification/admission-guard.ts';
import { identityAdmissionPolicy } from '../verification/admission-policy.ts';
import { associationAdmissionPolicy } from '../associations/admission-policy.ts';
import { startWebhook } from '../webhook/index.ts';
import { BUILTIN_ROLES } from '../projects/builtin-roles.ts';
import { projectNamespace, roleTrio } from '../projects/objects.ts';
import { sleep } from '../runtime/clock.ts';

const CLUSTER = 'lanyard-sandbox';
const GATE = 'lanyard.dev/identity';

export interface UpOptions {
  kubeconfig: string;
  /** Keep going after the samples are shown (false in tests). */
  stayUp: boolean;
  /** Milliseconds before the simulator lets eks-auth see a new association (shows the gate at work). */
  visibilityDelayMs: number;
  logFile: string;
}

export interface Sandbox {
  kubeconfig: string;
  server: string;
  simulatorUrl: string;
  /** Name of the promotion Pod of shop/prod in lanyard-promotions. */
  promotionPod: string;
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
        Statement: [{
          Effect: 'Allow',
          Principal: { Federated: provider.arn },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: { StringEquals: { [`${host}:sub`]: sub, [`${host}:aud`]: aud } },
        }],
      });
    await aws.iam.createRole({ roleName: 'uploader', path: '/demo/',
      assumeRolePolicyDocument: webIdentity('system:serviceaccount:demo:uploader', 'sts.amazonaws.com') });
    await aws.iam.createRole({ roleName: 'demo-reporter', assumeRolePolicyDocument: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' }, Action: ['sts:AssumeRole', 'sts:TagSession'] }],
    }) });
    await aws.iam.createRole({ roleName: 'shop-s3-read',
      assumeRolePolicyDocument: webIdentity('system:serviceaccount:lanyard-promotions:s3-access', 'lanyard-promotion-step') });
  } finally {
    aws.destroy();
  }
}

/**
 * A project as `lanyard create project NAME` makes it (docs/projects-and-tokens.md): the labelled Namespace and the
 * three built-in role trios. A namespace with only the label is no project: `lanyard doctor` and the housekeeping
 * reconciler report its missing built-in roles.
 */
export function sampleProject(name: string): Json[] {
  return [projectNamespace(name), ...BUILTIN_ROLES.flatMap((b) => {
    const t = roleTrio({ project: name, name: b.name, rules: b.rules });
    return [t.role, t.serviceAccount, t.roleBinding];
  })];
}

async function applySamples(kube: KubeClient): Promise<number> {
  let n = 0;
  for (const obj of sampleProject('shop')) {
    await applyObject(kube, obj, 'lanyard-sandbox');
    n++;
  }
  for (const f of fs.readdirSync(SAMPLES_DIR).filter((x) => x.endsWith('.yaml')).sort()) {
    for (const obj of readManifests(path.join(SAMPLES_DIR, f))) {
      await applyObject(kube, obj, 'lanyard-sandbox');
      n++;
    }
  }
  return n;
}

/** Registers the webhook as webhook.md §11 recommends, rewritten to a loopback url. */
async function registerWebhook(kube: KubeClient, port: number, caPem: string): Promise<void> {
  await applyObject(kube, {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: 'lanyard-pod-identity' },
    webhooks: [{
      name: 'pod-identity.lanyard.dev',
      admissionReviewVersions: ['v1', 'v1beta1'],
      clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: Buffer.from(caPem).toString('base64') },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' },
        { operations: ['UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods/ephemeralcontainers'], scope: 'Namespaced' }],
      matchPolicy: 'Equivalent',
      failurePolicy: 'Fail',
      reinvocationPolicy: 'IfNeeded',
      sideEffects: 'None',
      timeoutSeconds: 10,
      namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'lanyard-system'] }] },
      objectSelector: { matchExpressions: [{ key: 'eks.amazonaws.com/skip-pod-identity-webhook', operator: 'DoesNotExist' }] },
    }],
  }, 'lanyard-sandbox');
}

/** Follows the demo Pods from admission to release, printing each change. */
async function showGate(kube: KubeClient, note: (l: string) => void, timeoutMs: number): Promise<boolean> {
  const seen = new Map<string, string>();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // Probe Pods (verification.md §10) come and go on their own; the workloads are what a user watches.
    const pods: Json[] = (await kube.get('/api/v1/namespaces/demo/pods', { labelSelector: '!lanyard.dev/probe' })).items;
    for (const p of pods) {
      const gated = (p.spec.schedulingGates ?? []).some((g: Json) => g.name === GATE);
      const env = (p.spec.containers[0]?.env ?? []).map((e: Json) => e.name);
      const mode = env.includes('AWS_ROLE_ARN') ? 'web identity' : env.includes('AWS_CONTAINER_CREDENTIALS_FULL_URI') ? 'container credentials' : 'no identity';
      const state = gated ? 'gated' : 'released';
      if (seen.get(p.metadata.name) !== state) {
        const age = ((Date.now() - Date.parse(p.metadata.creationTimestamp)) / 1000).toFixed(1);
        note(gated
          ? `pod demo/${p.metadata.name} (${mode}) is held at the ${GATE} scheduling gate`
          : `pod demo/${p.metadata.name} (${mode}) released ${age}s after creation: ${p.metadata.annotations?.['lanyard.dev/identity-verification'] ?? 'not gated'}`);
        seen.set(p.metadata.name, state);
      }
    }
    if (pods.length >= 2 && pods.every((p) => seen.get(p.metadata.name) === 'released')) return true;
    await sleep(300);
  }
  return false;
}

async function associationReady(kube: KubeClient, namespace: string, name: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const a = await kube.get(`/apis/lanyard.dev/v1alpha1/namespaces/${namespace}/podidentityassociations/${name}`);
    if ((a.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True')) return true;
    await sleep(300);
  }
  return false;
}

export async function startSandbox(o: UpOptions, out: NodeJS.WriteStream = process.stderr): Promise<Sandbox> {
  const progress = createProgress(out);
  const parts: Running[] = [];
  fs.mkdirSync(path.dirname(o.logFile), { recursive: true });
  const log = createLogger({ component: 'sandbox', level: 'info', destination: fs.createWriteStream(o.logFile, { flags: 'a' }) as never });

  const cp = await progress.step('starting kube-apiserver, etcd and kube-controller-manager', () =>
    startControlPlane({ controllers: ['deployment-controller', 'replicaset-controller'] }));
  parts.push({ stop: () => cp.stop() });
  fs.mkdirSync(path.dirname(o.kubeconfig), { recursive: true });
  fs.copyFileSync(cp.adminKubeconfig, o.kubeconfig);
  const kube = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
  let simulatorUrl = '';
  let promotionPod = '';
  try {
    await progress.step('installing Lanyard CRDs', () => applyCrds(kube, CRD_DIR));
    const sim = await progress.step('starting the AWS simulator', async () => {
      const s = await startAwsSimulator({ port: 0, seed: 42, log });
      s.control.registerCluster({ name: CLUSTER, issuer: cp.issuer, caBundle: cp.caPem });
      await createSampleRoles(s, cp.issuer);
      // New associations reach eks-auth only after a while, as in EKS: Pods wait at the gate meanwhile.
      s.control.configure({ visibility: { eksAuth: [o.visibilityDelayMs, o.visibilityDelayMs], 'iam.role': [0, 0] } });
      return s;
    });
    parts.unshift({ stop: () => sim.close() });
    simulatorUrl = sim.url;
    progress.note(`AWS simulator at ${sim.url} (account ${sim.control.account}, region ${sim.control.region})`);

    await progress.step('creating namespaces lanyard-system and lanyard-promotions', async () => {
      for (const obj of readManifests(path.join(SAMPLES_DIR, '05-lanyard-namespaces.yaml'))) await applyObject(kube, obj, 'lanyard-sandbox');
    });

    const webhook = await progress.step('starting Lanyard (webhook with the identity gate, and the controller)', async () => {
      const deps = { kube, log, metrics: new Registry(), clock: systemClock };
      const { config } = parseControllerFlags([
        `--cluster-name=${CLUSTER}`, `--aws-region=${sim.control.region}`, `--aws-endpoint-url=${sim.url}`,
        '--leader-elect=false', '--metrics-port=0', '--association-resync=30s',
      ]);
      const ctl = await startController(deps, config, { serveMetrics: false, awsCredentials: sim.control.adminCredentials });
      parts.unshift(ctl);
      const webhookConfig = parseWebhookFlags([
        '--port=0', '--metrics-port=0', '--tls-mode=self-managed', '--tls-extra-sans=127.0.0.1,localhost',
        '--identity-gate=true', `--cluster-name=${CLUSTER}`, '--namespace=lanyard-system',
        `--aws-default-region=${sim.control.region}`,
      ], { env: { POD_NAMESPACE: 'lanyard-system' } });
      const guard = createAdmissionGuard(deps, { gateEnabled: true, allowOptOut: true });
      parts.unshift(guard);
      const wh = await startWebhook(webhookConfig, { ...deps, associations: ctl.lookup, guard });
      parts.unshift(wh);
      if (!wh.caPem) throw new Error('the webhook did not report its CA');
      await registerWebhook(kube, wh.port, wh.caPem);
      // As the chart does; in the sandbox the controller runs as the admin user (docs/security.md).
      const vap = identityAdmissionPolicy({ releasers: [ADMIN_USER] });
      const lpia = associationAdmissionPolicy();
      for (const obj of [vap.policy, vap.binding, lpia.policy, lpia.binding]) await applyObject(kube, obj, 'lanyard-sandbox');
      return wh;
    });
    progress.note(`webhook on https://127.0.0.1:${webhook.port}/mutate, metrics on http://127.0.0.1:${webhook.metricsPort}/metrics`);

    await progress.step('applying sample workloads (deploy/samples)', () => applySamples(kube));
    await progress.step('waiting for the demo Pods to pass the identity gate', async () => {
      if (!(await showGate(kube, progress.note, 90_000))) {
        throw new Error('the demo Pods were not released within 90s; see the log file');
      }
      // The association reports its verification a few seconds after the Pods' release (writes are paced): the
      // sandbox is ready once it says Ready, so `lanyard doctor` is clean from the first command.
      if (!(await associationReady(kube, 'demo', 'reporter', 30_000))) {
        throw new Error('PodIdentityAssociation demo/reporter did not become Ready within 30s; see the log file');
      }
    });
    const promotion = await progress.step('promoting stage shop/prod (version 1.4.2)', async () => {
      const p = await kube.create('/apis/lanyard.dev/v1alpha1/namespaces/shop/promotions', {
        apiVersion: 'lanyard.dev/v1alpha1', kind: 'Promotion',
        metadata: { generateName: 'prod-', namespace: 'shop' },
        spec: { stage: 'prod', vars: [{ name: 'version', value: '1.4.2' }] },
      });
      for (let i = 0; i < 100; i++) {
        const cur = await kube.get(`/apis/lanyard.dev/v1alpha1/namespaces/shop/promotions/${p.metadata.name}`);
        if (cur.status?.pod?.name) return cur;
        if (['Errored', 'Failed'].includes(cur.status?.phase)) throw new Error(`${cur.status.phase}: ${cur.status.message}`);
        await sleep(200);
      }
      throw new Error('the promotion pod was not created within 20s');
    });
    const podName: string = promotion.status.pod.name;
    promotionPod = podName;
    out.write(`
Lanyard sandbox is up.

  export KUBECONFIG=${o.kubeconfig}

  # The IRSA Pod, mutated by the webhook and released after a real STS exchange:
  kubectl -n demo get pods -o 'custom-columns=NAME:.metadata.name,VERIFIED:.metadata.annotations.lanyard\\.dev/identity-verification,GATES:.spec.schedulingGates'
  kubectl -n demo get pod -l app=uploader -o jsonpath='{.items[0].spec.containers[0].env}{"\\n"}'
  # The Pod Identity association, reconciled to the simulated EKS API and verified:
  kubectl -n demo get podidentityassociations -o wide
  kubectl get events -n demo --field-selector reason=IdentityVerified
  # The promotion pod of shop/prod (steps as init containers, decorators applied, per-step role on step-1):
  kubectl -n lanyard-promotions get pod ${podName} -o yaml
  npx lanyard get stages --project shop
  npx lanyard get promotions --project shop -o wide

Lanyard's own logs: ${o.logFile}
${o.stayUp ? 'Press Ctrl-C to stop everything.\n' : ''}`);
  } catch (e) {
    for (const p of parts) await p.stop().catch(() => {});
    kube.close();
    throw e;
  }
  return {
    kubeconfig: o.kubeconfig,
    server: cp.server,
    simulatorUrl,
    promotionPod,
    kube,
    stop: async () => {
      for (const p of parts) await p.stop().catch(() => {});
      kube.close();
      fs.rmSync(cp.dir, { recursive: true, force: true });
    },
  };
}

export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('Start the local sandbox: a real control plane, the AWS simulator, Lanyard and sample workloads')
    .option('--kubeconfig <path>', 'where to write the sandbox admin kubeconfig', '.lanyard/kubeconfig')
    .option('--log-file <path>', "where Lanyard's JSON logs go", '.lanyard/lanyard.log')
    .option('--visibility-delay <ms>', 'how long the simulated eks-auth takes to see a new association', '6000')
    .option('--exit-when-ready', 'stop after the samples were shown (for scripts and tests)')
    .action(async (opts: { kubeconfig: string; logFile: string; visibilityDelay: string; exitWhenReady?: boolean }) => {
      const delay = Number(opts.visibilityDelay);
      if (!Number.isInteger(delay) || delay < 0) throw new Error(`invalid --visibility-delay "${opts.visibilityDelay}": use milliseconds, e.g. 6000`);
      const sandbox = await startSandbox({
        kubeconfig: path.resolve(opts.kubeconfig),
        logFile: path.resolve(opts.logFile),
        stayUp: !opts.exitWhenReady,
        visibilityDelayMs: delay,
      });
      if (opts.exitWhenReady) {
        await sandbox.stop();
        return;
      }
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (sig: string) => {
          if (stopping) process.exit(1);
          stopping = true;
          process.stderr.write(`\n${sig}: stopping the sandbox\n`);
          void sandbox.stop().then(resolve);
        };
        process.on('SIGINT', () => stop('SIGINT'));
        process.on('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
