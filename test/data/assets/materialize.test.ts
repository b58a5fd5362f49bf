/**
 * The post-body step of asset-producing tasks (src/data/assets/materialize.ts) on real
 * files: every check type passing on good data and failing on bad data (Parquet written by
 * DuckDB, CSV written as text, a PostgreSQL table), the version a content hash, severity
 * warn against error, and lineage with staleness across two flows.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssetSpec } from '../../../src/core/asset-spec.js';
import { checkFailure, materializeAssets } from '../../../src/data/assets/materialize.js';
import type { MaterializeOptions } from '../../../src/data/assets/materialize.js';
import { DataNamespace, storeRecorder } from '../../../src/data/namespace.js';
import { taskDataProvider } from '../../../src/data/task-data.js';
import { readProduces } from '../../../src/define/asset-schema.js';
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js';
import { createTestDatabase } from '../../store/pg-helpers.js';

const NOW = Date.parse('2024-06-02T12:00:00Z');

let root: string;
let store: SqliteStore;
let database: { url: string; drop: () => Promise<void> };
let namespace: DataNamespace;
let runs = 0;

/** Writes a Parquet file with DuckDB from a SELECT. */
async function parquet(file: string, select: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    await conn.run(`COPY (${select}) TO '${file}' (FORMAT parquet)`);
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

const GOOD = `SELECT * FROM (VALUES
  (1::BIGINT, 10, 'open', 12.5::DOUBLE, TIMESTAMP '2024-06-02 08:00:00', 'a@x.org'),
  (2::BIGINT, 11, 'shipped', 99.0::DOUBLE, TIMESTAMP '2024-06-01 20:00:00', 'b@x.org'),
  (3::BIGINT, 10, 'cancelled', 0.0::DOUBLE, TIMESTAMP '2024-05-30 00:00:00', 'c@x.org')
) t(order_id, customer_id, status, total, updated_at, email)`;

// Each check breaks on some rows: order 2 twice, a NULL customer, an unknown status, a
// negative and a huge total, a customer no customer row has, old timestamps, a repeated email.
const BAD = `SELECT * FROM (VALUES
  (1::BIGINT, 10, 'open', -5.0::DOUBLE, TIMESTAMP '2024-05-01 08:00:00', 'a@x.org'),
  (2::BIGINT, NULL, 'lost', 99.0::DOUBLE, TIMESTAMP '2024-05-01 09:00:00', 'a@x.org'),
  (2::BIGINT, 77, 'open', 200000.0::DOUBLE, TIMESTAMP '2024-04-01 00:00:00', 'c@x.org')
) t(order_id, customer_id, status, total, updated_at, email)`;

/** The checks of the example, read as a flow declares them. */
function declared(path: string, checks: unknown[]): AssetSpec {
  const read = readProduces([{ asset: 'orders_clean', path, checks }]);
  expect(read.problems).toEqual([]);
  return read.specs[0] as AssetSpec;
}

const ALL_CHECKS = [
  { not_null: ['order_id', 'customer_id'] },
  { unique: ['order_id'] },
  { accepted_values: { column: 'status', values: ['open', 'shipped', 'cancelled'] } },
  { range: { column: 'total', min: 0, max: 100000 } },
  { row_count: { min: 1, max: 2 } },
  { freshness: { column: 'updated_at', max_age: '1d' } },
  { schema: { order_id: 'BIGINT', total: 'DOUBLE' } },
  { references: { column: 'customer_id', asset: 'customers', column_in_asset: 'id' } },
  { sql: 'SELECT * FROM asset WHERE total < 0', name: 'no_negative_totals' },
  { unique: ['email'], severity: 'warn' },
];

/** Runs the step as attempt 1 of a new run of `flow`/`task`. */
function step(produces: AssetSpec[], fields: Partial<MaterializeOptions> = {}) {
  runs += 1;
  return materializeAssets({
    namespace,
    store,
    runId: `run-${runs}`,
    flow: 'orders',
    taskId: 'clean_orders',
    attempt: 1,
    produces,
    now: () => NOW,
    ...fields,
  });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'baton-assets-'));
  mkdirSync(join(root, 'lake', 'curated'), { recursive: true });
  mkdirSync(join(root, 'lake', 'raw'), { recursive: true });
  store = new SqliteStore({ path: join(root, 'baton.db') });
  database = await createTestDatabase();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query(
    'CREATE TABLE payments (id bigint, amount double precision); INSERT INTO payments VALUES (1, 5), (2, -3), (3, -4)',
  );
  await client.end();
  namespace = new DataNamespace({
    mounts: {
      raw: { kind: 'local', path: 'lake/raw' },
      curated: { kind: 'local', path: 'lake/curated' },
      warehouse: { kind: 'postgres', url_env: 'WAREHOUSE_URL' },
    },
    context: { root, env: { WAREHOUSE_URL: database.url } },
    record: storeRecorder(store),
  });
  // The asset `references` checks against: customers 10 and 11.
  writeFileSync(join(root, 'lake', 'curated', 'customers.csv'), 'id,name\n10,Ada\n11,Grace\n');
  await step([{ key: 'customers', path: 'data://curated/customers.csv', checks: [] }], { taskId: 'customers' });
});

