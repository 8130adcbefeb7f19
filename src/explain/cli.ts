// `lanyard explain pod|serviceaccount`, `lanyard iam trust-policy|check` and `lanyard create identity`
// (docs/explain-and-iam.md). Reading and writing happen here and in gather.ts; every decision is in chain.ts,
// trust.ts and check-pod.ts. AWS is reached with the caller's credentials (the SDK's default chain) through src/aws
// only.
import { Option, type Command } from 'commander';
import type { Namespace, Pod, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { KubeList, Stored } from '../core/kube-object.ts';
import type { VerifiedIdentity } from '../verification/types.ts';
import type { PodIdentityAssociation } from '../associations/types.ts';
import type { KubeClient } from '../kube/client.ts';
import type { PolicySet } from '../verification/policy.ts';
import { KubeApiError, isAlreadyExists, isNotFound } from '../kube/errors.ts';
import type { Cli, Context, Noun } from '../cli/framework.ts';
import { CliError, EXIT } from '../cli/exit.ts';
import { startSpinner } from '../cli/spinner.ts';
import { cliAwsSettings } from '../config/cli.ts';
import { parseDuration } from '../core/duration.ts';
import { WEBHOOK_DEFAULTS } from '../config/webhook.ts';
import type { AwsClients } from '../aws/index.ts';
import { isAwsError } from '../aws/errors.ts';
import { parseRoleArn } from '../aws/arn.ts';
import type { InjectionFlags } from '../identity/resolve.ts';
import { credentialOptions } from '../identity/pod-credentials.ts';
import { selectOwner } from '../associations/decide.ts';
import {
  GROUP,
  PLURAL,
  VERSION,
  type AssociationObject,
  type AssociationRecord,
} from '../associations/model.ts';
import { VI_API } from '../verification/verified-identity.ts';
import { renderObjects } from '../cli/output.ts';
import {
  explain,
  renderExplanation,
  withTrust,
  type Declared,
  type Explanation,
  type ExplainEvent,
  type ExplainInput,
} from './chain.ts';
import {
  associationsFor,
  awsText,
  checkTrust,
  clusterIssuer,
  configMapTable,
  getOrUndefined,
  policySet,
} from './gather.ts';
import {
  compareTrust,
  desiredTrustPolicy,
  type TrustComparison,
  hintForExchangeError,
  issuerKey,
  oidcProviderArn,
  serviceAccountSubject,
} from './trust.ts';
import { sleep } from '../runtime/clock.ts';
import { checkPod, checkPodVerifiedIdentity, checkState, optedOut } from './check-pod.ts';

const POD: Noun = { name: 'pod', aliases: ['pods', 'po'], plural: 'pods' };
const SERVICE_ACCOUNT: Noun = {
  name: 'serviceaccount',
  aliases: ['serviceaccounts', 'sa'],
  plural: 'service accounts',
};
const IDENTITY: Noun = { name: 'identity', aliases: ['identities'], plural: 'identities' };
const enc = encodeURIComponent;
const MODES = { irsa: 'WebIdentity', 'pod-identity': 'ContainerCredentials' } as const;
type ModeFlag = keyof typeof MODES;
const PHASES = ['role', 'bind', 'verify'] as const;
type Phase = (typeof PHASES)[number];

// ---- Shared flags and helpers --------------------------------------------------------------------------------------

function awsOptions(cmd: Command): Command {
  return cmd
    .option(
      '--aws-endpoint-url <url>',
      'one endpoint for IAM and STS (e.g. the simulator of `lanyard up`); else AWS_ENDPOINT_URL, else AWS',
    )
    .option('--aws-region <region>', 'AWS region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1)');
}

function identityOptions(cmd: Command): Command {
  return cmd
    .option(
      '--annotation-prefix <prefix>',
      "the webhook's --annotation-prefix",
      WEBHOOK_DEFAULTS.annotationPrefix,
    )
    .option(
      '--token-audience <aud>',
      "the webhook's --token-audience (web identity)",
      WEBHOOK_DEFAULTS.tokenAudience,
    )
    .option(
      '--system-namespace <ns>',
      'namespace of Lanyard and of the kOps ConfigMap pod-identity-webhook',
      'lanyard-system',
    )
    .option(
      '--cluster-name <name>',
      "the controller's --cluster-name (picks ACK associations of this cluster)",
    );
}

/** The AWS clients, loaded on first use: `lanyard create project` must not pay for the AWS SDK (docs/adr/0701-cli-start-path.md). */
async function openAws(ctx: Context, opts: Record<string, unknown>): Promise<AwsClients> {
  const s = cliAwsSettings(ctx.io.env, {
    region: opts.awsRegion as string | undefined,
    endpointUrl: opts.awsEndpointUrl as string | undefined,
  });
  const [{ createAwsClients }, { silentLogger }] = await Promise.all([
    import('../aws/clients.ts'),
    import('../runtime/log.ts'),
  ]);
  // The SDK's default chain finds the caller's credentials; nothing here reads or prints them.
  return createAwsClients({
    region: s.region,
    ...(s.endpointUrl ? { endpointUrl: s.endpointUrl } : {}),
    log: silentLogger(),
    maxAttempts: 2,
    requestTimeoutMs: 10_000,
  });
}

/** `--mode irsa|pod-identity`; the choices also feed shell completion. */
function modeOption(description: string): Option {
  return new Option('--mode <mode>', description).choices(Object.keys(MODES));
}

function injectionFlags(opts: Record<string, unknown>): InjectionFlags {
  const d = WEBHOOK_DEFAULTS;
  return {
    annotationPrefix: annotationPrefixOf(opts),
    tokenAudience: String(opts.tokenAudience ?? d.tokenAudience),
    tokenMountPath: d.tokenMountPath,
    tokenExpiration: d.tokenExpiration,
    awsDefaultRegion: d.awsDefaultRegion,
    stsRegionalEndpoint: d.stsRegionalEndpoint,
    containerCredentialsAudience: d.containerCredentialsAudience,
    containerCredentialsTokenMountPath: d.containerCredentialsTokenMountPath,
    containerCredentialsTokenVolumeName: d.containerCredentialsTokenVolumeName,
    containerCredentialsTokenPath: d.containerCredentialsTokenPath,
    containerCredentialsFullUri: d.containerCredentialsFullUri,
  };
}

/** The webhook's --annotation-prefix, as given (else its default). */
function annotationPrefixOf(opts: Record<string, unknown>): string {
  return String(opts.annotationPrefix ?? WEBHOOK_DEFAULTS.annotationPrefix);
}

/** Every association of the pair and the one that owns it (docs/associations.md: the oldest live one). */
async function pairOwner(
  kube: KubeClient,
  pair: Pair,
  opts: Record<string, unknown>,
): Promise<{ assocs: PairAssociations; owner: AssociationRecord | undefined }> {
  const cluster = opts.clusterName as string | undefined;
  const assocs = await associationsFor(kube, pair.namespace, pair.serviceAccount, cluster);
  return { assocs, owner: selectOwner(assocs.records) };
}

function namespaceOf(ctx: Context, opts: Record<string, unknown>): string {
  return (
    (opts.namespace as string | undefined) ?? ctx.flags.project ?? ctx.settings().defaultProject ?? 'default'
  );
}

/** `NS/SA` → its parts; a usage error otherwise (checked before any request). */
function pairArg(value: unknown, flag: string): { namespace: string; serviceAccount: string } {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/.exec(String(value ?? ''));
  if (!m)
    throw new CliError(
      `${flag} must be NAMESPACE/SERVICEACCOUNT, e.g. team-a/uploader (got "${String(value ?? '')}")`,
      EXIT.usage,
    );
  return { namespace: m[1]!, serviceAccount: m[3]! };
}

function modeArg(value: unknown): ModeFlag | undefined {
  if (value === undefined) return undefined;
  if (value === 'irsa' || value === 'pod-identity') return value;
  throw new CliError(`invalid --mode "${String(value)}": use irsa or pod-identity`, EXIT.usage);
}

function printJsonOrYaml(ctx: Context, obj: unknown): boolean {
  if (ctx.flags.output === 'json' || ctx.flags.output === 'yaml') {
    ctx.io.stdout(renderObjects([obj], ctx.flags.output, false));
    return true;
  }
  return false;
}

// ---- explain --------------------------------------------------------------------------------------------------------

type ExplainKind = 'Pod' | 'ServiceAccount';
type PairAssociations = Awaited<ReturnType<typeof associationsFor>>;

/** What `lanyard explain` reads with the caller's Kubernetes credentials before it decides anything. */
interface ExplainReads {
  pod?: Pod;
  sa?: ServiceAccount;
  saName: string;
  assocs: PairAssociations;
  cm: ExplainInput['configMap'];
  /** A string when IdentityPolicies are not readable. */
  policies: PolicySet | string;
  ns?: Namespace;
  events: ExplainEvent[];
}

async function runExplain(
  ctx: Context,
  kind: ExplainKind,
  name: string,
  opts: Record<string, unknown>,
): Promise<number> {
  const namespace = namespaceOf(ctx, opts);
  const reads = await ctx.call(
    { does: `explain ${kind === 'Pod' ? 'pod' : 'serviceaccount'} ${namespace}/${name}` },
    (kube) => readForExplain(kube, kind, namespace, name, opts),
  );
  const { policies } = reads;
  const input: ExplainInput = {
    kind,
    namespace,
    name,
    pod: reads.pod,
    serviceAccount: reads.sa,
    serviceAccountName: reads.saName,
    associations: reads.assocs.records,
    associationObjects: reads.assocs.objects,
    configMap: reads.cm,
    flags: injectionFlags(opts),
    policies: typeof policies === 'string' ? { present: false, policies: [] } : policies,
    namespaceLabels: reads.ns?.metadata?.labels,
    events: reads.events,
    credentials: credentialOptions(),
    nowMs: ctx.now(),
  };
  // Unreadable IdentityPolicies are reported as such, not as "no policy".
  const explainWith = (over: Partial<ExplainInput>): Explanation => {
    const out = explain({ ...input, ...over });
    if (typeof policies === 'string') out.policy = { decision: 'not applicable', message: policies };
    return out;
  };
  let e = explainWith({});
  const vi = await readVerifiedIdentity(ctx, namespace, e);
  if (vi) e = explainWith({ verifiedIdentity: vi });
  e = await explainTrust(ctx, opts, e, reads);
  if (!printJsonOrYaml(ctx, e)) ctx.io.stdout(renderExplanation(e, (t) => ctx.out.age(t)));
  return 0;
}

/** The Pod (when explaining one), its ServiceAccount, the identity sources, the policies and the relevant Events. */
async function readForExplain(
  kube: KubeClient,
  kind: ExplainKind,
  namespace: string,
  name: string,
  opts: Record<string, unknown>,
): Promise<ExplainReads> {
  const base = `/api/v1/namespaces/${enc(namespace)}`;
  const pod = kind === 'Pod' ? await getOrUndefined<Pod>(kube, `${base}/pods/${enc(name)}`) : undefined;
  if (kind === 'Pod' && !pod)
    throw new CliError(`pod "${name}" not found in namespace "${namespace}"`, EXIT.notFound);
  const saName =
    kind === 'Pod' ? String(pod!.spec?.serviceAccountName || pod!.spec?.serviceAccount || 'default') : name;
  const sa = await getOrUndefined<ServiceAccount>(kube, `${base}/serviceaccounts/${enc(saName)}`);
  if (kind === 'ServiceAccount' && !sa)
    throw new CliError(`serviceaccount "${name}" not found in namespace "${namespace}"`, EXIT.notFound);
  const assocs = await associationsFor(kube, namespace, saName, opts.clusterName as string | undefined);
  const cm = await configMapTable(kube, String(opts.systemNamespace));
  const policies = await policySet(kube);
  const ns = await getOrUndefined<Namespace>(kube, base);
  const eventsList = await getOrUndefined<KubeList<ExplainEvent>>(
    kube,
    `/apis/events.k8s.io/v1/namespaces/${enc(namespace)}/events`,
  );
  const assocNames = new Set(assocs.records.map((r) => r.objectName));
  // A Pod's own Events (this Pod, not an earlier one of the same name), or a ServiceAccount's associations' Events.
  const events = (eventsList?.items ?? []).filter((e) =>
    kind === 'Pod'
      ? e.regarding?.kind === 'Pod' &&
        e.regarding?.name === name &&
        (!e.regarding?.uid || e.regarding.uid === pod!.metadata?.uid)
      : e.regarding?.kind === 'PodIdentityAssociation' && assocNames.has(e.regarding?.name ?? ''),
  );
  return { pod, sa, saName, assocs, cm, policies, ns, events };
}

/** The VerifiedIdentity of the declared identity, by its deterministic name; undefined when none or unreadable. */
async function readVerifiedIdentity(
  ctx: Context,
  namespace: string,
  e: Explanation,
): Promise<VerifiedIdentity | undefined> {
  const wanted = e.gate.verifiedIdentity;
  if (!wanted) return undefined;
  return ctx
    .call({ does: 'read VerifiedIdentity objects' }, (kube) =>
      getOrUndefined<VerifiedIdentity>(
        kube,
        `${VI_API}/namespaces/${enc(namespace)}/verifiedidentities/${wanted.name}`,
      ),
    )
    .catch(() => undefined);
}

/** The trust comparison, when an identity is declared and IAM is readable with the caller's AWS credentials. */
async function explainTrust(
  ctx: Context,
  opts: Record<string, unknown>,
  e: Explanation,
  reads: ExplainReads,
): Promise<Explanation> {
  const declared = e.declared;
  if (!declared) return e;
  if (opts.aws === false) return withTrust(e, { checked: false, role: declared.roleARN, why: '--no-aws' });
  const aws = await openAws(ctx, opts);
  const spinner = ctx.io.stderrIsTTY
    ? startSpinner(ctx.io, "reading the role's trust policy from IAM")
    : undefined;
  try {
    const issuer =
      declared.mode === 'WebIdentity'
        ? await ctx
            .call({ does: "read the API server's OIDC discovery document" }, clusterIssuer)
            .catch(() => undefined)
        : undefined;
    const owner = selectOwner(reads.assocs.records);
    return withTrust(
      e,
      await checkTrust(aws, {
        namespace: e.subject.namespace,
        serviceAccount: reads.saName,
        declared,
        association: owner ? reads.assocs.objects.get(owner.uid) : undefined,
        issuer,
      }),
    );
  } finally {
    spinner?.stop();
    aws.destroy();
  }
}

// ---- iam trust-policy / check ---------------------------------------------------------------------------------------

/** The declared identity `iam` commands reason about: the mode given, else Pod Identity when an association exists. */
async function declaredFor(
  ctx: Context,
  kube: KubeClient,
  pair: { namespace: string; serviceAccount: string },
  mode: ModeFlag | undefined,
  opts: Record<string, unknown>,
  role?: string,
): Promise<{ declared: Declared; association?: AssociationObject }> {
  const { assocs, owner } = await pairOwner(kube, pair, opts);
  const resolved: ModeFlag = mode ?? (owner ? 'pod-identity' : 'irsa');
  if (resolved === 'pod-identity') {
    return {
      declared: {
        mode: 'ContainerCredentials',
        source: '--mode pod-identity',
        roleARN: role ?? owner?.roleARN,
        audience: WEBHOOK_DEFAULTS.containerCredentialsAudience,
      },
      association: owner ? assocs.objects.get(owner.uid) : undefined,
    };
  }
  const sa = await getOrUndefined<ServiceAccount>(
    kube,
    `/api/v1/namespaces/${enc(pair.namespace)}/serviceaccounts/${enc(pair.serviceAccount)}`,
  );
  const prefix = annotationPrefixOf(opts);
  const annotated = sa?.metadata?.annotations?.[`${prefix}/audience`];
  const audience =
    (opts.audience as string | undefined) ??
    (typeof annotated === 'string'
      ? annotated
      : String(opts.tokenAudience ?? WEBHOOK_DEFAULTS.tokenAudience));
  const saRole = sa?.metadata?.annotations?.[`${prefix}/role-arn`];
  return {
    declared: {
      mode: 'WebIdentity',
      source: '--mode irsa',
      roleARN: role ?? (typeof saRole === 'string' && saRole ? saRole : undefined),
      audience,
    },
  };
}

async function accountAndPartition(
  aws: AwsClients,
  role: string | undefined,
  opts: Record<string, unknown>,
): Promise<{ account: string; partition: string }> {
  const parsed = role ? parseRoleArn(role) : undefined;
  if (parsed) return { account: parsed.account, partition: parsed.partition };
  if (typeof opts.account === 'string') {
    if (!/^\d{12}$/.test(opts.account))
      throw new CliError(`invalid --account "${opts.account}": use the 12-digit AWS account id`, EXIT.usage);
    return { account: opts.account, partition: 'aws' };
  }
  try {
    const me = await aws.sts.getCallerIdentity();
    return { account: me.account, partition: /^arn:([^:]+):/.exec(me.arn)?.[1] ?? 'aws' };
  } catch (e) {
    throw new CliError(
      `cannot learn the AWS account (pass --account, or AWS credentials for sts:GetCallerIdentity): ${awsText(e)}`,
      EXIT.failure,
    );
  }
}

async function runTrustPolicy(ctx: Context, opts: Record<string, unknown>): Promise<number> {
  const pair = pairArg(opts.serviceAccount, '--service-account');
  const mode = modeArg(opts.mode) ?? 'irsa';
  if (mode === 'pod-identity') {
    ctx.io.stdout(
      `${JSON.stringify(desiredTrustPolicy({ mode: 'ContainerCredentials', sessionTags: opts.sessionTags !== false }), null, 2)}\n`,
    );
    return 0;
  }
  const issuer = await ctx.call(
    { does: "read the API server's OIDC discovery document (/.well-known/openid-configuration)" },
    clusterIssuer,
  );
  const { declared } = await ctx.call(
    { does: `read ServiceAccount ${pair.namespace}/${pair.serviceAccount}` },
    (kube) => declaredFor(ctx, kube, pair, 'irsa', opts),
  );
  const aws = await openAws(ctx, opts);
  try {
    const { account, partition } = await accountAndPartition(aws, opts.role as string | undefined, opts);
    const doc = desiredTrustPolicy({
      mode: 'WebIdentity',
      partition,
      account,
      issuer,
      ...pair,
      audience: declared.audience,
    });
    ctx.io.stdout(`${JSON.stringify(doc, null, 2)}\n`);
    return 0;
  } finally {
    aws.destroy();
  }
}

async function runIamCheck(ctx: Context, role: string, opts: Record<string, unknown>): Promise<number> {
  const pair = pairArg(opts.serviceAccount, '--service-account');
  const mode = modeArg(opts.mode);
  const { declared, association } = await ctx.call(
    { does: `read the identity sources of ${pair.namespace}/${pair.serviceAccount}` },
    (kube) => declaredFor(ctx, kube, pair, mode, opts, role),
  );
  const issuer =
    declared.mode === 'WebIdentity'
      ? await ctx.call(
          { does: "read the API server's OIDC discovery document (/.well-known/openid-configuration)" },
          clusterIssuer,
        )
      : undefined;
  if (!parseRoleArn(role)) {
    throw new CliError(`ROLE must be a role ARN (arn:aws:iam::ACCOUNT:role/NAME), got "${role}"`, EXIT.usage);
  }
  const aws = await openAws(ctx, opts);
  try {
    const t = await checkTrust(aws, { ...pair, declared, association, issuer });
    const result = {
      role,
      serviceAccount: `${pair.namespace}/${pair.serviceAccount}`,
      mode: declared.mode,
      ...t,
    };
    if (printJsonOrYaml(ctx, result)) return t.checked && t.comparison.allowed ? 0 : EXIT.failure;
    if (!t.checked) {
      ctx.out.line(`unknown: ${t.why}`);
      return EXIT.failure;
    }
    const who = `Pods of ${pair.namespace}/${pair.serviceAccount}`;
    if (t.comparison.allowed) {
      ctx.out.line(`yes: ${who} can assume ${t.role} (${declared.mode}: ${t.presented})`);
      for (const n of t.comparison.notes) ctx.out.line(`  note: ${n}`);
      return 0;
    }
    ctx.out.line(`no: ${who} cannot assume ${t.role} (${declared.mode}: ${t.presented})`);
    for (const m of t.comparison.mismatches) ctx.out.line(`  ${m.field}: ${m.text}`);
    ctx.out.line(
      `fix: \`lanyard iam trust-policy --service-account ${pair.namespace}/${pair.serviceAccount}${declared.mode === 'ContainerCredentials' ? ' --mode pod-identity' : ''}\` prints the trust policy it needs`,
    );
    return EXIT.failure;
  } finally {
    aws.destroy();
  }
}

// ---- create identity --------------------------------------------------------------------------------------------------

function phasesArg(value: unknown): Phase[] {
  if (value === undefined) return [...PHASES];
  const list = String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const p of list)
    if (!(PHASES as readonly string[]).includes(p))
      throw new CliError(`invalid --phase "${p}": use role, bind, verify or a comma list`, EXIT.usage);
  return PHASES.filter((p) => list.includes(p));
}

