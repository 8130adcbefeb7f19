// The self-managed CA rotates while Pods are being created (docs/webhook.md "TLS", docs/adr/0102): the chart's two
// webhook replicas share one CA and serving certificate in the Secret lanyard-webhook-tls and keep the
// MutatingWebhookConfiguration's caBundle current. A CA is renewed when it has under a year left: a new CA goes in
// front of the bundle, the caBundle then trusts both, and only then do the replicas move their serving certificate
// to the new CA. A test cannot wait nine years, so it gives the running CA an earlier end: the same key and
// subject, re-signed with 200 days left (what the Secret would hold in 2035). Everything after that is the
// product's own rotation, on the real node, with the API server calling the webhook through its Service.
import 'reflect-metadata';
import { webcrypto, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { splitPem } from '../../../src/webhook/certificates.ts';
import { eventually } from '../../harness/context.ts';
import { newNodeNamespace, node, nodeAdmin, podLogs, waitForPodPhase } from '../../harness/node-context.ts';
import {
  ACCOUNT,
  GATE,
  RELEASE_NS,
  awsAdmin,
  ensureLanyard,
  oidcProviderArn,
  roleArn,
  webIdentityTrust,
  whoamiPodSpec,
} from '../../harness/node-lanyard.ts';

const SECRET = `/api/v1/namespaces/${RELEASE_NS}/secrets/lanyard-webhook-tls`;
const MWC = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/lanyard-pod-identity';
const EC = { name: 'ECDSA', namedCurve: 'P-256' };
const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

let admin: KubeClient;
let ns: string;
beforeAll(async () => {
  admin = await nodeAdmin();
  ns = await newNodeNamespace(admin, 'rotation');
  const aws = awsAdmin();
  try {
    await aws.iam.createRole({
      roleName: 'node-rotation',
      assumeRolePolicyDocument: webIdentityTrust(
        await oidcProviderArn(aws),
        `system:serviceaccount:${ns}:rotator`,
      ),
    });
  } finally {
    aws.destroy();
  }
  await admin.create(`/api/v1/namespaces/${ns}/serviceaccounts`, {
    metadata: { name: 'rotator', annotations: { 'eks.amazonaws.com/role-arn': roleArn('node-rotation') } },
  });
  await ensureLanyard();
}, 300_000);
afterAll(() => admin?.close());

/** The CA `caPem` with the same key and subject, valid for `days` more days: the Secret as it will be near the CA's end. */
async function ageCa(caPem: string, caKeyPem: string, days: number): Promise<string> {
  const crypto = webcrypto;
  const ca = new x509.X509Certificate(caPem);
  const der = Buffer.from(caKeyPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const keys = {
    privateKey: await crypto.subtle.importKey('pkcs8', der, EC, false, ['sign']),
    publicKey: await ca.publicKey.export(EC, ['verify'], crypto),
  } as webcrypto.CryptoKeyPair;
  const aged = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber:
        '01' +
        webcrypto
          .getRandomValues(new Uint8Array(15))
          .reduce((s, b) => s + b.toString(16).padStart(2, '0'), ''),
      name: ca.subject,
      notBefore: new Date(Date.now() - 3600_000),
      notAfter: new Date(Date.now() + days * 24 * 3600_000),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return aged.toString('pem') + '\n';
}

/** The certificate a webhook Pod serves, read over TLS from the host (the Pod range is routed to the node). */
async function servedCertificate(podIp: string): Promise<X509Certificate> {
  return await new Promise((resolve, reject) => {
    const s = tls.connect(
      {
        host: podIp,
        port: 9443,
        servername: `lanyard-webhook.${RELEASE_NS}.svc`,
        rejectUnauthorized: false,
        timeout: 5000,
      },
      () => {
        const cert = s.getPeerX509Certificate();
        s.destroy();
        if (cert) resolve(cert);
        else reject(new Error('no peer certificate'));
      },
    );
    s.on('error', reject).on('timeout', () => s.destroy(new Error(`TLS to ${podIp}:9443 timed out`)));
  });
}

async function webhookPodIps(): Promise<string[]> {
  const pods: Json[] = (
    await admin.get(`/api/v1/namespaces/${RELEASE_NS}/pods`, {
      labelSelector: 'app.kubernetes.io/component=webhook',
    })
  ).items;
  return pods
    .filter((p) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp)
    .map((p) => p.status.podIP as string);
}

describe('self-managed CA rotation on a real node', () => {
  it(
    'moves both webhook replicas to a new CA while Pods are created every 250 ms: every admission succeeds and every Pod gets its identity',
    { timeout: 240_000 },
    async () => {
      const secret = await admin.get(SECRET);
      const oldCaPem = unb64(secret.data['ca.crt']);
      expect(splitPem(oldCaPem)).toHaveLength(1);
      const oldCa = new X509Certificate(oldCaPem);
      const ips = await webhookPodIps();
      expect(ips).toHaveLength(2);
      for (const ip of ips) expect((await servedCertificate(ip)).checkIssued(oldCa)).toBe(true);

      const failures: string[] = [];
      const created: string[] = [];
      let streaming = true;
      // Admission is what is tested: the Pods select no node, so they never load the node the webhook runs on.
      const stream = (async () => {
        while (streaming) {
          const name = `p-${created.length}`;
          await admin
            .create(`/api/v1/namespaces/${ns}/pods`, {
              metadata: { name },
              spec: { ...whoamiPodSpec('rotator'), nodeSelector: { 'lanyard.dev/no-such-node': 'true' } },
            })
            .then(
              () => created.push(name),
              (e: Error) => failures.push(`${name}: ${e.message}`),
            );
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      await new Promise((r) => setTimeout(r, 3000));

      // The CA now has 200 days left: the replicas must renew it (docs/webhook.md#tls: "renewed with under a year left").
      const aged = await ageCa(oldCaPem, unb64(secret.data['ca.key']), 200);
      await admin.update(SECRET, { ...secret, data: { ...secret.data, 'ca.crt': b64(aged) } });
      const rotatedAt = Date.now();

      // The end state: a new 10-year CA signs, the aged one is still trusted, the configuration trusts both, and
      // both replicas serve a certificate from the new CA.
      const done = await eventually(
        async () => {
          const s = await admin.get(SECRET);
          const cas = splitPem(unb64(s.data['ca.crt']));
          if (cas.length !== 2) throw new Error(`Secret holds ${cas.length} CA(s)`);
          const newCa = new X509Certificate(cas[0]!);
          if (newCa.publicKey.equals(oldCa.publicKey)) throw new Error('no new CA yet');
          const serving = new X509Certificate(unb64(s.data['tls.crt']));
          if (!serving.checkIssued(newCa) || !serving.verify(newCa.publicKey))
            throw new Error('serving certificate still from the old CA');
          const live = await webhookPodIps();
          if (live.length !== 2) throw new Error(`${live.length} webhook Pods running`);
          for (const ip of live) {
            const c = await servedCertificate(ip);
            if (!c.verify(newCa.publicKey))
              throw new Error(`${ip} still serves a certificate from the old CA`);
          }
          return {
            newCa,
            cas,
            bundles: (await admin.get(MWC)).webhooks.map((w: Json) =>
              unb64(w.clientConfig.caBundle),
            ) as string[],
          };
        },
        120_000,
        500,
      );
      const rotationMs = Date.now() - rotatedAt;
      // Keep creating Pods a while after the switch: the API server's view of the caBundle and the replicas' serving
      // certificate change separately.
      await new Promise((r) => setTimeout(r, 10_000));
      streaming = false;
      await stream;

      expect(new Date(done.newCa.validTo).getTime() - Date.now()).toBeGreaterThan(9 * 365 * 24 * 3600_000);
      expect(new X509Certificate(done.cas[1]!).publicKey.equals(oldCa.publicKey)).toBe(true);
      for (const bundle of done.bundles) {
        expect(bundle).toContain(done.cas[0]!.trim());
        expect(bundle).toContain(done.cas[1]!.trim());
      }
      expect(failures).toEqual([]);
      expect(created.length).toBeGreaterThan(20);
      // Every Pod created before, during and after the rotation was mutated: the webhook answered each one.
      const pods: Json[] = (await admin.get(`/api/v1/namespaces/${ns}/pods`)).items;
      const unmutated = pods.filter(
        (p) => !p.spec.containers[0].env?.some((e: Json) => e.name === 'AWS_WEB_IDENTITY_TOKEN_FILE'),
      );
      expect({ pods: pods.length, unmutated: unmutated.map((p) => p.metadata.name) }).toEqual({
        pods: created.length,
        unmutated: [],
      });
      // And the identity they declared is proven for them: the controller releases every gate.
      await eventually(
        async () => {
          const gated = ((await admin.get(`/api/v1/namespaces/${ns}/pods`)).items as Json[])
            .filter((p) => (p.spec.schedulingGates ?? []).some((g: Json) => g.name === GATE))
            .map((p) => p.metadata.name);
          if (gated.length) throw new Error(`still gated: ${gated.join(' ')}`);
        },
        120_000,
        1000,
      );
      process.stderr.write(
        `[ca-rotation] ${created.length} Pods created, CA rotated on both replicas in ${rotationMs} ms\n`,
      );

      // A workload admitted after the rotation runs and uses its identity on its first call.
      await admin.create(`/api/v1/namespaces/${ns}/pods`, {
        metadata: { name: 'after' },
        spec: whoamiPodSpec('rotator'),
      });
      const pod = await waitForPodPhase(admin, ns, 'after', ['Succeeded', 'Failed']);
      expect(await podLogs(ns, 'after')).toMatch(
        new RegExp(`^assumed-role-arn arn:aws:sts::${ACCOUNT}:assumed-role/node-rotation/`, 'm'),
      );
      expect(pod.status.phase).toBe('Succeeded');
      expect(node().nodeName).toBe(pod.spec.nodeName);
    },
  );
});
