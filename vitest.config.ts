import { defineConfig } from 'vitest/config';

// The main suite. Fault tests (test/faults) stop and restart shared services, so they run
// alone afterwards with vitest.faults.config.ts. BATON_TEST_REPORT_DIR adds a JSON report.
const reportDir = process.env.BATON_TEST_REPORT_DIR;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'examples/**/*.test.ts'],
    exclude: ['test/faults/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/setup/services.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    ...(reportDir ? { reporters: ['default', 'json'], outputFile: { json: `${reportDir}/results-main.json` } } : {}),
  },
});
