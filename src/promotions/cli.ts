// `lanyard promote`, `get stages|promotions`, `abort promotion`, the promotions doctor checks and the `done`
// container's `lanyard promotion-done` (docs/promotions.md#cli), on the shared CLI framework (src/cli/README.md).
import type { Command } from 'commander';
import type { ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { RoleBinding } from 'kubernetes-types/rbac/v1.js';
import { orUndefinedIfNotFound, type KubeClient } from '../kube/client.ts';
import type { KubeObject, Stored } from '../core/kube-object.ts';
import type { Condition } from '../kube/conditions.ts';
import type { Column } from '../cli/output.ts';
import type { Cli, Context, DoctorContext, DoctorFinding, Noun } from '../cli/framework.ts';
import { CliError, EXIT } from '../cli/exit.ts';
import { checkNames, eachInProject, repeatable } from '../cli/projects/common.ts';
import { listAll, pickNamed, printPicked } from '../cli/list.ts';
import { formatDuration, parseDuration } from '../core/duration.ts';
import { PROMOTION_DEFAULTS } from '../config/promotions.ts';
import { ANN_ABORT } from './build.ts';
import { ANN_SA, allowedProjects, decoratorValue } from './decorators.ts';
import { EXIT_BY_PHASE, progressLines } from './progress.ts';
import { isTerminal } from './status.ts';
import type { Promotion, PromotionStep, Stage } from './types.ts';

export const STAGE: Noun = { name: 'stage', aliases: ['stages', 'stg'], plural: 'stages' };
export const PROMOTION: Noun = {
  name: 'promotion',
  aliases: ['promotions', 'promo', 'promos'],
  plural: 'promotions',
};

const G = '/apis/lanyard.dev/v1alpha1';
const VAR_RE = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s;
const NONE = '<none>';

/** The agent namespace and default account as the controller is configured (same environment variables). */
function agentSettings(ctx: Context): { namespace: string; serviceAccount: string } {
  return {
    namespace: ctx.io.env.LANYARD_PROMOTION_NAMESPACE || PROMOTION_DEFAULTS['promotion-namespace'],
    serviceAccount:
      ctx.io.env.LANYARD_PROMOTION_SERVICE_ACCOUNT || PROMOTION_DEFAULTS['promotion-service-account'],
  };
}

function byCreation(a: Stored<KubeObject>, b: Stored<KubeObject>): number {
  const ta = String(a.metadata.creationTimestamp ?? '');
  const tb = String(b.metadata.creationTimestamp ?? '');
  if (ta !== tb) return ta < tb ? -1 : 1;
  return String(a.metadata.name).localeCompare(String(b.metadata.name));
}

function validCondition(o: { status?: { conditions?: Condition[] } }): Condition | undefined {
  return (o.status?.conditions ?? []).find((c) => c.type === 'Valid');
}

/**
 * `get stages|promotions [NAME...]`: the named objects of the project (all of them when none is named) as a table or
 * -o output, then one error line per missing name, after the objects found (docs/cli.md#conventions, several names).
 */
function printNamed<T extends Stored<KubeObject>>(
  ctx: Context,
  o: { noun: Noun; project: string; items: T[]; names: string[]; columns: Column<T>[] },
): number {
  const picked = pickNamed(o.items, o.names, (i) => i.metadata.name);
  return printPicked(ctx.out, picked, o.names, {
    noun: o.noun,
    project: o.project,
    name: (i) => i.metadata.name,
    object: (i) => i,
    columns: o.columns,
  });
}

async function getStages(ctx: Context, names: string[]): Promise<number> {
  checkNames('stage', names);
  const project = await ctx.project();
  const items = await ctx.call({ does: 'list stages' }, (kube) =>
    listAll<Stage>(kube, `${G}/namespaces/${project}/stages`),
  );
  items.sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
  const defaultServiceAccount = agentSettings(ctx).serviceAccount;
  return printNamed(ctx, {
    noun: STAGE,
    project,
    items,
    names,
    columns: [
      { header: 'NAME', value: (s) => s.metadata.name },
      { header: 'STEPS', value: (s) => String((s.spec?.promotionTemplate?.spec?.steps ?? []).length) },
      {
        header: 'SERVICE ACCOUNT',
        value: (s) =>
          (decoratorValue(s.metadata.annotations, ANN_SA).raw ?? '').trim() || defaultServiceAccount,
      },
      { header: 'CURRENT', value: (s) => s.status?.currentPromotion || NONE },
      {
        header: 'LAST',
        value: (s) =>
          s.status?.lastPromotion?.name
            ? `${s.status.lastPromotion.name}/${s.status.lastPromotion.phase}`
            : NONE,
      },
      { header: 'VALID', value: (s) => validCondition(s)?.status ?? 'Unknown' },
      { header: 'MESSAGE', wide: true, value: (s) => validCondition(s)?.message ?? '' },
      { header: 'AGE', value: (s) => ctx.out.age(s.metadata.creationTimestamp) },
    ],
  });
}

async function getPromotions(ctx: Context, names: string[], opts: Record<string, unknown>): Promise<number> {
  checkNames('promotion', names);
  const stage = opts.stage === undefined ? undefined : String(opts.stage);
  if (stage !== undefined) checkNames('stage', [stage]);
  const project = await ctx.project();
  let items = await ctx.call({ does: 'list promotions' }, (kube) =>
    listAll<Promotion>(kube, `${G}/namespaces/${project}/promotions`),
  );
  if (stage !== undefined) items = items.filter((p) => p.spec?.stage === stage);
  items.sort(byCreation);
  return printNamed(ctx, {
    noun: PROMOTION,
    project,
    items,
    names,
    columns: [
      { header: 'NAME', value: (p) => p.metadata.name },
      { header: 'STAGE', value: (p) => p.spec?.stage ?? '' },
      { header: 'PHASE', value: (p) => p.status?.phase || NONE },
      {
        header: 'STEP',
        value: (p) =>
          p.status?.steps?.length ? `${p.status.currentStep ?? 0}/${p.status.steps.length}` : NONE,
      },
      { header: 'SERVICE ACCOUNT', wide: true, value: (p) => p.status?.pod?.serviceAccount || NONE },
      { header: 'POD', wide: true, value: (p) => p.status?.pod?.name || NONE },
      { header: 'MESSAGE', wide: true, value: (p) => p.status?.message ?? '' },
      { header: 'AGE', value: (p) => ctx.out.age(p.metadata.creationTimestamp) },
    ],
  });
}

async function abortPromotions(ctx: Context, names: string[]): Promise<number> {
  return eachInProject(ctx, 'abort', 'promotion', names, async (project, name) => {
    const p = await ctx.call(
      { does: `abort promotion "${name}"`, object: { noun: 'promotion', name } },
      (kube) => kube.get<Promotion>(`${G}/namespaces/${project}/promotions/${name}`),
    );
    if (isTerminal(p.status?.phase)) {
      throw new CliError(
        `promotion "${name}" in project "${project}" already finished (${p.status.phase}); nothing to abort`,
        EXIT.refused,
      );
    }
    const updated = await ctx.call(
      { does: `abort promotion "${name}"`, object: { noun: 'promotion', name } },
      (kube) =>
        kube.patch<Stored<Promotion>>(
          `${G}/namespaces/${project}/promotions/${name}`,
          { metadata: { annotations: { [ANN_ABORT]: 'true' } } },
          'application/merge-patch+json',
        ),
    );
    ctx.out.mutation(PROMOTION, name, 'abort requested', updated);
  });
}

async function watchUntilDone(
  ctx: Context,
  kube: KubeClient,
  project: string,
  first: Stored<Promotion>,
  timeoutMs: number,
): Promise<Stored<Promotion>> {
  const name = first.metadata.name;
  const path = `${G}/namespaces/${project}/promotions`;
  const deadline = ctx.now() + timeoutMs;
  let last: Promotion | undefined;
  const show = (o: Stored<Promotion>) => {
    for (const l of progressLines(last, o)) ctx.out.line(l);
    last = o;
  };
  let current = first;
  show(current);
  let rv = current.metadata.resourceVersion;
  while (!isTerminal(current.status?.phase)) {
    const remaining = deadline - ctx.now();
    if (remaining <= 0) {
      throw new CliError(
        `promotion "${name}" in project "${project}" is still ${current.status?.phase || 'Pending'} after ${formatDuration(timeoutMs)}; it was not stopped (lanyard abort promotion ${name} stops it)`,
        EXIT.timedOut,
      );
    }
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), remaining);
    let relist = false;
    let deleted = false;
    try {
      await kube.watch<Stored<Promotion>>(
        path,
        {
          fieldSelector: `metadata.name=${name}`,
          resourceVersion: rv,
          allowWatchBookmarks: true,
          timeoutSeconds: Math.min(300, Math.ceil(remaining / 1000)),
        },
        (e) => {
          if (e.type === 'ERROR') {
            relist = true;
            ac.abort();
            return;
          }
          rv = e.object?.metadata?.resourceVersion ?? rv;
          if (e.type === 'BOOKMARK') return;
          if (e.type === 'DELETED') {
            deleted = true;
            ac.abort();
            return;
          }
          current = e.object;
          show(current);
          if (isTerminal(current.status?.phase)) ac.abort();
        },
        ac.signal,
      );
    } catch (e) {
      // A refused watch (expired resourceVersion) means: read the object again and watch from there.
      if (!(e instanceof Error && 'status' in e && (e as { status: number }).status === 410)) throw e;
      relist = true;
    } finally {
      clearTimeout(timer);
    }
    if (deleted)
      throw new CliError(
        `promotion "${name}" in project "${project}" was deleted before it finished`,
        EXIT.failure,
      );
    if (relist) {
      current = await kube.get<Stored<Promotion>>(`${path}/${name}`);
      rv = current.metadata.resourceVersion;
      show(current);
    }
  }
  return current;
}

