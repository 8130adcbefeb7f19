// Injection end to end (docs/webhook.md): Pods created through the real kube-apiserver, mutated by the webhook
// running in-process and registered through a MutatingWebhookConfiguration. The webhook reaches the API server through
// a proxy that can hold back its ServiceAccount watch (test/harness/lagging-api-proxy.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { generateCa, issueServing } from '../../../src/webhook/certificates.ts';
import { applyAddPatch } from '../../fixtures/identity.ts';
import { adminClient, eventually, newNamespace } from '../../harness/context.ts';
import { startLaggingApiProxy, type LaggingApiProxy } from '../../harness/lagging-api-proxy.ts';
import {
  createPod,
  createSa,
  envOf,
  MWC_PATH,
  mwc,
  podSpec,
  startTestWebhook,
  type TestWebhook,
} from './helpers.ts';

const ROLE = 'arn:aws:iam::111122223333:role/uploader';
const CM_ROLE = 'arn:aws:iam::111122223333:role/from-configmap';
const WILD_ROLE = 'arn:aws:iam::111122223333:role/from-wildcard';
const IRSA_FILE = '/var/run/secrets/eks.amazonaws.com/serviceaccount/token';

let admin: KubeClient;
let proxy: LaggingApiProxy;
let viaProxy: KubeClient;
let wh: TestWebhook;
let cmNamespace: string;
let idsDir: string;

/** A ConfigMap-style mounted directory: identities.json → ..data/identities.json, ..data → ..<version>. */
function writeIdentities(version: string, pairs: Array<[string, string]>): void {
  const v = path.join(idsDir, `..${version}`);
  fs.mkdirSync(v);
  fs.writeFileSync(
    path.join(v, 'identities.json'),
    JSON.stringify({
      identities: pairs.map(([namespace, serviceAccount]) => ({ namespace, serviceAccount })),
    }),
  );
  const tmp = path.join(idsDir, '..data_tmp');
  fs.symlinkSync(`..${version}`, tmp);
  fs.renameSync(tmp, path.join(idsDir, '..data'));
  if (!fs.existsSync(path.join(idsDir, 'identities.json')))
    fs.symlinkSync('..data/identities.json', path.join(idsDir, 'identities.json'));
}

beforeAll(async () => {
  admin = await adminClient();
  proxy = await startLaggingApiProxy();
  viaProxy = await proxy.client();
  idsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-ids-'));
  writeIdentities('v1', []);
  // The kOps ConfigMap lives in the webhook's own (unlabelled) namespace.
  cmNamespace = await newNamespace(admin, 'wh-cm');
  wh = await startTestWebhook(
    admin,
    [
      '--watch-config-map',
      `--namespace=${cmNamespace}`,
      `--watch-container-credentials-config=${path.join(idsDir, 'identities.json')}`,
      '--aws-default-region=eu-west-1',
    ],
    {
      systemNamespace: cmNamespace,
      kube: viaProxy,
    },
  );
});

afterAll(async () => {
  await wh?.stop();
  viaProxy?.close();
  await proxy?.close();
  admin?.close();
});

const SA_WATCH = '/api/v1/serviceaccounts';
/** The ServiceAccount's ADDED event, held back by the proxy: the webhook's cache cannot have it. */
const saAdded = (ns: string, name: string) => (e: Json) =>
  e.type === 'ADDED' && e.object?.metadata?.namespace === ns && e.object?.metadata?.name === name;

