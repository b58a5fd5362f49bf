/**
 * The read-through disk cache over a real s3 mount (s3rver on 127.0.0.1), with the mount
 * wrapped to count its reads (GetObject) and stats (HeadObject): cold and warm reads,
 * validation by ETag and TTL, an object gone, LRU eviction and pins, single flight in one
 * process and across two, aborts, and an index that survives restarts and damage.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BatonError } from '../../src/core/errors.js';
import { DiskCache } from '../../src/data/cache/disk-cache.js';
import type { DataMount, MountOperationOptions, ObjectInfo } from '../../src/data/mount.js';
import { openS3Mount } from '../../src/data/s3-mount.js';
import type { TestS3 } from './s3rver.js';
import { requestsFor, startS3 } from './s3rver.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let s3: TestS3;
const cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  s3 = await startS3();
});

afterAll(async () => {
  await s3?.stop();
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A mount that counts the calls made to it; `hold` delays the start of every read's body. */
interface Counted {
  readonly mount: DataMount;
  readonly counts: { reads: number; stats: number };
  hold: Promise<void> | null;
}

function counted(inner: DataMount): Counted {
  const c: Counted = {
    counts: { reads: 0, stats: 0 },
    hold: null,
    mount: {
      name: inner.name,
      kind: inner.kind,
      writable: inner.writable,
      remote: inner.remote,
      stat: (key: string, o?: MountOperationOptions) => {
        c.counts.stats++;
        return inner.stat(key, o);
      },
      list: (folder, o) => inner.list(folder, o),
      read: async (key: string, o?: MountOperationOptions) => {
        c.counts.reads++;
        if (c.hold) await c.hold;
        return inner.read(key, o);
      },
      write: (key, body, o) => inner.write(key, body, o),
      remove: (key, o) => inner.remove(key, o),
      close: () => inner.close(),
    },
  };
  return c;
}

