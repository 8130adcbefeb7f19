import { describe, expect, it } from 'vitest';
import { runCli } from '../cli/run.ts';

// Usage errors are found before any request: a client factory that fails proves nothing was sent.
const io = {
  createClient: async () => {
    throw new Error('no request expected');
  },
};
const run = (...argv: string[]) => runCli(argv, { env: { LANYARD_PROJECT: 'shop' }, io });

describe('lanyard promote / abort / get usage errors (exit 2, nothing sent)', () => {
  it.each([
    [['promote', '--stage', 'prod', '--var', 'version'], 'error: invalid --var "version": use NAME=VALUE'],
    [['promote', '--stage', 'prod', '--var', '1x=2'], 'error: invalid --var "1x=2"'],
    [['promote', '--stage', 'prod', '--var', 'a=1', '--var', 'a=2'], 'error: --var a is given twice'],
    [['promote'], 'error: --stage is required'],
    [['promote', '--stage', 'Prod'], 'error: invalid stage name "Prod"'],
    [['promote', '--stage', 'prod', '--timeout', 'never'], 'error: invalid --timeout "never"'],
    [['abort', 'promotion', 'Bad_Name'], 'error: invalid promotion name "Bad_Name"'],
    [['get', 'stages', 'x_y'], 'error: invalid stage name "x_y"'],
    [['get', 'promos', '--stage', 'A'], 'error: invalid stage name "A"'],
  ])('%j', async (argv, message) => {
    const r = await run(...argv);
    expect(r.stderr).toContain(message);
    expect(r.exitCode).toBe(2);
  });
  it('runs the done container command', async () => {
    expect(await runCli(['promotion-done'])).toEqual({ stdout: '', stderr: '', exitCode: 0 });
  });
});
