// The IO of the real process, for the `lanyard` binary.
import { isatty } from 'node:tty';
import { nodeFs, processEnv } from '../config/cli.ts';
import { systemClock } from '../runtime/clock.ts';
import type { CliIO } from './framework.ts';

/**
 * Verbs that talk to nothing but the API server: the real process running one of them trusts only the cluster's CA
 * (docs/adr/0706-trust-only-the-cluster-ca.md). Not `iam`, `explain`, `doctor` or `verify`, which may reach AWS.
 */
export const KUBE_ONLY_VERBS: ReadonlySet<string> = new Set(['get', 'create', 'delete', 'grant', 'revoke']);

/** The IO of the real process; `verb` is the command's first word once global flags are moved after it. */
export function processIO(verb?: string): CliIO {
  const trustOnlyClusterCa = verb !== undefined && KUBE_ONLY_VERBS.has(verb);
  return {
    env: processEnv(),
    stdout: (s) => void process.stdout.write(s),
    stderr: (s) => void process.stderr.write(s),
    // isatty on the descriptors: reading `process.stdin.isTTY` builds the stdin stream (a few ms of every start), and
    // most commands never read stdin.
    stdinIsTTY: isatty(0),
    stderrIsTTY: isatty(2),
    async readLine(prompt) {
      process.stderr.write(prompt);
      return await readOneLine();
    },
    async readStdin() {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    clock: systemClock,
    fs: nodeFs,
    // The client (and node:https) is loaded by the first command that talks to a server, not by --help or version.
    createClient: async (opts) =>
      (await import('../kube/client.ts')).createKubeClient({ ...opts, trustOnlyClusterCa }),
  };
}

/** One line from stdin; the reader is closed afterwards so an open stdin never keeps the process alive. */
async function readOneLine(): Promise<string | undefined> {
  const readline = await import('node:readline');
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  try {
    const r = await rl[Symbol.asyncIterator]().next();
    return r.done ? undefined : r.value;
  } finally {
    rl.close();
  }
}
