/**
 * `npm test` without a service it needs stops before any test with one message naming
 * the service and the variable that points the tests at another (test/setup/services.ts).
 * The real vitest binary runs one small test file with PostgreSQL pointed at a closed port.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './cli-helpers.js';

const run = promisify(execFile);

describe('the test suite preflight', () => {
  it('names a missing service and its variable, and runs no test', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, BATON_TEST_PG_URL: 'postgres://tester:hunter2@127.0.0.1:1/none' };
    // The run under test must not overwrite this suite's own report.
    delete env.BATON_TEST_REPORT_DIR;
    const vitest = join(REPO_ROOT, 'node_modules', '.bin', 'vitest');
    const outcome = await run(vitest, ['run', 'test/core/graph.test.ts'], {
      cwd: REPO_ROOT,
      env,
      timeout: 60_000,
    }).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({
        code: e.code ?? -1,
        out: `${e.stdout ?? ''}${e.stderr ?? ''}`,
      }),
    );
    expect(outcome.code, outcome.out).not.toBe(0);
    expect(outcome.out).toContain('PostgreSQL at postgres://tester:***@127.0.0.1:1/none (ECONNREFUSED)');
    expect(outcome.out).toContain('set BATON_TEST_PG_URL to use another');
    expect(outcome.out).not.toContain('hunter2');
    // Stopped before any test file ran.
    expect(outcome.out).not.toMatch(/Test Files|✓/);
  });
});
