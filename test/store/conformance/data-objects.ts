/**
 * Conformance of the data objects port (src/store/ports/data-objects.ts): object rows kept
 * by reads and replaced by writes, listings in bytewise path order, accesses kept as
 * history in the order recorded, and a batch that is written whole or not at all.
 */
import { expect, it } from 'vitest';
import type { DataAccess, DataObjectRecord, DataRead, DataWrite, Store } from '../../../src/store/store.js';
import { DATA_SCHEMA_BYTES_MOST, DATA_TAG_CHARS_MOST } from '../../../src/store/store.js';
import { describePort } from './shared.js';
import type { StoreFactory } from './shared.js';
import { rejection } from '../../helpers/thrown.js';

const SHA = 'a'.repeat(64);

function write(path: string, fields: Partial<Omit<DataWrite, 'op' | 'path'>> = {}): DataWrite {
  return { op: 'write', path, size: 10, etag: 'e1', at: 1000, ...fields };
}

function read(path: string, fields: Partial<Omit<DataRead, 'op' | 'path'>> = {}): DataRead {
  return { op: 'read', path, size: 10, etag: 'e1', at: 2000, ...fields };
}

/** The error a call rejects with; fails the test if it resolves. */

/** Everything the store holds of data: every object row and every access, in order. */
async function everything(store: Store): Promise<{ objects: DataObjectRecord[]; accesses: unknown[] }> {
  return {
    objects: await store.listDataObjects({ limit: 1000 }),
    accesses: await store.dataAccesses({ limit: 1000 }),
  };
}

