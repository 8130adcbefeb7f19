// TLS (self-managed with two replicas and rotation, files mode with a symlink swap) and readiness (before the SA
// cache syncs; SIGTERM under load through the real `lanyard webhook` command): docs/webhook.md#tls and
// docs/webhook.md#health-readiness-and-shutdown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Registry } from 'prom-client';
import type { Json, KubeClient } from '../../../src/kube/client.ts';
import { systemClock } from '../../../src/runtime/clock.ts';
import { parseWebhookFlags } from '../../../src/config/webhook.ts';
import { startWebhook } from '../../../src/webhook/index.ts';
import { generateCa, issueServing } from '../../../src/webhook/certificates.ts';
import { imageNodeFlags } from '../../fixtures/image.ts';
import { tlsFilesFixture } from '../../fixtures/webhook.ts';
import { adminClient, controlPlane, eventually, newNamespace } from '../../harness/context.ts';
import { createPod, createSa, envOf, logSink, MWC_PATH, mwc, podSpec, startTestWebhook } from './helpers.ts';

const ROLE = 'arn:aws:iam::111122223333:role/uploader';
let admin: KubeClient;

beforeAll(async () => {
  admin = await adminClient();
});
afterAll(() => admin?.close());

/** Serial number of the certificate served on 127.0.0.1:port. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.end();
    });
    s.on('error', reject);
  });
}

function review(uid: string, ns = 'load'): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      resource: { group: '', version: 'v1', resource: 'pods' },
      operation: 'CREATE',
      namespace: ns,
      object: podSpec('p', 'default'),
    },
  });
}

function post(port: number, ca: string, body: string, agent: https.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate',
        method: 'POST',
        ca,
        agent,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('serving TLS shared by replicas', () => {
  it('two replicas share one Secret and CA, set the caBundle, and rotate with no failed admission', async () => {
    const system = await newNamespace(admin, 'wh-tls');
    const secret = 'shared-serving';
    const flags = [`--tls-secret=${secret}`, '--self-managed-cert-validity=15s'];
    const mwcName = `lanyard-test-webhook-tls-${Date.now().toString(36)}`;
    const [a, b] = await Promise.all([
      startTestWebhook(admin, [...flags, `--webhook-config-name=${mwcName}`], {
        systemNamespace: system,
        register: false,
      }),
      startTestWebhook(admin, [...flags, `--webhook-config-name=${mwcName}`], {
        systemNamespace: system,
        register: false,
      }),
    ]);
    try {
      const secrets = (
        await admin.get(`/api/v1/namespaces/${system}/secrets`, {
          labelSelector: 'app.kubernetes.io/managed-by=lanyard',
        })
      ).items;
      expect(secrets.map((s: Json) => s.metadata.name)).toEqual([secret]);
      expect(secrets[0].type).toBe('kubernetes.io/tls');
      expect(a.hook.caPem).toBe(b.hook.caPem);
      const caPem = a.hook.caPem!;

      // Registered without a caBundle: the reconciler writes it.
      await admin.create(MWC_PATH, mwc(mwcName, a.hook.port, undefined, a.label));
      await eventually(async () => {
        const cfg = await admin.get(`${MWC_PATH}/${mwcName}`);
        expect(Buffer.from(cfg.webhooks[0].clientConfig.caBundle, 'base64').toString()).toBe(caPem);
      });

      const ns = await a.namespace();
      await createSa(admin, ns, 'uploader', { 'eks.amazonaws.com/role-arn': ROLE });
      const serialA = await servedSerial(a.hook.port, caPem);
      expect(await servedSerial(b.hook.port, caPem)).toBe(serialA);
      // Admissions keep flowing through the API server while the certificate rotates (~10 s after issuance).
      let failures = 0;
      let admitted = 0;
      const deadline = Date.now() + 25_000;
      let rotated = false;
      while (!rotated && Date.now() < deadline) {
        try {
          const pod = await createPod(admin, ns, podSpec(`rot-${admitted}`, 'uploader'));
          if (envOf(pod).AWS_ROLE_ARN) admitted++;
        } catch {
          failures++;
        }
        const [sa, sb] = await Promise.all([
          servedSerial(a.hook.port, caPem),
          servedSerial(b.hook.port, caPem),
        ]);
        rotated = sa !== serialA && sb !== serialA;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(rotated).toBe(true);
      expect(failures).toBe(0);
      expect(admitted).toBeGreaterThan(5);
      expect(a.hook.caPem).toBe(caPem);
      const after = (
        await admin.get(`/api/v1/namespaces/${system}/secrets`, {
          labelSelector: 'app.kubernetes.io/managed-by=lanyard',
        })
      ).items;
      expect(after).toHaveLength(1);
    } finally {
      await admin.delete(`${MWC_PATH}/${mwcName}`).catch(() => undefined);
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 60_000);

  it('files mode serves a swapped certificate within one poll interval', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-tlsfiles-'));
    const now = new Date();
    const ca = await generateCa('files', now);
    const install = async (version: string) => {
      const pair = await issueServing(
        ca,
        {
          namespace: 'files',
          serviceName: 'wh',
          extraSans: ['127.0.0.1', 'localhost'],
          validityMs: 3600_000,
        },
        now,
      );
      fs.mkdirSync(path.join(dir, `..${version}`));
      fs.writeFileSync(path.join(dir, `..${version}`, 'tls.crt'), pair.certPem);
      fs.writeFileSync(path.join(dir, `..${version}`, 'tls.key'), pair.keyPem);
      fs.symlinkSync(`..${version}`, path.join(dir, '..tmp'));
      fs.renameSync(path.join(dir, '..tmp'), path.join(dir, '..data'));
      for (const f of ['tls.crt', 'tls.key'])
        if (!fs.existsSync(path.join(dir, f))) fs.symlinkSync(`..data/${f}`, path.join(dir, f));
    };
    await install('v1');
    const config = parseWebhookFlags(
      [
        '--port=0',
        '--metrics-port=0',
        `--tls-cert=${dir}/tls.crt`,
        `--tls-key=${dir}/tls.key`,
        '--config-poll-interval=500ms',
        '--shutdown-delay=0s',
      ],
      { env: {}, readNamespaceFile: () => undefined },
    );
    const hook = await startWebhook(config, {
      kube: admin,
      log: logSink().logger,
      metrics: new Registry(),
      clock: systemClock,
    });
    try {
      const first = await servedSerial(hook.port, ca.certPem);
      await install('v2');
      const swapped = Date.now();
      await eventually(
        async () => expect(await servedSerial(hook.port, ca.certPem)).not.toBe(first),
        5000,
        50,
      );
      expect(Date.now() - swapped).toBeLessThan(1000);
    } finally {
      await hook.stop();
    }
  });
});

describe('readiness and shutdown', () => {
  it('/readyz is 503 until the ServiceAccount cache syncs', async () => {
    const slowList = Object.create(admin) as KubeClient;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    slowList.request = async <T>(req: Parameters<KubeClient['request']>[0]): Promise<T> => {
      if (req.path === '/api/v1/serviceaccounts') await gate;
      return await admin.request<T>(req);
    };
    const system = await newNamespace(admin, 'wh-ready');
    const config = parseWebhookFlags(
      [
        '--port=0',
        '--metrics-port=0',
        '--tls-mode=self-managed',
        '--tls-extra-sans=127.0.0.1',
        '--tls-secret=ready',
        '--shutdown-delay=0s',
      ],
      { env: { POD_NAMESPACE: system }, readNamespaceFile: () => undefined },
    );
    const hook = await startWebhook(config, {
      kube: slowList,
      log: logSink().logger,
      metrics: new Registry(),
      clock: systemClock,
    });
    try {
      const r = await fetch(`http://127.0.0.1:${hook.metricsPort}/readyz`);
      expect(r.status).toBe(503);
      expect(await r.json()).toEqual({
        ready: false,
        checks: { serviceAccounts: false, certificate: true, notShuttingDown: true },
      });
      release();
      await eventually(async () =>
        expect((await fetch(`http://127.0.0.1:${hook.metricsPort}/readyz`)).status).toBe(200),
      );
      expect(hook.ready()).toBe(true);
    } finally {
      await hook.stop();
    }
  }, 60_000);

  it('a webhook that cannot listen (port in use) exits 1 with the error, instead of staying up and never ready', async () => {
    const cp = controlPlane();
    const tlsPair = await tlsFilesFixture();
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const child = spawn(
        process.execPath,
        [
          path.resolve('bin/lanyard.js'),
          'webhook',
          `--kubeconfig=${cp.adminKubeconfig}`,
          `--port=${port}`,
          '--metrics-port=0',
          `--tls-cert=${tlsPair.certFile}`,
          `--tls-key=${tlsPair.keyFile}`,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += String(c)));
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(null);
        }, 60_000);
        child.on('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      expect({ code, stderr }).toEqual({
        code: 1,
        stderr: expect.stringMatching(/^error: listen EADDRINUSE/m),
      });
    } finally {
      taken.close();
    }
  }, 90_000);

  it("started as the image starts it (the Dockerfile's Node flags), SIGTERM under load: readiness fails first, every request is answered, exit 0", async () => {
    const cp = controlPlane();
    const system = await newNamespace(admin, 'wh-term');
    const nodeFlags = imageNodeFlags(path.resolve('.'));
    // docs/adr/0124-young-generation-capped.md
    expect(nodeFlags).toContain('--max-semi-space-size=8');
    const child = spawn(
      process.execPath,
      [
        ...nodeFlags,
        path.resolve('bin/lanyard.js'),
        'webhook',
        `--kubeconfig=${cp.adminKubeconfig}`,
        '--port=0',
        '--metrics-port=0',
        '--tls-mode=self-managed',
        '--tls-extra-sans=127.0.0.1',
        '--tls-secret=term',
        '--shutdown-delay=1s',
        '--shutdown-timeout=5s',
      ],
      { env: { ...process.env, POD_NAMESPACE: system }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: Json[] = [];
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += String(c)));
    let buf = '';
    child.stdout.on('data', (c) => {
      buf += String(c);
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          lines.push(JSON.parse(l));
        } catch {
          /* not a log line */
        }
      }
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const listening = await eventually(
        async () => {
          const l = lines.find((x) => x.msg === 'webhook listening');
          if (!l) throw new Error(`not listening yet: ${stderr.slice(-500)}`);
          return l;
        },
        60_000,
        100,
      );
      const secret = await admin.get(`/api/v1/namespaces/${system}/secrets/term`);
      const ca = Buffer.from(secret.data['ca.crt'], 'base64').toString();
      const ready = async () =>
        (await fetch(`http://127.0.0.1:${listening.metricsPort}/readyz`)).status === 200;
      await eventually(async () => expect(await ready()).toBe(true), 30_000);

      const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
      let notReady = false;
      const watcher = (async () => {
        while (!notReady) {
          notReady = !(await ready().catch(() => false));
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const statuses: number[] = [];
      const errors: string[] = [];
      const worker = async (w: number) => {
        for (let i = 0; !notReady; i++) {
          await post(listening.port, ca, review(`w${w}-${i}`), agent).then(
            (s) => statuses.push(s),
            (e) => errors.push(String(e)),
          );
        }
      };
      const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      await new Promise((r) => setTimeout(r, 500));
      child.kill('SIGTERM');
      await Promise.all([load, watcher]);
      agent.destroy();
      expect(errors).toEqual([]);
      expect(statuses.length).toBeGreaterThan(20);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});