async function promote(ctx: Context, opts: Record<string, unknown>): Promise<number> {
  const stage = opts.stage === undefined ? '' : String(opts.stage);
  if (!stage) throw new CliError('--stage is required: the stage to promote', EXIT.usage);
  checkNames('stage', [stage]);
  const vars = ((opts.var as string[] | undefined) ?? []).map((v) => {
    const m = VAR_RE.exec(v);
    if (!m)
      throw new CliError(
        `invalid --var "${v}": use NAME=VALUE, NAME being letters, digits and "_", not starting with a digit`,
        EXIT.usage,
      );
    return { name: m[1]!, value: m[2]! };
  });
  const seen = new Set<string>();
  for (const v of vars) {
    if (seen.has(v.name)) throw new CliError(`--var ${v.name} is given twice`, EXIT.usage);
    seen.add(v.name);
  }
  const timeoutText = String(opts.timeout ?? '30m');
  const timeoutMs = parseDuration(timeoutText);
  if (timeoutMs === undefined || timeoutMs <= 0)
    throw new CliError(`invalid --timeout "${timeoutText}": use a duration such as 10m or 1h`, EXIT.usage);
  const project = await ctx.project();
  const kube = await ctx.kube();
  const created = await ctx.call({ does: `create promotions for stage "${stage}"` }, () =>
    kube.create<Stored<Promotion>>(
      `${G}/namespaces/${project}/promotions`,
      {
        apiVersion: 'lanyard.dev/v1alpha1',
        kind: 'Promotion',
        metadata: { generateName: `${stage}-` },
        spec: { stage, vars },
      },
      { fieldValidation: 'Strict' },
    ),
  );
  if (!opts.wait) {
    ctx.out.mutation(PROMOTION, created.metadata.name, 'created', created);
    return 0;
  }
  ctx.out.line(`promotion/${created.metadata.name} created`);
  const done = await ctx.call({ does: `watch promotion "${created.metadata.name}"` }, () =>
    watchUntilDone(ctx, kube, project, created, timeoutMs),
  );
  return EXIT_BY_PHASE[done.status?.phase ?? ''] ?? EXIT.failure;
}

