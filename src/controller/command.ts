// `lanyard controller`, `lanyard run` and `lanyard verify`: argument parsing, real I/O, signals.
import { Command, Option } from 'commander';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { CliError, EXIT } from '../cli/exit.ts';
import { controllerWantsHelp, parseControllerFlags, type ControllerConfig } from '../config/controller.ts';
import { controllerHelp } from './help.ts';
import { parseDuration } from '../core/duration.ts';
import { WEBHOOK_FLAG_NAMES } from '../config/webhook.ts';
import { verifyEnv } from '../config/verify.ts';
import { createKubeClient, type KubeClient } from '../kube/client.ts';
import { createLogger, silentLogger } from '../runtime/log.ts';
import { systemClock } from '../runtime/clock.ts';
import { kubeRequestMetrics } from '../runtime/controller-metrics.ts';
import type { Logger } from '../runtime/log.ts';
import type { Running } from '../runtime/deps.ts';
import { createAwsClients } from '../aws/index.ts';
import { runVerify, verifyJson } from '../verification/verify.ts';
import { startController } from './index.ts';
import { parseRunFlags, startRun } from './run.ts';
import type { Cli } from '../cli/framework.ts';
import { registerIdentityDoctor, registerPolicyDoctor } from '../verification/doctor.ts';

/** The process's client; every request it makes is counted in `metrics` (rest_client_*, docs/observability.md). */
async function kubeFor(
  c: Pick<ControllerConfig, 'kubeconfig' | 'kubeApi'>,
  agent: string,
  metrics: Registry,
): Promise<KubeClient> {
  return createKubeClient({
    kubeconfig: c.kubeconfig || undefined,
    inCluster: !c.kubeconfig,
    server: c.kubeApi || undefined,
    userAgent: agent,
    onRequest: kubeRequestMetrics(metrics),
  });
}

/** Runs until SIGTERM/SIGINT, then stops `parts` in order. */
function untilSignal(log: Logger, parts: Running[], after: () => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let signalled = false;
    const onSignal = (sig: string) => {
      if (signalled) process.exit(1);
      signalled = true;
      log.info({ signal: sig }, 'shutting down');
      void (async () => {
        for (const p of parts) await p.stop().catch((e: unknown) => log.warn({ err: e }, 'stop failed'));
        after();
        resolve();
      })();
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });
}

export async function runControllerCommand(argv: string[]): Promise<void> {
  if (controllerWantsHelp(argv)) {
    process.stdout.write(controllerHelp());
    return;
  }
  const { config } = parseControllerFlags(argv);
  const log = createLogger({ component: 'controller', level: config.logLevel });
  const metrics = new Registry();
  const kube = await kubeFor(config, 'lanyard-controller', metrics);
  collectDefaultMetrics({ register: metrics });
  const ctl = await startController({ kube, log, metrics, clock: systemClock }, config);
  log.info({ metricsPort: ctl.metricsPort, leaderElect: config.leaderElect }, 'controller started');
  await untilSignal(log, [ctl], () => kube.close());
}

export async function runRunCommand(argv: string[]): Promise<void> {
  if (controllerWantsHelp(argv, { passThrough: new Set(WEBHOOK_FLAG_NAMES) })) {
    process.stdout.write(
      'Usage: lanyard run [webhook flags] [controller flags]\n\nRuns `lanyard webhook --identity-gate` and `lanyard controller` in one process.\n',
    );
    return;
  }
  const { config, webhookConfig } = parseRunFlags(argv);
  const log = createLogger({ component: 'lanyard', level: config.logLevel });
  const metrics = new Registry();
  const kube = await kubeFor(config, 'lanyard', metrics);
  collectDefaultMetrics({ register: metrics });
  // One informer cache for the webhook and the controller: each selection is watched once (src/controller/run.ts).
  const run = await startRun({ kube, log, metrics, clock: systemClock }, config, webhookConfig);
  log.info(
    { port: run.webhook.port, metricsPort: run.webhook.metricsPort },
    'webhook and controller started',
  );
  await untilSignal(log, [run], () => kube.close());
}

function durationOption(flag: string, v: string): number {
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0)
    throw new CliError(`invalid ${flag} "${v}": use a positive duration such as 500ms, 2s or 1m`, EXIT.usage);
  return ms;
}

export async function runVerifyCommand(opts: {
  expectedRole?: string;
  timeout: string;
  interval: string;
  attemptTimeout: string;
  output: string;
}): Promise<number> {
  if (opts.output !== 'text' && opts.output !== 'json')
    throw new CliError(`invalid -o "${opts.output}": use text or json`, EXIT.usage);
  const env = verifyEnv();
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  const sts = env.AWS_ENDPOINT_URL_STS ?? env.AWS_ENDPOINT_URL;
  const log = silentLogger();
  const r = await runVerify({
    env,
    expectedRole: opts.expectedRole,
    timeoutMs: durationOption('--timeout', opts.timeout),
    intervalMs: durationOption('--interval', opts.interval),
    attemptTimeoutMs: durationOption('--attempt-timeout', opts.attemptTimeout),
    clock: systemClock,
    // A fresh client, hence a fresh default provider chain, per attempt: nothing is memoised between attempts.
    callerArn: async (ms) => {
      const aws = createAwsClients({
        region,
        endpoints: sts ? { sts } : undefined,
        log,
        maxAttempts: 1,
        requestTimeoutMs: ms,
      });
      try {
        return (await aws.sts.getCallerIdentity()).arn;
      } finally {
        aws.destroy();
      }
    },
  });
  for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
  if (opts.output === 'json') process.stdout.write(`${JSON.stringify(verifyJson(r))}\n`);
  else process.stderr.write(`${r.message}\n`);
  return r.exitCode;
}

export function registerControllerCommands(cli: Cli): void {
  const program = cli.program;
  registerPolicyDoctor(cli);
  registerIdentityDoctor(cli);
  const raw = (name: string, description: string, run: (argv: string[]) => Promise<void>) =>
    program
      .command(name)
      .description(description)
      .helpOption(false)
      .allowUnknownOption(true)
      .allowExcessArguments(true)
      .argument('[flags...]')
      .action(async (_args: string[], _opts: unknown, cmd: Command) => run(cmd.args));
  raw(
    'controller',
    'Run the reconcilers (identity verifier, associations) behind a leader-election Lease',
    runControllerCommand,
  );
  raw('run', 'Run the webhook (identity gate on) and the controller in one process', runRunCommand);
  program
    .command('verify')
    .description(
      'Check, inside a Pod, that its AWS identity is the expected role (exit 0 match, 20 another role, 21 no identity, 6 timed out on errors, 2 usage)',
    )
    .addOption(
      new Option(
        '--expected-role <arn>',
        'role ARN (or assumed-role ARN) to compare with (default: LANYARD_EXPECTED_ROLE, which the webhook sets for associations, else AWS_ROLE_ARN)',
      ),
    )
    .addOption(new Option('--timeout <duration>', 'total time for all attempts').default('60s'))
    .addOption(new Option('--interval <duration>', 'cap of the delay between attempts').default('2s'))
    .addOption(
      new Option('--attempt-timeout <duration>', 'one credential resolution plus one STS call').default('5s'),
    )
    .addOption(new Option('-o, --output <format>', 'text or json').default('text'))
    .action(async (opts) => {
      const code = await runVerifyCommand(opts);
      if (code !== 0) throw new CliError('', code);
    });
}
