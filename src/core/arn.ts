// Role and assumed-role ARN parsing and the one comparison rule shared by the verifier and `lanyard verify`
// (docs/verified-start.md, "Role ARNs"). Pure; in src/core/ so the identity core can use it without importing aws/.

export interface RoleArn {
  partition: string;
  account: string;
  /** "/" for no path, else "/a/b/". */
  path: string;
  name: string;
}

export interface AssumedRoleArn {
  partition: string;
  account: string;
  roleName: string;
  sessionName: string;
}

/** IAM's limits (docs/verified-start.md, "Role ARNs"): a role name is 1-64 of [\w+=,.@-], a path 1-512 characters. */
export const ROLE_NAME_MAX = 64;
export const ROLE_PATH_MAX = 512;
const PARTITION_MAX = 20;
/** `arn:` partition `:iam::` account `:role` path name, each at its maximum. */
export const ROLE_ARN_MAX = 4 + PARTITION_MAX + 6 + 12 + 5 + ROLE_PATH_MAX + ROLE_NAME_MAX;
/** Role and session names are at most 64 each. */
const ASSUMED_ARN_MAX = 4 + PARTITION_MAX + 6 + 12 + 14 + ROLE_NAME_MAX + 1 + 64;

// Applied only to values already known to be short; each has one way to match, so it is linear anyway.
const ROLE_RE = /^arn:([a-z][a-z0-9-]*):iam::([0-9]{12}):role(\/(?:[\x21-\x2e\x30-\x7e]+\/)*)([\w+=,.@-]+)$/;
const ASSUMED_RE = /^arn:([a-z][a-z0-9-]*):sts::([0-9]{12}):assumed-role\/([\w+=,.@-]+)\/([\w+=,.@-]+)$/;

export const ROLE_ARN_GRAMMAR = 'arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME with a 12-digit ACCOUNT';

export type RoleArnCheck = { ok: true; arn: RoleArn } | { ok: false; rule: string };

/**
 * The one check for a role ARN wherever it enters (ServiceAccount annotation, kOps ConfigMap, container env,
 * associations): IAM's grammar and limits. The length is checked before anything else, so the work is bounded by
 * ROLE_ARN_MAX whatever the input. `rule` says what is wrong without echoing the value.
 */
export function checkRoleArn(value: unknown): RoleArnCheck {
  if (typeof value !== 'string') return { ok: false, rule: 'must be a string' };
  if (value.length > ROLE_ARN_MAX) {
    return {
      ok: false,
      rule: `is ${value.length} characters; an IAM role ARN has at most ${ROLE_ARN_MAX} (name ${ROLE_NAME_MAX}, path ${ROLE_PATH_MAX})`,
    };
  }
  const m = ROLE_RE.exec(value);
  if (!m) {
    const name = value.slice(value.lastIndexOf('/') + 1);
    if (/^arn:[a-z][a-z0-9-]*:iam::[0-9]{12}:role\//.test(value) && name.length > ROLE_NAME_MAX) {
      return {
        ok: false,
        rule: `role name is ${name.length} characters; IAM allows at most ${ROLE_NAME_MAX}`,
      };
    }
    return {
      ok: false,
      rule: `must be an IAM role ARN ${ROLE_ARN_GRAMMAR}; NAME is 1-${ROLE_NAME_MAX} of letters, digits and +=,.@_-`,
    };
  }
  const [, partition, account, path, name] = m as unknown as [string, string, string, string, string];
  if (partition.length > PARTITION_MAX)
    return { ok: false, rule: `partition is ${partition.length} characters; at most ${PARTITION_MAX}` };
  if (name.length > ROLE_NAME_MAX)
    return { ok: false, rule: `role name is ${name.length} characters; IAM allows at most ${ROLE_NAME_MAX}` };
  if (path.length > ROLE_PATH_MAX)
    return { ok: false, rule: `role path is ${path.length} characters; IAM allows at most ${ROLE_PATH_MAX}` };
  return { ok: true, arn: { partition, account, path, name } };
}

export function parseRoleArn(arn: string): RoleArn | undefined {
  const c = checkRoleArn(arn);
  return c.ok ? c.arn : undefined;
}

export function parseAssumedRoleArn(arn: string): AssumedRoleArn | undefined {
  if (arn.length > ASSUMED_ARN_MAX) return undefined;
  const m = ASSUMED_RE.exec(arn);
  if (!m) return undefined;
  return { partition: m[1]!, account: m[2]!, roleName: m[3]!, sessionName: m[4]! };
}

/** The role an expected value names: a role ARN, or an assumed-role ARN with its session ignored. */
function expectedRole(expected: string): { partition: string; account: string; name: string } | undefined {
  const r = parseRoleArn(expected);
  if (r) return r;
  const a = parseAssumedRoleArn(expected);
  return a ? { partition: a.partition, account: a.account, name: a.roleName } : undefined;
}

/**
 * Partitions and accounts equal and role names equal ignoring case; paths are not compared because assumed-role
 * ARNs never carry them. An actual value that is not an sts assumed-role ARN is a mismatch.
 */
export function roleArnMatches(expected: string, actual: string): boolean {
  const e = expectedRole(expected);
  const a = parseAssumedRoleArn(actual);
  if (!e || !a) return false;
  return (
    e.partition === a.partition &&
    e.account === a.account &&
    e.name.toLowerCase() === a.roleName.toLowerCase()
  );
}

/** `arn:<partition>:iam::<account>:role/<name>` from an assumed-role ARN (no path: STS does not report it). */
export function roleArnFromAssumed(actual: string): string | undefined {
  const a = parseAssumedRoleArn(actual);
  return a ? `arn:${a.partition}:iam::${a.account}:role/${a.roleName}` : undefined;
}
