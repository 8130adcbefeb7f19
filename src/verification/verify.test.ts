import { describe, expect, it } from 'vitest';
import { declaredIdentity, runVerify, verifyJson, NO_IDENTITY_MESSAGE } from './verify.ts';
import type { VerifyEnv } from '../config/verify.ts';

const WI: VerifyEnv = {
  AWS_ROLE_ARN: 'arn:aws:iam::111122223333:role/team-a/uploader',
  AWS_WEB_IDENTITY_TOKEN_FILE: '/t',
};
const CC: VerifyEnv = {
  AWS_CONTAINER_CREDENTIALS_FULL_URI: 'http://x',
  AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: '/t',
};
const OK = 'arn:aws:sts::111122223333:assumed-role/uploader/botocore-session-1';
const NODE = 'arn:aws:sts::111122223333:assumed-role/node-group-role/i-0abc12345def67890';

function fakeClock() {
  let now = 0;
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
  };
}
const run = (
  env: VerifyEnv,
  answers: Array<string | Error>,
  over: Partial<Parameters<typeof runVerify>[0]> = {},
) => {
  const clock = fakeClock();
  let i = 0;
  return runVerify({
    env,
    timeoutMs: 10_000,
    intervalMs: 2000,
    attemptTimeoutMs: 5000,
    clock,
    callerArn: async () => {
      const a = answers[Math.min(i++, answers.length - 1)]!;
      await clock.sleep(10);
      if (a instanceof Error) throw a;
      return a;
    },
    ...over,
  });
};

describe('declaredIdentity', () => {
  it('prefers web identity and warns when both are set', () => {
    expect(declaredIdentity({ ...WI, ...CC })).toMatchObject({
      mode: 'WebIdentity',
      warnings: [expect.stringContaining('prefers web identity')],
    });
  });
  it('warns about static keys', () => {
    expect(declaredIdentity({ ...CC, AWS_ACCESS_KEY_ID: 'AKIA' }).warnings[0]).toContain('AWS_ACCESS_KEY_ID');
  });
  it('names a half-set pair', () => {
    expect(declaredIdentity({ AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: '/t' }).problem).toBe(
      `${NO_IDENTITY_MESSAGE} (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE is set but AWS_CONTAINER_CREDENTIALS_FULL_URI is not)`,
    );
  });
});

