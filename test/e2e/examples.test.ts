/**
 * Every example under examples/ runs as its header comment says, through the real CLI.
 * The database goes to a temp folder (`--db`), so the test leaves no .baton in the repo.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ShowJson } from './cli-helpers.js';
import { REPO_ROOT, baton, describeResult, parseJson, taskOf, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

/**
 * The default database of a folder, as a fingerprint: the test must neither create nor
 * touch it (a developer may have one from running the example by hand).
 */
function defaultDbFingerprint(dir: string): string {
  try {
    const st = statSync(join(dir, '.baton', 'baton.db'));
    return `${st.size}/${st.mtimeMs}`;
  } catch {
    return 'absent';
  }
}

describe('examples', () => {
  it('quickstart (TypeScript) succeeds, with enrich retried once', async () => {
    const db = join(temp.mkdir(), 'x.db');
    const before = defaultDbFingerprint(REPO_ROOT);
    const result = await baton(
      ['--db', db, 'run', 'examples/quickstart/flows/quickstart.ts', '--param', 'day=2024-03-01', '--json'],
      { cwd: REPO_ROOT, timeoutMs: 30_000 },
    );
    expect(result.code, describeResult(result)).toBe(0);
    const run = parseJson<ShowJson>(result);
    expect(run).toMatchObject({ flow: 'quickstart', state: 'succeeded', params: { day: '2024-03-01' } });
    expect(run.tasks.map((t) => [t.id, t.state])).toEqual([
      ['extract', 'succeeded'],
      ['enrich', 'succeeded'],
      ['transform', 'succeeded'],
      ['load', 'succeeded'],
    ]);
    expect(taskOf(run, 'enrich').attempts).toBe(2);
    expect(taskOf(run, 'transform').output).toEqual({ count: 3, total_eur: 225.4 });
    expect(taskOf(run, 'load').output).toBe(`loaded run ${run.id} into the warehouse`);
    expect(defaultDbFingerprint(REPO_ROOT)).toBe(before);
  }, 40_000);

  it('yaml-etl succeeds from its own folder', async () => {
    const cwd = join(REPO_ROOT, 'examples', 'yaml-etl');
    const db = join(temp.mkdir(), 'x.db');
    const before = defaultDbFingerprint(cwd);
    const result = await baton(['--db', db, 'run', 'daily_sales', '--param', 'day=2024-03-01', '--json'], {
      cwd,
      timeoutMs: 30_000,
    });
    expect(result.code, describeResult(result)).toBe(0);
    const run = parseJson<ShowJson>(result);
    expect(run).toMatchObject({ flow: 'daily_sales', state: 'succeeded' });
    expect(taskOf(run, 'aggregate').output).toEqual({
      day: '2024-03-01',
      byRegion: { eu: 1200, us: 3400, apac: 900 },
      total: 5500,
    });
    expect(taskOf(run, 'quality_gate').state).toBe('succeeded');
    expect(taskOf(run, 'report')).toMatchObject({ state: 'succeeded', output: 'report for 2024-03-01 done' });
    // one_failed: nothing failed, so the alert is skipped, with the reason.
    const alert = taskOf(run, 'alert_on_failure');
    expect(alert.state).toBe('skipped');
    expect(alert.skip_reason).toContain('one_failed');
    expect(defaultDbFingerprint(cwd)).toBe(before);
  }, 40_000);
});
