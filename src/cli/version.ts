// `lanyard version [-o json|yaml]`: the package version, the commit the build embedded and the Node runtime.
import { Option } from 'commander';
import type { Cli } from './framework.ts';
import { BUILD_INFO } from './build-info.ts';

export interface VersionInfo {
  version: string;
  commit: string;
  node: string;
  platform: string;
}

export function versionInfo(): VersionInfo {
  return { ...BUILD_INFO, node: process.version, platform: `${process.platform}/${process.arch}` };
}

export async function renderVersion(v: VersionInfo, output: 'text' | 'json' | 'yaml'): Promise<string> {
  if (output === 'json') return JSON.stringify(v, null, 2) + '\n';
  if (output === 'yaml') return (await import('yaml')).stringify(v);
  return `lanyard ${v.version} (commit ${v.commit}, node ${v.node}, ${v.platform})\n`;
}

export function registerVersionCommand(cli: Cli): void {
  cli.program
    .command('version')
    .description('Print the version, the git commit it was built from and the Node runtime')
    .addOption(
      new Option('-o, --output <format>', 'output format').choices(['text', 'json', 'yaml']).default('text'),
    )
    .action(async (opts: { output: 'text' | 'json' | 'yaml' }) =>
      cli.io.stdout(await renderVersion(versionInfo(), opts.output)),
    );
}
