// The trust policy a ServiceAccount needs, and the comparison of a role's trust policy with what a Pod's token or
// the Pod Identity agent presents (docs/explain-and-iam.md). Pure: documents and claims in, named mismatches out.
// IAM evaluates trust per action: every action the exchange needs must be allowed by some statement whose
// principal and conditions match, and by no Deny statement (docs/verified-start.md, "Trust policies"). Wildcards and
// string conditions follow IAM's rules in src/core/iam-trust.ts, which the AWS simulator uses too.
import { STRING_OPERATORS, iamGlob, stringConditionHolds } from '../core/iam-trust.ts';

export type TrustField =
  'provider' | 'sub' | 'aud' | 'principal' | 'action' | 'external id' | 'condition' | 'deny' | 'document';

/** What an exchange presents to IAM when it asks to assume a role. */
export type Presented =
  | {
      /** AssumeRoleWithWebIdentity with a projected ServiceAccount token. */
      mode: 'WebIdentity';
      /** `arn:<partition>:iam::<account>:oidc-provider/<issuer host and path>`. */
      providerArn: string;
      /** The issuer without `https://` and trailing `/`: the prefix of the `:sub` and `:aud` condition keys. */
      issuerKey: string;
      sub: string;
      aud: string;
      /** OIDC providers registered in the role's account, when IAM could be read; undefined when unknown. */
      registeredProviders?: readonly string[];
    }
  | {
      /** eks-auth AssumeRoleForPodIdentity: the service principal assumes the association's role. */
      mode: 'ContainerCredentials';
      /** False with `disableSessionTags`: sts:TagSession is then not needed. */
      sessionTags: boolean;
    }
  | {
      /** The association role assumes its target role, with the association's external id. */
      mode: 'TargetRole';
      principalArn: string;
      externalId?: string;
    };

export interface Mismatch {
  field: TrustField;
  /** `Statement[0]` or `Statement[1] (Sid)`; undefined for the document as a whole. */
  statement?: string;
  /** One sentence naming what the policy says and what the exchange presents. */
  text: string;
}

export interface TrustComparison {
  allowed: boolean;
  /** Empty when allowed. For each action not allowed, the mismatches of the statement that came closest. */
  mismatches: Mismatch[];
  /** Conditions this module cannot evaluate offline (assumed to hold), e.g. `aws:SourceAccount`. */
  notes: string[];
}

export const POD_IDENTITY_PRINCIPAL = 'pods.eks.amazonaws.com';
export const WEB_IDENTITY_ACTION = 'sts:AssumeRoleWithWebIdentity';

// ---- The trust policy a ServiceAccount needs ---------------------------------------------------------------------

/** The issuer as IAM names its OIDC provider: no scheme, no trailing slash. */
export function issuerKey(issuer: string): string {
  return issuer.replace(/^https:\/\//, '').replace(/\/+$/, '');
}

export function oidcProviderArn(partition: string, account: string, issuer: string): string {
  return `arn:${partition}:iam::${account}:oidc-provider/${issuerKey(issuer)}`;
}

export function serviceAccountSubject(namespace: string, serviceAccount: string): string {
  return `system:serviceaccount:${namespace}:${serviceAccount}`;
}

export type TrustTarget =
  | {
      mode: 'WebIdentity';
      partition: string;
      account: string;
      issuer: string;
      namespace: string;
      serviceAccount: string;
      audience: string;
    }
  | { mode: 'ContainerCredentials'; sessionTags?: boolean };

/** The minimal trust policy that lets exactly this ServiceAccount assume a role (IRSA) or any associated Pod (Pod Identity). */
export function desiredTrustPolicy(t: TrustTarget): Record<string, unknown> {
  if (t.mode === 'ContainerCredentials') {
    return {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: POD_IDENTITY_PRINCIPAL },
          Action: t.sessionTags === false ? ['sts:AssumeRole'] : ['sts:AssumeRole', 'sts:TagSession'],
        },
      ],
    };
  }
  const key = issuerKey(t.issuer);
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Federated: oidcProviderArn(t.partition, t.account, t.issuer) },
        Action: WEB_IDENTITY_ACTION,
        Condition: {
          StringEquals: {
            [`${key}:sub`]: serviceAccountSubject(t.namespace, t.serviceAccount),
            [`${key}:aud`]: t.audience,
          },
        },
      },
    ],
  };
}

// ---- Parsing -----------------------------------------------------------------------------------------------------

