// Token redaction (docs/projects-and-tokens.md#4-mint-a-token): every output but the one at creation replaces the token with a fixed marker.
import type { Secret } from 'kubernetes-types/core/v1.js';

export const REDACTED = 'lanyard:redacted';
export const REDACTED_BASE64 = Buffer.from(REDACTED).toString('base64');
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** A copy of a token Secret safe to print: data.token and the last-applied annotation replaced. */
export function redactTokenSecret<T extends Secret>(secret: T): T {
  const out = structuredClone(secret);
  if (out.data && 'token' in out.data) out.data.token = REDACTED_BASE64;
  if (out.stringData && 'token' in out.stringData) out.stringData.token = REDACTED;
  if (out.metadata?.annotations && LAST_APPLIED in out.metadata.annotations) {
    out.metadata.annotations[LAST_APPLIED] = REDACTED;
  }
  return out;
}
