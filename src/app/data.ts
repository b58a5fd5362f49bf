/**
 * The data use cases: the namespace of a project (its mounts, the cache of remote reads,
 * and the metadata rows every access leaves in the store), and what `baton data` and the
 * client do with it. The runtime builds one `ProjectData` and hands its namespace to the
 * engines and workers it makes, for `ctx.data`.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BatonError } from '../core/errors.js';
import { renderValue } from '../define/expression.js';
import { formatDataPath, isDataPath } from '../core/data-path.js';
import { DiskCache, type CacheStats } from '../data/cache/disk-cache.js';
import type { ObjectInfo, WriteResult } from '../data/mount.js';
import { DataNamespace, storeRecorder, type MountSummary, type ReadCache } from '../data/namespace.js';
import type { DataObjectRecord, Store } from '../store/store.js';
import type { BatonConfig } from './config.js';

/** Runs whose prefetch a process remembers having started. */
const PREFETCHED_RUNS_KEPT = 10_000;

/** The data namespace of a project, with its cache and metadata. */
export class ProjectData {
  readonly namespace: DataNamespace;
  private cacheOpening: Promise<DiskCache> | undefined;
  private readonly prefetched = new Set<string>();

  constructor(
    private readonly config: BatonConfig,
    private readonly store: Store,
    env: Readonly<Record<string, string | undefined>>,
  ) {
    const cache: ReadCache = {
      readThrough: async (mount, key, options) => (await this.cache()).readThrough(mount, key, options),
    };
    this.namespace = new DataNamespace({
      mounts: config.data.mounts,
      context: { root: config.projectDir, env },
      cache,
      record: storeRecorder(store),
    });
  }

  /** The cache of remote reads, opened on first use (its index is read from disk then). */
  cache(): Promise<DiskCache> {
    this.cacheOpening ??= DiskCache.open(this.config.data.cacheDir, { maxBytes: this.config.data.cacheMaxBytes });
    return this.cacheOpening;
  }

  /**
   * Starts fetching a flow's `prefetch` paths into the cache, once per run in this process;
   * paths of local mounts need no fetching. A path that fails is left to the task that
   * reads it, which reports it with its code.
   */
  prefetch(runId: string, paths: readonly string[], params: Readonly<Record<string, unknown>>): void {
    if (this.prefetched.has(runId)) return;
    this.prefetched.add(runId);
    // Bounded memory for a long-lived worker: the oldest runs are forgotten first.
    if (this.prefetched.size > PREFETCHED_RUNS_KEPT) {
      this.prefetched.delete(this.prefetched.values().next().value as string);
    }
    for (const template of paths) {
      void (async () => {
        const path = String(renderValue(template, { params }));
        const parsed = this.namespace.resolve(path, 'prefetch');
        const mount = await this.namespace.mount(parsed.mount);
        if (!mount.remote) return;
        await (await this.cache()).readThrough(mount, parsed.key, { ttlMs: this.ttlOf(parsed.mount) });
      })().catch(() => undefined);
    }
  }

  mounts(): MountSummary[] {
    return this.namespace.mounts();
  }

  list(path: string, options: { recursive?: boolean; limit?: number } = {}): Promise<ObjectInfo[]> {
    return this.namespace.list(path, options);
  }

  /** The object as the mount sees it now, and the metadata row Baton keeps of it. */
  async stat(path: string): Promise<{ info: ObjectInfo | null; metadata: DataObjectRecord | null }> {
    const parsed = this.namespace.resolve(path);
    const [info, metadata] = await Promise.all([
      this.namespace.stat(path),
      this.store.getDataObject(formatDataPath(parsed)),
    ]);
    return { info, metadata };
  }

  /**
   * Copies between two places, each a data path or a file of this machine: data to data,
   * a file into the namespace, or an object out to a file (written aside and renamed, like
   * every write of Baton's).
   */
  async copy(from: string, to: string): Promise<WriteResult | { readonly key: string; readonly size: number }> {
    if (isDataPath(to)) {
      if (isDataPath(from)) return this.namespace.copy(from, to);
      return this.namespace.write(
        to,
        createReadStream(from, { highWaterMark: 1024 * 1024 }).on('error', () => undefined),
      );
    }
    if (!isDataPath(from)) {
      throw new BatonError('USAGE', `copy ${from} → ${to}: one of the two must be a data:// path`);
    }
    const { body } = await this.namespace.read(from);
    await mkdir(dirname(to), { recursive: true });
    const part = join(dirname(to), `.${randomBytes(6).toString('hex')}.baton-part`);
    const handle = await open(part, 'wx');
    let size = 0;
    try {
      for await (const chunk of body) {
        size += (chunk as Buffer).length;
        await handle.write(chunk as Buffer);
      }
      await handle.sync();
      await handle.close();
      await rename(part, to);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(part).catch(() => undefined);
      throw error;
    }
    return { key: to, size };
  }

  /** Removes an object and its metadata row (the record of past accesses stays). */
  async remove(path: string): Promise<boolean> {
    const parsed = this.namespace.resolve(path);
    const removed = await this.namespace.remove(path);
    await this.store.forgetDataObject(formatDataPath(parsed));
    return removed;
  }

  async cacheStats(): Promise<CacheStats> {
    return (await this.cache()).stats();
  }

  /** Pins a remote object in the cache (fetching it first), so that eviction never drops it. */
  async pin(path: string): Promise<ObjectInfo> {
    const parsed = this.namespace.resolve(path);
    const mount = await this.namespace.mount(parsed.mount);
    if (!mount.remote) {
      throw new BatonError('DATA_UNSUPPORTED', `${path}: mount ${parsed.mount} (${mount.kind}) is not cached`, {
        hint: 'Only remote mounts (s3, http) go through the cache.',
      });
    }
    const cache = await this.cache();
    const { info } = await cache.readThrough(mount, parsed.key);
    await cache.pin(parsed.mount, parsed.key);
    return info;
  }

  async unpin(path: string): Promise<boolean> {
    const parsed = this.namespace.resolve(path);
    return (await this.cache()).unpin(parsed.mount, parsed.key);
  }

  /** Drops cached copies: of one object, of a folder's objects, or of a whole mount. */
  async evict(path: string): Promise<number> {
    const parsed = this.namespace.resolve(path);
    return (await this.cache()).evict(parsed.mount, parsed.key === '' ? undefined : parsed.key);
  }

  async clearCache(): Promise<number> {
    return (await this.cache()).clear();
  }

  async close(): Promise<void> {
    await this.namespace.close();
    const opening = this.cacheOpening;
    this.cacheOpening = undefined;
    if (opening) await (await opening.catch(() => null))?.close();
  }

  private ttlOf(mount: string): number {
    const config = this.config.data.mounts[mount];
    return config && (config.kind === 's3' || config.kind === 'http') ? (config.ttl ?? 0) : 0;
  }
}
