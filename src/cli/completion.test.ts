import { describe, expect, it } from 'vitest';
import { buildProgram } from './program.ts';
import { complete, completionScript } from './completion.ts';
import { moveGlobalFlags } from './argv.ts';
import { inertIO } from './reference.ts';

/** Candidates as `lanyard __complete <words...>` computes them. */
async function candidates(words: string[]): Promise<string[]> {
  return complete(await buildProgram(inertIO(), { argv: moveGlobalFlags(words.slice(0, -1)) }), words);
}

// Each case imports the capabilities of its command (transformed on the fly): slow on a loaded machine.
describe('completion candidates', { timeout: 60_000 }, () => {
  it('completes top-level commands without listing hidden ones', async () => {
    const top = await candidates(['']);
    expect(top).toEqual(
      expect.arrayContaining(['get', 'create', 'doctor', 'version', 'completion', 'webhook']),
    );
    expect(top).not.toContain('promotion-done');
    expect(await candidates(['ge'])).toEqual(['get']);
  });

  it('completes nouns after a verb, also after global flags written first', async () => {
    expect(await candidates(['get', 's'])).toEqual(['serviceaccount', 'serviceaccounttoken', 'stage']);
    expect(await candidates(['--context', 'prod', 'get', 'pro'])).toEqual(['project', 'promotion']);
  });

  it('completes flags of the command and the values of -o', async () => {
    expect(await candidates(['get', 'sas', '--pro'])).toEqual(['--project']);
    expect(await candidates(['get', 'sas', '-o', ''])).toEqual([
      'custom-columns=',
      'json',
      'jsonpath=',
      'name',
      'table',
      'wide',
      'yaml',
    ]);
    expect(await candidates(['completion', ''])).toEqual([]);
  });

  it('completes the iam subcommands and the --mode choices of create identity (docs/explain-and-iam.md)', async () => {
    expect(await candidates(['iam', ''])).toEqual(['check', 'trust-policy']);
    expect(await candidates(['explain', ''])).toEqual(['pod', 'serviceaccount']);
    expect(await candidates(['create', 'identity', 'team-a/app', '--mode', ''])).toEqual([
      'irsa',
      'pod-identity',
    ]);
  });
});

describe('completion scripts', () => {
  it.each(['bash', 'zsh', 'fish'] as const)('the %s script calls back `lanyard __complete`', (shell) => {
    expect(completionScript(shell, 'lanyard')).toContain('lanyard __complete');
  });
});
