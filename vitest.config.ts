import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests start real daemons and child processes; two cores only.
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
