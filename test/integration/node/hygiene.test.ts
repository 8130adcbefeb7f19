// What a test node run killed mid-way leaves behind is removed by the next one (docs/adr/0711): its network
// namespace with the processes in it, the processes started from its run directory, and the directory; a live
// run's network is never touched.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeNetwork, removeStaleNodeRuns, type NodeNetwork } from '../../../src/sandbox/node.ts';
import { eventually } from '../../harness/context.ts';

const networks: NodeNetwork[] = [];
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const n of networks) n.remove();
});

const alive = (pid: number) =>
  fs.existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));

/** A process in the network namespace that names `dir` on its command line, as the control plane's processes do. */
function startIn(netns: string, dir: string, detached: boolean): ChildProcess {
  const c = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', 'sh', '-c', `sleep 600; : ${dir}`], {
    stdio: 'ignore',
    detached,
  });
  children.push(c);
  return c;
}

describe('clean-up of runs killed mid-way', () => {
  it('removes a network whose owner is gone, with its processes and run directory, and leaves a live one alone', async () => {
    const stale = createNodeNetwork();
    const live = createNodeNetwork();
    networks.push(stale, live);
    const staleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-node-'));
    fs.writeFileSync(path.join(staleDir, 'containerd.log'), 'left behind');
    const liveDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-node-'));
    // The stale run's owner exited (a pid that no longer runs this program); the live one's is this process.
    const dead = spawn('true');
    await new Promise((r) => dead.once('exit', r));
    fs.writeFileSync(
      `/run/lanyard-node/${stale.netns}.json`,
      JSON.stringify({ pid: dead.pid, start: 'gone' }),
    );
    const leaked = startIn(stale.netns, staleDir, true);
    const running = startIn(live.netns, liveDir, false);
    await eventually(
      async () => {
        const ino = fs.statSync(`/run/netns/${stale.netns}`).ino;
        if (fs.statSync(`/proc/${leaked.pid}/ns/net`).ino !== ino)
          throw new Error('not in the namespace yet');
      },
      10_000,
      50,
    );

    const removed = removeStaleNodeRuns();

    expect(removed).toContain(stale.netns);
    expect(removed).not.toContain(live.netns);
    await eventually(
      async () => {
        if (alive(leaked.pid!)) throw new Error('leaked process still runs');
      },
      10_000,
      100,
    );
    expect(fs.existsSync(`/run/netns/${stale.netns}`)).toBe(false);
    expect(fs.existsSync(staleDir)).toBe(false);
    expect(fs.existsSync(`/run/lanyard-node/${stale.netns}.json`)).toBe(false);
    // The live run keeps its namespace, process and directory.
    expect(alive(running.pid!)).toBe(true);
    expect(fs.existsSync(`/run/netns/${live.netns}`)).toBe(true);
    expect(fs.existsSync(liveDir)).toBe(true);
    running.kill('SIGKILL');
    fs.rmSync(liveDir, { recursive: true, force: true });
  });

  it('removes a network made before owner files existed only when every process in it is an orphan', async () => {
    const orphaned = createNodeNetwork();
    networks.push(orphaned);
    fs.rmSync(`/run/lanyard-node/${orphaned.netns}.json`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lanyard-cp-'));
    // While its parent (this process) lives, the process is not an orphan: the network stays.
    const child = startIn(orphaned.netns, dir, false);
    await eventually(
      async () => {
        if (fs.statSync(`/proc/${child.pid}/ns/net`).ino !== fs.statSync(`/run/netns/${orphaned.netns}`).ino)
          throw new Error('not in the namespace yet');
      },
      10_000,
      50,
    );
    expect(removeStaleNodeRuns()).not.toContain(orphaned.netns);
    // A double fork re-parents the sleeper to init, as a killed test run's processes are.
    const orphan = spawn(
      'nsenter',
      [`--net=/run/netns/${orphaned.netns}`, '--', 'sh', '-c', `(sleep 600; : ${dir}) & echo $!`],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const orphanPid = Number(
      await new Promise<string>((r) => orphan.stdout!.once('data', (d) => r(String(d)))),
    );
    child.kill('SIGKILL');
    await eventually(
      async () => {
        const ppid = Number(
          fs.readFileSync(`/proc/${orphanPid}/stat`, 'utf8').split(') ').at(-1)!.split(' ')[1],
        );
        if (ppid !== 1 || alive(child.pid!)) throw new Error('not orphaned yet');
      },
      10_000,
      50,
    );
    expect(removeStaleNodeRuns()).toContain(orphaned.netns);
    await eventually(
      async () => {
        if (alive(orphanPid)) throw new Error('orphan still runs');
      },
      10_000,
      100,
    );
    expect(fs.existsSync(dir)).toBe(false);
  });
});
