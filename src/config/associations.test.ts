import { describe, expect, it } from 'vitest';
import { associationConfigFrom } from './associations.ts';
import { CliError } from '../core/exit.ts';

describe('association flags', () => {
  it('defaults', () => {
    expect(associationConfigFrom({ clusterName: 'prod-eu' })).toEqual({
      clusterName: 'prod-eu',
      workers: 16,
      resyncMs: 600_000,
      rolePropagationTimeoutMs: 120_000,
      observeAck: 'auto',
      probe: true,
      probeImage: 'registry.k8s.io/pause:3.10',
      deniedAssociationAction: 'delete',
    });
  });
  it('parses every flag', () => {
    const c = associationConfigFrom({
      clusterName: 'c1',
      associationWorkers: '4',
      associationResync: '2s',
      rolePropagationTimeout: '1m30s',
      observeAckAssociations: 'false',
      associationProbe: 'false',
      probeImage: 'example.com/pause:1',
      deniedAssociationAction: 'preview',
    });
    expect(c).toEqual({
      clusterName: 'c1',
      workers: 4,
      resyncMs: 2000,
      rolePropagationTimeoutMs: 90_000,
      observeAck: 'false',
      probe: false,
      probeImage: 'example.com/pause:1',
      deniedAssociationAction: 'preview',
    });
  });
  it.each([
    [{}, '--cluster-name is required'],
    [{ clusterName: '-bad' }, 'invalid --cluster-name "-bad"'],
    [{ clusterName: 'c', associationWorkers: '0' }, 'invalid --association-workers "0"'],
    [{ clusterName: 'c', associationWorkers: '2.5' }, 'invalid --association-workers "2.5"'],
    [{ clusterName: 'c', associationResync: '10' }, 'invalid --association-resync "10"'],
    [{ clusterName: 'c', rolePropagationTimeout: 'soon' }, 'invalid --role-propagation-timeout "soon"'],
    [{ clusterName: 'c', observeAckAssociations: 'maybe' }, 'invalid --observe-ack-associations "maybe"'],
    [{ clusterName: 'c', associationProbe: 'yes' }, 'invalid --association-probe "yes"'],
    [{ clusterName: 'c', deniedAssociationAction: 'warn' }, 'invalid --denied-association-action "warn"'],
    [{ clusterName: 'c', probeImage: 'a b' }, 'invalid --probe-image "a b"'],
  ])('refuses %j as a usage error', (opts, message) => {
    let err: unknown;
    try {
      associationConfigFrom(opts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(2);
    expect((err as CliError).message).toContain(message);
  });
  it('is frozen', () => {
    expect(Object.isFrozen(associationConfigFrom({ clusterName: 'c' }))).toBe(true);
  });
});