afterAll(async () => {
  await namespace.close();
  await store.close();
  await database.drop();
  rmSync(root, { recursive: true, force: true });
});

describe('checks over a Parquet file', () => {
  it('passes every check on good data, and records the version, rows and schema', async () => {
    const file = join(root, 'lake', 'curated', 'good.parquet');
    await parquet(file, GOOD);
    const result = await step([declared('data://curated/good.parquet', ALL_CHECKS)]);
    const [asset] = result.assets;
    expect(asset?.checks.map((c) => [c.name, c.passed, c.failingCount, c.message])).toEqual([
      ['not_null(order_id,customer_id)', true, 0, null],
      ['unique(order_id)', true, 0, null],
      ['accepted_values(status)', true, 0, null],
      ['range(total)', true, 0, null],
      ['row_count', false, 1, '3 rows, more than 2'],
      ['freshness(updated_at)', true, 0, null],
      ['schema', true, 0, null],
      ['references(customer_id)', true, 0, null],
      ['no_negative_totals', true, 0, null],
      ['unique(email)', true, 0, null],
    ]);
    expect(asset?.version).toBe(createHash('sha256').update(readFileSync(file)).digest('hex'));
    const [version] = await store.assetVersions('orders_clean', { limit: 1 });
    expect(version).toMatchObject({ rowCount: 3, location: 'data://curated/good.parquet', flow: 'orders' });
    expect(version?.schema?.slice(0, 4)).toEqual([
      { name: 'order_id', type: 'BIGINT' },
      { name: 'customer_id', type: 'INTEGER' },
      { name: 'status', type: 'VARCHAR' },
      { name: 'total', type: 'DOUBLE' },
    ]);
    expect((await store.assetChecks(asset?.id as number)).map((c) => c.passed)).toEqual(
      asset?.checks.map((c) => c.passed),
    );
    // row_count is an error check: the attempt fails, naming the asset, the check and why.
    expect(checkFailure(result)?.message).toBe('asset orders_clean: check row_count failed: 3 rows, more than 2');
  });

  it('fails each check on bad data, counting and sampling the failing rows', async () => {
    await parquet(join(root, 'lake', 'curated', 'bad.parquet'), BAD);
    const [asset] = (await step([declared('data://curated/bad.parquet', ALL_CHECKS)])).assets;
    const byName = Object.fromEntries((asset?.checks ?? []).map((c) => [c.name, c]));
    expect(Object.fromEntries(Object.entries(byName).map(([name, c]) => [name, [c.passed, c.failingCount]]))).toEqual({
      'not_null(order_id,customer_id)': [false, 1],
      'unique(order_id)': [false, 2],
      'accepted_values(status)': [false, 1],
      'range(total)': [false, 2],
      row_count: [false, 1],
      'freshness(updated_at)': [false, 1],
      schema: [true, 0],
      'references(customer_id)': [false, 1],
      no_negative_totals: [false, 1],
      'unique(email)': [false, 2],
    });
    expect(byName['accepted_values(status)']?.sample).toEqual([
      {
        order_id: '2',
        customer_id: null,
        status: 'lost',
        total: 99,
        updated_at: '2024-05-01 09:00:00',
        email: 'a@x.org',
      },
    ]);
    expect(byName['references(customer_id)']?.sample).toMatchObject([{ customer_id: 77 }]);
    expect(byName['freshness(updated_at)']?.message).toMatch(/^the newest updated_at is .* old, older than /);
  });

  it('fails a schema check on a missing column or another type, and a check whose column does not exist', async () => {
    await parquet(join(root, 'lake', 'curated', 'typed.parquet'), GOOD);
    const [asset] = (
      await step([
        declared('data://curated/typed.parquet', [
          { schema: { order_id: 'INTEGER', total: 'double', region: 'VARCHAR' } },
          { not_null: ['no_such_column'] },
        ]),
      ])
    ).assets;
    expect(asset?.checks[0]).toMatchObject({
      passed: false,
      failingCount: 2,
      sample: [
        { column: 'order_id', expected: 'INTEGER', actual: 'BIGINT' },
        { column: 'region', expected: 'VARCHAR', actual: null },
      ],
    });
    expect(asset?.checks[1]).toMatchObject({ passed: false, failingCount: 1 });
    expect(asset?.checks[1]?.message).toMatch(/^could not run: .*no_such_column/);
  });

  it('compares accepted numbers as numbers, and accepted text as text', async () => {
    await parquet(
      join(root, 'lake', 'curated', 'levels.parquet'),
      'SELECT range::DOUBLE AS level, range AS code FROM range(4)',
    );
    const [asset] = (
      await step([
        declared('data://curated/levels.parquet', [
          { accepted_values: { column: 'level', values: [0, 1, 2] }, name: 'levels' },
          { accepted_values: { column: 'code', values: ['0', '1', '2', '3'] }, name: 'codes' },
        ]),
      ])
    ).assets;
    expect(asset?.checks.map((c) => [c.name, c.failingCount])).toEqual([
      ['levels', 1],
      ['codes', 0],
    ]);
    expect(asset?.checks[0]?.sample).toEqual([{ level: 3, code: '3' }]);
  });

  it('keeps at most 20 failing rows as the sample', async () => {
    await parquet(join(root, 'lake', 'curated', 'many.parquet'), 'SELECT range AS n FROM range(50)');
    const [asset] = (await step([declared('data://curated/many.parquet', [{ range: { column: 'n', max: 4 } }])]))
      .assets;
    expect(asset?.checks[0]).toMatchObject({ failingCount: 45 });
    expect(asset?.checks[0]?.sample).toHaveLength(20);
  });
});

