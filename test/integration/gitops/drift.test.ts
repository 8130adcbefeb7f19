// No permanent drift under GitOps (docs/gitops.md): the chart is rendered with the real helm, its webhook
// configuration created on the real API server as Argo CD creates it, and the real webhook started with the arguments
// the chart gives it (it fills in the caBundle). Every field some manager other than the one that applied the chart
// then owns is a field Lanyard changes after install; each must be covered by the ignore rule of
// deploy/argocd/lanyard-application.yaml, as Argo CD's own diff (tools/argocd-health) decides.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Registry } from 'prom-client';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { createKubeClient } from '../../../src/kube/client.ts';
import { silentLogger } from '../../../src/runtime/log.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { helmBinary } from '../../../src/sandbox/binaries.ts';
import { PACKAGE_ROOT } from '../../../src/sandbox/paths.ts';
import { parseWebhookFlags } from '../../../src/config/webhook.ts';
import { startWebhook, type RunningWebhook } from '../../../src/webhook/index.ts';
import { adminClient, controlPlane, eventually, newNamespace } from '../../harness/context.ts';
import { ARGOCD_DIR, BUILD_TIMEOUT_MS, argocdDiff, argocdHealthBinary } from './argocd.ts';

const MWC_API = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
const APPLIER = 'argocd-controller';
const application: Json = parse(fs.readFileSync(path.join(ARGOCD_DIR, 'lanyard-application.yaml'), 'utf8'));
const withoutIgnores: Json = { ...application, spec: { ...application.spec, ignoreDifferences: undefined } };

let admin: KubeClient;
let webhookKube: KubeClient;
let webhook: RunningWebhook | undefined;
let ns: string;
let configName: string;
let desired: Json;
let live: Json;

function render(namespace: string, values: string[]): Json[] {
  const out = execFileSync(
    helmBinary(),
    [
      'template',
      'lanyard',
      `${PACKAGE_ROOT}/deploy/helm/lanyard`,
      '--namespace',
      namespace,
      '--kube-version',
      '1.36.3',
      ...values.flatMap((v) => ['--set', v]),
    ],
    { encoding: 'utf8' },
  );
  return parseAllDocuments(out)
    .map((d) => d.toJSON())
    .filter((o) => o?.kind);
}

/** A leaf of managedFields' fieldsV1, as steps: `f:name` (field) or `k:{...}` (list element by key). */
type Step = { field: string } | { key: Record<string, unknown> };
function leaves(fields: Json, prefix: Step[] = []): Step[][] {
  const out: Step[][] = [];
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (k === '.') continue;
    const step: Step = k.startsWith('f:') ? { field: k.slice(2) } : { key: JSON.parse(k.slice(2)) };
    const children = leaves(v as Json, [...prefix, step]);
    out.push(...(children.length > 0 ? children : [[...prefix, step]]));
  }
  return out;
}
const show = (p: Step[]) =>
  p.map((s) => ('field' in s ? `.${s.field}` : `[${JSON.stringify(s.key)}]`)).join('');

/** Sets the value at a path in a copy of obj (list elements found by their keys). */
function setAt(obj: Json, p: Step[], value: unknown): Json {
  const copy = structuredClone(obj);
  let cur: Json = copy;
  p.forEach((s, i) => {
    const last = i === p.length - 1;
    if ('field' in s) {
      if (last) cur[s.field] = value;
      else cur = cur[s.field] ??= {};
    } else {
      const el = (cur as Json[]).find((e) => Object.entries(s.key).every(([k, v]) => e[k] === v));
      if (!el) throw new Error(`no list element ${JSON.stringify(s.key)} in the desired object`);
      cur = el;
    }
  });
  return copy;
}

