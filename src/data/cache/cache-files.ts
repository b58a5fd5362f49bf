/**
 * The cache's folder on disk, and the few file operations it is made of.
 *
 * Layout under the cache's folder:
 * - `objects/<aa>/<id>`: an object's bytes; `<id>` is the SHA-256 of `<mount>\n<key>` (a mount
 *   name and a key never hold a newline) and `<aa>` its first two characters, so that no
 *   folder grows past a few thousand files.
 * - `objects/<aa>/<id>.json`: the entry's record (mount, key, size, ETag, ...), written after
 *   the bytes: the bytes with their record are the truth, which the index is rebuilt from.
 * - `index.json`: every entry with when it was last used (the LRU order); see cache-index.ts.
 * - `tmp/`: downloads under way; `locks/<id>.lock`: which process is downloading an object.
 *
 * Every file a reader may open is written aside, flushed to disk, then renamed into place.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** The record of one cached object. */
export interface CacheEntry {
  /** SHA-256 of `<mount>\n<key>`, hex: the name of its files. */
  readonly id: string;
  readonly mount: string;
  readonly key: string;
  /** Bytes of the cached file. */
  readonly size: number;
  readonly etag?: string;
  readonly modifiedAt?: number;
  readonly contentType?: string;
  /** When the bytes were written to the cache (ms since the epoch). */
  readonly fetchedAt: number;
  /** When the copy was last known to match the mount (ms): the start of its download, or of its last check. */
  validatedAt: number;
  /** When a read last used it (ms): the LRU order. */
  usedAt: number;
  /** A pinned entry is never evicted to make room. */
  pinned: boolean;
}

/** The id of an entry: the name of its files. */
export function entryId(mount: string, key: string): string {
  return createHash('sha256').update(`${mount}\n${key}`).digest('hex');
}

/** Paths of the cache's folder. */
export class CacheLayout {
  readonly objects: string;
  readonly tmp: string;
  readonly locks: string;
  readonly index: string;

  constructor(readonly dir: string) {
    this.objects = join(dir, 'objects');
    this.tmp = join(dir, 'tmp');
    this.locks = join(dir, 'locks');
    this.index = join(dir, 'index.json');
  }

  async create(): Promise<void> {
    for (const d of [this.objects, this.tmp, this.locks]) await mkdir(d, { recursive: true });
  }

  shard(id: string): string {
    return join(this.objects, id.slice(0, 2));
  }

  data(id: string): string {
    return join(this.shard(id), id);
  }

  record(id: string): string {
    return join(this.shard(id), `${id}.json`);
  }

  lock(id: string): string {
    return join(this.locks, `${id}.lock`);
  }

  /** A fresh name under tmp/ for a file about to be written. */
  temp(id: string): string {
    return join(this.tmp, `${id.slice(0, 16)}.${process.pid}.${randomBytes(6).toString('hex')}`);
  }
}

/** Writes `text` to `path` atomically: aside in `temp`, flushed, then renamed over it. */
export async function writeAtomic(path: string, temp: string, text: string): Promise<void> {
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** What an entry's record file holds (its LRU time lives in the index only). */
export type EntryRecord = Omit<CacheEntry, 'usedAt'>;

export async function writeRecord(layout: CacheLayout, entry: CacheEntry): Promise<void> {
  const { usedAt: _usedAt, ...record } = entry;
  await writeAtomic(layout.record(entry.id), layout.temp(entry.id), JSON.stringify(record));
}

/** An entry's record as found on disk, or null when it is missing or not a record. */
export async function readRecord(layout: CacheLayout, id: string): Promise<EntryRecord | null> {
  let text: string;
  try {
    const handle = await open(layout.record(id), 'r');
    try {
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) && value.id === id ? value : null;
  } catch {
    return null;
  }
}

/** Whether a parsed value has the shape of an entry's record. */
export function isRecord(value: unknown): value is EntryRecord {
  const r = value as Partial<EntryRecord> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.id === 'string' &&
    /^[0-9a-f]{64}$/.test(r.id) &&
    typeof r.mount === 'string' &&
    typeof r.key === 'string' &&
    Number.isSafeInteger(r.size) &&
    (r.size as number) >= 0 &&
    (r.etag === undefined || typeof r.etag === 'string') &&
    (r.modifiedAt === undefined || typeof r.modifiedAt === 'number') &&
    (r.contentType === undefined || typeof r.contentType === 'string') &&
    typeof r.fetchedAt === 'number' &&
    typeof r.validatedAt === 'number' &&
    typeof r.pinned === 'boolean'
  );
}

/** Size of an entry's bytes on disk, or null when the file is not there. */
export async function dataSize(layout: CacheLayout, id: string): Promise<number | null> {
  try {
    return (await stat(layout.data(id))).size;
  } catch {
    return null;
  }
}

/** Removes an entry's bytes and record. */
export async function removeFiles(layout: CacheLayout, id: string): Promise<void> {
  // The record first: bytes without a record are an orphan that the next scan removes.
  await rm(layout.record(id), { force: true });
  await rm(layout.data(id), { force: true });
}

/** What a scan of objects/ found for one id. */
export interface ScannedFiles {
  /** Size of the bytes, when there are some. */
  size?: number;
  /** Whether there is a record. */
  record: boolean;
  /** Latest change of either file (ms). */
  changedAt: number;
}

/** Every id with files under objects/. */
export async function scanObjects(layout: CacheLayout): Promise<Map<string, ScannedFiles>> {
  const found = new Map<string, ScannedFiles>();
  let shards: string[];
  try {
    shards = await readdir(layout.objects);
  } catch {
    return found;
  }
  for (const shard of shards) {
    let names: string[];
    try {
      names = await readdir(join(layout.objects, shard));
    } catch {
      continue;
    }
    for (const name of names) {
      const isRecordFile = name.endsWith('.json');
      const id = isRecordFile ? name.slice(0, -5) : name;
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      let s;
      try {
        s = await stat(join(layout.objects, shard, name));
      } catch {
        continue;
      }
      const f = found.get(id) ?? { record: false, changedAt: 0 };
      if (isRecordFile) f.record = true;
      else f.size = s.size;
      f.changedAt = Math.max(f.changedAt, s.mtimeMs);
      found.set(id, f);
    }
  }
  return found;
}

/** Removes files under tmp/ older than `olderThanMs`: downloads of processes that died. */
export async function sweepTemp(layout: CacheLayout, now: number, olderThanMs: number): Promise<void> {
  let names: string[];
  try {
    names = await readdir(layout.tmp);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(layout.tmp, name);
    try {
      if (now - (await stat(path)).mtimeMs > olderThanMs) await rm(path, { force: true });
    } catch {
      // Taken by its writer meanwhile.
    }
  }
}
