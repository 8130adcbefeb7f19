import { describe, expect, it } from 'vitest';
import { fetchRoleComposition } from './imds.ts';

function fakeImds(doc: object | undefined, failFirst = 0) {
  const calls: string[] = [];
  let failures = failFirst;
  const f = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push(`${init?.method ?? 'GET'} ${String(url)}`);
    if (failures > 0) {
      failures--;
      throw new Error('connect ETIMEDOUT');
    }
    if (String(url).endsWith('/latest/api/token')) return new Response('tok');
    if ((init?.headers as Record<string, string>)['x-aws-ec2-metadata-token'] !== 'tok')
      return new Response('', { status: 401 });
    return doc ? Response.json(doc) : new Response('', { status: 404 });
  }) as typeof fetch;
  return { f, calls };
}

describe('--compose-role-arn instance metadata (docs/migrate-from-pod-identity-webhook.md#flags)', () => {
  it('reads account and region with an IMDSv2 token and derives the partition', async () => {
    const { f, calls } = fakeImds({ accountId: '111122223333', region: 'cn-northwest-1' });
    expect(await fetchRoleComposition({ fetchImpl: f, endpoint: 'http://imds' })).toEqual({
      accountId: '111122223333',
      region: 'cn-northwest-1',
      partition: 'aws-cn',
    });
    expect(calls).toEqual([
      'PUT http://imds/latest/api/token',
      'GET http://imds/latest/dynamic/instance-identity/document',
    ]);
  });

  it('retries up to three times, then fails with a message naming the flag', async () => {
    const ok = fakeImds({ accountId: '1', region: 'us-east-1' }, 2);
    expect((await fetchRoleComposition({ fetchImpl: ok.f, endpoint: 'http://imds' })).partition).toBe('aws');
    const bad = fakeImds(undefined);
    await expect(fetchRoleComposition({ fetchImpl: bad.f, endpoint: 'http://imds' })).rejects.toThrow(
      /--compose-role-arn: .*HTTP 404/,
    );
    expect(bad.calls.filter((c) => c.startsWith('PUT'))).toHaveLength(3);
  });
});
