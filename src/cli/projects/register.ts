// Registers the projects capability's commands: projects, roles, service accounts, tokens, grant/revoke, config,
// and its doctor check.
import type { Cli } from '../framework.ts';
import { registerProjectCommands } from './projects.ts';
import { registerRoleCommands } from './roles.ts';
import { registerServiceAccountCommands } from './serviceaccounts.ts';
import { registerTokenCommands } from './tokens.ts';
import { registerConfigCommands } from './config.ts';
import { registerProjectDoctorChecks } from './doctor.ts';

export function registerProjectsCli(cli: Cli): void {
  registerProjectCommands(cli);
  registerRoleCommands(cli);
  registerServiceAccountCommands(cli);
  registerTokenCommands(cli);
  registerConfigCommands(cli);
  registerProjectDoctorChecks(cli);
}
