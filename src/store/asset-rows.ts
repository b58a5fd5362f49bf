/**
 * The SQL and row mapping both stores share for assets (ports/assets.ts). Statements are
 * written with `?` placeholders; PostgreSQL numbers them (see numberedPlaceholders). Each
 * materialization's row is written with its inputs and check results in one transaction by
 * the store; the `assets` table keeps one row per key pointing at its latest
 * materialization, so that listings and staleness read one row per asset.
 */
import type { Row } from './rows.js';
import { num } from './rows.js';
import type {
  AssetAtLocation,
  AssetCheckResult,
  AssetColumn,
  AssetInput,
  AssetLink,
  AssetMaterialization,
  AssetMaterializationRecord,
  AssetSummary,
  ResultCacheEntry,
  RunMaterialization,
} from './ports/assets.js';
import { ASSET_CHECK_SAMPLE_ROWS } from './ports/assets.js';

export const INSERT_MATERIALIZATION = `
INSERT INTO asset_materializations (asset_key, version, run_id, flow, task_id, attempt, at, location, size, row_count,
    schema)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id, task_id, attempt, asset_key) DO NOTHING
RETURNING id`;

export const EXISTING_MATERIALIZATION = `
SELECT id FROM asset_materializations WHERE run_id = ? AND task_id = ? AND attempt = ? AND asset_key = ?`;

export const INSERT_INPUT = `
INSERT INTO asset_inputs (materialization_id, input_key, input_version) VALUES (?, ?, ?)
ON CONFLICT (materialization_id, input_key) DO NOTHING`;

export const INSERT_CHECK = `
INSERT INTO asset_check_results (materialization_id, position, name, kind, severity, passed, failing_count, sample,
    message)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`;

/** Points the key at the new materialization unless a newer one is recorded already. */
export const UPSERT_LATEST = `
INSERT INTO assets (key, latest_id) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET latest_id = excluded.latest_id WHERE assets.latest_id < excluded.latest_id`;

const SUMMARY = `
SELECT a.key, m.id, m.version, m.at, m.flow, m.task_id, m.run_id,
  EXISTS (
    SELECT 1 FROM asset_inputs i
      JOIN assets u ON u.key = i.input_key
      JOIN asset_materializations um ON um.id = u.latest_id
    WHERE i.materialization_id = m.id AND i.input_version IS NOT NULL AND um.version <> i.input_version
  ) AS stale
FROM assets a JOIN asset_materializations m ON m.id = a.latest_id`;

export const LIST_ASSETS = `${SUMMARY} WHERE a.key > ? ORDER BY a.key LIMIT ?`;
export const GET_ASSET = `${SUMMARY} WHERE a.key = ?`;

export const VERSIONS = `
SELECT * FROM asset_materializations WHERE asset_key = ? AND id < ? ORDER BY id DESC LIMIT ?`;

/** Inputs of a page of materializations, one placeholder per id. */
export const INPUTS_OF = (ids: readonly number[]): string =>
  `SELECT * FROM asset_inputs WHERE materialization_id IN (${ids.map(() => '?').join(', ')})
   ORDER BY materialization_id, input_key`;

export const UPSTREAM = `
SELECT i.input_key AS key, i.input_version AS version_read, um.version AS latest_version
FROM assets a
  JOIN asset_inputs i ON i.materialization_id = a.latest_id
  LEFT JOIN assets u ON u.key = i.input_key
  LEFT JOIN asset_materializations um ON um.id = u.latest_id
WHERE a.key = ?
ORDER BY i.input_key`;

export const DOWNSTREAM = `
SELECT d.key, i.input_version AS version_read, um.version AS latest_version
FROM asset_inputs i
  JOIN assets d ON d.latest_id = i.materialization_id
  LEFT JOIN assets u ON u.key = i.input_key
  LEFT JOIN asset_materializations um ON um.id = u.latest_id
WHERE i.input_key = ?
ORDER BY d.key`;

/** Assets whose latest version lives at one of the locations, one placeholder per location. */
export const AT_LOCATIONS = (locations: readonly string[]): string =>
  `SELECT a.key, m.location, m.version FROM assets a JOIN asset_materializations m ON m.id = a.latest_id
   WHERE m.location IN (${locations.map(() => '?').join(', ')}) ORDER BY a.key`;

export const CHECKS_OF = `SELECT * FROM asset_check_results WHERE materialization_id = ? ORDER BY position`;

/** A run's materializations; the unique key (run_id, task_id, attempt, asset_key) serves it. */
export const RUN_MATERIALIZATIONS = `SELECT * FROM asset_materializations WHERE run_id = ? ORDER BY id LIMIT ?`;

/** Check results of several materializations, one placeholder per id. */
export const CHECKS_OF_MANY = (ids: readonly number[]): string =>
  `SELECT * FROM asset_check_results WHERE materialization_id IN (${ids.map(() => '?').join(', ')})
   ORDER BY materialization_id, position`;

/** Materializations older than a time that are no asset's latest: what retention deletes. */
export const PRUNABLE_VERSIONS = `SELECT m.id FROM asset_materializations m
   WHERE m.at < ? AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.latest_id = m.id) ORDER BY m.id`;

/** The largest id: `beforeId` when none is given. */
export const NO_ID_BOUND = Number.MAX_SAFE_INTEGER;

