// The shared CLI framework: verbs with registered nouns, global resource flags, a per-command context (client
// with the caller's credentials, --project resolution and the project check, printers, -v request log), error
// mapping, and the doctor-check registry. Capabilities register through the `Cli` object; see src/cli/README.md.
import { Command, Option } from 'commander';
import type { Namespace } from 'kubernetes-types/core/v1.js';
import type { KubeList } from '../core/kube-object.ts';
import type { KubeClient, KubeClientOptions, RequestLogger } from '../kube/client.ts';
import { KubeApiError } from '../kube/errors.ts';
import { CliConfigError, loadCliSettings, type CliEnv, type CliFs, type CliSettings } from '../config/cli.ts';
import type { Clock } from '../runtime/clock.ts';
import { parseDuration } from '../core/duration.ts';
import { CliError, EXIT } from './exit.ts';
import { ApiCliError, toCliError, describeRequest, type Operation } from './errors.ts';
import {
  cleanForOutput,
  parseOutput,
  renderObjects,
  renderRows,
  type Column,
  type OutputFormat,
} from './output.ts';
import { humanAge } from './age.ts';
import { isProject } from '../projects/labels.ts';
import { errorMessage } from '../core/errors.ts';

/** Everything the CLI touches outside itself; production wires the process, tests wire buffers. */
export interface CliIO {
  env: CliEnv;
  stdout(s: string): void;
  stderr(s: string): void;
  stdinIsTTY: boolean;
  stderrIsTTY: boolean;
  /** Prompts on stderr and reads one line from stdin; undefined at end of input. */
  readLine(prompt: string): Promise<string | undefined>;
  /** Reads all of stdin (for secrets piped in). */
  readStdin(): Promise<string>;
  clock: Clock;
  fs: CliFs;
  /** Creates API clients; tests wrap it to count or refuse requests. */
  createClient(opts: KubeClientOptions): Promise<KubeClient>;
  /** Sees every API request the CLI sends (method, path, status, duration; never headers or bodies). */
  onRequest?: RequestLogger;
}

/** A noun and every alias the verbs accept for it (docs/cli.md#conventions). */
export interface Noun {
  /** Singular name used in output lines: `<name>/<object> created`. */
  name: string;
  aliases: string[];
  /** Plural words for "No <plural> found", e.g. `service accounts`. */
  plural: string;
}

export interface GlobalFlags {
  project?: string;
  output: OutputFormat;
  /** The argument of -o jsonpath=... or custom-columns=... */
  template?: string;
  headers: boolean;
  kubeconfig?: string;
  context?: string;
  requestTimeoutMs: number;
  verbose: boolean;
}

export interface Context {
  readonly io: CliIO;
  readonly flags: GlobalFlags;
  /** Credentials and defaults (read lazily so a usage error never touches files it does not need). */
  settings(): CliSettings;
  /** The API client with the caller's credentials; created once per command and closed afterwards. */
  kube(): Promise<KubeClient>;
  /** The project name from --project, LANYARD_PROJECT or the config file, without contacting the server. */
  projectName(): string;
  /** projectName() plus the project check of docs/cli.md#conventions (once per command). */
  project(): Promise<string>;
  /** Runs API calls for `op`, turning failures into the CLI's messages and exit codes. */
  call<T>(op: Operation, fn: (kube: KubeClient) => Promise<T>): Promise<T>;
  /**
   * A read in the project, sent beside the project check rather than after it: one round trip less for every `get`.
   * The check still decides the answer: when it fails, its error is the command's. Writes wait for `project()`.
   */
  readInProject<T>(
    op: Operation,
    fn: (kube: KubeClient, project: string) => Promise<T>,
  ): Promise<[string, T]>;
  /** Maps any error to a CliError for `op` (used when a handler reports a failure and continues). */
  toError(e: unknown, op: Operation): CliError;
  readonly out: Printer;
  now(): number;
}