interface Statement {
  label: string;
  effect: string;
  /** '*' for `Principal: "*"` or `{"AWS": "*"}`. */
  principals: Record<string, string[]> | '*';
  actions: string[];
  /** [operator, key, values] */
  conditions: [string, string, string[]][];
  unsupported?: string;
}

const list = (v: unknown): string[] =>
  typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function parse(doc: string | Record<string, unknown>): Statement[] | string {
  let raw: unknown = doc;
  if (typeof doc === 'string') {
    try {
      raw = JSON.parse(doc);
    } catch {
      return 'the trust policy is not valid JSON';
    }
  }
  if (!isObject(raw)) return 'the trust policy is not a JSON object';
  const statements = Array.isArray(raw.Statement)
    ? raw.Statement
    : isObject(raw.Statement)
      ? [raw.Statement]
      : [];
  if (statements.length === 0) return 'the trust policy has no Statement';
  return statements.map((s: unknown, i: number): Statement => {
    const o = isObject(s) ? s : {};
    const label = `Statement[${i}]${typeof o.Sid === 'string' && o.Sid ? ` (${o.Sid})` : ''}`;
    let principals: Statement['principals'] = {};
    if (o.Principal === '*') principals = '*';
    else if (isObject(o.Principal)) {
      for (const [type, v] of Object.entries(o.Principal)) {
        const l = list(v);
        if (type === 'AWS' && l.includes('*')) {
          principals = '*';
          break;
        }
        principals[type] = l;
      }
    }
    const conditions: Statement['conditions'] = [];
    if (isObject(o.Condition)) {
      for (const [op, block] of Object.entries(o.Condition)) {
        if (!isObject(block)) continue;
        for (const [key, v] of Object.entries(block)) {
          conditions.push([op, key, typeof v === 'boolean' || typeof v === 'number' ? [String(v)] : list(v)]);
        }
      }
    }
    return {
      label,
      effect: String(o.Effect ?? ''),
      principals,
      actions: list(o.Action),
      conditions,
      ...(o.NotPrincipal !== undefined
        ? { unsupported: 'NotPrincipal' }
        : o.NotAction !== undefined
          ? { unsupported: 'NotAction' }
          : {}),
    };
  });
}

const quoteList = (l: readonly string[]) =>
  l.length === 1 ? `"${l[0]}"` : `[${l.map((x) => `"${x}"`).join(', ')}]`;

/** `Federated ["…"], Service "…"`: the principals a statement names, for a message. */
const describePrincipals = (pr: Record<string, string[]>) =>
  Object.entries(pr)
    .map(([t, v]) => `${t} ${quoteList(v)}`)
    .join(', ') || 'no principal';

// ---- Comparison --------------------------------------------------------------------------------------------------

interface Check {
  action: string;
}

/** The mismatches of one statement for one action; an empty list means the statement applies. */
function statementMismatches(s: Statement, p: Presented, c: Check, notes: string[]): Mismatch[] {
  const at = s.label;
  if (s.unsupported)
    return [
      {
        field: 'document',
        statement: at,
        text: `${at} uses ${s.unsupported}, which this check does not evaluate`,
      },
    ];
  const out: Mismatch[] = [];
  const principal = s.principals === '*' ? undefined : principalMismatch(at, s.principals, p);
  if (principal) out.push(principal);
  if (!s.actions.some((a) => iamGlob(a, c.action, true))) {
    out.push({
      field: 'action',
      statement: at,
      text: `${at} allows ${quoteList(s.actions)}, not ${c.action}`,
    });
  }
  // Conditions: every key must hold (values ORed).
  for (const [rawOp, key, wanted] of s.conditions) {
    const m = conditionMismatch(at, rawOp, key, wanted, p, out, notes);
    if (m) out.push(m);
  }
  return out;
}

