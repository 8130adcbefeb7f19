import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import {
  certificateSans,
  generateCa,
  issueServing,
  planCertificate,
  servingSans,
  splitPem,
  type SecretData,
} from './certificates.ts';
import { checkPair, validityProblem, type LoadedPair } from './tls-files.ts';

const want = {
  namespace: 'lanyard-system',
  serviceName: 'lanyard-webhook',
  extraSans: ['127.0.0.1'],
  validityMs: 90 * 24 * 3600_000,
};
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** The Secret's data for a CA and the serving pair it issued, as the reconciler writes it. */
const secretData = (
  ca: { certPem: string; keyPem: string },
  serving: { certPem: string; keyPem: string },
): SecretData => ({
  'tls.crt': b64(serving.certPem),
  'tls.key': b64(serving.keyPem),
  'ca.crt': b64(ca.certPem),
  'ca.key': b64(ca.keyPem),
});

describe('self-managed certificates (docs/webhook.md#tls)', () => {
  it('issues an ECDSA P-256 CA and a serving certificate with the service SANs', async () => {
    const now = new Date('2026-11-23T00:00:00Z');
    const ca = await generateCa('lanyard-system', now);
    const caCert = new X509Certificate(ca.certPem);
    expect(caCert.subject).toBe('CN=lanyard-webhook-ca.lanyard-system');
    expect(caCert.ca).toBe(true);
    expect(caCert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const s = await issueServing(ca, want, now);
    const cert = new X509Certificate(s.certPem);
    expect(cert.subject).toBe('CN=lanyard-webhook.lanyard-system.svc');
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(certificateSans(cert)).toEqual(servingSans(want));
    expect(servingSans(want)).toEqual([
      'lanyard-webhook',
      'lanyard-webhook.lanyard-system',
      'lanyard-webhook.lanyard-system.svc',
      'lanyard-webhook.lanyard-system.svc.cluster.local',
      '127.0.0.1',
    ]);
    expect(Date.parse(cert.validFrom)).toBe(now.getTime() - 5 * 60_000);
    expect(Date.parse(cert.validTo)).toBe(now.getTime() + want.validityMs);
    expect(typeof checkPair(s.certPem, s.keyPem)).toBe('object');
    expect(checkPair(s.certPem, ca.keyPem)).toBe('private key does not match the certificate');
  });

  it('plans: new CA when missing, issue when due or SANs change, ok otherwise', async () => {
    const t0 = Date.parse('2026-11-23T00:00:00Z');
    expect(planCertificate(undefined, want, t0).action).toBe('new_ca');
    const ca = await generateCa('lanyard-system', new Date(t0));
    const s = await issueServing(ca, want, new Date(t0));
    const data = secretData(ca, s);
    const ok = planCertificate(data, want, t0 + 59 * 24 * 3600_000);
    expect(ok.action).toBe('ok');
    expect(ok.action === 'ok' && ok.rotateAt).toBe(t0 + 60 * 24 * 3600_000);
    expect(planCertificate(data, want, t0 + 60 * 24 * 3600_000)).toMatchObject({
      action: 'issue',
      reason: 'two thirds of the validity passed',
    });
    expect(planCertificate(data, { ...want, extraSans: ['localhost'] }, t0)).toMatchObject({
      action: 'issue',
      reason: 'SANs changed',
    });
    expect(planCertificate({ ...data, 'tls.crt': undefined }, want, t0).action).toBe('issue');
    expect(planCertificate({ ...data, 'ca.crt': b64('garbage') }, want, t0).action).toBe('new_ca');
    const other = await generateCa('x', new Date(t0));
    expect(
      planCertificate({ ...data, 'ca.crt': b64(other.certPem), 'ca.key': b64(other.keyPem) }, want, t0),
    ).toMatchObject({ action: 'issue', reason: 'serving certificate not from the CA' });
  });

  it('rotates the CA with under a year left: new then old in ca.crt, serving moves once the configuration holds it', async () => {
    const year = 365 * 24 * 3600_000;
    const t0 = Date.parse('2026-01-01T00:00:00Z');
    const oldCa = await generateCa('lanyard-system', new Date(t0));
    const late = t0 + 9 * year + 30 * 24 * 3600_000; // the 10-year CA has under a year left
    const serving = await issueServing(oldCa, want, new Date(late));
    const data = secretData(oldCa, serving);
    const rotate = planCertificate(data, want, late);
    expect(rotate).toMatchObject({ action: 'rotate_ca', bundle: oldCa.certPem });

    const newCa = await generateCa('lanyard-system', new Date(late));
    const rotated: SecretData = {
      ...data,
      'ca.crt': b64(newCa.certPem + oldCa.certPem),
      'ca.key': b64(newCa.keyPem),
    };
    expect(splitPem(newCa.certPem + oldCa.certPem)).toEqual([newCa.certPem, oldCa.certPem]);
    // Not yet trusted by the configuration: keep serving from the old CA, publish both.
    const waiting = planCertificate(rotated, want, late + 1000, () => false);
    expect(waiting.action).toBe('ok');
    expect(waiting.action === 'ok' && waiting.pair.caPem).toBe(newCa.certPem + oldCa.certPem);
    // Trusted: serving certificates now come from the new CA.
    const move = planCertificate(rotated, want, late + 1000, () => true);
    expect(move).toMatchObject({
      action: 'issue',
      reason: 'moving to the new CA',
      ca: { certPem: newCa.certPem },
    });

    // When the old CA expires it leaves the bundle.
    const fresh = await issueServing(newCa, want, new Date(t0 + 10 * year + 3600_000));
    const prune = planCertificate(
      { ...rotated, 'tls.crt': b64(fresh.certPem), 'tls.key': b64(fresh.keyPem) },
      want,
      t0 + 10 * year + 3600_000,
    );
    expect(prune).toMatchObject({ action: 'prune', bundle: newCa.certPem });
  });
});

describe('serving certificate validity', () => {
  const minute = 60_000;
  const t0 = Date.parse('2026-11-23T00:00:00Z');
  // Issued at t0 for one hour: valid from t0 - 5 min (the backdate) to t0 + 1 h.
  const issued = async () => {
    const ca = await generateCa('lanyard-system', new Date(t0));
    const s = await issueServing(ca, { ...want, validityMs: 60 * minute }, new Date(t0));
    return { ca, s, pair: checkPair(s.certPem, s.keyPem) as LoadedPair };
  };

  it('reads both ends of the validity from a real certificate', async () => {
    const { pair } = await issued();
    expect(pair.notBefore).toEqual(new Date(t0 - 5 * minute));
    expect(pair.notAfter).toEqual(new Date(t0 + 60 * minute));
  });

  it.each([
    [
      'before notBefore',
      -5 * minute - 1000,
      { result: 'not_yet_valid', reason: 'certificate is not valid before 2026-11-22T23:55:00.000Z' },
    ],
    ['at notBefore', -5 * minute, undefined],
    ['in the middle', 30 * minute, undefined],
    ['at notAfter', 60 * minute, undefined],
    [
      'after notAfter',
      60 * minute + 1000,
      { result: 'expired', reason: 'certificate expired at 2026-11-23T01:00:00.000Z' },
    ],
  ])('%s', async (_when, offset, problem) => {
    const { pair } = await issued();
    expect(validityProblem(pair, t0 + offset)).toEqual(problem);
  });

  it('self-managed: re-issues a serving certificate that expired or is not valid yet', async () => {
    const { ca, s } = await issued();
    const data = secretData(ca, s);
    expect(planCertificate(data, want, t0 + 61 * minute)).toMatchObject({
      action: 'issue',
      reason: 'two thirds of the validity passed',
    });
    expect(planCertificate(data, want, t0 - 6 * minute)).toMatchObject({
      action: 'issue',
      reason: 'serving certificate not yet valid',
    });
    const ok = planCertificate(data, want, t0);
    expect(ok).toMatchObject({
      action: 'ok',
      pair: { notBefore: new Date(t0 - 5 * minute), notAfter: new Date(t0 + 60 * minute) },
    });
  });
});
