// The CLI reference (docs/cli.md) generated from the command definitions, so the docs cannot drift from the code.
// Regenerate with: npx tsx src/cli/reference.ts --write
import fs from 'node:fs';
import path from 'node:path';
import type { Command, Option } from 'commander';
import { buildProgram } from './program.ts';
import type { CliIO } from './framework.ts';

/** Flags every resource verb shares (framework.ts addGlobalFlags); documented once. */
const GLOBAL_FLAGS = new Set([
  '--project',
  '--output',
  '--no-headers',
  '--kubeconfig',
  '--context',
  '--request-timeout',
  '--verbose',
]);

export const REFERENCE_FILE = path.resolve(import.meta.dirname, '../../docs/cli.md');
const BEGIN = '<!-- BEGIN GENERATED: npx tsx src/cli/reference.ts --write -->';
const END = '<!-- END GENERATED -->';

function leaves(cmd: Command, trail: string[] = []): { path: string[]; cmd: Command }[] {
  const out: { path: string[]; cmd: Command }[] = [];
  for (const sub of cmd.commands) {
    if (sub.name() === 'help') continue;
    const p = [...trail, sub.name()];
    if (sub.commands.length) out.push(...leaves(sub, p));
    else out.push({ path: p, cmd: sub });
  }
  return out;
}

function flagRow(o: Option): string {
  const def =
    o.defaultValue === undefined || (Array.isArray(o.defaultValue) && o.defaultValue.length === 0) || o.negate
      ? ''
      : `\`${String(o.defaultValue)}\``;
  const choices = o.argChoices ? ` (${o.argChoices.join(', ')})` : '';
  const req = o.mandatory ? ' **required**' : '';
  return `| \`${o.flags}\` | ${o.description}${choices}${req} | ${def} |`;
}

/** The generated part of docs/cli.md. */
export function renderReference(program: Command): string {
  const lines: string[] = [BEGIN, ''];
  const all = leaves(program);
  const sample = all.find((l) => l.cmd.options.some((o) => o.long === '--project'));
  if (sample) {
    lines.push(
      '### Global flags of the resource verbs',
      '',
      '| Flag | Description | Default |',
      '|---|---|---|',
    );
    for (const o of sample.cmd.options.filter((o) => GLOBAL_FLAGS.has(o.long ?? ''))) lines.push(flagRow(o));
    lines.push('');
  }
  for (const { path: p, cmd } of all) {
    const parent = p.slice(0, -1);
    lines.push(`### lanyard ${p.join(' ')}`, '');
    lines.push(cmd.description() || '(no description)', '');
    lines.push('```text', `lanyard ${[...parent, cmd.name()].join(' ')} ${cmd.usage()}`.trim(), '```', '');
    if (cmd.aliases().length)
      lines.push(
        `Aliases: ${cmd
          .aliases()
          .map((a) => `\`${a}\``)
          .join(', ')}`,
        '',
      );
    const own = cmd.options.filter((o) => !GLOBAL_FLAGS.has(o.long ?? ''));
    const hasGlobal = cmd.options.some((o) => GLOBAL_FLAGS.has(o.long ?? ''));
    if (own.length) {
      lines.push('| Flag | Description | Default |', '|---|---|---|', ...own.map(flagRow), '');
    }
    if (hasGlobal) lines.push('Takes the global flags above.', '');
  }
  lines.push(END);
  return lines.join('\n');
}

/** docs/cli.md with its generated section replaced. */
export function updatedReference(current: string, program: Command): string {
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  if (start < 0 || end < 0) throw new Error(`${REFERENCE_FILE} lacks the generated-section markers`);
  return current.slice(0, start) + renderReference(program) + current.slice(end + END.length);
}

/** An IO for programs built for inspection only: it refuses to run anything. */
export function inertIO(): CliIO {
  const inert = (): never => {
    throw new Error('the reference program does not run commands');
  };
  return {
    env: {},
    stdout: () => undefined,
    stderr: () => undefined,
    stdinIsTTY: false,
    stderrIsTTY: false,
    readLine: inert,
    readStdin: inert,
    clock: { now: () => 0, sleep: inert },
    fs: { readFile: () => undefined, mode: () => undefined, exists: () => false },
    createClient: inert,
  };
}

/** The whole command tree, for inspection only: it never runs a command. */
export async function inspectionProgram(): Promise<Command> {
  return await buildProgram(inertIO());
}

if (
  process.argv[1] &&
  path.resolve(process.argv[1]) === path.resolve(import.meta.filename) &&
  process.argv.includes('--write')
) {
  const current = fs.readFileSync(REFERENCE_FILE, 'utf8');
  fs.writeFileSync(REFERENCE_FILE, updatedReference(current, await inspectionProgram()));
  process.stdout.write(`updated ${REFERENCE_FILE}\n`);
}
