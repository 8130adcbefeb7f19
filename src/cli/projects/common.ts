// Helpers shared by the project, role, service-account and token commands.
import type { KubeObject } from '../../core/kube-object.ts';
import { resourcePath } from '../../kube/client.ts';
import type { Context, Noun } from '../framework.ts';
import type { OutputFormat } from '../output.ts';
import { CliError, EXIT } from '../exit.ts';
import { nameError, type NameKind } from '../../projects/names.ts';
import {
  isProjectServiceAccount,
  kargoLabelNotice,
  SERVICE_ACCOUNT_LABEL,
  usesKargoLabel,
} from '../../projects/labels.ts';

export const PROJECT: Noun = { name: 'project', aliases: ['projects'], plural: 'projects' };
export const ROLE: Noun = { name: 'role', aliases: ['roles'], plural: 'roles' };
export const SERVICE_ACCOUNT: Noun = {
  name: 'serviceaccount',
  aliases: ['serviceaccounts', 'sa', 'sas'],
  plural: 'service accounts',
};
export const TOKEN: Noun = {
  name: 'serviceaccounttoken',
  aliases: ['serviceaccounttokens', 'sat', 'sats'],
  plural: 'service account tokens',
};

const RBAC = { group: 'rbac.authorization.k8s.io', version: 'v1' };
export const paths = {
  namespace: (name?: string) => resourcePath({ version: 'v1', plural: 'namespaces', name }),
  serviceAccount: (ns: string, name?: string) =>
    resourcePath({ version: 'v1', plural: 'serviceaccounts', namespace: ns, name }),
  secret: (ns: string, name?: string) =>
    resourcePath({ version: 'v1', plural: 'secrets', namespace: ns, name }),
  role: (ns: string, name?: string) => resourcePath({ ...RBAC, plural: 'roles', namespace: ns, name }),
  roleBinding: (ns: string, name?: string) =>
    resourcePath({ ...RBAC, plural: 'rolebindings', namespace: ns, name }),
};

/** Throws a usage error (exit 2) for the first invalid name. */
export function checkNames(kind: NameKind, names: string[]): void {
  for (const n of names) {
    const err = nameError(kind, n);
    if (err) throw new CliError(err, EXIT.usage);
  }
}

/**
 * Refuses (exit 5) a ServiceAccount that lacks the project service-account label (docs/cli.md#conventions); Kargo's label is
 * accepted with a warning suggesting Lanyard's (docs/projects-and-tokens.md, "Kargo's label").
 */
export function checkProjectServiceAccount(
  sa: KubeObject,
  project: string,
  name: string,
  warn?: (s: string) => void,
): void {
  if (!isProjectServiceAccount(sa)) {
    throw new CliError(
      `serviceaccount "${name}" in project "${project}" is not a Lanyard service account (label ${SERVICE_ACCOUNT_LABEL} is not "true")`,
      EXIT.refused,
    );
  }
  if (warn && usesKargoLabel(sa)) warn(kargoLabelNotice(project, name));
}

/** Mutations print one line or the object: the list formats -o name and -o wide are usage errors. */
export function checkMutationOutput(output: OutputFormat, command: string): void {
  if (output === 'name' || output === 'wide') {
    throw new CliError(`-o ${output} is not supported by ${command}; use yaml or json`, EXIT.usage);
  }
}

/**
 * `delete NAME...` and `abort promotion NAME...`: runs `one` for each name in order; a failure prints its error and the
 * next name still runs (docs/cli.md#conventions, several names). The first failure's exit code, else 0.
 */
export async function eachName(
  ctx: Context,
  names: string[],
  does: (name: string) => string,
  one: (name: string) => Promise<void>,
): Promise<number> {
  let code = 0;
  for (const name of names) {
    try {
      await one(name);
    } catch (e) {
      code ||= ctx.out.error(e instanceof CliError ? e : ctx.toError(e, { does: does(name) }));
    }
  }
  return code;
}

/** `<verb> <kind> NAME...` in the current project: the names checked, then eachName over them. */
export async function eachInProject(
  ctx: Context,
  verb: string,
  kind: NameKind,
  names: string[],
  one: (project: string, name: string) => Promise<void>,
): Promise<number> {
  checkNames(kind, names);
  const project = await ctx.project();
  return eachName(
    ctx,
    names,
    (name) => `${verb} ${kind} "${name}"`,
    (name) => one(project, name),
  );
}

/** Repeatable flags, one value each. */
export function repeatable(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Repeatable flags that also accept comma-separated lists. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim())];
}

export { byName, listAll, pickNamed, printPicked } from '../list.ts';

/** Re-reads and re-applies an update on 409 conflicts, up to 5 attempts (docs/projects-and-tokens.md#3-create-a-role-and-grant-it); `attempt` counts from 1. */
export async function withConflictRetry<T>(fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      const status = (e as { status?: number }).status;
      const reason = (e as { reason?: string }).reason;
      if (status !== 409 || reason === 'AlreadyExists' || attempt >= 5) throw e;
    }
  }
}

export { orUndefinedIfNotFound } from '../../kube/client.ts';
