// IdentityPolicy: the ONE pure decision used by the association controller, the webhook (through the admission
// guard), the verifier and promotions (docs/verified-start.md#identitypolicy). Plain objects in, decisions out; no I/O.
import { quoteBounded, truncate } from '../runtime/text.ts';
import { compileGlob, type Glob } from './glob.ts';
import { ROLE_ARN_MAX } from '../core/arn.ts';
import type { IdentityPolicy } from './types.ts';

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface CompiledRule {
  matchLabels: Record<string, string>;
  matchExpressions: LabelSelectorRequirement[];
  serviceAccounts: Glob[];
  roles: Glob[];
}

export interface CompiledPolicy {
  name: string;
  uid: string;
  generation: number;
  /** False when an entry is invalid: the whole policy is then ignored (but still counts as "a policy exists"). */
  accepted: boolean;
  /** Names the bad entry when not accepted, e.g. `spec.rules[0].roles[1] "arn:aws:s3:::x": …`. */
  invalidMessage?: string;
  rules: CompiledRule[];
}

/** The policies in force. `present` is true as soon as one IdentityPolicy object exists (default-deny). */
export interface PolicySet {
  present: boolean;
  policies: readonly CompiledPolicy[];
}

export const EMPTY_POLICY_SET: PolicySet = Object.freeze({ present: false, policies: Object.freeze([]) });

export interface PolicySubject {
  namespace: string;
  /** The namespace's labels; `kubernetes.io/metadata.name` is implied. */
  namespaceLabels: Record<string, string> | undefined;
  serviceAccount: string;
  /** Undefined when unknown (identities file only, ACK roleRef): only namespace and ServiceAccount are checked. */
  roleARN?: string;
  targetRoleARN?: string;
}

export type PolicyDecision =
  | { allowed: true; reason: 'no_policies' | 'allowed' }
  | {
      allowed: false;
      message: string;
      deniedRole?: string;
      /** What to do, in plain words: the rule that would allow it and where to add it (allowRuleFix). */
      fix?: string;
    };

// The CRD repeats these (pattern, maxLength); the compiler checks them again so a policy that slipped past (older
// CRD) is refused. Lengths are checked before the pattern, so a hostile entry costs nothing.
export const ROLE_PATTERN_MAX = 1024;
const ROLE_PATTERN_RE = /^arn:[a-z0-9*-]+:iam::[0-9*]+:role\/[\x21-\x7e]+$/;
const ROLE_PATTERN_RULE = `must match ^arn:[a-z0-9*-]+:iam::[0-9*]+:role/[!-~]+$ in at most ${ROLE_PATTERN_MAX} characters`;
// A ServiceAccount name is a DNS-1123 subdomain; patterns add `*`.
const SA_PATTERN_MAX = 253;
const SA_PATTERN_RE = /^[a-z0-9.*-]+$/;
const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

class InvalidEntry extends Error {}

/** Names the entry and the rule; the value is echoed bounded, as a policy can be large. */
function bad(path: string, value: unknown, rule: string): never {
  throw new InvalidEntry(`${path} ${quoteBounded(value)}: ${rule}`);
}

/** A JSON object (not null, not an array): the entries of a policy are checked as the unknown JSON they may be. */
type JsonObject = Record<string, unknown>;
const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);

function compileSelector(sel: unknown, path: string): Pick<CompiledRule, 'matchLabels' | 'matchExpressions'> {
  if (!isObject(sel)) bad(path, sel, 'must be a label selector object');
  const matchLabels: Record<string, string> = {};
  for (const [k, v] of Object.entries((sel.matchLabels ?? {}) as object)) {
    if (typeof v !== 'string') bad(`${path}.matchLabels.${k}`, v, 'must be a string');
    matchLabels[k] = v;
  }
  const matchExpressions: LabelSelectorRequirement[] = [];
  const exprs: unknown = sel.matchExpressions ?? [];
  if (!Array.isArray(exprs)) bad(`${path}.matchExpressions`, exprs, 'must be an array');
  (exprs as unknown[]).forEach((item, i) => {
    const p = `${path}.matchExpressions[${i}]`;
    // Not an object: no key (the first check names it).
    const e: JsonObject = isObject(item) ? item : {};
    if (typeof e.key !== 'string' || e.key === '') bad(`${p}.key`, e.key, 'must be a non-empty string');
    if (typeof e.operator !== 'string' || !OPERATORS.has(e.operator))
      bad(`${p}.operator`, e.operator, 'must be In, NotIn, Exists or DoesNotExist');
    const values: unknown = e.values ?? [];
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'string'))
      bad(`${p}.values`, values, 'must be a string array');
    if ((e.operator === 'In' || e.operator === 'NotIn') && values.length === 0) {
      bad(`${p}.values`, values, `must be non-empty for operator ${e.operator}`);
    }
    if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && values.length > 0) {
      bad(`${p}.values`, values, `must be empty for operator ${e.operator}`);
    }
    matchExpressions.push({
      key: e.key,
      operator: e.operator as LabelSelectorRequirement['operator'],
      values: values as string[],
    });
  });
  return { matchLabels, matchExpressions };
}

