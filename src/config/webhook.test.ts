import { describe, expect, it } from 'vitest';
import { FlagError, mapCipherSuites, parseWebhookFlags, WEBHOOK_DEFAULTS } from './webhook.ts';

const parse = (argv: string[], env: Record<string, string> = {}) =>
  parseWebhookFlags(argv, { env, readNamespaceFile: () => undefined });

describe('parseWebhookFlags (docs/migrate-from-pod-identity-webhook.md#flags)', () => {
  it("has the reference defaults plus Lanyard's", () => {
    const c = parse([]);
    expect(c).toMatchObject({
      port: 443,
      metricsPort: 9999,
      namespace: 'eks',
      annotationPrefix: 'eks.amazonaws.com',
      tokenAudience: 'sts.amazonaws.com',
      tokenExpiration: 86400,
      serviceAccountLookupGracePeriodMs: 2000,
      resyncPeriodMs: 60_000,
      tlsMode: 'files',
      tlsMinVersion: 'TLSv1.2',
      selfManagedCertValidityMs: 2160 * 3600_000,
      maxRequestBytes: 7_340_032,
      maxConnections: 1000,
      readTimeoutMs: 10_000,
      idleTimeoutMs: 120_000,
      shutdownDelayMs: 5000,
      shutdownTimeoutMs: 20_000,
      identityGate: false,
      identityGateAllowOptOut: true,
      podNamespace: 'eks',
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('accepts --flag=value, --flag value, bare booleans and Go durations', () => {
    const c = parse([
      '--port=9443',
      '--metrics-port',
      '9998',
      '--watch-config-map',
      '--sts-regional-endpoint=false',
      '--service-account-lookup-grace-period',
      '1m30s',
      '--resync-period=500ms',
      '--tls-extra-sans=127.0.0.1, localhost',
    ]);
    expect(parse(['--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256']).tlsCipherSuites).toBe(
      'ECDHE-RSA-AES128-GCM-SHA256',
    );
    expect(c).toMatchObject({
      port: 9443,
      metricsPort: 9998,
      watchConfigMap: true,
      stsRegionalEndpoint: false,
      serviceAccountLookupGracePeriodMs: 90_000,
      resyncPeriodMs: 500,
      tlsExtraSans: ['127.0.0.1', 'localhost'],
    });
  });

  it('takes the connection limits and refuses a read timeout too short to receive a review', () => {
    expect(parse(['--max-connections=64', '--read-timeout=2s', '--idle-timeout=95s'])).toMatchObject({
      maxConnections: 64,
      readTimeoutMs: 2000,
      idleTimeoutMs: 95_000,
    });
    expect(() => parse(['--read-timeout=10ms'])).toThrow(
      'invalid argument "10ms" for "--read-timeout": must be at least 100ms',
    );
    expect(() => parse(['--max-connections=0'])).toThrow(FlagError);
  });

  it('raises a low token expiration to 600 with a warning', () => {
    const c = parse(['--token-expiration=100']);
    expect(c.tokenExpiration).toBe(600);
    expect(c.warnings[0]).toContain('600');
  });

  it('maps klog -v and accepts the other klog flags with one warning', () => {
    expect(parse(['-v=4']).logLevel).toBe('debug');
    expect(parse(['-v', '6']).logLevel).toBe('trace');
    expect(parse(['--v=2']).logLevel).toBe('info');
    const c = parse(['--logtostderr', '--log_dir=/tmp', '--alsologtostderr=false', '--stderrthreshold', '2']);
    expect(c.warnings).toEqual([
      'klog flags ignored (logs are JSON on stdout): logtostderr, log_dir, alsologtostderr, stderrthreshold',
    ]);
  });

  it('maps TLS versions and turns --in-cluster=true into self-managed mode', () => {
    expect(parse(['--tls-min-version=VersionTLS13']).tlsMinVersion).toBe('TLSv1.3');
    expect(parse(['--tls-min-version=1.0']).tlsMinVersion).toBe('TLSv1');
    const c = parse(['--in-cluster']);
    expect(c.tlsMode).toBe('self-managed');
    expect(c.warnings.join()).toContain('deprecated');
    expect(parse(['--in-cluster=false']).tlsMode).toBe('files');
    expect(parse(['--in-cluster=true', '--tls-mode=files']).tlsMode).toBe('files');
  });

  it('takes the own namespace from POD_NAMESPACE', () => {
    expect(parse([], { POD_NAMESPACE: 'lanyard-system' }).podNamespace).toBe('lanyard-system');
  });

  it.each<[string[], string]>([
    [['--bogus'], '--bogus'],
    [['--port=abc'], '--port'],
    [['--port=70000'], '--port'],
    [['--port'], '--port'],
    [['--watch-config-map=maybe'], '--watch-config-map'],
    [['--resync-period=10'], '--resync-period'],
    [['--service-account-lookup-grace-period=2 s'], '--service-account-lookup-grace-period'],
    [['--tls-min-version=1.4'], '--tls-min-version'],
    [['--tls-mode=csr'], '--tls-mode'],
    [['--log-level=loud'], '--log-level'],
    [['--tls-cipher-suites=TLS_NOT_A_SUITE'], '--tls-cipher-suites'],
    [['-x'], '-x'],
    [['positional'], 'positional'],
  ])('refuses %j naming the flag', (argv, name) => {
    expect(() => parse(argv)).toThrow(FlagError);
    try {
      parse(argv);
    } catch (e) {
      expect((e as Error).message).toContain(name);
      expect((e as Error).message).not.toContain('\n');
    }
  });
});

describe('cipher suites', () => {
  it('maps Go names to OpenSSL names and refuses unknown ones', () => {
    const available = new Set(['ecdhe-rsa-aes128-gcm-sha256', 'ecdhe-ecdsa-aes256-gcm-sha384']);
    expect(
      mapCipherSuites(
        'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256',
        available,
      ),
    ).toBe('ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384');
    expect(mapCipherSuites('', available)).toBe('');
    expect(() => mapCipherSuites('TLS_FAKE', available)).toThrow(/TLS_FAKE/);
    expect(() => mapCipherSuites('TLS_RSA_WITH_AES_128_CBC_SHA', available)).toThrow(/not available/);
  });

  it('keeps defaults immutable', () => {
    expect(Object.isFrozen(WEBHOOK_DEFAULTS)).toBe(true);
  });
});
