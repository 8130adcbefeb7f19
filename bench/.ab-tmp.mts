import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
const body = JSON.stringify({apiVersion:'admission.k8s.io/v1',kind:'AdmissionReview',request:{uid:'u',resource:{group:'',version:'v1',resource:'pods'},operation:'CREATE',namespace:'bench',object:{apiVersion:'v1',kind:'Pod',metadata:{name:'p'},spec:{serviceAccountName:'sa-0',containers:[{name:'c',image:'x'}]}}}});
function child(args: string[]): Promise<number> { const p = spawn(process.execPath, ['--import','tsx','bench/webhook.bench.ts',...args], {stdio:['ignore','pipe','inherit']}); return new Promise(r => p.stdout.once('data', d => r(JSON.parse(String(d)).port))); }
const noop = await child(['--serve=noop']); const hook = await child(['--serve=webhook','--sas=100','--ids=/tmp/ids.json']);
for (let i = 0; i < 3; i++) for (const [n, port] of [['noop', noop], ['hook', hook]] as const) {
  const r = await autocannon({ url: `https://127.0.0.1:${port}/mutate`, connections: 64, duration: 3, requests: [{ method: 'POST', path: '/mutate', headers: {'content-type':'application/json'}, body }] });
  console.log(n, r.requests.average, r.non2xx, r.errors);
}
process.exit(0);