export interface Printer {
  /** A line on stdout. */
  line(s: string): void;
  /** A line on stderr. */
  info(s: string): void;
  /** `warning: ...` on stderr. */
  warn(s: string): void;
  /** Prints an error line (`error: ...`) without ending the command; returns its exit code. */
  error(e: CliError): number;
  /** A mutation: `<noun>/<name> <verb>`, or the resulting object with -o yaml|json. */
  mutation(noun: Noun, name: string, verb: string, obj?: unknown): void;
  /** Objects found by a get, in the chosen format. */
  list<T>(o: ListSpec<T>): void;
  age(timestamp: string | undefined): string;
}

export interface ListSpec<T> {
  noun: Noun;
  items: T[];
  columns: Column<T>[];
  name(item: T): string;
  /** The object printed by -o yaml|json. */
  object(item: T): unknown;
  /** True when the user named exactly one object: -o yaml|json then prints it alone, not as a List. */
  single: boolean;
  /** Project for the empty-list message; omitted for cluster-scoped nouns. */
  project?: string;
}

export interface VerbHandler {
  description: string;
  /** Commander argument syntax, e.g. `[names...]` or `<name>`. */
  args?: string;
  /** Adds the noun's own flags. */
  options?: (cmd: Command) => void;
  /** Runs the command: returns its exit code (nothing means 0) or throws a CliError. */
  run(ctx: Context, args: string[], opts: Record<string, unknown>): Promise<number | void>;
}

export interface DoctorFinding {
  level: 'error' | 'warning';
  /** e.g. `project shop` or `stage shop/prod`. */
  object: string;
  text: string;
  fix?: string;
}

export interface DoctorCheck {
  name: string;
  run(ctx: DoctorContext): Promise<DoctorFinding[]>;
}

export interface DoctorContext extends Context {
  /** The projects to check: --project, else every project the caller may list. */
  projects(): Promise<string[]>;
  /** The doctor command's parsed flags, including those capabilities added through `cli.doctor`. */
  readonly options: Record<string, unknown>;
}

export interface Cli {
  readonly program: Command;
  readonly io: CliIO;
  /** The top-level verb command (`get`, `delete`, `abort`, ...), created on first use. */
  verb(name: string, description: string): Command;
  /** Registers `lanyard <verb> <noun|alias> ...`. */
  noun(verb: string, noun: Noun, handler: VerbHandler): Command;
  /** Registers a command under `parent` (default: the program) that runs with a Context and the global flags. */
  command(name: string, handler: VerbHandler, parent?: Command): Command;
  doctorCheck(check: DoctorCheck): void;
  /** The `doctor` command itself, for capabilities that add flags to it (read them in `DoctorContext.options`). */
  readonly doctor: Command;
}

const VERB_DESCRIPTIONS: Record<string, string> = {
  get: 'Display one or many resources',
  create: 'Create a resource',
  delete: 'Delete resources by name',
};

/**
 * Which `<verb> <noun>` commands get their flags and handler. The command being run names one noun (`get sas`); the
 * other nouns are then only names and descriptions, which is all commander looks at for them (docs/adr/0704).
 * Without it (help, completion, the docs generator, tests of the tree) every noun is set up.
 */
export type NounFilter = (verb: string, names: readonly string[]) => boolean;

export function createCli(program: Command, io: CliIO, setUpNoun: NounFilter = () => true): Cli {
  const verbs = new Map<string, Command>();
  const checks: DoctorCheck[] = [];
  program.configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) });

  const cli: Omit<Cli, 'doctor'> = {
    program,
    io,
    verb(name, description) {
      let v = verbs.get(name);
      if (!v) {
        v = program.command(name).description(VERB_DESCRIPTIONS[name] ?? description);
        verbs.set(name, v);
      }
      return v;
    },
    noun(verb, noun, handler) {
      const parent = cli.verb(verb, verb);
      const [first, ...rest] = [noun.name, ...noun.aliases.filter((a) => a !== noun.name)];
      const cmd = parent.command(first!).aliases(rest);
      if (!setUpNoun(verb, [first!, ...rest])) return cmd.description(handler.description);
      return setup(cmd, handler);
    },
    command(name, handler, parent = program) {
      return setup(parent.command(name), handler);
    },
    doctorCheck(check) {
      checks.push(check);
    },
  };

  function setup(cmd: Command, handler: VerbHandler): Command {
    cmd.description(handler.description);
    if (handler.args) cmd.arguments(handler.args);
    handler.options?.(cmd);
    addGlobalFlags(cmd);
    cmd.action(async (...actionArgs: unknown[]) => {
      const self = actionArgs[actionArgs.length - 1] as Command;
      const opts = self.opts();
      const positional = (self.processedArgs as unknown[]).flatMap((a) =>
        a === undefined ? [] : Array.isArray(a) ? (a as string[]) : [String(a)],
      );
      const code = await runHandler(io, opts, (ctx) => handler.run(ctx, positional, opts));
      // The message was printed already; an empty CliError carries the exit code to the entry point.
      if (code !== 0) throw new CliError('', code);
    });
    return cmd;
  }

  const doctor = cli.command('doctor', {
    description: 'Check projects and Lanyard objects for problems and print how to fix them',
    run: (ctx, _args, opts) => runDoctor(doctorContext(ctx, opts), checks),
  });

  return { ...cli, doctor };
}

