/**
 * How assets and their check results read in the terminal: the check tables of
 * `baton asset show`, and the assets a run materialized under `baton show`.
 */
import type { AssetCheckResult, RunMaterialization } from '../store/ports/assets.js';
import { table } from './render.js';

/** Failing rows printed under a failed check; the JSON output has the whole sample. */
const SAMPLE_ROWS_PRINTED = 5;

/** A version as people read it: the first 12 hex digits, as git shortens hashes. */
export function shortVersion(version: string | null): string {
  return version === null ? '-' : version.slice(0, 12);
}

/** A table of check results, then what each failed one found, with a few failing rows. */
export function renderChecks(checks: readonly AssetCheckResult[]): string {
  const rows = table(
    ['CHECK', 'SEVERITY', 'RESULT', 'FAILING'],
    checks.map((c) => [c.name, c.severity, c.passed ? 'passed' : 'FAILED', String(c.failingCount)]),
  );
  const details = checks
    .filter((c) => !c.passed)
    .flatMap((c) => [
      `  ${c.name}: ${c.message ?? `${c.failingCount} failing row${c.failingCount === 1 ? '' : 's'}`}`,
      ...c.sample.slice(0, SAMPLE_ROWS_PRINTED).map((row) => `    ${JSON.stringify(row)}`),
    ]);
  return details.length === 0 ? rows : `${rows}\n${details.join('\n')}`;
}

/** `2 passed, 1 FAILED (error)`: a materialization's checks in one cell. */
function checksCell(checks: readonly AssetCheckResult[]): string {
  if (checks.length === 0) return '-';
  const passed = checks.filter((c) => c.passed).length;
  const failed = checks.filter((c) => !c.passed);
  const severities = [...new Set(failed.map((c) => c.severity))].join(', ');
  return failed.length === 0 ? `${passed} passed` : `${passed} passed, ${failed.length} FAILED (${severities})`;
}

/**
 * The `assets` section of `baton show`: what the run materialized (one row per asset and
 * attempt), then the check results of each materialization that ran checks.
 */
export function renderRunAssets(assets: readonly RunMaterialization[], more: boolean): string {
  const lines = [
    'assets',
    table(
      ['ASSET', 'VERSION', 'TASK', 'ATTEMPT', 'ROWS', 'CHECKS'],
      assets.map((m) => [
        m.assetKey,
        shortVersion(m.version),
        m.taskId,
        String(m.attempt),
        m.rowCount === null ? '-' : String(m.rowCount),
        checksCell(m.checks),
      ]),
    ),
  ];
  if (more) lines.push(`(the first ${assets.length} are listed; baton show --json has them too)`);
  for (const m of assets) {
    if (m.checks.length === 0) continue;
    lines.push('', `checks of ${m.assetKey} (task ${m.taskId}, attempt ${m.attempt})`, renderChecks(m.checks));
  }
  return lines.join('\n');
}

/** An asset a run materialized, as `baton show --json` prints it. */
export function runAssetJson(m: RunMaterialization): Record<string, unknown> {
  return {
    asset: m.assetKey,
    version: m.version,
    task: m.taskId,
    attempt: m.attempt,
    at: new Date(m.at).toISOString(),
    location: m.location,
    size: m.size,
    row_count: m.rowCount,
    inputs: m.inputs.map((i) => ({ asset: i.assetKey, version: i.version })),
    checks: m.checks.map((c) => ({
      name: c.name,
      kind: c.kind,
      severity: c.severity,
      passed: c.passed,
      failing_count: c.failingCount,
      message: c.message,
      sample: c.sample,
    })),
  };
}