describe('checks over CSV and a PostgreSQL table', () => {
  it('checks a CSV file written as text', async () => {
    writeFileSync(join(root, 'lake', 'raw', 'orders.csv'), 'order_id,status\n1,open\n2,open\n2,nope\n');
    const [asset] = (
      await step([
        declared('data://raw/orders.csv', [
          { unique: 'order_id' },
          { accepted_values: { column: 'status', values: ['open'] } },
          { row_count: { min: 3 } },
        ]),
      ])
    ).assets;
    expect(asset?.checks.map((c) => [c.passed, c.failingCount])).toEqual([
      [false, 2],
      [false, 1],
      [true, 0],
    ]);
    expect(asset?.rowCount).toBe(3);
  });

  it('checks a table of a postgres mount, read as CSV, its version the hash of what was read', async () => {
    const [asset] = (
      await step([
        declared('data://warehouse/payments.csv', [
          { sql: 'SELECT * FROM asset WHERE amount < 0', name: 'no_refunds' },
        ]),
      ])
    ).assets;
    expect(asset?.checks[0]).toMatchObject({ name: 'no_refunds', passed: false, failingCount: 2 });
    expect(asset?.rowCount).toBe(3);
    const bytes = await namespace.readBytes('data://warehouse/payments.csv');
    expect(asset?.version).toBe(createHash('sha256').update(bytes).digest('hex'));
  });
});

