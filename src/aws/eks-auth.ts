// eks-auth AssumeRoleForPodIdentity has no SDK client among our dependencies, so the call is signed by hand
// (SigV4, service "eks-auth") and sent over node:http(s). The credentials in the answer are dropped here.
import http from 'node:http';
import https from 'node:https';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { AwsError, invalidResponse, isThrottling } from './errors.ts';
import type { Instrument } from './clients.ts';
import type { EksAuthApi, PodIdentityExchange } from './index.ts';
import { errorMessage } from '../core/errors.ts';
import { fullJitterDelay } from '../core/backoff.ts';
import { sleep } from '../runtime/clock.ts';

const OPERATION = 'AssumeRoleForPodIdentity';

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function send(
  url: URL,
  agent: http.Agent,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<RawResponse> {
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method: 'POST', headers, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () =>
      req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'TimeoutError' })),
    );
    req.on('error', reject);
    req.end(body);
  });
}

function errorFrom(res: RawResponse): AwsError {
  // restJson1: the code is in x-amzn-ErrorType ("Code:namespace" form possible), the message in the body.
  const header = String(res.headers['x-amzn-errortype'] ?? '');
  let parsed: { message?: string; Message?: string; __type?: string } = {};
  try {
    parsed = JSON.parse(res.body) as typeof parsed;
  } catch {
    // A non-JSON error body (a proxy) keeps its text as the message.
  }
  const code = (header.split(':')[0] || parsed.__type?.split('#').pop() || `Http${res.status}`).trim();
  const message = parsed.message ?? parsed.Message ?? res.body.slice(0, 200);
  const requestId =
    String(res.headers['x-amzn-requestid'] ?? res.headers['x-amz-request-id'] ?? '') || undefined;
  const retryable = isThrottling(code, res.status) || res.status >= 500;
  return new AwsError(message, code, res.status, retryable, 'eks-auth', OPERATION, requestId);
}

function parseExchange(body: string): PodIdentityExchange {
  const bad = () => invalidResponse('malformed AssumeRoleForPodIdentity response', 'eks-auth', OPERATION);
  let j: {
    subject?: { namespace?: string; serviceAccount?: string };
    podIdentityAssociation?: { associationId?: string; associationArn?: string };
    assumedRoleUser?: { arn?: string };
  };
  try {
    j = JSON.parse(body) as typeof j;
  } catch {
    throw bad();
  }
  // Pick the fields we return; `credentials` never leaves this function.
  const arn = j.assumedRoleUser?.arn;
  const ns = j.subject?.namespace;
  const sa = j.subject?.serviceAccount;
  if (!arn || !ns || !sa) throw bad();
  return {
    assumedRoleArn: arn,
    subject: { namespace: ns, serviceAccount: sa },
    associationId: j.podIdentityAssociation?.associationId ?? '',
    associationArn: j.podIdentityAssociation?.associationArn ?? '',
  };
}

export function createEksAuthClient(o: {
  region: string;
  endpoint: string | undefined;
  credentials: AwsCredentialIdentityProvider;
  maxAttempts: number;
  requestTimeoutMs: number;
  instrument: Instrument;
}): EksAuthApi & { destroy(): void } {
  const base = new URL(o.endpoint ?? `https://eks-auth.${o.region}.api.aws`);
  const agent =
    base.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  const signer = new SignatureV4({
    service: 'eks-auth',
    region: o.region,
    credentials: o.credentials,
    sha256: Sha256,
  });

  async function attempt(clusterName: string, token: string): Promise<PodIdentityExchange> {
    const path = `${base.pathname.replace(/\/$/, '')}/clusters/${encodeURIComponent(clusterName)}/assume-role-for-pod-identity`;
    const body = JSON.stringify({ token });
    const signed = await signer.sign({
      method: 'POST',
      protocol: base.protocol,
      hostname: base.hostname,
      ...(base.port ? { port: Number(base.port) } : {}),
      path,
      query: {},
      headers: {
        host: base.host,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
    const url = new URL(path, base);
    let res: RawResponse;
    try {
      res = await send(url, agent, signed.headers, body, o.requestTimeoutMs);
    } catch (e) {
      const code = (e as { code?: string }).code ?? 'NetworkError';
      throw new AwsError(errorMessage(e) || code, code, 0, true, 'eks-auth', OPERATION, undefined, {
        cause: e,
      });
    }
    if (res.status !== 200) throw errorFrom(res);
    return parseExchange(res.body);
  }

  return {
    assumeRoleForPodIdentity: ({ clusterName, token }) =>
      o.instrument('eks-auth', OPERATION, async () => {
        // Standard-mode retry: up to maxAttempts, full-jitter exponential backoff from 100 ms, capped at 20 s.
        for (let n = 1; ; n++) {
          try {
            return await attempt(clusterName, token);
          } catch (e) {
            if (!(e instanceof AwsError) || !e.retryable || n >= o.maxAttempts) throw e;
            await sleep(
              fullJitterDelay(n, { initialMs: 100, maxMs: 20_000 }) *
                (isThrottling(e.code, e.httpStatus) ? 5 : 1),
            );
          }
        }
      }),
    destroy: () => agent.destroy(),
  };
}
