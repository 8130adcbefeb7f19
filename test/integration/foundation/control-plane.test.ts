// Proves the test control plane is real: kube-controller-manager runs, tokens authenticate and verify against
// OIDC discovery, RBAC decides, the API server calls a loopback webhook, and the garbage collector deletes dependants.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { createKubeClient, KubeApiError, type KubeClient } from '../../../src/kube/client.ts';
import { adminClient, controlPlane, eventually, newNamespace } from '../../harness/context.ts';

let admin: KubeClient;
beforeAll(async () => {
  admin = await adminClient();
});
afterAll(() => admin.close());

async function whoAmI(token: string): Promise<{ username: string; groups: string[] }> {
  const cp = controlPlane();
  const client = await createKubeClient({
    server: cp.server,
    token,
    caData: Buffer.from(cp.caPem).toString('base64'),
  });
  try {
    const r = await client.create('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'SelfSubjectReview',
    });
    return r.status.userInfo;
  } finally {
    client.close();
  }
}

describe('control plane', () => {
  it('gives a new namespace its default ServiceAccount (kube-controller-manager runs)', async () => {
    const ns = await newNamespace(admin, 'found');
    const sa = await admin.get(`/api/v1/namespaces/${ns}/serviceaccounts/default`);
    expect(sa.metadata.name).toBe('default');
    // The root-CA publisher runs too: projected Kubernetes API volumes need kube-root-ca.crt.
    const cm = await eventually(() => admin.get(`/api/v1/namespaces/${ns}/configmaps/kube-root-ca.crt`));
    expect(cm.data['ca.crt']).toContain('BEGIN CERTIFICATE');
  });

  it('fills a service-account-token Secret, and that token authenticates', async () => {
    const ns = await newNamespace(admin, 'found');
    await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { metadata: { name: 'bot' } });
    await admin.create(`/api/v1/namespaces/${ns}/secrets`, {
      metadata: { name: 'bot-token', annotations: { 'kubernetes.io/service-account.name': 'bot' } },
      type: 'kubernetes.io/service-account-token',
    });
    const secret = await eventually(async () => {
      const s = await admin.get(`/api/v1/namespaces/${ns}/secrets/bot-token`);
      if (!s.data?.token) throw new Error('token not filled yet');
      return s;
    }, 15_000);
    const token = Buffer.from(secret.data.token, 'base64').toString('utf8');
    const user = await whoAmI(token);
    expect(user.username).toBe(`system:serviceaccount:${ns}:bot`);
    expect(user.groups).toContain(`system:serviceaccounts:${ns}`);
  });

  it('issues Pod-bound TokenRequest tokens that authenticate and verify against OIDC discovery and JWKS', async () => {
    const cp = controlPlane();
    const ns = await newNamespace(admin, 'found');
    const pod = await admin.create(`/api/v1/namespaces/${ns}/pods`, {
      metadata: { name: 'p' },
      spec: { containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }] },
    });
    const tr = await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts/default/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: ['sts.amazonaws.com'],
        expirationSeconds: 600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'p', uid: pod.metadata.uid },
      },
    });
    const token: string = tr.status.token;
    // Discovery is readable without credentials, as EKS publishes it.
    const agent = new https.Agent({ ca: cp.caPem });
    const discovery = await new Promise<{ issuer: string; jwks_uri: string }>((resolve, reject) => {
      https
        .get(`${cp.issuer}/.well-known/openid-configuration`, { agent }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(body))));
        })
        .on('error', reject);
    });
    expect(discovery.issuer).toBe(cp.issuer);
    // The JWKS too, then the token verifies against it with the issuer and audience it was asked for.
    const jwksBody = await new Promise<unknown>((resolve, reject) => {
      https
        .get(discovery.jwks_uri, { agent }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(body))));
        })
        .on('error', reject);
    });
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwksBody as JSONWebKeySet), {
      issuer: cp.issuer,
      audience: 'sts.amazonaws.com',
    });
    expect(payload.sub).toBe(`system:serviceaccount:${ns}:default`);
    expect((payload as { 'kubernetes.io': { pod: { uid: string } } })['kubernetes.io'].pod.uid).toBe(
      pod.metadata.uid,
    );
    // A token for the API server's own audience authenticates.
    const apiToken = await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts/default/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        expirationSeconds: 600,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'p', uid: pod.metadata.uid },
      },
    });
    expect((await whoAmI(apiToken.status.token)).username).toBe(`system:serviceaccount:${ns}:default`);
  });

  it('enforces RBAC: forbidden without a binding, allowed with a Role and RoleBinding', async () => {
    const cp = controlPlane();
    const ns = await newNamespace(admin, 'found');
    const tr = await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts/default/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 600 },
    });
    const sa = await createKubeClient({
      server: cp.server,
      token: tr.status.token,
      caData: Buffer.from(cp.caPem).toString('base64'),
    });
    try {
      const err = await sa.get(`/api/v1/namespaces/${ns}/configmaps`).catch((e) => e);
      expect(err).toBeInstanceOf(KubeApiError);
      expect((err as KubeApiError).status).toBe(403);
      await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
        metadata: { name: 'cm-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      });
      await admin.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
        metadata: { name: 'cm-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: ns }],
      });
      const list = await eventually(() => sa.get(`/api/v1/namespaces/${ns}/configmaps`));
      expect(list.kind).toBe('ConfigMapList');
    } finally {
      sa.close();
    }
  });

  it('calls a loopback HTTPS webhook through a MutatingWebhookConfiguration and stores its patch', async () => {
    const ns = await newNamespace(admin, 'found', { 'lanyard.dev/foundation-webhook': 'on' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'found-wh-'));
    const ssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    ssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=wh',
      '-keyout',
      'k.pem',
      '-out',
      'c.pem',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    const cert = fs.readFileSync(path.join(dir, 'c.pem'), 'utf8');
    const key = fs.readFileSync(path.join(dir, 'k.pem'), 'utf8');
    let calls = 0;
    const server = https.createServer({ cert, key }, (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        calls++;
        const review = JSON.parse(body);
        const patch = [{ op: 'add', path: '/metadata/labels', value: { 'mutated-by': 'foundation-test' } }];
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            apiVersion: review.apiVersion,
            kind: 'AdmissionReview',
            response: {
              uid: review.request.uid,
              allowed: true,
              patchType: 'JSONPatch',
              patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
            },
          }),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    const name = `foundation-${ns}`;
    try {
      await admin.create('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', {
        metadata: { name },
        webhooks: [
          {
            name: 'foundation.lanyard.dev',
            admissionReviewVersions: ['v1'],
            sideEffects: 'None',
            failurePolicy: 'Fail',
            timeoutSeconds: 5,
            clientConfig: {
              url: `https://127.0.0.1:${port}/mutate`,
              caBundle: Buffer.from(cert).toString('base64'),
            },
            rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
            namespaceSelector: { matchLabels: { 'lanyard.dev/foundation-webhook': 'on' } },
          },
        ],
      });
      // The configuration reaches the API server through an informer; retry until a Pod comes back mutated.
      const pod = await eventually(
        async () => {
          const p = await admin.create(
            `/api/v1/namespaces/${ns}/pods`,
            {
              metadata: { generateName: 'p-' },
              spec: { containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }] },
            },
            { dryRun: 'All' },
          );
          if (p.metadata.labels?.['mutated-by'] !== 'foundation-test') throw new Error('not mutated yet');
          return p;
        },
        15_000,
        200,
      );
      expect(pod.metadata.labels['mutated-by']).toBe('foundation-test');
      const stored = await admin.create(`/api/v1/namespaces/${ns}/pods`, {
        metadata: { name: 'stored' },
        spec: { containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10' }] },
      });
      expect((await admin.get(`/api/v1/namespaces/${ns}/pods/stored`)).metadata.labels['mutated-by']).toBe(
        'foundation-test',
      );
      expect(stored.metadata.labels['mutated-by']).toBe('foundation-test');
      expect(calls).toBeGreaterThanOrEqual(2);
    } finally {
      await admin
        .delete(`/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${name}`)
        .catch(() => {});
      server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('deletes dependants when their owner is deleted (garbage collector runs)', async () => {
    const ns = await newNamespace(admin, 'found');
    const owner = await admin.create(`/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'owner' } });
    await admin.create(`/api/v1/namespaces/${ns}/configmaps`, {
      metadata: {
        name: 'dependant',
        ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata.uid }],
      },
    });
    await admin.delete(`/api/v1/namespaces/${ns}/configmaps/owner`);
    await eventually(
      async () => {
        const r = await admin.raw({ path: `/api/v1/namespaces/${ns}/configmaps/dependant` });
        if (r.status !== 404) throw new Error(`dependant still there (${r.status})`);
      },
      30_000,
      200,
    );
  });
});