/** What `lanyard create identity` was asked to do, with its arguments checked. */
interface CreateIdentityArgs {
  pair: Pair;
  mode: ModeFlag;
  role: string;
  arn: NonNullable<ReturnType<typeof parseRoleArn>>;
  phases: Phase[];
  timeoutMs: number;
  /** `<namespace>/<serviceAccount>`, for messages. */
  who: string;
  say: (phase: Phase, text: string) => void;
}

type Pair = { namespace: string; serviceAccount: string };

async function runCreateIdentity(
  ctx: Context,
  pairText: string,
  opts: Record<string, unknown>,
): Promise<number> {
  const a = createIdentityArgs(ctx, pairText, opts);
  if (a.phases.includes('role')) await rolePhase(ctx, a, opts);
  if (a.phases.includes('bind'))
    await ctx.call({ does: `bind ${a.role} to ${a.who}` }, (kube) => bindPhase(kube, ctx, a, opts));
  if (a.phases.includes('verify')) return verifyPhase(ctx, a);
  return 0;
}

function createIdentityArgs(
  ctx: Context,
  pairText: string,
  opts: Record<string, unknown>,
): CreateIdentityArgs {
  const pair = pairArg(pairText, 'NAMESPACE/SERVICEACCOUNT');
  const mode = modeArg(opts.mode) ?? 'irsa';
  const role = String(opts.role ?? '');
  const arn = parseRoleArn(role);
  if (!arn)
    throw new CliError(
      `--role must be a role ARN (arn:aws:iam::ACCOUNT:role/[PATH/]NAME), got "${role}"`,
      EXIT.usage,
    );
  const phases = phasesArg(opts.phase);
  const timeoutMs = parseDuration(String(opts.timeout ?? '2m'));
  if (timeoutMs === undefined || timeoutMs <= 0)
    throw new CliError(`invalid --timeout "${String(opts.timeout)}": use a duration such as 2m`, EXIT.usage);
  const who = `${pair.namespace}/${pair.serviceAccount}`;
  const say = (phase: Phase, text: string) => ctx.out.line(`[${phase}] ${text}`);
  return { pair, mode, role, arn, phases, timeoutMs, who, say };
}