/** `lanyard doctor`: every registered check, a check the caller may not run reported as not checked. */
async function runDoctor(dctx: DoctorContext, checks: DoctorCheck[]): Promise<number> {
  const findings: DoctorFinding[] = [];
  for (const check of checks) {
    try {
      findings.push(...(await check.run(dctx)));
    } catch (e) {
      if (e instanceof KubeApiError && e.status === 403) {
        const r = describeRequest(e.method, e.path);
        const where = r.namespace ? ` in namespace "${r.namespace}"` : '';
        findings.push({
          level: 'warning',
          object: check.name,
          text: `not checked: forbidden to ${r.verb} ${r.resource}${where}`,
        });
      } else {
        throw dctx.toError(e, { does: `run doctor check "${check.name}"` });
      }
    }
  }
  for (const f of findings) {
    dctx.out.line(`${f.level === 'error' ? 'ERROR' : 'WARN '}  ${f.object}  ${f.text}`);
    if (f.fix) dctx.out.line(`       fix: ${f.fix}`);
  }
  const errors = findings.filter((f) => f.level === 'error').length;
  const warnings = findings.length - errors;
  dctx.out.line(`${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`);
  return errors > 0 ? EXIT.doctorErrors : 0;
}

function addGlobalFlags(cmd: Command): void {
  cmd
    .option('-p, --project <name>', 'project (else LANYARD_PROJECT, else "project" in the Lanyard config)')
    .addOption(
      new Option(
        '-o, --output <format>',
        'output format: table, wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=SPEC',
      ).default('table'),
    )
    .option('--no-headers', 'omit the table header row')
    .option('--kubeconfig <path>', 'kubeconfig file (else KUBECONFIG, else ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (else the current one)')
    .option('--request-timeout <duration>', 'timeout of each API request', '30s')
    .option('-v, --verbose', 'log each API request (method, path, status, duration) on stderr');
}

function parseFlags(opts: Record<string, unknown>): GlobalFlags {
  const timeout = parseDuration(String(opts.requestTimeout ?? '30s'));
  if (timeout === undefined || timeout <= 0) {
    throw new CliError(
      `invalid --request-timeout "${String(opts.requestTimeout)}": use a duration such as 30s or 1m`,
      EXIT.usage,
    );
  }
  const output = parseOutput(String(opts.output ?? 'table'));
  if (!output) {
    throw new CliError(
      `invalid -o "${String(opts.output)}": use table, wide, yaml, json, name, jsonpath=TEMPLATE or custom-columns=SPEC`,
      EXIT.usage,
    );
  }
  return {
    project: opts.project as string | undefined,
    ...output,
    headers: opts.headers !== false,
    kubeconfig: opts.kubeconfig as string | undefined,
    context: opts.context as string | undefined,
    requestTimeoutMs: timeout,
    verbose: opts.verbose === true,
  };
}

