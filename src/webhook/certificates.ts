// Self-managed TLS (docs/webhook.md#tls): one CA and serving certificate in a Secret shared by every replica (and by
// `lanyard controller`), rotation at two thirds of the validity, and the MutatingWebhookConfiguration's caBundle kept
// current. Creation races are settled by the API server: create (409 AlreadyExists → use the stored one), update with
// the resourceVersion read (409 Conflict → re-read).
// @peculiar/x509 resolves its ASN.1 schemas through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import type { Secret } from 'kubernetes-types/core/v1.js';
import type { MutatingWebhookConfiguration } from 'kubernetes-types/admissionregistration/v1.js';
import type { KubeClient } from '../kube/client.ts';
import { getOrUndefined, isAlreadyExists, isConflict, resourcePath } from '../kube/client.ts';
import { sharedOrOwnCache, type InformerFactory } from '../kube/cache.ts';
import type { Logger } from '../runtime/log.ts';
import type { Clock } from '../runtime/clock.ts';
import { SerialPasses } from '../runtime/serial.ts';
import { validityProblem } from './tls-files.ts';

const crypto = webcrypto;
const EC: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGN: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const CA_VALIDITY_MS = 10 * 365 * 24 * 3600_000;
const BACKDATE_MS = 5 * 60_000;
const CHECK_INTERVAL_MS = 60_000;

export interface CertificatePair {
  certPem: string;
  keyPem: string;
  caPem: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertificateWant {
  namespace: string;
  serviceName: string;
  extraSans: string[];
  validityMs: number;
}

export function servingSans(w: CertificateWant): string[] {
  const s = w.serviceName;
  const n = w.namespace;
  return [s, `${s}.${n}`, `${s}.${n}.svc`, `${s}.${n}.svc.cluster.local`, ...w.extraSans];
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function derOf(pemText: string): Buffer {
  return Buffer.from(pemText.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** A random positive 128-bit serial (top bit cleared so the DER integer stays positive). */
function serial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0]! &= 0x7f;
  return Buffer.from(b).toString('hex');
}

export async function generateCa(namespace: string, now: Date): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: serial(),
      name: `CN=lanyard-webhook-ca.${namespace}`,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + CA_VALIDITY_MS),
      signingAlgorithm: SIGN,
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem: pem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

export async function issueServing(
  ca: { certPem: string; keyPem: string },
  want: CertificateWant,
  now: Date,
): Promise<{ certPem: string; keyPem: string }> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await crypto.subtle.importKey('pkcs8', derOf(ca.keyPem), EC, false, ['sign']);
  const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const sans = servingSans(want).map((v) =>
    isIP(v) ? { type: 'ip' as const, value: v } : { type: 'dns' as const, value: v },
  );
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial(),
      subject: `CN=${want.serviceName}.${want.namespace}.svc`,
      issuer: caCert.subject,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + want.validityMs),
      signingAlgorithm: SIGN,
      publicKey: keys.publicKey,
      signingKey: caKey,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
        new x509.SubjectAlternativeNameExtension(sans, false),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false, crypto),
      ],
    },
    crypto,
  );
  return {
    certPem: cert.toString('pem') + '\n',
    keyPem: pem('PRIVATE KEY', await crypto.subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

export interface SecretData {
  'tls.crt'?: string;
  'tls.key'?: string;
  'ca.crt'?: string;
  'ca.key'?: string;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: unknown) => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : undefined);

/** SANs of a certificate as plain strings (DNS names and IPs). */
export function certificateSans(cert: NodeX509): string[] {
  return (cert.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => s.replace(/^(DNS|IP Address):/, ''));
}

export type CertificatePlan =
  | { action: 'ok'; pair: CertificatePair; rotateAt: number }
  | { action: 'issue'; reason: string; ca: { certPem: string; keyPem: string }; bundle: string }
  | { action: 'new_ca'; reason: string }
  /** A new signing CA is put in front of the bundle; the serving pair stays until the configuration holds it. */
  | { action: 'rotate_ca'; reason: string; bundle: string; keep: SecretData }
  | { action: 'prune'; reason: string; bundle: string };

const CA_RENEW_BEFORE_MS = 365 * 24 * 3600_000;

/** The PEM certificate blocks of a bundle, in order. */
export function splitPem(text: string): string[] {
  return (
    text
      .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)
      ?.map((b) => (b.endsWith('\n') ? b : `${b}\n`)) ?? []
  );
}