/** The trust policy the role needs for the pair, and what the pair presents to STS or the Pod Identity agent. */
function neededTrust(a: CreateIdentityArgs, issuer: string | undefined, audience: string) {
  const { arn, pair } = a;
  if (a.mode !== 'irsa')
    return {
      desired: desiredTrustPolicy({ mode: 'ContainerCredentials' }),
      presented: { mode: 'ContainerCredentials' as const, sessionTags: true },
    };
  return {
    desired: desiredTrustPolicy({
      mode: 'WebIdentity',
      partition: arn.partition,
      account: arn.account,
      issuer: issuer!,
      ...pair,
      audience,
    }),
    presented: {
      mode: 'WebIdentity' as const,
      providerArn: oidcProviderArn(arn.partition, arn.account, issuer!),
      issuerKey: issuerKey(issuer!),
      sub: serviceAccountSubject(pair.namespace, pair.serviceAccount),
      aud: audience,
    },
  };
}

/** The `role` phase: the IAM role exists (created with --create-role) and trusts the pair (added with --update-trust). */
async function rolePhase(ctx: Context, a: CreateIdentityArgs, opts: Record<string, unknown>): Promise<void> {
  const aws = await openAws(ctx, opts);
  try {
    const issuer =
      a.mode === 'irsa'
        ? await ctx.call({ does: "read the API server's OIDC discovery document" }, clusterIssuer)
        : undefined;
    const audience =
      (opts.audience as string | undefined) ?? String(opts.tokenAudience ?? WEBHOOK_DEFAULTS.tokenAudience);
    const { desired, presented } = neededTrust(a, issuer, audience);
    const existing = await readRole(aws, a);
    if (!existing) await createRoleFor(aws, a, opts, desired);
    else {
      const cmp = compareTrust(existing.doc, presented);
      if (cmp.allowed)
        a.say('role', `role ${existing.arn} exists and its trust policy allows ${a.who} (unchanged)`);
      else if (opts.updateTrust === true) await addTrustStatement(aws, a, existing, desired, cmp);
      else {
        for (const m of cmp.mismatches) ctx.out.line(`  ${m.field}: ${m.text}`);
        throw new CliError(
          `[role] the trust policy of ${existing.arn} does not allow ${a.who}: pass --update-trust to add the statement it needs`,
          EXIT.failure,
        );
      }
    }
    if (presented.mode === 'WebIdentity') {
      const providers = await aws.iam.listOpenIDConnectProviders().catch(() => undefined);
      if (providers && !providers.includes(presented.providerArn)) {
        ctx.out.warn(
          `IAM has no OIDC provider for the cluster's issuer ${issuer}: create it (aws iam create-open-id-connect-provider --url ${issuer} --client-id-list ${audience}) or STS refuses every token`,
        );
      }
    }
  } finally {
    aws.destroy();
  }
}