describe('injection from an annotated ServiceAccount', () => {
  it('stores the Pod with env in order, the projected volume and the mount; kube-api-access untouched', async () => {
    const ns = await wh.namespace();
    await createSa(admin, ns, 'uploader', {
      'eks.amazonaws.com/role-arn': ROLE,
      'eks.amazonaws.com/sts-regional-endpoints': 'true',
    });
    await eventually(async () => {
      const dry = await createPod(admin, ns, podSpec('probe', 'uploader'));
      if (!envOf(dry).AWS_ROLE_ARN) throw new Error('SA not cached yet');
    });
    await createPod(admin, ns, podSpec('web', 'uploader'), true);
    const pod = await admin.get(`/api/v1/namespaces/${ns}/pods/web`);
    expect(pod.spec.containers[0].env.map((e: Json) => e.name)).toEqual([
      'LOG',
      'AWS_STS_REGIONAL_ENDPOINTS',
      'AWS_DEFAULT_REGION',
      'AWS_REGION',
      'AWS_ROLE_ARN',
      'AWS_WEB_IDENTITY_TOKEN_FILE',
    ]);
    expect(envOf(pod)).toMatchObject({
      AWS_ROLE_ARN: ROLE,
      AWS_WEB_IDENTITY_TOKEN_FILE: IRSA_FILE,
      AWS_REGION: 'eu-west-1',
    });
    const vol = pod.spec.volumes.find((v: Json) => v.name === 'aws-iam-token');
    expect(vol.projected.sources[0].serviceAccountToken).toEqual({
      audience: 'sts.amazonaws.com',
      expirationSeconds: 86400,
      path: 'token',
    });
    const mounts = pod.spec.containers[0].volumeMounts;
    expect(mounts).toContainEqual({
      name: 'aws-iam-token',
      readOnly: true,
      mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
    });
    const api = pod.spec.volumes.find((v: Json) => v.name.startsWith('kube-api-access-'));
    expect(api.projected.sources).toContainEqual({
      serviceAccountToken: expect.objectContaining({ path: 'token' }),
    });
    expect(mounts.find((m: Json) => m.name === api.name)).toMatchObject({
      mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      readOnly: true,
    });
    expect(
      await wh.metric('lanyard_webhook_admissions_total', { outcome: 'mutated', source: 'service_account' }),
    ).toBeGreaterThan(0);
  });
});

describe('a ServiceAccount not yet in the cache', () => {
  it('fetches an SA created right before the Pod while the watch is held back', async () => {
    const ns = await wh.namespace();
    const fetched = await wh.metric('lanyard_webhook_sa_lookups_total', { result: 'fetched' });
    const held = proxy.holdWatches(SA_WATCH);
    try {
      await createSa(admin, ns, 'late', { 'eks.amazonaws.com/role-arn': ROLE });
      await held.holding(saAdded(ns, 'late'));
      const pod = await createPod(admin, ns, podSpec('late', 'late'), true);
      expect(envOf(pod).AWS_ROLE_ARN).toBe(ROLE);
      expect(await wh.metric('lanyard_webhook_sa_lookups_total', { result: 'fetched' })).toBe(fetched + 1);
    } finally {
      held.release();
    }
  });

  it('admits unmutated after a 200 ms grace when the GET hangs, with one warning naming Pod and SA', async () => {
    // A second webhook whose live ServiceAccount GETs never answer.
    const hanging = Object.create(viaProxy) as KubeClient;
    hanging.request = <T>(req: Parameters<KubeClient['request']>[0]): Promise<T> =>
      /\/namespaces\/[^/]+\/serviceaccounts\/[^/]+$/.test(req.path)
        ? new Promise<T>((_r, reject) =>
            req.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true }),
          )
        : viaProxy.request<T>(req);
    const slow = await startTestWebhook(admin, ['--service-account-lookup-grace-period=200ms'], {
      kube: hanging,
    });
    const ns = await slow.namespace();
    const held = proxy.holdWatches(SA_WATCH);
    try {
      await createSa(admin, ns, 'hung', { 'eks.amazonaws.com/role-arn': ROLE });
      await held.holding(saAdded(ns, 'hung'));
      const pod = await createPod(admin, ns, podSpec('hung-pod', 'hung'), true);
      expect(envOf(pod).AWS_ROLE_ARN).toBeUndefined();
      expect(pod.spec.volumes.some((v: Json) => v.name === 'aws-iam-token')).toBe(false);
      expect(await slow.metric('pod_identity_webhook_missing_sa_count')).toBe(1);
      expect(await slow.metric('lanyard_webhook_sa_lookups_total', { result: 'timeout' })).toBe(1);
      const warnings = slow.logs.lines.filter((l) => l.level === 'warn' && l.serviceAccount === 'hung');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({
        namespace: ns,
        pod: 'hung-pod',
        serviceAccount: 'hung',
        result: 'timeout',
      });
    } finally {
      held.release();
      await slow.stop();
    }
  });
});

