// Throughput of the AWS simulator through src/aws (SDK, SigV4 signing and verification included): shows the
// simulator is not the bottleneck of the docs/verified-start.md#measured association-convergence target (5,000 associations < 60 s).
// Run: npx tsx bench/aws-sim.bench.ts [--count 5000] [--concurrency 16]. Writes bench/results/aws-sim.{json,md}.
import fs from 'node:fs';
import path from 'node:path';
import { startAwsSimulator } from '../src/sandbox/aws-sim/index.ts';
import { createAwsClients } from '../src/aws/index.ts';
import { silentLogger } from '../src/runtime/log.ts';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const count = arg('count', 5000);
const concurrency = arg('concurrency', 16);

async function measure(n: number, op: (i: number) => Promise<unknown>) {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) {
        const s = performance.now();
        await op(i);
        lat.push(performance.now() - s);
      }
    }),
  );
  const ms = performance.now() - t0;
  lat.sort((a, b) => a - b);
  const q = (p: number) => Number(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!.toFixed(2));
  return {
    calls: n,
    totalMs: Math.round(ms),
    perSecond: Math.round((n / ms) * 1000),
    p50Ms: q(0.5),
    p95Ms: q(0.95),
    p99Ms: q(0.99),
  };
}

const sim = await startAwsSimulator({ port: 0, seed: 1 });
sim.control.registerCluster({ name: 'bench', issuer: 'https://127.0.0.1:1', caBundle: undefined });
const aws = createAwsClients({
  region: 'us-west-2',
  endpointUrl: sim.url,
  credentials: sim.control.adminCredentials,
  log: silentLogger(),
});
const trust = JSON.stringify({
  Statement: [
    {
      Effect: 'Allow',
      Principal: { Service: 'pods.eks.amazonaws.com' },
      Action: ['sts:AssumeRole', 'sts:TagSession'],
    },
  ],
});
const role = await aws.iam.createRole({ roleName: 'bench', assumeRolePolicyDocument: trust });
const ids: string[] = [];
const results = {
  count,
  concurrency,
  node: process.version,
  create: await measure(count, async (i) => {
    const a = await aws.eks.createPodIdentityAssociation({
      clusterName: 'bench',
      namespace: `ns-${i % 50}`,
      serviceAccount: `sa-${i}`,
      roleArn: role.arn,
      tags: { 'lanyard.dev/managed-by': 'lanyard' },
      clientRequestToken: `t-${i}`,
    });
    ids[i] = a.associationId;
  }),
  describe: await measure(count, (i) => aws.eks.describe('bench', ids[i]!)),
  listOnePair: await measure(Math.min(count, 1000), (i) =>
    aws.eks.list('bench', { namespace: `ns-${i % 50}`, serviceAccount: `sa-${i}` }),
  ),
  getCallerIdentity: await measure(Math.min(count, 2000), () => aws.sts.getCallerIdentity()),
};
aws.destroy();
await sim.close();

const dir = path.join(import.meta.dirname, 'results');
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'aws-sim.json'), JSON.stringify(results, null, 2) + '\n');
const rows = (['create', 'describe', 'listOnePair', 'getCallerIdentity'] as const).map((k) => {
  const r = results[k];
  return `| ${k} | ${r.calls} | ${r.totalMs} | ${r.perSecond} | ${r.p50Ms} | ${r.p95Ms} | ${r.p99Ms} |`;
});
fs.writeFileSync(
  path.join(dir, 'aws-sim.md'),
  `# AWS simulator through src/aws\n\n${count} associations, concurrency ${concurrency}, Node ${process.version}.\n\n| operation | calls | total ms | calls/s | p50 ms | p95 ms | p99 ms |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
);
process.stdout.write(fs.readFileSync(path.join(dir, 'aws-sim.md'), 'utf8'));