/** Builds the context, runs the handler, prints its error if any, closes the client; returns the exit code. */
async function runHandler(
  io: CliIO,
  opts: Record<string, unknown>,
  fn: (ctx: Context) => Promise<number | void>,
): Promise<number> {
  let verbose = opts.verbose === true;
  const print = (e: CliError): number => {
    if (e.message) io.stderr(`error: ${e.message}\n`);
    if (verbose && e instanceof ApiCliError && e.serverDetail) io.stderr(`${e.serverDetail}\n`);
    return e.exitCode;
  };
  let client: Promise<KubeClient> | undefined;
  try {
    const flags = parseFlags(opts);
    verbose = flags.verbose;
    const templates = flags.template === undefined ? undefined : await compileTemplate(flags);
    const ctx = makeContext(
      io,
      flags,
      templates,
      print,
      () => (client ??= openClient(io, flags, ctx.settings())),
    );
    return (await fn(ctx)) ?? 0;
  } catch (e) {
    if (e instanceof CliConfigError) return print(new CliError(e.message, EXIT.usage));
    if (e instanceof CliError) return print(e);
    return print(toCliError(e, { does: 'run the command' }, ''));
  } finally {
    if (client) (await client.catch(() => undefined))?.close();
  }
}

/** Printers of -o jsonpath / custom-columns; template errors are usage errors, found before any request. */
interface TemplatePrinters {
  objects(objs: unknown[], asList: boolean): string;
}

