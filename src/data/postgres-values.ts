/**
 * Values between PostgreSQL and the formats of a postgres mount.
 *
 * Reading: the mount's pool parses column text with `MOUNT_TYPES`, so that a row is ready
 * for JSON: int8 and numeric become numbers when the number is exact, else their text;
 * dates and timestamps stay text, made ISO 8601 (never a JS Date, which would move a
 * timestamp without time zone by the reader's own zone); bytea stays `\x` hex text.
 *
 * Writing: a created table's column types are inferred over the rows (`widen`), and a value
 * is bound as text that the column's input function reads (`toParam`).
 */
import pg from 'pg';
import { formatCsvRecord } from './csv.js';

const OID = {
  bytea: 17,
  int8: 20,
  float4: 700,
  float8: 701,
  date: 1082,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  numeric: 1700,
} as const;

/** int8 text as a number when it is a safe integer, else as text. */
export function int8ToJson(text: string): number | string {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
}

/** numeric text as a number when the number is exactly that decimal, else as text. */
export function numericToJson(text: string): number | string {
  const n = Number(text);
  if (!Number.isFinite(n)) return text;
  const shown = String(n);
  return !shown.includes('e') && shown === canonicalDecimal(text) ? n : text;
}

/** `-007.500` → `-7.5`, `-0.0` → `0`. */
function canonicalDecimal(text: string): string {
  let [whole = '', fraction = ''] = text.replace(/^\+/, '').split('.');
  const negative = whole.startsWith('-');
  whole = whole.replace(/^-/, '').replace(/^0+(?=\d)/, '');
  fraction = fraction.replace(/0+$/, '');
  const body = fraction ? `${whole}.${fraction}` : whole;
  return negative && /[1-9]/.test(body) ? `-${body}` : body;
}

/** float text as a number, NaN and the infinities as text (JSON has none of them). */
function floatToJson(text: string): number | string {
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

const TIMESTAMP = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?:([+-]\d\d)(:\d\d)?(:\d\d)?)?$/;

/**
 * A timestamp as PostgreSQL writes it with DateStyle ISO (`2024-01-02 03:04:05.5+00`) in
 * ISO 8601 (`2024-01-02T03:04:05.5Z`); `infinity` and BC dates as written.
 */
export function isoTimestamp(text: string): string {
  const m = TIMESTAMP.exec(text);
  if (!m) return text;
  const [, date, time, hours, minutes, seconds] = m;
  if (hours === undefined) return `${date}T${time}`;
  // ISO 8601 has no seconds in an offset; only historical zones have them, and UTC is used.
  if (seconds !== undefined) return text;
  if (hours === '+00' && (minutes === undefined || minutes === ':00')) return `${date}T${time}Z`;
  return `${date}T${time}${hours}${minutes ?? ':00'}`;
}

const raw = (text: string) => text;

/** The type parsers of a postgres mount's pool (see the header). */
export const MOUNT_TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    switch (oid) {
      case OID.int8:
        return int8ToJson;
      case OID.numeric:
        return numericToJson;
      case OID.float4:
      case OID.float8:
        return floatToJson;
      case OID.timestamp:
      case OID.timestamptz:
        return isoTimestamp;
      case OID.date:
      case OID.bytea:
      case OID.interval:
        return raw;
      default:
        return pg.types.getTypeParser(oid, format);
    }
  },
};

/** A parsed value as CSV text: null stays null, structures are JSON. */
export function toCsvText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/** Rows fetched in array mode, as JSON Lines, `names` giving the keys. */
export function rowsToJsonLines(names: readonly string[], rows: readonly unknown[][]): string {
  let out = '';
  for (const row of rows) {
    // No prototype: a column named `__proto__` is a column like any other.
    const object: Record<string, unknown> = Object.create(null);
    for (let i = 0; i < names.length; i++) object[names[i] as string] = row[i] ?? null;
    out += `${JSON.stringify(object)}\n`;
  }
  return out;
}

/** Rows fetched in array mode, as CSV records. */
export function rowsToCsv(rows: readonly unknown[][]): string {
  let out = '';
  for (const row of rows) out += formatCsvRecord(row.map(toCsvText));
  return out;
}

/** The column types a created table gets. */
export type ColumnType = 'bigint' | 'double precision' | 'boolean' | 'text' | 'jsonb';

/** The type a JSON value asks for; null for null, which fits any. */
export function jsonValueType(value: unknown): ColumnType | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return 'boolean';
  if (typeof value === 'number') return Number.isSafeInteger(value) ? 'bigint' : 'double precision';
  if (typeof value === 'object') return 'jsonb';
  return 'text';
}

const CSV_INTEGER = /^-?(0|[1-9]\d*)$/;
const CSV_FLOAT = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/**
 * The type a CSV field asks for: integers and decimals as the mount writes them (a leading
 * zero, as in a zip code, keeps a field text), `true`/`false` as boolean, the rest text.
 */
export function csvValueType(value: string | null): ColumnType | null {
  if (value === null) return null;
  if (CSV_INTEGER.test(value)) return Number.isSafeInteger(Number(value)) ? 'bigint' : 'text';
  if (CSV_FLOAT.test(value)) return 'double precision';
  if (value === 'true' || value === 'false') return 'boolean';
  return 'text';
}

/** The type of a column that holds values of types `a` and `b`: integers and floats make floats, any other mix text. */
export function widen(a: ColumnType | null, b: ColumnType | null): ColumnType | null {
  if (a === null) return b;
  if (b === null || a === b) return a;
  const numbers = (t: ColumnType) => t === 'bigint' || t === 'double precision';
  return numbers(a) && numbers(b) ? 'double precision' : 'text';
}

/**
 * A value bound as a parameter. PostgreSQL reads the text with the column's input
 * function; a JSON column gets JSON text for any value (a string included), an array
 * column a JS array (which the driver writes as an array literal), other columns JSON text
 * for structures.
 */
export function toParam(value: unknown, column: { readonly json: boolean; readonly array: boolean }): unknown {
  if (value === null || value === undefined) return null;
  if (column.json) return JSON.stringify(value);
  if (Array.isArray(value) && column.array) return value;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