/**
 * Pure: what the Secret's content requires now (docs/webhook.md#tls). `configHolds(caPem)` tells whether the
 * MutatingWebhookConfiguration already trusts a CA, so serving certificates move to a new CA only once it does.
 */
export function planCertificate(
  data: SecretData | undefined,
  want: CertificateWant,
  now: number,
  configHolds: (caPem: string) => boolean = () => true,
): CertificatePlan {
  const caText = unb64(data?.['ca.crt']);
  const caKey = unb64(data?.['ca.key']);
  if (!caText || !caKey) return { action: 'new_ca', reason: 'no CA in the Secret' };
  let cas: Array<{ pem: string; cert: NodeX509 }>;
  try {
    cas = splitPem(caText).map((pem) => ({ pem, cert: new NodeX509(pem) }));
  } catch {
    return { action: 'new_ca', reason: 'CA unreadable' };
  }
  const live = cas.filter((c) => Date.parse(c.cert.validTo) > now);
  // The first CA signs; the key in the Secret is its key.
  if (!live.length || live[0] !== cas[0]) return { action: 'new_ca', reason: 'CA expired' };
  const signer = live[0]!;
  const bundle = live.map((c) => c.pem).join('');
  const certPem = unb64(data?.['tls.crt']);
  const keyPem = unb64(data?.['tls.key']);
  if (Date.parse(signer.cert.validTo) - now < CA_RENEW_BEFORE_MS)
    return {
      action: 'rotate_ca',
      reason: 'CA has under one year left',
      bundle,
      keep: { 'tls.crt': data?.['tls.crt'], 'tls.key': data?.['tls.key'] },
    };
  if (live.length !== cas.length) return { action: 'prune', reason: 'an old CA expired', bundle };
  const ca = { certPem: signer.pem, keyPem: caKey };
  const issue = (reason: string): CertificatePlan => ({ action: 'issue', reason, ca, bundle });
  if (!certPem || !keyPem) return issue('no serving certificate');
  let cert: NodeX509;
  let issuer: (typeof live)[number] | undefined;
  try {
    cert = new NodeX509(certPem);
    issuer = live.find((c) => cert.checkIssued(c.cert) && cert.verify(c.cert.publicKey));
  } catch {
    return issue('serving certificate unreadable');
  }
  if (!issuer) return issue('serving certificate not from the CA');
  const notAfter = Date.parse(cert.validTo);
  // Never served before its time (another writer, or a clock far behind the issuer's): issue one valid now.
  if (Date.parse(cert.validFrom) > now) return issue('serving certificate not yet valid');
  const newCaTrusted = configHolds(signer.pem);
  // Moving to a newer CA waits until the configuration trusts it, unless the current pair is no longer usable.
  const mayIssue = issuer === signer || newCaTrusted || notAfter <= now;
  if (issuer !== signer && newCaTrusted) return issue('moving to the new CA');
  const issuedAt = Date.parse(cert.validFrom) + BACKDATE_MS;
  const rotateAt = issuedAt + ((notAfter - issuedAt) * 2) / 3;
  if (now >= rotateAt && mayIssue) return issue('two thirds of the validity passed');
  const have = new Set(certificateSans(cert));
  const wanted = servingSans(want);
  if ((have.size !== new Set(wanted).size || wanted.some((x) => !have.has(x))) && mayIssue)
    return issue('SANs changed');
  return {
    action: 'ok',
    pair: {
      certPem,
      keyPem,
      caPem: bundle,
      notBefore: new Date(cert.validFrom),
      notAfter: new Date(notAfter),
    },
    rotateAt,
  };
}

export interface CertificateReconcilerOptions extends CertificateWant {
  secretName: string;
  /** MutatingWebhookConfiguration whose caBundle is kept current ('' = leave it alone). */
  webhookConfigName: string;
  onPair?: (pair: CertificatePair) => void;
}

/** The reconciler's options from the webhook's or the controller's configuration: the same flags in both. */
export function certificateOptions(c: {
  podNamespace: string;
  serviceName: string;
  tlsExtraSans: string[];
  selfManagedCertValidityMs: number;
  tlsSecret: string;
  webhookConfigName: string;
}): CertificateReconcilerOptions {
  return {
    namespace: c.podNamespace,
    serviceName: c.serviceName,
    extraSans: c.tlsExtraSans,
    validityMs: c.selfManagedCertValidityMs,
    secretName: c.tlsSecret,
    webhookConfigName: c.webhookConfigName,
  };
}