/** A fresh bucket, a counted s3 mount on it, and an empty cache folder. */
async function setup(): Promise<{ bucket: string; s3mount: DataMount; m: Counted; dir: string }> {
  const bucket = await s3.bucket('cache');
  const s3mount = await openS3Mount('lake', s3.config(bucket), s3.context());
  cleanups.push(() => s3mount.close());
  const dir = mkdtempSync(join(tmpdir(), 'baton-cache-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { bucket, s3mount, m: counted(s3mount), dir };
}

async function openCache(dir: string, maxBytes = 2 ** 30): Promise<DiskCache> {
  const cache = await DiskCache.open(dir, { maxBytes });
  cleanups.push(() => cache.close());
  return cache;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

const sha = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest('hex');

describe('disk cache', () => {
  it('downloads a cold object once, then answers from the cached file', async () => {
    const { m, dir } = await setup();
    await m.mount.write('reports/q1.csv', 'id,total\n1,9\n');
    const cache = await openCache(dir);

    const cold = await cache.readThrough(m.mount, 'reports/q1.csv');
    expect(cold.fetched).toBe(true);
    expect(readFileSync(cold.file, 'utf8')).toBe('id,total\n1,9\n');
    expect(cold.file.startsWith(dir)).toBe(true);
    expect(cold.info).toMatchObject({ key: 'reports/q1.csv', size: 13 });
    expect(cold.info.etag).toMatch(/^[0-9a-f]{32}$/);

    const warm = await cache.readThrough(m.mount, 'reports/q1.csv');
    expect(warm).toEqual({ ...cold, fetched: false });
    expect(m.counts).toEqual({ reads: 1, stats: 1 });
    expect(await cache.stats()).toEqual({
      entries: 1,
      bytes: 13,
      maxBytes: 2 ** 30,
      pinned: 0,
      hits: 1,
      misses: 1,
      fetches: 1,
      evictions: 0,
    });
    // Nothing left aside: no download, no lock.
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
  });

  it('downloads again when the ETag changed, and trusts a copy within its TTL', async () => {
    const { m, dir } = await setup();
    await m.mount.write('a.txt', 'one');
    const cache = await openCache(dir);
    await cache.readThrough(m.mount, 'a.txt');
    await m.mount.write('a.txt', 'two!');

    const trusted = await cache.readThrough(m.mount, 'a.txt', { ttlMs: 60_000 });
    expect(trusted.fetched).toBe(false);
    expect(readFileSync(trusted.file, 'utf8')).toBe('one');
    expect(m.counts).toEqual({ reads: 1, stats: 0 });

    const checked = await cache.readThrough(m.mount, 'a.txt', { ttlMs: 0 });
    expect(checked.fetched).toBe(true);
    expect(readFileSync(checked.file, 'utf8')).toBe('two!');
    expect(checked.info.size).toBe(4);
    expect(m.counts).toEqual({ reads: 2, stats: 1 });
    expect((await cache.stats()).bytes).toBe(4);
  });

  it('drops the copy of an object gone from the mount, with DATA_NOT_FOUND', async () => {
    const { m, dir } = await setup();
    await m.mount.write('gone.txt', 'bye');
    const cache = await openCache(dir);
    const { file } = await cache.readThrough(m.mount, 'gone.txt');
    await m.mount.remove('gone.txt');
    const error = await rejection(cache.readThrough(m.mount, 'gone.txt'));
    expect(error).toBeInstanceOf(BatonError);
    expect((error as BatonError).code).toBe('DATA_NOT_FOUND');
    expect((error as BatonError).message).toContain('gone.txt');
    expect(existsSync(file)).toBe(false);
    expect((await cache.stats()).entries).toBe(0);
    const never = await rejection(cache.readThrough(m.mount, 'never.txt'));
    expect((never as BatonError).code).toBe('DATA_NOT_FOUND');
  });

  it('evicts the least recently used entries past maxBytes, keeping pinned ones', async () => {
    const { m, dir } = await setup();
    for (const k of ['a', 'b', 'c', 'd', 'e']) await m.mount.write(k, randomBytes(1000));
    const cache = await openCache(dir, 3000);
    const read = async (k: string) => (await cache.readThrough(m.mount, k, { ttlMs: 60_000 })).file;
    const files = { a: await read('a'), b: await read('b'), c: await read('c') };
    await read('a'); // a is now used after b and c
    const d = await read('d');
    expect([existsSync(files.a), existsSync(files.b), existsSync(files.c), existsSync(d)]).toEqual([
      true,
      false,
      true,
      true,
    ]);
    expect(await cache.pin('lake', 'c')).toBe(true);
    expect(await cache.pin('lake', 'b')).toBe(false);
    const e = await read('e');
    // c is the least recently used, but pinned: a goes instead.
    expect([existsSync(files.a), existsSync(files.c), existsSync(d), existsSync(e)]).toEqual([false, true, true, true]);
    expect(await cache.stats()).toMatchObject({ entries: 3, bytes: 3000, pinned: 1, evictions: 2 });

    expect(await cache.unpin('lake', 'c')).toBe(true);
    await read('b');
    expect(existsSync(files.c)).toBe(false);
    expect(await cache.stats()).toMatchObject({ entries: 3, pinned: 0, evictions: 3 });
  });

  it('evicts the unpinned entries no read used since a time, as prune does', async () => {
    const { m, dir } = await setup();
    for (const k of ['old', 'kept', 'fresh']) await m.mount.write(k, randomBytes(100));
    const cache = await openCache(dir);
    const read = async (k: string) => (await cache.readThrough(m.mount, k, { ttlMs: 60_000 })).file;
    const old = await read('old');
    const kept = await read('kept');
    expect(await cache.pin('lake', 'kept')).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    const cutoff = Date.now();
    const fresh = await read('fresh');
    expect(await cache.evictUnusedSince(cutoff)).toBe(1);
    expect([existsSync(old), existsSync(kept), existsSync(fresh)]).toEqual([false, true, true]);
    expect(await cache.stats()).toMatchObject({ entries: 2, pinned: 1 });
  });

  it('hands out an object larger than maxBytes, and lets the next download evict it', async () => {
    const { m, dir } = await setup();
    const big = randomBytes(5000);
    await m.mount.write('big', big);
    await m.mount.write('small', 'x');
    const cache = await openCache(dir, 2000);
    const got = await cache.readThrough(m.mount, 'big');
    expect(sha(readFileSync(got.file))).toBe(sha(big));
    await cache.readThrough(m.mount, 'small');
    expect(existsSync(got.file)).toBe(false);
    expect(await cache.stats()).toMatchObject({ entries: 1, bytes: 1 });
  });

  it('shares one download among 50 concurrent reads of a cold object, and one validation when warm', async () => {
    const { m, dir } = await setup();
    const bytes = randomBytes(3 * 1024 * 1024);
    await m.mount.write('shared.bin', bytes);
    const cache = await openCache(dir);
    const results = await Promise.all(Array.from({ length: 50 }, () => cache.readThrough(m.mount, 'shared.bin')));
    expect(m.counts.reads).toBe(1);
    expect(results.filter((r) => r.fetched)).toHaveLength(1);
    expect(new Set(results.map((r) => r.file)).size).toBe(1);
    expect(sha(readFileSync(results[0]?.file as string))).toBe(sha(bytes));
    expect(await cache.stats()).toMatchObject({ entries: 1, fetches: 1, misses: 50, hits: 0 });
    // Warm, they share one validation too.
    const warm = await Promise.all(Array.from({ length: 50 }, () => cache.readThrough(m.mount, 'shared.bin')));
    expect(warm.every((r) => !r.fetched && r.file === results[0]?.file)).toBe(true);
    expect(m.counts).toEqual({ reads: 1, stats: 1 });
    expect(await cache.stats()).toMatchObject({ fetches: 1, misses: 50, hits: 50 });
  });

  it('goes on with a shared download when one of its callers aborts', async () => {
    const { m, dir } = await setup();
    await m.mount.write('slow.txt', 'patience');
    const cache = await openCache(dir);
    let go = () => undefined as void;
    m.hold = new Promise<void>((resolve) => (go = resolve));
    const impatient = new AbortController();
    const first = cache.readThrough(m.mount, 'slow.txt', { signal: impatient.signal });
    const second = cache.readThrough(m.mount, 'slow.txt');
    impatient.abort();
    go();
    expect(await rejection(first)).toMatchObject({ name: 'AbortError' });
    const got = await second;
    expect(readFileSync(got.file, 'utf8')).toBe('patience');
    expect(m.counts.reads).toBe(1);
  });

  it('leaves no entry, download or lock behind when every caller aborts', async () => {
    const { m, dir } = await setup();
    // A mount whose body sends a little, then stalls.
    let sent = false;
    const stalling: DataMount = {
      ...m.mount,
      read: async (key: string): Promise<{ info: ObjectInfo; body: Readable }> => ({
        info: { key, size: 1_000_000, etag: 'e1' },
        body: new Readable({
          read() {
            if (!sent) this.push(randomBytes(1000));
            sent = true;
          },
        }),
      }),
    };
    const cache = await openCache(dir);
    const controller = new AbortController();
    const reading = cache.readThrough(stalling, 'stall.bin', { signal: controller.signal });
    for (let i = 0; i < 200 && readdirSync(join(dir, 'tmp')).length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(readdirSync(join(dir, 'tmp'))).toHaveLength(1);
    controller.abort();
    await rejection(reading);
    // The download's cleanup runs after the caller is told.
    const leftovers = () => [...readdirSync(join(dir, 'tmp')), ...readdirSync(join(dir, 'locks'))];
    for (let i = 0; i < 200 && leftovers().length > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
    expect((await cache.stats()).entries).toBe(0);
  });

  it('makes a second process wait for the download of the first', async () => {
    const { bucket, m, dir } = await setup();
    const bytes = randomBytes(24 * 1024 * 1024);
    await m.mount.write('big/object.bin', bytes);
    const dist = join(ROOT, 'dist');
    if (!existsSync(join(dist, 'data', 'cache', 'disk-cache.js'))) throw new Error('build first: dist/ has no cache');
    const go = join(dir, 'go');
    const script = join(ROOT, 'test', 'data', 'cache-reader.mjs');
    const before = requestsFor(s3, 'GET', bucket, 'big/object.bin').length;
    const children = [0, 1].map(() => {
      const child = spawn(process.execPath, [script, dist, dir, s3.endpoint, bucket, 'big/object.bin', go], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      cleanups.push(() => {
        if (child.exitCode === null) child.kill();
      });
      const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
      return { child, lines };
    });
    for (const c of children) expect((await c.lines.next()).value).toBe('ready');
    writeFileSync(go, '');
    const outputs: { fetched: boolean; sha256: string }[] = [];
    for (const c of children) outputs.push(JSON.parse((await c.lines.next()).value as string));
    expect(outputs.map((o) => o.sha256)).toEqual([sha(bytes), sha(bytes)]);
    expect(outputs.filter((o) => o.fetched)).toHaveLength(1);
    expect(requestsFor(s3, 'GET', bucket, 'big/object.bin').length - before).toBe(1);
  });

  it('keeps its entries and their LRU order across a restart', async () => {
    const { m, dir } = await setup();
    for (const k of ['a', 'b', 'c', 'd']) await m.mount.write(k, randomBytes(1000));
    const first = await DiskCache.open(dir, { maxBytes: 3000 });
    for (const k of ['a', 'b', 'c', 'a']) await first.readThrough(m.mount, k, { ttlMs: 60_000 });
    await first.close();

    const again = await openCache(dir, 3000);
    expect(await again.stats()).toMatchObject({ entries: 3, bytes: 3000 });
    expect((await again.readThrough(m.mount, 'c', { ttlMs: 60_000 })).fetched).toBe(false);
    await again.readThrough(m.mount, 'd');
    // b was the least recently used before the restart.
    expect((await again.readThrough(m.mount, 'a', { ttlMs: 60_000 })).fetched).toBe(false);
    expect((await again.readThrough(m.mount, 'b', { ttlMs: 60_000 })).fetched).toBe(true);
    expect(m.counts.reads).toBe(5);
  });

  it.each([
    ['truncated', (path: string) => truncateSync(path, Math.floor(readFileSync(path).length / 2))],
    ['garbage', (path: string) => writeFileSync(path, '\u0000\u0001not json at all')],
    ['of another shape', (path: string) => writeFileSync(path, '{"version":1,"entries":[{"id":"x"}]}')],
    ['missing', (path: string) => rmSync(path)],
  ])('rebuilds an index that is %s from the files present', async (_what, damage) => {
    const { m, dir } = await setup();
    await m.mount.write('x/one.txt', 'one');
    await m.mount.write('x/two.txt', 'two');
    const first = await DiskCache.open(dir, { maxBytes: 2 ** 20 });
    await first.readThrough(m.mount, 'x/one.txt');
    await first.readThrough(m.mount, 'x/two.txt');
    expect(await first.pin('lake', 'x/two.txt')).toBe(true);
    await first.close();
    damage(join(dir, 'index.json'));

    const again = await openCache(dir, 2 ** 20);
    expect(await again.stats()).toMatchObject({ entries: 2, bytes: 6, pinned: 1 });
    const one = await again.readThrough(m.mount, 'x/one.txt');
    expect(one.fetched).toBe(false);
    expect(readFileSync(one.file, 'utf8')).toBe('one');
    expect(m.counts.reads).toBe(2);
    expect(await again.evict('lake', 'x')).toBe(2);
    expect(await again.stats()).toMatchObject({ entries: 0, bytes: 0 });
  });

  it('evicts one key, a folder, or a whole mount, and clears everything', async () => {
    const { m, dir } = await setup();
    for (const k of ['f/a', 'f/b', 'f/sub/c', 'fa', 'g']) await m.mount.write(k, 'x');
    const cache = await openCache(dir);
    for (const k of ['f/a', 'f/b', 'f/sub/c', 'fa', 'g']) await cache.readThrough(m.mount, k);
    expect(await cache.evict('lake', 'f/a')).toBe(1);
    expect(await cache.evict('lake', 'f')).toBe(2);
    expect(await cache.evict('other', '')).toBe(0);
    expect((await cache.stats()).entries).toBe(2);
    expect(await cache.clear()).toBe(2);
    expect(await cache.stats()).toMatchObject({ entries: 0, bytes: 0, evictions: 5 });
  });
});
