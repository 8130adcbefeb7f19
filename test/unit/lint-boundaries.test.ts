// The design's import boundaries fail lint (docs/adr/1011-import-boundaries.md): each case lints a small file as if it
// sat at the given path in this repo, with the repo's own eslint.config.js, and checks that a deliberate violation is
// reported (and that the allowed form next to it is not). Type information is switched off here: the boundary rules
// do not need it, and the files do not exist on disk.
import path from 'node:path';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
let eslint: ESLint;
beforeAll(async () => {
  eslint = new ESLint({ cwd: ROOT, overrideConfig: tseslint.configs.disableTypeChecked });
  // Loading the config and the parser takes seconds on a busy machine; pay it once here, not in the first case.
  await eslint.lintText('export {};\n', { filePath: path.join(ROOT, 'src/identity/warm-up.ts') });
}, 60_000);

async function problems(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

const use = (spec: string) => `import * as m from '${spec}';\nexport const used = m;\n`;

describe('lint fails on a boundary violation', () => {
  it.each([
    ['src/identity/violation.ts', '../kube/client.ts', 'the identity core is pure'],
    ['src/identity/violation.ts', '../aws/index.ts', 'the identity core is pure'],
    ['src/identity/violation.ts', '../webhook/server.ts', 'the identity core is pure'],
    ['src/identity/violation.ts', 'node:fs', 'the identity core does no I/O'],
    ['src/identity/violation.ts', 'prom-client', 'the identity core does no I/O'],
    ['src/core/violation.ts', '../runtime/log.ts', 'src/core/ is neutral'],
    ['src/config/violation.ts', '../cli/exit.ts', 'config/ must not import cli/'],
    ['src/promotions/cli.ts', './controller.ts', 'must not pull in the promotion controller'],
    ['src/webhook/violation.ts', '@kubernetes/client-node', 'only src/kube/ imports @kubernetes/client-node'],
    ['src/verification/violation.ts', '@aws-sdk/client-sts', 'only src/aws/ imports the AWS SDK'],
  ])('%s importing %s', async (file, spec, message) => {
    const found = await problems(file, use(spec));
    expect(found).toEqual([
      expect.stringMatching(new RegExp(`^no-restricted-imports: .*${message.replace(/[/.]/g, '\\$&')}`)),
    ]);
  });

  it.each([
    ['src/identity/allowed.ts', '../core/json.ts'],
    ['src/identity/allowed.ts', 'node:path'],
    ['src/config/allowed.ts', '../core/exit.ts'],
    ['src/kube/allowed.ts', '@kubernetes/client-node'],
    ['src/aws/allowed.ts', '@aws-sdk/client-sts'],
    ['src/promotions/cli.ts', './status.ts'],
  ])('%s may import %s', async (file, spec) => {
    expect(await problems(file, use(spec))).toEqual([]);
  });

  it('refuses a function over 80 lines in a split reconciler, not in its tests (docs/adr/1020-association-and-promotion-reconcilers-split.md)', async () => {
    const body = (n: number) =>
      `export function long(): number {\n  let x = 0;\n${'  x += 1;\n'.repeat(n)}  return x;\n}\n`;
    // 81 lines with the signature and the closing brace; comments and blank lines do not count.
    const tooLong = body(77);
    const padded = body(76).replace('  let x = 0;\n', '  let x = 0;\n  // a comment\n\n  /* another */\n');
    for (const file of [
      'src/associations/controller-violation.ts',
      'src/promotions/decide-violation.ts',
      'src/verification/verifier-violation.ts',
    ]) {
      expect(await problems(file, tooLong)).toEqual([
        expect.stringMatching(/^max-lines-per-function: Function 'long' has too many lines \(81\)/),
      ]);
      expect(await problems(file, padded)).toEqual([]);
    }
    expect(await problems('src/promotions/decide.test.ts', tooLong)).toEqual([]);
  });

  it('refuses process.env outside src/config', async () => {
    const code = 'export const region = process.env.AWS_REGION;\n';
    expect(await problems('src/webhook/violation.ts', code)).toEqual([
      expect.stringMatching(/^no-restricted-properties: .*read configuration through src\/config/),
    ]);
    expect(await problems('src/config/allowed.ts', code)).toEqual([]);
  });
});
