import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresMount } from '../../src/data/postgres-mount.js';
import { PASSWORD, openTestMount, readText, rejection } from './pg-mount-helpers.js';
import type { TestMount } from './pg-mount-helpers.js';
import { waitFor } from '../helpers/wait.js';

const BIG_ROWS = 200_000;
const PAYLOAD = 'x'.repeat(400);

let t: TestMount;

beforeAll(async () => {
  t = await openTestMount({
    big_orders: 'SELECT id, customer FROM orders WHERE amount > 10 ORDER BY id;',
    broken: 'SELECT no_such_column FROM orders',
  });
  await t.sql(`CREATE TABLE orders (
    id bigint PRIMARY KEY, customer text, amount numeric(12,2), big bigint, exact numeric,
    placed_at timestamptz, day date, local_at timestamp, meta jsonb, paid boolean)`);
  await t.sql(`INSERT INTO orders VALUES
    (1, 'Ann', 12.50, 9007199254740993, 123456789012345678.5, '2024-01-02 03:04:05.123+00', '2024-01-02',
     '2024-01-02 03:04:05', '{"a":[1,2]}', true),
    (2, 'Bo, "the" best', 3, 7, 0.1, '2024-06-30 23:59:59.999999+02', '1999-12-31', NULL, NULL, false),
    (3, E'two\\nlines', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, '', 20, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`);
  await t.sql('CREATE TABLE empty_one (id bigint, name text)');
  await t.sql('CREATE TABLE x (id int)');
  await t.sql(
    `CREATE TABLE big AS SELECT g AS id, $1 || g AS payload, now() AS at FROM generate_series(1, ${BIG_ROWS}) g`,
    [PAYLOAD],
  );
});

afterAll(async () => {
  await t?.cleanup();
});

describe('postgres mount: keys and formats', () => {
  it('reads a table as JSON Lines, one object per row, numbers exact and dates as ISO text', async () => {
    const lines = (await readText(t.mount, 'orders.jsonl')).trimEnd().split('\n');
    const rows = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows).toHaveLength(4);
    expect(rows[0]).toEqual({
      id: 1,
      customer: 'Ann',
      amount: 12.5,
      big: '9007199254740993',
      exact: '123456789012345678.5',
      placed_at: '2024-01-02T03:04:05.123Z',
      day: '2024-01-02',
      local_at: '2024-01-02T03:04:05',
      meta: { a: [1, 2] },
      paid: true,
    });
    expect(rows[1]).toMatchObject({ amount: 3, big: 7, exact: 0.1, placed_at: '2024-06-30T21:59:59.999999Z' });
    expect(rows[2]).toMatchObject({ customer: 'two\nlines', amount: null, meta: null });
  });

  it('reads `<table>` as JSON Lines too', async () => {
    expect(await readText(t.mount, 'orders')).toBe(await readText(t.mount, 'orders.jsonl'));
  });

  it('reads a table as CSV with a header row, quoting as RFC 4180 says, null as an empty field', async () => {
    const text = await readText(t.mount, 'orders.csv');
    const lines = text.split('\r\n');
    expect(lines[0]).toBe('id,customer,amount,big,exact,placed_at,day,local_at,meta,paid');
    expect(lines[1]).toBe(
      '1,Ann,12.5,9007199254740993,123456789012345678.5,2024-01-02T03:04:05.123Z,2024-01-02,2024-01-02T03:04:05,"{""a"":[1,2]}",true',
    );
    expect(lines[2]).toBe('2,"Bo, ""the"" best",3,7,0.1,2024-06-30T21:59:59.999999Z,1999-12-31,,,false');
    expect(text).toContain('\r\n3,"two\nlines",,,,,,,,\r\n');
    expect(text).toContain('\r\n4,"",20,,,,,,,\r\n');
    expect(text.endsWith('\r\n')).toBe(true);
  });

  it('reads an empty table as nothing in JSON Lines and a header alone in CSV', async () => {
    expect(await readText(t.mount, 'empty_one')).toBe('');
    expect(await readText(t.mount, 'empty_one.csv')).toBe('id,name\r\n');
  });

  it('reads a named query in each format', async () => {
    const expected = '{"id":1,"customer":"Ann"}\n{"id":4,"customer":""}\n';
    expect(await readText(t.mount, 'queries/big_orders')).toBe(expected);
    expect(await readText(t.mount, 'queries/big_orders.jsonl')).toBe(expected);
    expect(await readText(t.mount, 'queries/big_orders.csv')).toBe('id,customer\r\n1,Ann\r\n4,""\r\n');
  });

  it('gives DATA_NOT_FOUND for a missing table or query, and DATA_IO naming a query that fails', async () => {
    const table = await rejection(t.mount.read('nope.csv'));
    expect(table.code).toBe('DATA_NOT_FOUND');
    expect(table.message).toContain('no table "nope"');
    expect((await rejection(t.mount.read('queries/nope'))).code).toBe('DATA_NOT_FOUND');
    const broken = await rejection(t.mount.read('queries/broken'));
    expect(broken.code).toBe('DATA_IO');
    expect(broken.message).toContain('"queries/broken"');
    expect(broken.message).toContain('no_such_column');
  });

  it('refuses keys that name no table or query', async () => {
    for (const key of ['a/b', 'queries/a/b', 'orders.json', 'queries/', '9lives', 'or"ders']) {
      expect((await rejection(t.mount.stat(key))).code, key).toBe('DATA_PATH_INVALID');
    }
  });

  it('refuses an identifier injection in every operation, and runs none of it', async () => {
    const key = 'orders; DROP TABLE x';
    for (const call of [
      () => t.mount.stat(key),
      () => t.mount.read(key),
      () => t.mount.write(key, '{"id":1}\n'),
      () => t.mount.remove(key),
      () => t.mount.read('queries/x; DROP TABLE x'),
    ]) {
      expect((await rejection(call())).code).toBe('DATA_PATH_INVALID');
    }
    expect(await t.sql(`SELECT to_regclass('public.x') IS NOT NULL AS present`)).toEqual([{ present: true }]);
  });
});

