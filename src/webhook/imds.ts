// `--compose-role-arn` (docs/migrate-from-pod-identity-webhook.md#flags): account and region from EC2 instance metadata, once at startup.
// Plain HTTP to IMDSv2 (token, then the identity document); 5 s per try, 3 tries, then the caller exits 1.
import { partitionForRegion, type RoleComposition } from '../identity/annotations.ts';
import { errorMessage } from '../core/errors.ts';

export const IMDS_ENDPOINT = 'http://169.254.169.254';

export async function fetchRoleComposition(
  opts: { endpoint?: string; fetchImpl?: typeof fetch; tries?: number; timeoutMs?: number } = {},
): Promise<RoleComposition & { region: string }> {
  const endpoint = opts.endpoint ?? IMDS_ENDPOINT;
  const f = opts.fetchImpl ?? fetch;
  let last: unknown;
  for (let i = 0; i < (opts.tries ?? 3); i++) {
    try {
      const signal = AbortSignal.timeout(opts.timeoutMs ?? 5000);
      const tokenRes = await f(`${endpoint}/latest/api/token`, {
        method: 'PUT',
        headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
        signal,
      });
      if (!tokenRes.ok) throw new Error(`IMDS token: HTTP ${tokenRes.status}`);
      const token = await tokenRes.text();
      const docRes = await f(`${endpoint}/latest/dynamic/instance-identity/document`, {
        headers: { 'x-aws-ec2-metadata-token': token },
        signal,
      });
      if (!docRes.ok) throw new Error(`IMDS identity document: HTTP ${docRes.status}`);
      const doc = (await docRes.json()) as { accountId?: unknown; region?: unknown };
      if (typeof doc.accountId !== 'string' || typeof doc.region !== 'string')
        throw new Error('IMDS identity document lacks accountId or region');
      return { accountId: doc.accountId, region: doc.region, partition: partitionForRegion(doc.region) };
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`--compose-role-arn: cannot read instance metadata: ${errorMessage(last)}`);
}
