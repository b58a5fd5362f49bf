/**
 * Writing a table of a postgres mount: a body of JSON Lines or CSV replaces the table's
 * rows in one transaction, so that readers see the old rows or all the new ones, and a
 * body that fails to parse halfway leaves the table as it was.
 *
 * The body is streamed: rows go to the database in batches of multi-row INSERTs with bound
 * parameters as they are parsed, so that memory holds one batch, never the whole body. A
 * table that does not exist is created in the same transaction with the columns of the
 * first row (the CSV header) as text; the types inferred over all the rows are applied at
 * the end with ALTER COLUMN ... TYPE, once every row has been seen.
 */
import { createHash } from 'node:crypto';
import { TextDecoder } from 'node:util';
import type pg from 'pg';
import { BatonError } from '../core/errors.js';
import { CsvReader, CsvSyntaxError } from './csv.js';
import type { DatasetFormat } from './postgres-keys.js';
import { quoteIdent } from './postgres-keys.js';
import type { ColumnType } from './postgres-values.js';
import { csvValueType, jsonValueType, toParam, widen } from './postgres-values.js';
import type { WriteBody } from './mount.js';

/** Rows per INSERT, fewer when the columns would pass PostgreSQL's 65535 parameters. */
const BATCH_ROWS = 1000;
const MOST_PARAMS = 65_535;

/** One row parsed from the body, with the line it starts on. */
interface SourceRow {
  readonly line: number;
  /** JSON Lines: the object; CSV: the fields by header name. */
  readonly values: Readonly<Record<string, unknown>>;
}

interface Column {
  readonly name: string;
  readonly json: boolean;
  readonly array: boolean;
}

/** Where a load writes, and names for its errors. */
export interface LoadTarget {
  readonly mount: string;
  readonly key: string;
  readonly schema: string;
  readonly table: string;
  readonly format: DatasetFormat;
}

export interface LoadResult {
  readonly size: number;
  readonly sha256: string;
  readonly rows: number;
}

/**
 * Replaces the rows of `target.table` by those of `body` on `client`, which must be inside
 * a transaction the caller commits on success and rolls back on a throw.
 */
export async function loadTable(
  client: pg.PoolClient,
  target: LoadTarget,
  body: WriteBody,
  signal?: AbortSignal,
): Promise<LoadResult> {
  const qualified = `${quoteIdent(target.schema)}.${quoteIdent(target.table)}`;
  // Two writers of one table would both find it missing and both create it.
  await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [qualified]);
  const found = await client.query<{ oid: number; relkind: string }>(
    `SELECT c.oid, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2`,
    [target.schema, target.table],
  );
  const existing = found.rows[0];
  if (existing && existing.relkind !== 'r' && existing.relkind !== 'p') {
    throw new BatonError(
      'DATA_UNSUPPORTED',
      `mount "${target.mount}": ${target.schema}.${target.table} is not a table (a view, a sequence or an index), so it cannot be written`,
      { hint: 'Write to a table, or to a new name, which creates a table.' },
    );
  }
  const bytes = countingBytes(body);
  let columns: Column[] | undefined;
  let inferred: (ColumnType | null)[] = [];
  if (existing) {
    await client.query(`TRUNCATE ${qualified}`);
    columns = await tableColumns(client, existing.oid);
  }
  const sql = new InsertBatches(client, qualified, target);
  let known = new Set<string>();
  if (columns) {
    sql.setColumns(columns);
    known = new Set(columns.map((c) => c.name));
  }
  let rows = 0;
  for await (const row of parseRows(bytes.chunks, target)) {
    signal?.throwIfAborted();
    if (!columns) {
      columns = newColumns(row, target);
      await client.query(`CREATE TABLE ${qualified} (${columns.map((c) => `${quoteIdent(c.name)} text`).join(', ')})`);
      inferred = columns.map(() => null);
      sql.setColumns(columns);
      known = new Set(columns.map((c) => c.name));
    }
    for (const name of Object.keys(row.values)) {
      if (!known.has(name)) throw unknownColumn(target, row.line, name, !existing);
    }
    if (row.header) continue;
    const params = columns.map((c, i) => {
      const value = row.values[c.name];
      if (!existing) {
        const type = target.format === 'csv' ? csvValueType(value as string | null) : jsonValueType(value);
        inferred[i] = widen(inferred[i] ?? null, type);
      }
      // CSV fields are already the text a column reads; JSON values are made so.
      return target.format === 'csv' ? (value ?? null) : toParam(value, existing ? c : { json: false, array: false });
    });
    await sql.add(row.line, params);
    rows++;
  }
  await sql.flush();
  if (!columns) {
    throw new BatonError(
      'DATA_FORMAT',
      `mount "${target.mount}": ${JSON.stringify(target.key)} creates table ${target.table}, but the body holds no row to take its columns from`,
      { hint: 'Write at least one row (or, for CSV, a header row), or create the table first.' },
    );
  }
  if (!existing) await applyTypes(client, qualified, columns, inferred);
  return { size: bytes.size(), sha256: bytes.sha256(), rows };
}

