import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    reporters: ['default', './test/harness/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts', 'test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/wire/**/*.test.ts'],
          environment: 'node',
          // dist/ rebuilt when stale (tests spawn the shipped bin/lanyard.js), then one real control plane per run,
          // shared by every integration file (test/harness/global-setup.ts).
          globalSetup: ['scripts/ensure-build.mjs', 'test/harness/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
