/**
 * The read-through disk cache of remote mounts: `readThrough` gives a local file holding a
 * remote object's bytes, downloading them only when the cache has no valid copy.
 *
 * Invariants
 * - An entry is one object of one mount (mount name + key); its file holds the bytes as
 *   the mount served them. A file is downloaded under tmp/, flushed to disk and renamed into
 *   place, so a reader never sees part of one.
 * - Validation: within `ttlMs` of its last validation an entry is trusted; after that the
 *   mount is asked (`stat`) and the ETag compared (size and modification time when the
 *   mount has no ETag). A changed object is downloaded again; an object gone from the mount
 *   drops the entry and throws DATA_NOT_FOUND.
 * - Single flight: concurrent calls for one object in one process share one validation and
 *   one download (aborted only when every caller has aborted); across processes a lock file
 *   per object makes a second process wait for the first's download (cache-lock.ts).
 * - Size: after each download, least recently used entries that are not pinned are removed
 *   until the cache holds at most `maxBytes`. The entry just downloaded is never removed by
 *   its own download, so the caller always gets its file: an object larger than `maxBytes`
 *   stays until the next download evicts it (it is then the least recently used).
 * - A file handed out stays valid until the entry is evicted or downloaded again (a new
 *   file is renamed over it; a file already open keeps the old bytes). Pin an entry to
 *   keep it however full the cache gets.
 * - Several processes may share one folder: each adopts the entries others wrote when it
 *   opens, when it misses on one, and before `stats`, `evict` and `clear`; each keeps the
 *   size limit over the entries it knows. The counters of `stats` are this process's since
 *   `open`.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import { BatonError } from '../../core/errors.js';
import type { DataMount, ObjectInfo } from '../mount.js';
import type { CacheEntry } from './cache-files.js';
import { CacheLayout, dataSize, entryId, readRecord, removeFiles, sweepTemp, writeRecord } from './cache-files.js';
import { downloadToFile } from './cache-download.js';
import { CacheIndex } from './cache-index.js';
import { acquireLock } from './cache-lock.js';

export interface DiskCacheOptions {
  /** Most bytes of objects the cache keeps (see the header for what may exceed it). */
  readonly maxBytes: number;
  /** A lock file untouched this long (ms) belongs to a dead process. Default 30 s. */
  readonly lockStaleMs?: number;
  /** How long (ms) to wait for another process's download before downloading too. Default 10 min. */
  readonly lockWaitMs?: number;
}

export interface ReadThroughOptions {
  /** Trust an entry validated less than this long ago (ms) without asking the mount. Default 0. */
  readonly ttlMs?: number;
  readonly signal?: AbortSignal;
}

/** What `readThrough` returns. */
export interface CachedObject {
  /** Absolute path of the local file holding the object's bytes. */
  readonly file: string;
  /** The object's info as last seen on the mount. */
  readonly info: ObjectInfo;
  /** Whether this call downloaded the bytes (false when it used a copy, or waited for another call's download). */
  readonly fetched: boolean;
}

export interface CacheStats {
  readonly entries: number;
  /** Bytes of the cached files. */
  readonly bytes: number;
  readonly maxBytes: number;
  /** Entries pinned. */
  readonly pinned: number;
  /** Calls answered by a valid copy without waiting for a download. */
  readonly hits: number;
  /** Calls that found no valid copy (they downloaded it, or waited for a download). */
  readonly misses: number;
  /** Downloads made. */
  readonly fetches: number;
  /** Entries removed: to make room, or by `evict` and `clear`. */
  readonly evictions: number;
}

const DEFAULT_LOCK_STALE_MS = 30_000;
const DEFAULT_LOCK_WAIT_MS = 10 * 60_000;
const LOCK_POLL_MS = 20;
/** How long after a change the index is saved (ms). */
const SAVE_DELAY_MS = 1000;
/** Files under tmp/ older than this (ms) are downloads of dead processes. */
const TEMP_AGE_MS = 60 * 60_000;

/** One validation or download shared by the calls for one object. */
interface Flight {
  readonly done: Promise<CachedObject>;
  readonly controller: AbortController;
  callers: number;
}

