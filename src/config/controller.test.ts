import { describe, expect, it } from 'vitest';
import { CliError } from '../core/exit.ts';
import { parseControllerFlags } from './controller.ts';

const base = ['--cluster-name=prod'];
const parse = (args: string[], env: Record<string, string> = {}) =>
  parseControllerFlags([...base, ...args], { env });
const usage = (args: string[]) => {
  try {
    parse(args);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).exitCode).toBe(2);
    return (e as CliError).message;
  }
  throw new Error('expected a usage error');
};

describe('controller flags', () => {
  it('has the documented defaults (docs/verified-start.md#controller-flags)', () => {
    expect(parse([]).config).toMatchObject({
      verifyBackoffInitialMs: 100,
      verifyBackoffMaxMs: 500,
      verifyQps: 100,
      verifyBurst: 200,
      verifyDeadlineMs: 300_000,
      verifyRetryAfterDeadlineMs: 60_000,
      verifiedTtlMs: 600_000,
      leaderElect: true,
      leaseNamespace: 'lanyard-system',
      awsRegion: 'us-east-1',
      metricsPort: 8080,
      clusterName: 'prod',
    });
  });
  it('parses pflag forms and Go durations', () => {
    const c = parse([
      '--verify-deadline',
      '10s',
      '--verified-ttl=1m30s',
      '--leader-elect=false',
      '--association-resync=2s',
      '--verify-qps=5',
    ]).config;
    expect(c).toMatchObject({
      verifyDeadlineMs: 10_000,
      verifiedTtlMs: 90_000,
      leaderElect: false,
      verifyQps: 5,
    });
    expect(c.associations.resyncMs).toBe(2000);
  });
  it('reads region, endpoint and lease namespace defaults from the environment', () => {
    expect(
      parse([], {
        AWS_REGION: 'eu-west-1',
        AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
        POD_NAMESPACE: 'x',
        POD_NAME: 'c-1',
      }).config,
    ).toMatchObject({
      awsRegion: 'eu-west-1',
      awsEndpointUrl: 'http://127.0.0.1:4566',
      leaseNamespace: 'x',
      leaderElectIdentity: 'c-1',
    });
  });
  it.each([
    [['--bogus'], 'unknown flag: --bogus'],
    [['--verify-deadline=soon'], '"--verify-deadline"'],
    [['--verify-backoff-initial=2s', '--verify-backoff-max=1s'], '--verify-backoff-max'],
    [['--verify-qps=0'], '"--verify-qps"'],
    [['--leader-elect-retry-period=20s'], 'leader election timing'],
    [['--aws-endpoint-url=ftp://x'], '"--aws-endpoint-url"'],
    [['positional'], 'unexpected argument "positional"'],
    [['--metrics-port'], 'flag needs an argument: --metrics-port'],
  ])('%j is a usage error naming the flag', (args, text) => expect(usage(args)).toContain(text));
  it('takes the self-managed certificate flags, with the Secret in POD_NAMESPACE', () => {
    expect(
      parse(
        ['--tls-mode=self-managed', '--tls-secret=s', '--webhook-config-name=w', '--tls-extra-sans=a, b'],
        { POD_NAMESPACE: 'ns1' },
      ).config,
    ).toMatchObject({
      tlsMode: 'self-managed',
      tlsSecret: 's',
      webhookConfigName: 'w',
      tlsExtraSans: ['a', 'b'],
      podNamespace: 'ns1',
    });
    expect(parse(['--lease-namespace=l']).config.podNamespace).toBe('l');
    expect(usage(['--tls-mode=csr'])).toContain('"--tls-mode"');
  });
  it('requires --cluster-name', () => {
    expect(() => parseControllerFlags([], { env: {} })).toThrow('--cluster-name is required');
  });
  it('passes webhook flags through for `lanyard run`, sharing the common ones', () => {
    const { config, rest } = parseControllerFlags(
      [
        ...base,
        '--port=9443',
        '--identity-gate',
        '--tls-mode',
        'self-managed',
        '--annotation-prefix=x.io',
        '--verify-deadline=1m',
      ],
      { env: {}, passThrough: new Set(['port', 'identity-gate', 'tls-mode', 'annotation-prefix']) },
    );
    expect(rest).toEqual([
      '--port=9443',
      '--identity-gate',
      '--tls-mode',
      'self-managed',
      '--annotation-prefix=x.io',
    ]);
    expect(config.annotationPrefix).toBe('x.io');
    expect(config.verifyDeadlineMs).toBe(60_000);
  });
});