describe('injection from the kOps ConfigMap', () => {
  const cmPath = () => `/api/v1/namespaces/${cmNamespace}/configmaps`;
  const setConfig = async (config: string) => {
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'pod-identity-webhook' },
      data: { config },
    };
    try {
      const cur = await admin.get(`${cmPath()}/pod-identity-webhook`);
      await admin.update(`${cmPath()}/pod-identity-webhook`, {
        ...body,
        metadata: { ...body.metadata, resourceVersion: cur.metadata.resourceVersion },
      });
    } catch {
      await admin.create(cmPath(), body);
    }
  };
  const roleOf = async (ns: string, sa: string) =>
    envOf(await createPod(admin, ns, podSpec(`p-${Date.now()}`, sa))).AWS_ROLE_ARN;

  it('exact key, wildcard, SA annotation precedence, removal, invalid JSON and delete', async () => {
    const ns = await wh.namespace();
    const other = await wh.namespace();
    await createSa(admin, ns, 'reader');
    await createSa(admin, other, 'reader');
    await createSa(admin, ns, 'annotated', { 'eks.amazonaws.com/role-arn': ROLE });
    await setConfig(
      JSON.stringify({
        [`${ns}/reader`]: { RoleARN: CM_ROLE },
        '*/reader': { RoleARN: WILD_ROLE },
        [`${ns}/annotated`]: { RoleARN: CM_ROLE },
        nokey: { RoleARN: 'x' },
      }),
    );
    await eventually(async () => expect(await roleOf(ns, 'reader')).toBe(CM_ROLE));
    expect(await roleOf(other, 'reader')).toBe(WILD_ROLE);
    expect(await roleOf(ns, 'annotated')).toBe(ROLE);
    expect(wh.logs.lines.some((l) => l.level === 'warn' && l.key === 'nokey')).toBe(true);

    // Removing the exact key: the wildcard applies.
    await setConfig(JSON.stringify({ '*/reader': { RoleARN: WILD_ROLE } }));
    await eventually(async () => expect(await roleOf(ns, 'reader')).toBe(WILD_ROLE));

    // Invalid JSON keeps the previous state.
    const invalidBefore = await wh.metric('lanyard_webhook_config_reloads_total', {
      source: 'configmap',
      result: 'invalid',
    });
    await setConfig('{not json');
    await eventually(async () =>
      expect(
        await wh.metric('lanyard_webhook_config_reloads_total', { source: 'configmap', result: 'invalid' }),
      ).toBe(invalidBefore + 1),
    );
    expect(await roleOf(other, 'reader')).toBe(WILD_ROLE);

    // Deleting the ConfigMap empties the table.
    await admin.delete(`${cmPath()}/pod-identity-webhook`);
    await eventually(async () => expect(await roleOf(other, 'reader')).toBeUndefined());
    expect(wh.hook.ready()).toBe(true);
  });
});

