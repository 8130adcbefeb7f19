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

type Failure = Extract<SigV4Result, { ok: false }>;

function fail(kind: Failure['kind'], message: string, service?: string): Failure {
  return service === undefined ? { ok: false, kind, message } : { ok: false, kind, message, service };
}

/** The Authorization header's parts: credential scope, signed headers and signature. */
interface Authorization {
  accessKeyId: string;
  scopeDate: string;
  region: string;
  service: string;
  signedHeadersRaw: string;
  signature: string;
}

function parseAuthorization(req: SignedRequest): Authorization | Failure {
  const authorization = headerValue(req.headers, 'authorization');
  if (!authorization) return fail('missing', 'Request is missing Authentication Token');
  const m = AUTH_RE.exec(authorization.trim());
  if (!m)
    return fail(
      'incomplete',
      'Authorization header requires Credential, SignedHeaders and Signature (AWS4-HMAC-SHA256)',
    );
  const [, accessKeyId, scopeDate, region, service, signedHeadersRaw, signature] =
    m as unknown as string[] as [string, string, string, string, string, string, string];
  return { accessKeyId, scopeDate, region, service, signedHeadersRaw, signature };
}

/** X-Amz-Date: present, well-formed, the scope's day, and within 5 minutes of the server's time. */
function checkDate(req: SignedRequest, a: Authorization, nowMs: number): string | Failure {
  const { service, scopeDate } = a;
  const amzDate = headerValue(req.headers, 'x-amz-date');
  if (!amzDate)
    return fail(
      'incomplete',
      'Authorization header requires existence of either a X-Amz-Date or a Date header',
      service,
    );
  const at = parseAmzDate(amzDate);
  if (at === undefined)
    return fail('incomplete', `X-Amz-Date ${amzDate} is not in the form YYYYMMDDTHHMMSSZ`, service);
  if (amzDate.slice(0, 8) !== scopeDate)
    return fail(
      'mismatch',
      `Credential scope date ${scopeDate} does not match X-Amz-Date ${amzDate}`,
      service,
    );
  if (Math.abs(nowMs - at) > MAX_SKEW_MS)
    return fail(
      'expired',
      `Signature expired: ${amzDate} is not within 5 minutes of the server time`,
      service,
    );
  return amzDate;
}

/** The canonical header lines, once the signed-header list is sorted, complete and names what must be signed. */
function canonicalHeaders(req: SignedRequest, a: Authorization): string[] | Failure {
  const { service, signedHeadersRaw } = a;
  const signedHeaders = signedHeadersRaw.split(';');
  if ([...signedHeaders].sort().join(';') !== signedHeadersRaw)
    return fail('incomplete', 'SignedHeaders must be sorted and lower-case', service);
  for (const required of ['host', 'x-amz-date']) {
    if (!signedHeaders.includes(required))
      return fail('incomplete', `'${required}' must be a signed header`, service);
  }
  if (
    headerValue(req.headers, 'x-amz-security-token') !== undefined &&
    !signedHeaders.includes('x-amz-security-token')
  )
    return fail('incomplete', "'x-amz-security-token' must be a signed header", service);
  const lines: string[] = [];
  for (const name of signedHeaders) {
    const v = headerValue(req.headers, name);
    if (v === undefined)
      return fail('incomplete', `signed header '${name}' is missing from the request`, service);
    lines.push(`${name}:${v.trim().replace(/\s+/g, ' ')}`);
  }
  return lines;
}

/** The signing key's secret, once the key is known and the session token sent is its own. */
function secretFor(req: SignedRequest, a: Authorization, lookup: KeyLookup): string | Failure {
  const key = lookup(a.accessKeyId);
  if (!key) return fail('unknownKey', 'The security token included in the request is invalid.', a.service);
  if (key.sessionToken !== undefined && headerValue(req.headers, 'x-amz-security-token') !== key.sessionToken)
    return fail('badToken', 'The security token included in the request is invalid.', a.service);
  return key.secretAccessKey;
}

/** The signature SigV4 computes for the request, compared in constant time with the one given. */
function signatureMatches(
  req: SignedRequest,
  a: Authorization,
  signed: { amzDate: string; lines: string[]; payloadHash: string; secret: string },
): boolean {
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalPath(req.path),
    canonicalQuery(req.query),
    signed.lines.join('\n') + '\n',
    a.signedHeadersRaw,
    signed.payloadHash,
  ].join('\n');
  const scope = `${a.scopeDate}/${a.region}/${a.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', signed.amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  const expected = createHmac('sha256', signingKey(signed.secret, a.scopeDate, a.region, a.service))
    .update(stringToSign)
    .digest();
  const given = Buffer.from(a.signature, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

const isFailure = (v: unknown): v is Failure =>
  typeof v === 'object' && v !== null && 'ok' in v && (v as Failure).ok === false;

export function verifySigV4(req: SignedRequest, lookup: KeyLookup, nowMs: number): SigV4Result {
  const a = parseAuthorization(req);
  if (isFailure(a)) return a;
  const amzDate = checkDate(req, a, nowMs);
  if (isFailure(amzDate)) return amzDate;
  const lines = canonicalHeaders(req, a);
  if (isFailure(lines)) return lines;
  const payloadHash = sha256hex(req.body);
  const declared = headerValue(req.headers, 'x-amz-content-sha256');
  if (declared !== undefined && declared !== payloadHash)
    return fail(
      'mismatch',
      'The provided x-amz-content-sha256 header does not match what was computed',
      a.service,
    );
  const secret = secretFor(req, a, lookup);
  if (isFailure(secret)) return secret;
  if (!signatureMatches(req, a, { amzDate, lines, payloadHash, secret }))
    return fail(
      'mismatch',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
      a.service,
    );
  return { ok: true, accessKeyId: a.accessKeyId, service: a.service, region: a.region };
}