/** The principal the statement names against who asks: the cluster's OIDC provider, the Pod Identity service, or the association role. */
function principalMismatch(at: string, pr: Record<string, string[]>, p: Presented): Mismatch | undefined {
  if (p.mode === 'WebIdentity') {
    const fed = pr.Federated ?? [];
    if (fed.length === 0)
      return {
        field: 'principal',
        statement: at,
        text: `${at} trusts ${describePrincipals(pr)}, not a Federated OIDC provider; the token comes from ${p.providerArn}`,
      };
    if (!fed.includes(p.providerArn))
      return {
        field: 'provider',
        statement: at,
        text: `${at} trusts Federated ${quoteList(fed)}, but the token comes from the cluster's provider ${p.providerArn}`,
      };
    return undefined;
  }
  if (p.mode === 'ContainerCredentials') {
    if ((pr.Service ?? []).includes(POD_IDENTITY_PRINCIPAL)) return undefined;
    return {
      field: 'principal',
      statement: at,
      text: `${at} trusts ${describePrincipals(pr)}; EKS Pod Identity needs Service "${POD_IDENTITY_PRINCIPAL}"`,
    };
  }
  const aws = pr.AWS ?? [];
  const account = /^arn:[^:]+:(?:iam|sts)::(\d{12}):/.exec(p.principalArn)?.[1];
  const ok = aws.some(
    (a) =>
      a === p.principalArn ||
      (account !== undefined && (a === account || /^arn:[^:]+:iam::(\d{12}):root$/.exec(a)?.[1] === account)),
  );
  if (ok) return undefined;
  return {
    field: 'principal',
    statement: at,
    text: `${at} trusts AWS ${quoteList(aws)}, not the association role ${p.principalArn}`,
  };
}

/**
 * One condition key of a statement: the mismatch it causes, if any. `sofar` is the statement's mismatches before
 * it (one provider mismatch per statement); keys this check cannot evaluate offline go to `notes`.
 */
function conditionMismatch(
  at: string,
  rawOp: string,
  key: string,
  wanted: string[],
  p: Presented,
  sofar: readonly Mismatch[],
  notes: string[],
): Mismatch | undefined {
  const subject = conditionSubject(at, key, p, sofar);
  if (subject === 'note') {
    notes.push(`${at}: condition ${rawOp} ${key} is not checked here (assumed to hold)`);
    return undefined;
  }
  if (subject === 'skip') return undefined;
  if ('mismatch' in subject) return subject.mismatch;
  const { field, actual } = subject;
  const op = rawOp
    .replace(/^(ForAnyValue|ForAllValues):/i, '')
    .replace(/IfExists$/i, '')
    .toLowerCase();
  if (!STRING_OPERATORS.has(op))
    return {
      field: 'condition',
      statement: at,
      text: `${at} uses operator ${rawOp} on ${key}; use StringEquals or StringLike`,
    };
  if (stringConditionHolds(op, wanted, actual === undefined ? [] : [actual])) return undefined;
  const presented = actual === undefined ? 'none' : `"${actual}"`;
  const what = field === 'external id' ? 'the exchange presents' : 'the token presents';
  const like = op.endsWith('like');
  return {
    field,
    statement: at,
    text: `${at} requires ${key} ${op.includes('not') ? 'not ' : ''}${like ? 'like' : '='} ${quoteList(wanted)}, ${what} ${presented}`,
  };
}

/**
 * What a condition key is about: the token's `sub` or `aud` (of the cluster's provider, else a provider mismatch),
 * the association's external id, or a key left to a note. `skip` when a provider mismatch is already named.
 */
function conditionSubject(
  at: string,
  key: string,
  p: Presented,
  sofar: readonly Mismatch[],
): { field: TrustField; actual: string | undefined } | { mismatch: Mismatch } | 'note' | 'skip' {
  const lkey = key.toLowerCase();
  if (p.mode === 'WebIdentity' && (lkey.endsWith(':sub') || lkey.endsWith(':aud'))) {
    const prefix = key.slice(0, key.lastIndexOf(':'));
    const field = lkey.endsWith(':sub') ? 'sub' : 'aud';
    if (prefix.toLowerCase() === p.issuerKey.toLowerCase())
      return { field, actual: field === 'sub' ? p.sub : p.aud };
    // One provider mismatch per statement: keys of the wrong provider follow from the wrong principal.
    if (sofar.some((m) => m.field === 'provider')) return 'skip';
    return {
      mismatch: {
        field: 'provider',
        statement: at,
        text: `${at} conditions on ${key}, a key of provider "${prefix}"; the token's issuer is "${p.issuerKey}", so the condition never holds`,
      },
    };
  }
  if (lkey === 'sts:externalid')
    return { field: 'external id', actual: p.mode === 'TargetRole' ? p.externalId : undefined };
  return 'note';
}

function requiredActions(p: Presented): string[] {
  if (p.mode === 'WebIdentity') return [WEB_IDENTITY_ACTION];
  if (p.mode === 'ContainerCredentials')
    return p.sessionTags ? ['sts:AssumeRole', 'sts:TagSession'] : ['sts:AssumeRole'];
  return ['sts:AssumeRole'];
}