async function readRole(
  aws: AwsClients,
  a: CreateIdentityArgs,
): Promise<{ arn: string; doc: string } | undefined> {
  try {
    const r = await aws.iam.getRole(a.arn.name);
    return { arn: r.arn, doc: r.assumeRolePolicyDocument };
  } catch (e) {
    if (!(isAwsError(e) && e.code === 'NoSuchEntity'))
      throw new CliError(`[role] cannot read role ${a.role}: ${awsText(e)}`, EXIT.failure);
    return undefined;
  }
}

async function createRoleFor(
  aws: AwsClients,
  a: CreateIdentityArgs,
  opts: Record<string, unknown>,
  desired: Record<string, unknown>,
): Promise<void> {
  if (opts.createRole !== true)
    throw new CliError(
      `[role] role ${a.role} does not exist: pass --create-role to create it with the trust policy ${a.who} needs`,
      EXIT.notFound,
    );
  try {
    await aws.iam.createRole({
      roleName: a.arn.name,
      ...(a.arn.path !== '/' ? { path: a.arn.path } : {}),
      assumeRolePolicyDocument: JSON.stringify(desired),
    });
  } catch (e) {
    throw new CliError(`[role] cannot create role ${a.role}: ${awsText(e)}`, EXIT.failure);
  }
  a.say('role', `role ${a.role} created with a trust policy for ${a.who} (${a.mode})`);
}

