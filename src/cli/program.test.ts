// The top-level table lets `lanyard <verb>` load only some capabilities; it must match what they register.
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { createCli } from './framework.ts';
import { buildProgram, CAPABILITIES, TOP_LEVEL, type Capability } from './program.ts';
import { inertIO } from './reference.ts';

describe('the top-level command table', () => {
  it('names, for every command, exactly the capabilities that register under it, with their descriptions', async () => {
    const registeredBy = new Map<string, Set<Capability>>();
    for (const cap of Object.keys(CAPABILITIES) as Capability[]) {
      const program = new Command('lanyard');
      const cli = createCli(program, inertIO());
      const doctorBefore = cli.doctor.commands.length;
      let addsDoctorCheck = false;
      const recording = {
        ...cli,
        doctorCheck: (c: Parameters<typeof cli.doctorCheck>[0]) => (
          (addsDoctorCheck = true),
          cli.doctorCheck(c)
        ),
      };
      (await CAPABILITIES[cap]())(recording);
      const names = program.commands.filter((c) => c.name() !== 'doctor').map((c) => c.name());
      if (addsDoctorCheck || cli.doctor.commands.length !== doctorBefore) names.push('doctor');
      for (const n of names) {
        if (!registeredBy.has(n)) registeredBy.set(n, new Set());
        registeredBy.get(n)!.add(cap);
        const cmd = program.commands.find((c) => c.name() === n)!;
        if (n !== 'doctor') expect(TOP_LEVEL[n]?.description, `description of ${n}`).toBe(cmd.description());
      }
    }
    expect(Object.fromEntries([...registeredBy].map(([n, s]) => [n, [...s].sort()]))).toEqual(
      Object.fromEntries(Object.entries(TOP_LEVEL).map(([n, t]) => [n, [...t.capabilities].sort()])),
    );
  }, 60_000); // imports every capability (transformed on the fly): slow on a loaded machine

  it('maps every noun word of a verb with a noun table to exactly the capability that registers it', async () => {
    const registered: Record<string, Record<string, Capability>> = {};
    for (const cap of Object.keys(CAPABILITIES) as Capability[]) {
      const cli = createCli(new Command('lanyard'), inertIO());
      const recording = {
        ...cli,
        noun: (
          verb: string,
          noun: Parameters<typeof cli.noun>[1],
          handler: Parameters<typeof cli.noun>[2],
        ) => {
          for (const w of [noun.name, ...noun.aliases]) (registered[verb] ??= {})[w] = cap;
          return cli.noun(verb, noun, handler);
        },
      };
      (await CAPABILITIES[cap]())(recording);
    }
    const tables = Object.entries(TOP_LEVEL).filter(([, t]) => t.nouns);
    expect(tables.map(([v]) => v)).toEqual(['get', 'create']);
    for (const [verb, t] of tables) expect(t.nouns, verb).toEqual(registered[verb]);
  }, 60_000);

  it('for `get sas`, loads only the projects capability and sets up only the serviceaccount noun', async () => {
    const program = await buildProgram(inertIO(), { argv: ['get', 'sas', '-p', 'shop'] });
    const get = program.commands.find((c) => c.name() === 'get')!;
    expect(get.commands.map((c) => c.name())).toEqual([
      'project',
      'role',
      'serviceaccount',
      'serviceaccounttoken',
    ]);
    const sa = get.commands.find((c) => c.name() === 'serviceaccount')!;
    expect(sa.options.map((o) => o.long)).toEqual(
      expect.arrayContaining(['--project', '--output', '--kubeconfig']),
    );
    expect(get.commands.find((c) => c.name() === 'role')!.options).toEqual([]);
    // `get` alone and an unknown noun still see every noun (help, "did you mean").
    for (const argv of [['get'], ['get', 'foo'], ['get', '--help']]) {
      const all = (await buildProgram(inertIO(), { argv })).commands.find((c) => c.name() === 'get')!;
      expect(
        all.commands.map((c) => c.name()),
        argv.join(' '),
      ).toEqual(expect.arrayContaining(['serviceaccount', 'stage', 'identity']));
      expect(
        all.commands.every((c) => c.options.length > 0),
        argv.join(' '),
      ).toBe(true);
    }
  }, 60_000);

  it('loads only the capabilities of the command being run', async () => {
    const get = await buildProgram(inertIO(), { argv: ['get'] });
    expect(get.commands.find((c) => c.name() === 'get')!.commands.map((c) => c.name())).toEqual(
      expect.arrayContaining(['project', 'serviceaccount', 'stage', 'promotion']),
    );
    // `webhook` was not loaded: it is the table's placeholder, without the webhook's own argument list.
    expect(get.commands.find((c) => c.name() === 'webhook')!.registeredArguments).toEqual([]);
  }, 60_000);
});