describe('injection from the identities file', () => {
  it('injects container credentials, beats a role ARN, and follows a ..data symlink swap within a poll', async () => {
    const ns = await wh.namespace();
    await createSa(admin, ns, 'agent', { 'eks.amazonaws.com/role-arn': ROLE });
    await createSa(admin, ns, 'second');
    writeIdentities('v2', [[ns, 'agent']]);
    const pod = await eventually(async () => {
      const p = await createPod(admin, ns, podSpec(`a-${Date.now()}`, 'agent'));
      if (!envOf(p).AWS_CONTAINER_CREDENTIALS_FULL_URI) throw new Error('file not applied yet');
      return p;
    }, 5000);
    const env = envOf(pod);
    expect(env.AWS_CONTAINER_CREDENTIALS_FULL_URI).toBe('http://169.254.170.23/v1/credentials');
    expect(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).toBe(
      '/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token',
    );
    expect(env.AWS_ROLE_ARN).toBeUndefined();
    expect(pod.metadata.labels['eks.amazonaws.com/pod-identity']).toBe('enabled');
    const token = pod.spec.volumes.find((v: Json) => v.name === 'eks-pod-identity-token').projected.sources[0]
      .serviceAccountToken;
    expect(token.audience).toBe('pods.eks.amazonaws.com');
    expect(token.expirationSeconds).toBeGreaterThanOrEqual(79200);
    expect(token.expirationSeconds).toBeLessThanOrEqual(86400);

    const swapped = Date.now();
    writeIdentities('v3', [[ns, 'second']]);
    await eventually(
      async () => {
        const p = await createPod(admin, ns, podSpec(`b-${Date.now()}`, 'second'));
        if (!envOf(p).AWS_CONTAINER_CREDENTIALS_FULL_URI) throw new Error('swap not applied yet');
      },
      5000,
      50,
    );
    // Poll interval is 500 ms; API round trips add a little.
    expect(Date.now() - swapped).toBeLessThan(1500);
    expect(envOf(await createPod(admin, ns, podSpec(`c-${Date.now()}`, 'agent'))).AWS_ROLE_ARN).toBe(ROLE);
  });
});

describe('unknown and recent Pod fields are kept', () => {
  it('posted directly: an invented probe type and an unknown container field stay byte-for-byte', async () => {
    const object = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'direct', namespace: 'x' },
      spec: {
        serviceAccountName: 'default',
        containers: [
          {
            name: 'app',
            telepathyProbe: { thoughts: ['a', 1] },
            livenessProbe: { quantum: { q: true } },
            unknownField: 42,
          },
        ],
      },
    };
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'direct-1',
        resource: { group: '', version: 'v1', resource: 'pods' },
        operation: 'CREATE',
        namespace: 'x',
        object,
      },
    };
    await admin.create(`/api/v1/namespaces/${cmNamespace}/configmaps`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'pod-identity-webhook' },
      data: { config: JSON.stringify({ 'x/default': { RoleARN: CM_ROLE } }) },
    });
    try {
      const res = await eventually(async () => {
        const r = await postReview(review);
        if (!r.response.patch) throw new Error('no patch yet');
        return r;
      });
      const patched = applyAddPatch(object, JSON.parse(Buffer.from(res.response.patch, 'base64').toString()));
      const c = patched.spec.containers[0];
      expect(JSON.stringify(c.telepathyProbe)).toBe(
        JSON.stringify(object.spec.containers[0]!.telepathyProbe),
      );
      expect(JSON.stringify(c.livenessProbe)).toBe('{"quantum":{"q":true}}');
      expect(c.unknownField).toBe(42);
    } finally {
      await admin
        .delete(`/api/v1/namespaces/${cmNamespace}/configmaps/pod-identity-webhook`)
        .catch(() => undefined);
    }
  });

  it('through the API server: gRPC probe, native sidecar restartPolicy, seccompProfile and resizePolicy survive', async () => {
    const ns = await wh.namespace();
    await createSa(admin, ns, 'modern', { 'eks.amazonaws.com/role-arn': ROLE });
    const spec = {
      initContainers: [{ name: 'sidecar', image: 'registry.invalid/s:1', restartPolicy: 'Always' }],
      containers: [
        {
          name: 'app',
          image: 'registry.invalid/app:1',
          livenessProbe: { grpc: { port: 9000, service: 'health' }, periodSeconds: 7 },
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
          resizePolicy: [{ resourceName: 'cpu', restartPolicy: 'NotRequired' }],
        },
      ],
    };
    const pod = await eventually(async () => {
      const p = await createPod(admin, ns, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'modern' },
        spec: { serviceAccountName: 'modern', ...spec },
      });
      if (!envOf(p).AWS_ROLE_ARN) throw new Error('SA not cached yet');
      return p;
    });
    expect(pod.spec.initContainers[0].restartPolicy).toBe('Always');
    expect(envOf({ spec: { containers: pod.spec.initContainers } }).AWS_ROLE_ARN).toBe(ROLE);
    expect(pod.spec.containers[0].livenessProbe.grpc).toEqual({ port: 9000, service: 'health' });
    expect(pod.spec.containers[0].livenessProbe.periodSeconds).toBe(7);
    expect(pod.spec.containers[0].securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(pod.spec.containers[0].resizePolicy).toEqual([
      { resourceName: 'cpu', restartPolicy: 'NotRequired' },
    ]);
  });
});