/** Adds the needed statement beside the existing ones (which are kept). */
async function addTrustStatement(
  aws: AwsClients,
  a: CreateIdentityArgs,
  existing: { arn: string; doc: string },
  desired: Record<string, unknown>,
  cmp: TrustComparison,
): Promise<void> {
  const doc = JSON.parse(existing.doc) as { Version?: unknown; Statement?: unknown };
  const statements = Array.isArray(doc.Statement) ? doc.Statement : doc.Statement ? [doc.Statement] : [];
  const updated = {
    ...doc,
    Version: doc.Version ?? '2012-10-17',
    Statement: [...statements, ...(desired.Statement as unknown[])],
  };
  try {
    await aws.iam.updateAssumeRolePolicy(a.arn.name, JSON.stringify(updated));
  } catch (e) {
    throw new CliError(`[role] cannot update the trust policy of ${a.role}: ${awsText(e)}`, EXIT.failure);
  }
  a.say(
    'role',
    `trust policy of ${existing.arn} updated: statement for ${a.who} added (was: ${cmp.mismatches.map((m) => m.field).join(', ')} wrong)`,
  );
}

/** The `bind` phase: the ServiceAccount exists, and its annotation (irsa) or its association (pod-identity) names the role. */
async function bindPhase(
  kube: KubeClient,
  ctx: Context,
  a: CreateIdentityArgs,
  opts: Record<string, unknown>,
): Promise<void> {
  const { pair, who } = a;
  const saPath = `/api/v1/namespaces/${enc(pair.namespace)}/serviceaccounts`;
  let sa = await getOrUndefined<ServiceAccount>(kube, `${saPath}/${enc(pair.serviceAccount)}`);
  if (!sa) {
    sa = await kube.create<ServiceAccount>(saPath, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: pair.serviceAccount },
    });
    a.say('bind', `serviceaccount ${who} created`);
  }
  const { owner } = await pairOwner(kube, pair, opts);
  if (a.mode === 'irsa') {
    const key = `${annotationPrefixOf(opts)}/role-arn`;
    await annotateServiceAccount(kube, a, sa, `${saPath}/${enc(pair.serviceAccount)}`, key);
    if (owner)
      ctx.out.warn(
        `${owner.kind === 'ack' ? 'ACK ' : ''}PodIdentityAssociation ${owner.objectNamespace}/${owner.objectName} gives ${who} Pod Identity, which wins over the annotation: delete it, or use --mode pod-identity`,
      );
  } else await bindAssociation(kube, a, owner);
}