/**
 * A namespace's steps under both kinds: PromotionSteps first, then Kargo's CustomPromotionSteps (docs/adr/0605); a
 * cluster whose chart predates that CRD answers 404 for the second, which counts as none.
 */
async function listSteps(kube: KubeClient, namespace: string): Promise<Stored<PromotionStep>[]> {
  const [steps, custom] = await Promise.all([
    listAll<PromotionStep>(kube, `${G}/namespaces/${namespace}/promotionsteps`),
    listAll<PromotionStep>(kube, `${G}/namespaces/${namespace}/custompromotionsteps`).catch(
      orUndefinedIfNotFound,
    ),
  ]);
  return [...steps, ...(custom ?? [])];
}

/** Doctor checks of docs/promotions.md#cli. */
async function doctorFindings(ctx: DoctorContext): Promise<DoctorFinding[]> {
  // The controller module (and its metrics library) loads only for doctor, not for every promotions command.
  const { hasTokenManagerBinding, TOKEN_MANAGER_ROLE } = await import('./decide.ts');
  const kube = await ctx.kube();
  const agent = agentSettings(ctx);
  const [agentSteps, agentSas, bindings] = await Promise.all([
    listSteps(kube, agent.namespace),
    listAll<ServiceAccount>(kube, `/api/v1/namespaces/${agent.namespace}/serviceaccounts`),
    listAll<RoleBinding>(
      kube,
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${agent.namespace}/rolebindings`,
    ),
  ]);
  const findings: DoctorFinding[] = openRoleAccounts(agentSas, agent.namespace);
  const doctor: StageDoctor = {
    agent,
    agentSteps,
    agentSas,
    tokenManagerRole: TOKEN_MANAGER_ROLE,
    hasTokenManager: (sa) => hasTokenManagerBinding(bindings, agent.namespace, sa),
  };
  const now = ctx.now();
  for (const project of await ctx.projects()) {
    const [stages, steps, promotions] = await Promise.all([
      listAll<Stage>(kube, `${G}/namespaces/${project}/stages`),
      listSteps(kube, project),
      listAll<Promotion>(kube, `${G}/namespaces/${project}/promotions`),
    ]);
    for (const stage of stages.sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name))))
      findings.push(...stageFindings(doctor, project, steps, stage));
    for (const p of promotions.sort(byCreation)) {
      const created = Date.parse(p.metadata.creationTimestamp);
      if ((!p.status?.phase || p.status.phase === 'Pending') && now - created > 3600_000) {
        findings.push({
          level: 'warning',
          object: `promotion ${project}/${p.metadata.name}`,
          text: `pending for ${ctx.out.age(p.metadata.creationTimestamp)}${p.status?.message ? `: ${p.status.message}` : ''}`,
          fix: `lanyard abort promotion ${p.metadata.name} --project ${project}`,
        });
      }
    }
  }
  return findings;
}

/** Agent-namespace accounts with an AWS role that every project's stages may run as. */
function openRoleAccounts(agentSas: Stored<ServiceAccount>[], agentNamespace: string): DoctorFinding[] {
  const findings: DoctorFinding[] = [];
  for (const sa of agentSas) {
    const role = Object.entries(sa.metadata.annotations ?? {}).find(([k]) => k.endsWith('/role-arn'))?.[1];
    if (role && allowedProjects(sa) === undefined) {
      findings.push({
        level: 'warning',
        object: `serviceaccount ${agentNamespace}/${sa.metadata.name}`,
        text: `has AWS role "${role}" and no lanyard.dev/allowed-projects annotation, so every project's stages may run as it`,
        fix: `kubectl annotate serviceaccount ${sa.metadata.name} -n ${agentNamespace} lanyard.dev/allowed-projects=<project>[,<project>...]`,
      });
    }
  }
  return findings;
}

