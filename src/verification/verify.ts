// `lanyard verify` (docs/verified-start.md#lanyard-verify-in-a-job-or-init-container): inside a Pod, checks the identity the Pod actually got. The decision logic is
// pure over an injected "who am I" call, so the retry schedule and exit codes are table-tested.
import { EXIT } from '../cli/exit.ts';
import { parseAssumedRoleArn, parseRoleArn, roleArnMatches } from '../core/arn.ts';
import type { VerifyEnv } from '../config/verify.ts';
import type { Clock } from '../runtime/clock.ts';
import { errorMessage } from '../core/errors.ts';

export type VerifyMode = 'WebIdentity' | 'ContainerCredentials';

export interface Declared {
  mode?: VerifyMode;
  warnings: string[];
  /** Exit-2 message when no identity is declared. */
  problem?: string;
}

const PAIRS = {
  WebIdentity: ['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE'],
  ContainerCredentials: ['AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE'],
} as const;

export const NO_IDENTITY_MESSAGE =
  'no identity: neither AWS_ROLE_ARN+AWS_WEB_IDENTITY_TOKEN_FILE nor AWS_CONTAINER_CREDENTIALS_FULL_URI+AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is set';

/** Step 1: which identity the environment declares, as the SDK chain would pick it. */
export function declaredIdentity(env: VerifyEnv): Declared {
  const warnings: string[] = [];
  const full = (m: VerifyMode) => PAIRS[m].every((k) => env[k]);
  const half = (m: VerifyMode) => PAIRS[m].some((k) => env[k]) && !full(m);
  if (env.AWS_ACCESS_KEY_ID)
    warnings.push(
      'AWS_ACCESS_KEY_ID is set: the SDK credential chain uses static keys before any Pod identity',
    );
  let mode: VerifyMode | undefined;
  if (full('WebIdentity')) {
    mode = 'WebIdentity';
    if (full('ContainerCredentials'))
      warnings.push(
        'both web identity and container credentials are declared; the SDK chain prefers web identity',
      );
  } else if (full('ContainerCredentials')) mode = 'ContainerCredentials';
  if (mode) return { mode, warnings };
  const halves = (Object.keys(PAIRS) as VerifyMode[]).filter(half).map((m) => {
    const [a, b] = PAIRS[m];
    return env[a] ? `${a} is set but ${b} is not` : `${b} is set but ${a} is not`;
  });
  return {
    warnings,
    problem: halves.length ? `${NO_IDENTITY_MESSAGE} (${halves.join('; ')})` : NO_IDENTITY_MESSAGE,
  };
}

export interface VerifyOptions {
  env: VerifyEnv;
  expectedRole?: string;
  timeoutMs: number;
  intervalMs: number;
  attemptTimeoutMs: number;
  clock: Clock;
  /** One attempt: a fresh default credential chain and one STS GetCallerIdentity. */
  callerArn: (attemptTimeoutMs: number) => Promise<string>;
}

export interface VerifyResult {
  result: 'verified' | 'mismatch' | 'no_identity' | 'error';
  /** 0 verified, 20 another role, 21 no identity declared, 2 usage error, 6 timed out on errors (src/cli/exit.ts). */
  exitCode: number;
  mode?: VerifyMode;
  expected?: string;
  actual?: string;
  attempts: number;
  elapsedSeconds: number;
  error?: string;
  /** The one-line text form (stderr). */
  message: string;
  warnings: string[];
}

const FIRST_DELAY_MS = 250;