describe('postgres mount: list and stat', () => {
  it('lists one entry per table, with its size on disk, and the queries folder', async () => {
    const entries = await t.mount.list('');
    expect(entries.map((e) => e.key)).toEqual(['big', 'empty_one', 'orders', 'queries', 'x']);
    const sizes = await t.sql<{ size: string }>(`SELECT pg_total_relation_size('orders')::text AS size`);
    expect(entries.find((e) => e.key === 'orders')).toEqual({ key: 'orders', size: Number(sizes[0]?.size) });
    expect(entries.find((e) => e.key === 'queries')).toEqual({ key: 'queries', size: 0, folder: true });
    expect(entries.find((e) => e.key === 'big')?.size).toBeGreaterThan(BIG_ROWS * PAYLOAD.length);
  });

  it('lists the named queries under queries/, and honours recursive and limit', async () => {
    expect(await t.mount.list('queries')).toEqual([
      { key: 'queries/big_orders', size: 0 },
      { key: 'queries/broken', size: 0 },
    ]);
    const all = await t.mount.list('', { recursive: true });
    expect(all.map((e) => e.key)).toEqual(['big', 'empty_one', 'orders', 'queries/big_orders', 'queries/broken', 'x']);
    expect((await t.mount.list('', { limit: 2 })).map((e) => e.key)).toEqual(['big', 'empty_one']);
    expect(await t.mount.list('elsewhere')).toEqual([]);
  });

  it('stats a table with its size and no made-up etag, and gives null for a missing one', async () => {
    const info = await t.mount.stat('orders.csv');
    expect(info).toMatchObject({ key: 'orders.csv', contentType: 'text/csv' });
    expect(info?.size).toBeGreaterThan(0);
    expect(info?.etag).toBeUndefined();
    expect(info?.modifiedAt).toBeUndefined();
    expect(await t.mount.stat('missing')).toBeNull();
    expect(await t.mount.stat('queries/big_orders')).toEqual({
      key: 'queries/big_orders',
      size: 0,
      contentType: 'application/x-ndjson',
    });
    expect(await t.mount.stat('queries/missing')).toBeNull();
  });

  it('has no queries folder when no query is configured', async () => {
    const other = await openPostgresMount(
      'plain',
      { kind: 'postgres', url_env: 'U' },
      { root: process.cwd(), env: { U: t.url } },
    );
    try {
      expect((await other.list('')).map((e) => e.key)).toEqual(['big', 'empty_one', 'orders', 'x']);
      expect(other).toMatchObject({ kind: 'postgres', writable: true, remote: false });
    } finally {
      await other.close();
    }
  });
});