async function compileTemplate(flags: GlobalFlags): Promise<TemplatePrinters> {
  const t = await import('./templates.ts');
  try {
    if (flags.output === 'jsonpath') {
      const print = t.jsonpathPrinter(flags.template!);
      // Exactly the template's text, without a newline added: as kubectl, so scripts can embed the output.
      return {
        objects: (objs, asList) =>
          print(!asList && objs.length === 1 ? objs[0] : { apiVersion: 'v1', kind: 'List', items: objs }),
      };
    }
    const print = t.customColumnsPrinter(flags.template!);
    return { objects: (objs) => print(objs, !flags.headers) };
  } catch (e) {
    if (e instanceof t.TemplateError) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
}

async function openClient(io: CliIO, flags: GlobalFlags, settings: CliSettings): Promise<KubeClient> {
  const onRequest: RequestLogger = (entry) => {
    io.onRequest?.(entry);
    if (flags.verbose) {
      io.stderr(`${entry.method} ${entry.path} ${entry.status} in ${Math.round(entry.durationMs)}ms\n`);
    }
  };
  const c = settings.credentials;
  const common = { defaultTimeoutMs: flags.requestTimeoutMs, onRequest, userAgent: 'lanyard-cli' };
  try {
    return await io.createClient(
      c.kind === 'token'
        ? {
            server: c.server,
            token: c.token,
            caData: c.caData,
            insecureSkipTlsVerify: c.insecureSkipTlsVerify,
            ...common,
          }
        : { kubeconfig: c.path, context: c.context, ...common },
    );
  } catch (e) {
    throw new CliError(`cannot load credentials from ${c.source}: ${errorMessage(e)}`, EXIT.usage);
  }
}

function makeContext(
  io: CliIO,
  flags: GlobalFlags,
  templates: TemplatePrinters | undefined,
  print: (e: CliError) => number,
  client: () => Promise<KubeClient>,
): Context {
  let settings: CliSettings | undefined;
  let checked: Promise<string> | undefined;
  let server = '';
  const ctx: Context = {
    io,
    flags,
    settings() {
      if (!settings) {
        settings = loadCliSettings(io.env, { kubeconfig: flags.kubeconfig, context: flags.context }, io.fs);
        for (const w of settings.warnings) io.stderr(`warning: ${w}\n`);
      }
      return settings;
    },
    async kube() {
      const k = await client();
      server = k.server;
      return k;
    },
    projectName() {
      const p = flags.project ?? ctx.settings().defaultProject;
      if (!p)
        throw new CliError(
          'no project given: pass --project or set "project" in the Lanyard config',
          EXIT.usage,
        );
      return p;
    },
    project() {
      checked ??= checkProject(ctx);
      return checked;
    },
    async call(op, fn) {
      const kube = await ctx.kube();
      try {
        return await fn(kube);
      } catch (e) {
        throw ctx.toError(e, op);
      }
    },
    async readInProject(op, fn) {
      const project = ctx.projectName();
      const reading = ctx.call(op, (k) => fn(k, project));
      // Decided after the check: a read refused because the namespace is no project must not be the answer.
      reading.catch(() => undefined);
      await ctx.project();
      return [project, await reading];
    },
    toError(e, op) {
      return toCliError(e, op, server);
    },
    now: () => io.clock.now(),
    out: makePrinter(io, flags, templates, print),
  };
  return ctx;
}

/** The project check of docs/cli.md#conventions: the namespace exists and is labelled a project. */
async function checkProject(ctx: Context): Promise<string> {
  const name = ctx.projectName();
  const kube = await ctx.kube();
  const res = await kube
    .raw<Namespace>({ path: `/api/v1/namespaces/${encodeURIComponent(name)}` })
    .catch((e: unknown) => {
      throw ctx.toError(e, { does: `check project "${name}"` });
    });
  if (res.status === 404) throw new CliError(`project "${name}" not found`, EXIT.notFound);
  // Project-scoped credentials cannot read namespaces: Kubernetes answers the following calls instead.
  if (res.status === 403) return name;
  if (res.status === 401)
    throw ctx.toError(new KubeApiError(401, 'GET', '/', 'Unauthorized', '', undefined), { does: '' });
  if (res.status < 200 || res.status >= 300) {
    throw new CliError(`cannot check project "${name}": the API server answered ${res.status}`, EXIT.failure);
  }
  if (!isProject(res.body)) {
    throw new CliError(
      `namespace "${name}" is not a Lanyard project (label lanyard.dev/project is not "true")`,
      EXIT.refused,
    );
  }
  return name;
}

/** The command's output: lines, warnings, errors, mutations and lists in the format the flags chose. */
function makePrinter(
  io: CliIO,
  flags: GlobalFlags,
  templates: TemplatePrinters | undefined,
  print: (e: CliError) => number,
): Printer {
  return {
    line: (s) => io.stdout(s + '\n'),
    info: (s) => io.stderr(s + '\n'),
    warn: (s) => io.stderr(`warning: ${s}\n`),
    error: print,
    mutation(noun, name, verb, obj) {
      if ((flags.output === 'yaml' || flags.output === 'json') && obj !== undefined) {
        io.stdout(renderObjects([obj], flags.output, false));
      } else if (templates && obj !== undefined) {
        io.stdout(templates.objects([cleanForOutput(obj)], false));
      } else {
        io.stdout(`${noun.name}/${name} ${verb}\n`);
      }
    },
    list: <T>(o: ListSpec<T>) => printList(io, flags, templates, o),
    age: (t) => humanAge(t, io.clock.now()),
  };
}

/** Objects found by a get: a table, names, objects (yaml/json) or a template's text; "No ... found" when none. */
function printList<T>(
  io: CliIO,
  flags: GlobalFlags,
  templates: TemplatePrinters | undefined,
  o: ListSpec<T>,
) {
  if (o.items.length === 0) {
    if (!o.single) {
      io.stderr(`No ${o.noun.plural} found${o.project ? ` in project "${o.project}"` : ''}.\n`);
    }
    return;
  }
  switch (flags.output) {
    case 'yaml':
    case 'json':
      io.stdout(renderObjects(o.items.map(o.object), flags.output, !o.single));
      return;
    case 'name':
      io.stdout(o.items.map((it) => `${o.noun.name}/${o.name(it)}\n`).join(''));
      return;
    case 'jsonpath':
    case 'custom-columns':
      io.stdout(
        templates!.objects(
          o.items.map((it) => cleanForOutput(o.object(it))),
          !o.single,
        ),
      );
      return;
    default:
      io.stdout(renderRows(o.columns, o.items, flags.output === 'wide', !flags.headers));
  }
}

function doctorContext(ctx: Context, options: Record<string, unknown>): DoctorContext {
  return Object.assign(Object.create(ctx) as Context, {
    options,
    async projects() {
      const given = ctx.flags.project ?? ctx.settings().defaultProject;
      if (given) return [await ctx.project()];
      const kube = await ctx.kube();
      const list = await kube.get<Partial<KubeList<Namespace>>>('/api/v1/namespaces', {
        labelSelector: 'lanyard.dev/project=true',
      });
      return (list.items ?? []).map((n) => n.metadata?.name as string).sort();
    },
  }) as DoctorContext;
}
