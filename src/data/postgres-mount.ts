/**
 * A PostgreSQL database as a mount: the tables of one schema, and named read-only queries
 * under `queries/`, are datasets read and written as JSON Lines or CSV (keys in
 * postgres-keys.ts, values in postgres-values.ts, writes in postgres-load.ts).
 *
 * Invariants:
 * - A read streams rows through a server-side cursor in a read-only transaction, FETCHing
 *   `FETCH_ROWS` at a time only when the reader asks for more, so that a table of millions
 *   of rows never sits in memory; a reader that stops early (destroys the stream) rolls the
 *   transaction back and gives the connection back.
 * - A write replaces a table's rows in one transaction (see postgres-load.ts).
 * - No key reaches SQL unchecked or unquoted; values are always bound parameters.
 * - The connection URL, and its password, appear in no error: driver messages are redacted.
 *
 * Table data is live (never cached: `remote` is false), and tables have no honest content
 * tag short of reading them, so their info carries no etag and no modification time.
 */
import { Readable } from 'node:stream';
import pg from 'pg';
import { BatonError } from '../core/errors.js';
import type { DatabaseConnection } from '../core/task-context.js';
import { redactErrorUrl } from '../core/redact-url.js';
import { formatCsvRecord } from './csv.js';
import type {
  DataMount,
  ListOptions,
  MountContext,
  MountOperationOptions,
  ObjectInfo,
  PostgresMountConfig,
  WriteBody,
  WriteOptions,
  WriteResult,
} from './mount.js';
import { loadTable } from './postgres-load.js';
import type { DatasetKey } from './postgres-keys.js';
import { CONTENT_TYPES, QUERIES_FOLDER, isDatasetName, parseDatasetKey, quoteIdent } from './postgres-keys.js';
import { MOUNT_TYPES, rowsToCsv, rowsToJsonLines } from './postgres-values.js';

/** Rows per FETCH of a read. */
export const FETCH_ROWS = 1000;

const CURSOR = 'baton_read';
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);

/**
 * Opens the mount `name` (`data.mounts.<name>` of kind postgres). It checks the
 * configuration and reads the URL from `context.env[config.url_env]`, but does not
 * connect: a database that is down fails the first operation, not the start of Baton.
 * Example: `openPostgresMount('warehouse', { kind: 'postgres', url_env: 'WAREHOUSE_URL' }, { root, env: process.env })`.
 */
export async function openPostgresMount(
  name: string,
  config: PostgresMountConfig,
  context: MountContext,
): Promise<DataMount> {
  const where = `data.mounts.${name}`;
  const url = context.env[config.url_env];
  if (url === undefined || url === '') {
    throw new BatonError(
      'CONFIG_INVALID',
      `mount "${name}": the environment variable ${config.url_env} (${where}.url_env) is not set, and it must hold the database's URL`,
      {
        hint: `Set ${config.url_env}=postgres://user:password@host:5432/database in the environment Baton runs in, or name another variable in ${where}.url_env.`,
        details: { mount: name, variable: config.url_env },
      },
    );
  }
  const schema = config.schema ?? 'public';
  if (!isDatasetName(schema)) {
    throw new BatonError(
      'CONFIG_INVALID',
      `mount "${name}": ${where}.schema ${JSON.stringify(schema)} is no schema name`,
      {
        hint: 'A schema name has only letters, digits, `_` and `-`, and starts with a letter or `_`.',
      },
    );
  }
  const queries = new Map<string, string>();
  for (const [query, text] of Object.entries(config.queries ?? {})) {
    const sql = typeof text === 'string' ? text.trim().replace(/;+\s*$/, '') : '';
    if (!isDatasetName(query) || sql === '') {
      throw new BatonError(
        'CONFIG_INVALID',
        `mount "${name}": ${where}.queries.${query} ${sql === '' ? 'is empty' : 'is not a valid query name'}`,
        {
          hint: 'Name each query with letters, digits, `_` and `-` (starting with a letter or `_`), and give it one SELECT statement.',
        },
      );
    }
    queries.set(query, sql);
  }
  let pool: pg.Pool;
  try {
    pool = new pg.Pool({
      connectionString: url,
      max: 10,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis: 10_000,
      types: MOUNT_TYPES,
    });
  } catch (error) {
    const { message, cause } = redactErrorUrl(error, url);
    throw new BatonError('CONFIG_INVALID', `mount "${name}": ${config.url_env} holds no usable URL: ${message}`, {
      cause,
    });
  }
  // An idle connection that the server drops must not end the process.
  pool.on('error', () => undefined);
  return new PostgresMount(name, schema, queries, pool, url);
}