export interface CertificateReconciler {
  /** Resolves with the first pair. */
  firstPair(): Promise<CertificatePair>;
  /** A pair is installed and valid now: the readiness check. */
  usable(): boolean;
  stop(): Promise<void>;
}

/** Runs the self-managed certificate loop; safe in every webhook replica and in `lanyard controller`. */
export function startCertificateReconciler(
  deps: CertificateDeps,
  o: CertificateReconcilerOptions,
): CertificateReconciler {
  const loop = new CertificateLoop(deps, o);
  loop.start();
  return {
    firstPair: () => loop.first,
    usable: () => loop.usable(),
    stop: () => loop.stop(),
  };
}

const SECRETS_PATH = (namespace: string) => resourcePath({ version: 'v1', plural: 'secrets', namespace });
const MWC_PATH = resourcePath({
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  plural: 'mutatingwebhookconfigurations',
});

/** The process's informer cache (`cache`) when it has one: the Secret and configuration are views of it. */
type CertificateDeps = { kube: KubeClient; log: Logger; clock: Clock; cache?: InformerFactory };

/** The state of one self-managed certificate loop: the Secret and the configuration's caBundle kept current. */
class CertificateLoop {
  readonly first: Promise<CertificatePair>;
  private firstResolve!: (p: CertificatePair) => void;
  private pair: CertificatePair | undefined;
  private stopped = false;
  /** One pass at a time; a trigger during a pass runs another right after it, else the next check is scheduled. */
  private readonly passes = new SerialPasses(
    () => this.pass(),
    () => this.schedule(),
  );
  private timer: NodeJS.Timeout | undefined;
  private rotateAt = Infinity;
  /** The validity problem last logged as an error, so a long outage logs it once. */
  private reportedInvalid = '';
  /** Decoded caBundles of the configuration's webhooks (undefined: no configuration to keep current). */
  private bundles: string[] | undefined;
  private readonly secretPath: string;
  private watches: Array<{ close(): void }> = [];
  private releaseCache = (): void => undefined;

  constructor(
    private readonly deps: CertificateDeps,
    private readonly o: CertificateReconcilerOptions,
  ) {
    this.first = new Promise<CertificatePair>((r) => (this.firstResolve = r));
    this.secretPath = SECRETS_PATH(o.namespace);
  }

  usable(): boolean {
    return this.pair !== undefined && validityProblem(this.pair, this.deps.clock.now()) === undefined;
  }

