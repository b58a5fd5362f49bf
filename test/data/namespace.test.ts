import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataNamespace, storeRecorder } from '../../src/data/namespace.js';
import { taskDataProvider } from '../../src/data/task-data.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { createTestDatabase } from '../store/pg-helpers.js';
import { rejection } from './pg-mount-helpers.js';

let root: string;
let store: SqliteStore;
let database: { url: string; drop: () => Promise<void> };
let namespace: DataNamespace;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'baton-namespace-'));
  store = new SqliteStore({ path: join(root, 'baton.db') });
  database = await createTestDatabase();
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query(
    "CREATE TABLE customers (id bigint, name text); INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace')",
  );
  await client.end();
  let clock = 1_700_000_000_000;
  namespace = new DataNamespace({
    mounts: {
      raw: { kind: 'local', path: 'lake/raw' },
      curated: { kind: 'local', path: 'lake/curated' },
      warehouse: { kind: 'postgres', url_env: 'WAREHOUSE_URL' },
    },
    context: { root, env: { WAREHOUSE_URL: database.url } },
    record: storeRecorder(store),
    now: () => clock++,
  });
});

afterAll(async () => {
  await namespace.close();
  await store.close();
  await database.drop();
  rmSync(root, { recursive: true, force: true });
});

describe('the data namespace', () => {
  it('moves data between mounts of different kinds through one path syntax', async () => {
    await namespace.write('data://raw/orders.csv', 'id,customer\n1,1\n2,2\n');
    await namespace.copy('data://raw/orders.csv', 'data://curated/2024/orders.csv');
    expect((await namespace.readBytes('data://curated/2024/orders.csv')).toString()).toBe('id,customer\n1,1\n2,2\n');
    // A table of the PostgreSQL mount, read as CSV, lands in a folder.
    await namespace.copy('data://warehouse/customers.csv', 'data://curated/customers.csv');
    expect((await namespace.readBytes('data://curated/customers.csv')).toString()).toBe(
      'id,name\r\n1,Ada\r\n2,Grace\r\n',
    );
    // And a file goes into a table.
    await namespace.write('data://warehouse/orders.jsonl', '{"id":1,"customer":1}\n{"id":2,"customer":2}\n');
    expect((await namespace.list('data://warehouse/')).map((e) => e.key)).toEqual(['customers', 'orders']);
    expect((await namespace.list('data://curated/', { recursive: true })).map((e) => e.key)).toEqual([
      '2024/orders.csv',
      'customers.csv',
    ]);
  });

  it('records each read and write with the attempt that made it', async () => {
    const data = taskDataProvider(namespace)({ runId: 'r1', taskId: 'clean', attempt: 2 });
    await data.writeJson('data://curated/summary.json', { orders: 2 });
    expect(await data.readJson('data://curated/summary.json')).toEqual({ orders: 2 });
    const row = await store.getDataObject('data://curated/summary.json');
    expect(row).toMatchObject({ producerRunId: 'r1', producerTaskId: 'clean', size: 12 });
    expect(row?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(row?.lastReadAt).not.toBeNull();
    const accesses = await store.dataAccesses({ runId: 'r1', limit: 10 });
    expect(accesses.map((a) => [a.op, a.path, a.attempt])).toEqual([
      ['write', 'data://curated/summary.json', 2],
      ['read', 'data://curated/summary.json', 2],
    ]);
  });

  it('gives tools a local file: the file itself on a local mount', async () => {
    const data = taskDataProvider(namespace)({ runId: 'r2', taskId: 'sql', attempt: 1 });
    const file = await data.localFile('data://raw/orders.csv');
    expect(file).toBe(join(root, 'lake', 'raw', 'orders.csv'));
    expect((await rejection(data.localFile('data://warehouse/customers'))).code).toBe('DATA_UNSUPPORTED');
  });

  it('names the mount a path gets wrong', async () => {
    const unknown = await rejection(namespace.stat('data://rwa/orders.csv'));
    expect(unknown.code).toBe('DATA_MOUNT_UNKNOWN');
    expect(unknown.message).toContain('did you mean raw?');
    expect((await rejection(namespace.stat('data://raw/../secrets'))).code).toBe('DATA_PATH_ESCAPE');
    expect((await rejection(namespace.readBytes('data://raw/none.csv'))).code).toBe('DATA_NOT_FOUND');
  });

  it('a mount whose variable is missing fails alone, and names the variable', async () => {
    const partial = new DataNamespace({
      mounts: { raw: { kind: 'local', path: 'lake/raw' }, wh: { kind: 'postgres', url_env: 'MISSING_URL' } },
      context: { root, env: {} },
    });
    expect((await partial.list('data://raw/')).length).toBeGreaterThan(0);
    const missing = await rejection(partial.list('data://wh/'));
    expect(missing.code).toBe('CONFIG_INVALID');
    expect(missing.message).toContain('MISSING_URL');
    await partial.close();
  });
});
