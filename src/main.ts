// `lanyard`: one binary, subcommands (README.md, docs/adr/0701-cli-start-path.md). Run as `kubectl-lanyard`, it is a kubectl plugin.
// `lanyard webhook ...` goes straight to the webhook: its command line is the reference's, parsed by
// src/config/webhook.ts, so the CLI's command tree and commander are not loaded before it listens (docs/adr/0703).
// The build makes this the entry of one CommonJS bundle (docs/adr/0709), which has no top-level await.
import path from 'node:path';
import { enableCompileCache } from './config/compile-cache.ts';

// Before any npm package outside the bundle is loaded, so Node caches their compiled code too (docs/adr/0704).
enableCompileCache();

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'webhook') {
    const { runWebhookProcess } = await import('./webhook/command.ts');
    // Ends the process whether the webhook stopped or failed to start: open watches and keep-alive connections would
    // otherwise keep a webhook that could not listen (a port in use) alive, never ready, and never restarted.
    process.exit(await runWebhookProcess(argv.slice(1)));
  }
  const { runCliProcess } = await import('./cli/process.ts');
  const name = path.basename(process.argv[1] ?? '').startsWith('kubectl-') ? 'kubectl lanyard' : 'lanyard';
  process.exitCode = await runCliProcess(argv, name);
}

// A failure nothing else caught ends the process as an unhandled rejection does: its stack on stderr, exit 1.
main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