describe('runVerify exit codes (docs/verified-start.md#lanyard-verify-in-a-job-or-init-container)', () => {
  it('0 on a match, pathed role included, first attempt', async () => {
    const r = await run(WI, [OK]);
    expect(r).toMatchObject({
      exitCode: 0,
      result: 'verified',
      attempts: 1,
      mode: 'WebIdentity',
      actual: OK,
    });
    expect(r.message).toMatch(
      /^verified: WebIdentity .* matches arn:aws:iam::111122223333:role\/team-a\/uploader \(1 attempt, /,
    );
  });
  it('retries a mismatch (propagation) and then matches', async () => {
    expect(
      await run(CC, [NODE, NODE, OK], { expectedRole: 'arn:aws:iam::111122223333:role/uploader' }),
    ).toMatchObject({ exitCode: 0, attempts: 3 });
  });
  it('1 when the last attempt returned another role', async () => {
    const r = await run(CC, [NODE], { expectedRole: 'arn:aws:iam::111122223333:role/uploader' });
    expect(r).toMatchObject({ exitCode: 20, result: 'mismatch' });
    expect(r.message).toMatch(
      new RegExp(`^mismatch: expected arn:aws:iam::111122223333:role/uploader, actual ${NODE}`),
    );
  });
  it('1 for app against app-admin (no substrings)', async () => {
    expect(
      (
        await run(CC, ['arn:aws:sts::111122223333:assumed-role/app-admin/s'], {
          expectedRole: 'arn:aws:iam::111122223333:role/app',
        })
      ).exitCode,
    ).toBe(20);
  });
  it('21 with no identity in the environment, naming the caller like aws sts get-caller-identity (docs/adr/0921-verify-expected-role.md)', async () => {
    const r = await run({}, [NODE]);
    expect(r).toMatchObject({ exitCode: 21, result: 'no_identity', attempts: 1, actual: NODE });
    expect(r.message).toBe(
      `${NO_IDENTITY_MESSAGE}; the caller is ${NODE} (an EC2 instance role: on a node, the node's role from instance metadata)`,
    );
    const keys = await run({ AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' }, ['arn:aws:iam::111122223333:user/ci']);
    expect(keys.message).toBe(
      `${NO_IDENTITY_MESSAGE}; the caller is arn:aws:iam::111122223333:user/ci (static keys from AWS_ACCESS_KEY_ID, which the SDK credential chain uses first)`,
    );
    expect(keys.message).not.toContain('AKIAEXAMPLE');
  });
  it('21 with no credentials at all says so with the SDK error, after one attempt', async () => {
    const r = await run({}, [
      Object.assign(new Error('Could not load credentials from any providers'), {
        name: 'CredentialsProviderError',
      }),
    ]);
    expect(r).toMatchObject({ exitCode: 21, attempts: 1, actual: undefined });
    expect(r.message).toBe(
      `${NO_IDENTITY_MESSAGE}; no AWS credentials were found either (CredentialsProviderError: Could not load credentials from any providers)`,
    );
  });
  it('0 for container credentials with no declared role: the exchange is the proof (identities file, ACK roleRef)', async () => {
    const r = await run(CC, [OK]);
    expect(r).toMatchObject({ exitCode: 0, result: 'verified', actual: OK });
    expect(r.expected).toBeUndefined();
    expect(r.message).toMatch(
      /^verified: ContainerCredentials arn:aws:sts::111122223333:assumed-role\/uploader\/botocore-session-1; no role was declared/,
    );
  });
  it('20 at once for container credentials with no declared role when static keys would be used instead', async () => {
    const r = await run({ ...CC, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' }, ['arn:aws:iam::111122223333:user/ci']);
    expect(r).toMatchObject({ exitCode: 20, result: 'mismatch', attempts: 1 });
    expect(r.message).toBe(
      "mismatch: expected the container credentials' role, actual arn:aws:iam::111122223333:user/ci (static keys from AWS_ACCESS_KEY_ID, which the SDK credential chain uses first)",
    );
  });
  it('a mismatch names where the caller came from when it can tell', async () => {
    const r = await run(CC, [NODE], { expectedRole: 'arn:aws:iam::111122223333:role/uploader' });
    expect(r.message).toBe(
      `mismatch: expected arn:aws:iam::111122223333:role/uploader, actual ${NODE} (an EC2 instance role: on a node, the node's role from instance metadata)`,
    );
  });
  it('2 (usage) for a malformed LANYARD_EXPECTED_ROLE, naming the variable', async () => {
    expect((await run({ ...CC, LANYARD_EXPECTED_ROLE: 'uploader' }, [OK])).message).toBe(
      'usage: LANYARD_EXPECTED_ROLE "uploader" is neither a role ARN (arn:<partition>:iam::<account>:role/<name>) nor an assumed-role ARN',
    );
  });
  it('2 (usage) for a malformed expected role', async () => {
    expect((await run(WI, [OK], { expectedRole: 'uploader' })).message).toContain('neither a role ARN');
  });
  it('6 (timed out) on errors until the timeout, with the last AWS code', async () => {
    const r = await run(
      CC,
      [Object.assign(new Error('Server responded with status: 404'), { code: 'CredentialsProviderError' })],
      { expectedRole: 'arn:aws:iam::111122223333:role/uploader', timeoutMs: 3000 },
    );
    expect(r).toMatchObject({ exitCode: 6, result: 'error' });
    expect(r.message).toBe('timeout after 3s: CredentialsProviderError: Server responded with status: 404');
    expect(r.attempts).toBeGreaterThan(2);
  });
  it('uses LANYARD_EXPECTED_ROLE, and the delay starts at 250 ms and is capped by --interval', async () => {
    const sleeps: number[] = [];
    const clock = fakeClock();
    const r = await runVerify({
      env: { ...CC, LANYARD_EXPECTED_ROLE: 'arn:aws:iam::111122223333:role/uploader' },
      timeoutMs: 5000,
      intervalMs: 1000,
      attemptTimeoutMs: 100,
      clock: {
        now: clock.now,
        sleep: async (ms) => {
          sleeps.push(ms);
          await clock.sleep(ms);
        },
      },
      callerArn: async () => NODE,
    });
    expect(r.exitCode).toBe(20);
    expect(sleeps.slice(0, 4)).toEqual([250, 500, 1000, 1000]);
  });
  it('json carries only the documented fields', async () => {
    expect(Object.keys(verifyJson(await run(WI, [OK])))).toEqual([
      'result',
      'mode',
      'expected',
      'actual',
      'attempts',
      'elapsedSeconds',
      'error',
    ]);
  });
});
