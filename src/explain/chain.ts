// `lanyard explain`: why a Pod or ServiceAccount has the AWS identity it has (docs/explain-and-iam.md). Pure: the
// objects the command read (ServiceAccount, associations, kOps ConfigMap, IdentityPolicies, VerifiedIdentity,
// Pod and its Events) in; the resolution chain, the policy decision, the gate and the fixes out. The chain is the
// webhook's own precedence (docs/webhook.md, "Identity sources"), computed by the webhook's resolver.
import type { Pod, ServiceAccount } from 'kubernetes-types/core/v1.js';
import type { Event } from 'kubernetes-types/events/v1.js';
import type { Condition } from '../kube/conditions.ts';
import { parseServiceAccount, type SaSettings } from '../identity/annotations.ts';
import { resolveIdentity, type InjectionFlags } from '../identity/resolve.ts';
import type { ConfigMapTable } from '../identity/configmap.ts';
import { podCredentials, type CredentialOptions, type PodCredential } from '../identity/pod-credentials.ts';
import type { IdentityMode, IdentitySourceKind } from '../identity/sources.ts';
import { selectOwner, describeRecord } from '../associations/decide.ts';
import type { AssociationObject, AssociationRecord } from '../associations/model.ts';
import { decidePolicy, selectorMatches, type PolicySet, type PolicySubject } from '../verification/policy.ts';
import {
  GATE_NAME,
  OPT_OUT_ANNOTATION,
  VERIFICATION_ANNOTATION,
  verifiedIdentityName,
} from '../verification/verified-identity.ts';
import type { VerifiedIdentity } from '../verification/types.ts';
import { hintForExchangeError, type TrustComparison } from './trust.ts';

export interface SourceLine {
  /** The webhook's rank (docs/webhook.md): 1 association … 5 wildcard ConfigMap entry. */
  rank: number;
  source: string;
  /** What the source says: a role, `no role`, `not found`, `not readable`. */
  says: string;
  outcome: 'won' | 'shadowed' | 'empty' | 'unknown';
  why?: string;
}

export interface Declared {
  mode: IdentityMode;
  source: string;
  roleARN?: string;
  targetRoleARN?: string;
  audience: string;
}

export interface PolicyLine {
  decision: 'allowed' | 'denied' | 'no policies' | 'not applicable';
  /** `IdentityPolicy team-a spec.rules[0]` when allowed by a rule. */
  rule?: string;
  message: string;
}

export interface GateLine {
  /** Only for a Pod. */
  gated?: boolean;
  annotation?: string;
  optOut?: boolean;
  verifiedIdentity?: {
    name: string;
    found: boolean;
    verifiedAt?: string;
    expiresAt?: string;
    assumedRoleARN?: string;
    fresh?: boolean;
  };
  lastAttempt?: { reason: string; type: string; message: string; time?: string; hint?: string };
  /** The owning Lanyard association's conditions (docs/associations.md), when it is the source that won. */
  association?: {
    object: string;
    conditions: { type: string; status: string; reason: string; message: string }[];
  };
}

export interface Explanation {
  subject: { kind: 'Pod' | 'ServiceAccount'; namespace: string; name: string; serviceAccount: string };
  serviceAccountFound: boolean;
  sources: SourceLine[];
  declared?: Declared;
  /** What the Pod's containers can use, read from its spec as the SDKs read it (Pods only). */
  podIdentities?: {
    container: string;
    mode: IdentityMode;
    roleARN?: string;
    audience: string;
    field: string;
  }[];
  /** As `lanyard get identities` says it (docs/identities.md): `denied` is a missing identity no IdentityPolicy allows. */
  podState?: 'matches' | 'missing' | 'denied' | 'stale' | 'none';
  policy: PolicyLine;
  gate: GateLine;
  trust?: TrustLine;
  fixes: string[];
}

