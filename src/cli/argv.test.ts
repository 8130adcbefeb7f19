import { describe, expect, it } from 'vitest';
import { commandPath, moveGlobalFlags } from './argv.ts';

describe('moveGlobalFlags', () => {
  it.each([
    [
      ['--context', 'prod', 'get', 'projects'],
      ['get', 'projects', '--context', 'prod'],
    ],
    [
      ['-p', 'shop', '-o', 'yaml', 'get', 'sas', 'ci'],
      ['get', 'sas', 'ci', '-p', 'shop', '-o', 'yaml'],
    ],
    [
      ['--kubeconfig=/k', '-v', '--no-headers', 'get', 'roles'],
      ['get', 'roles', '--kubeconfig=/k', '-v', '--no-headers'],
    ],
    [
      ['-oyaml', 'get', 'sas'],
      ['get', 'sas', '-oyaml'],
    ],
    [
      ['-p', 'shop', 'create', 'sa', 'x', '--', 'rest'],
      ['create', 'sa', 'x', '-p', 'shop', '--', 'rest'],
    ],
  ])('moves the global flags of %j after the command', (argv, expected) => {
    expect(moveGlobalFlags(argv)).toEqual(expected);
  });

  it.each([
    [['get', 'sas', '-p', 'shop']],
    [['--help']],
    [['--version']],
    [['--unknown', 'get']],
    [['webhook', '--kubeconfig', 'k']],
  ])('leaves %j alone', (argv) => expect(moveGlobalFlags(argv)).toEqual(argv));
});

describe('commandPath', () => {
  it('returns the words before the first flag, and the command named by help', () => {
    expect(commandPath(['get', 'sas', '-p', 'shop', 'x'])).toEqual(['get', 'sas']);
    expect(commandPath(['help', 'get'])).toEqual(['get']);
    expect(commandPath(['--help'])).toEqual([]);
  });
});