/** What the doctor knows of the agent namespace while it checks each project's stages. */
interface StageDoctor {
  agent: ReturnType<typeof agentSettings>;
  agentSteps: Stored<PromotionStep>[];
  agentSas: Stored<ServiceAccount>[];
  tokenManagerRole: string;
  /** The account is bound to the token-manager role in the agent namespace. */
  hasTokenManager: (serviceAccount: string) => boolean;
}

/**
 * One Stage's findings, in this order: shared steps needing mint-tokens without the token-manager binding, steps
 * holding a role through an account other projects may use, and the Stage's own `Valid=False`.
 */
function stageFindings(
  d: StageDoctor,
  project: string,
  steps: Stored<PromotionStep>[],
  stage: Stored<Stage>,
): DoctorFinding[] {
  const { agent, agentSteps, agentSas } = d;
  const findings: DoctorFinding[] = [];
  const find = (uses: string) =>
    steps.find((s) => s.metadata.name === uses) ?? agentSteps.find((s) => s.metadata.name === uses);
  const object = `stage ${project}/${stage.metadata.name}`;
  const sa = (decoratorValue(stage.metadata.annotations, ANN_SA).raw ?? '').trim() || agent.serviceAccount;
  const stageSteps = stage.spec?.promotionTemplate?.spec?.steps ?? [];
  for (const [i, st] of stageSteps.entries()) {
    const step = find(st.uses);
    // A project's own step never gets a token (the Stage's Valid condition reports it): only shared steps need the binding.
    const shared = step !== undefined && agentSteps.includes(step);
    if (!shared || !step.spec?.capabilities?.includes('mint-tokens') || d.hasTokenManager(sa)) continue;
    findings.push({
      level: 'error',
      object,
      text: `step "${st.as ?? `step-${i + 1}`}" (uses "${st.uses}") needs mint-tokens, but serviceaccount "${sa}" in namespace "${agent.namespace}" is not bound to role "${d.tokenManagerRole}"`,
      fix: `kubectl create rolebinding ${d.tokenManagerRole}-${sa} -n ${agent.namespace} --role ${d.tokenManagerRole} --serviceaccount ${agent.namespace}:${sa}`,
    });
  }
  // IAM sees only the token's account, not the role a step declared: a shared account lets other projects' steps
  // assume this role too (docs/promotions.md, "Per-step AWS roles").
  const account = agentSas.find((a) => a.metadata.name === sa);
  const openTo = account ? allowedProjects(account) : undefined;
  const shared = openTo === undefined || openTo.includes('*') || openTo.some((p) => p !== project);
  for (const [i, st] of stageSteps.entries()) {
    const role = find(st.uses)?.spec?.identity?.roleARN;
    if (!role || !account || !shared) continue;
    findings.push({
      level: 'warning',
      object,
      text:
        `step "${st.as ?? `step-${i + 1}`}" (uses "${st.uses}") holds role "${role}" as serviceaccount "${sa}", which is open to ` +
        `${openTo === undefined || openTo.includes('*') ? 'every project' : `projects ${openTo.join(', ')}`}: ` +
        `steps of those projects can assume the role with their own step token`,
      fix: `give project ${project} its own promotion account (lanyard.dev/allowed-projects=${project}) and let the role trust only it`,
    });
  }
  const valid = validCondition(stage);
  if (valid?.status === 'False') {
    findings.push({
      level: 'error',
      object,
      text: `cannot be promoted (${valid.reason}): ${valid.message}`,
      fix: `kubectl edit stage ${stage.metadata.name} -n ${project}`,
    });
  }
  return findings;
}

