import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { addAssociationOptions, associationConfigFrom } from './associations.ts';
import { CliError } from '../cli/exit.ts';

function parse(args: string[]) {
  const cmd = addAssociationOptions(new Command('controller').exitOverride());
  cmd.parse(args, { from: 'user' });
  return associationConfigFrom(cmd.opts());
}

describe('association flags', () => {
  it('defaults', () => {
    expect(parse(['--cluster-name', 'prod-eu'])).toEqual({
      clusterName: 'prod-eu',
      workers: 16,
      resyncMs: 600_000,
      rolePropagationTimeoutMs: 120_000,
      observeAck: 'auto',
      probe: true,
      probeImage: 'registry.k8s.io/pause:3.10',
    });
  });
  it('parses every flag', () => {
    const c = parse([
      '--cluster-name=c1',
      '--association-workers=4',
      '--association-resync=2s',
      '--role-propagation-timeout=1m30s',
      '--observe-ack-associations=false',
      '--association-probe=false',
      '--probe-image=example.com/pause:1',
    ]);
    expect(c).toMatchObject({ workers: 4, resyncMs: 2000, rolePropagationTimeoutMs: 90_000, observeAck: 'false', probe: false });
  });
  it.each([
    [[], '--cluster-name is required'],
    [['--cluster-name', '-bad'], 'invalid --cluster-name "-bad"'],
    [['--cluster-name', 'c', '--association-workers', '0'], 'invalid --association-workers "0"'],
    [['--cluster-name', 'c', '--association-resync', '10'], 'invalid --association-resync "10"'],
    [['--cluster-name', 'c', '--role-propagation-timeout', 'soon'], 'invalid --role-propagation-timeout "soon"'],
  ])('refuses %j', (args, message) => {
    expect(() => parse(args)).toThrowError(CliError);
    expect(() => parse(args)).toThrowError(message);
  });
  it('is frozen', () => {
    expect(Object.isFrozen(parse(['--cluster-name', 'c']))).toBe(true);
  });
});
