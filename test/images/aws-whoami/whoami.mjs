// Prints `assumed-role-arn <ARN>` from sts:GetCallerIdentity on the first call, using whatever credentials
// the SDK's default chain finds; `error <name>: <message>` and exit code 1 when it fails. With `--stay`
// it then sleeps, so a Deployment's Pod stays Running; with `--output` it also writes `arn=<ARN>` to the
// termination message, as a promotion step reports its output.
import { writeFileSync } from 'node:fs';
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';

try {
  const r = await new STSClient({}).send(new GetCallerIdentityCommand({}));
  console.log(`assumed-role-arn ${r.Arn}`);
  if (process.argv.includes('--output')) writeFileSync('/dev/termination-log', `arn=${r.Arn}\n`);
} catch (e) {
  console.log(`error ${e.name}: ${e.message}`);
  process.exit(1);
}
if (process.argv.includes('--stay')) setInterval(() => {}, 1 << 30);
