// AdmissionReview codec (docs/webhook.md#admission-answers): the wire contract, as pure functions over bytes and plain objects.

// Stateless when not streaming, so one instance serves every request.
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export const REVIEW_VERSIONS = new Set(['admission.k8s.io/v1', 'admission.k8s.io/v1beta1']);

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  code: number;
  reason: string;
  message: string;
}

export function statusError(code: number, reason: string, message: string): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', code, reason, message };
}

/** `application/json`, case-insensitive, with parameters; a charset other than UTF-8 is refused. */
export function contentTypeProblem(header: string | undefined): string | undefined {
  if (!header) return 'Content-Type must be application/json';
  const [type, ...params] = header.split(';');
  if (type!.trim().toLowerCase() !== 'application/json')
    return `Content-Type "${header}" is not application/json`;
  for (const p of params) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const k = p.slice(0, eq).trim().toLowerCase();
    const v = p
      .slice(eq + 1)
      .trim()
      .replace(/^"|"$/g, '')
      .toLowerCase();
    if (k === 'charset' && v !== 'utf-8' && v !== 'utf8')
      return `charset "${v}" is not supported; send UTF-8`;
  }
  return undefined;
}

/**
 * An AdmissionReview's `request` once decodeReview has checked it: an object with a non-empty `uid`. The rest (kind,
 * operation, object, oldObject, …) is read by src/identity/pod.ts, which checks every field it uses; kubernetes-types
 * has no admission.k8s.io types (AdmissionReview is not a served resource).
 */
export interface AdmissionRequest extends Record<string, unknown> {
  uid: string;
}

export type Decoded =
  { ok: true; apiVersion: string; request: AdmissionRequest } | { ok: false; message: string };

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parses and checks an AdmissionReview body; every failure is a 400 with this message. */
export function decodeReview(body: Buffer): Decoded {
  if (body.length === 0) return { ok: false, message: 'empty body: expected an AdmissionReview' };
  let doc: unknown;
  try {
    doc = JSON.parse(UTF8.decode(body));
  } catch (e) {
    return { ok: false, message: `invalid JSON: ${(e as Error).message}` };
  }
  if (!isObject(doc)) return { ok: false, message: 'body must be a JSON object (AdmissionReview)' };
  if (doc.kind !== 'AdmissionReview')
    return { ok: false, message: `kind must be AdmissionReview, got ${JSON.stringify(doc.kind ?? null)}` };
  const apiVersion = doc.apiVersion;
  if (typeof apiVersion !== 'string' || !REVIEW_VERSIONS.has(apiVersion))
    return {
      ok: false,
      message: `apiVersion must be admission.k8s.io/v1 or admission.k8s.io/v1beta1, got ${JSON.stringify(apiVersion ?? null)}`,
    };
  const req = doc.request;
  if (!isObject(req)) return { ok: false, message: 'request must be an object' };
  if (typeof req.uid !== 'string' || req.uid === '')
    return { ok: false, message: 'request.uid must be a non-empty string' };
  return { ok: true, apiVersion, request: req as AdmissionRequest };
}

export interface ReviewAnswer {
  allowed: boolean;
  patch?: unknown[];
  code?: number;
  reason?: string;
  message?: string;
}

const REVIEW_PREFIX = new Map(
  [...REVIEW_VERSIONS].map((v) => [
    v,
    `{"apiVersion":${JSON.stringify(v)},"kind":"AdmissionReview","response":`,
  ]),
);

/**
 * The AdmissionReview response as the text sent on the wire, echoing apiVersion and kind; `patch` only when there are
 * ops. Built as one string, with no intermediate object for JSON.stringify to walk; Node sends a string answer in the
 * same chunk as the headers.
 */
export function encodeResponse(apiVersion: string, uid: string, a: ReviewAnswer): string {
  const head = `${REVIEW_PREFIX.get(apiVersion) ?? `{"apiVersion":${JSON.stringify(apiVersion)},"kind":"AdmissionReview","response":`}{"uid":${JSON.stringify(uid)},"allowed":${a.allowed}`;
  let tail = '}}';
  if (!a.allowed || a.message)
    tail = `,"status":${JSON.stringify({ code: a.code, message: a.message, reason: a.reason || undefined })}}}`;
  if (!a.patch || !a.patch.length) return head + tail;
  return `${head}${PATCH_KEY}${base64OfUtf8(JSON.stringify(a.patch))}"${tail}`;
}

const PATCH_KEY = ',"patchType":"JSONPatch","patch":"';

/** Base64 of the text's UTF-8. `btoa` (one pass, no Buffer) encodes one byte per character: right for ASCII text. */
export function base64OfUtf8(text: string): string {
  return Buffer.byteLength(text) === text.length ? btoa(text) : Buffer.from(text).toString('base64');
}
