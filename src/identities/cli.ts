// `lanyard get identities [-A | -n NAMESPACE]` (docs/identities.md): every pending or running Pod that uses or is
// declared an AWS identity, with its identity, source and state, on the shared CLI framework (src/cli/README.md).
import type { Command } from 'commander';
import type { Cli, Noun } from '../cli/framework.ts';
import { CliError, EXIT } from '../cli/exit.ts';
import { listAll } from '../cli/list.ts';
import type { Column } from '../cli/output.ts';
import { identitySnapshot, type IdentityRow } from './snapshot.ts';
import { IDENTITY_STATES, type IdentityState } from './decide.ts';

export const IDENTITY: Noun = {
  name: 'identity',
  aliases: ['identities', 'podidentity', 'podidentities'],
  plural: 'identities',
};
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SOURCE_TEXT: Record<IdentityRow['source'], string> = {
  association: 'association',
  identities_file: 'identities-file',
  service_account: 'serviceaccount',
  configmap: 'configmap',
  configmap_wildcard: 'configmap-wildcard',
  pod: 'pod',
  none: '<none>',
};

/** The object `-o json|yaml` prints for a row. */
export function rowObject(r: IdentityRow) {
  return {
    kind: 'PodIdentity',
    namespace: r.namespace,
    pod: r.pod,
    serviceAccount: r.serviceAccount,
    workload: r.workload ?? null,
    state: r.state,
    source: r.source,
    mode: r.mode ?? null,
    role: r.role || null,
    declaredRole: r.declaredRole ?? null,
    reason: r.reason ?? null,
    message: r.message,
    creationTimestamp: r.creationTimestamp,
  };
}

export function registerIdentitiesCli(cli: Cli): void {
  cli.noun('get', IDENTITY, {
    description:
      'List pending and running Pods with the AWS identity they use, its source and its state (ok, missing, stale, denied, unverified, verifying)',
    args: '[pods...]',
    options: (cmd: Command) => {
      cmd.option('-n, --namespace <name>', 'namespace (else --project, else "default")');
      cmd.option('-A, --all-namespaces', 'every namespace');
      cmd.option('--state <state>', `only Pods in this state (${IDENTITY_STATES.join(', ')})`);
      cmd.option(
        '--webhook-namespace <name>',
        "namespace of the kOps ConfigMap pod-identity-webhook (the webhook's --namespace)",
        'lanyard-system',
      );
    },
    async run(ctx, names, opts) {
      const { all, namespace, state } = getArgs(opts, ctx.flags.project, names);
      const snap = await ctx.call({ does: 'list Pods and their identity sources' }, (kube) =>
        identitySnapshot(
          {
            list: (path, query) => listAll(kube, path, query),
            get: (path) => kube.get(path),
          },
          {
            namespace,
            configMapNamespace: String(opts.webhookNamespace ?? ''),
            nowMs: ctx.io.clock.now(),
          },
        ),
      );
      for (const u of snap.unreadable.filter((x) => x !== 'configmaps'))
        ctx.out.warn(`cannot read ${u}: states may be incomplete`);
      let rows = snap.rows.filter((r) => !state || r.state === state);
      if (names.length > 0) rows = names.flatMap((n) => rows.filter((r) => r.pod === n));
      ctx.out.list({
        noun: IDENTITY,
        items: rows,
        single: names.length === 1,
        name: (r) => `${r.namespace}/${r.pod}`,
        object: (r) => rowObject(r),
        columns: columns(all, (t) => ctx.out.age(t)),
      });
      let code = 0;
      for (const n of names)
        if (!rows.some((r) => r.pod === n))
          code ||= ctx.out.error(
            new CliError(
              `no identity for Pod "${n}" in namespace "${namespace}" (no AWS identity used or declared, or no such pending or running Pod)`,
              EXIT.notFound,
            ),
          );
      return code;
    },
  });
}

/** `-n`/`-A`, `--state` and Pod names, checked before any request. */
function getArgs(
  opts: Record<string, unknown>,
  project: string | undefined,
  names: string[],
): { all: boolean; namespace: string | undefined; state: string | undefined } {
  const all = opts.allNamespaces === true;
  const namespace = all ? undefined : String(opts.namespace ?? project ?? 'default');
  if (all && opts.namespace !== undefined) throw new CliError('use either -A or -n, not both', EXIT.usage);
  if (namespace !== undefined && !DNS_LABEL.test(namespace))
    throw new CliError(`invalid namespace "${namespace}"`, EXIT.usage);
  const state = opts.state === undefined ? undefined : String(opts.state);
  if (state !== undefined && !IDENTITY_STATES.includes(state as IdentityState)) {
    throw new CliError(`invalid --state "${state}": use one of ${IDENTITY_STATES.join(', ')}`, EXIT.usage);
  }
  if (all && names.length > 0) throw new CliError('Pod names need one namespace: use -n, not -A', EXIT.usage);
  return { all, namespace, state };
}

/** The table's columns; `-o wide` adds the workload, the declared role and the message. */
function columns(all: boolean, age: (timestamp: string) => string): Column<IdentityRow>[] {
  return [
    ...(all ? [{ header: 'NAMESPACE', value: (r: IdentityRow) => r.namespace }] : []),
    { header: 'POD', value: (r) => r.pod },
    { header: 'SERVICEACCOUNT', value: (r) => r.serviceAccount },
    { header: 'MODE', value: (r) => r.mode ?? '<none>' },
    {
      header: 'ROLE',
      value: (r) => r.role || (r.mode === 'ContainerCredentials' ? '<association>' : '<none>'),
    },
    { header: 'SOURCE', value: (r) => SOURCE_TEXT[r.source] },
    { header: 'STATE', value: (r) => r.state },
    { header: 'AGE', value: (r) => age(r.creationTimestamp) },
    { header: 'WORKLOAD', wide: true, value: (r) => r.workload ?? '<none>' },
    { header: 'DECLARED', wide: true, value: (r) => r.declaredRole ?? '' },
    { header: 'MESSAGE', wide: true, value: (r) => r.message },
  ];
}