export type TrustLine =
  | { checked: true; role: string; comparison: TrustComparison; presented: string }
  | { checked: false; role?: string; why: string };

/** An events.k8s.io/v1 Event, or a core/v1 one (its text in `message`), as the API server lists them. */
export type ExplainEvent = Event & { message?: string };

export interface ExplainInput {
  kind: 'Pod' | 'ServiceAccount';
  namespace: string;
  /** Pod name or ServiceAccount name. */
  name: string;
  pod?: Pod;
  serviceAccount?: ServiceAccount;
  serviceAccountName: string;
  /** Every Lanyard and observed ACK association of the pair. */
  associations: AssociationRecord[];
  configMap: { where: string; found: boolean; table: ConfigMapTable; error?: string };
  flags: InjectionFlags;
  policies: PolicySet;
  namespaceLabels: Record<string, string> | undefined;
  /** The VerifiedIdentity named after the declared identity, when one exists. */
  verifiedIdentity?: VerifiedIdentity;
  /** The association objects by uid (for the owner's status conditions). */
  associationObjects?: ReadonlyMap<string, AssociationObject>;
  /** Events about the Pod (or, for a ServiceAccount, about its associations), any order. */
  events: ExplainEvent[];
  credentials: CredentialOptions;
  nowMs: number;
}