async function tableColumns(client: pg.PoolClient, oid: number): Promise<Column[]> {
  const result = await client.query<{ name: string; json: boolean; array: boolean }>(
    `SELECT a.attname AS name, a.atttypid IN (114, 3802) AS json, t.typcategory = 'A' AS array
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY a.attnum`,
    [oid],
  );
  return result.rows;
}

/** The columns of a created table: the first row's keys, or the CSV header. */
function newColumns(row: ParsedRow, target: LoadTarget): Column[] {
  const names = Object.keys(row.values);
  if (names.length === 0) {
    throw new BatonError(
      'DATA_FORMAT',
      `mount "${target.mount}": line ${row.line} of ${JSON.stringify(target.key)} has no column, and it would give the new table its columns`,
    );
  }
  for (const name of names) {
    // PostgreSQL would cut a longer name silently, and two long names could become one.
    if (name === '' || Buffer.byteLength(name) > 63 || name.includes('\u0000')) {
      throw new BatonError(
        'DATA_FORMAT',
        `mount "${target.mount}": line ${row.line} of ${JSON.stringify(target.key)}: ${JSON.stringify(name.slice(0, 80))} cannot be a column name (empty, over 63 bytes, or holding NUL)`,
      );
    }
  }
  return names.map((name) => ({ name, json: false, array: false }));
}

function unknownColumn(target: LoadTarget, line: number, name: string, created: boolean): BatonError {
  const why = created ? 'which is not in the first row, whose keys gave the new table its columns' : '';
  return new BatonError(
    'DATA_FORMAT',
    `mount "${target.mount}": line ${line} of ${JSON.stringify(target.key)} has a value for ${JSON.stringify(name)}, ${why || `which is not a column of ${target.table}`}`,
    {
      hint: created
        ? 'Give the first row every key (null for a value it lacks), or create the table first.'
        : 'Rename the key to one of the table’s columns, or add the column to the table.',
      details: { line, column: name },
    },
  );
}

/** Turns the text columns of a created table into the types inferred for them. */
async function applyTypes(
  client: pg.PoolClient,
  qualified: string,
  columns: readonly Column[],
  inferred: readonly (ColumnType | null)[],
): Promise<void> {
  const changes = columns.flatMap((c, i) => {
    const type = inferred[i] ?? 'text';
    if (type === 'text') return [];
    const name = quoteIdent(c.name);
    return [`ALTER COLUMN ${name} TYPE ${type} USING ${name}::${type}`];
  });
  if (changes.length > 0) await client.query(`ALTER TABLE ${qualified} ${changes.join(', ')}`);
}

/** Batches of rows sent as one multi-row INSERT each. */
class InsertBatches {
  private columns: readonly Column[] = [];
  private rowsPerBatch = BATCH_ROWS;
  private params: unknown[] = [];
  private rows = 0;
  private firstLine = 0;
  private lastLine = 0;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly qualified: string,
    private readonly target: LoadTarget,
  ) {}

  setColumns(columns: readonly Column[]): void {
    this.columns = columns;
    this.rowsPerBatch = Math.max(1, Math.min(BATCH_ROWS, Math.floor(MOST_PARAMS / Math.max(1, columns.length))));
  }

  async add(line: number, params: readonly unknown[]): Promise<void> {
    if (this.rows === 0) this.firstLine = line;
    this.lastLine = line;
    this.params.push(...params);
    this.rows++;
    if (this.rows >= this.rowsPerBatch) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.rows === 0) return;
    const width = this.columns.length;
    const tuples: string[] = [];
    for (let r = 0; r < this.rows; r++) {
      const slots: string[] = [];
      for (let c = 1; c <= width; c++) slots.push(`$${r * width + c}`);
      tuples.push(`(${slots.join(',')})`);
    }
    const names = this.columns.map((c) => quoteIdent(c.name)).join(', ');
    try {
      await this.client.query(`INSERT INTO ${this.qualified} (${names}) VALUES ${tuples.join(',')}`, this.params);
    } catch (error) {
      throw this.rejected(error);
    }
    this.params = [];
    this.rows = 0;
  }

  /** A value the column refuses (SQLSTATE classes 22 and 23) is the body's fault; the rest is left to the caller. */
  private rejected(error: unknown): unknown {
    const code = (error as { code?: unknown }).code;
    if (typeof code !== 'string' || !/^2[23]/.test(code)) return error;
    const lines =
      this.firstLine === this.lastLine ? `line ${this.firstLine}` : `lines ${this.firstLine}–${this.lastLine}`;
    return new BatonError(
      'DATA_FORMAT',
      `mount "${this.target.mount}": ${lines} of ${JSON.stringify(this.target.key)} do not fit table ${this.target.table}: ${(error as Error).message}`,
      { hint: 'Fix the value the message names; the table keeps its old contents.', cause: error, details: { lines } },
    );
  }
}

