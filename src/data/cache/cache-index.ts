/**
 * The cache's index: every entry, in least-recently-used order, with the total of their
 * bytes. It lives in memory and is saved to `index.json` (atomically, a while after it
 * changes and on close) so that a restart keeps the LRU order.
 *
 * `index.json` is a summary, not the truth: the truth is the files under objects/ (bytes
 * plus record, see cache-files.ts). Loading reconciles the two: entries whose files are
 * gone are dropped, files the index does not know (another process wrote them, or the
 * index is missing, truncated or garbage) are adopted from their records, and files
 * without a record, or whose size differs from it, are removed once they are old enough
 * not to be a write under way.
 */
import { readFile } from 'node:fs/promises';
import type { CacheEntry, CacheLayout } from './cache-files.js';
import { isRecord, readRecord, removeFiles, scanObjects, writeAtomic } from './cache-files.js';

const INDEX_VERSION = 1;
/** Files without a matching record are left alone this long (ms): a write may be under way. */
const ORPHAN_AGE_MS = 60_000;

export class CacheIndex {
  /** By id, least recently used first (a Map keeps insertion order; a use re-inserts). */
  private readonly entries = new Map<string, CacheEntry>();
  private total = 0;

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.total;
  }

  get(id: string): CacheEntry | undefined {
    return this.entries.get(id);
  }

  /** Adds or replaces an entry, as the most recently used. */
  put(entry: CacheEntry): void {
    this.delete(entry.id);
    this.entries.set(entry.id, entry);
    this.total += entry.size;
  }

  /** Marks an entry as just used. */
  touch(entry: CacheEntry, now: number): void {
    entry.usedAt = now;
    this.entries.delete(entry.id);
    this.entries.set(entry.id, entry);
  }

  delete(id: string): CacheEntry | undefined {
    const old = this.entries.get(id);
    if (old) {
      this.entries.delete(id);
      this.total -= old.size;
    }
    return old;
  }

  /** Entries, least recently used first. */
  values(): IterableIterator<CacheEntry> {
    return this.entries.values();
  }

  /** Writes index.json atomically. */
  async save(layout: CacheLayout): Promise<void> {
    const text = JSON.stringify({ version: INDEX_VERSION, entries: [...this.entries.values()] });
    await writeAtomic(layout.index, layout.temp('index'), text);
  }

  /**
   * Reconciles the index with the files under objects/ (see the header): `saved` seeds
   * it (the LRU order of index.json), then every id found on disk is kept or adopted.
   * Returns whether index.json was missing or damaged.
   */
  async load(layout: CacheLayout, now: number, fromFile: boolean): Promise<boolean> {
    const saved = fromFile ? await readIndexFile(layout) : null;
    const found = await scanObjects(layout);
    const known = saved ?? [...this.entries.values()];
    this.entries.clear();
    this.total = 0;
    const byId = new Map(known.map((e) => [e.id, e]));
    // Adopted entries have no LRU time of their own: they count as used when last validated.
    const adopted: CacheEntry[] = [];
    for (const [id, files] of found) {
      const consistent = files.record && files.size !== undefined;
      const entry = byId.get(id);
      if (consistent && entry && entry.size === files.size) continue;
      const record = consistent ? await readRecord(layout, id) : null;
      if (record && record.size === files.size) {
        adopted.push({ ...record, usedAt: entry?.usedAt ?? record.validatedAt });
        byId.delete(id);
      } else {
        byId.delete(id);
        if (now - files.changedAt > ORPHAN_AGE_MS) await removeFiles(layout, id);
      }
    }
    const kept = [...byId.values()].filter((e) => found.has(e.id));
    for (const e of [...kept, ...adopted].sort((a, b) => a.usedAt - b.usedAt)) this.put(e);
    return fromFile && saved === null;
  }
}

/** The entries of index.json, or null when it is missing or damaged. */
async function readIndexFile(layout: CacheLayout): Promise<CacheEntry[] | null> {
  let text: string;
  try {
    text = await readFile(layout.index, 'utf8');
  } catch {
    return null;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const v = value as { version?: unknown; entries?: unknown } | null;
  if (typeof v !== 'object' || v === null || v.version !== INDEX_VERSION || !Array.isArray(v.entries)) return null;
  const entries: CacheEntry[] = [];
  for (const e of v.entries as unknown[]) {
    if (!isRecord(e) || typeof (e as Partial<CacheEntry>).usedAt !== 'number') return null;
    entries.push(e as CacheEntry);
  }
  return entries;
}
