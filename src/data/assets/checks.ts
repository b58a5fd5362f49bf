/**
 * Data quality checks, run in DuckDB over one object (the asset's materialization, seen as
 * the view `asset`): each check is one query that returns the failing rows, counted and
 * sampled by DuckDB, never by a loop over rows here. Checks over the whole object (row
 * count, schema, freshness) read one aggregate row.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { AssetCheckSpec } from '../../core/asset-spec.js';
import { formatDuration } from '../../core/duration.js';
import type { AssetCheckResult } from '../../store/ports/assets.js';
import { ASSET_CHECK_SAMPLE_ROWS } from '../../store/ports/assets.js';

/** What a check may need beyond the object: the time, and another asset's data. */
export interface CheckEnvironment {
  /** Now, in ms (freshness). */
  readonly now: number;
  /**
   * A DuckDB table expression (`read_parquet('…')`) over the latest version of an asset,
   * or null when Baton knows no such asset (references).
   */
  reference(assetKey: string): Promise<string | null>;
}

/** Runs every check over the view `asset`, in order; a query DuckDB refuses fails its check with the reason. */
export async function runChecks(
  conn: DuckDBConnection,
  checks: readonly AssetCheckSpec[],
  env: CheckEnvironment,
): Promise<AssetCheckResult[]> {
  const results: AssetCheckResult[] = [];
  for (const check of checks) {
    try {
      results.push(await runCheck(conn, check, env));
    } catch (error) {
      // A missing column, a bad type or bad SQL: the check cannot pass, and says why.
      results.push(result(check, 1, [], `could not run: ${firstLine((error as Error).message)}`));
    }
  }
  return results;
}

async function runCheck(
  conn: DuckDBConnection,
  check: AssetCheckSpec,
  env: CheckEnvironment,
): Promise<AssetCheckResult> {
  switch (check.kind) {
    case 'not_null':
      return failingRows(
        conn,
        check,
        `SELECT * FROM asset WHERE ${check.columns.map((c) => `${ident(c)} IS NULL`).join(' OR ')}`,
      );
    case 'unique': {
      // Rows whose key is held by another row too; a key with a NULL is not_null's concern.
      const cols = check.columns.map(ident).join(', ');
      const present = check.columns.map((c) => `${ident(c)} IS NOT NULL`).join(' AND ');
      return failingRows(
        conn,
        check,
        `SELECT * FROM asset WHERE ${present} QUALIFY count(*) OVER (PARTITION BY ${cols}) > 1`,
      );
    }
    case 'accepted_values': {
      // Text is compared as text (a status in any column type); numbers and booleans as
      // typed values, so that 1 matches a DOUBLE 1.0.
      const c = ident(check.column);
      const texts = check.values.every((v) => typeof v === 'string');
      const list = check.values.map((v) => (typeof v === 'string' ? literal(v) : String(v))).join(', ');
      const value = texts ? `CAST(${c} AS VARCHAR)` : c;
      return failingRows(conn, check, `SELECT * FROM asset WHERE ${c} IS NOT NULL AND ${value} NOT IN (${list})`);
    }
    case 'range': {
      const c = ident(check.column);
      const out = [
        ...(check.min === null ? [] : [`${c} < ${number(check.min)}`]),
        ...(check.max === null ? [] : [`${c} > ${number(check.max)}`]),
      ];
      return failingRows(conn, check, `SELECT * FROM asset WHERE ${out.join(' OR ')}`);
    }
    case 'row_count': {
      const n = Number((await one(conn, 'SELECT count(*) AS n FROM asset')).n);
      const low = check.min !== null && n < check.min;
      const high = check.max !== null && n > check.max;
      if (!low && !high) return result(check, 0, [], null);
      return result(check, 1, [], `${n} rows, ${low ? `fewer than ${check.min}` : `more than ${check.max}`}`);
    }
    case 'freshness': {
      const row = await one(
        conn,
        `SELECT epoch_ms(max(CAST(${ident(check.column)} AS TIMESTAMPTZ))) AS latest FROM asset`,
      );
      if (row.latest === null) return result(check, 1, [], `no value in ${check.column}`);
      const age = env.now - Number(row.latest);
      if (age <= check.maxAgeMs) return result(check, 0, [], null);
      return result(
        check,
        1,
        [],
        `the newest ${check.column} is ${formatDuration(age)} old, older than ${formatDuration(check.maxAgeMs)}`,
      );
    }
    case 'schema': {
      const reader = await conn.runAndReadAll('DESCRIBE asset');
      const actual = new Map(
        reader.getRowObjectsJson().map((r) => [String(r.column_name), String(r.column_type)] as const),
      );
      const wrong = Object.entries(check.columns).flatMap(([column, expected]) => {
        const found = actual.get(column) ?? null;
        return found !== null && sameType(found, expected) ? [] : [{ column, expected, actual: found }];
      });
      return result(check, wrong.length, wrong, wrong.length === 0 ? null : `${wrong.length} column(s) differ`);
    }
    case 'references': {
      const target = await env.reference(check.asset);
      if (target === null) return result(check, 1, [], `asset ${check.asset} has no version to check against`);
      const c = ident(check.column);
      return failingRows(
        conn,
        check,
        `SELECT * FROM asset WHERE ${c} IS NOT NULL AND ${c} NOT IN (SELECT ${ident(check.columnInAsset)} FROM ${target} WHERE ${ident(check.columnInAsset)} IS NOT NULL)`,
      );
    }
    case 'sql':
      return failingRows(conn, check, stripSemicolon(check.sql));
  }
}