function compilePatterns(
  list: unknown,
  path: string,
  re: RegExp,
  maxLength: number,
  rule: string,
  max: number,
): Glob[] {
  if (!Array.isArray(list) || list.length === 0) bad(path, list, 'must be a non-empty array');
  const items = list as unknown[];
  if (items.length > max) bad(path, `${items.length} entries`, `at most ${max} entries`);
  return items.map((p, i) => {
    if (typeof p !== 'string' || p.length === 0 || p.length > maxLength || !re.test(p))
      bad(`${path}[${i}]`, p, rule);
    return compileGlob(p);
  });
}

/**
 * Compiles one IdentityPolicy object. Invalid entries make the policy not accepted (it is then ignored). Its rules are
 * checked as unknown JSON: an older CRD, or none, may have let anything through (src/verification/types.ts).
 */
export function compilePolicy(obj: IdentityPolicy): CompiledPolicy {
  const base = {
    name: String(obj?.metadata?.name ?? ''),
    uid: String(obj?.metadata?.uid ?? ''),
    generation: Number(obj?.metadata?.generation ?? 0),
  };
  try {
    const rules: unknown = obj?.spec?.rules;
    if (!Array.isArray(rules) || rules.length === 0)
      bad('spec.rules', rules ?? null, 'must be a non-empty array');
    const entries = rules as unknown[];
    if (entries.length > 100) bad('spec.rules', `${entries.length} entries`, 'at most 100 entries');
    const compiled = entries.map((item, i): CompiledRule => {
      const p = `spec.rules[${i}]`;
      const r: JsonObject = isObject(item) ? item : {};
      if (r.namespaceSelector === undefined) bad(`${p}.namespaceSelector`, null, 'is required');
      return {
        ...compileSelector(r.namespaceSelector, `${p}.namespaceSelector`),
        serviceAccounts: compilePatterns(
          r.serviceAccounts,
          `${p}.serviceAccounts`,
          SA_PATTERN_RE,
          SA_PATTERN_MAX,
          `must be a ServiceAccount name pattern (lowercase letters, digits, ".", "-", "*"; at most ${SA_PATTERN_MAX})`,
          50,
        ),
        roles: compilePatterns(
          r.roles,
          `${p}.roles`,
          ROLE_PATTERN_RE,
          ROLE_PATTERN_MAX,
          ROLE_PATTERN_RULE,
          100,
        ),
      };
    });
    return { ...base, accepted: true, rules: compiled };
  } catch (e) {
    if (!(e instanceof InvalidEntry)) throw e;
    return { ...base, accepted: false, invalidMessage: e.message, rules: [] };
  }
}

/**
 * Memoises compilation per (uid, generation), so patterns compile once per generation. Owned by whoever holds the
 * informer (webhook guard, controller); not a module singleton.
 */
export class PolicyCompiler {
  private cache = new Map<string, CompiledPolicy>();

  compile(obj: IdentityPolicy): CompiledPolicy {
    const key = `${obj?.metadata?.uid ?? obj?.metadata?.name}`;
    const gen = Number(obj?.metadata?.generation ?? 0);
    const hit = this.cache.get(key);
    if (hit && hit.generation === gen) return hit;
    const c = compilePolicy(obj);
    this.cache.set(key, c);
    return c;
  }

  /** Builds the set in force from every IdentityPolicy object; forgets compiled policies no longer present. */
  compileAll(objs: Iterable<IdentityPolicy>): PolicySet {
    const policies: CompiledPolicy[] = [];
    const seen = new Set<string>();
    for (const o of objs) {
      seen.add(`${o?.metadata?.uid ?? o?.metadata?.name}`);
      policies.push(this.compile(o));
    }
    for (const k of [...this.cache.keys()]) if (!seen.has(k)) this.cache.delete(k);
    policies.sort((a, b) => a.name.localeCompare(b.name));
    return { present: policies.length > 0, policies };
  }
}

