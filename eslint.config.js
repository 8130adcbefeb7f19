// Lint, type-aware, with the design's import boundaries as rules that fail (docs/adr/1011-import-boundaries.md).
// test/unit/lint-boundaries.test.ts proves that a deliberate violation fails.
import fs from 'node:fs';
import tseslint from 'typescript-eslint';

/** Every directory of src/ but core/, read at lint time so a new capability is covered without editing this file. */
const SRC_DIRS = fs
  .readdirSync(new URL('./src/', import.meta.url), { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'core')
  .map((d) => d.name);
/** Node modules that do I/O: a pure core imports none of them. */
const NODE_IO = [
  'fs',
  'fs/promises',
  'http',
  'https',
  'http2',
  'net',
  'tls',
  'dns',
  'child_process',
  'worker_threads',
  'cluster',
  'dgram',
].flatMap((m) => [m, `node:${m}`]);
const SDKS = ['@kubernetes/client-node', '@aws-sdk/*', '@smithy/*', '@aws-crypto/*', 'prom-client', 'pino'];

/** `no-restricted-imports` patterns refusing imports of the given src/ directories from anywhere below src/. */
const fromDirs = (dirs, message) => ({
  group: dirs.flatMap((d) => [`**/${d}/*`, `../${d}/*`, `./${d}/*`]),
  message,
});

/** The one rule object per file group; ESLint keeps only the last `no-restricted-imports` that applies to a file. */
const restrict = (patterns, paths = []) => ['error', { patterns, paths }];

const sdkOwners = [
  {
    group: ['@kubernetes/client-node'],
    message: 'only src/kube/ imports @kubernetes/client-node (docs/adr/1011-import-boundaries.md)',
  },
  {
    group: ['@aws-sdk/*', '@smithy/*', '@aws-crypto/*'],
    message: 'only src/aws/ imports the AWS SDK (docs/adr/0401-aws-module-boundary.md)',
  },
];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'tools/**', 'bench/results/**', 'test/images/**', 'deploy/**'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['*.js', '*.mjs', 'scripts/*.mjs', 'bin/*.js'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // process.env is read only by the config loaders (docs/adr/1011-import-boundaries.md).
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'read configuration through src/config' },
      ],
      // Type-aware: a promise nobody awaits loses its error; awaiting a non-promise is a mistake.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/kube/**', 'src/aws/**'],
    rules: { 'no-restricted-imports': restrict(sdkOwners) },
  },
  { files: ['src/kube/**/*.ts'], rules: { 'no-restricted-imports': restrict([sdkOwners[1]]) } },
  { files: ['src/aws/**/*.ts'], rules: { 'no-restricted-imports': restrict([sdkOwners[0]]) } },
  {
    // The identity core is pure: a pod and its sources in, a decision and a patch out (docs/adr/1011-import-boundaries.md).
    files: ['src/identity/**/*.ts'],
    ignores: ['src/identity/**/*.test.ts'],
    rules: {
      'no-restricted-imports': restrict([
        ...sdkOwners,
        fromDirs(
          SRC_DIRS.filter((d) => d !== 'identity'),
          'the identity core is pure: it imports only src/core/ and itself, never an I/O module',
        ),
        { group: NODE_IO, message: 'the identity core does no I/O' },
        { group: SDKS, message: 'the identity core does no I/O' },
      ]),
    },
  },
  {
    // Neutral building blocks every layer may import; they import nothing of the rest of src/.
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/**/*.test.ts'],
    rules: {
      'no-restricted-imports': restrict([
        fromDirs(SRC_DIRS, 'src/core/ is neutral: it imports nothing from the rest of src/'),
        { group: NODE_IO, message: 'src/core/ does no I/O' },
        { group: SDKS, message: 'src/core/ does no I/O' },
      ]),
    },
  },
  {
    // Configuration is read before any command runs: it may not depend on the CLI (CliError and EXIT are in src/core/).
    files: ['src/config/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict([
        ...sdkOwners,
        fromDirs(['cli'], 'config/ must not import cli/: use src/core/exit.ts for CliError and EXIT'),
      ]),
    },
  },
  {
    // `lanyard get stages` must not load the promotion controller (docs/adr/0701-cli-start-path.md).
    files: ['src/promotions/cli.ts'],
    rules: {
      'no-restricted-imports': restrict(
        [...sdkOwners],
        [
          { name: './controller.ts', message: 'promotions/cli.ts must not pull in the promotion controller' },
          {
            name: '../promotions/controller.ts',
            message: 'promotions/cli.ts must not pull in the promotion controller',
          },
        ],
      ),
    },
  },
  {
    // No function over 80 lines, blank lines and comments aside, as written and once Prettier formats them: the
    // reconcilers stay split into gather → decide → apply (docs/adr/1020-association-and-promotion-reconcilers-split.md).
    files: ['src/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }] },
  },
  {
    files: ['src/config/**', 'test/**', 'bench/**', 'scripts/**', 'src/sandbox/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // The launcher runs before any module of the product exists: it hands the environment to the bundle's code cache
    // (docs/adr/0709-one-bundle-and-a-code-cache.md).
    files: ['bin/lanyard.js'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
