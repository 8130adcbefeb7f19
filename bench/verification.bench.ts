// docs/verified-start.md#measured: (1) release latency: 1000 gated Pods over 50 identities (25 per mode), eksAuth and iam.role
// visibility 0-20 s, from each identity's visibleAt to the gate's removal (goal p95 < 1 s); (2) admission cost of a
// verified identity against a Pod with no identity, same corpus, through the real webhook (goal: p50 delta < 0.1 ms,
// zero outbound requests). Real control plane, AWS simulator, webhook and controller in this process.
// Writes bench/results/verification.{json,md}; never fails a test run.
// Run: npm run bench:verification   (BENCH_PODS=N changes the Pod count, BENCH_ADMISSIONS=N the admission corpus)
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { Registry } from 'prom-client';
import { startControlPlane } from '../src/sandbox/control-plane.ts';
import { createKubeClient, type Json, type KubeClient } from '../src/kube/client.ts';
import { applyCrds } from '../src/kube/apply.ts';
import { InformerFactory } from '../src/kube/cache.ts';
import { CRD_DIR } from '../src/sandbox/paths.ts';
import { startAwsSimulator } from '../src/sandbox/aws-sim/index.ts';
import { createAwsClients } from '../src/aws/index.ts';
import { silentLogger } from '../src/runtime/log.ts';
import { systemClock } from '../src/runtime/clock.ts';
import { parseWebhookFlags } from '../src/config/webhook.ts';
import { parseControllerFlags } from '../src/config/controller.ts';
import { startWebhook } from '../src/webhook/index.ts';
import { createAssociationLookup } from '../src/associations/index.ts';
import { createAdmissionGuard } from '../src/verification/admission-guard.ts';
import { startController } from '../src/controller/index.ts';
import { buildVerifiedIdentity, fingerprintOf } from '../src/verification/verified-identity.ts';
import { sleep } from '../src/runtime/clock.ts';

const PODS = Number(process.env.BENCH_PODS ?? 1000);
const ADMISSIONS = Number(process.env.BENCH_ADMISSIONS ?? 3000);
const CLUSTER = 'bench';
const GATE = 'lanyard.dev/identity';

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

async function ns(kube: KubeClient, name: string, labels: Record<string, string>) {
  await kube.create('/api/v1/namespaces', { metadata: { name, labels } });
  for (let i = 0; i < 100; i++) {
    try {
      await kube.get(`/api/v1/namespaces/${name}/serviceaccounts/default`);
      return;
    } catch {
      await sleep(100);
    }
  }
}

