// A no-op HTTPS server for bench/webhook.bench.ts on the webhook's stack (node:https): reads the whole body and
// answers a fixed AdmissionReview. Plain JavaScript, so it starts without a TypeScript loader.
// Usage: node noop-https.mjs CERT KEY  (prints {"port":N}, then serves)
import fs from 'node:fs';
import https from 'node:https';

const answer = JSON.stringify({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: 'u', allowed: true },
});
const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(answer)) };
const server = https.createServer(
  {
    cert: fs.readFileSync(process.argv[2]),
    key: fs.readFileSync(process.argv[3]),
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['http/1.1'],
    keepAliveTimeout: 120_000,
  },
  (req, res) => {
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, headers);
      res.end(answer);
    });
  },
);
server.listen(0, '127.0.0.1', () =>
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n'),
);
