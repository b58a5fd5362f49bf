/**
 * The post-body step of a task that produces assets: after the body succeeded and before
 * its outcome is reported, each asset it declares is found through the namespace, given a
 * version (the SHA-256 of its bytes), checked in DuckDB, and recorded with its lineage (the
 * versions of the assets the attempt read) and its check results. A failed check of
 * severity `error` fails the attempt with CHECK_FAILED (see checkFailure), so that trigger
 * rules block what runs downstream; a `warn` is recorded and the task goes on.
 *
 * The object is read once: the bytes hashed are the bytes checked (a local or cached file
 * is hashed where it lies; a PostgreSQL table is streamed to a temporary file, hashed on
 * the way). When the attempt wrote the object itself, the SHA-256 the write recorded is
 * its version and nothing is hashed again.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { AssetSpec } from '../../core/asset-spec.js';
import { BatonError } from '../../core/errors.js';
import type { AssetCheckResult, AssetColumn, AssetInput } from '../../store/ports/assets.js';
import type { Store } from '../../store/store.js';
import type { DataNamespace } from '../namespace.js';
import { literal, runChecks } from './checks.js';

/** What the step reads and writes of the store. */
export type AssetStore = Pick<
  Store,
  'getDataObject' | 'dataAccesses' | 'getAsset' | 'assetsAtLocations' | 'assetVersions' | 'recordMaterialization'
>;

export interface MaterializeOptions {
  readonly namespace: DataNamespace;
  readonly store: AssetStore;
  readonly runId: string;
  readonly flow: string;
  /** The task run's id (a map instance's own id). */
  readonly taskId: string;
  readonly attempt: number;
  readonly produces: readonly AssetSpec[];
  /** Keys the task declares it reads, besides those found among its reads. */
  readonly consumes?: readonly string[];
  /** Now, in ms: the materialization's time, and what freshness compares with. Default Date.now. */
  readonly now?: () => number;
  /** Where a table read from a database is staged for DuckDB; default the system's temp folder. */
  readonly tempDir?: string;
}

/** One asset, as recorded. */
export interface MaterializedAsset {
  readonly assetKey: string;
  readonly id: number;
  readonly version: string;
  readonly rowCount: number | null;
  readonly inputs: readonly AssetInput[];
  readonly checks: readonly AssetCheckResult[];
}

export interface MaterializeResult {
  readonly assets: readonly MaterializedAsset[];
}

/** Read accesses of one attempt are looked through this many at a time, up to ACCESS_PAGES pages. */
const ACCESS_PAGE = 1000;
const ACCESS_PAGES = 1000;

type Format = 'parquet' | 'csv' | 'json';

/**
 * Materializes, checks and records every asset the attempt produced, in declaration order.
 * Throws DATA_NOT_FOUND for a declared asset that is not there, DEP_MISSING when checks
 * need DuckDB and it is not installed; a check that fails is a result, not a throw (see
 * checkFailure).
 */