export class DiskCache {
  private readonly flights = new Map<string, Flight>();
  private counters = { hits: 0, misses: 0, fetches: 0, evictions: 0 };
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly layout: CacheLayout,
    private readonly index: CacheIndex,
    private readonly options: Required<DiskCacheOptions>,
  ) {}

  /**
   * Opens (creating it when needed) the cache in folder `dir`, loading its index, or
   * rebuilding it from the files present when it is missing or damaged. Example:
   * `const cache = await DiskCache.open('.baton/cache', { maxBytes: 10 * 2 ** 30 })`.
   */
  static async open(dir: string, options: DiskCacheOptions): Promise<DiskCache> {
    if (!(Number.isSafeInteger(options.maxBytes) && options.maxBytes >= 0)) {
      throw new BatonError('CONFIG_INVALID', `data.cache.max_bytes: ${options.maxBytes} is not a number of bytes`, {
        hint: 'Set data.cache.max_bytes to a whole number of bytes, 0 or more.',
      });
    }
    const layout = new CacheLayout(dir);
    const index = new CacheIndex();
    try {
      await layout.create();
      const now = Date.now();
      await sweepTemp(layout, now, TEMP_AGE_MS);
      await index.load(layout, now, true);
    } catch (error) {
      throw cacheError(`opening the cache in ${dir}`, error);
    }
    const cache = new DiskCache(layout, index, {
      lockStaleMs: DEFAULT_LOCK_STALE_MS,
      lockWaitMs: DEFAULT_LOCK_WAIT_MS,
      ...options,
    });
    await cache.evictOver(null);
    return cache;
  }

  /**
   * A local file with the bytes of `key` of `mount`, downloaded when the cache has no valid
   * copy (see the header). Throws DATA_NOT_FOUND when the object does not exist (a cached
   * copy of it is then dropped), DATA_IO when the mount or the disk fails.
   */
  async readThrough(mount: DataMount, key: string, options: ReadThroughOptions = {}): Promise<CachedObject> {
    this.assertOpen();
    const id = entryId(mount.name, key);
    let flight = this.flights.get(id);
    const joined = flight !== undefined;
    if (!flight) {
      const controller = new AbortController();
      const started = Date.now();
      const done = this.resolve(mount, key, id, options.ttlMs ?? 0, started, controller.signal);
      const created: Flight = { done, controller, callers: 0 };
      flight = created;
      this.flights.set(id, created);
      done.then(
        () => this.flights.delete(id),
        () => this.flights.delete(id),
      );
    }
    const result = await this.follow(flight, options.signal);
    if (!joined) return result;
    if (result.fetched) this.counters.misses++;
    else this.counters.hits++;
    return { ...result, fetched: false };
  }

  /** Keeps an entry from eviction; false when the object is not cached. */
  async pin(mount: string, key: string): Promise<boolean> {
    return this.setPinned(mount, key, true);
  }

  /** Lets an entry be evicted again; false when the object is not cached. */
  async unpin(mount: string, key: string): Promise<boolean> {
    return this.setPinned(mount, key, false);
  }

  /**
   * Removes the cached copies of `mount`: of one key, of every key under a folder `key`,
   * or all of them when `key` is absent or `''`. Pinned entries are removed too. Returns
   * how many entries were removed.
   */
  async evict(mount: string, key?: string): Promise<number> {
    this.assertOpen();
    await this.refresh();
    const folder = key === undefined || key === '' ? null : key;
    const chosen = [...this.index.values()].filter(
      (e) => e.mount === mount && (folder === null || e.key === folder || e.key.startsWith(`${folder}/`)),
    );
    for (const e of chosen) await this.remove(e);
    this.counters.evictions += chosen.length;
    return chosen.length;
  }

  /**
   * Removes the unpinned entries no read has used since `before` (ms since the epoch, this
   * machine's clock): what `baton db prune` does to the cache. Returns how many went.
   */
  async evictUnusedSince(before: number): Promise<number> {
    this.assertOpen();
    await this.refresh();
    let removed = 0;
    for (const e of [...this.index.values()]) {
      if (e.pinned || e.usedAt >= before || this.flights.has(e.id)) continue;
      // Another process may have pinned it.
      if ((await readRecord(this.layout, e.id))?.pinned) continue;
      await this.remove(e);
      removed++;
    }
    this.counters.evictions += removed;
    this.scheduleSave();
    return removed;
  }

  /** Removes every entry, pinned ones included; returns how many. */
  async clear(): Promise<number> {
    this.assertOpen();
    await this.refresh();
    const all = [...this.index.values()];
    for (const e of all) await this.remove(e);
    this.counters.evictions += all.length;
    return all.length;
  }

  async stats(): Promise<CacheStats> {
    this.assertOpen();
    await this.refresh();
    let pinned = 0;
    for (const e of this.index.values()) if (e.pinned) pinned++;
    return {
      entries: this.index.size,
      bytes: this.index.bytes,
      maxBytes: this.options.maxBytes,
      pinned,
      ...this.counters,
    };
  }

  /** Waits for the downloads under way, then saves the index. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled([...this.flights.values()].map((f) => f.done));
    this.closed = true;
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.save();
  }

  /** Awaits a flight on behalf of one caller, whose abort leaves it to the others. */
  private follow(flight: Flight, signal: AbortSignal | undefined): Promise<CachedObject> {
    flight.callers++;
    if (!signal) return flight.done;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        if (--flight.callers === 0) flight.controller.abort(signal.reason);
        reject(signal.reason);
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      flight.done.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }

  private async resolve(
    mount: DataMount,
    key: string,
    id: string,
    ttlMs: number,
    started: number,
    signal: AbortSignal,
  ): Promise<CachedObject> {
    const entry = await this.current(id);
    if (entry) {
      if (Date.now() - entry.validatedAt <= ttlMs) return this.hit(entry);
      const checkedAt = Date.now();
      const info = await mount.stat(key, { signal });
      if (info === null) {
        await this.remove(entry);
        this.scheduleSave();
        throw new BatonError(
          'DATA_NOT_FOUND',
          `mount ${mount.name}: no object ${JSON.stringify(key)} (it was cached, and is gone from the mount)`,
        );
      }
      if (sameVersion(entry, info)) {
        entry.validatedAt = checkedAt;
        return this.hit(entry);
      }
    }
    this.counters.misses++;
    return this.fetch(mount, key, id, started, signal);
  }

  /** Downloads the object, unless another process did while this one waited for its lock. */
  private async fetch(
    mount: DataMount,
    key: string,
    id: string,
    started: number,
    signal: AbortSignal,
  ): Promise<CachedObject> {
    const lock = await acquireLock(this.layout.lock(id), {
      staleMs: this.options.lockStaleMs,
      pollMs: LOCK_POLL_MS,
      maxWaitMs: this.options.lockWaitMs,
      signal,
    }).catch((error: unknown) => {
      throw signal.aborted ? error : cacheError(`locking ${mount.name}/${key}`, error);
    });
    try {
      if (lock.waited) {
        const other = await this.adopt(id);
        if (other && other.fetchedAt >= started) return this.result(other, false);
      }
      const entry = await this.download(mount, key, id, signal);
      this.counters.fetches++;
      this.index.put(entry);
      this.scheduleSave();
      await this.evictOver(id);
      return this.result(entry, true);
    } finally {
      await lock.release();
    }
  }

  /** Streams the object to a file under tmp/, flushes it, and renames it into place with its record. */
  private async download(mount: DataMount, key: string, id: string, signal: AbortSignal): Promise<CacheEntry> {
    const validatedAt = Date.now();
    const { info, body } = await mount.read(key, { signal });
    const temp = this.layout.temp(id);
    try {
      let size: number;
      try {
        size = await downloadToFile(body, temp, signal);
      } catch (error) {
        if (signal.aborted || error instanceof BatonError) throw error;
        throw new BatonError(
          'DATA_IO',
          `mount ${mount.name}: reading ${JSON.stringify(key)} into the cache failed: ${(error as Error).message}`,
          { cause: error, details: { mount: mount.name, key } },
        );
      }
      if (info.size > 0 && size !== info.size) {
        throw new BatonError(
          'DATA_IO',
          `mount ${mount.name}: ${JSON.stringify(key)} came with ${size} bytes where the mount announced ${info.size}`,
          { details: { mount: mount.name, key } },
        );
      }
      const entry: CacheEntry = {
        id,
        mount: mount.name,
        key,
        size,
        ...(info.etag !== undefined ? { etag: info.etag } : {}),
        ...(info.modifiedAt !== undefined ? { modifiedAt: info.modifiedAt } : {}),
        ...(info.contentType !== undefined ? { contentType: info.contentType } : {}),
        fetchedAt: Date.now(),
        validatedAt,
        usedAt: Date.now(),
        pinned: this.index.get(id)?.pinned ?? false,
      };
      await mkdir(this.layout.shard(id), { recursive: true });
      // Bytes first, then the record: see cache-files.ts.
      await rename(temp, this.layout.data(id));
      await writeRecord(this.layout, entry);
      return entry;
    } catch (error) {
      body.destroy();
      await rm(temp, { force: true });
      if (error instanceof BatonError || signal.aborted) throw error;
      throw cacheError(`writing ${mount.name}/${key} to the cache`, error);
    }
  }

  /** The entry for `id` with its file present, adopting what another process wrote. */
  private async current(id: string): Promise<CacheEntry | undefined> {
    const known = this.index.get(id);
    if (known && (await dataSize(this.layout, id)) === known.size) return known;
    return this.adopt(id);
  }

  /** The entry for `id` as its record on disk says (another process may have written it), or undefined. */
  private async adopt(id: string): Promise<CacheEntry | undefined> {
    const known = this.index.get(id);
    const record = await readRecord(this.layout, id);
    if (record && (await dataSize(this.layout, id)) === record.size) {
      const entry: CacheEntry = { ...record, usedAt: known?.usedAt ?? Date.now() };
      this.index.put(entry);
      this.scheduleSave();
      await this.evictOver(id);
      return entry;
    }
    if (known) {
      this.index.delete(id);
      this.scheduleSave();
    }
    return undefined;
  }

  private hit(entry: CacheEntry): CachedObject {
    this.counters.hits++;
    return this.result(entry, false);
  }

  private result(entry: CacheEntry, fetched: boolean): CachedObject {
    this.index.touch(entry, Date.now());
    this.scheduleSave();
    return { file: this.layout.data(entry.id), info: infoOf(entry), fetched };
  }

  private async setPinned(mount: string, key: string, pinned: boolean): Promise<boolean> {
    this.assertOpen();
    const entry = await this.current(entryId(mount, key));
    if (!entry) return false;
    entry.pinned = pinned;
    try {
      await writeRecord(this.layout, entry);
    } catch (error) {
      throw cacheError(`${pinned ? 'pinning' : 'unpinning'} ${mount}/${key}`, error);
    }
    this.scheduleSave();
    return true;
  }

  /** Removes least recently used unpinned entries, other than `keep`, while over maxBytes. */
  private async evictOver(keep: string | null): Promise<void> {
    if (this.index.bytes <= this.options.maxBytes) return;
    for (const e of [...this.index.values()]) {
      if (this.index.bytes <= this.options.maxBytes) break;
      // Entries a call of this process is resolving are about to be handed out.
      if (e.pinned || e.id === keep || this.flights.has(e.id)) continue;
      // Another process may have pinned it.
      const record = await readRecord(this.layout, e.id);
      if (record?.pinned) {
        e.pinned = true;
        continue;
      }
      await this.remove(e);
      this.counters.evictions++;
    }
    this.scheduleSave();
  }

  private async remove(entry: CacheEntry): Promise<void> {
    this.index.delete(entry.id);
    try {
      await removeFiles(this.layout, entry.id);
    } catch (error) {
      throw cacheError(`removing ${entry.mount}/${entry.key} from the cache`, error);
    }
  }

  /** Adopts the entries other processes wrote and forgets those they removed. */
  private async refresh(): Promise<void> {
    try {
      await this.index.load(this.layout, Date.now(), false);
    } catch (error) {
      throw cacheError('reading the cache folder', error);
    }
  }

  private scheduleSave(): void {
    if (this.saveTimer !== undefined || this.closed) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.save().catch(() => undefined);
    }, SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  /** Saves the index, one save at a time. A failed save only costs the LRU order: the files are the truth. */
  private save(): Promise<void> {
    this.saving = this.saving.then(() => this.index.save(this.layout)).catch(() => undefined);
    return this.saving;
  }

  private assertOpen(): void {
    if (this.closed) throw new BatonError('INTERNAL', 'the data cache is closed');
  }
}

function sameVersion(entry: CacheEntry, info: ObjectInfo): boolean {
  if (entry.etag !== undefined || info.etag !== undefined) return entry.etag === info.etag;
  return entry.modifiedAt !== undefined && entry.modifiedAt === info.modifiedAt && entry.size === info.size;
}

function infoOf(entry: CacheEntry): ObjectInfo {
  return {
    key: entry.key,
    size: entry.size,
    ...(entry.etag !== undefined ? { etag: entry.etag } : {}),
    ...(entry.modifiedAt !== undefined ? { modifiedAt: entry.modifiedAt } : {}),
    ...(entry.contentType !== undefined ? { contentType: entry.contentType } : {}),
  };
}

function cacheError(what: string, error: unknown): BatonError {
  if (error instanceof BatonError) return error;
  const e = error as NodeJS.ErrnoException;
  return new BatonError('DATA_IO', `data cache: ${what} failed: ${e?.message ?? String(error)}`, {
    hint: 'Check the cache folder (data.cache.dir): its disk may be full or its permissions wrong. The cache may be emptied by removing its folder while no Baton process runs.',
    cause: error,
    ...(e?.code ? { details: { code: e.code } } : {}),
  });
}