beforeAll(async () => {
  argocdHealthBinary();
  admin = await adminClient();
  ns = await newNamespace(admin, 'gitops-drift');
  configName = `lanyard-gitops-${ns}`.slice(0, 63);
  // failurePolicy Ignore and a 1 s timeout: this configuration points at a Service that does not exist here, and must
  // not stand in the way of Pods other tests create meanwhile.
  const objects = render(ns, [
    `webhook.webhookConfigName=${configName}`,
    'webhook.failurePolicy=Ignore',
    'webhook.timeoutSeconds=1',
  ]);
  desired = objects.find((o) => o.kind === 'MutatingWebhookConfiguration')!;
  // As Argo CD's client-side apply creates it: the last-applied annotation, Argo CD's field manager.
  await admin.create(
    MWC_API,
    {
      ...desired,
      metadata: {
        ...desired.metadata,
        annotations: {
          ...desired.metadata.annotations,
          'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(desired),
        },
      },
    },
    { fieldManager: APPLIER },
  );

  // The real webhook with the chart's own arguments (ports and namespace adapted to this test process).
  const deployment = objects.find(
    (o) => o.kind === 'Deployment' && o.spec.template.spec.containers[0].args[0] === 'webhook',
  )!;
  const args = (deployment.spec.template.spec.containers[0].args as string[])
    .slice(1)
    .filter((a) => !/^--(port|metrics-port)=/.test(a))
    .concat(['--port=0', '--metrics-port=0', '--shutdown-delay=0s', '--identity-gate=false']);
  const config = parseWebhookFlags(args, { env: { POD_NAMESPACE: ns } });
  webhookKube = await createKubeClient({
    kubeconfig: controlPlane().adminKubeconfig,
    userAgent: 'lanyard-webhook',
  });
  webhook = await startWebhook(config, {
    kube: webhookKube,
    log: silentLogger(),
    metrics: new Registry(),
    clock: systemClock,
  });
  live = await eventually(async () => {
    const mwc = await admin.get(`${MWC_API}/${configName}`);
    for (const w of mwc.webhooks)
      if (!w.clientConfig.caBundle) throw new Error(`webhook ${w.name} has no caBundle yet`);
    return mwc;
  }, 30_000);
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  await webhook?.stop();
  webhookKube?.close();
  await admin?.delete(`${MWC_API}/${configName}`).catch(() => undefined);
  await admin?.delete(`/api/v1/namespaces/${ns}`).catch(() => undefined);
  admin?.close();
});

describe("fields Lanyard writes into the chart's objects after install", () => {
  it('are the caBundles of the webhook configuration, written by the webhook itself', () => {
    const runtime = (live.metadata.managedFields as Json[]).filter((m) => m.manager !== APPLIER);
    expect(runtime.map((m) => m.manager)).toEqual(['lanyard-webhook']);
    const paths = runtime
      .flatMap((m) => leaves(m.fieldsV1))
      .map(show)
      .sort();
    expect(paths).toEqual(
      desired.webhooks.map((w: Json) => `.webhooks[{"name":"${w.name}"}].clientConfig.caBundle`).sort(),
    );
  });

  it('each have an ignore rule: Argo CD reports no diff even where Git sets another value, and would without the rule', () => {
    const runtime = (live.metadata.managedFields as Json[]).filter((m) => m.manager !== APPLIER);
    const paths = runtime.flatMap((m) => leaves(m.fieldsV1));
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) {
      const gitSaysOtherwise = setAt(desired, p, Buffer.from('not the runtime CA').toString('base64'));
      const [withRule] = argocdDiff(application, [gitSaysOtherwise], [live]);
      expect(withRule!.modified, `${show(p)} is not covered by the ignore rule`).toBe(false);
      const [withoutRule] = argocdDiff(withoutIgnores, [gitSaysOtherwise], [live]);
      expect(
        withoutRule!.modified,
        `${show(p)} set otherwise in Git should show as drift without the rule`,
      ).toBe(true);
    }
  });

  it('leave the webhook configuration Synced in Argo CD once the webhook has written them', () => {
    const [d] = argocdDiff(application, [desired], [live]);
    expect(d).toMatchObject({ kind: 'MutatingWebhookConfiguration', name: configName, modified: false });
  });

  it("are not drift for Argo CD's default diff even without the rule, since the chart leaves them out of Git", () => {
    // Three-way (live carries the last-applied annotation, as after an Argo CD sync) and two-way (as after helm or a
    // server-side apply): a field that Git does not set is not compared. The rule is for Git sources that do set it
    // and for syncs that replace the object (RespectIgnoreDifferences).
    const twoWay = structuredClone(live);
    delete twoWay.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'];
    expect(argocdDiff(withoutIgnores, [desired, desired], [live, twoWay]).map((d) => d.modified)).toEqual([
      false,
      false,
    ]);
  });

  it("are declared on the object itself, in the syntax of the Application's ignore rule", () => {
    const declared = String(live.metadata.annotations['lanyard.dev/runtime-fields'])
      .split('\n')
      .filter(Boolean);
    const rule = (application.spec.ignoreDifferences as Json[]).find(
      (r) => r.kind === 'MutatingWebhookConfiguration',
    );
    expect(rule.jqPathExpressions).toEqual(declared);
  });
});
