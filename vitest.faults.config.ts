import { defineConfig } from 'vitest/config';

// Fault tests: process churn, database outages and clock skew against the real
// PostgreSQL server. One file at a time, since some of them restart the server. They run
// beside busy loops (test/faults/busy-loops.ts, FAULTS_BUSY_LOOPS): CI machines are loaded.
const reportDir = process.env.BATON_TEST_REPORT_DIR;

export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    globalSetup: ['test/setup/services.ts', 'test/faults/busy-loops.ts'],
    pool: 'forks',
    ...(reportDir ? { reporters: ['default', 'json'], outputFile: { json: `${reportDir}/results-faults.json` } } : {}),
  },
});