async function postReview(review: Json, contentType = 'application/json'): Promise<Json> {
  const r = await post(JSON.stringify(review), contentType);
  return r.json;
}

function post(
  body: string,
  contentType: string | undefined,
  method = 'POST',
): Promise<{ status: number; json: Json }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: wh.hook.port,
        path: '/mutate',
        method,
        ca: wh.hook.caPem,
        headers: contentType ? { 'content-type': contentType } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }),
        );
      },
    );
    req.on('error', reject);
    req.end(method === 'GET' ? undefined : body);
  });
}

describe('re-invocation: no double injection, late containers injected', () => {
  it('the patched Pod posted again gives no patch; a container added by a second webhook is injected on reinvocation', async () => {
    const ns = await wh.namespace();
    await createSa(admin, ns, 'reinv', { 'eks.amazonaws.com/role-arn': ROLE });
    const first = await eventually(async () => {
      const p = await createPod(admin, ns, podSpec('reinv', 'reinv'));
      if (!envOf(p).AWS_ROLE_ARN) throw new Error('SA not cached yet');
      return p;
    });
    const again = await postReview({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'again',
        resource: { group: '', version: 'v1', resource: 'pods' },
        operation: 'CREATE',
        namespace: ns,
        object: first,
      },
    });
    expect(again.response).toEqual({ uid: 'again', allowed: true });

    // A second webhook that appends a container, ordered after ours.
    const now = new Date();
    const ca = await generateCa('adder', now);
    const pair = await issueServing(
      ca,
      { namespace: 'adder', serviceName: 'adder', extraSans: ['127.0.0.1'], validityMs: 3600_000 },
      now,
    );
    const adder = https.createServer({ cert: pair.certPem, key: pair.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const review = JSON.parse(Buffer.concat(chunks).toString());
        const has = (review.request.object.spec.containers as Json[]).some((c) => c.name === 'added');
        const patch = has
          ? undefined
          : Buffer.from(
              JSON.stringify([
                {
                  op: 'add',
                  path: '/spec/containers/-',
                  value: { name: 'added', image: 'registry.invalid/added:1' },
                },
              ]),
            ).toString('base64');
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: review.apiVersion,
            kind: 'AdmissionReview',
            response: {
              uid: review.request.uid,
              allowed: true,
              ...(patch ? { patch, patchType: 'JSONPatch' } : {}),
            },
          }),
        );
      });
    });
    await new Promise<void>((r) => adder.listen(0, '127.0.0.1', () => r()));
    const adderName = `${wh.mwcName}-zz-adder`;
    const port = (adder.address() as { port: number }).port;
    await admin.create(
      MWC_PATH,
      mwc(adderName, port, ca.certPem, wh.label, { name: 'adder.lanyard.dev', reinvocationPolicy: 'Never' }),
    );
    try {
      const pod = await eventually(async () => {
        const p = await createPod(admin, ns, podSpec(`r-${Date.now()}`, 'reinv'));
        if (p.spec.containers.length < 2) throw new Error('adder not called yet');
        return p;
      });
      expect(pod.spec.containers.map((c: Json) => c.name)).toEqual(['app', 'added']);
      expect(envOf(pod, 1).AWS_ROLE_ARN).toBe(ROLE);
      expect(pod.spec.containers[1].volumeMounts).toContainEqual({
        name: 'aws-iam-token',
        readOnly: true,
        mountPath: '/var/run/secrets/eks.amazonaws.com/serviceaccount',
      });
      expect(pod.spec.volumes.filter((v: Json) => v.name === 'aws-iam-token')).toHaveLength(1);
    } finally {
      await admin.delete(`${MWC_PATH}/${adderName}`).catch(() => undefined);
      await new Promise<void>((r) => adder.close(() => r()));
    }
  });
});

