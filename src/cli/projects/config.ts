// `lanyard config set-credentials`: stores server, token and TLS settings in the Lanyard config file (mode 0600).
// The token is read from stdin (or a prompt), never from a flag, so it stays out of shell history.
import type { Cli, Context } from '../framework.ts';
import { CliError, EXIT } from '../exit.ts';
import { configFilePath, writeConfigFile, type LanyardConfigFile } from '../../config/cli.ts';
import { checkNames } from './common.ts';

export function registerConfigCommands(cli: Cli): void {
  const config = cli.program.command('config').description('Manage the Lanyard config file');
  cli.command(
    'set-credentials',
    {
      description:
        'Store the API server, a token read from stdin, and TLS settings in the Lanyard config file',
      options: (cmd) =>
        cmd
          .requiredOption('--server <url>', 'the kube-apiserver URL, e.g. https://10.0.0.1:6443')
          .option(
            '--certificate-authority <path>',
            'PEM file with the CA that signed the API server certificate',
          )
          .option('--insecure-skip-tls-verify', 'do not verify the API server certificate (testing only)'),
      run: (ctx, _args, opts) => setCredentials(ctx, opts),
    },
    config,
  );
}

async function setCredentials(ctx: Context, opts: Record<string, unknown>) {
  const server = opts.server as string;
  let url: URL | undefined;
  try {
    url = new URL(server);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new CliError(
      `invalid --server "${server}": use an https:// URL such as https://10.0.0.1:6443`,
      EXIT.usage,
    );
  }
  const ca = opts.certificateAuthority as string | undefined;
  if (ca && ctx.io.fs.readFile(ca) === undefined) {
    throw new CliError(`--certificate-authority "${ca}" does not exist`, EXIT.usage);
  }
  if (ctx.flags.project) checkNames('project', [ctx.flags.project]);
  const token = (
    ctx.io.stdinIsTTY ? ((await ctx.io.readLine('Token: ')) ?? '') : await ctx.io.readStdin()
  ).trim();
  if (!token) {
    throw new CliError(
      'no token given: pipe it to stdin, e.g. lanyard config set-credentials --server URL < token.txt',
      EXIT.usage,
    );
  }
  const file = configFilePath(ctx.io.env);
  const update: LanyardConfigFile = {
    server,
    token,
    certificateAuthority: ca,
    insecureSkipTLSVerify: opts.insecureSkipTlsVerify === true ? true : undefined,
    project: ctx.flags.project,
  };
  writeConfigFile(file, update, ctx.io.fs);
  ctx.out.info(`credentials for ${server} written to ${file} (mode 0600)`);
}