/** The policy decision, and the rule that allowed it (`decidePolicy` decides; this names the rule for the reader). */
export function explainPolicy(set: PolicySet, subject: PolicySubject): PolicyLine {
  const d = decidePolicy(set, subject);
  if (!d.allowed) return { decision: 'denied', message: d.message };
  if (d.reason === 'no_policies') {
    return {
      decision: 'no policies',
      message: 'no IdentityPolicy exists, so every identity is allowed (`lanyard doctor` warns about it)',
    };
  }
  const labels = { ...(subject.namespaceLabels ?? {}), 'kubernetes.io/metadata.name': subject.namespace };
  const role = subject.roleARN;
  for (const p of set.policies) {
    if (!p.accepted) continue;
    for (const [i, r] of p.rules.entries()) {
      if (!selectorMatches(r, labels) || !r.serviceAccounts.some((g) => g.matches(subject.serviceAccount)))
        continue;
      if (role && !r.roles.some((g) => g.matches(role))) continue;
      return {
        decision: 'allowed',
        rule: `IdentityPolicy ${p.name} spec.rules[${i}]`,
        message: `allowed by IdentityPolicy ${p.name} spec.rules[${i}]`,
      };
    }
  }
  return { decision: 'allowed', message: 'allowed' };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function lastAttempt(events: ExplainEvent[], hintFor = hintForExchangeError): GateLine['lastAttempt'] {
  const relevant = events
    .filter((e) =>
      [
        'IdentityNotVerified',
        'IdentityVerificationFailed',
        'IdentityVerified',
        'NoIdentity',
        'VerificationFailed',
        'Verified',
        'SyncFailed',
        'PolicyDenied',
      ].includes(e?.reason ?? ''),
    )
    .map((e) => ({
      e,
      t: String(
        e.series?.lastObservedTime ??
          e.eventTime ??
          e.deprecatedLastTimestamp ??
          e.metadata?.creationTimestamp ??
          '',
      ),
    }))
    .sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
  const last = relevant[relevant.length - 1];
  if (!last) return undefined;
  const message = String(last.e.note ?? last.e.message ?? '');
  const hint = last.e.type === 'Warning' ? hintFor(message) : undefined;
  return {
    reason: String(last.e.reason),
    type: String(last.e.type ?? ''),
    message,
    ...(last.t ? { time: last.t } : {}),
    ...(hint ? { hint } : {}),
  };
}

/** Builds the explanation (everything but the trust comparison, which needs AWS: see `withTrust`). */
export function explain(i: ExplainInput): Explanation {
  const saSettings = i.serviceAccount
    ? parseServiceAccount(i.serviceAccount, i.flags.annotationPrefix)
    : undefined;
  const owner = selectOwner(i.associations);
  const resolution = resolveIdentity(
    {
      namespace: i.namespace,
      serviceAccount: i.serviceAccountName,
      podAnnotations: i.pod?.metadata?.annotations,
      sa: saSettings ? { found: true, settings: saSettings } : { found: false },
      association: owner,
      inIdentitiesFile: false,
      configMap: i.configMap.table,
    },
    i.flags,
    () => 0.5,
  );
  const won = resolution?.identity.source;
  // The chain, in the webhook's order.
  const sources: SourceLine[] = [
    ...associationSources(i, owner),
    identitiesFileSource(),
    serviceAccountSource(i, saSettings, won),
    ...configMapSources(i, won),
  ];
  const declared: Declared | undefined = resolution
    ? {
        mode: resolution.identity.mode,
        source: sources.find((s) => s.outcome === 'won')?.source ?? resolution.identity.source,
        roleARN: resolution.identity.roleARN,
        ...(resolution.identity.targetRoleARN ? { targetRoleARN: resolution.identity.targetRoleARN } : {}),
        audience: resolution.identity.audience,
      }
    : undefined;
  const pod = i.pod ? podLine(i.pod, i.credentials, declared) : undefined;
  const policy = policyLine(i, declared);
  // A restart would not bring a denied identity (the webhook refuses such a Pod): the reconciler's `denied`.
  if (pod?.podState === 'missing' && policy.decision === 'denied') pod.podState = 'denied';
  const e: Explanation = {
    subject: { kind: i.kind, namespace: i.namespace, name: i.name, serviceAccount: i.serviceAccountName },
    serviceAccountFound: !!i.serviceAccount,
    sources,
    ...(declared ? { declared } : {}),
    ...(pod ? pod : {}),
    policy,
    gate: gateLine(i, declared, owner && won === 'association' ? owner : undefined),
    fixes: [],
  };
  e.fixes = fixesFor(e);
  return e;
}

/** Rank 1: every association of the pair; the oldest live one owns it, container credentials win. */
function associationSources(i: ExplainInput, owner: AssociationRecord | undefined): SourceLine[] {
  const sources: SourceLine[] = [];
  const live = i.associations.filter((a) => !a.deleting);
  if (live.length === 0) {
    sources.push({
      rank: 1,
      source: `PodIdentityAssociation for ${i.namespace}/${i.serviceAccountName}`,
      says: 'none',
      outcome: 'empty',
    });
  }
  for (const a of i.associations) {
    const isOwner = a === owner;
    sources.push({
      rank: 1,
      source: describeRecord(a),
      says: a.roleARN
        ? `role ${a.roleARN}${a.targetRoleARN ? ` → target ${a.targetRoleARN}` : ''}`
        : 'role unknown (ACK roleRef)',
      outcome: a.deleting ? 'empty' : isOwner ? 'won' : 'shadowed',
      why: a.deleting
        ? 'being deleted: no longer counts'
        : isOwner
          ? `container credentials (Pod Identity) win over every web-identity source${live.length > 1 ? '; the oldest association of the pair owns it' : ''}`
          : `an older association (${owner ? describeRecord(owner) : '?'}) owns the pair`,
    });
  }
  return sources;
}

/** Rank 2: the webhook's identities file, which the CLI cannot read. */
function identitiesFileSource(): SourceLine {
  return {
    rank: 2,
    source: 'identities file (--watch-container-credentials-config)',
    says: 'not readable from the CLI',
    outcome: 'unknown',
    why: "it lives in the webhook's filesystem; it gives container credentials with no role when it lists the pair",
  };
}

/** Rank 3: the ServiceAccount's role annotation. */
function serviceAccountSource(
  i: ExplainInput,
  saSettings: SaSettings | undefined,
  won: IdentitySourceKind | undefined,
): SourceLine {
  const ann = `${i.flags.annotationPrefix}/role-arn`;
  const saRole = saSettings?.roleARN;
  return {
    rank: 3,
    source: `ServiceAccount ${i.namespace}/${i.serviceAccountName} annotation ${ann}`,
    says: !i.serviceAccount
      ? 'ServiceAccount not found'
      : saRole
        ? `role ${saRole}${saSettings?.audience !== undefined ? ` (audience "${saSettings.audience}")` : ''}`
        : 'no role',
    outcome: won === 'service_account' ? 'won' : saRole ? 'shadowed' : 'empty',
    ...(won === 'service_account'
      ? { why: 'no association gives the pair container credentials' }
      : saRole && won === 'association'
        ? { why: 'an association gives container credentials, which win' }
        : {}),
    ...(saSettings?.roleArnProblem
      ? {
          why: `not an IAM role ARN (${saSettings.roleArnProblem}): the webhook refuses Pods of this ServiceAccount`,
        }
      : {}),
  };
}

/** Ranks 4 and 5: the kOps ConfigMap's exact entry, then its `*` entry. */
function configMapSources(i: ExplainInput, won: IdentitySourceKind | undefined): SourceLine[] {
  const saName = i.serviceAccountName;
  return (
    [
      [4, `${i.namespace}/${saName}`, 'configmap'],
      [5, `*/${saName}`, 'configmap_wildcard'],
    ] as const
  ).map(([rank, key, kind]): SourceLine => {
    const e = i.configMap.table.get(key);
    return {
      rank,
      source: `ConfigMap ${i.configMap.where} entry "${key}"`,
      says: !i.configMap.found
        ? (i.configMap.error ?? 'ConfigMap not found')
        : e?.roleARN
          ? `role ${e.roleARN}`
          : e
            ? 'entry without RoleARN'
            : 'no entry',
      outcome: won === kind ? 'won' : e?.roleARN ? 'shadowed' : 'empty',
      ...(won === kind
        ? { why: 'no association or ServiceAccount annotation gives a role' }
        : e?.roleARN
          ? { why: 'a source of lower rank decided first' }
          : {}),
    };
  });
}

/** The identities the Pod as created can use, and how they compare with the declared one. */
function podLine(
  pod: Pod,
  credentials: CredentialOptions,
  declared: Declared | undefined,
): Required<Pick<Explanation, 'podIdentities' | 'podState'>> {
  const podIdentities = podCredentials(pod, credentials).identities.map((c: PodCredential) => ({
    container: c.container.name,
    mode: c.mode,
    roleARN: c.roleARN,
    audience: c.audience,
    field: c.field,
  }));
  let podState: Explanation['podState'] & string;
  if (!declared) podState = podIdentities.length ? 'stale' : 'none';
  else if (podIdentities.length === 0) podState = 'missing';
  else {
    const same = podIdentities.some(
      (p) =>
        p.mode === declared.mode &&
        (declared.mode === 'ContainerCredentials' || p.roleARN === declared.roleARN),
    );
    podState = same ? 'matches' : 'stale';
  }
  return { podIdentities, podState };
}

function policyLine(i: ExplainInput, declared: Declared | undefined): PolicyLine {
  if (!declared)
    return { decision: 'not applicable', message: 'no identity is declared, so no IdentityPolicy applies' };
  return explainPolicy(i.policies, {
    namespace: i.namespace,
    namespaceLabels: i.namespaceLabels,
    serviceAccount: i.serviceAccountName,
    roleARN: declared.roleARN,
    targetRoleARN: declared.targetRoleARN,
  });
}

/** The gate and the verifier: the Pod's gate and annotations, the VerifiedIdentity, the owner's conditions, the last attempt. */
function gateLine(
  i: ExplainInput,
  declared: Declared | undefined,
  winningOwner: AssociationRecord | undefined,
): GateLine {
  const gate: GateLine = {};
  if (i.pod) {
    const gates: unknown[] = Array.isArray(i.pod.spec?.schedulingGates) ? i.pod.spec.schedulingGates : [];
    gate.gated = gates.some((g) => isObject(g) && g.name === GATE_NAME);
    const a = i.pod.metadata?.annotations?.[VERIFICATION_ANNOTATION];
    if (typeof a === 'string') gate.annotation = a;
    if (i.pod.metadata?.annotations?.[OPT_OUT_ANNOTATION] === 'false') gate.optOut = true;
  }
  if (declared) gate.verifiedIdentity = verifiedIdentityLine(i, declared);
  const ownerObj = winningOwner?.kind === 'lanyard' ? i.associationObjects?.get(winningOwner.uid) : undefined;
  if (winningOwner && ownerObj) gate.association = associationLine(winningOwner, ownerObj);
  const attempt = lastAttempt(i.events);
  if (attempt) gate.lastAttempt = attempt;
  return gate;
}

function verifiedIdentityLine(i: ExplainInput, declared: Declared): GateLine['verifiedIdentity'] {
  const name = verifiedIdentityName({
    mode: declared.mode,
    serviceAccount: i.serviceAccountName,
    roleARN: declared.roleARN,
    targetRoleARN: declared.targetRoleARN,
    audience: declared.audience,
  });
  const vi = i.verifiedIdentity;
  if (!vi) return { name, found: false };
  return {
    name,
    found: true,
    verifiedAt: vi.spec?.verifiedAt,
    expiresAt: vi.spec?.expiresAt,
    assumedRoleARN: vi.spec?.assumedRoleARN,
    fresh: typeof vi.spec?.expiresAt === 'string' && Date.parse(vi.spec.expiresAt) > i.nowMs,
  };
}

/** The owning association's Synced, Verified and Ready conditions, as its object says them. */
function associationLine(owner: AssociationRecord, obj: AssociationObject): GateLine['association'] {
  const conds: Partial<Condition>[] = Array.isArray(obj.status?.conditions) ? obj.status.conditions : [];
  return {
    object: describeRecord(owner),
    conditions: ['Synced', 'Verified', 'Ready'].flatMap((t) => {
      const c = conds.find((x) => x?.type === t);
      return c
        ? [
            {
              type: t,
              status: String(c.status ?? ''),
              reason: String(c.reason ?? ''),
              message: String(c.message ?? ''),
            },
          ]
        : [];
    }),
  };
}

/** Adds the trust comparison and recomputes the fixes. */
export function withTrust(e: Explanation, trust: TrustLine): Explanation {
  const out = { ...e, trust };
  out.fixes = fixesFor(out);
  return out;
}

/** What to do, in plain words, most important first. */
export function fixesFor(e: Explanation): string[] {
  const f: string[] = [];
  const { namespace: ns, serviceAccount: sa } = e.subject;
  if (!e.serviceAccountFound)
    f.push(
      `create the ServiceAccount ${ns}/${sa}: \`lanyard create identity ${ns}/${sa} --role ROLE_ARN\` creates it with its identity`,
    );
  if (!e.declared) {
    f.push(
      `give ${ns}/${sa} an identity: \`lanyard create identity ${ns}/${sa} --role ROLE_ARN\` (annotation ${'eks.amazonaws.com/role-arn'} for IRSA, or --mode pod-identity for a PodIdentityAssociation)`,
    );
  }
  if (e.podState === 'missing') {
    f.push(
      `the Pod was created before its identity was declared (or the webhook did not serve its namespace): it runs with no AWS identity until it is re-created; restart its owner (\`kubectl rollout restart ...\`) or delete the Pod`,
    );
  } else if (e.podState === 'stale') {
    f.push(
      'the Pod carries another identity than the one declared now (the declaration changed after it started): re-create the Pod to pick up the new one',
    );
  }
  const synced = e.gate.association?.conditions.find((c) => c.type === 'Synced');
  if (synced && synced.status === 'False') {
    f.push(
      `${e.gate.association!.object} is not synced to EKS (${synced.reason}: ${synced.message}): Pods get no credentials from the agent until it is`,
    );
  }
  if (e.policy.decision === 'denied') {
    f.push(
      `add an IdentityPolicy rule selecting namespace "${ns}", ServiceAccount "${sa}" and role "${e.declared?.targetRoleARN ?? e.declared?.roleARN ?? '*'}", or declare a role a rule allows (see \`kubectl get identitypolicies -o yaml\`)`,
    );
  }
  if (e.trust?.checked && !e.trust.comparison.allowed) {
    const fields = [...new Set(e.trust.comparison.mismatches.map((m) => m.field))];
    f.push(
      `fix the trust policy of ${e.trust.role} (${fields.join(', ')} ${fields.length === 1 ? 'is' : 'are'} wrong): \`lanyard iam trust-policy --service-account ${ns}/${sa}${e.declared?.mode === 'ContainerCredentials' ? ' --mode pod-identity' : ''}\` prints the one it needs; apply it with \`aws iam update-assume-role-policy\` or \`lanyard create identity ${ns}/${sa} --role ${e.trust.role} --update-trust --phase role\``,
    );
  } else if (
    e.gate.lastAttempt?.type === 'Warning' &&
    e.gate.lastAttempt.hint &&
    !(e.trust?.checked && e.trust.comparison.allowed)
  ) {
    const check =
      e.declared?.roleARN && !e.trust?.checked
        ? `; \`lanyard iam check ${e.declared.roleARN} --service-account ${ns}/${sa}\` (with AWS credentials that may read IAM) names the field to change`
        : '';
    f.push(`${e.gate.lastAttempt.hint}${check}`);
  }
  if (e.gate.gated && f.length === 0) {
    f.push(
      'the Pod waits for the verifier: if this lasts, check that `lanyard controller` runs (`kubectl -n lanyard-system get pods`)',
    );
  }
  return f;
}

const indent = (s: string, n = 2) =>
  s
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');

/** The text form (docs/explain-and-iam.md shows it): one block per part, separated by blank lines. */
export function renderExplanation(e: Explanation, age: (ts: string | undefined) => string): string {
  const s = e.subject;
  const out: string[] = [
    s.kind === 'Pod'
      ? `Pod ${s.namespace}/${s.name} (ServiceAccount ${s.serviceAccount})`
      : `ServiceAccount ${s.namespace}/${s.name}`,
    '',
    ...resolutionText(e),
    '',
    ...declaredText(e),
    '',
    ...policyText(e),
    '',
    ...gateText(e, age),
    ...(e.trust ? ['', ...trustText(e.trust)] : []),
    '',
  ];
  if (e.fixes.length === 0) out.push('Fix: nothing to fix');
  else {
    out.push('Fix:');
    for (const f of e.fixes) out.push(indent(`- ${f}`));
  }
  return out.join('\n') + '\n';
}

const OUTCOME_MARK: Record<SourceLine['outcome'], string> = {
  won: 'WON',
  shadowed: 'shadowed',
  unknown: '?',
  empty: '-',
};

function resolutionText(e: Explanation): string[] {
  return [
    "Resolution (the webhook's order; the first source that gives an identity wins):",
    ...e.sources.map(
      (l) =>
        `  ${l.rank}. ${l.source}: ${l.says}  [${OUTCOME_MARK[l.outcome]}]${l.why ? `\n       ${l.why}` : ''}`,
    ),
  ];
}

const POD_STATE_TEXT: Record<NonNullable<Explanation['podState']>, string> = {
  matches: 'the Pod carries the declared identity',
  missing: 'MISSING: the Pod has no identity although one is declared now',
  denied:
    'DENIED: the Pod has no identity, and the one declared now is denied by IdentityPolicy (PolicyDenied): a restart would not give it',
  stale: 'STALE: the Pod carries another identity than the one declared now',
  none: 'no identity declared, none injected',
};

/** The declared identity, then (for a Pod) what its spec carries and how that compares. */
function declaredText(e: Explanation): string[] {
  const out: string[] = [];
  if (e.declared) {
    const d = e.declared;
    out.push(
      `Declared identity: ${d.mode} role ${d.roleARN ?? '<unknown>'}${d.targetRoleARN ? ` (target ${d.targetRoleARN})` : ''}, token audience "${d.audience}"`,
    );
  } else {
    out.push('Declared identity: none (no source gives this ServiceAccount an AWS identity)');
  }
  if (e.podIdentities) {
    if (e.podIdentities.length === 0) out.push('Pod spec: no AWS identity injected');
    for (const p of e.podIdentities)
      out.push(
        `Pod spec: container ${p.container}: ${p.mode}${p.roleARN ? ` role ${p.roleARN}` : ''} (token audience "${p.audience}", ${p.field})`,
      );
    out.push(`  ${POD_STATE_TEXT[e.podState!]}`);
  }
  return out;
}

function policyText(e: Explanation): string[] {
  const out = [`IdentityPolicy: ${e.policy.decision}${e.policy.rule ? ` (${e.policy.rule})` : ''}`];
  if (e.policy.decision === 'denied' || e.policy.decision === 'no policies')
    out.push(`  ${e.policy.message}`);
  return out;
}

/** The gate (Pods), the VerifiedIdentity, the owning association's conditions and the verifier's last attempt. */
function gateText(e: Explanation, age: (ts: string | undefined) => string): string[] {
  const out: string[] = [];
  const g = e.gate;
  const isPod = e.subject.kind === 'Pod';
  if (isPod) {
    out.push(
      `Gate: ${g.gated ? `held (${GATE_NAME} in spec.schedulingGates)` : 'not held'}${g.annotation ? `, ${VERIFICATION_ANNOTATION}: ${g.annotation}` : ''}${g.optOut ? `, opted out (${OPT_OUT_ANNOTATION}: "false")` : ''}`,
    );
  }
  if (g.verifiedIdentity) {
    const v = g.verifiedIdentity;
    out.push(
      v.found
        ? `VerifiedIdentity ${v.name}: ${v.fresh ? 'fresh' : 'expired'}, verified ${age(v.verifiedAt)} ago as ${v.assumedRoleARN ?? '?'}`
        : `VerifiedIdentity ${v.name}: none (the identity has not been proven recently)`,
    );
  }
  if (g.association) {
    const c = g.association.conditions
      .map((x) => `${x.type}=${x.status}${x.reason ? ` (${x.reason})` : ''}`)
      .join(', ');
    out.push(`${g.association.object}: ${c || 'no status yet'}`);
    for (const x of g.association.conditions)
      if (x.status !== 'True' && x.message) out.push(`  ${x.type}: ${x.message}`);
  }
  if (g.lastAttempt) {
    const a = g.lastAttempt;
    out.push(
      `Last verifier attempt${a.time ? ` (${age(a.time)} ago)` : ''}: ${a.type} ${a.reason}: ${a.message}`,
    );
    if (a.hint) out.push(`  meaning: ${a.hint}`);
  } else if (isPod) {
    out.push('Last verifier attempt: no verifier Event on this Pod');
  }
  return out;
}

function trustText(t: TrustLine): string[] {
  if (!t.checked) return [`Trust policy${t.role ? ` of ${t.role}` : ''}: not checked (${t.why})`];
  return [
    `Trust policy of ${t.role} against ${t.presented}: ${t.comparison.allowed ? 'allows it' : 'does NOT allow it'}`,
    ...t.comparison.mismatches.map((m) => `  ${m.field}: ${m.text}`),
    ...t.comparison.notes.map((n) => `  note: ${n}`),
  ];
}