function errorText(e: unknown): string {
  if (e && typeof e === 'object') {
    const o = e as { code?: unknown; name?: unknown; message?: unknown };
    const code = typeof o.code === 'string' ? o.code : typeof o.name === 'string' ? o.name : 'Error';
    return `${code}: ${String(o.message ?? '')}`;
  }
  return errorMessage(e);
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10}s`;
}

// A wall-clock timer, not the injected clock: it bounds real I/O.
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            Object.assign(new Error(`attempt timed out after ${seconds(ms)}`), { code: 'TimeoutError' }),
          ),
        ms,
      );
    }),
  ]);
}

/**
 * Where the caller's credentials came from, when the ARN or the environment says (`aws sts get-caller-identity`
 * names only the ARN): static keys come first in every SDK chain; an assumed-role session named like an EC2
 * instance id is an instance profile, on a node the node's role.
 */
export function callerSource(env: VerifyEnv, arn: string): string | undefined {
  if (env.AWS_ACCESS_KEY_ID)
    return 'static keys from AWS_ACCESS_KEY_ID, which the SDK credential chain uses first';
  const a = parseAssumedRoleArn(arn);
  if (a && /^i-[0-9a-f]{8,17}$/.test(a.sessionName))
    return "an EC2 instance role: on a node, the node's role from instance metadata";
  return undefined;
}

const withSource = (env: VerifyEnv, arn: string) => {
  const why = callerSource(env, arn);
  return why ? `${arn} (${why})` : arn;
};

/** What every result of one run shares, and how long the run has taken. */
interface Run {
  o: VerifyOptions;
  start: number;
  base: { attempts: number; warnings: string[] };
  elapsed: () => number;
}

export async function runVerify(o: VerifyOptions): Promise<VerifyResult> {
  const start = o.clock.now();
  const declared = declaredIdentity(o.env);
  const run: Run = {
    o,
    start,
    base: { attempts: 0, warnings: declared.warnings },
    elapsed: () => (o.clock.now() - start) / 1000,
  };
  if (!declared.mode) return noIdentity(run, declared.problem!);
  const mode = declared.mode;
  // The webhook injects LANYARD_EXPECTED_ROLE next to container credentials whose role it knows (an association);
  // web identity names its role in AWS_ROLE_ARN (docs/adr/0921-verify-expected-role.md).
  const expected =
    o.expectedRole ??
    o.env.LANYARD_EXPECTED_ROLE ??
    (mode === 'WebIdentity' ? o.env.AWS_ROLE_ARN : undefined);
  if (expected !== undefined && !parseRoleArn(expected) && !parseAssumedRoleArn(expected))
    return invalidExpected(run, mode, expected);
  return exchangeUntilDecided(run, mode, expected);
}

/** Nothing declared: still say who the caller is, as `aws sts get-caller-identity` would (docs/adr/0921-verify-expected-role.md). */
async function noIdentity(run: Run, problem: string): Promise<VerifyResult> {
  const { o } = run;
  let caller: { actual?: string; error?: string };
  try {
    caller = { actual: await withTimeout(o.callerArn(o.attemptTimeoutMs), o.attemptTimeoutMs) };
  } catch (e) {
    caller = { error: errorText(e) };
  }
  const message = `${problem}; ${
    caller.actual !== undefined
      ? `the caller is ${withSource(o.env, caller.actual)}`
      : `no AWS credentials were found either (${caller.error})`
  }`;
  return {
    ...run.base,
    attempts: 1,
    result: 'no_identity',
    exitCode: EXIT.noIdentity,
    actual: caller.actual,
    elapsedSeconds: run.elapsed(),
    message,
    error: problem,
  };
}

function invalidExpected(run: Run, mode: VerifyMode, expected: string): VerifyResult {
  const { o } = run;
  const from =
    o.expectedRole !== undefined
      ? '--expected-role'
      : o.env.LANYARD_EXPECTED_ROLE !== undefined
        ? 'LANYARD_EXPECTED_ROLE'
        : 'AWS_ROLE_ARN';
  const msg = `usage: ${from} "${expected}" is neither a role ARN (arn:<partition>:iam::<account>:role/<name>) nor an assumed-role ARN`;
  return {
    ...run.base,
    result: 'error',
    exitCode: EXIT.usage,
    mode,
    expected,
    elapsedSeconds: run.elapsed(),
    message: msg,
    error: msg,
  };
}

/** Asks who the caller is, with backoff, until the answer decides or the time is up. */
async function exchangeUntilDecided(
  run: Run,
  mode: VerifyMode,
  expected: string | undefined,
): Promise<VerifyResult> {
  const { o } = run;
  let attempts = 0;
  let delay = FIRST_DELAY_MS;
  let last: { actual?: string; error?: string } = {};
  for (;;) {
    attempts += 1;
    try {
      const actual = await withTimeout(o.callerArn(o.attemptTimeoutMs), o.attemptTimeoutMs);
      last = { actual };
      const decided = verdict(run, mode, expected, actual, attempts);
      if (decided) return decided;
    } catch (e) {
      last = { error: errorText(e) };
    }
    const spent = o.clock.now() - run.start;
    if (spent + delay > o.timeoutMs) break;
    await o.clock.sleep(delay);
    delay = Math.min(delay * 2, o.intervalMs);
  }
  const common = { ...run.base, attempts, mode, expected, elapsedSeconds: run.elapsed() };
  if (last.actual !== undefined) {
    return {
      ...common,
      result: 'mismatch',
      exitCode: EXIT.identityMismatch,
      actual: last.actual,
      message: `mismatch: expected ${expected}, actual ${withSource(o.env, last.actual)}`,
    };
  }
  const msg = `timeout after ${seconds(o.timeoutMs)}: ${last.error}`;
  return { ...common, result: 'error', exitCode: EXIT.timedOut, error: last.error, message: msg };
}

/** What one answer decides; undefined while another role answers (the association may not be visible yet). */
function verdict(
  run: Run,
  mode: VerifyMode,
  expected: string | undefined,
  actual: string,
  attempts: number,
): VerifyResult | undefined {
  const { o } = run;
  const took = () => `${attempts} attempt${attempts === 1 ? '' : 's'}, ${seconds(o.clock.now() - run.start)}`;
  // Container credentials whose role nobody declared (identities file, ACK roleRef): the exchange itself is the proof,
  // as for the verifier (docs/verified-start.md#how-it-works), unless static keys would be used instead.
  const answered = { ...run.base, attempts, mode, actual, elapsedSeconds: run.elapsed() };
  const verified = (message: string): VerifyResult => ({
    ...answered,
    result: 'verified',
    exitCode: 0,
    message,
  });
  if (expected === undefined) {
    if (o.env.AWS_ACCESS_KEY_ID) {
      return {
        ...answered,
        result: 'mismatch',
        exitCode: EXIT.identityMismatch,
        message: `mismatch: expected the container credentials' role, actual ${withSource(o.env, actual)}`,
      };
    }
    return verified(
      `verified: ${mode} ${actual}; no role was declared (no LANYARD_EXPECTED_ROLE or --expected-role), so any role the exchange returns is accepted (${took()})`,
    );
  }
  if (!roleArnMatches(expected, actual)) return undefined;
  return { ...verified(`verified: ${mode} ${actual} matches ${expected} (${took()})`), expected };
}

/** The `-o json` document (no credentials, no tokens: only ARNs and error text). */
export function verifyJson(r: VerifyResult): Record<string, unknown> {
  return {
    result: r.result,
    mode: r.mode ?? null,
    expected: r.expected ?? null,
    actual: r.actual ?? null,
    attempts: r.attempts,
    elapsedSeconds: Math.round(r.elapsedSeconds * 1000) / 1000,
    error: r.error ?? null,
  };
}
