// `lanyard`: one binary, subcommands (overview.md, Processes).
import { buildProgram } from './cli/program.ts';
import { exitCodeOf } from './cli/exit.ts';

const program = buildProgram();
try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = exitCodeOf(e);
}
