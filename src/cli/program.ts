// The command tree. Each capability registers its own commands here; the commands live beside their capability.
// `cli` is the shared resource-verb framework (nouns, global flags, context, doctor checks): see src/cli/README.md.
import { Command } from 'commander';
import { createCli, type CliIO } from './framework.ts';
import { processIO } from './io.ts';
import { registerProjectsCli } from './projects/register.ts';
import { registerPromotionsCli } from '../promotions/cli.ts';
import { registerWebhookCommand } from '../webhook/command.ts';
import { registerControllerCommands } from '../controller/command.ts';
import { registerUpCommand } from '../sandbox/up.ts';
import { BUILD_INFO } from './build-info.ts';

export function buildProgram(io: CliIO = processIO()): Command {
  const program = new Command('lanyard')
    .description('Gives every Kubernetes workload exactly the identity it was declared to have, and proves it first.')
    .version(`lanyard ${BUILD_INFO.version}`, '--version')
    .exitOverride()
    .showHelpAfterError(false);
  const cli = createCli(program, io);
  // Registration (one line per capability):
  registerProjectsCli(cli);
  registerPromotionsCli(cli);
  registerWebhookCommand(program);
  registerControllerCommands(cli);
  registerUpCommand(program);
  return program;
}
