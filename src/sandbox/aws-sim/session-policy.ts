// The inline session policy of a pod identity association, checked as EKS checks it on Create and Update
// (docs/aws-simulator.md): at most 2048 characters from the range IAM accepts, a JSON object, and an identity-policy
// grammar (Effect, Action or NotAction, Resource or NotResource, no Principal). Pure; the caller turns a refusal into
// EKS's InvalidParameterException.

/** EKS documents the session policy as up to 2,048 characters (the limit of an STS inline session policy). */
const SESSION_POLICY_MAX = 2048;

// Tab, line feed, carriage return and U+0020–U+00FF, as STS documents for session policies.
const ALLOWED_CHARS = /^[\t\n\r\u0020-\u00ff]*$/;
const VERSIONS = new Set(['2012-10-17', '2008-10-17']);
const STATEMENT_KEYS = new Set([
  'Sid',
  'Effect',
  'Action',
  'NotAction',
  'Resource',
  'NotResource',
  'Condition',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isStringOrList = (v: unknown): boolean =>
  typeof v === 'string' ||
  (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string' && x !== ''));

/** Undefined when EKS would accept the document; else the reason, as EKS words a refused policy. */
export function sessionPolicyProblem(doc: string): string | undefined {
  if (doc.length > SESSION_POLICY_MAX)
    return `policy must be at most ${SESSION_POLICY_MAX} characters long (got ${doc.length})`;
  if (!ALLOWED_CHARS.test(doc))
    return 'policy contains characters outside the range IAM accepts (tab, line feed, carriage return, U+0020-U+00FF)';
  let raw: unknown;
  try {
    raw = JSON.parse(doc);
  } catch {
    return 'policy is not valid JSON';
  }
  if (!isObject(raw)) return 'policy must be a JSON object with a Statement';
  if (raw.Version !== undefined && !VERSIONS.has(raw.Version as string))
    return `policy has an unsupported Version ${JSON.stringify(raw.Version)}`;
  const statements = Array.isArray(raw.Statement)
    ? raw.Statement
    : isObject(raw.Statement)
      ? [raw.Statement]
      : [];
  if (statements.length === 0) return 'policy has no Statement';
  for (const [i, st] of statements.entries()) {
    const where = `Statement[${i}]`;
    if (!isObject(st)) return `policy ${where} is not an object`;
    if ('Principal' in st || 'NotPrincipal' in st)
      return `policy ${where}: a session policy must not specify a Principal`;
    const unknown = Object.keys(st).find((k) => !STATEMENT_KEYS.has(k));
    if (unknown) return `policy ${where} has an unknown element ${unknown}`;
    if (st.Effect !== 'Allow' && st.Effect !== 'Deny') return `policy ${where} needs Effect Allow or Deny`;
    if ('Action' in st === 'NotAction' in st)
      return `policy ${where} needs exactly one of Action and NotAction`;
    if (!isStringOrList(st.Action ?? st.NotAction)) return `policy ${where} has a malformed Action`;
    if ('Resource' in st === 'NotResource' in st)
      return `policy ${where} needs exactly one of Resource and NotResource`;
    if (!isStringOrList(st.Resource ?? st.NotResource)) return `policy ${where} has a malformed Resource`;
    if (st.Condition !== undefined && !isObject(st.Condition))
      return `policy ${where} has a malformed Condition`;
  }
  return undefined;
}