describe('postgres mount: streaming', () => {
  it(`streams ${BIG_ROWS} rows through a cursor with bounded memory, and waits for a slow reader`, async () => {
    const { body } = await t.mount.read('big');
    // A reader that stops: the stream must not fetch ahead of it.
    const first = await new Promise<Buffer>((resolve) => body.once('data', resolve));
    body.pause();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // One batch (about 0.5 MB here) and the stream's own buffer, not the table.
    expect(body.readableLength).toBeLessThan(1024 * 1024);

    // Memory still held after a full collection, sampled as the rows pass.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const memory = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const base = memory();
    let peak = 0;
    let chunks = 0;
    let bytes = first.length;
    let rows = first.toString().split('\n').length - 1;
    let tail = '';
    for await (const chunk of body) {
      const text = String(chunk);
      bytes += text.length;
      rows += text.split('\n').length - 1;
      tail = (tail + text).slice(-2000);
      if (++chunks % 20 === 0) peak = Math.max(peak, memory() - base);
    }
    expect(rows).toBe(BIG_ROWS);
    const last = JSON.parse(tail.trimEnd().split('\n').pop() as string) as { id: number; payload: string };
    expect(last.id).toBe(BIG_ROWS);
    expect(bytes).toBeGreaterThan(BIG_ROWS * PAYLOAD.length);
    // Holding the rows would take more than the bytes read; a batch at a time takes a few MB.
    expect(chunks).toBeGreaterThan(100);
    expect(peak).toBeLessThan(bytes / 10);
  });

  /** Other connections of the test database inside a transaction (fetching, or idle in it). */
  const openTransactions = async () =>
    (
      await t.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()`,
      )
    )[0]?.n;
  /** The transaction of a stopped read ends right after its stream closes: waited for, bounded. */
  const noOpenTransaction = () =>
    waitFor(async () => ((await openTransactions()) === 0 ? true : undefined), {
      timeoutMs: 5000,
      what: 'the read transaction to end',
    });

  it('stops a read when its signal aborts, and ends its transaction', async () => {
    const controller = new AbortController();
    const { body } = await t.mount.read('big', { signal: controller.signal });
    await new Promise((resolve) => body.once('data', resolve));
    expect(await openTransactions()).toBe(1);
    const closed = new Promise((resolve) => body.once('close', resolve));
    body.on('error', () => undefined);
    controller.abort();
    await closed;
    expect(body.destroyed).toBe(true);
    await noOpenTransaction();
  });

  it('gives the connection back when a reader stops early, so a write to the table is not blocked', async () => {
    const { body } = await t.mount.read('big.csv');
    await new Promise((resolve) => body.once('data', resolve));
    body.destroy();
    await new Promise((resolve) => body.once('close', resolve));
    await noOpenTransaction();
    await t.mount.write('big', '{"id":1,"payload":"p","at":"2024-01-01T00:00:00Z"}\n');
    expect(await readText(t.mount, 'big.csv')).toBe('id,payload,at\r\n1,p,2024-01-01T00:00:00Z\r\n');
  });
});

describe('postgres mount: configuration and secrets', () => {
  it('refuses a missing URL variable with CONFIG_INVALID naming the mount and the variable', async () => {
    const error = await rejection(
      openPostgresMount('warehouse', { kind: 'postgres', url_env: 'WAREHOUSE_URL' }, { root: '.', env: {} }),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain('mount "warehouse"');
    expect(error.message).toContain('WAREHOUSE_URL');
    expect(error.hint).toContain('Set WAREHOUSE_URL=');
  });

  it('refuses a bad schema or query name in the configuration', async () => {
    const env = { root: '.', env: { U: t.url } };
    const schema = await rejection(openPostgresMount('w', { kind: 'postgres', url_env: 'U', schema: 'a;b' }, env));
    expect(schema.code).toBe('CONFIG_INVALID');
    const query = await rejection(
      openPostgresMount('w', { kind: 'postgres', url_env: 'U', queries: { 'x y': 'SELECT 1' } }, env),
    );
    expect(query.code).toBe('CONFIG_INVALID');
  });

  it('never shows the URL’s password in an error, even when the server repeats it', async () => {
    const errors = [];
    // A role named like the password: the server's "role ... does not exist" repeats it.
    const echoed = new URL(t.url);
    echoed.username = PASSWORD;
    const unreachable = new URL(t.url);
    unreachable.port = '1';
    for (const url of [echoed.toString(), unreachable.toString(), `postgres://postgres:${PASSWORD}/nohost`]) {
      const mount = await openPostgresMount('w', { kind: 'postgres', url_env: 'U' }, { root: '.', env: { U: url } });
      try {
        errors.push(await rejection(mount.list('')));
        errors.push(await rejection(mount.read('orders')));
        errors.push(await rejection(mount.write('orders', '{"id":1}\n')));
      } finally {
        await mount.close();
      }
    }
    errors.push(await rejection(t.mount.read('queries/broken')));
    expect(errors.map((e) => e.code)).toEqual([...Array(9).fill('DATA_IO'), 'DATA_IO']);
    expect(errors[0]?.message).toContain('role "***" does not exist');
    for (const error of errors) {
      expect(JSON.stringify(error.toJSON())).not.toContain(PASSWORD);
      expect(inspect(error, { depth: 10 })).not.toContain(PASSWORD);
    }
  });
});
