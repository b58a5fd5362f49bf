import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestMount, piecewise, readText, rejection } from './pg-mount-helpers.js';
import type { TestMount } from './pg-mount-helpers.js';

let t: TestMount;

beforeAll(async () => {
  t = await openTestMount({ totals: 'SELECT count(*) AS n FROM kept' });
});

afterAll(async () => {
  await t?.cleanup();
});

/** The table's columns and their types, in order. */
async function columnsOf(table: string): Promise<Record<string, string>> {
  const rows = await t.sql<{ column_name: string; data_type: string }>(
    `SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position`,
    [table],
  );
  return Object.fromEntries(rows.map((r) => [r.column_name, r.data_type]));
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('postgres mount: writes', () => {
  it('creates a missing table with the first row’s columns and types inferred over all rows', async () => {
    const body = [
      '{"id":1,"price":10,"ok":true,"meta":{"a":1},"mixed":1,"never":null,"name":"Ann"}',
      '{"id":2,"price":2.5,"ok":false,"meta":[1,2],"mixed":"one","never":null,"name":"Bé"}',
      '',
      '{"id":3,"price":null,"meta":null,"mixed":true}',
    ].join('\n');
    const result = await t.mount.write('people', piecewise(body, 7));
    expect(result).toEqual({
      key: 'people',
      size: Buffer.byteLength(body),
      sha256: sha256(body),
      contentType: 'application/x-ndjson',
    });
    expect(await columnsOf('people')).toEqual({
      id: 'bigint',
      price: 'double precision',
      ok: 'boolean',
      meta: 'jsonb',
      mixed: 'text',
      never: 'text',
      name: 'text',
    });
    expect(await t.sql('SELECT * FROM people ORDER BY id')).toEqual([
      { id: '1', price: 10, ok: true, meta: { a: 1 }, mixed: '1', never: null, name: 'Ann' },
      { id: '2', price: 2.5, ok: false, meta: [1, 2], mixed: 'one', never: null, name: 'Bé' },
      { id: '3', price: null, ok: null, meta: null, mixed: 'true', never: null, name: null },
    ]);
  });

  it('creates a table from CSV with types inferred from the text, a leading zero keeping a field text', async () => {
    const body =
      'id,zip,score,flag,"note, long"\r\n1,01234,1.5,true,"say ""hi"""\r\n2,98765,2,false,\r\n3,,3e2,true,""\r\n';
    await t.mount.write('places.csv', body);
    expect(await columnsOf('places')).toEqual({
      id: 'bigint',
      zip: 'text',
      score: 'double precision',
      flag: 'boolean',
      'note, long': 'text',
    });
    expect(await t.sql('SELECT * FROM places ORDER BY id')).toEqual([
      { id: '1', zip: '01234', score: 1.5, flag: true, 'note, long': 'say "hi"' },
      { id: '2', zip: '98765', score: 2, flag: false, 'note, long': null },
      { id: '3', zip: null, score: 300, flag: true, 'note, long': '' },
    ]);
    expect(await readText(t.mount, 'places.csv')).toBe(
      'id,zip,score,flag,"note, long"\r\n1,01234,1.5,true,"say ""hi"""\r\n2,98765,2,false,\r\n3,,300,true,""\r\n',
    );
  });

  it('replaces the contents of an existing table, keeping its columns and types', async () => {
    await t.sql(
      'CREATE TABLE stock (sku text PRIMARY KEY, qty integer NOT NULL, seen timestamptz, tags text[], doc jsonb)',
    );
    await t.sql(`INSERT INTO stock VALUES ('old-1', 1, NULL, NULL, NULL), ('old-2', 2, NULL, NULL, NULL)`);
    const body =
      '{"sku":"a","qty":5,"seen":"2024-03-01T10:00:00Z","tags":["x","y"],"doc":"just text"}\n{"sku":"b","qty":7}\n';
    const result = await t.mount.write('stock.jsonl', body);
    expect(result.sha256).toBe(sha256(body));
    expect(await columnsOf('stock')).toMatchObject({ qty: 'integer', tags: 'ARRAY', doc: 'jsonb' });
    expect(await readText(t.mount, 'stock')).toBe(
      '{"sku":"a","qty":5,"seen":"2024-03-01T10:00:00Z","tags":["x","y"],"doc":"just text"}\n' +
        '{"sku":"b","qty":7,"seen":null,"tags":null,"doc":null}\n',
    );
    await t.mount.write('stock.csv', 'qty,sku\r\n9,c\r\n');
    expect(await t.sql('SELECT sku, qty FROM stock')).toEqual([{ sku: 'c', qty: 9 }]);
  });

  it('writes many rows in batches within one transaction', async () => {
    const rows = Array.from({ length: 2500 }, (_, i) => JSON.stringify({ n: i, label: `row ${i}` }));
    await t.mount.write('many', `${rows.join('\n')}\n`);
    expect(await t.sql('SELECT count(*)::int AS c, sum(n)::int AS s FROM many')).toEqual([{ c: 2500, s: 3123750 }]);
  });

  it('leaves the old contents when a line is malformed, and names the line', async () => {
    await t.sql('CREATE TABLE kept (id bigint, name text)');
    await t.sql(`INSERT INTO kept VALUES (1, 'one'), (2, 'two')`);
    const before = await readText(t.mount, 'kept');
    const rows = Array.from({ length: 1500 }, (_, i) => JSON.stringify({ id: i, name: `n${i}` }));
    rows.splice(1203, 0, '{"id": 5, "name": ');
    const error = await rejection(t.mount.write('kept', piecewise(rows.join('\n'), 4096)));
    expect(error.code).toBe('DATA_FORMAT');
    expect(error.message).toContain('line 1204 of "kept" is malformed');
    expect(await readText(t.mount, 'kept')).toBe(before);

    const csv = await rejection(t.mount.write('kept.csv', 'id,name\n1,a\n2,"b\n3,c\n'));
    expect(csv.message).toContain('line 3 of "kept.csv" is malformed: a quoted field is never closed');
    const fields = await rejection(t.mount.write('kept.csv', 'id,name\n1,a\n2,b,extra\n'));
    expect(fields.message).toContain('line 3 of "kept.csv" is malformed: 3 fields where the header has 2');
    const notObject = await rejection(t.mount.write('kept', '{"id":1}\n[1,2]\n'));
    expect(notObject.message).toContain('line 2 of "kept" is malformed: not a JSON object');
    expect(await readText(t.mount, 'kept')).toBe(before);
    expect(await readText(t.mount, 'queries/totals')).toBe('{"n":2}\n');
  });

  it('leaves the old contents when a value does not fit a column or names no column', async () => {
    const before = await readText(t.mount, 'kept');
    const typed = await rejection(t.mount.write('kept', '{"id":1}\n{"id":"seven"}\n'));
    expect(typed.code).toBe('DATA_FORMAT');
    expect(typed.message).toContain('lines 1–2 of "kept" do not fit table kept');
    expect(typed.message).toContain('invalid input syntax for type bigint: "seven"');
    const unknown = await rejection(t.mount.write('kept', '{"id":1}\n{"id":2,"colour":"red"}\n'));
    expect(unknown.message).toContain('line 2 of "kept" has a value for "colour", which is not a column of kept');
    expect(await readText(t.mount, 'kept')).toBe(before);
  });

  it('creates no table when the body is malformed, empty, or not UTF-8', async () => {
    expect((await rejection(t.mount.write('fresh', '{"a":1}\n{"a":\n'))).code).toBe('DATA_FORMAT');
    const extra = await rejection(t.mount.write('fresh', '{"a":1}\n{"a":2,"b":3}\n'));
    expect(extra.message).toContain('line 2 of "fresh" has a value for "b", which is not in the first row');
    expect((await rejection(t.mount.write('fresh', ''))).message).toContain('holds no row');
    expect((await rejection(t.mount.write('fresh', new Uint8Array([0x7b, 0xff, 0x7d])))).message).toContain(
      'is not UTF-8 text',
    );
    expect(await t.mount.stat('fresh')).toBeNull();
  });

  it('quotes column names from the body, whatever they hold', async () => {
    await t.mount.write('odd', '{"a\\"; DROP TABLE kept; --":1}\n');
    expect(await columnsOf('odd')).toEqual({ 'a"; DROP TABLE kept; --': 'bigint' });
    expect(await t.mount.stat('kept')).not.toBeNull();
  });

  it('keeps a column named __proto__ like any other', async () => {
    await t.mount.write('protos.csv', '__proto__,b\r\n1,2\r\n');
    expect(await readText(t.mount, 'protos')).toBe('{"__proto__":1,"b":2}\n');
  });

  it('refuses to write or remove a named query', async () => {
    const write = await rejection(t.mount.write('queries/totals', '{"n":1}\n'));
    expect(write.code).toBe('DATA_UNSUPPORTED');
    expect(write.message).toContain('"queries/totals" is a named query');
    expect((await rejection(t.mount.remove('queries/totals.csv'))).code).toBe('DATA_UNSUPPORTED');
  });

  it('drops a table on remove, and answers false when there is none', async () => {
    await t.mount.write('gone', '{"a":1}\n');
    expect(await t.mount.remove('gone')).toBe(true);
    expect(await t.mount.stat('gone')).toBeNull();
    expect(await t.mount.remove('gone')).toBe(false);
  });
});
