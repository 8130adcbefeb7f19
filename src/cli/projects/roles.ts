// `create|get|delete role`, `grant`, `revoke` (docs/projects-and-tokens.md#3-create-a-role-and-grant-it).
import type { KubeObject, Stored } from '../../core/kube-object.ts';
import type { ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { Role, RoleBinding, Subject as RbacSubject } from 'kubernetes-types/rbac/v1.js';
import { isNotFound } from '../../kube/client.ts';
import type { Cli, Context } from '../framework.ts';
import { CliError, EXIT } from '../exit.ts';
import { parseRules } from '../../projects/rules.ts';
import { reservedRoleError } from '../../projects/names.ts';
import { isBuiltInRole } from '../../projects/builtin-roles.ts';
import {
  roleTrio,
  serviceAccountSubject,
  userSubject,
  groupSubject,
  type Subject,
} from '../../projects/objects.ts';
import {
  addSubjects,
  sameSubject,
  joinRoles,
  notManagedMessage,
  grantedSubjects,
  roleView,
  type RoleJoin,
} from '../../projects/roles.ts';
import {
  ROLE,
  checkNames,
  checkMutationOutput,
  collect,
  repeatable,
  paths,
  listAll,
  eachInProject,
  pickNamed,
  printPicked,
  withConflictRetry,
  orUndefinedIfNotFound,
} from './common.ts';
import { checkUsers } from './subjects.ts';
import { errorMessage } from '../../core/errors.ts';

export function registerRoleCommands(cli: Cli): void {
  cli.noun('create', ROLE, {
    description: 'Create a role: a ServiceAccount, Role and RoleBinding of the same name',
    args: '<name>',
    options: (cmd) =>
      cmd
        .option('--description <text>', 'free text stored in the lanyard.dev/description annotation')
        .option(
          '--rule <rule>',
          'RESOURCES:VERBS[:NAMES], repeatable (e.g. stages,promotions:get,list)',
          repeatable,
          [],
        ),
    run: (ctx, [name], opts) =>
      createRole(ctx, name!, opts.description as string | undefined, opts.rule as string[]),
  });
  cli.noun('get', ROLE, {
    description: 'List roles with their subjects',
    args: '[names...]',
    run: (ctx, names) => getRoles(ctx, names),
  });
  cli.noun('delete', ROLE, {
    description: 'Delete roles (RoleBinding, Role and ServiceAccount)',
    args: '<names...>',
    run: (ctx, names) => deleteRoles(ctx, names),
  });
  for (const verb of ['grant', 'revoke'] as const) {
    cli.command(verb, {
      description:
        verb === 'grant'
          ? 'Add service accounts, users or groups to a role'
          : 'Remove service accounts, users or groups from a role',
      options: (cmd) =>
        cmd
          .requiredOption('--role <name>', 'the role')
          .option(
            '--service-account <names>',
            'service accounts of the project (repeatable, comma-separated)',
            collect,
          )
          .option('--user <names>', 'users (repeatable, comma-separated)', collect)
          .option('--group <names>', 'groups (repeatable, comma-separated)', collect),
      run: (ctx, _args, opts) => changeSubjects(ctx, verb, opts),
    });
  }
}

async function createRole(ctx: Context, name: string, description: string | undefined, ruleTexts: string[]) {
  checkNames('role', [name]);
  const reserved = reservedRoleError(name);
  if (reserved) throw new CliError(reserved, EXIT.usage);
  const parsed = parseRules(ruleTexts);
  if (!parsed.ok) throw new CliError(parsed.error, EXIT.usage);
  checkMutationOutput(ctx.flags.output, 'create role');
  const project = await ctx.project();
  const trio = roleTrio({ project, name, rules: parsed.rules, description });
  const does = `create role "${name}"`;
  // Role first: an escalation refusal then leaves nothing behind.
  const role = await ctx.call({ does, object: { noun: 'role', name } }, (k) =>
    k.create<Stored<Role>>(paths.role(project), trio.role),
  );
  const made: string[] = [paths.role(project, name)];
  try {
    const sa = await ctx.call({ does, object: { noun: 'serviceaccount', name } }, (k) =>
      k.create<Stored<ServiceAccount>>(paths.serviceAccount(project), trio.serviceAccount),
    );
    made.push(paths.serviceAccount(project, name));
    const rb = await ctx.call({ does, object: { noun: 'rolebinding', name } }, (k) =>
      k.create<Stored<RoleBinding>>(paths.roleBinding(project), trio.roleBinding),
    );
    ctx.out.mutation(
      ROLE,
      name,
      'created',
      roleView(project, { name, role, serviceAccount: sa, roleBinding: rb }),
    );
  } catch (e) {
    const kube = await ctx.kube();
    for (const p of made.reverse()) {
      await kube.delete(p).catch((err: unknown) => {
        if (!isNotFound(err)) ctx.out.warn(`could not remove ${p} after the failure: ${errorMessage(err)}`);
      });
    }
    throw e;
  }
}

async function readTrio(ctx: Context, project: string, name: string, does: string): Promise<RoleJoin> {
  const get = <T extends KubeObject>(path: string, noun: string) =>
    ctx.call({ does, object: { noun, name } }, (k) => k.get<Stored<T>>(path).catch(orUndefinedIfNotFound));
  const [role, serviceAccount, roleBinding] = await Promise.all([
    get<Role>(paths.role(project, name), 'role'),
    get<ServiceAccount>(paths.serviceAccount(project, name), 'serviceaccount'),
    get<RoleBinding>(paths.roleBinding(project, name), 'rolebinding'),
  ]);
  if (!role && !roleBinding)
    throw new CliError(`role "${name}" not found in project "${project}"`, EXIT.notFound);
  return { name, role, serviceAccount, roleBinding };
}

async function getRoles(ctx: Context, names: string[]) {
  checkNames('role', names);
  const [project, [roles, sas, rbs]] = await ctx.readInProject({ does: 'list roles' }, (k, project) =>
    Promise.all([
      listAll<Role>(k, paths.role(project)),
      listAll<ServiceAccount>(k, paths.serviceAccount(project)),
      listAll<RoleBinding>(k, paths.roleBinding(project)),
    ]),
  );
  const joined = joinRoles(roles, sas, rbs);
  const picked = pickNamed(joined, names, (j) => j.name);
  const subjectsOf = (j: RoleJoin, kind: string) =>
    grantedSubjects(project, j)
      .filter((s) => s.kind === kind)
      .map((s) => s.name)
      .join(',') || '<none>';
  return printPicked(ctx.out, picked, names, {
    noun: ROLE,
    project,
    name: (j) => j.name,
    object: (j) => roleView(project, j),
    columns: [
      { header: 'NAME', value: (j) => j.name },
      { header: 'MANAGED', value: (j) => String(notManagedMessage(project, j) === undefined) },
      { header: 'SUBJECTS', value: (j) => String(grantedSubjects(project, j).length) },
      { header: 'SERVICE ACCOUNTS', wide: true, value: (j) => subjectsOf(j, 'ServiceAccount') },
      { header: 'USERS', wide: true, value: (j) => subjectsOf(j, 'User') },
      { header: 'GROUPS', wide: true, value: (j) => subjectsOf(j, 'Group') },
      { header: 'RULES', wide: true, value: (j) => String((j.role?.rules ?? []).length) },
      { header: 'AGE', value: (j) => ctx.out.age(j.role?.metadata?.creationTimestamp) },
    ],
  });
}

async function deleteRoles(ctx: Context, names: string[]) {
  return eachInProject(ctx, 'delete', 'role', names, async (project, name) => {
    if (isBuiltInRole(name)) {
      throw new CliError(
        `role "${name}" in project "${project}" is built in and cannot be deleted; delete the project instead`,
        EXIT.refused,
      );
    }
    const does = `delete role "${name}"`;
    const j = await readTrio(ctx, project, name, does);
    const refused = notManagedMessage(project, j);
    if (refused) throw new CliError(refused, EXIT.refused);
    // The uid precondition keeps a same-named object created meanwhile; one already gone is fine.
    const del = (path: string, noun: string, uid: string | undefined) =>
      ctx.call({ does, object: { noun, name } }, (k) =>
        k
          .delete(path, { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid } })
          .catch(orUndefinedIfNotFound),
      );
    // Permissions first, then the rules, then the identity.
    await del(paths.roleBinding(project, name), 'rolebinding', j.roleBinding?.metadata?.uid);
    await del(paths.role(project, name), 'role', j.role?.metadata?.uid);
    await del(paths.serviceAccount(project, name), 'serviceaccount', j.serviceAccount?.metadata?.uid);
    ctx.out.mutation(ROLE, name, 'deleted');
  });
}

