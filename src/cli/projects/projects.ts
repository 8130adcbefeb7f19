// `create|get|delete project` (docs/projects-and-tokens.md#1-create-a-project).
import type { KubeObject, Stored } from '../../core/kube-object.ts';
import type { Namespace } from 'kubernetes-types/core/v1.js';
import type { KubeClient } from '../../kube/client.ts';
import type { PolicyRule, Subject as RbacSubject } from 'kubernetes-types/rbac/v1.js';
import { isAlreadyExists, isNotFound, KubeApiError } from '../../kube/client.ts';
import type { Cli, Context } from '../framework.ts';
import { CliError, EXIT } from '../exit.ts';
import { BUILTIN_ROLES, ADMIN_ROLE } from '../../projects/builtin-roles.ts';
import {
  projectNamespace,
  roleTrio,
  userSubject,
  groupSubject,
  type Subject,
} from '../../projects/objects.ts';
import { isManaged, isProject, PROJECT_LABEL } from '../../projects/labels.ts';
import { canonicalRules } from '../../projects/drift.ts';
import { addSubjects } from '../../projects/roles.ts';
import {
  PROJECT,
  checkNames,
  checkMutationOutput,
  collect,
  paths,
  byName,
  eachName,
  pickNamed,
  printPicked,
  listAll,
} from './common.ts';
import { checkUsers } from './subjects.ts';
import { errorMessage } from '../../core/errors.ts';

export function registerProjectCommands(cli: Cli): void {
  cli.noun('create', PROJECT, {
    description: 'Create a project: a labelled namespace with the built-in roles',
    args: '<name>',
    options: (cmd) =>
      cmd
        .option(
          '--admin-user <user>',
          'add a user to lanyard-admin (repeatable, comma-separated)',
          collect,
          [],
        )
        .option(
          '--admin-group <group>',
          'add a group to lanyard-admin (repeatable, comma-separated)',
          collect,
          [],
        )
        .option('--adopt', 'make an existing namespace a project and restore its built-in roles'),
    run: (ctx, [name], opts) =>
      createProject(ctx, name!, opts.adminUser as string[], opts.adminGroup as string[], opts.adopt === true),
  });
  cli.noun('get', PROJECT, {
    description: 'List projects (namespaces labelled lanyard.dev/project=true)',
    args: '[names...]',
    run: (ctx, names) => getProjects(ctx, names),
  });
  cli.noun('delete', PROJECT, {
    description: 'Delete projects and everything in them',
    args: '<names...>',
    options: (cmd) =>
      cmd
        .option('--yes', 'do not ask for confirmation (required without a terminal)')
        .option('--wait', 'wait (up to 2 minutes) until the namespace is gone'),
    run: (ctx, names, opts) => deleteProjects(ctx, names, opts.yes === true, opts.wait === true),
  });
}

interface Created {
  path: string;
  what: string;
}

async function createProject(ctx: Context, name: string, users: string[], groups: string[], adopt: boolean) {
  checkNames('project', [name]);
  checkUsers(users);
  if (groups.some((g) => g === '')) throw new CliError('--admin-group needs a group name', EXIT.usage);
  checkMutationOutput(ctx.flags.output, 'create project');
  const admins: Subject[] = [...users.map(userSubject), ...groups.map(groupSubject)];
  const kube = await ctx.kube();
  const created: Created[] = [];
  const lines: string[] = [];
  const op = (does: string, object?: { noun: string; name: string }) => ({ does, object });
  try {
    let ns: Namespace;
    let verb = 'created';
    try {
      ns = await kube.create<Namespace>(paths.namespace(), projectNamespace(name));
      created.push({ path: paths.namespace(name), what: `namespace "${name}"` });
    } catch (e) {
      if (!isAlreadyExists(e))
        throw ctx.toError(e, op(`create project "${name}"`, { noun: 'namespace', name }));
      if (!adopt) {
        throw new CliError(
          `namespace "${name}" already exists; pass --adopt to make it a project`,
          EXIT.refused,
        );
      }
      ns = await ctx.call(op(`adopt project "${name}"`), (k) =>
        k.get<Stored<Namespace>>(paths.namespace(name)),
      );
      if (!isProject(ns)) {
        ns = await ctx.call(op(`adopt project "${name}"`), (k) =>
          k.patch<Namespace>(
            paths.namespace(name),
            { metadata: { labels: { [PROJECT_LABEL]: 'true' } } },
            'application/merge-patch+json',
          ),
        );
      }
      verb = 'adopted';
    }
    if (ctx.flags.output === 'table') lines.push(`project/${name} ${verb}`);
    for (const b of BUILTIN_ROLES) {
      const trio = roleTrio({
        project: name,
        name: b.name,
        rules: b.rules,
        extraSubjects: b.name === ADMIN_ROLE ? admins : [],
      });
      const changed = await ensureTrio(ctx, kube, name, b.name, trio, created, adopt);
      if (changed && ctx.flags.output === 'table') lines.push(`role/${b.name} ${changed}`);
    }
    for (const l of lines) ctx.out.line(l);
    if (ctx.flags.output !== 'table') ctx.out.mutation(PROJECT, name, verb, ns);
  } catch (e) {
    // Undo this run's creations in reverse order, then report the first error.
    for (const c of created.reverse()) {
      await kube.delete(c.path).catch((err: unknown) => {
        if (!isNotFound(err))
          ctx.out.warn(`could not remove ${c.what} after the failure: ${errorMessage(err)}`);
      });
    }
    throw e instanceof CliError ? e : ctx.toError(e, op(`create project "${name}"`));
  }
}

