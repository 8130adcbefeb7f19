// The command tree. Each capability registers its own commands here; the commands live beside their capability.
import { Command } from 'commander';

export function buildProgram(): Command {
  const program = new Command('lanyard')
    .description('Gives every Kubernetes workload exactly the identity it was declared to have, and proves it first.')
    .version('lanyard 0.1.0', '--version')
    .exitOverride()
    .showHelpAfterError(false);
  // Registration (one line per capability):
  return program;
}