async function changeSubjects(ctx: Context, verb: 'grant' | 'revoke', opts: Record<string, unknown>) {
  const role = opts.role as string;
  checkNames('role', [role]);
  const sas = opts.serviceAccount as string[] | undefined;
  const users = opts.user as string[] | undefined;
  const groups = opts.group as string[] | undefined;
  const given = [sas, users, groups].filter((x) => x !== undefined).length;
  if (given > 1)
    throw new CliError(
      '--service-account, --user and --group cannot be combined; pass one of them',
      EXIT.usage,
    );
  if (given === 0) throw new CliError(`${verb} needs --service-account, --user or --group`, EXIT.usage);
  if (sas) checkNames('serviceaccount', sas);
  if (users) checkUsers(users);
  if (groups?.some((g) => g === '')) throw new CliError('--group needs a group name', EXIT.usage);
  checkMutationOutput(ctx.flags.output, verb);
  const project = ctx.projectName();
  if (verb === 'revoke' && sas?.includes(role)) {
    throw new CliError(
      `serviceaccount "${role}" is role "${role}"'s own account in project "${project}" and cannot be revoked`,
      EXIT.usage,
    );
  }
  await ctx.project();
  const subjects: Subject[] = sas
    ? sas.map((s) => serviceAccountSubject(project, s))
    : users
      ? users.map(userSubject)
      : groups!.map(groupSubject);
  const does = `${verb} role "${role}"`;
  const j = await readTrio(ctx, project, role, does);
  const refused = notManagedMessage(project, j);
  if (refused) throw new CliError(refused, EXIT.refused);
  if (verb === 'grant' && sas) {
    // Every account must exist before anything is written.
    for (const s of sas) {
      await ctx.call({ does, object: { noun: 'serviceaccount', name: s } }, (k) =>
        k.get<Stored<ServiceAccount>>(paths.serviceAccount(project, s)),
      );
    }
  }
  // notManagedMessage refused a trio missing any of its three objects.
  let rb = j.roleBinding as Stored<RoleBinding>;
  let changed = false;
  await ctx.call({ does, object: { noun: 'rolebinding', name: role } }, (k) =>
    withConflictRetry(async (attempt) => {
      if (attempt > 1) rb = await k.get<Stored<RoleBinding>>(paths.roleBinding(project, role));
      const next = changeBinding(verb, project, rb.subjects ?? [], subjects);
      changed = next.changed;
      if (!next.changed) return;
      const before = rb.metadata.resourceVersion;
      rb = await k.update<Stored<RoleBinding>>(paths.roleBinding(project, role), {
        ...rb,
        subjects: next.subjects,
      });
      // The server is the judge: an update it stored as a no-op keeps the resourceVersion.
      changed = rb.metadata.resourceVersion !== before;
    }),
  );
  ctx.out.mutation(
    ROLE,
    role,
    changed ? 'updated' : 'unchanged',
    roleView(project, { ...j, roleBinding: rb }),
  );
}

/**
 * The subjects after grant or revoke, by what they grant rather than how they are spelled: a ServiceAccount subject
 * without a namespace means the binding's own (the project), so granting it again changes nothing and revoking it
 * removes that spelling too.
 */
function changeBinding(
  verb: 'grant' | 'revoke',
  project: string,
  existing: RbacSubject[],
  given: Subject[],
): { subjects: RbacSubject[]; changed: boolean } {
  const effective = (s: RbacSubject) =>
    s.kind === 'ServiceAccount' && !s.namespace ? { ...s, namespace: project } : s;
  if (verb === 'grant')
    return addSubjects(
      existing,
      given.filter((g) => !existing.some((e) => sameSubject(effective(e), g))),
    );
  const kept = existing.filter((e) => !given.some((g) => sameSubject(effective(e), g)));
  return { subjects: kept, changed: kept.length !== existing.length };
}