/** Bytewise (UTF-8) order, the order both stores list paths in. */
function bytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function dataObjectsConformance(factory: StoreFactory): void {
  describePort(factory, 'data objects', (t) => {
    it('records a write with its producer, and a later read keeps the producer', async () => {
      const { store } = t;
      const path = 'data://raw/orders/2024.csv';
      await store.recordDataAccesses([
        write(path, {
          runId: 'r1',
          taskId: 'extract',
          attempt: 2,
          sha256: SHA,
          schema: { columns: [{ name: 'id', type: 'int' }], note: null },
          contentType: 'text/csv',
        }),
      ]);
      const written: DataObjectRecord = {
        path,
        mount: 'raw',
        key: 'orders/2024.csv',
        size: 10,
        etag: 'e1',
        sha256: SHA,
        schema: { columns: [{ name: 'id', type: 'int' }], note: null },
        contentType: 'text/csv',
        producerRunId: 'r1',
        producerTaskId: 'extract',
        writtenAt: 1000,
        lastReadAt: null,
      };
      expect(await store.getDataObject(path)).toEqual(written);

      await store.recordDataAccesses([read(path, { runId: 'r2', taskId: 'load', attempt: 1, at: 2000 })]);
      expect(await store.getDataObject(path)).toEqual({ ...written, lastReadAt: 2000 });
      expect(await store.getDataObject('data://raw/orders/2025.csv')).toBeNull();
    });

    it('creates the row of an object it only read, without a producer', async () => {
      const { store } = t;
      const path = 'data://lake/events/day=1/part-0.parquet';
      await store.recordDataAccesses([read(path, { size: 5, etag: null, at: 3000 })]);
      expect(await store.getDataObject(path)).toEqual({
        path,
        mount: 'lake',
        key: 'events/day=1/part-0.parquet',
        size: 5,
        etag: null,
        sha256: null,
        schema: null,
        contentType: null,
        producerRunId: null,
        producerTaskId: null,
        writtenAt: null,
        lastReadAt: 3000,
      });
    });

    it('a later write replaces the producer and what it describes, and keeps the last read', async () => {
      const { store } = t;
      const path = 'data://raw/a.json';
      await store.recordDataAccesses([
        write(path, { runId: 'r1', taskId: 'a', sha256: SHA, schema: { v: 1 }, contentType: 'application/json' }),
      ]);
      await store.recordDataAccesses([read(path, { runId: 'r2', taskId: 'b', at: 2000 })]);
      await store.recordDataAccesses([write(path, { runId: 'r3', taskId: 'c', size: 20, etag: 'e2', at: 3000 })]);
      expect(await store.getDataObject(path)).toMatchObject({
        size: 20,
        etag: 'e2',
        sha256: null,
        schema: null,
        contentType: null,
        producerRunId: 'r3',
        producerTaskId: 'c',
        writtenAt: 3000,
        lastReadAt: 2000,
      });
      // A write outside a run (the CLI's) leaves the object without a producer.
      await store.recordDataAccesses([write(path, { size: 30, etag: 'e3', at: 4000, sha256: SHA })]);
      expect(await store.getDataObject(path)).toMatchObject({
        size: 30,
        sha256: SHA,
        producerRunId: null,
        producerTaskId: null,
        writtenAt: 4000,
      });
    });

    it('a read that sees another size or ETag drops the SHA-256 of the write, and keeps the rest', async () => {
      const { store } = t;
      const same = 'data://raw/same.csv';
      const changed = 'data://raw/changed.csv';
      const resized = 'data://raw/resized.csv';
      await store.recordDataAccesses([
        write(same, { runId: 'r1', taskId: 'a', sha256: SHA }),
        write(changed, { runId: 'r1', taskId: 'a', sha256: SHA }),
        write(resized, { runId: 'r1', taskId: 'a', sha256: SHA }),
      ]);
      await store.recordDataAccesses([read(same), read(changed, { etag: 'e2' }), read(resized, { size: 11 })]);
      expect(await store.getDataObject(same)).toMatchObject({ sha256: SHA, etag: 'e1', producerRunId: 'r1' });
      expect(await store.getDataObject(changed)).toMatchObject({ sha256: null, etag: 'e2', producerRunId: 'r1' });
      expect(await store.getDataObject(resized)).toMatchObject({ sha256: null, size: 11, producerRunId: 'r1' });
    });

    it('applies accesses to one path in one batch in the order given', async () => {
      const { store } = t;
      const path = 'data://raw/twice.csv';
      await store.recordDataAccesses([
        read(path, { size: 1, etag: 'e0', at: 100 }),
        write(path, { runId: 'r1', taskId: 'a', size: 2, etag: 'e1', at: 200, sha256: SHA }),
        read(path, { runId: 'r1', taskId: 'b', size: 2, etag: 'e1', at: 300 }),
        write(path, { runId: 'r1', taskId: 'c', size: 3, etag: 'e2', at: 400, schema: ['x'] }),
        read('data://raw/other.csv', { at: 500 }),
      ]);
      expect(await store.getDataObject(path)).toMatchObject({
        size: 3,
        etag: 'e2',
        sha256: null,
        schema: ['x'],
        producerTaskId: 'c',
        writtenAt: 400,
        lastReadAt: 300,
      });
      const accesses = await store.dataAccesses({ path, limit: 10 });
      expect(accesses.map((a) => [a.op, a.taskId, a.size, a.at])).toEqual([
        ['read', null, 1, 100],
        ['write', 'a', 2, 200],
        ['read', 'b', 2, 300],
        ['write', 'c', 3, 400],
      ]);
    });

    it('lists objects in bytewise path order, a page after another', async () => {
      const { store } = t;
      // Upper case before lower case, `-` before `/`, ASCII before é: bytewise, not as a
      // language collation would sort them.
      const paths = [
        'data://raw/ab',
        'data://raw/é.csv',
        'data://raw/a/2',
        'data://clean/x',
        'data://raw/B',
        'data://raw/a-x',
        'data://raw/a/1',
        'data://raw2/x',
      ];
      await store.recordDataAccesses(paths.map((path, i) => write(path, { at: 1000 + i })));
      const sorted = [...paths].sort(bytewise);
      expect(sorted.slice(0, 3)).toEqual(['data://clean/x', 'data://raw/B', 'data://raw/a-x']);
      expect((await store.listDataObjects({ limit: 100 })).map((o) => o.path)).toEqual(sorted);

      const pages: string[][] = [];
      let afterPath: string | undefined;
      for (let i = 0; i < 10; i++) {
        const page = await store.listDataObjects({ limit: 3, ...(afterPath === undefined ? {} : { afterPath }) });
        if (page.length === 0) break;
        pages.push(page.map((o) => o.path));
        afterPath = page.at(-1)?.path;
      }
      expect(pages.map((p) => p.length)).toEqual([3, 3, 2]);
      expect(pages.flat()).toEqual(sorted);
    });

    it('filters by mount and by a plain string prefix', async () => {
      const { store } = t;
      const paths = [
        'data://raw/a/1',
        'data://raw/a/2',
        'data://raw/ab',
        'data://raw/a-x',
        'data://raw2/a/1',
        'data://clean/a/1',
      ];
      await store.recordDataAccesses(paths.map((path) => write(path)));
      const list = async (options: { mount?: string; prefix?: string; afterPath?: string }) =>
        (await store.listDataObjects({ limit: 100, ...options })).map((o) => o.path);

      expect(await list({ mount: 'raw' })).toEqual([
        'data://raw/a-x',
        'data://raw/a/1',
        'data://raw/a/2',
        'data://raw/ab',
      ]);
      expect(await list({ prefix: 'data://raw/a/' })).toEqual(['data://raw/a/1', 'data://raw/a/2']);
      // A plain prefix: without its `/`, the siblings that start with it match too.
      expect(await list({ prefix: 'data://raw/a' })).toEqual([
        'data://raw/a-x',
        'data://raw/a/1',
        'data://raw/a/2',
        'data://raw/ab',
      ]);
      expect(await list({ prefix: 'data://raw' })).toHaveLength(5);
      expect(await list({ mount: 'raw', prefix: 'data://raw/a/', afterPath: 'data://raw/a/1' })).toEqual([
        'data://raw/a/2',
      ]);
      expect(await list({ mount: 'clean', prefix: 'data://raw/' })).toEqual([]);
      expect(await list({ mount: 'none' })).toEqual([]);
    });

    it('forgets a removed object, keeping its accesses', async () => {
      const { store } = t;
      const path = 'data://raw/gone.csv';
      await store.recordDataAccesses([write(path, { runId: 'r1', taskId: 'a' })]);
      await store.recordDataAccesses([read(path, { runId: 'r2', taskId: 'b' }), write('data://raw/kept.csv')]);
      expect(await store.forgetDataObject(path)).toBe(true);
      expect(await store.getDataObject(path)).toBeNull();
      expect(await store.forgetDataObject(path)).toBe(false);
      expect(await store.forgetDataObject('data://raw/never.csv')).toBe(false);
      expect((await store.listDataObjects({ limit: 10 })).map((o) => o.path)).toEqual(['data://raw/kept.csv']);
      expect((await store.dataAccesses({ path, limit: 10 })).map((a) => [a.op, a.runId])).toEqual([
        ['write', 'r1'],
        ['read', 'r2'],
      ]);
    });

    it('reads back accesses by run and by path in the order recorded, a page after another', async () => {
      const { store } = t;
      await store.recordDataAccesses([
        read('data://raw/in.csv', { runId: 'r1', taskId: 'a', attempt: 1, at: 10 }),
        read('data://raw/in.csv', { runId: 'r2', taskId: 'a', attempt: 1, at: 11 }),
        write('data://raw/out.csv', { runId: 'r1', taskId: 'b', attempt: 2, size: 7, etag: 'x', at: 12 }),
      ]);
      await store.recordDataAccesses([
        read('data://raw/out.csv', { at: 13 }),
        read('data://raw/out.csv', { runId: 'r1', taskId: 'c', attempt: 1, at: 14 }),
      ]);
      const ofRun = await store.dataAccesses({ runId: 'r1', limit: 10 });
      expect(ofRun.map((a) => [a.path, a.op, a.taskId, a.attempt, a.at])).toEqual([
        ['data://raw/in.csv', 'read', 'a', 1, 10],
        ['data://raw/out.csv', 'write', 'b', 2, 12],
        ['data://raw/out.csv', 'read', 'c', 1, 14],
      ]);
      expect(ofRun[1]).toMatchObject({ runId: 'r1', size: 7, etag: 'x' });
      const all = await store.dataAccesses({ limit: 10 });
      expect(all.map((a) => a.at)).toEqual([10, 11, 12, 13, 14]);
      expect(all.map((a) => a.seq)).toEqual([...all.map((a) => a.seq)].sort((a, b) => a - b));
      expect(all[3]).toMatchObject({ runId: null, taskId: null, attempt: null, op: 'read' });
      const firstPage = await store.dataAccesses({ runId: 'r1', limit: 2 });
      const secondPage = await store.dataAccesses({ runId: 'r1', limit: 2, afterSeq: firstPage.at(-1)?.seq ?? 0 });
      expect([...firstPage, ...secondPage]).toEqual(ofRun);
      expect(await store.dataAccesses({ runId: 'r1', path: 'data://raw/out.csv', limit: 10 })).toEqual(ofRun.slice(1));
      expect(await store.dataAccesses({ runId: 'r9', limit: 10 })).toEqual([]);
    });

    it('writes nothing of a batch the database refuses', async () => {
      const { store } = t;
      await store.recordDataAccesses([write('data://raw/kept.csv', { runId: 'r1', taskId: 'a', sha256: SHA })]);
      const before = await everything(store);
      // An op neither read nor write, last in the batch: the rows before it were written
      // in the transaction when the database's CHECK refuses it.
      const refused = await rejection(
        store.recordDataAccesses([
          write('data://raw/new.csv', { runId: 'r2', taskId: 'b' }),
          read('data://raw/kept.csv', { runId: 'r2', taskId: 'b', size: 99, etag: 'e9', at: 5000 }),
          { ...read('data://raw/odd.csv'), op: 'delete' } as unknown as DataAccess,
        ]),
      );
      expect(refused.code).toMatch(/^STORE_/);
      expect(await everything(store)).toEqual(before);
      expect(await store.getDataObject('data://raw/new.csv')).toBeNull();
    });

    it('refuses a path that is not an object path, before writing anything', async () => {
      const { store } = t;
      const cases: [string, string][] = [
        ['data://raw/a\u0000b.csv', 'DATA_PATH_INVALID'],
        ['data://raw/', 'DATA_PATH_INVALID'],
        ['data://raw/folder/', 'DATA_PATH_INVALID'],
        ['s3://bucket/a.csv', 'DATA_PATH_INVALID'],
        ['data://raw/../secret', 'DATA_PATH_ESCAPE'],
      ];
      for (const [path, code] of cases) {
        const refused = await rejection(store.recordDataAccesses([write('data://raw/ok.csv'), write(path)]));
        expect([path, refused.code]).toEqual([path, code]);
        expect(refused.message).toContain('data access 2');
        expect(await store.getDataObject(path)).toBeNull();
        expect(await store.forgetDataObject(path)).toBe(false);
      }
      expect(await everything(store)).toEqual({ objects: [], accesses: [] });
      await store.recordDataAccesses([]);
      expect(await everything(store)).toEqual({ objects: [], accesses: [] });
    });

    it('stores a schema over 64 KiB, or an ETag or content type over its limit, as null', async () => {
      const { store } = t;
      // JSON.stringify of a string adds its two quotes.
      const largest = 'x'.repeat(DATA_SCHEMA_BYTES_MOST - 2);
      const tag = 't'.repeat(DATA_TAG_CHARS_MOST);
      await store.recordDataAccesses([
        write('data://raw/fits', { schema: largest, etag: tag, contentType: tag, sha256: tag }),
        write('data://raw/over', {
          schema: `${largest}x`,
          etag: `${tag}t`,
          contentType: `${tag}t`,
          sha256: `${tag}t`,
        }),
        // Bytes, not characters: 2 bytes each in UTF-8.
        write('data://raw/wide', { schema: 'é'.repeat(DATA_SCHEMA_BYTES_MOST / 2) }),
      ]);
      expect(await store.getDataObject('data://raw/fits')).toMatchObject({
        schema: largest,
        etag: tag,
        contentType: tag,
        sha256: tag,
      });
      expect(await store.getDataObject('data://raw/over')).toMatchObject({
        schema: null,
        etag: null,
        contentType: null,
        sha256: null,
      });
      expect(await store.getDataObject('data://raw/wide')).toMatchObject({ schema: null });
      expect((await store.dataAccesses({ path: 'data://raw/over', limit: 1 }))[0]?.etag).toBeNull();
    });
  });
}