describe('severity', () => {
  it('records a failed warn check and lets the attempt go on; an error check fails it with CHECK_FAILED', async () => {
    await parquet(join(root, 'lake', 'curated', 'dupes.parquet'), BAD);
    const warn = await step([declared('data://curated/dupes.parquet', [{ unique: ['email'], severity: 'warn' }])]);
    expect(warn.assets[0]?.checks[0]).toMatchObject({ passed: false, severity: 'warn', failingCount: 2 });
    expect(checkFailure(warn)).toBeNull();

    const error = await step([
      declared('data://curated/dupes.parquet', [
        { unique: ['email'], severity: 'warn' },
        { unique: ['order_id'] },
        { not_null: 'customer_id' },
      ]),
    ]);
    const failure = checkFailure(error);
    expect(failure?.code).toBe('CHECK_FAILED');
    expect(failure?.message).toBe(
      'asset orders_clean: check unique(order_id) failed: 2 failing rows (and 1 more failed check)',
    );
  });
});

describe('versions and lineage', () => {
  it('takes the version from the SHA-256 the attempt wrote, and refuses a declared asset that is missing', async () => {
    const data = taskDataProvider(namespace)({ runId: 'run-w', taskId: 'writer', attempt: 1 });
    const written = await data.write('data://curated/written.json', '[{"a":1}]');
    const result = await step([{ key: 'written', path: 'data://curated/written.json', checks: [] }], {
      runId: 'run-w',
      taskId: 'writer',
    });
    expect(result.assets[0]).toMatchObject({ version: written.sha256, rowCount: 1 });
    await expect(step([{ key: 'ghost', path: 'data://curated/ghost.parquet', checks: [] }])).rejects.toMatchObject({
      code: 'DATA_NOT_FOUND',
    });
  });

  it('links two flows through what each attempt read, and shows staleness once the upstream asset changes', async () => {
    const ctx = (runId: string, taskId: string) => taskDataProvider(namespace)({ runId, taskId, attempt: 1 });
    writeFileSync(join(root, 'lake', 'raw', 'orders_raw.csv'), 'order_id,total\n1,5\n2,7\n');
    await step([{ key: 'orders_raw', path: 'data://raw/orders_raw.csv', checks: [] }], {
      flow: 'ingest',
      taskId: 'pull',
    });

    // Flow A: reads orders_raw, writes orders_clean.
    const flowA = async (runId: string, totals: string) => {
      await ctx(runId, 'clean').readText('data://raw/orders_raw.csv');
      await ctx(runId, 'clean').write('data://curated/orders_clean.csv', `order_id,total\n${totals}`);
      return step([{ key: 'orders_clean', path: 'data://curated/orders_clean.csv', checks: [] }], {
        runId,
        flow: 'flow_a',
        taskId: 'clean',
        consumes: ['orders_raw'],
      });
    };
    await flowA('a-1', '1,5\n2,7\n');
    // Flow B: reads orders_clean through ctx.data (no consumes), writes daily_totals.
    await ctx('b-1', 'sum').readText('data://curated/orders_clean.csv');
    await ctx('b-1', 'sum').write('data://curated/daily_totals.csv', 'day,total\n2024-06-01,12\n');
    const b = await step([{ key: 'daily_totals', path: 'data://curated/daily_totals.csv', checks: [] }], {
      runId: 'b-1',
      flow: 'flow_b',
      taskId: 'sum',
    });
    const clean1 = (await store.getAsset('orders_clean'))?.latestVersion;
    expect(b.assets[0]?.inputs).toEqual([{ assetKey: 'orders_clean', version: clean1 }]);
    expect(await store.upstreamAssets('orders_clean')).toMatchObject([{ key: 'orders_raw', stale: false }]);
    expect(await store.downstreamAssets('orders_clean')).toEqual([
      { key: 'daily_totals', versionRead: clean1, latestVersion: clean1, stale: false },
    ]);
    expect((await store.getAsset('daily_totals'))?.stale).toBe(false);

    // Flow A again with the same bytes: the same version, nothing stale.
    await flowA('a-2', '1,5\n2,7\n');
    expect((await store.getAsset('orders_clean'))?.latestVersion).toBe(clean1);
    expect((await store.getAsset('daily_totals'))?.stale).toBe(false);

    // Flow A with new bytes: daily_totals read an older version and is stale now.
    await flowA('a-3', '1,5\n2,8\n');
    expect((await store.getAsset('orders_clean'))?.latestVersion).not.toBe(clean1);
    expect((await store.getAsset('daily_totals'))?.stale).toBe(true);
    expect((await store.upstreamAssets('daily_totals'))[0]).toMatchObject({ key: 'orders_clean', stale: true });
  });
});