/** Compares a role's trust policy (JSON text or object) with what an exchange presents; names each mismatching field. */
export function compareTrust(doc: string | Record<string, unknown>, p: Presented): TrustComparison {
  const statements = parse(doc);
  if (typeof statements === 'string')
    return { allowed: false, mismatches: [{ field: 'document', text: statements }], notes: [] };
  const notes: string[] = [];
  const mismatches: Mismatch[] = [];
  if (p.mode === 'WebIdentity' && p.registeredProviders && !p.registeredProviders.includes(p.providerArn)) {
    mismatches.push({
      field: 'provider',
      text: `IAM has no OIDC provider ${p.providerArn} for the cluster's issuer: STS rejects the token before reading the trust policy`,
    });
  }
  for (const action of requiredActions(p)) {
    const applying = (effect: string) =>
      statements
        .filter((s) => s.effect === effect)
        .map((s) => ({ s, m: statementMismatches(s, p, { action }, effect === 'Allow' ? notes : []) }));
    const deny = applying('Deny').find((x) => x.m.length === 0);
    if (deny) {
      mismatches.push({
        field: 'deny',
        statement: deny.s.label,
        text: `${deny.s.label} explicitly denies ${action} to this ${p.mode === 'WebIdentity' ? 'token' : 'principal'}`,
      });
      continue;
    }
    const allows = applying('Allow');
    if (allows.some((x) => x.m.length === 0)) continue;
    if (allows.length === 0) {
      mismatches.push({
        field: 'principal',
        text: `the trust policy has no Allow statement, so nothing may assume the role`,
      });
      continue;
    }
    // The statement that came closest says what to change.
    const best = allows.reduce((a, b) => (b.m.length < a.m.length ? b : a));
    for (const m of best.m) if (!mismatches.some((x) => x.text === m.text)) mismatches.push(m);
  }
  return { allowed: mismatches.length === 0, mismatches, notes: [...new Set(notes)] };
}

// ---- Raw AWS error text → what it means --------------------------------------------------------------------------

/**
 * A plain-language reading of an exchange error as the verifier records it (Events `IdentityNotVerified`,
 * `IdentityVerificationFailed`; docs/verified-start.md). Undefined when the text is not recognised.
 */
export function hintForExchangeError(text: string): string | undefined {
  const t = text;
  if (/PolicyDenied/.test(t))
    return 'no IdentityPolicy allows this namespace, ServiceAccount and role: add a rule, or use a role a rule allows';
  if (
    /AccessDenied\b.*sts:AssumeRoleWithWebIdentity|Not authorized to perform sts:AssumeRoleWithWebIdentity/.test(
      t,
    )
  ) {
    return "STS refused the role's trust policy for this token: its Federated provider, its `sub` condition (system:serviceaccount:NAMESPACE:NAME) or its `aud` condition does not match the token";
  }
  if (/InvalidIdentityToken.*(No OpenIDConnect provider|OpenIDConnect provider)/i.test(t)) {
    return "IAM has no OIDC provider for the cluster's issuer (or its client-id list lacks the token's audience): create it with the issuer URL and audience sts.amazonaws.com";
  }
  if (/InvalidIdentityToken/.test(t))
    return "STS could not verify the token against the cluster's OIDC discovery (issuer, keys or audience)";
  if (/ExpiredToken/.test(t))
    return 'the token expired before STS checked it: check the clocks of the API server and the verifier';
  if (/AccessDeniedException/.test(t)) {
    return 'EKS Pod Identity could not assume the role: its trust policy must allow Service "pods.eks.amazonaws.com" with sts:AssumeRole and sts:TagSession (a target role must trust the association role with its external id)';
  }
  if (/ResourceNotFoundException/.test(t))
    return 'EKS has no association for this ServiceAccount yet (it may still be propagating, or the PodIdentityAssociation is not synced)';
  if (/NoSuchEntity|role .*does not exist|Role provided in the request does not exist/i.test(t))
    return 'the role does not exist (or IAM has not propagated it yet)';
  if (/returned another role|answered for|used association/.test(t))
    return 'AWS answered with another role than the one declared: check the association or annotation names the role you expect';
  if (
    /Throttl|ServiceUnavailable|InternalServerError|InternalFailure|timeout|ECONNRESET|ECONNREFUSED/i.test(t)
  ) {
    return 'AWS did not answer properly (throttling, 5xx or a network error): the verifier retries on its own';
  }
  if (/TokenRequest/.test(t))
    return 'the controller could not mint a token for the ServiceAccount: does it exist, and may the controller create serviceaccounts/token?';
  return undefined;
}
