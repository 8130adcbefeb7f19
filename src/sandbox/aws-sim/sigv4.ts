// SigV4 header-auth verification for the simulator (docs/aws-simulator.md): scope, signed headers, payload hash and a
// 5-minute skew, computed independently of the SDK signer so the hand-signed eks-auth call is really checked. Pure.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface SignedRequest {
  method: string;
  /** Raw path as received (still percent-encoded), without the query. */
  path: string;
  /** Raw query string without "?", "" when none. */
  query: string;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface KeyLookup {
  (accessKeyId: string): { secretAccessKey: string; sessionToken?: string } | undefined;
}

export type SigV4Result =
  | { ok: true; accessKeyId: string; service: string; region: string }
  | {
      ok: false;
      kind: 'missing' | 'incomplete' | 'unknownKey' | 'badToken' | 'expired' | 'mismatch';
      message: string;
      service?: string;
    };

const MAX_SKEW_MS = 5 * 60_000;

const sha256hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** RFC 3986 escaping as SigV4 defines it. */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}

/** Non-S3 services escape each already-encoded path segment once more. */
function canonicalPath(rawPath: string): string {
  if (rawPath === '' || rawPath === '/') return '/';
  return rawPath
    .split('/')
    .map((seg) => escapeUri(seg))
    .join('/');
}

export function canonicalQuery(rawQuery: string): string {
  if (!rawQuery) return '';
  return rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const k = i < 0 ? p : p.slice(0, i);
      const v = i < 0 ? '' : p.slice(i + 1);
      return [escapeUri(safeDecode(k)), escapeUri(safeDecode(v))] as const;
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function headerValue(h: SignedRequest['headers'], name: string): string | undefined {
  const v = h[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

const AUTH_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;_.-]+),\s*Signature=([0-9a-f]{64})$/;

/** Parses the credential scope only: used to route before verifying. */
export function credentialScope(
  authorization: string | undefined,
): { accessKeyId: string; region: string; service: string } | undefined {
  const m = authorization ? AUTH_RE.exec(authorization.trim()) : null;
  return m ? { accessKeyId: m[1]!, region: m[3]!, service: m[4]! } : undefined;
}

function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  return Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
}

export function verifySigV4(req: SignedRequest, lookup: KeyLookup, nowMs: number): SigV4Result {
  const authorization = headerValue(req.headers, 'authorization');
  if (!authorization)
    return { ok: false, kind: 'missing', message: 'Request is missing Authentication Token' };
  const m = AUTH_RE.exec(authorization.trim());
  if (!m)
    return {
      ok: false,
      kind: 'incomplete',
      message: 'Authorization header requires Credential, SignedHeaders and Signature (AWS4-HMAC-SHA256)',
    };
  const [, accessKeyId, scopeDate, region, service, signedHeadersRaw, signature] =
    m as unknown as string[] as [string, string, string, string, string, string, string];
  const amzDate = headerValue(req.headers, 'x-amz-date');
  if (!amzDate)
    return {
      ok: false,
      kind: 'incomplete',
      message: 'Authorization header requires existence of either a X-Amz-Date or a Date header',
      service,
    };
  const at = parseAmzDate(amzDate);
  if (at === undefined)
    return {
      ok: false,
      kind: 'incomplete',
      message: `X-Amz-Date ${amzDate} is not in the form YYYYMMDDTHHMMSSZ`,
      service,
    };
  if (amzDate.slice(0, 8) !== scopeDate) {
    return {
      ok: false,
      kind: 'mismatch',
      message: `Credential scope date ${scopeDate} does not match X-Amz-Date ${amzDate}`,
      service,
    };
  }
  if (Math.abs(nowMs - at) > MAX_SKEW_MS) {
    return {
      ok: false,
      kind: 'expired',
      message: `Signature expired: ${amzDate} is not within 5 minutes of the server time`,
      service,
    };
  }
  const signedHeaders = signedHeadersRaw.split(';');
  const sorted = [...signedHeaders].sort();
  if (sorted.join(';') !== signedHeadersRaw)
    return { ok: false, kind: 'incomplete', message: 'SignedHeaders must be sorted and lower-case', service };
  for (const required of ['host', 'x-amz-date']) {
    if (!signedHeaders.includes(required))
      return { ok: false, kind: 'incomplete', message: `'${required}' must be a signed header`, service };
  }
  if (
    headerValue(req.headers, 'x-amz-security-token') !== undefined &&
    !signedHeaders.includes('x-amz-security-token')
  ) {
    return {
      ok: false,
      kind: 'incomplete',
      message: "'x-amz-security-token' must be a signed header",
      service,
    };
  }
  const lines: string[] = [];
  for (const name of signedHeaders) {
    const v = headerValue(req.headers, name);
    if (v === undefined)
      return {
        ok: false,
        kind: 'incomplete',
        message: `signed header '${name}' is missing from the request`,
        service,
      };
    lines.push(`${name}:${v.trim().replace(/\s+/g, ' ')}`);
  }
  const payloadHash = sha256hex(req.body);
  const declared = headerValue(req.headers, 'x-amz-content-sha256');
  if (declared !== undefined && declared !== payloadHash) {
    return {
      ok: false,
      kind: 'mismatch',
      message: 'The provided x-amz-content-sha256 header does not match what was computed',
      service,
    };
  }
  const key = lookup(accessKeyId);
  if (!key)
    return {
      ok: false,
      kind: 'unknownKey',
      message: 'The security token included in the request is invalid.',
      service,
    };
  if (
    key.sessionToken !== undefined &&
    headerValue(req.headers, 'x-amz-security-token') !== key.sessionToken
  ) {
    return {
      ok: false,
      kind: 'badToken',
      message: 'The security token included in the request is invalid.',
      service,
    };
  }
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalPath(req.path),
    canonicalQuery(req.query),
    lines.join('\n') + '\n',
    signedHeadersRaw,
    payloadHash,
  ].join('\n');
  const scope = `${scopeDate}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  const expected = createHmac('sha256', signingKey(key.secretAccessKey, scopeDate, region, service))
    .update(stringToSign)
    .digest();
  const given = Buffer.from(signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return {
      ok: false,
      kind: 'mismatch',
      message:
        'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
      service,
    };
  }
  return { ok: true, accessKeyId, service, region };
}
