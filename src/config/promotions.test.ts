import { describe, expect, it } from 'vitest';
import pkg from '../../package.json' with { type: 'json' };
import { promotionConfigFrom } from './promotions.ts';

describe('promotionConfigFrom', () => {
  it('has the documented defaults (docs/promotions.md#controller-settings); the done image is this release (the package version, as the chart tag)', () => {
    expect(promotionConfigFrom({})).toEqual({
      namespace: 'lanyard-promotions',
      serviceAccount: 'lanyard-promotion-orchestrator',
      defaultTimeoutSeconds: 600,
      maxTimeoutSeconds: 21_600,
      podRetentionMs: 3_600_000,
      doneImage: `ghcr.io/lanyard-dev/lanyard:${pkg.version}`,
      workers: 8,
      stepAudience: 'lanyard-promotion-step',
      awsRegion: '',
      annotationPrefix: 'eks.amazonaws.com',
      orphanSweepMs: 300_000,
      orphanGraceMs: 60_000,
    });
  });
  it('reads LANYARD_* variables, and flags win over them', () => {
    const c = promotionConfigFrom(
      { 'promotion-timeout': '15m' },
      {
        LANYARD_PROMOTION_NAMESPACE: 'agents',
        LANYARD_PROMOTION_TIMEOUT: '20m',
        LANYARD_PROMOTION_POD_RETENTION: '0',
        LANYARD_AWS_REGION: 'eu-west-1',
      },
    );
    expect([c.namespace, c.defaultTimeoutSeconds, c.podRetentionMs, c.awsRegion]).toEqual([
      'agents',
      900,
      0,
      'eu-west-1',
    ]);
  });
  it.each([
    [{ 'promotion-namespace': 'Bad_NS' }, 'invalid --promotion-namespace "Bad_NS"'],
    [{ 'promotion-timeout': '10s' }, 'invalid --promotion-timeout "10s": use a duration of at least 30s'],
    [
      { 'promotion-timeout': '7h' },
      'invalid --promotion-timeout "7h": must not exceed --promotion-max-timeout "6h"',
    ],
    [{ 'promotion-pod-retention': 'soon' }, 'invalid --promotion-pod-retention "soon"'],
    [{ 'promotion-workers': '0' }, 'invalid --promotion-workers "0"'],
    [{ 'aws-region': 'mars' }, 'invalid --aws-region "mars"'],
  ])('refuses %j with exit 2', (flags, message) => {
    expect(() => promotionConfigFrom(flags)).toThrow(message);
    try {
      promotionConfigFrom(flags);
    } catch (e) {
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
  });
});