/** Creates the missing objects of a built-in trio; with --adopt also restores the rules of a managed Role. */
async function ensureTrio(
  ctx: Context,
  kube: KubeClient,
  project: string,
  role: string,
  trio: ReturnType<typeof roleTrio>,
  created: Created[],
  adopt: boolean,
): Promise<'created' | 'updated' | undefined> {
  const op = (kind: string) => ({ does: `create role "${role}"`, object: { noun: kind, name: role } });
  const steps: [string, string, KubeObject, string][] = [
    ['role', paths.role(project), trio.role, paths.role(project, role)],
    [
      'serviceaccount',
      paths.serviceAccount(project),
      trio.serviceAccount,
      paths.serviceAccount(project, role),
    ],
    ['rolebinding', paths.roleBinding(project), trio.roleBinding, paths.roleBinding(project, role)],
  ];
  let made = 0;
  let updated = false;
  for (const [kind, collection, body, path] of steps) {
    try {
      await kube.create(collection, body);
      created.push({ path, what: `${kind} "${role}"` });
      made++;
    } catch (e) {
      if (!(adopt && isAlreadyExists(e))) throw ctx.toError(e, op(kind));
      // A role has rules, a binding subjects, an account neither: each is read only for its kind.
      const existing = await ctx.call(op(kind), (k) =>
        k.get<KubeObject & { rules?: PolicyRule[]; subjects?: RbacSubject[] }>(path),
      );
      if (!isManaged(existing)) continue;
      if (kind === 'role' && canonicalRules(existing.rules) !== canonicalRules(trio.role.rules)) {
        await ctx.call(op(kind), (k) => k.update(path, { ...existing, rules: trio.role.rules }));
        updated = true;
      }
      if (kind === 'rolebinding') {
        const merged = addSubjects(existing.subjects ?? [], trio.roleBinding.subjects);
        if (merged.changed) {
          await ctx.call(op(kind), (k) => k.update(path, { ...existing, subjects: merged.subjects }));
          updated = true;
        }
      }
    }
  }
  return made > 0 ? 'created' : updated ? 'updated' : undefined;
}

async function getProjects(ctx: Context, names: string[]) {
  checkNames('project', names);
  let items: Stored<Namespace>[];
  try {
    const kube = await ctx.kube();
    items = await listAll<Namespace>(kube, paths.namespace(), { labelSelector: `${PROJECT_LABEL}=true` });
  } catch (e) {
    if (e instanceof KubeApiError && e.status === 403) {
      throw new CliError(
        'forbidden: you may not list namespaces, so projects cannot be listed; name a project with --project instead',
        EXIT.forbidden,
      );
    }
    throw ctx.toError(e, { does: 'list projects' });
  }
  items.sort(byName);
  const picked = pickNamed(items, names, (n) => n.metadata.name);
  return printPicked(ctx.out, picked, names, {
    noun: PROJECT,
    name: (n) => n.metadata.name,
    object: (n) => n,
    columns: [
      { header: 'NAME', value: (n) => n.metadata.name },
      { header: 'STATUS', value: (n) => n.status?.phase ?? 'Unknown' },
      { header: 'AGE', value: (n) => ctx.out.age(n.metadata.creationTimestamp) },
    ],
  });
}

async function deleteProjects(ctx: Context, names: string[], yes: boolean, wait: boolean) {
  checkNames('project', names);
  if (!yes) {
    if (!ctx.io.stdinIsTTY) {
      throw new CliError(
        `refusing to delete project "${names[0]}" without --yes when no terminal is attached`,
        EXIT.usage,
      );
    }
    for (const name of names) {
      ctx.out.info(
        `Deleting project "${name}" removes its namespace and every stage, promotion, role, service account and token in it.`,
      );
      const answer = await ctx.io.readLine('Type the project name to confirm: ');
      if (answer?.trim() !== name) {
        throw new CliError(`confirmation did not match; project "${name}" was not deleted`, EXIT.usage);
      }
    }
  }
  return eachName(
    ctx,
    names,
    (name) => `delete project "${name}"`,
    async (name) => {
      const op = { does: `delete project "${name}"`, object: { noun: 'project', name } };
      const ns = await ctx.call(op, (k) => k.get<Stored<Namespace>>(paths.namespace(name)));
      if (!isProject(ns)) {
        throw new CliError(
          `namespace "${name}" is not a Lanyard project (label lanyard.dev/project is not "true"); it was not deleted`,
          EXIT.refused,
        );
      }
      await ctx.call(op, (k) =>
        k.delete(paths.namespace(name), {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          preconditions: { uid: ns.metadata.uid },
        }),
      );
      if (wait) await waitGone(ctx, name);
      ctx.out.mutation(PROJECT, name, 'deleted');
    },
  );
}

async function waitGone(ctx: Context, name: string): Promise<void> {
  const deadline = ctx.now() + 120_000;
  let pause = 250;
  while (ctx.now() < deadline) {
    const res = await ctx.call({ does: `wait for project "${name}" to be deleted` }, (k) =>
      k.raw({ path: paths.namespace(name) }),
    );
    if (res.status === 404) return;
    await ctx.io.clock.sleep(Math.min(pause, Math.max(0, deadline - ctx.now())));
    pause = Math.min(pause * 2, 2000);
  }
  throw new CliError(
    `project "${name}" is still terminating after 2m (its namespace finishes deleting only while the Lanyard controller runs)`,
    EXIT.timedOut,
  );
}
