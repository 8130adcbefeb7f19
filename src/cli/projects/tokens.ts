// `create|get|delete serviceaccounttoken` (docs/projects-and-tokens.md#4-mint-a-token). The token is printed once, at creation.
import type { Stored } from '../../core/kube-object.ts';
import type { Secret, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { KubeClient } from '../../kube/client.ts';
import { KubeApiError, orUndefinedIfNotFound } from '../../kube/client.ts';
import { parseDuration } from '../../core/duration.ts';
import type { Cli, Context } from '../framework.ts';
import { CliError, EXIT } from '../exit.ts';
import { isNetworkError } from '../errors.ts';
import { tokenSecret } from '../../projects/objects.ts';
import {
  isManaged,
  isProjectToken,
  LAST_USED_LABEL,
  noManagedAnnotation,
  notManagedRefusal,
  SA_NAME_ANNOTATION,
  TOKEN_LABEL,
} from '../../projects/labels.ts';
import { redactTokenSecret } from '../../projects/redact.ts';
import {
  TOKEN,
  checkNames,
  checkProjectServiceAccount,
  paths,
  listAll,
  eachInProject,
  pickNamed,
  printPicked,
  byName,
} from './common.ts';
import { startSpinner } from '../spinner.ts';

const MAX_TIMEOUT_MS = 60_000;

export function registerTokenCommands(cli: Cli): void {
  cli.noun('create', TOKEN, {
    description: 'Create a long-lived token for a project service account and print it once',
    args: '<name>',
    options: (cmd) =>
      cmd
        .requiredOption('--service-account <name>', 'the project service account the token authenticates as')
        .option('--timeout <duration>', 'how long to wait for the token controller (max 60s)', '10s'),
    run: (ctx, [name], opts) =>
      createToken(ctx, name!, opts.serviceAccount as string, opts.timeout as string),
  });
  cli.noun('get', TOKEN, {
    description: 'List service account tokens (token values are never shown)',
    args: '[names...]',
    options: (cmd) => cmd.option('--service-account <name>', 'only tokens of this service account'),
    run: (ctx, names, opts) => getTokens(ctx, names, opts.serviceAccount as string | undefined),
  });
  cli.noun('delete', TOKEN, {
    description: 'Delete service account tokens; the kube-apiserver refuses them at once',
    args: '<names...>',
    run: (ctx, names) => deleteTokens(ctx, names),
  });
}

async function createToken(ctx: Context, name: string, account: string, timeoutText: string) {
  checkNames('serviceaccounttoken', [name]);
  checkNames('serviceaccount', [account]);
  const timeoutMs = parseDuration(timeoutText);
  if (timeoutMs === undefined || timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new CliError(
      `invalid --timeout "${timeoutText}": use a duration from 1s to 60s, such as 10s`,
      EXIT.usage,
    );
  }
  if (ctx.flags.output === 'name') {
    throw new CliError(
      '-o name would discard the token; use the default output, -o yaml or -o json',
      EXIT.usage,
    );
  }
  if (ctx.flags.output === 'wide') {
    throw new CliError(
      '-o wide is not supported by create serviceaccounttoken; use the default output, -o yaml or -o json',
      EXIT.usage,
    );
  }
  const project = await ctx.project();
  const does = `create serviceaccounttoken "${name}"`;
  const sa = await ctx.call({ does, object: { noun: 'serviceaccount', name: account } }, (k) =>
    k.get<Stored<ServiceAccount>>(paths.serviceAccount(project, account)),
  );
  checkProjectServiceAccount(sa, project, account, ctx.out.warn);
  const created = await ctx.call({ does, object: { noun: 'serviceaccounttoken', name } }, (k) =>
    k.create<Stored<Secret>>(
      paths.secret(project),
      tokenSecret({ project, name, account: { name: account, uid: sa.metadata.uid } }),
    ),
  );
  const kube = await ctx.kube();
  const spinner = ctx.io.stderrIsTTY
    ? startSpinner(ctx.io, `waiting for the token of serviceaccounttoken "${name}"`)
    : undefined;
  let filled: IssuedToken | undefined;
  try {
    filled = await waitForToken(ctx, kube, project, name, timeoutMs, does);
  } finally {
    spinner?.stop();
  }
  if (!filled) {
    const base = `serviceaccounttoken "${name}" for serviceaccount "${account}" in project "${project}" was not issued within ${timeoutText}; is the kube-controller-manager token controller running?`;
    try {
      await kube
        .delete(paths.secret(project, name), {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          preconditions: { uid: created.metadata.uid },
        })
        .catch(orUndefinedIfNotFound);
    } catch (e) {
      const cause = ctx.toError(e, { does: `remove the empty serviceaccounttoken "${name}"` }).message;
      throw new CliError(
        `${base} The empty Secret could not be removed (${cause}); delete it with: lanyard delete sat ${name} --project ${project}`,
        EXIT.timedOut,
      );
    }
    throw new CliError(`${base} The empty Secret was removed.`, EXIT.timedOut);
  }
  ctx.out.info(`${TOKEN.name}/${name} created for serviceaccount "${account}" in project "${project}"`);
  ctx.out.info(
    'This token is shown now and never again. Put it in your secret store before closing this terminal;',
  );
  ctx.out.info('if it is lost, delete it and create a new one.');
  if (ctx.flags.output !== 'table') {
    // -o yaml|json|jsonpath|custom-columns (name and wide were refused above). The one place a token is printed in full: the Secret as created, data.token included.
    ctx.out.mutation(TOKEN, name, 'created', filled);
  } else {
    ctx.out.line(Buffer.from(filled.data.token, 'base64').toString('utf8'));
  }
}

const TRANSIENT = new Set([429, 500, 502, 503, 504]);

/** A token Secret the token controller has filled in. */
type IssuedToken = Stored<Secret> & { data: { token: string } };

/** Polls after 50 ms, doubling up to 1 s, until data.token is set; undefined when the budget runs out. */
async function waitForToken(
  ctx: Context,
  kube: KubeClient,
  project: string,
  name: string,
  timeoutMs: number,
  does: string,
): Promise<IssuedToken | undefined> {
  const deadline = ctx.now() + timeoutMs;
  let pause = 50;
  for (;;) {
    const left = deadline - ctx.now();
    if (left <= 0) return undefined;
    await ctx.io.clock.sleep(Math.min(pause, left));
    pause = Math.min(pause * 2, 1000);
    try {
      const s = await kube.get<Stored<Secret>>(paths.secret(project, name));
      if (s.data?.token) return s as IssuedToken;
    } catch (e) {
      const transient =
        (e instanceof KubeApiError && TRANSIENT.has(e.status)) ||
        (!(e instanceof KubeApiError) && isNetworkError(e));
      if (!transient) throw ctx.toError(e, { does, object: { noun: 'serviceaccounttoken', name } });
    }
  }
}

async function getTokens(ctx: Context, names: string[], account: string | undefined) {
  checkNames('serviceaccounttoken', names);
  if (account) checkNames('serviceaccount', [account]);
  const [project, secrets] = await ctx.readInProject({ does: 'list service account tokens' }, (k, project) =>
    listAll<Secret>(k, paths.secret(project), { labelSelector: `${TOKEN_LABEL}=true` }),
  );
  const tokens = secrets
    .filter(isProjectToken)
    .filter((t) => !account || t.metadata.annotations?.[SA_NAME_ANNOTATION] === account)
    .sort(byName);
  const picked = pickNamed(tokens, names, (t) => t.metadata.name);
  return printPicked(ctx.out, picked, names, {
    noun: TOKEN,
    project,
    name: (t) => t.metadata.name,
    object: redactTokenSecret,
    columns: [
      { header: 'NAME', value: (t) => t.metadata.name },
      { header: 'SERVICE ACCOUNT', value: (t) => t.metadata.annotations?.[SA_NAME_ANNOTATION] ?? '<none>' },
      { header: 'MANAGED', value: (t) => String(isManaged(t)) },
      { header: 'LAST USED', wide: true, value: (t) => t.metadata.labels?.[LAST_USED_LABEL] ?? '<never>' },
      { header: 'AGE', value: (t) => ctx.out.age(t.metadata.creationTimestamp) },
    ],
  });
}

async function deleteTokens(ctx: Context, names: string[]) {
  return eachInProject(ctx, 'delete', 'serviceaccounttoken', names, async (project, name) => {
    const does = `delete serviceaccounttoken "${name}"`;
    const object = { noun: 'serviceaccounttoken', name };
    const s = await ctx.call({ does, object }, (k) => k.get<Stored<Secret>>(paths.secret(project, name)));
    if (!isProjectToken(s)) {
      throw new CliError(
        `secret "${name}" in project "${project}" is not a Lanyard service account token (label rbac.lanyard.dev/service-account-token is not "true")`,
        EXIT.refused,
      );
    }
    if (!isManaged(s)) {
      throw new CliError(
        notManagedRefusal(`serviceaccounttoken "${name}"`, project, noManagedAnnotation(`secret "${name}"`)),
        EXIT.refused,
      );
    }
    await ctx.call({ does, object }, (k) =>
      k.delete(paths.secret(project, name), {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { uid: s.metadata.uid },
      }),
    );
    ctx.out.mutation(TOKEN, name, 'deleted');
  });
}
