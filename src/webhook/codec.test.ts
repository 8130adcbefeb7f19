import { describe, expect, it } from 'vitest';
import { base64OfUtf8, decodeReview, encodeResponse } from './codec.ts';

// The answer is assembled byte by byte into one buffer, not built as one string and encoded again: these check it is
// exactly the JSON JSON.stringify would give, whatever the characters of the uid and the patch.
describe('AdmissionReview answer bytes (docs/webhook.md#admission-answers)', () => {
  const patch = [
    { op: 'add', path: '/spec/containers/0/env/-', value: { name: 'AWS_REGION', value: 'é-ü-1' } },
  ];

  it('encodes a patch answer as the same JSON as JSON.stringify, with a multi-byte uid and patch value', () => {
    const uid = 'uid-ü-😀-"quoted"';
    const out = encodeResponse('admission.k8s.io/v1', uid, { allowed: true, patch });
    const doc = JSON.parse(out);
    expect(doc).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: {
        uid,
        allowed: true,
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
      },
    });
    expect(JSON.parse(Buffer.from(doc.response.patch, 'base64').toString('utf8'))).toEqual(patch);
    expect(out).toBe(JSON.stringify(doc));
  });

  it.each([
    ['ASCII', '[{"op":"add","path":"/spec/volumes/-"}]'],
    ['empty', ''],
    ['Latin-1, one UTF-16 unit but two UTF-8 bytes', 'é-ü-1'],
    ['astral', 'role-😀'],
    ['a lone surrogate', 'x\ud800y'],
  ])('base64 of the UTF-8 of %s text, as Buffer would encode it', (_what, text) => {
    expect(base64OfUtf8(text)).toBe(Buffer.from(text).toString('base64'));
  });

  it('encodes a refusal with its status and no patch, and echoes an unknown apiVersion as given', () => {
    const out = encodeResponse('admission.k8s.io/v1beta1', 'u', {
      allowed: false,
      code: 403,
      reason: 'Forbidden',
      message: 'nö',
    });
    expect(JSON.parse(out)).toEqual({
      apiVersion: 'admission.k8s.io/v1beta1',
      kind: 'AdmissionReview',
      response: { uid: 'u', allowed: false, status: { code: 403, message: 'nö', reason: 'Forbidden' } },
    });
    expect(JSON.parse(encodeResponse('x/v9', 'u', { allowed: true, patch: [] }).toString()).apiVersion).toBe(
      'x/v9',
    );
  });

  it('decodes a review and refuses invalid UTF-8, a wrong kind and a missing uid', () => {
    const ok = decodeReview(
      Buffer.from(
        JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'a' } }),
      ),
    );
    expect(ok).toEqual({ ok: true, apiVersion: 'admission.k8s.io/v1', request: { uid: 'a' } });
    expect(decodeReview(Buffer.from([0x7b, 0xff, 0x7d]))).toMatchObject({
      ok: false,
      message: /invalid JSON/,
    });
    expect(decodeReview(Buffer.from('{"kind":"Pod"}'))).toMatchObject({ ok: false, message: /kind must be/ });
    expect(
      decodeReview(Buffer.from('{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{}}')),
    ).toMatchObject({ ok: false, message: 'request.uid must be a non-empty string' });
  });
});
