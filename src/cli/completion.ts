// Shell completion (docs/cli.md): `lanyard completion bash|zsh|fish` prints a small script that asks the program
// itself for candidates (`lanyard __complete <words...> <current word>`), as kubectl's scripts do. The candidates
// come from the command tree, so every command, noun, alias-free name, flag and flag choice completes without a
// second list to maintain; only the capabilities of the command being typed are loaded.
import { Argument, type Command, type Option } from 'commander';
import type { Cli } from './framework.ts';
import { GLOBAL_FLAGS } from './argv.ts';
import { OUTPUT_FORMATS } from './output.ts';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

export function completionScript(shell: Shell, name: string): string {
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  switch (shell) {
    case 'bash':
      return `# bash completion for ${name}; load it with: source <(${name} completion bash)
${fn}() {
  local IFS=$'\\n'
  COMPREPLY=($(${name} __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F ${fn} ${name}
`;
    case 'zsh':
      return `#compdef ${name}
# zsh completion for ${name}; load it with: source <(${name} completion zsh)   (after compinit)
${fn}() {
  local -a candidates
  candidates=("\${(@f)$(${name} __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  if (( \${#candidates[@]} )) && [[ -n "\${candidates[1]}" ]]; then
    compadd -a candidates
  else
    _files
  fi
}
compdef ${fn} ${name}
`;
    case 'fish':
      return `# fish completion for ${name}; load it with: ${name} completion fish | source
function __${fn}_complete
    set -l words (commandline -opc) (commandline -ct)
    ${name} __complete $words[2..-1] 2>/dev/null
end
complete -c ${name} -f -a '(__${fn}_complete)'
`;
  }
}

/** Values offered for a flag's argument: its choices, and the output formats for -o. */
function valuesOf(o: Option): string[] {
  if (o.argChoices) return o.argChoices;
  if (o.long === '--output') return [...OUTPUT_FORMATS, 'jsonpath=', 'custom-columns='];
  return [];
}

function findOption(cmd: Command, word: string): Option | undefined {
  const flag = word.includes('=') ? word.slice(0, word.indexOf('=')) : word;
  return cmd.options.find((o) => o.long === flag || o.short === flag);
}

/**
 * Candidates for the last word of `words` (the one being typed; may be empty), given the words before it.
 * `program` must contain the commands those words name.
 */
export function complete(program: Command, words: readonly string[]): string[] {
  const typed = words.slice(0, -1);
  const current = words[words.length - 1] ?? '';
  let cmd = program;
  let pendingValue: Option | undefined;
  for (const w of typed) {
    if (pendingValue) {
      pendingValue = undefined;
      continue;
    }
    if (w.startsWith('-')) {
      const o = findOption(cmd, w);
      const global = GLOBAL_FLAGS.find((g) => g.long === w || g.short === w);
      if ((o && (o.required || o.optional) && !w.includes('=')) || (!o && global?.value))
        pendingValue = o ?? ({ long: global!.long } as Option);
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
    if (sub) cmd = sub;
  }
  const visible = (c: Command) => !(c as unknown as { _hidden?: boolean })._hidden && c.name() !== 'help';
  let candidates: string[];
  if (pendingValue) {
    candidates = valuesOf(pendingValue);
  } else if (current.startsWith('-')) {
    candidates = cmd.options
      .filter((o) => !o.hidden)
      .flatMap((o) => [o.long, o.short].filter((f): f is string => !!f));
    if (cmd !== program || cmd.commands.length === 0) candidates.push('--help');
  } else {
    candidates = cmd.commands.filter(visible).map((c) => c.name());
  }
  return [...new Set(candidates)].filter((c) => c.startsWith(current)).sort();
}

export function registerCompletionCommand(cli: Cli): void {
  cli.program
    .command('completion')
    .description('Print a shell completion script (bash, zsh or fish)')
    .addArgument(new Argument('<shell>', 'the shell').choices(SHELLS))
    .addHelpText(
      'after',
      `
Load it in the current shell:
  bash:  source <(lanyard completion bash)
  zsh:   source <(lanyard completion zsh)
  fish:  lanyard completion fish | source`,
    )
    .action((shell: Shell) => cli.io.stdout(completionScript(shell, 'lanyard')));
}