async function annotateServiceAccount(
  kube: KubeClient,
  a: CreateIdentityArgs,
  sa: ServiceAccount,
  path: string,
  key: string,
): Promise<void> {
  const current = sa.metadata?.annotations?.[key];
  if (current === a.role) {
    a.say('bind', `serviceaccount ${a.who} already has ${key}: ${a.role} (unchanged)`);
    return;
  }
  await kube.patch(path, { metadata: { annotations: { [key]: a.role } } }, 'application/merge-patch+json');
  a.say('bind', `serviceaccount ${a.who} annotated ${key}: ${a.role}${current ? ` (was ${current})` : ''}`);
}

/** pod-identity: the pair's Lanyard association names the role (created when there is none); an ACK one is refused. */
async function bindAssociation(
  kube: KubeClient,
  a: CreateIdentityArgs,
  owner: AssociationRecord | undefined,
): Promise<void> {
  const { pair, role, who } = a;
  const assocPath = `/apis/${GROUP}/${VERSION}/namespaces/${enc(pair.namespace)}/${PLURAL}`;
  if (owner && owner.kind === 'lanyard') {
    const object = `podidentityassociation ${owner.objectNamespace}/${owner.objectName}`;
    if (owner.roleARN === role) a.say('bind', `${object} already binds ${role} (unchanged)`);
    else {
      await kube.patch(
        `${assocPath}/${enc(owner.objectName)}`,
        { spec: { roleARN: role } },
        'application/merge-patch+json',
      );
      a.say('bind', `${object} updated: roleARN ${role} (was ${owner.roleARN ?? 'unset'})`);
    }
  } else if (owner) {
    throw new CliError(
      `[bind] ACK PodIdentityAssociation ${owner.objectNamespace}/${owner.objectName} owns ${who}: change it in ACK, or migrate it (docs/migrate-from-ack.md)`,
      EXIT.refused,
    );
  } else {
    const association: PodIdentityAssociation = {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'PodIdentityAssociation',
      metadata: { name: pair.serviceAccount },
      spec: { serviceAccount: pair.serviceAccount, roleARN: role },
    };
    try {
      await kube.create<PodIdentityAssociation>(assocPath, association);
    } catch (e) {
      if (isAlreadyExists(e))
        throw new CliError(
          `[bind] a PodIdentityAssociation named "${pair.serviceAccount}" already exists in "${pair.namespace}" for another ServiceAccount`,
          EXIT.refused,
        );
      throw e;
    }
    a.say('bind', `podidentityassociation ${pair.namespace}/${pair.serviceAccount} created for ${role}`);
  }
}