class PostgresMount implements DataMount {
  readonly kind = 'postgres' as const;
  readonly writable = true;
  readonly remote = false;
  /** Pooled connections that already have their error listener. */
  private readonly guarded = new WeakSet<pg.PoolClient>();

  constructor(
    readonly name: string,
    private readonly schema: string,
    private readonly queries: ReadonlyMap<string, string>,
    private readonly pool: pg.Pool,
    private readonly url: string,
  ) {}

  async stat(key: string, options?: MountOperationOptions): Promise<ObjectInfo | null> {
    options?.signal?.throwIfAborted();
    const dataset = parseDatasetKey(this.name, key);
    if (dataset.kind === 'query') {
      return this.queries.has(dataset.name) ? { key, size: 0, contentType: CONTENT_TYPES[dataset.format] } : null;
    }
    const size = await this.tableSize(dataset.name, key);
    return size === null ? null : { key, size, contentType: CONTENT_TYPES[dataset.format] };
  }

  async list(folder: string, options?: ListOptions): Promise<ObjectInfo[]> {
    const queryInfos = [...this.queries.keys()].map((q) => ({ key: `${QUERIES_FOLDER}/${q}`, size: 0 }));
    let out: ObjectInfo[];
    if (folder === QUERIES_FOLDER) {
      out = queryInfos;
    } else if (folder === '') {
      const rows = await this.query<{ name: string; size: number }>(
        'listing tables',
        '',
        `SELECT c.relname AS name, pg_total_relation_size(c.oid) AS size
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
        [this.schema],
      );
      // A table whose name no key can spell is left out rather than listed unreadable.
      out = rows.filter((r) => isDatasetName(r.name)).map((r) => ({ key: r.name, size: r.size }));
      if (options?.recursive) out.push(...queryInfos);
      else if (this.queries.size > 0) out.push({ key: QUERIES_FOLDER, size: 0, folder: true });
    } else {
      out = [];
    }
    out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return options?.limit === undefined ? out : out.slice(0, Math.max(0, options.limit));
  }

  async read(key: string, options?: MountOperationOptions): Promise<{ info: ObjectInfo; body: Readable }> {
    const dataset = parseDatasetKey(this.name, key);
    const info = await this.stat(key, options);
    if (!info) throw this.notFound(key, dataset);
    const source =
      dataset.kind === 'query'
        ? (this.queries.get(dataset.name) as string)
        : `SELECT * FROM ${quoteIdent(this.schema)}.${quoteIdent(dataset.name)}`;
    const client = await this.acquire('reading', key);
    try {
      await client.query('BEGIN READ ONLY');
      // Timestamps come out as ISO 8601 in UTC whatever the server's or the role's settings.
      await client.query(`SET LOCAL DateStyle = 'ISO'; SET LOCAL TimeZone = 'UTC'`);
      await client.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${source}`);
    } catch (error) {
      await this.giveBack(client, true);
      throw this.failed(error, 'reading', key, dataset);
    }
    const body = cursorStream(client, dataset.format, {
      fail: (error) => this.failed(error, 'reading', key, dataset),
      release: (rollback) => this.giveBack(client, rollback),
    });
    if (options?.signal) {
      const signal = options.signal;
      const abort = () => body.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      if (signal.aborted) abort();
      else signal.addEventListener('abort', abort, { once: true });
      body.once('close', () => signal.removeEventListener('abort', abort));
    }
    return { info, body };
  }

