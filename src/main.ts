// `lanyard`: one binary, subcommands (README.md, docs/adr/0701-cli-start-path.md). Run as `kubectl-lanyard`, it is a kubectl plugin.
// `lanyard webhook ...` goes straight to the webhook: its command line is the reference's, parsed by
// src/config/webhook.ts, so the CLI's command tree and commander are not loaded before it listens (docs/adr/0703).
import path from 'node:path';
import { enableCompileCache } from './config/compile-cache.ts';

// Before any command's code is loaded, so every chunk is cached (docs/adr/0704).
enableCompileCache();

const argv = process.argv.slice(2);
if (argv[0] === 'webhook') {
  const { runWebhookProcess } = await import('./webhook/command.ts');
  // Ends the process whether the webhook stopped or failed to start: open watches and keep-alive connections would
  // otherwise keep a webhook that could not listen (a port in use) alive, never ready, and never restarted.
  process.exit(await runWebhookProcess(argv.slice(1)));
} else {
  const { runCliProcess } = await import('./cli/process.ts');
  const name = path.basename(process.argv[1] ?? '').startsWith('kubectl-') ? 'kubectl lanyard' : 'lanyard';
  process.exitCode = await runCliProcess(argv, name);
}