export async function materializeAssets(options: MaterializeOptions): Promise<MaterializeResult> {
  const now = options.now ?? Date.now;
  const { reads, writes } = await attemptAccesses(options);
  const own = new Set(options.produces.map((p) => p.key));
  const inputs = await inputsOf(options, reads, own);
  const assets: MaterializedAsset[] = [];
  let duck: DuckSession | null = null;
  const staging = await mkdtemp(join(options.tempDir ?? tmpdir(), 'baton-asset-'));
  try {
    for (const spec of options.produces) {
      const info = await options.namespace.stat(spec.path);
      if (!info || info.folder) {
        throw new BatonError(
          'DATA_NOT_FOUND',
          `task ${options.taskId} declares asset ${spec.key} at ${spec.path}, but nothing is there after its body succeeded`,
          { hint: `Write the asset with ctx.data.write('${spec.path}', …), or fix its path under produces.` },
        );
      }
      const format = formatOf(spec.path, info.contentType);
      const local = await localCopy(options, spec.path, staging, format);
      const version =
        (await writtenHash(options, spec.path, info.size, writes)) ?? local.sha256 ?? (await hashFile(local.file));
      let rowCount: number | null = null;
      let schema: AssetColumn[] | null = null;
      let checks: AssetCheckResult[] = [];
      if (format !== null) {
        duck ??= await DuckSession.open(spec.checks.length > 0);
      }
      if (duck && format !== null) {
        const conn = duck.conn;
        await conn.run(`CREATE OR REPLACE VIEW asset AS SELECT * FROM ${relation(local.file, format)}`);
        rowCount = Number((await conn.runAndReadAll('SELECT count(*) AS n FROM asset')).getRowObjectsJson()[0]?.n);
        schema = (await conn.runAndReadAll('DESCRIBE asset'))
          .getRowObjectsJson()
          .map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
        checks = await runChecks(conn, spec.checks, {
          now: now(),
          reference: (key) => referenceOf(options, key, staging),
        });
      } else if (spec.checks.length > 0) {
        throw new BatonError(
          'DATA_UNSUPPORTED',
          `asset ${spec.key}: ${spec.path} is in no format Baton checks (Parquet, CSV, JSON)`,
          { hint: 'Give the object a .parquet, .csv, .json or .jsonl name, or remove its checks.' },
        );
      }
      const recorded = await options.store.recordMaterialization({
        assetKey: spec.key,
        version,
        runId: options.runId,
        flow: options.flow,
        taskId: options.taskId,
        attempt: options.attempt,
        at: now(),
        location: spec.path,
        size: info.size,
        rowCount,
        schema,
        inputs,
        checks,
      });
      assets.push({ assetKey: spec.key, id: recorded.id, version, rowCount, inputs, checks });
    }
  } finally {
    duck?.close();
    await rm(staging, { recursive: true, force: true });
  }
  return { assets };
}

/**
 * The CHECK_FAILED error for the first asset with a failed check of severity `error`, or
 * null when every such check passed. Its message names the asset, the check and the count.
 */
export function checkFailure(result: MaterializeResult): BatonError | null {
  for (const asset of result.assets) {
    const failed = asset.checks.filter((c) => !c.passed && c.severity === 'error');
    const first = failed[0];
    if (!first) continue;
    const what = first.message ?? `${first.failingCount} failing row${first.failingCount === 1 ? '' : 's'}`;
    const more =
      failed.length > 1 ? ` (and ${failed.length - 1} more failed check${failed.length > 2 ? 's' : ''})` : '';
    return new BatonError('CHECK_FAILED', `asset ${asset.assetKey}: check ${first.name} failed: ${what}${more}`, {
      hint: `See the failing rows with \`baton asset show ${asset.assetKey}\`; fix the data or the check, then retry the task.`,
      details: {
        asset: asset.assetKey,
        version: asset.version,
        failed: failed.map((c) => ({ check: c.name, failingCount: c.failingCount })),
      },
    });
  }
  return null;
}

/** The paths the attempt read and the paths it wrote, from the store's record of its accesses. */
async function attemptAccesses(options: MaterializeOptions): Promise<{ reads: Set<string>; writes: Set<string> }> {
  const reads = new Set<string>();
  const writes = new Set<string>();
  let after = 0;
  for (let page = 0; page < ACCESS_PAGES; page++) {
    const rows = await options.store.dataAccesses({ runId: options.runId, limit: ACCESS_PAGE, afterSeq: after });
    for (const a of rows) {
      if (a.taskId !== options.taskId || a.attempt !== options.attempt) continue;
      (a.op === 'read' ? reads : writes).add(a.path);
    }
    if (rows.length < ACCESS_PAGE) break;
    after = (rows.at(-1) as { seq: number }).seq;
  }
  return { reads, writes };
}

/** The versions read: the declared inputs, and the known assets among the paths read. */
async function inputsOf(options: MaterializeOptions, reads: Set<string>, own: Set<string>): Promise<AssetInput[]> {
  const inputs = new Map<string, string | null>();
  for (const key of options.consumes ?? []) {
    if (own.has(key)) continue;
    inputs.set(key, (await options.store.getAsset(key))?.latestVersion ?? null);
  }
  for (const found of await options.store.assetsAtLocations([...reads])) {
    if (!own.has(found.key)) inputs.set(found.key, found.version);
  }
  return [...inputs]
    .map(([assetKey, version]) => ({ assetKey, version }))
    .sort((a, b) => (a.assetKey < b.assetKey ? -1 : 1));
}