async function main() {
  const t0 = Date.now();
  const cp = await startControlPlane({ log: () => undefined });
  // The webhook and its guard get their own client, so the admission run can count their outbound requests alone.
  let requests = 0;
  const kube = await createKubeClient({ kubeconfig: cp.adminKubeconfig });
  const webhookKube = await createKubeClient({
    kubeconfig: cp.adminKubeconfig,
    onRequest: () => {
      requests++;
    },
  });
  await applyCrds(kube, CRD_DIR);
  const metrics = new Registry();
  const log = silentLogger();
  const deps = { kube, log, metrics, clock: systemClock };
  const sim = await startAwsSimulator({ port: 0, seed: 16 });
  sim.control.registerCluster({ name: CLUSTER, issuer: cp.issuer, caBundle: cp.caPem });
  const aws = createAwsClients({
    region: 'us-west-2',
    endpointUrl: sim.url,
    credentials: sim.control.adminCredentials,
    log,
  });
  await aws.iam.createOpenIDConnectProvider({ url: cp.issuer, clientIds: ['sts.amazonaws.com'] });
  const issuerKey = cp.issuer.replace(/^https:\/\//, '').replace(/\/+$/, '');
  await ns(kube, 'lanyard-system', {});
  const label = { 'lanyard-bench': 'verification' };

  const lookup = createAssociationLookup(deps, { clusterName: CLUSTER, observeAck: 'false' });
  const wcfg = parseWebhookFlags(
    [
      '--port=0',
      '--metrics-port=0',
      '--tls-mode=self-managed',
      '--tls-extra-sans=127.0.0.1',
      '--tls-secret=bench',
      '--shutdown-delay=0s',
      `--cluster-name=${CLUSTER}`,
      '--identity-gate',
    ],
    { env: { POD_NAMESPACE: 'lanyard-system' } },
  );
  const webhookDeps = { ...deps, kube: webhookKube };
  const guard = createAdmissionGuard(webhookDeps, { gateEnabled: true, allowOptOut: true });
  const webhook = await startWebhook(wcfg, { ...webhookDeps, associations: lookup, guard });
  while (!webhook.ready()) await sleep(50);
  await kube.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
    metadata: { name: 'lanyard-bench' },
    webhooks: [
      {
        name: 'pod-identity.lanyard.dev',
        clientConfig: {
          url: `https://127.0.0.1:${webhook.port}/mutate`,
          caBundle: Buffer.from(webhook.caPem!).toString('base64'),
        },
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
        namespaceSelector: { matchLabels: label },
        failurePolicy: 'Fail',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds: 10,
      },
    ],
  });
  const { config } = parseControllerFlags(
    [
      `--cluster-name=${CLUSTER}`,
      `--aws-endpoint-url=${sim.url}`,
      '--aws-region=us-west-2',
      '--metrics-port=0',
      '--leader-elect=false',
    ],
    { env: {} },
  );
  const controller = await startController(deps, config, {
    awsCredentials: sim.control.adminCredentials,
    lookup,
    serveMetrics: false,
  });
  while (!controller.ready()) await sleep(50);

  // ---- (1) release latency ----
  sim.control.configure({ visibility: { eksAuth: [0, 20_000], 'iam.role': [0, 20_000] } });
  const ids: Array<{ ns: string; sa: string; mode: 'cc' | 'wi'; roleName: string; associationId?: string }> =
    [];
  for (let n = 0; n < 5; n++) {
    await ns(kube, `rl-${n}`, label);
    for (let i = 0; i < 5; i++)
      for (const mode of ['cc', 'wi'] as const)
        ids.push({ ns: `rl-${n}`, sa: `${mode}-${i}`, mode, roleName: `rl-${n}-${mode}-${i}` });
  }
  const ccTrust = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: 'pods.eks.amazonaws.com' },
        Action: ['sts:AssumeRole', 'sts:TagSession'],
      },
    ],
  });
  const wiTrust = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: `arn:aws:iam::${sim.control.account}:oidc-provider/${issuerKey}` },
        Action: 'sts:AssumeRoleWithWebIdentity',
        Condition: { StringEquals: { [`${issuerKey}:aud`]: 'sts.amazonaws.com' } },
      },
    ],
  });
  await Promise.all(
    ids.map(async (id) => {
      const role = await aws.iam.createRole({
        roleName: id.roleName,
        assumeRolePolicyDocument: id.mode === 'cc' ? ccTrust : wiTrust,
      });
      await kube.create(`/api/v1/namespaces/${id.ns}/serviceaccounts`, {
        metadata: {
          name: id.sa,
          annotations: id.mode === 'wi' ? { 'eks.amazonaws.com/role-arn': role.arn } : {},
        },
      });
      if (id.mode === 'cc') {
        await kube.create(`/apis/lanyard.dev/v1alpha1/namespaces/${id.ns}/podidentityassociations`, {
          apiVersion: 'lanyard.dev/v1alpha1',
          kind: 'PodIdentityAssociation',
          metadata: { name: id.sa },
          spec: { serviceAccount: id.sa, roleARN: role.arn },
        });
      }
    }),
  );
  while (ids.some((id) => id.mode === 'cc' && !lookup.forPair(id.ns, id.sa))) await sleep(50);

  const released = new Map<string, number>();
  const watchers = new InformerFactory({ client: kube });
  for (const n of new Set(ids.map((i) => i.ns)))
    watchers.view<Json>({
      path: `/api/v1/namespaces/${n}/pods`,
      onUpdate: (o) => {
        const k = `${o.metadata.namespace}/${o.metadata.name}`;
        if (!released.has(k) && !(o.spec.schedulingGates ?? []).some((g: Json) => g.name === GATE))
          released.set(k, Date.now());
      },
    });
  const pods: Array<{ key: string; id: (typeof ids)[number]; created: number; gated: boolean }> = [];
  const jobs = Array.from({ length: PODS }, (_, j) => ({ id: ids[j % ids.length]!, name: `p-${j}` }));
  for (let b = 0; b < jobs.length; b += 50) {
    await Promise.all(
      jobs.slice(b, b + 50).map(async ({ id, name }) => {
        const p = await kube.create(`/api/v1/namespaces/${id.ns}/pods`, {
          metadata: { name },
          spec: {
            serviceAccountName: id.sa,
            automountServiceAccountToken: false,
            containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
          },
        });
        pods.push({
          key: `${id.ns}/${name}`,
          id,
          created: Date.now(),
          gated: (p.spec.schedulingGates ?? []).some((g: Json) => g.name === GATE),
        });
      }),
    );
  }
  const deadline = Date.now() + 180_000;
  while (pods.some((p) => p.gated && !released.has(p.key)) && Date.now() < deadline) await sleep(100);
  watchers.stop();
  // An identity works once every piece it needs is visible: the role (trust checks) and, for container
  // credentials, the association as eks-auth sees it.
  const visibleAt = async (id: (typeof ids)[number]): Promise<number> => {
    const roleAt = Date.parse(sim.control.roleVisibleAt(id.roleName)!);
    if (id.mode === 'wi') return roleAt;
    id.associationId ??= (await aws.eks.list(CLUSTER, { namespace: id.ns, serviceAccount: id.sa }))[0]
      ?.associationId;
    return Math.max(roleAt, Date.parse(sim.control.association(id.associationId!)!.visibleAt.eksAuth!));
  };
  const vis = new Map<(typeof ids)[number], number>();
  for (const id of ids) vis.set(id, await visibleAt(id));
  // First successful exchange per identity, from the simulator's log: splits proof latency from release latency.
  const firstOk = new Map<string, number>();
  for (const e of sim.control.log()) {
    if (e.status !== 200) continue;
    let key: string | undefined;
    if (e.operation === 'AssumeRoleForPodIdentity' && e.service === 'eks-auth')
      key = `${e.output?.namespace}/${e.output?.serviceAccount}`;
    if (e.operation === 'AssumeRoleWithWebIdentity') {
      const i = ids.find((x) => e.input.roleArn?.endsWith(`/${x.roleName}`));
      if (i) key = `${i.ns}/${i.sa}`;
    }
    if (key && !firstOk.has(key)) firstOk.set(key, Date.parse(e.time));
  }
  const toExchange = ids
    .map((i) => (firstOk.get(`${i.ns}/${i.sa}`) ?? NaN) - vis.get(i)!)
    .filter((x) => Number.isFinite(x));
  const fromVisible: number[] = [];
  const fromReady: number[] = [];
  for (const p of pods.filter((x) => x.gated && released.has(x.key))) {
    const v = vis.get(p.id)!;
    const r = released.get(p.key)!;
    fromReady.push(r - Math.max(v, p.created));
    if (p.created < v) fromVisible.push(r - v);
  }
  const releaseLatency = {
    pods: pods.length,
    gatedAtAdmission: pods.filter((p) => p.gated).length,
    released: pods.filter((p) => p.gated && released.has(p.key)).length,
    admittedUngatedFromVerifiedSet: pods.filter((p) => !p.gated).length,
    fromVisibleAtMs: {
      n: fromVisible.length,
      p50: pct(fromVisible, 50),
      p95: pct(fromVisible, 95),
      max: pct(fromVisible, 100),
    },
    visibleAtToFirstExchangeMs: {
      n: toExchange.length,
      p50: pct(toExchange, 50),
      p95: pct(toExchange, 95),
      max: pct(toExchange, 100),
    },
    fromMaxOfCreationAndVisibleAtMs: {
      n: fromReady.length,
      p50: pct(fromReady, 50),
      p95: pct(fromReady, 95),
      max: pct(fromReady, 100),
    },
  };

  // ---- (2) admission cost: verified identity vs no identity, through the real webhook ----
  await ns(kube, 'adm', {});
  const role = `arn:aws:iam::${sim.control.account}:role/adm`;
  const sa = await kube.create('/api/v1/namespaces/adm/serviceaccounts', {
    metadata: { name: 'verified', annotations: { 'eks.amazonaws.com/role-arn': role } },
  });
  await kube.create('/api/v1/namespaces/adm/serviceaccounts', { metadata: { name: 'plain' } });
  const id = {
    mode: 'WebIdentity' as const,
    serviceAccount: 'verified',
    roleARN: role,
    audience: 'sts.amazonaws.com',
  };
  const vi = buildVerifiedIdentity({
    namespace: 'adm',
    id,
    fingerprint: fingerprintOf({
      source: 'service_account',
      saUid: sa.metadata.uid,
      roleARN: role,
      audience: 'sts.amazonaws.com',
      regionalSts: false,
    }),
    assumedRoleARN: `arn:aws:sts::${sim.control.account}:assumed-role/adm/bench`,
    verifiedAtMs: Date.now(),
    ttlMs: 3_600_000,
    podName: 'seed',
  });
  await kube.create('/apis/lanyard.dev/v1alpha1/namespaces/adm/verifiedidentities', vi);
  const agent = new https.Agent({ keepAlive: true, ca: webhook.caPem, maxSockets: 1 });
  const review = (saName: string, i: number) =>
    JSON.stringify({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: `u-${saName}-${i}`,
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        namespace: 'adm',
        operation: 'CREATE',
        userInfo: { username: 'bench' },
        object: {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `p-${i}`, namespace: 'adm' },
          spec: {
            serviceAccountName: saName,
            containers: [{ name: 'app', image: 'x', env: [{ name: 'A', value: 'b' }] }],
          },
        },
      },
    });
  const post = (body: string) =>
    new Promise<{ ms: number; json: Json }>((resolve, reject) => {
      const started = performance.now();
      const req = https.request(
        {
          host: '127.0.0.1',
          port: webhook.port,
          path: '/mutate',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let data = '';
          res.on('data', (d) => (data += d));
          res.on('end', () => resolve({ ms: performance.now() - started, json: JSON.parse(data) }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  // Wait until the caches hold the SA and the VerifiedIdentity (the webhook answers ungated).
  for (;;) {
    const r = await post(review('verified', -1));
    const patch = JSON.parse(Buffer.from(r.json.response.patch ?? '', 'base64').toString() || '[]');
    if (!JSON.stringify(patch).includes(GATE) && patch.length > 0) break;
    await sleep(100);
  }
  for (let i = 0; i < 300; i++) {
    await post(review('verified', i));
    await post(review('plain', i));
  }
  const verifiedMs: number[] = [];
  const plainMs: number[] = [];
  const before = requests;
  for (let i = 0; i < ADMISSIONS; i++) {
    // Interleaved, so drift (GC, other load) hits both sides alike.
    verifiedMs.push((await post(review('verified', i))).ms);
    plainMs.push((await post(review('plain', i))).ms);
  }
  const outbound = requests - before;
  const skipped =
    (await metrics.getSingleMetricAsString('lanyard_webhook_gate_skipped_total'))
      .split('\n')
      .find((l) => l.includes('verified')) ?? '';
  const admission = {
    requestsPerSide: ADMISSIONS,
    verifiedIdentityMs: { p50: round(pct(verifiedMs, 50)), p95: round(pct(verifiedMs, 95)) },
    noIdentityMs: { p50: round(pct(plainMs, 50)), p95: round(pct(plainMs, 95)) },
    p50DeltaMs: round(pct(verifiedMs, 50) - pct(plainMs, 50)),
    outboundApiRequestsDuringRun: outbound,
    gateSkippedVerified: skipped,
  };
  agent.destroy();

  const result = {
    date: new Date().toISOString(),
    node: process.version,
    releaseLatency,
    admission,
    totalSeconds: round((Date.now() - t0) / 1000, 1),
  };
  const md = [
    '# Verification benchmark (docs/verified-start.md#measured)',
    '',
    `Run ${result.date}, Node ${result.node}, ${result.totalSeconds} s in total. Command: \`npm run bench:verification\`.`,
    '',
    '## Release latency (goal: p95 < 1 s from visibleAt)',
    '',
    `${releaseLatency.pods} Pods over 50 identities (25 per mode), eksAuth and iam.role visibility 0–20 s; ${releaseLatency.gatedAtAdmission} gated at admission, ` +
      `${releaseLatency.admittedUngatedFromVerifiedSet} admitted ungated from the verified set, ${releaseLatency.released} released.`,
    '',
    '| Measure | n | p50 ms | p95 ms | max ms |',
    '|---|---|---|---|---|',
    `| visibleAt → gate removed (Pods created before visibleAt) | ${releaseLatency.fromVisibleAtMs.n} | ${releaseLatency.fromVisibleAtMs.p50} | ${releaseLatency.fromVisibleAtMs.p95} | ${releaseLatency.fromVisibleAtMs.max} |`,
    `| visibleAt → first successful exchange (per identity) | ${releaseLatency.visibleAtToFirstExchangeMs.n} | ${releaseLatency.visibleAtToFirstExchangeMs.p50} | ${releaseLatency.visibleAtToFirstExchangeMs.p95} | ${releaseLatency.visibleAtToFirstExchangeMs.max} |`,
    `| max(creation, visibleAt) → gate removed (all gated Pods) | ${releaseLatency.fromMaxOfCreationAndVisibleAtMs.n} | ${releaseLatency.fromMaxOfCreationAndVisibleAtMs.p50} | ${releaseLatency.fromMaxOfCreationAndVisibleAtMs.p95} | ${releaseLatency.fromMaxOfCreationAndVisibleAtMs.max} |`,
    '',
    '## Admission cost: verified identity vs no identity (goal: p50 delta < 0.1 ms, zero outbound requests)',
    '',
    '| Corpus | p50 ms | p95 ms |',
    '|---|---|---|',
    `| verified identity (SA role, VerifiedIdentity cached) | ${admission.verifiedIdentityMs.p50} | ${admission.verifiedIdentityMs.p95} |`,
    `| no identity | ${admission.noIdentityMs.p50} | ${admission.noIdentityMs.p95} |`,
    '',
    `p50 delta ${admission.p50DeltaMs} ms over ${ADMISSIONS} requests per side (client round trip over keep-alive HTTPS); ` +
      `${outbound} outbound API requests during the run.`,
    '',
  ].join('\n');
  const out = path.resolve(import.meta.dirname, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'verification.json'), JSON.stringify(result, null, 2));
  fs.writeFileSync(path.join(out, 'verification.md'), md);
  process.stdout.write(md);

  await controller.stop();
  await webhook.stop();
  await guard.stop();
  await lookup.stop();
  aws.destroy();
  await sim.close();
  kube.close();
  webhookKube.close();
  await cp.stop();
}

await main();
