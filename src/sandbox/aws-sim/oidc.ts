// Kubernetes service-account token verification as EKS and STS do it: discovery document, then JWKS, fetched over
// https trusting the registered CA bundle; keys cached 5 minutes and refetched on an unknown kid.
import http from 'node:http';
import https from 'node:https';
import {
  createLocalJWKSet,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
} from 'jose';
import { errorMessage } from '../../core/errors.ts';

const TOKEN_FORMAT = /^[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+\.[A-Za-z0-9-_=]+$/;
const CACHE_MS = 5 * 60_000;

export class TokenError extends Error {
  constructor(
    readonly kind: 'malformed' | 'expired' | 'invalid' | 'fetch',
    message: string,
  ) {
    super(message);
  }
}

function getJson(url: string, ca: string | undefined): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(
      u,
      {
        ...(ca ? { ca } : {}),
        timeout: 5000,
        headers: { accept: 'application/json, application/jwk-set+json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch {
            reject(new Error(`GET ${url}: not JSON`));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timeout`)));
    req.on('error', reject);
  });
}

/** Claims without verification, for routing (which issuer, which provider) before the real check. */
export function peekClaims(token: string): JWTPayload {
  if (!TOKEN_FORMAT.test(token)) throw new TokenError('malformed', 'The token is not a well-formed JWT');
  try {
    return decodeJwt(token);
  } catch {
    throw new TokenError('malformed', 'The token is not a well-formed JWT');
  }
}

export class OidcVerifier {
  private readonly cas = new Map<string, string>();
  private readonly cache = new Map<string, { at: number; keys: Promise<JSONWebKeySet> }>();

  trust(issuer: string, caBundle: string | undefined): void {
    if (caBundle) this.cas.set(issuer, caBundle);
    this.cache.delete(issuer);
  }

  reset(): void {
    this.cas.clear();
    this.cache.clear();
  }

  private keys(issuer: string, fresh: boolean): Promise<JSONWebKeySet> {
    const hit = this.cache.get(issuer);
    if (hit && !fresh && Date.now() - hit.at < CACHE_MS) return hit.keys;
    const ca = this.cas.get(issuer);
    const keys = (async () => {
      const discovery = (await getJson(
        `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
        ca,
      )) as { jwks_uri?: string; issuer?: string };
      if (!discovery.jwks_uri) throw new Error('discovery document has no jwks_uri');
      return (await getJson(discovery.jwks_uri, ca)) as JSONWebKeySet;
    })();
    this.cache.set(issuer, { at: Date.now(), keys });
    keys.catch(() => this.cache.delete(issuer));
    return keys;
  }

  /** Verifies signature, iss, aud (any of), exp and nbf. */
  async verify(token: string, issuer: string, audiences: string[]): Promise<JWTPayload> {
    peekClaims(token);
    for (const fresh of [false, true]) {
      let jwks: JSONWebKeySet;
      try {
        jwks = await this.keys(issuer, fresh);
      } catch (e) {
        throw new TokenError(
          'fetch',
          `Couldn't retrieve verification key from your identity provider: ${errorMessage(e)}`,
        );
      }
      try {
        const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer, audience: audiences });
        return payload;
      } catch (e) {
        if (e instanceof joseErrors.JWKSNoMatchingKey && !fresh) continue;
        if (e instanceof joseErrors.JWTExpired) throw new TokenError('expired', 'Token expired');
        if (e instanceof joseErrors.JWTClaimValidationFailed)
          throw new TokenError('invalid', `Token claim "${e.claim}" is invalid: ${e.reason}`);
        throw new TokenError('invalid', 'Token signature could not be verified');
      }
    }
    throw new TokenError('invalid', 'Token signature could not be verified');
  }
}
