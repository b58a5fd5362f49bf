/**
 * Column types and values between PostgreSQL and DuckDB, for `sql` tasks: a PostgreSQL
 * result loaded into DuckDB keeps its types (int8 stays BIGINT, numeric(10,2) stays
 * DECIMAL(10,2), timestamptz stays TIMESTAMPTZ), and a DuckDB result written to a new
 * PostgreSQL table gets matching column types. Values cross as text that the receiving
 * side casts to the column's type, so no value is rounded on the way.
 */
import { numericToJson } from './postgres-values.js';

/** PostgreSQL type OIDs → DuckDB column types; any other type is loaded as VARCHAR text. */
const DUCKDB_OF_OID: Readonly<Record<number, string>> = {
  16: 'BOOLEAN',
  20: 'BIGINT',
  21: 'SMALLINT',
  23: 'INTEGER',
  26: 'BIGINT',
  700: 'FLOAT',
  701: 'DOUBLE',
  1082: 'DATE',
  1083: 'TIME',
  1114: 'TIMESTAMP',
  1184: 'TIMESTAMPTZ',
  114: 'JSON',
  3802: 'JSON',
  2950: 'UUID',
};
const NUMERIC_OID = 1700;

/** The DuckDB type of a PostgreSQL column (`typeModifier` carries numeric's precision and scale). */
export function duckdbTypeOfPg(typeId: number, typeModifier: number): string {
  if (typeId === NUMERIC_OID) {
    // numeric(p, s) is stored as ((p << 16) | s) + 4; -1 is unconstrained numeric.
    if (typeModifier < 4) return 'DOUBLE';
    const precision = ((typeModifier - 4) >> 16) & 0xffff;
    const scale = (typeModifier - 4) & 0xffff;
    return precision <= 38 ? `DECIMAL(${precision}, ${scale})` : 'DOUBLE';
  }
  return DUCKDB_OF_OID[typeId] ?? 'VARCHAR';
}

/** A value from a PostgreSQL row as the text DuckDB casts to its column type; null stays null. */
export function pgValueText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/** A DuckDB column's type as `columnNamesAndTypesJson` describes it. */
export interface DuckdbColumnType {
  readonly typeId: number;
  readonly width?: number;
  readonly scale?: number;
  readonly alias?: string;
}

/** DuckDB type ids (the C API's `duckdb_type`, stable across releases). */
const T = {
  BOOLEAN: 1,
  TINYINT: 2,
  SMALLINT: 3,
  INTEGER: 4,
  BIGINT: 5,
  UTINYINT: 6,
  USMALLINT: 7,
  UINTEGER: 8,
  UBIGINT: 9,
  FLOAT: 10,
  DOUBLE: 11,
  TIMESTAMP: 12,
  DATE: 13,
  TIME: 14,
  HUGEINT: 16,
  DECIMAL: 19,
  TIMESTAMP_S: 20,
  TIMESTAMP_MS: 21,
  TIMESTAMP_NS: 22,
  LIST: 24,
  STRUCT: 25,
  MAP: 26,
  UUID: 27,
  TIMESTAMP_TZ: 31,
  UHUGEINT: 32,
  ARRAY: 33,
} as const;

const PG_OF_DUCKDB: Readonly<Record<number, string>> = {
  [T.BOOLEAN]: 'boolean',
  [T.TINYINT]: 'smallint',
  [T.SMALLINT]: 'smallint',
  [T.UTINYINT]: 'smallint',
  [T.INTEGER]: 'integer',
  [T.USMALLINT]: 'integer',
  [T.BIGINT]: 'bigint',
  [T.UINTEGER]: 'bigint',
  [T.UBIGINT]: 'numeric',
  [T.HUGEINT]: 'numeric',
  [T.UHUGEINT]: 'numeric',
  [T.FLOAT]: 'real',
  [T.DOUBLE]: 'double precision',
  [T.DATE]: 'date',
  [T.TIME]: 'time',
  [T.TIMESTAMP]: 'timestamp',
  [T.TIMESTAMP_S]: 'timestamp',
  [T.TIMESTAMP_MS]: 'timestamp',
  [T.TIMESTAMP_NS]: 'timestamp',
  [T.TIMESTAMP_TZ]: 'timestamptz',
  [T.UUID]: 'uuid',
  [T.LIST]: 'jsonb',
  [T.ARRAY]: 'jsonb',
  [T.STRUCT]: 'jsonb',
  [T.MAP]: 'jsonb',
};

/** The PostgreSQL column type a DuckDB column is written as; text for any type without a match. */
export function pgTypeOfDuckdb(type: DuckdbColumnType): string {
  if (type.alias === 'JSON') return 'jsonb';
  if (type.typeId === T.DECIMAL) return `numeric(${type.width ?? 18}, ${type.scale ?? 3})`;
  return PG_OF_DUCKDB[type.typeId] ?? 'text';
}

const INTEGER_TYPES: ReadonlySet<number> = new Set([T.BIGINT, T.UBIGINT, T.HUGEINT, T.UHUGEINT]);

/**
 * A DuckDB value (as `getRowsJson` gives it) as the task output holds it: 64- and 128-bit
 * integers and decimals as numbers when the number is exact, else as their text.
 */
export function duckdbValueToJson(value: unknown, type: DuckdbColumnType): unknown {
  if (typeof value !== 'string') return value;
  if (INTEGER_TYPES.has(type.typeId)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : value;
  }
  if (type.typeId === T.DECIMAL) return numericToJson(value);
  if (type.alias === 'JSON') {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  return value;
}

/** A DuckDB value as a bound PostgreSQL parameter: text the column casts, lists and structs as JSON. */
export function duckdbValueParam(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
