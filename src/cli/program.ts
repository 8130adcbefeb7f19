// The command tree, loaded per command (docs/adr/0701): `lanyard --help` lists every top-level command from the
// table below without importing any capability; `lanyard get ...` imports only the capabilities that register
// under `get`. Each capability registers its own commands (the commands live beside their capability); `cli` is the
// shared resource-verb framework (nouns, global flags, context, doctor checks): see src/cli/README.md.
import { Command } from 'commander';
import { createCli, type Cli, type CliIO } from './framework.ts';
import { BUILD_INFO } from './build-info.ts';
import { commandPath } from './argv.ts';
import { registerVersionCommand } from './version.ts';
import { registerCompletionCommand } from './completion.ts';

type Registrar = (cli: Cli) => void;

/** Each capability's registration, imported only when one of its commands runs. */
export const CAPABILITIES = {
  projects: async (): Promise<Registrar> => (await import('./projects/register.ts')).registerProjectsCli,
  promotions: async (): Promise<Registrar> => (await import('../promotions/cli.ts')).registerPromotionsCli,
  controller: async (): Promise<Registrar> =>
    (await import('../controller/command.ts')).registerControllerCommands,
  identities: async (): Promise<Registrar> => (await import('../identities/cli.ts')).registerIdentitiesCli,
  webhook: async (): Promise<Registrar> => {
    const { registerWebhookCommand } = await import('../webhook/command.ts');
    return (cli) => registerWebhookCommand(cli.program);
  },
  explain: async (): Promise<Registrar> => (await import('../explain/cli.ts')).registerExplainCli,
  up: async (): Promise<Registrar> => {
    const { registerUpCommand } = await import('../sandbox/up.ts');
    return (cli) => registerUpCommand(cli.program);
  },
} as const;
export type Capability = keyof typeof CAPABILITIES;

/** The nouns of the projects capability, which `get` and `create` both take. */
const PROJECT_NOUNS = nounsOf(
  'projects',
  ['project', 'projects'],
  ['role', 'roles'],
  ['serviceaccount', 'serviceaccounts', 'sa', 'sas'],
  ['serviceaccounttoken', 'serviceaccounttokens', 'sat', 'sats'],
);

/**
 * Every top-level command: its description (for `lanyard --help`, without loading it) and the capabilities that
 * register commands, nouns or doctor checks under it. A unit test checks this table against the registrations.
 */
export const TOP_LEVEL: Record<
  string,
  { description: string; capabilities: Capability[]; hidden?: boolean; nouns?: Record<string, Capability> }
> = {
  get: {
    description: 'Display one or many resources',
    capabilities: ['projects', 'promotions', 'identities'],
    nouns: {
      ...PROJECT_NOUNS,
      ...nounsOf('promotions', ['stage', 'stages', 'stg'], ['promotion', 'promotions', 'promo', 'promos']),
      ...nounsOf('identities', ['identity', 'identities', 'podidentity', 'podidentities']),
    },
  },
  create: {
    description: 'Create a resource',
    capabilities: ['projects', 'explain'],
    nouns: {
      ...PROJECT_NOUNS,
      ...nounsOf('explain', ['identity', 'identities']),
    },
  },
  delete: { description: 'Delete resources by name', capabilities: ['projects'] },
  grant: { description: 'Add service accounts, users or groups to a role', capabilities: ['projects'] },
  revoke: { description: 'Remove service accounts, users or groups from a role', capabilities: ['projects'] },
  promote: {
    description: 'Promote a stage: create a Promotion (and with --wait, follow it to the end)',
    capabilities: ['promotions'],
  },
  abort: { description: 'Stop a running or pending operation', capabilities: ['promotions'] },
  explain: {
    description: 'Explain why a Pod or ServiceAccount has the AWS identity it has, and how to fix it',
    capabilities: ['explain'],
  },
  iam: {
    description: 'Set up and check IAM roles for ServiceAccounts, with your AWS credentials',
    capabilities: ['explain'],
  },
  doctor: {
    description: 'Check projects and Lanyard objects for problems and print how to fix them',
    capabilities: ['projects', 'promotions', 'controller'],
  },
  config: { description: 'Manage the Lanyard config file', capabilities: ['projects'] },
  webhook: {
    description:
      'Run the pod identity admission webhook (flags compatible with amazon-eks-pod-identity-webhook)',
    capabilities: ['webhook'],
  },
  controller: {
    description: 'Run the reconcilers (identity verifier, associations) behind a leader-election Lease',
    capabilities: ['controller'],
  },
  run: {
    description: 'Run the webhook (identity gate on) and the controller in one process',
    capabilities: ['controller'],
  },
  verify: {
    description:
      'Check, inside a Pod, that its AWS identity is the expected role (exit 0 match, 20 another role, 21 no identity, 6 timed out on errors, 2 usage)',
    capabilities: ['controller'],
  },
  up: {
    description:
      'Start the local sandbox: a real control plane and node, the AWS simulator, Lanyard and sample workloads',
    capabilities: ['up'],
  },
  'promotion-done': {
    description: 'exit 0 (the final container of a promotion pod)',
    capabilities: ['promotions'],
    hidden: true,
  },
};