/**
 * Has Lanyard prove the identity the way it proves every Pod's (docs/verified-start.md): a Pod that never runs (its
 * own gate stays) is created for the ServiceAccount; the webhook injects and gates it, the verifier exchanges a token
 * bound to it and releases the identity gate, or says why not. The Pod is deleted afterwards.
 */
async function verifyPhase(ctx: Context, a: CreateIdentityArgs): Promise<number> {
  const podsPath = `/api/v1/namespaces/${enc(a.pair.namespace)}/pods`;
  const name = await createCheckPod(ctx, a, podsPath);
  const spinner = ctx.io.stderrIsTTY
    ? startSpinner(ctx.io, `[verify] waiting for the verifier to prove ${a.role} for ${a.who}`)
    : undefined;
  if (!spinner)
    ctx.out.info(
      `[verify] waiting up to ${Math.round(a.timeoutMs / 1000)}s for the verifier to prove ${a.role} for ${a.who} (Pod ${name})`,
    );
  try {
    return await waitForProof(ctx, a, `${podsPath}/${enc(name)}`, name, spinner);
  } finally {
    spinner?.stop();
    try {
      await (await ctx.kube()).delete(`${podsPath}/${enc(name)}`);
    } catch (e) {
      if (!isNotFound(e) && !(e instanceof KubeApiError)) throw e;
    }
  }
}

/** Creates the check Pod; the webhook's refusal (IdentityPolicy, an invalid role annotation) is the answer, not an RBAC problem. */
async function createCheckPod(ctx: Context, a: CreateIdentityArgs, podsPath: string): Promise<string> {
  const pod = await ctx.call({ does: `create a check Pod for ${a.who}` }, (kube) =>
    kube.create<Stored<Pod>>(podsPath, checkPod(a.pair.serviceAccount)).catch((e: unknown) => {
      if (e instanceof KubeApiError && e.status === 403 && /admission webhook/.test(e.serverMessage)) {
        throw new CliError(
          `[verify] the webhook refused a Pod of ${a.who}: ${e.serverMessage.replace(/^.*denied the request: /, '')}`,
          EXIT.refused,
        );
      }
      throw e;
    }),
  );
  return String(pod.metadata.name);
}

/** Polls the check Pod until the verifier decided, the webhook gave it no identity, or the timeout passed. */
async function waitForProof(
  ctx: Context,
  a: CreateIdentityArgs,
  podPath: string,
  name: string,
  spinner: { stop(): void } | undefined,
): Promise<number> {
  const { pair, role, who } = a;
  const started = ctx.now();
  let lastEvent = '';
  for (;;) {
    const kube = await ctx.kube();
    const p = await getOrUndefined<Pod>(kube, podPath);
    if (!p) throw new CliError(`[verify] the check Pod ${pair.namespace}/${name} was deleted`, EXIT.failure);
    lastEvent = (await lastWarning(kube, pair.namespace, name)) ?? lastEvent;
    const state = checkState(p);
    if (state !== 'waiting') spinner?.stop();
    if (state === 'verified') {
      a.say('verify', `verified: the verifier exchanged a token bound to Pod ${name} of ${who} for ${role}`);
      return 0;
    }
    if (state === 'not injected')
      throw new CliError(
        `[verify] the webhook gave the check Pod no AWS identity: is Lanyard's webhook serving namespace "${pair.namespace}", and does a source declare ${role} for ${who}? (\`lanyard explain serviceaccount ${pair.serviceAccount} -n ${pair.namespace}\`)`,
        EXIT.failure,
      );
    if (state === 'admitted ungated') return verifiedEarlier(kube, a, p);
    if (ctx.now() - started > a.timeoutMs) {
      spinner?.stop();
      throw notVerifiedInTime(ctx, a, lastEvent);
    }
    await sleep(500);
  }
}

/** The note of the last Warning Event about the check Pod; undefined when there is none yet. */
async function lastWarning(kube: KubeClient, namespace: string, name: string): Promise<string | undefined> {
  const list = await getOrUndefined<KubeList<ExplainEvent>>(
    kube,
    `/apis/events.k8s.io/v1/namespaces/${enc(namespace)}/events`,
  );
  const events = (list?.items ?? []).filter((e) => e.regarding?.name === name && e.type === 'Warning');
  return events.length ? String(events[events.length - 1]!.note ?? '') : undefined;
}

/** The check Pod was admitted without the gate: its identity is in the verified set, named by its VerifiedIdentity. */
async function verifiedEarlier(kube: KubeClient, a: CreateIdentityArgs, p: Pod): Promise<number> {
  const name = checkPodVerifiedIdentity(p, {
    mode: MODES[a.mode],
    serviceAccount: a.pair.serviceAccount,
    roleARN: a.role,
    containerCredentialsAudience: WEBHOOK_DEFAULTS.containerCredentialsAudience,
  });
  const vi = await getOrUndefined<VerifiedIdentity>(
    kube,
    `${VI_API}/namespaces/${enc(a.pair.namespace)}/verifiedidentities/${name}`,
  );
  if (optedOut(p)) throw new CliError('[verify] the check Pod was not gated (opt-out)', EXIT.failure);
  a.say(
    'verify',
    `verified earlier: admitted without the gate${vi ? ` (VerifiedIdentity ${vi.metadata?.name}, ${vi.spec?.assumedRoleARN})` : ''}`,
  );
  return 0;
}

