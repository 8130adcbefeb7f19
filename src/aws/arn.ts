// Role and assumed-role ARN parsing and the one comparison rule shared by the verifier and `lanyard verify`
// (verification.md §6). Pure.

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

const ROLE_RE = /^arn:([a-z][a-z0-9-]*):iam::([0-9]{12}):role(\/(?:[^/]+\/)*)?([\w+=,.@-]+)$/;
const ASSUMED_RE = /^arn:([a-z][a-z0-9-]*):sts::([0-9]{12}):assumed-role\/([\w+=,.@-]+)\/([\w+=,.@-]+)$/;

export function parseRoleArn(arn: string): RoleArn | undefined {
  const m = ROLE_RE.exec(arn);
  if (!m) return undefined;
  return { partition: m[1]!, account: m[2]!, path: m[3] ?? '/', name: m[4]! };
}

export function parseAssumedRoleArn(arn: string): AssumedRoleArn | undefined {
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
