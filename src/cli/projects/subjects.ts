// Subject flags of grant/revoke and create project (docs/projects-and-tokens.md#3-create-a-role-and-grant-it), checked before any request.
import { CliError, EXIT } from '../exit.ts';

export function checkUsers(users: string[]): void {
  for (const u of users) {
    if (u === '') throw new CliError('--user needs a user name', EXIT.usage);
    if (u.startsWith('system:serviceaccount:')) {
      throw new CliError(`use --service-account for service accounts, not --user "${u}"`, EXIT.usage);
    }
  }
}
