// IAM trust-policy parsing (checked on write) and evaluation for the simulator (docs/aws-simulator.md). Pure: the
// caller passes the principal, the action and the condition context, and receives the decision plus notes on
// statements that failed because they use something the simulator does not support. Wildcards and string conditions
// are IAM's rules in src/core/iam-trust.ts, which `lanyard explain` uses too.
import { STRING_OPERATORS, iamGlob, stringConditionHolds } from '../../core/iam-trust.ts';

export interface TrustStatement {
  sid?: string;
  effect: 'Allow' | 'Deny';
  principals: Partial<Record<'Service' | 'Federated' | 'AWS', string[]>> | '*';
  actions: string[];
  /** operator → key → values */
  conditions: Record<string, Record<string, string[]>>;
  /** Elements the simulator does not evaluate (NotPrincipal, NotAction); the statement then never applies. */
  unsupported?: string;
}

export interface TrustPolicy {
  statements: TrustStatement[];
}

export type ParseResult = { ok: true; policy: TrustPolicy } | { ok: false; message: string };

const toList = (v: unknown): string[] | undefined => {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) return v as string[];
  return undefined;
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function parseTrustPolicy(doc: string): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(doc);
  } catch {
    return { ok: false, message: 'This policy contains invalid Json' };
  }
  if (!isObject(raw)) return { ok: false, message: 'Syntax errors in policy.' };
  if (raw.Version !== undefined && raw.Version !== '2012-10-17' && raw.Version !== '2008-10-17') {
    return { ok: false, message: 'The policy must contain a valid version string' };
  }
  const rawStatements = Array.isArray(raw.Statement)
    ? raw.Statement
    : isObject(raw.Statement)
      ? [raw.Statement]
      : undefined;
  if (!rawStatements || rawStatements.length === 0)
    return { ok: false, message: 'Missing required field Statement' };
  const statements: TrustStatement[] = [];
  for (const [i, s] of rawStatements.entries()) {
    const where = `Statement[${i}]`;
    if (!isObject(s)) return { ok: false, message: `${where}: Syntax errors in policy.` };
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny')
      return { ok: false, message: `${where}: Effect must be Allow or Deny` };
    if (s.Resource !== undefined) return { ok: false, message: `${where}: Has prohibited field Resource` };
    let principals: TrustStatement['principals'] | undefined;
    if (s.Principal === '*') principals = '*';
    else if (isObject(s.Principal)) {
      principals = {};
      for (const [type, v] of Object.entries(s.Principal)) {
        if (type !== 'Service' && type !== 'Federated' && type !== 'AWS') {
          return { ok: false, message: `${where}: Invalid principal type ${type}` };
        }
        const list = toList(v);
        if (!list)
          return { ok: false, message: `${where}: Principal ${type} must be a string or a list of strings` };
        if (type === 'AWS' && list.includes('*')) {
          principals = '*';
          break;
        }
        principals[type] = list;
      }
    }
    const unsupported =
      s.NotPrincipal !== undefined ? 'NotPrincipal' : s.NotAction !== undefined ? 'NotAction' : undefined;
    if (!principals && !unsupported)
      return { ok: false, message: `${where}: Missing required field Principal` };
    const actions = toList(s.Action);
    if (!actions && !unsupported) return { ok: false, message: `${where}: Missing required field Action` };
    const conditions: TrustStatement['conditions'] = {};
    if (s.Condition !== undefined) {
      if (!isObject(s.Condition)) return { ok: false, message: `${where}: Condition must be an object` };
      for (const [op, block] of Object.entries(s.Condition)) {
        if (!isObject(block))
          return { ok: false, message: `${where}: Condition ${op} must map keys to values` };
        conditions[op] = {};
        for (const [key, v] of Object.entries(block)) {
          const list = typeof v === 'boolean' || typeof v === 'number' ? [String(v)] : toList(v);
          if (!list)
            return {
              ok: false,
              message: `${where}: Condition ${op} ${key} must be a string or a list of strings`,
            };
          conditions[op]![key] = list;
        }
      }
    }
    statements.push({
      ...(typeof s.Sid === 'string' ? { sid: s.Sid } : {}),
      effect: s.Effect,
      principals: principals ?? {},
      actions: actions ?? [],
      conditions,
      ...(unsupported ? { unsupported } : {}),
    });
  }
  return { ok: true, policy: { statements } };
}

/** `*` any run, `?` one character; anchored (IAM's rule, shared with `lanyard explain`). */
export const globMatch = iamGlob;

export interface TrustRequest {
  principal: { type: 'Service' | 'Federated' | 'AWS'; id: string };
  action: string;
  /** Condition keys (any case) → value(s). Keys absent here are unknown to the request. */
  context: Record<string, string | string[]>;
  /** Keys the simulator supports for this request (lower-case); other keys fail their statement. */
  supportedKeys: string[];
}

export interface TrustDecision {
  decision: 'allow' | 'explicitDeny' | 'implicitDeny';
  /** Statements that failed because of an unsupported element, operator or key (to be logged). */
  notes: string[];
}

function principalMatches(p: TrustStatement['principals'], req: TrustRequest): boolean {
  if (p === '*') return true;
  const list = p[req.principal.type];
  if (!list) return false;
  if (req.principal.type !== 'AWS') return list.includes(req.principal.id);
  const account = /^arn:[^:]+:(?:iam|sts)::(\d{12}):/.exec(req.principal.id)?.[1];
  return list.some(
    (e) =>
      e === req.principal.id ||
      (account !== undefined && (e === account || e === `arn:aws:iam::${account}:root`)),
  );
}

function conditionsMatch(s: TrustStatement, req: TrustRequest, label: string, notes: string[]): boolean {
  const context = new Map<string, string[]>();
  for (const [k, v] of Object.entries(req.context)) context.set(k.toLowerCase(), Array.isArray(v) ? v : [v]);
  const supported = new Set(req.supportedKeys.map((k) => k.toLowerCase()));
  for (const [op, block] of Object.entries(s.conditions)) {
    const operator = op.toLowerCase();
    if (!STRING_OPERATORS.has(operator)) {
      notes.push(`${label}: unsupported condition operator ${op}`);
      return false;
    }
    for (const [key, wanted] of Object.entries(block)) {
      if (!supported.has(key.toLowerCase())) {
        notes.push(`${label}: unsupported condition key ${key}`);
        return false;
      }
      if (!stringConditionHolds(operator, wanted, context.get(key.toLowerCase()) ?? [])) return false;
    }
  }
  return true;
}

export function evaluateTrust(policy: TrustPolicy, req: TrustRequest): TrustDecision {
  const notes: string[] = [];
  let allowed = false;
  for (const [i, s] of policy.statements.entries()) {
    const label = `Statement[${i}]${s.sid ? ` (${s.sid})` : ''}`;
    if (s.unsupported) {
      notes.push(`${label}: unsupported element ${s.unsupported}`);
      continue;
    }
    if (!principalMatches(s.principals, req)) continue;
    if (!s.actions.some((a) => globMatch(a, req.action, true))) continue;
    if (!conditionsMatch(s, req, label, notes)) continue;
    if (s.effect === 'Deny') return { decision: 'explicitDeny', notes };
    allowed = true;
  }
  return { decision: allowed ? 'allow' : 'implicitDeny', notes };
}
