// The shared framework in-process, with a fake API client: doctor output and exit codes, noun aliases, usage errors.
import { describe, expect, it } from 'vitest';
import { Command } from 'commander';
import { createCli, type CliIO } from './framework.ts';
import { KubeApiError, type KubeClient } from '../kube/client.ts';
import { exitCodeOf } from './exit.ts';

function harness(requests: string[] = []) {
  let stdout = '';
  let stderr = '';
  const kube = {
    server: 'https://k:6443',
    close: () => undefined,
    get: async (path: string) => {
      requests.push(`GET ${path}`);
      if (path === '/api/v1/namespaces/shop')
        return { metadata: { name: 'shop', labels: { 'lanyard.dev/project': 'true' } } };
      throw new KubeApiError(403, 'GET', path, 'Forbidden', 'no', undefined);
    },
    raw: async (req: { path: string }) => {
      requests.push(`GET ${req.path}`);
      return { status: 200, body: { metadata: { name: 'shop', labels: { 'lanyard.dev/project': 'true' } } } };
    },
  } as unknown as KubeClient;
  const io: CliIO = {
    env: { LANYARD_SERVER: 'https://k:6443', LANYARD_TOKEN: 't' },
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
    stdinIsTTY: false,
    stderrIsTTY: false,
    readLine: async () => undefined,
    readStdin: async () => '',
    clock: { now: () => Date.parse('2026-08-20T10:00:00Z'), sleep: async () => undefined },
    fs: { readFile: () => undefined, mode: () => undefined, exists: () => false },
    createClient: async () => kube,
  };
  const program = new Command('lanyard').exitOverride();
  const cli = createCli(program, io);
  const run = async (argv: string[]) => {
    let code = 0;
    try {
      await program.parseAsync(argv, { from: 'user' });
    } catch (e) {
      code = exitCodeOf(e, io.stderr);
    }
    return { code, stdout, stderr };
  };
  return { cli, run };
}

describe('doctor', () => {
  it('prints findings with fixes, a summary, and exits 7 on an error', async () => {
    const h = harness();
    h.cli.doctorCheck({
      name: 'stages',
      run: async () => [
        { level: 'error', object: 'stage shop/prod', text: 'bad', fix: 'kubectl fix it' },
        { level: 'warning', object: 'project shop', text: 'meh' },
      ],
    });
    const r = await h.run(['doctor']);
    expect(r).toEqual({
      code: 7,
      stdout:
        'ERROR  stage shop/prod  bad\n       fix: kubectl fix it\nWARN   project shop  meh\n1 error, 1 warning\n',
      stderr: '',
    });
  });

  it('turns a forbidden check into a warning and exits 0', async () => {
    const h = harness();
    h.cli.doctorCheck({
      name: 'promotions',
      run: async (ctx) => {
        await (await ctx.kube()).get('/apis/lanyard.dev/v1alpha1/namespaces/shop/promotions');
        return [];
      },
    });
    const r = await h.run(['doctor']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      'WARN   promotions  not checked: forbidden to list promotions in namespace "shop"\n0 errors, 1 warning\n',
    );
  });

  it('gives checks the --project after the project check', async () => {
    const requests: string[] = [];
    const h = harness(requests);
    let seen: string[] = [];
    h.cli.doctorCheck({ name: 'p', run: async (ctx) => ((seen = await ctx.projects()), []) });
    expect((await h.run(['doctor', '-p', 'shop'])).code).toBe(0);
    expect(seen).toEqual(['shop']);
    expect(requests).toEqual(['GET /api/v1/namespaces/shop']);
  });
});

describe('doctor flags', () => {
  it('lets a capability add a flag to doctor and read it in its check', async () => {
    const h = harness();
    h.cli.doctor.option('--policy-preview', 'list identities a policy would deny');
    let seen: unknown;
    h.cli.doctorCheck({ name: 'policies', run: async (ctx) => ((seen = ctx.options.policyPreview), []) });
    expect((await h.run(['doctor', '--policy-preview'])).code).toBe(0);
    expect(seen).toBe(true);
  });
});

describe('nouns', () => {
  it('registers every alias under the verb and hands over names and own flags', async () => {
    const h = harness();
    const calls: unknown[] = [];
    for (const verb of ['get', 'delete']) {
      h.cli.noun(
        verb,
        { name: 'stage', aliases: ['stages', 'stg'], plural: 'stages' },
        {
          description: 'x',
          args: '[names...]',
          options: (cmd) => cmd.option('--stage-flag <v>'),
          run: async (ctx, names, opts) =>
            void calls.push([verb, names, opts.stageFlag, ctx.flags.output, ctx.projectName()]),
        },
      );
    }
    for (const alias of ['stage', 'stages', 'stg'])
      expect(
        (await h.run(['get', alias, 'a', 'b', '-p', 'shop', '-o', 'wide', '--stage-flag', 'v'])).code,
      ).toBe(0);
    expect((await h.run(['delete', 'stg', 'x', '-p', 'shop'])).code).toBe(0);
    expect(calls).toEqual([
      ['get', ['a', 'b'], 'v', 'wide', 'shop'],
      ['get', ['a', 'b'], 'v', 'wide', 'shop'],
      ['get', ['a', 'b'], 'v', 'wide', 'shop'],
      ['delete', ['x'], undefined, 'table', 'shop'],
    ]);
  });

  it('answers unknown nouns, flags and -o values with exit 2', async () => {
    const h = harness();
    h.cli.noun(
      'get',
      { name: 'stage', aliases: [], plural: 'stages' },
      { description: 'x', run: async () => undefined },
    );
    expect((await h.run(['get', 'stagez'])).code).toBe(2);
    expect((await h.run(['get', 'stage', '--nope'])).code).toBe(2);
    expect((await h.run(['get', 'stage', '-o', 'xml'])).code).toBe(2);
    expect((await h.run(['get', 'stage', '--request-timeout', 'soon'])).code).toBe(2);
  });
});