export function registerPromotionsCli(cli: Cli): void {
  cli.noun('get', STAGE, {
    description: 'List stages',
    args: '[names...]',
    run: (ctx, names) => getStages(ctx, names),
  });
  cli.noun('get', PROMOTION, {
    description: 'List promotions, oldest first',
    args: '[names...]',
    options: (cmd: Command) => cmd.option('--stage <name>', 'only promotions of this stage'),
    run: (ctx, names, opts) => getPromotions(ctx, names, opts),
  });
  // Before the noun: the first registration creates the verb command and sets its description.
  cli.verb('abort', 'Stop a running or pending operation');
  cli.noun('abort', PROMOTION, {
    description: 'Stop promotions (their pods are deleted)',
    args: '<names...>',
    run: (ctx, names) => abortPromotions(ctx, names),
  });
  cli.command('promote', {
    description: 'Promote a stage: create a Promotion (and with --wait, follow it to the end)',
    options: (cmd: Command) =>
      cmd
        .option('--stage <name>', 'the stage to promote')
        .option('--var <NAME=VALUE>', 'a var for the promotion (repeatable)', repeatable)
        .option(
          '--wait',
          'follow the promotion until it ends; exit 0, 10 (Failed), 11 (Errored) or 12 (Aborted)',
        )
        .option('--timeout <duration>', 'with --wait: how long to wait', '30m'),
    run: (ctx, _args, opts) => promote(ctx, opts),
  });
  cli.doctorCheck({ name: 'promotions', run: doctorFindings });
  // The `done` container of every promotion pod: the pod needs one regular container, and it has nothing to do.
  cli.program
    .command('promotion-done', { hidden: true })
    .description('exit 0 (the final container of a promotion pod)')
    .action(() => undefined);
}