  async write(key: string, body: WriteBody, options?: WriteOptions): Promise<WriteResult> {
    const dataset = parseDatasetKey(this.name, key);
    if (dataset.kind === 'query') throw this.queryUnsupported(key, 'written');
    options?.signal?.throwIfAborted();
    const target = { mount: this.name, key, schema: this.schema, table: dataset.name, format: dataset.format };
    const result = await this.transaction('writing', key, dataset, (client) =>
      loadTable(client, target, body, options?.signal),
    );
    return { key, size: result.size, sha256: result.sha256, contentType: CONTENT_TYPES[dataset.format] };
  }

  async remove(key: string, options?: MountOperationOptions): Promise<boolean> {
    const dataset = parseDatasetKey(this.name, key);
    if (dataset.kind === 'query') throw this.queryUnsupported(key, 'removed');
    options?.signal?.throwIfAborted();
    return this.transaction('removing', key, dataset, async (client) => {
      const found = await client.query(
        `SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
        [this.schema, dataset.name],
      );
      if (found.rowCount === 0) return false;
      await client.query(`DROP TABLE ${quoteIdent(this.schema)}.${quoteIdent(dataset.name)}`);
      return true;
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** A pooled connection for SQL of the caller's own (sql tasks); driver errors come out as DATA_IO. */
  async connect(options?: MountOperationOptions): Promise<DatabaseConnection> {
    options?.signal?.throwIfAborted();
    const client = await this.acquire('connecting to', '');
    let held = true;
    return {
      schema: this.schema,
      query: async (text, values = []) => {
        try {
          const result = await client.query<unknown[]>({ text, values: [...values], rowMode: 'array' });
          return {
            fields: result.fields.map((f) => ({
              name: f.name,
              typeId: f.dataTypeID,
              typeModifier: f.dataTypeModifier,
            })),
            rows: result.rows,
            rowCount: result.rowCount ?? result.rows.length,
          };
        } catch (error) {
          throw this.failed(error, 'running a query on', '');
        }
      },
      cancel: async () => {
        // The server stops a statement only when asked from another connection.
        // `processID` is set once connected, but @types/pg does not declare it.
        const pid = (client as unknown as { processID?: number }).processID;
        if (held && pid !== undefined)
          await this.pool.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
      },
      release: (broken = false) => {
        if (!held) return;
        held = false;
        client.release(broken);
      },
    };
  }

  /** The table's size on disk in bytes, or null when the schema has no such table. */
  private async tableSize(table: string, key: string): Promise<number | null> {
    const rows = await this.query<{ size: number }>(
      'reading the size of',
      key,
      `SELECT pg_total_relation_size(c.oid) AS size FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [this.schema, table],
    );
    return rows[0]?.size ?? null;
  }

  private async query<T extends pg.QueryResultRow>(
    action: string,
    key: string,
    text: string,
    values: unknown[],
  ): Promise<T[]> {
    try {
      return (await this.pool.query<T>(text, values)).rows;
    } catch (error) {
      throw this.failed(error, action, key);
    }
  }

  private async acquire(action: string, key: string): Promise<pg.PoolClient> {
    try {
      const client = await this.pool.connect();
      // A connection lost between two statements emits an error; the next statement fails anyway.
      if (!this.guarded.has(client)) {
        this.guarded.add(client);
        client.on('error', () => undefined);
      }
      return client;
    } catch (error) {
      throw this.failed(error, action, key);
    }
  }

  private async giveBack(client: pg.PoolClient, rollback: boolean): Promise<void> {
    let broken = false;
    if (rollback) {
      try {
        await client.query('ROLLBACK');
      } catch {
        broken = true;
      }
    }
    client.release(broken);
  }

  private async transaction<T>(
    action: string,
    key: string,
    dataset: DatasetKey,
    fn: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    const client = await this.acquire(action, key);
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      await this.giveBack(client, true);
      throw this.failed(error, action, key, dataset);
    }
  }

  private notFound(key: string, dataset: DatasetKey): BatonError {
    const what =
      dataset.kind === 'query'
        ? `no query ${JSON.stringify(dataset.name)} is configured`
        : `schema ${this.schema} has no table ${JSON.stringify(dataset.name)}`;
    return new BatonError('DATA_NOT_FOUND', `mount "${this.name}": ${JSON.stringify(key)}: ${what}`, {
      details: { mount: this.name, key },
    });
  }

  private queryUnsupported(key: string, verb: string): BatonError {
    return new BatonError(
      'DATA_UNSUPPORTED',
      `mount "${this.name}": ${JSON.stringify(key)} is a named query, which is read-only and cannot be ${verb}`,
      { hint: 'Write to a table key (`<table>`, `<table>.jsonl` or `<table>.csv`) of the mount.' },
    );
  }

  /** A driver error as a BatonError naming the mount and key, with the URL and its password redacted. */
  private failed(error: unknown, action: string, key: string, dataset?: DatasetKey): BatonError {
    if (error instanceof BatonError) return error;
    const code = (error as { code?: unknown }).code;
    if (code === '42P01' && dataset) return this.notFound(key, dataset);
    const { message, cause } = redactErrorUrl(error, this.url);
    const subject = key === '' ? '' : ` ${JSON.stringify(key)}`;
    const unreachable =
      (typeof code === 'string' && (NETWORK_CODES.has(code) || code.startsWith('08'))) ||
      /Connection terminated|connection error|timeout exceeded when trying to connect/i.test(message);
    return new BatonError(
      'DATA_IO',
      `mount "${this.name}": ${action}${subject} failed${unreachable ? ' (the database cannot be reached)' : ''}: ${message}`,
      { cause, details: { mount: this.name, key, ...(typeof code === 'string' ? { sqlstate: code } : {}) } },
    );
  }
}

interface CursorHooks {
  readonly fail: (error: unknown) => BatonError;
  /** Gives the connection back, rolling its transaction back first when asked. */
  readonly release: (rollback: boolean) => Promise<void>;
}

/**
 * The rows of the open cursor as a byte stream. A FETCH is sent only from `read()`, which
 * Node calls when the consumer has room, so a slow consumer holds at most one batch.
 */
function cursorStream(client: pg.PoolClient, format: 'jsonl' | 'csv', hooks: CursorHooks): Readable {
  let names: string[] | undefined;
  let held = true;
  let pending: Promise<void> = Promise.resolve();
  const release = async (rollback: boolean) => {
    if (!held) return;
    held = false;
    await hooks.release(rollback);
  };
  const fetchNext = async (stream: Readable) => {
    const result = await client.query<unknown[]>({ text: `FETCH ${FETCH_ROWS} FROM ${CURSOR}`, rowMode: 'array' });
    let chunk = '';
    if (!names) {
      names = result.fields.map((f) => f.name);
      if (format === 'csv') chunk += formatCsvRecord(names);
    }
    const rows = result.rows as unknown[][];
    chunk += format === 'csv' ? rowsToCsv(rows) : rowsToJsonLines(names, rows);
    if (rows.length < FETCH_ROWS) {
      await client.query('COMMIT');
      await release(false);
      if (chunk !== '') stream.push(chunk);
      stream.push(null);
    } else {
      stream.push(chunk);
    }
  };
  return new Readable({
    read() {
      pending = fetchNext(this).catch((error: unknown) => {
        this.destroy(hooks.fail(error));
      });
    },
    destroy(error, callback) {
      // A FETCH in flight finishes (or fails) before the transaction is rolled back.
      pending
        .then(() => release(true))
        .then(
          () => callback(error),
          () => callback(error),
        );
    },
  });
}
