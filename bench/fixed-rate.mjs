// Open-loop load at a fixed rate for bench/webhook.bench.ts (wrk2 is not packaged in Debian): sends one POST every
// 1/RATE s over keep-alive connections and reports latency quantiles. Each latency runs from the moment the request
// was due, so a stalled server is charged for the requests queued behind it (no coordinated omission).
// Usage: node fixed-rate.mjs URL BODY_FILE RATE SECONDS  → prints {"sent","errors","p50","p99","max"} in ms
import fs from 'node:fs';
import https from 'node:https';

const [url, bodyFile, rateArg, secondsArg] = process.argv.slice(2);
const body = fs.readFileSync(bodyFile);
const rate = Number(rateArg);
const total = Math.round(rate * Number(secondsArg));
const agent = new https.Agent({ keepAlive: true, maxSockets: 16, rejectUnauthorized: false });
const target = new URL(url);
const latencies = [];
let errors = 0;
let done = 0;

function send(due) {
  const req = https.request(
    {
      host: target.hostname,
      port: target.port,
      path: target.pathname + target.search,
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': body.length },
    },
    (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        if (res.statusCode !== 200) errors++;
        latencies.push(performance.now() - due);
        finish();
      });
    },
  );
  req.on('error', () => {
    errors++;
    finish();
  });
  req.end(body);
}

function finish() {
  if (++done < total) return;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  process.stdout.write(
    JSON.stringify({ sent: total, errors, p50: q(0.5), p99: q(0.99), max: latencies.at(-1) ?? NaN }) + '\n',
  );
}

const start = performance.now() + 50;
let next = 0;
function tick() {
  const now = performance.now();
  while (next < total && start + (next * 1000) / rate <= now) send(start + (next++ * 1000) / rate);
  if (next < total) setTimeout(tick, Math.max(0, start + (next * 1000) / rate - performance.now() - 0.5));
}
tick();
