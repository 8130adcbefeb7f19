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
          exclude: ['test/integration/node/**'],
          environment: 'node',
          // dist/ rebuilt when stale (tests spawn the shipped bin/lanyard.js), then one real control plane per run,
          // shared by every integration file (test/harness/global-setup.ts).
          globalSetup: ['scripts/ensure-build.mjs', 'test/harness/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'node',
          include: ['test/integration/node/**/*.test.ts'],
          environment: 'node',
          // A control plane with a real node (containerd, kubelet, kube-scheduler, kube-proxy) and the
          // images Pods run, set up when missing by scripts/ensure-node.sh (docs/adr/0710); dist/ rebuilt when stale
          // (sandbox-up.test.ts runs the shipped bin/lanyard.js).
          globalSetup: ['scripts/ensure-build.mjs', 'test/harness/node-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
