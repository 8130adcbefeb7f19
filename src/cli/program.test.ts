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
      const recording = { ...cli, doctorCheck: (c: Parameters<typeof cli.doctorCheck>[0]) => ((addsDoctorCheck = true), cli.doctorCheck(c)) };
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

  it('loads only the capabilities of the command being run', async () => {
    const get = await buildProgram(inertIO(), { argv: ['get', 'sas'] });
    expect(get.commands.find((c) => c.name() === 'get')!.commands.map((c) => c.name())).toEqual(
      expect.arrayContaining(['project', 'serviceaccount', 'stage', 'promotion']),
    );
    // `webhook` was not loaded: it is the table's placeholder, without the webhook's own argument list.
    expect(get.commands.find((c) => c.name() === 'webhook')!.registeredArguments).toEqual([]);
  }, 60_000);
});
