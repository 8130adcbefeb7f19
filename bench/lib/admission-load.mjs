// Admissions sent alongside a measurement, from their own process (bench:hostile): 4 loops send Pod creates, to the
// webhook's /mutate as AdmissionReviews or to kube-apiserver, until stdin closes; then it prints {"sent": N}. In its
// own process, the client work of 100 KB Pods (serialising, TLS) never delays the measuring client's event loop, so
// what the measured admissions show is the server's delay alone.
// Usage: node admission-load.mjs CONFIG_JSON_FILE
//   {"to": "webhook"|"api", "host", "port", "ca", "authorization"?, "prefix", "cases": [{"namespace", "pod"}]}
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';

/** The AdmissionReview the API server sends for a Pod create in `namespace`. */
export function review(namespace, object) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: object.metadata.name,
      namespace,
      operation: 'CREATE',
      userInfo: { username: 'bench' },
      object: { ...object, metadata: { ...object.metadata, namespace } },
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    },
  };
}

function main(configFile) {
  const c = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  const agent = new https.Agent({ keepAlive: true, maxSockets: 8 });
  const send = (namespace, pod) =>
    new Promise((resolve) => {
      const body = JSON.stringify(c.to === 'webhook' ? review(namespace, pod) : pod);
      const req = https.request(
        {
          host: c.host,
          port: c.port,
          ca: c.ca,
          agent,
          method: 'POST',
          path: c.to === 'webhook' ? '/mutate?timeout=10s' : `/api/v1/namespaces/${namespace}/pods`,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...(c.authorization ? { authorization: c.authorization } : {}),
          },
        },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', resolve);
      req.end(body);
    });
  let running = true;
  let sent = 0;
  let warm = 0;
  const loops = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; running; i++) {
      const k = c.cases[(i + w) % c.cases.length];
      await send(k.namespace, { ...k.pod, metadata: { ...k.pod.metadata, name: `${c.prefix}-${w}-${i}` } });
      sent++;
      if (i === 0 && ++warm === 4) process.stdout.write('ready\n');
    }
  });
  process.stdin.resume();
  process.stdin.on('end', async () => {
    running = false;
    await Promise.all(loops);
    process.stdout.write(`${JSON.stringify({ sent })}\n`);
    agent.destroy();
  });
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) main(process.argv[2]);