/** Every word naming a noun (its name and aliases) mapped to the capability that registers it. */
function nounsOf(capability: Capability, ...nouns: string[][]): Record<string, Capability> {
  return Object.fromEntries(nouns.flat().map((w) => [w, capability]));
}

export interface ProgramOptions {
  /** The name in usage lines: `lanyard`, or `kubectl lanyard` when run as a kubectl plugin. */
  name?: string;
  /**
   * The user's arguments: only the capabilities their command needs are loaded. Without them every capability is
   * (for the docs generator, completion and tests of the whole tree).
   */
  argv?: string[];
}

/** The command tree for `argv` (or the whole tree). */
export async function buildProgram(io: CliIO, o: ProgramOptions = {}): Promise<Command> {
  const program = new Command(o.name ?? 'lanyard')
    .description(
      'Gives every Kubernetes workload exactly the identity it was declared to have, and proves it first.',
    )
    .version(`lanyard ${BUILD_INFO.version}`, '--version')
    .exitOverride()
    .showHelpAfterError(false);
  const [verb, noun] = o.argv ? commandPath(o.argv) : [];
  // `get sas` names one noun of a verb whose nouns come from several capabilities: only its capability is loaded, and
  // only its command gets flags and a handler (docs/adr/0704). `get`, `get --help` and `get foo` load them all, so
  // the verb's help and commander's "did you mean" list every noun.
  const owner = verb && noun !== undefined ? TOP_LEVEL[verb]?.nouns?.[noun] : undefined;
  const cli = createCli(program, io, owner ? (v, names) => v === verb && names.includes(noun!) : undefined);
  registerVersionCommand(cli);
  registerCompletionCommand(cli);
  // An unknown command loads nothing: commander names it and suggests the closest one from the table.
  const needed = new Set<Capability>(
    owner
      ? [owner]
      : o.argv
        ? verb && TOP_LEVEL[verb]
          ? TOP_LEVEL[verb].capabilities
          : []
        : (Object.keys(CAPABILITIES) as Capability[]),
  );
  const registrars = await Promise.all([...needed].map((c) => CAPABILITIES[c]()));
  for (const register of registrars) register(cli);
  // The commands not loaded appear in help (and in commander's "did you mean") with their descriptions.
  for (const [name, t] of Object.entries(TOP_LEVEL)) {
    if (!program.commands.some((c) => c.name() === name))
      program.command(name, { hidden: t.hidden }).description(t.description);
  }
  const order = Object.keys(TOP_LEVEL);
  const rank = (c: Command) => (order.includes(c.name()) ? order.indexOf(c.name()) : order.length);
  (program.commands as Command[]).sort((a, b) => rank(a) - rank(b));
  return program;
}
