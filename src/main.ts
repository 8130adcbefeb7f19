// `lanyard`: one binary, subcommands (overview.md, Processes). Run as `kubectl-lanyard`, it is a kubectl plugin.
import path from 'node:path';
import { processIO } from './cli/io.ts';
import { execute } from './cli/run.ts';

const name = path.basename(process.argv[1] ?? '').startsWith('kubectl-') ? 'kubectl lanyard' : 'lanyard';
process.exitCode = await execute(processIO(), process.argv.slice(2), name);