  /** Watches the Secret (and the configuration), each change triggering a pass; the first pass starts now. */
  start(): void {
    const { log } = this.deps;
    const cache = sharedOrOwnCache(this.deps, (sel, e) =>
      log.warn({ err: e, path: sel.path }, 'certificate watch failed; retrying'),
    );
    this.releaseCache = cache.release;
    const trigger = () => this.trigger();
    // Views of one named object each: what they keep is nothing, a change only triggers a pass that reads it.
    this.watches.push(
      cache.cache.view<Record<string, never>, Secret>({
        path: this.secretPath,
        fieldSelector: `metadata.name=${this.o.secretName}`,
        transform: () => ({}),
        onAdd: trigger,
        onUpdate: trigger,
        onDelete: trigger,
      }),
    );
    if (this.o.webhookConfigName)
      this.watches.push(
        cache.cache.view<Record<string, never>, MutatingWebhookConfiguration>({
          path: MWC_PATH,
          fieldSelector: `metadata.name=${this.o.webhookConfigName}`,
          transform: (mwc) => {
            this.bundles = (mwc.webhooks ?? []).map((w) => unb64(w.clientConfig?.caBundle) ?? '');
            return {};
          },
          onAdd: trigger,
          onUpdate: trigger,
          onDelete: () => {
            this.bundles = undefined;
          },
        }),
      );
    this.trigger();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const w of this.watches) w.close();
    this.releaseCache();
    await this.passes.stop();
  }

  private readonly configHolds = (caPem: string) =>
    !this.bundles || this.bundles.every((b) => b.includes(caPem.trim()));

  private install(p: CertificatePair, due: number): void {
    this.rotateAt = due;
    const cur = this.pair;
    if (cur && cur.certPem === p.certPem && cur.keyPem === p.keyPem && cur.caPem === p.caPem) return;
    this.pair = p;
    this.deps.log.info(
      { secret: `${this.o.namespace}/${this.o.secretName}`, notAfter: p.notAfter.toISOString() },
      'serving certificate installed',
    );
    this.o.onPair?.(p);
    this.firstResolve(p);
  }

  private trigger(): void {
    if (!this.stopped) this.passes.trigger();
  }

  private async pass(): Promise<void> {
    try {
      await this.reconcileSecret();
      await this.reconcileCaBundle();
    } catch (e) {
      const { log, clock } = this.deps;
      const invalid = this.pair && validityProblem(this.pair, clock.now());
      if (invalid && invalid.reason !== this.reportedInvalid) {
        this.reportedInvalid = invalid.reason;
        log.error(
          { err: e, reason: invalid.reason },
          'no valid serving certificate and it cannot be renewed: the webhook is not ready',
        );
      } else if (!invalid) log.warn({ err: e }, 'certificate reconcile failed; retrying');
      if (!this.stopped) setTimeout(() => this.trigger(), 2000).unref();
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    // Every 60 s, and exactly when rotation falls due (short validities in tests).
    const delay = Math.min(CHECK_INTERVAL_MS, Math.max(100, this.rotateAt - this.deps.clock.now() + 50));
    this.timer = setTimeout(() => this.trigger(), delay);
    this.timer.unref();
  }

  /** Reads the Secret and installs its pair, or writes a new one; a lost create/update race re-reads. */
  private async reconcileSecret(): Promise<void> {
    const { kube, log, clock } = this.deps;
    const o = this.o;
    const named = `${this.secretPath}/${encodeURIComponent(o.secretName)}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const secret = await getOrUndefined<Secret>(kube, named);
      const now = clock.now();
      const plan = planCertificate(secret?.data, o, now, this.configHolds);
      if (plan.action === 'ok') {
        this.install(plan.pair, plan.rotateAt);
        return;
      }
      const data = await nextSecretData(plan, secret?.data, o, now);
      try {
        if (!secret) await kube.create(this.secretPath, secretBody(o, data));
        else await kube.update(named, secretBody(o, data, secret));
        log.info(
          { secret: `${o.namespace}/${o.secretName}`, reason: plan.reason },
          'serving certificate issued',
        );
      } catch (e) {
        // Another replica won the race: discard ours and re-read.
        if (isAlreadyExists(e) || isConflict(e)) continue;
        throw e;
      }
    }
  }

  /** Every webhook of the configuration gets the current CA bundle; a conflict re-reads. */
  private async reconcileCaBundle(): Promise<void> {
    const { kube, log } = this.deps;
    const name = this.o.webhookConfigName;
    if (!name || !this.pair) return;
    const want = b64(this.pair.caPem);
    const named = `${MWC_PATH}/${encodeURIComponent(name)}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const mwc = await getOrUndefined<MutatingWebhookConfiguration>(kube, named);
      if (!mwc) return;
      let changed = 0;
      for (const w of mwc.webhooks ?? []) {
        if (!w.clientConfig || w.clientConfig.caBundle === want) continue;
        w.clientConfig.caBundle = want;
        changed++;
      }
      if (!changed) return;
      try {
        await kube.update(named, mwc);
        log.info({ webhookConfiguration: name, webhooks: changed }, 'caBundle updated');
        return;
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
  }
}

/** The Secret's new data for a plan that is not 'ok': a new CA, a rotated CA, a pruned bundle or a new serving pair. */
async function nextSecretData(
  plan: Exclude<CertificatePlan, { action: 'ok' }>,
  current: SecretData | undefined,
  o: CertificateWant,
  now: number,
): Promise<SecretData> {
  if (plan.action === 'rotate_ca') {
    const ca = await generateCa(o.namespace, new Date(now));
    return { ...plan.keep, 'ca.crt': b64(ca.certPem + plan.bundle), 'ca.key': b64(ca.keyPem) };
  }
  if (plan.action === 'prune') return { ...current, 'ca.crt': b64(plan.bundle) };
  const fresh = plan.action === 'new_ca';
  const ca = fresh ? await generateCa(o.namespace, new Date(now)) : plan.ca;
  const serving = await issueServing(ca, o, new Date(now));
  return {
    'tls.crt': b64(serving.certPem),
    'tls.key': b64(serving.keyPem),
    'ca.crt': b64(fresh ? ca.certPem : plan.bundle),
    'ca.key': b64(ca.keyPem),
  };
}

function secretBody(o: CertificateReconcilerOptions, data: SecretData, existing?: Secret): Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/tls',
    metadata: {
      ...(existing?.metadata ?? {}),
      name: o.secretName,
      namespace: o.namespace,
      labels: { ...(existing?.metadata?.labels ?? {}), 'app.kubernetes.io/managed-by': 'lanyard' },
    },
    data: { ...data },
  };
}