/** The SHA-256 this attempt's write recorded, when the object is still what it wrote. */
async function writtenHash(
  options: MaterializeOptions,
  path: string,
  size: number,
  writes: Set<string>,
): Promise<string | null> {
  if (!writes.has(path)) return null;
  const row = await options.store.getDataObject(path);
  if (!row || row.sha256 === null || row.size !== size) return null;
  return row.producerRunId === options.runId && row.producerTaskId === options.taskId ? row.sha256 : null;
}

/**
 * A file DuckDB can read holding the object: the file itself on a local mount, the cached
 * copy of a remote one, or (for a database table) the stream written to `staging`, its
 * SHA-256 taken on the way.
 */
async function localCopy(
  options: MaterializeOptions,
  path: string,
  staging: string,
  format: Format | null,
): Promise<{ file: string; sha256: string | null }> {
  const { mount } = options.namespace.resolve(path);
  const kind = options.namespace.mounts().find((m) => m.name === mount)?.kind;
  if (kind !== 'postgres') return { file: await options.namespace.localFile(path), sha256: null };
  const file = join(staging, `${createHash('sha256').update(path).digest('hex').slice(0, 16)}.${format ?? 'bin'}`);
  const hash = createHash('sha256');
  const { body } = await options.namespace.read(path);
  await pipeline(
    body,
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    }),
    createWriteStream(file),
  );
  return { file, sha256: hash.digest('hex') };
}

async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The format of an object, from its name, else its content type; null for one DuckDB is not given. */
function formatOf(path: string, contentType: string | undefined): Format | null {
  const ext = extname(path).toLowerCase();
  if (ext === '.parquet' || ext === '.pq') return 'parquet';
  if (ext === '.csv' || ext === '.tsv') return 'csv';
  if (ext === '.json' || ext === '.jsonl' || ext === '.ndjson') return 'json';
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (type === 'text/csv') return 'csv';
  if (type === 'application/json' || type === 'application/x-ndjson') return 'json';
  if (type === 'application/vnd.apache.parquet') return 'parquet';
  return null;
}

function relation(file: string, format: Format): string {
  const f = literal(file);
  if (format === 'parquet') return `read_parquet(${f})`;
  if (format === 'csv') return `read_csv_auto(${f})`;
  return `read_json_auto(${f})`;
}

/** The latest version of another asset as a DuckDB relation, for `references`. */
async function referenceOf(options: MaterializeOptions, key: string, staging: string): Promise<string | null> {
  const asset = await options.store.getAsset(key);
  if (!asset) return null;
  const [latest] = await options.store.assetVersions(key, { limit: 1 });
  if (!latest) return null;
  const format = formatOf(latest.location, undefined);
  if (format === null) return null;
  const local = await localCopy(options, latest.location, staging, format);
  return relation(local.file, format);
}

/** One in-memory DuckDB database for the step, in UTC (freshness compares instants). */
class DuckSession {
  private constructor(
    private readonly instance: { closeSync(): void },
    readonly conn: DuckDBConnection,
  ) {}

  /**
   * Opens DuckDB, loaded when first needed (it is an optional dependency). Null when it is
   * not installed and nothing needs it (no checks: the row count and schema stay unknown);
   * DEP_MISSING when checks do.
   */
  static async open(required: boolean): Promise<DuckSession | null> {
    let duckdb: typeof import('@duckdb/node-api');
    try {
      duckdb = await import('@duckdb/node-api');
    } catch (error) {
      if (!required) return null;
      throw new BatonError('DEP_MISSING', 'asset checks run in DuckDB, and @duckdb/node-api is not installed', {
        hint: 'Run `npm install @duckdb/node-api` in the project.',
        cause: error,
      });
    }
    const instance = await duckdb.DuckDBInstance.create(':memory:');
    const conn = await instance.connect();
    await conn.run("SET TimeZone = 'UTC'");
    return new DuckSession(instance, conn);
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
  }
}