/** Prints the verifier's last attempt and its meaning; the error to throw names the commands that say more. */
function notVerifiedInTime(ctx: Context, a: CreateIdentityArgs, lastEvent: string): CliError {
  const hint = lastEvent ? hintForExchangeError(lastEvent) : undefined;
  if (lastEvent) ctx.out.line(`[verify] last verifier attempt: ${lastEvent}`);
  if (hint) ctx.out.line(`[verify] meaning: ${hint}`);
  return new CliError(
    `[verify] not verified within ${Math.round(a.timeoutMs / 1000)}s: run \`lanyard iam check ${a.role} --service-account ${a.who}\` and \`lanyard explain serviceaccount ${a.pair.serviceAccount} -n ${a.pair.namespace}\``,
    EXIT.timedOut,
  );
}

// ---- Registration -----------------------------------------------------------------------------------------------------

export function registerExplainCli(cli: Cli): void {
  registerExplain(cli);
  const iam = cli.verb('iam', 'Set up and check IAM roles for ServiceAccounts, with your AWS credentials');
  cli.command(
    'trust-policy',
    {
      description:
        "Print the trust policy a ServiceAccount needs (IRSA: the cluster's OIDC provider, sub and aud; Pod Identity: pods.eks.amazonaws.com)",
      options: (cmd) => awsOptions(identityOptions(trustPolicyOptions(cmd))),
      run: (ctx, _args, opts) => runTrustPolicy(ctx, opts),
    },
    iam,
  );
  cli.command(
    'check',
    {
      description:
        'Say whether the Pods of a ServiceAccount could assume ROLE, and which trust policy field is wrong if not',
      args: '<role>',
      options: (cmd) => awsOptions(identityOptions(iamCheckOptions(cmd))),
      run: (ctx, [role], opts) => runIamCheck(ctx, role!, opts),
    },
    iam,
  );
  cli.noun('create', IDENTITY, {
    description:
      'Give a ServiceAccount an AWS role in phases that can be re-run: role (trust policy) → bind (annotation or association) → verify',
    args: '<namespace/serviceaccount>',
    options: (cmd) => awsOptions(identityOptions(createIdentityOptions(cmd))),
    run: (ctx, [pair], opts) => runCreateIdentity(ctx, pair!, opts),
  });
}

/** `lanyard explain pod|serviceaccount`. */
function registerExplain(cli: Cli): void {
  const explainOptions = (cmd: Command) =>
    awsOptions(
      identityOptions(cmd.option('-n, --namespace <ns>', 'namespace (else --project, else "default")')),
    ).option('--no-aws', "do not read the role's trust policy from IAM");
  cli.verb('explain', 'Explain why a Pod or ServiceAccount has the AWS identity it has, and how to fix it');
  const nouns = [
    [
      POD,
      'Pod',
      "Explain a Pod's AWS identity: every source consulted and which won, the IdentityPolicy rule, the gate, the verifier's last attempt, the role's trust policy, and a fix",
    ],
    [
      SERVICE_ACCOUNT,
      'ServiceAccount',
      "Explain the AWS identity a ServiceAccount's Pods get: sources, IdentityPolicy rule, verified set, trust policy, fix",
    ],
  ] as const;
  for (const [noun, kind, description] of nouns)
    cli.noun('explain', noun, {
      description,
      args: '<name>',
      options: explainOptions,
      run: (ctx, [name], opts) => runExplain(ctx, kind, name!, opts),
    });
}

const SERVICE_ACCOUNT_FLAG = [
  '--service-account <ns/name>',
  'the ServiceAccount, as NAMESPACE/NAME',
] as const;
const IRSA_AUDIENCE_FLAG = [
  '--audience <aud>',
  "token audience (IRSA; else the ServiceAccount's audience annotation, else --token-audience)",
] as const;

/** `lanyard iam trust-policy`'s own flags. */
function trustPolicyOptions(cmd: Command): Command {
  return cmd
    .requiredOption(...SERVICE_ACCOUNT_FLAG)
    .addOption(modeOption('irsa (web identity) or pod-identity').default('irsa'))
    .option(...IRSA_AUDIENCE_FLAG)
    .option('--role <arn>', 'the role the policy is for (its account names the OIDC provider)')
    .option('--account <id>', "AWS account of the OIDC provider (else the role's, else the caller's)")
    .option('--no-session-tags', 'Pod Identity with disableSessionTags: no sts:TagSession');
}

/** `lanyard iam check`'s own flags. */
function iamCheckOptions(cmd: Command): Command {
  return cmd
    .requiredOption(...SERVICE_ACCOUNT_FLAG)
    .addOption(
      modeOption(
        'irsa or pod-identity (else pod-identity when a PodIdentityAssociation exists for it, else irsa)',
      ),
    )
    .option(...IRSA_AUDIENCE_FLAG);
}

/** `lanyard create identity`'s own flags. */
function createIdentityOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--role <arn>', 'the role ARN')
    .addOption(
      modeOption(
        'irsa (ServiceAccount annotation, web identity) or pod-identity (PodIdentityAssociation)',
      ).default('irsa'),
    )
    .option('--create-role', 'create the role with the trust policy it needs when it does not exist')
    .option('--update-trust', "add the statement the ServiceAccount needs to an existing role's trust policy")
    .option('--audience <aud>', 'token audience for IRSA (else --token-audience)')
    .option('--phase <list>', 'run only these phases: role, bind, verify (comma list)')
    .option('--timeout <duration>', 'how long the verify phase waits', '2m');
}