describe('malformed AdmissionReviews and skipped Pods', () => {
  it.each<[string, string, string | undefined, string, number]>([
    ['method', '', 'application/json', 'GET', 405],
    ['media type', '{}', 'text/yaml', 'POST', 415],
    ['empty body', '', 'application/json', 'POST', 400],
    ['invalid JSON', '{"a":', 'application/json', 'POST', 400],
    ['not a review', '{"kind":"Pod","apiVersion":"v1"}', 'application/json', 'POST', 400],
    [
      'no uid',
      '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{}}',
      'application/json',
      'POST',
      400,
    ],
  ])(
    '%s → exact status and a JSON Status; the process keeps serving',
    async (_n, body, ct, method, status) => {
      const r = await post(body, ct, method);
      expect(r.status).toBe(status);
      expect(r.json).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: status });
      expect(wh.hook.ready()).toBe(true);
    },
  );

  it('echoes the uid with a 400 status for an unreadable Pod and allows non-Pods', async () => {
    const bad = await postReview({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u-bad',
        resource: { group: '', version: 'v1', resource: 'pods' },
        operation: 'CREATE',
        namespace: 'team-a',
        object: {
          metadata: { name: 'web-7d9f' },
          spec: { containers: [{ name: 'a' }, { name: 'b', env: 'x' }] },
        },
      },
    });
    expect(bad.response).toMatchObject({
      uid: 'u-bad',
      allowed: false,
      status: {
        code: 400,
        message: 'lanyard: cannot read Pod "team-a/web-7d9f": spec.containers[1].env must be an array',
      },
    });
    const other = await postReview({
      apiVersion: 'admission.k8s.io/v1beta1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u-cm',
        resource: { group: '', version: 'v1', resource: 'configmaps' },
        operation: 'CREATE',
        object: {},
      },
    });
    expect(other).toEqual({
      apiVersion: 'admission.k8s.io/v1beta1',
      kind: 'AdmissionReview',
      response: { uid: 'u-cm', allowed: true },
    });
  });

  it('the skip label keeps a Pod out (objectSelector, and in code)', async () => {
    const ns = await wh.namespace();
    await createSa(admin, ns, 'skipped', { 'eks.amazonaws.com/role-arn': ROLE });
    await eventually(async () => {
      if (!envOf(await createPod(admin, ns, podSpec(`s-${Date.now()}`, 'skipped'))).AWS_ROLE_ARN)
        throw new Error('SA not cached yet');
    });
    const calls = await wh.metric('http_request_count', { path: '/mutate' });
    const pod = podSpec('skip', 'skipped');
    pod.metadata.labels = { 'eks.amazonaws.com/skip-pod-identity-webhook': 'true' };
    expect(envOf(await createPod(admin, ns, pod)).AWS_ROLE_ARN).toBeUndefined();
    expect(await wh.metric('http_request_count', { path: '/mutate' })).toBe(calls);
  });
});
