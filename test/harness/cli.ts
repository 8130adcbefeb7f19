// `npm run control-plane -- --kubeconfig <path>`: only the control plane, until interrupted.
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { startControlPlane } from '../../src/sandbox/control-plane.ts';

const program = new Command('control-plane')
  .description('Start a real etcd + kube-apiserver + kube-controller-manager on loopback')
  .requiredOption('--kubeconfig <path>', 'where to write the admin kubeconfig')
  .option('--quiet', 'print only the ready line')
  .parse();
const { kubeconfig, quiet } = program.opts<{ kubeconfig: string; quiet?: boolean }>();

const t0 = Date.now();
const cp = await startControlPlane({ log: quiet ? undefined : (l) => process.stderr.write(`  ${l}\n`) });
const target = path.resolve(kubeconfig);
fs.mkdirSync(path.dirname(target), { recursive: true });
fs.copyFileSync(cp.adminKubeconfig, target);
console.log(
  `control plane ready in ${((Date.now() - t0) / 1000).toFixed(1)}s: ${cp.server} (kubeconfig ${target})`,
);

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) process.exit(1);
  stopping = true;
  process.stderr.write(`\n${signal}: stopping the control plane\n`);
  await cp.stop();
  fs.rmSync(cp.dir, { recursive: true, force: true });
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
setInterval(() => {}, 1 << 30);