export function selectorMatches(
  rule: Pick<CompiledRule, 'matchLabels' | 'matchExpressions'>,
  labels: Record<string, string>,
): boolean {
  for (const [k, v] of Object.entries(rule.matchLabels)) if (labels[k] !== v) return false;
  for (const e of rule.matchExpressions) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const vals = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has || !vals.includes(labels[e.key]!)) return false;
        break;
      case 'NotIn':
        if (has && vals.includes(labels[e.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

export function policyDeniedMessage(
  namespace: string,
  serviceAccount: string,
  role: string | undefined,
): string {
  return role === undefined
    ? `lanyard: no IdentityPolicy allows namespace "${namespace}" ServiceAccount "${serviceAccount}" to use any role`
    : `lanyard: no IdentityPolicy allows namespace "${namespace}" ServiceAccount "${serviceAccount}" to use role "${truncate(role)}"`;
}

/**
 * The fix for a denial (docs/verified-start.md, "When a Pod is denied"): the smallest IdentityPolicy rule that allows
 * exactly this namespace, ServiceAccount and role, and which policy to add it to. A first workload in a new namespace
 * is denied by default once any policy exists; the message must say how to let it in.
 */
export function allowRuleFix(
  set: PolicySet,
  namespace: string,
  serviceAccount: string,
  role: string | undefined,
): string {
  const roles = role === undefined ? '"<the role ARN>"' : JSON.stringify(truncate(role));
  const rule = `{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ${namespace}}}, serviceAccounts: [${JSON.stringify(serviceAccount)}], roles: [${roles}]}`;
  const names = set.policies.filter((p) => p.accepted).map((p) => p.name);
  const where =
    names.length === 0
      ? 'add an IdentityPolicy whose spec.rules holds'
      : names.length === 1
        ? `add to spec.rules of IdentityPolicy "${names[0]}" (kubectl edit identitypolicy ${names[0]})`
        : `add to spec.rules of one of the IdentityPolicies ${names
            .slice(0, 5)
            .map((n) => `"${n}"`)
            .join(', ')}${names.length > 5 ? ', …' : ''}`;
  return `to allow it, ${where} the rule ${rule}; check first with: lanyard doctor --policy-preview <file> (docs/verified-start.md)`;
}

function applicableRules(set: PolicySet, subject: PolicySubject): CompiledRule[] {
  const labels = { ...(subject.namespaceLabels ?? {}), 'kubernetes.io/metadata.name': subject.namespace };
  const out: CompiledRule[] = [];
  for (const p of set.policies) {
    if (!p.accepted) continue;
    for (const r of p.rules) {
      if (!selectorMatches(r, labels)) continue;
      if (!r.serviceAccounts.some((g) => g.matches(subject.serviceAccount))) continue;
      out.push(r);
    }
  }
  return out;
}

/**
 * The decision (docs/verified-start.md#identitypolicy): allowed when some rule of some accepted policy selects the namespace, matches the
 * ServiceAccount and matches the role; with a target role both must be allowed (each by any rule). No policy
 * objects: everything allowed. Unknown role: allowed when some rule matches namespace and ServiceAccount.
 */
export function decidePolicy(set: PolicySet, subject: PolicySubject): PolicyDecision {
  if (!set.present) return { allowed: true, reason: 'no_policies' };
  const rules = applicableRules(set, subject);
  const roles = [subject.roleARN, subject.targetRoleARN].filter(
    (r): r is string => r !== undefined && r !== '',
  );
  if (roles.length === 0) {
    return rules.length > 0
      ? { allowed: true, reason: 'allowed' }
      : {
          allowed: false,
          message: policyDeniedMessage(subject.namespace, subject.serviceAccount, undefined),
          fix: allowRuleFix(set, subject.namespace, subject.serviceAccount, undefined),
        };
  }
  for (const role of roles) {
    // No IAM role ARN is longer: refusing first keeps a decision's work bounded whatever a Pod or source carries.
    if (role.length > ROLE_ARN_MAX) {
      return {
        allowed: false,
        deniedRole: truncate(role),
        message:
          `lanyard: role "${truncate(role)}" of namespace "${subject.namespace}" ` +
          `ServiceAccount "${subject.serviceAccount}" is ${role.length} characters; an IAM role ARN has at most ${ROLE_ARN_MAX}`,
      };
    }
    if (!rules.some((r) => r.roles.some((g) => g.matches(role)))) {
      return {
        allowed: false,
        message: policyDeniedMessage(subject.namespace, subject.serviceAccount, role),
        deniedRole: truncate(role),
        fix: allowRuleFix(set, subject.namespace, subject.serviceAccount, role),
      };
    }
  }
  return { allowed: true, reason: 'allowed' };
}

/** The `Accepted` condition the controller writes on a policy's status. */
export function acceptedCondition(p: CompiledPolicy): {
  type: 'Accepted';
  status: 'True' | 'False';
  reason: string;
  message: string;
  observedGeneration: number;
} {
  return p.accepted
    ? {
        type: 'Accepted',
        status: 'True',
        reason: 'Accepted',
        message: `${p.rules.length} rule(s) in force`,
        observedGeneration: p.generation,
      }
    : {
        type: 'Accepted',
        status: 'False',
        reason: 'InvalidPattern',
        message: `${p.invalidMessage}; the policy is ignored`,
        observedGeneration: p.generation,
      };
}