interface ParsedRow extends SourceRow {
  /** The CSV header, which gives columns but is no row. */
  readonly header?: boolean;
}

/** Rows of the body, parsed as the target's format; DATA_FORMAT naming the line on bad text. */
async function* parseRows(chunks: AsyncIterable<Uint8Array>, target: LoadTarget): AsyncGenerator<ParsedRow> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const texts = async function* (): AsyncGenerator<string> {
    for await (const chunk of chunks) yield decode(decoder, chunk, target, true);
    yield decode(decoder, new Uint8Array(0), target, false);
  };
  if (target.format === 'csv') yield* csvRows(texts(), target);
  else yield* jsonRows(texts(), target);
}

function decode(decoder: TextDecoder, chunk: Uint8Array, target: LoadTarget, stream: boolean): string {
  try {
    return decoder.decode(chunk, { stream });
  } catch (error) {
    throw new BatonError('DATA_FORMAT', `mount "${target.mount}": ${JSON.stringify(target.key)} is not UTF-8 text`, {
      cause: error,
    });
  }
}

async function* jsonRows(texts: AsyncIterable<string>, target: LoadTarget): AsyncGenerator<ParsedRow> {
  let rest = '';
  let line = 0;
  for await (const text of texts) {
    rest += text;
    let end = rest.indexOf('\n');
    let start = 0;
    while (end >= 0) {
      line++;
      const row = jsonLine(rest.slice(start, end), line, target);
      if (row) yield row;
      start = end + 1;
      end = rest.indexOf('\n', start);
    }
    rest = rest.slice(start);
  }
  if (rest !== '') {
    const row = jsonLine(rest, line + 1, target);
    if (row) yield row;
  }
}

function jsonLine(text: string, line: number, target: LoadTarget): ParsedRow | undefined {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw malformed(target, line, `not JSON (${(error as Error).message})`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed(target, line, 'not a JSON object; each line is one row, an object of column values');
  }
  return { line, values: value as Record<string, unknown> };
}

async function* csvRows(texts: AsyncIterable<string>, target: LoadTarget): AsyncGenerator<ParsedRow> {
  const reader = new CsvReader();
  let header: string[] | undefined;
  const rowsOf = function* (records: ReturnType<CsvReader['push']>): Generator<ParsedRow> {
    for (const record of records) {
      if (!header) {
        header = record.fields.map((f) => f ?? '');
        const seen = new Set<string>();
        for (const name of header) {
          if (seen.has(name))
            throw malformed(target, record.line, `the header names column ${JSON.stringify(name)} twice`);
          seen.add(name);
        }
        yield { line: record.line, values: Object.fromEntries(header.map((h) => [h, null])), header: true };
        continue;
      }
      if (record.fields.length !== header.length) {
        throw malformed(target, record.line, `${record.fields.length} fields where the header has ${header.length}`);
      }
      // No prototype: a column named `__proto__` is a column like any other.
      const values: Record<string, unknown> = Object.create(null);
      for (let i = 0; i < header.length; i++) values[header[i] as string] = record.fields[i];
      yield { line: record.line, values };
    }
  };
  try {
    for await (const text of texts) yield* rowsOf(reader.push(text));
    yield* rowsOf(reader.end());
  } catch (error) {
    if (error instanceof CsvSyntaxError) throw malformed(target, error.line, error.reason, error);
    throw error;
  }
}

function malformed(target: LoadTarget, line: number, why: string, cause?: unknown): BatonError {
  return new BatonError(
    'DATA_FORMAT',
    `mount "${target.mount}": line ${line} of ${JSON.stringify(target.key)} is malformed: ${why}`,
    { details: { line }, ...(cause === undefined ? {} : { cause }) },
  );
}

/** The body's bytes as chunks, counted and hashed as they pass. */
function countingBytes(body: WriteBody): {
  chunks: AsyncIterable<Uint8Array>;
  size: () => number;
  sha256: () => string;
} {
  const hash = createHash('sha256');
  let size = 0;
  const source: AsyncIterable<Uint8Array | string> =
    typeof body === 'string' || body instanceof Uint8Array ? once(body) : (body as AsyncIterable<Uint8Array | string>);
  const chunks = async function* (): AsyncGenerator<Uint8Array> {
    for await (const piece of source) {
      const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
      hash.update(bytes);
      size += bytes.byteLength;
      yield bytes;
    }
  };
  return { chunks: chunks(), size: () => size, sha256: () => hash.digest('hex') };
}

async function* once(body: string | Uint8Array): AsyncGenerator<Uint8Array | string> {
  yield body;
}