/** `?` placeholders as PostgreSQL's `$1`, `$2`, …; the statements above hold no `?` in text. */
export function numberedPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** The parameters of INSERT_MATERIALIZATION. */
export function materializationArgs(m: AssetMaterialization): unknown[] {
  return [
    m.assetKey,
    m.version,
    m.runId,
    m.flow,
    m.taskId,
    m.attempt,
    m.at,
    m.location,
    m.size,
    m.rowCount,
    m.schema === null ? null : JSON.stringify(m.schema),
  ];
}

/**
 * The parameters of INSERT_CHECK for each result; `flag` turns `passed` into what the
 * dialect stores (0/1 on SQLite, a boolean on PostgreSQL). A sample is cut to
 * ASSET_CHECK_SAMPLE_ROWS rows here, whatever the caller gave.
 */
export function checkArgs(id: number, checks: readonly AssetCheckResult[], flag: (b: boolean) => unknown): unknown[][] {
  return checks.map((c, position) => [
    id,
    position,
    c.name,
    c.kind,
    c.severity,
    flag(c.passed),
    c.failingCount,
    JSON.stringify(c.sample.slice(0, ASSET_CHECK_SAMPLE_ROWS)),
    c.message,
  ]);
}

export function toAssetSummary(row: Row): AssetSummary {
  return {
    key: row.key as string,
    latestId: num(row.id) as number,
    latestVersion: row.version as string,
    latestAt: num(row.at) as number,
    flow: row.flow as string,
    taskId: row.task_id as string,
    runId: row.run_id as string,
    stale: row.stale === true || Number(row.stale) === 1,
  };
}

export function toAssetLink(row: Row): AssetLink {
  const versionRead = (row.version_read as string | null) ?? null;
  const latestVersion = (row.latest_version as string | null) ?? null;
  return {
    key: row.key as string,
    versionRead,
    latestVersion,
    stale: versionRead !== null && latestVersion !== null && versionRead !== latestVersion,
  };
}

/** Materialization rows with their inputs (rows of asset_inputs, ordered by materialization). */
export function toMaterializations(rows: readonly Row[], inputRows: readonly Row[]): AssetMaterializationRecord[] {
  const inputs = new Map<number, AssetInput[]>();
  for (const row of inputRows) {
    const id = num(row.materialization_id) as number;
    let list = inputs.get(id);
    if (!list) inputs.set(id, (list = []));
    list.push({ assetKey: row.input_key as string, version: (row.input_version as string | null) ?? null });
  }
  return rows.map((row) => {
    const id = num(row.id) as number;
    return {
      id,
      assetKey: row.asset_key as string,
      version: row.version as string,
      runId: row.run_id as string,
      flow: row.flow as string,
      taskId: row.task_id as string,
      attempt: num(row.attempt) as number,
      at: num(row.at) as number,
      location: row.location as string,
      size: num(row.size),
      rowCount: num(row.row_count),
      schema: row.schema === null ? null : (JSON.parse(row.schema as string) as AssetColumn[]),
      inputs: inputs.get(id) ?? [],
    };
  });
}

export function toAssetAtLocation(row: Row): AssetAtLocation {
  return { key: row.key as string, location: row.location as string, version: row.version as string };
}

/** Materializations with their inputs and their check results (rows of asset_check_results). */
export function toRunMaterializations(
  rows: readonly Row[],
  inputRows: readonly Row[],
  checkRows: readonly Row[],
): RunMaterialization[] {
  const checks = new Map<number, AssetCheckResult[]>();
  for (const row of checkRows) {
    const id = num(row.materialization_id) as number;
    let list = checks.get(id);
    if (!list) checks.set(id, (list = []));
    list.push(toCheckResult(row));
  }
  return toMaterializations(rows, inputRows).map((m) => ({ ...m, checks: checks.get(m.id) ?? [] }));
}

export function toCheckResult(row: Row): AssetCheckResult {
  return {
    name: row.name as string,
    kind: row.kind as string,
    severity: row.severity as 'error' | 'warn',
    passed: row.passed === true || Number(row.passed) === 1,
    failingCount: num(row.failing_count) as number,
    sample: JSON.parse(row.sample as string) as unknown[],
    message: (row.message as string | null) ?? null,
  };
}

/** A later success with the same key replaces the entry: both are as good, the newer is likelier still readable. */
export const UPSERT_RESULT_CACHE = `
INSERT INTO result_cache (key, flow, task_id, run_id, task_run_id, attempt, output, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET flow = excluded.flow, task_id = excluded.task_id, run_id = excluded.run_id,
  task_run_id = excluded.task_run_id, attempt = excluded.attempt, output = excluded.output, at = excluded.at`;

export const GET_RESULT_CACHE = `SELECT * FROM result_cache WHERE key = ?`;

export const PRUNE_RESULT_CACHE = `DELETE FROM result_cache WHERE at < ?`;

export function resultCacheArgs(e: ResultCacheEntry): unknown[] {
  return [e.key, e.flow, e.taskId, e.runId, e.taskRunId, e.attempt, JSON.stringify(e.output ?? null), e.at];
}

export function toResultCacheEntry(row: Row): ResultCacheEntry {
  return {
    key: String(row.key),
    flow: String(row.flow),
    taskId: String(row.task_id),
    runId: String(row.run_id),
    taskRunId: String(row.task_run_id),
    attempt: Number(row.attempt),
    output: JSON.parse(String(row.output)) as unknown,
    at: Number(row.at),
  };
}