/** Counts and samples the rows `query` returns: the rows that break the check. */
async function failingRows(conn: DuckDBConnection, check: AssetCheckSpec, query: string): Promise<AssetCheckResult> {
  const count = Number((await one(conn, `SELECT count(*) AS n FROM (${query})`)).n);
  if (count === 0) return result(check, 0, [], null);
  const sample = (
    await conn.runAndReadAll(`SELECT * FROM (${query}) LIMIT ${ASSET_CHECK_SAMPLE_ROWS}`)
  ).getRowObjectsJson();
  return result(check, count, sample, null);
}

function result(
  check: AssetCheckSpec,
  failing: number,
  sample: readonly unknown[],
  message: string | null,
): AssetCheckResult {
  return {
    name: check.name,
    kind: check.kind,
    severity: check.severity,
    passed: failing === 0,
    failingCount: failing,
    sample,
    message,
  };
}

async function one(conn: DuckDBConnection, sql: string): Promise<Record<string, unknown>> {
  return ((await conn.runAndReadAll(sql)).getRowObjectsJson()[0] ?? {}) as Record<string, unknown>;
}

/** A column name as a DuckDB identifier, whatever it holds. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A string as a DuckDB literal. */
export function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function number(n: number): string {
  // Finite by the schema; written in full so that DuckDB compares it as a number.
  return String(n);
}

/** Types compare by name, case aside, with DuckDB's aliases for the common ones. */
function sameType(actual: string, expected: string): boolean {
  const norm = (t: string) => {
    const u = t.trim().toUpperCase();
    return TYPE_ALIASES[u] ?? u;
  };
  return norm(actual) === norm(expected);
}

const TYPE_ALIASES: Readonly<Record<string, string>> = {
  INT8: 'BIGINT',
  LONG: 'BIGINT',
  INT4: 'INTEGER',
  INT: 'INTEGER',
  SIGNED: 'INTEGER',
  INT2: 'SMALLINT',
  SHORT: 'SMALLINT',
  FLOAT8: 'DOUBLE',
  FLOAT4: 'FLOAT',
  REAL: 'FLOAT',
  STRING: 'VARCHAR',
  TEXT: 'VARCHAR',
  BOOL: 'BOOLEAN',
  LOGICAL: 'BOOLEAN',
  DATETIME: 'TIMESTAMP',
};

function stripSemicolon(sql: string): string {
  return sql.trim().replace(/;\s*$/, '');
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.slice(0, 500) ?? '';
}
