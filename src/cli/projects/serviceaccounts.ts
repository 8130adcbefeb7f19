// `create|get|delete serviceaccount` (docs/projects-and-tokens.md#2-create-a-service-account-for-a-bot), including the delete cascade.
import type { Stored } from '../../core/kube-object.ts';
import type { Secret, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { RoleBinding } from 'kubernetes-types/rbac/v1.js';
import type { Cli, Context } from '../framework.ts';
import { CliError, EXIT } from '../exit.ts';
import { projectServiceAccount } from '../../projects/objects.ts';
import {
  isManaged,
  isProjectToken,
  noManagedAnnotation,
  notManagedRefusal,
  SA_NAME_ANNOTATION,
  isProjectServiceAccount,
  kargoLabelNotice,
  usesKargoLabel,
  TOKEN_LABEL,
} from '../../projects/labels.ts';
import { rolesGranting, sameSubject } from '../../projects/roles.ts';
import { serviceAccountSubject } from '../../projects/objects.ts';
import {
  SERVICE_ACCOUNT,
  TOKEN,
  ROLE,
  checkNames,
  checkMutationOutput,
  checkProjectServiceAccount,
  paths,
  listAll,
  eachInProject,
  pickNamed,
  printPicked,
  byName,
  withConflictRetry,
  orUndefinedIfNotFound,
} from './common.ts';

export function registerServiceAccountCommands(cli: Cli): void {
  cli.noun('create', SERVICE_ACCOUNT, {
    description: 'Create a project service account for programmatic access',
    args: '<name>',
    options: (cmd) =>
      cmd.option('--description <text>', 'free text stored in the lanyard.dev/description annotation'),
    run: (ctx, [name], opts) => createServiceAccount(ctx, name!, opts.description as string | undefined),
  });
  cli.noun('get', SERVICE_ACCOUNT, {
    description: 'List project service accounts',
    args: '[names...]',
    run: (ctx, names) => getServiceAccounts(ctx, names),
  });
  cli.noun('delete', SERVICE_ACCOUNT, {
    description: 'Delete service accounts, their tokens and their role memberships',
    args: '<names...>',
    run: (ctx, names) => deleteServiceAccounts(ctx, names),
  });
}

async function createServiceAccount(ctx: Context, name: string, description: string | undefined) {
  checkNames('serviceaccount', [name]);
  checkMutationOutput(ctx.flags.output, 'create serviceaccount');
  const project = await ctx.project();
  const sa = await ctx.call(
    { does: `create serviceaccount "${name}"`, object: { noun: 'serviceaccount', name } },
    (k) =>
      k.create<Stored<ServiceAccount>>(
        paths.serviceAccount(project),
        projectServiceAccount({ project, name, description }),
      ),
  );
  ctx.out.mutation(SERVICE_ACCOUNT, name, 'created', sa);
}

async function getServiceAccounts(ctx: Context, names: string[]) {
  checkNames('serviceaccount', names);
  const wide = ctx.flags.output === 'wide';
  const [project, [sas, tokens, bindings]] = await ctx.readInProject(
    { does: 'list service accounts' },
    (k, project) =>
      Promise.all([
        // Lanyard's label or Kargo's (seed 001): a selector cannot OR two keys, and a project holds few accounts, so one
        // list of the namespace's accounts, filtered here (docs/projects-and-tokens.md, "Kargo's label").
        listAll<ServiceAccount>(k, paths.serviceAccount(project)).then((all) =>
          all.filter(isProjectServiceAccount),
        ),
        wide
          ? listAll<Secret>(k, paths.secret(project), { labelSelector: `${TOKEN_LABEL}=true` })
          : Promise.resolve([]),
        wide ? listAll<RoleBinding>(k, paths.roleBinding(project)) : Promise.resolve([]),
      ]),
  );
  sas.sort(byName);
  const picked = pickNamed(sas, names, (s) => s.metadata.name);
  for (const sa of picked.found)
    if (usesKargoLabel(sa)) ctx.out.warn(kargoLabelNotice(project, sa.metadata.name));
  const tokenCount = (sa: Stored<ServiceAccount>) =>
    tokens.filter(
      (t) => isProjectToken(t) && t.metadata.annotations?.[SA_NAME_ANNOTATION] === sa.metadata.name,
    ).length;
  return printPicked(ctx.out, picked, names, {
    noun: SERVICE_ACCOUNT,
    project,
    name: (s) => s.metadata.name,
    object: (s) => s,
    columns: [
      { header: 'NAME', value: (s) => s.metadata.name },
      { header: 'MANAGED', value: (s) => String(isManaged(s)) },
      { header: 'TOKENS', wide: true, value: (s) => String(tokenCount(s)) },
      {
        header: 'ROLES',
        wide: true,
        value: (s) =>
          rolesGranting(project, s.metadata.name, bindings)
            .map((b) => b.metadata?.name)
            .sort()
            .join(',') || '<none>',
      },
      { header: 'AGE', value: (s) => ctx.out.age(s.metadata.creationTimestamp) },
    ],
  });
}

async function deleteServiceAccounts(ctx: Context, names: string[]) {
  return eachInProject(ctx, 'delete', 'serviceaccount', names, async (project, name) => {
    await deleteOne(ctx, project, name);
  });
}

/** Permissions first, then credentials, then the account: an interrupted run leaves an account that can do nothing. */
async function deleteOne(ctx: Context, project: string, name: string) {
  const does = `delete serviceaccount "${name}"`;
  const sa = await ctx.call({ does, object: { noun: 'serviceaccount', name } }, (k) =>
    k.get<Stored<ServiceAccount>>(paths.serviceAccount(project, name)),
  );
  checkProjectServiceAccount(sa, project, name, ctx.out.warn);
  if (!isManaged(sa)) {
    const what = `serviceaccount "${name}"`;
    throw new CliError(notManagedRefusal(what, project, noManagedAnnotation(what)), EXIT.refused);
  }
  const subject = serviceAccountSubject(project, name);
  const bindings = await ctx.call({ does }, (k) => listAll<RoleBinding>(k, paths.roleBinding(project)));
  for (const b of rolesGranting(project, name, bindings).sort(byName)) {
    const rb = b.metadata?.name as string;
    if (!isManaged(b)) {
      ctx.out.warn(
        `rolebinding "${rb}" in project "${project}" still lists serviceaccount "${name}"; it is not managed by Lanyard, remove the subject where the binding is declared`,
      );
      continue;
    }
    await ctx.call({ does, object: { noun: 'rolebinding', name: rb } }, (k) => {
      let current: RoleBinding = b;
      return withConflictRetry(async (attempt) => {
        if (attempt > 1) current = await k.get<Stored<RoleBinding>>(paths.roleBinding(project, rb));
        const subjects = (current.subjects ?? []).filter(
          (s) =>
            !(sameSubject(s, subject) || (s.kind === 'ServiceAccount' && s.name === name && !s.namespace)),
        );
        await k.update(paths.roleBinding(project, rb), { ...current, subjects });
      });
    });
    ctx.out.line(`${ROLE.name}/${rb} updated`);
  }
  const secrets = await ctx.call({ does }, (k) =>
    listAll<Secret>(k, paths.secret(project), { labelSelector: `${TOKEN_LABEL}=true` }),
  );
  for (const t of secrets
    .filter((s) => isProjectToken(s) && s.metadata.annotations?.[SA_NAME_ANNOTATION] === name)
    .sort(byName)) {
    const tn = t.metadata.name as string;
    if (!isManaged(t)) {
      ctx.out.warn(
        `serviceaccounttoken "${tn}" is not managed by Lanyard; Kubernetes removes it with the account`,
      );
      continue;
    }
    await ctx.call({ does, object: { noun: 'serviceaccounttoken', name: tn } }, (k) =>
      k.delete(paths.secret(project, tn)).catch(orUndefinedIfNotFound),
    );
    ctx.out.line(`${TOKEN.name}/${tn} deleted`);
  }
  await ctx.call({ does, object: { noun: 'serviceaccount', name } }, (k) =>
    k.delete(paths.serviceAccount(project, name), {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      preconditions: { uid: sa.metadata.uid },
    }),
  );
  ctx.out.mutation(SERVICE_ACCOUNT, name, 'deleted');
}
