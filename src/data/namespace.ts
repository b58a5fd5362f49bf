/**
 * The data namespace: every configured mount behind one path syntax
 * (`data://<mount>/<key>`), with remote reads going through the local cache and every
 * object read or written recorded as a metadata row with the run and task that touched it.
 * Flows, the CLI and task code (`ctx.data`) all go through it, so that moving a dataset
 * from a folder to a bucket is a change of baton.yaml, not of a flow.
 *
 * Mounts open when first used: a project with an S3 mount that a command never touches
 * never loads the S3 client, and a mount whose credentials are missing fails only the
 * operations that need it, with an error that names it.
 */
import { createReadStream } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { BatonError } from '../core/errors.js';
import { formatDataPath, parseDataPath, type DataPath } from '../core/data-path.js';
import { redactUrl } from '../core/redact-url.js';
import type { DatabaseConnection } from '../core/task-context.js';
import { suggest } from '../define/suggest.js';
import type {
  DataMount,
  ListOptions,
  MountConfig,
  MountContext,
  MountOperationOptions,
  ObjectInfo,
  WriteBody,
  WriteOptions,
  WriteResult,
} from './mount.js';
import { openLocalMount } from './local-mount.js';
import { openHttpMount } from './http-mount.js';
import type { DataAccess, DataObjects } from '../store/store.js';

/** Who reads or writes: a task's attempt, or nobody in particular (the CLI, a program). */
export interface DataActor {
  readonly runId: string;
  readonly taskId: string;
  readonly attempt: number;
}

/** One read or write, as the metadata records it. */
export interface DataAccessNote {
  readonly path: string;
  readonly mount: string;
  readonly key: string;
  readonly op: 'read' | 'write';
  readonly size: number;
  readonly etag: string | null;
  readonly sha256: string | null;
  readonly contentType: string | null;
  readonly actor: DataActor | null;
  readonly at: number;
}

/** Where accesses are recorded (the store's data metadata, through the application layer). */
export type DataAccessRecorder = (accesses: readonly DataAccessNote[]) => Promise<void>;

/** A recorder that writes accesses as the store's data metadata (ports/data-objects.ts). */
export function storeRecorder(store: Pick<DataObjects, 'recordDataAccesses'>): DataAccessRecorder {
  return (accesses) =>
    store.recordDataAccesses(
      accesses.map((a): DataAccess => {
        const common = {
          path: a.path,
          size: a.size,
          etag: a.etag,
          at: a.at,
          ...(a.actor ? { runId: a.actor.runId, taskId: a.actor.taskId, attempt: a.actor.attempt } : {}),
        };
        return a.op === 'write'
          ? { ...common, op: 'write', sha256: a.sha256, contentType: a.contentType }
          : { ...common, op: 'read' };
      }),
    );
}

/** What a remote read goes through: the disk cache (data/cache). */
export interface ReadCache {
  readThrough(
    mount: DataMount,
    key: string,
    options?: { readonly ttlMs?: number; readonly signal?: AbortSignal },
  ): Promise<{ readonly file: string; readonly info: ObjectInfo; readonly fetched: boolean }>;
}

export interface NamespaceOptions {
  readonly mounts: Readonly<Record<string, MountConfig>>;
  readonly context: MountContext;
  /** The cache remote reads go through; without one they stream from the mount. */
  readonly cache?: ReadCache;
  readonly record?: DataAccessRecorder;
  /** The clock of recorded times. */
  readonly now?: () => number;
}

export interface NamespaceReadOptions extends MountOperationOptions {
  readonly actor?: DataActor | null;
}

export interface NamespaceWriteOptions extends WriteOptions {
  readonly actor?: DataActor | null;
}

/** A configured mount, as `baton data mounts` shows it. */
export interface MountSummary {
  readonly name: string;
  readonly kind: MountConfig['kind'];
  /** Where it points, without credentials: a folder, `s3://bucket/prefix`, a URL, or `postgres (env URL_VAR)`. */
  readonly target: string;
}

export class DataNamespace {
  private readonly opened = new Map<string, Promise<DataMount>>();
  private readonly now: () => number;

  constructor(private readonly options: NamespaceOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The configured mounts, by name. */
  mounts(): MountSummary[] {
    return Object.entries(this.options.mounts)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, config]) => ({ name, kind: config.kind, target: targetOf(config) }));
  }

  /** Parses a path and checks that its mount is configured. */
  resolve(path: string, where?: string): DataPath {
    const parsed = parseDataPath(path, where);
    if (!(parsed.mount in this.options.mounts)) throw this.unknownMount(parsed.mount, path);
    return parsed;
  }

  /** The mount behind a name, opened on first use. */
  mount(name: string): Promise<DataMount> {
    let opening = this.opened.get(name);
    if (!opening) {
      const config = this.options.mounts[name];
      if (!config) return Promise.reject(this.unknownMount(name, `data://${name}/`));
      opening = openMount(name, config, this.options.context);
      this.opened.set(name, opening);
      // A mount that failed to open (a missing variable) is tried again next time.
      opening.catch(() => this.opened.delete(name));
    }
    return opening;
  }

  async stat(path: string, options: MountOperationOptions = {}): Promise<ObjectInfo | null> {
    const { mount, key } = this.resolve(path);
    return (await this.mount(mount)).stat(key, options);
  }

  async list(path: string, options: ListOptions = {}): Promise<ObjectInfo[]> {
    const { mount, key } = this.resolve(path);
    return (await this.mount(mount)).list(key, options);
  }

  /** The object's bytes as a stream; remote objects come through the cache. */
  async read(path: string, options: NamespaceReadOptions = {}): Promise<{ info: ObjectInfo; body: Readable }> {
    const parsed = this.resolve(path);
    const mount = await this.mount(parsed.mount);
    const cache = this.options.cache;
    let result: { info: ObjectInfo; body: Readable };
    if (mount.remote && cache) {
      const cached = await cache.readThrough(mount, parsed.key, {
        ttlMs: this.ttlOf(parsed.mount),
        ...signalOf(options),
      });
      result = { info: cached.info, body: createReadStream(cached.file, { highWaterMark: 1024 * 1024 }) };
    } else {
      result = await mount.read(parsed.key, signalOf(options));
    }
    await this.note(parsed, 'read', result.info, null, options.actor ?? null);
    return result;
  }

  /** The whole object in memory. */
  async readBytes(path: string, options: NamespaceReadOptions = {}): Promise<Buffer> {
    const { body } = await this.read(path, options);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * A local file holding the object, for tools that read files (DuckDB): the file itself on
   * a local mount, the cached copy of a remote one. DATA_UNSUPPORTED for datasets that are
   * no files (PostgreSQL tables).
   */
  async localFile(path: string, options: NamespaceReadOptions = {}): Promise<string> {
    const parsed = this.resolve(path);
    const mount = await this.mount(parsed.mount);
    if (mount.kind === 'local') {
      const info = await mount.stat(parsed.key);
      if (!info || info.folder) throw new BatonError('DATA_NOT_FOUND', `${path} does not exist`);
      await this.note(parsed, 'read', info, null, options.actor ?? null);
      const config = this.options.mounts[parsed.mount] as { path: string };
      return resolvePath(this.options.context.root, config.path, ...parsed.key.split('/'));
    }
    if (mount.remote && this.options.cache) {
      const cached = await this.options.cache.readThrough(mount, parsed.key, {
        ttlMs: this.ttlOf(parsed.mount),
        ...signalOf(options),
      });
      await this.note(parsed, 'read', cached.info, null, options.actor ?? null);
      return cached.file;
    }
    throw new BatonError('DATA_UNSUPPORTED', `${path}: a ${mount.kind} mount holds no files to hand out`, {
      hint: 'Read it as a stream (`ctx.data.read`), or copy it to a local mount first.',
    });
  }

  /** Writes the object atomically and records the write. */
  async write(path: string, body: WriteBody, options: NamespaceWriteOptions = {}): Promise<WriteResult> {
    const parsed = this.resolve(path);
    const mount = await this.mount(parsed.mount);
    if (!mount.writable) {
      throw new BatonError('DATA_UNSUPPORTED', `${path}: mount ${parsed.mount} (${mount.kind}) is read-only`, {
        hint: 'Write to a mount of kind local, s3 or postgres.',
      });
    }
    const { actor, ...writeOptions } = options;
    const written = await mount.write(parsed.key, body, writeOptions);
    await this.note(parsed, 'write', written, written.sha256, actor ?? null);
    return written;
  }

  /** Copies an object from one path to another (any two mounts), streaming. */
  async copy(from: string, to: string, options: { readonly actor?: DataActor | null } = {}): Promise<WriteResult> {
    const { info, body } = await this.read(from, options);
    return this.write(to, body, { ...options, ...(info.contentType ? { contentType: info.contentType } : {}) });
  }

  /** Removes the object; false when there was none. */
  async remove(path: string): Promise<boolean> {
    const parsed = this.resolve(path);
    const mount = await this.mount(parsed.mount);
    if (!mount.writable) {
      throw new BatonError('DATA_UNSUPPORTED', `${path}: mount ${parsed.mount} (${mount.kind}) is read-only`);
    }
    return mount.remove(parsed.key);
  }

  /** A connection to the database of a postgres mount (see `TaskData.connect`). */
  async connect(name: string, options: MountOperationOptions = {}): Promise<DatabaseConnection> {
    const mount = await this.mount(name);
    if (!mount.connect) {
      throw new BatonError('DATA_UNSUPPORTED', `mount ${name} (${mount.kind}) is no database to connect to`, {
        hint: 'Name a mount of kind postgres.',
      });
    }
    return mount.connect(options);
  }

  /** Closes every mount opened. */
  async close(): Promise<void> {
    const opened = [...this.opened.values()];
    this.opened.clear();
    await Promise.all(opened.map((p) => p.then((m) => m.close()).catch(() => undefined)));
  }

  private ttlOf(mount: string): number {
    const config = this.options.mounts[mount];
    return config && (config.kind === 's3' || config.kind === 'http') ? (config.ttl ?? 0) : 0;
  }

  private async note(
    parsed: DataPath,
    op: 'read' | 'write',
    info: ObjectInfo,
    sha256: string | null,
    actor: DataActor | null,
  ): Promise<void> {
    if (!this.options.record) return;
    await this.options.record([
      {
        path: formatDataPath(parsed),
        mount: parsed.mount,
        key: parsed.key,
        op,
        size: info.size,
        etag: info.etag ?? null,
        sha256,
        contentType: info.contentType ?? null,
        actor,
        at: this.now(),
      },
    ]);
  }

  private unknownMount(name: string, path: string): BatonError {
    const names = Object.keys(this.options.mounts);
    const near = suggest(name, names);
    return new BatonError(
      'DATA_MOUNT_UNKNOWN',
      `${path}: no mount is named ${JSON.stringify(name)}` +
        (near
          ? ` (did you mean ${near}?)`
          : names.length
            ? `; the mounts are ${names.join(', ')}`
            : '; none is configured'),
    );
  }
}

function signalOf(options: MountOperationOptions): MountOperationOptions {
  return options.signal ? { signal: options.signal } : {};
}

/** Opens a mount of any kind; S3 and PostgreSQL load their clients only here. */
async function openMount(name: string, config: MountConfig, context: MountContext): Promise<DataMount> {
  switch (config.kind) {
    case 'local':
      return openLocalMount(name, config, context);
    case 'http':
      return openHttpMount(name, config, context);
    case 's3':
      return (await import('./s3-mount.js')).openS3Mount(name, config, context);
    case 'postgres':
      return (await import('./postgres-mount.js')).openPostgresMount(name, config, context);
  }
}

function targetOf(config: MountConfig): string {
  switch (config.kind) {
    case 'local':
      return config.path;
    case 'http':
      return redactUrl(config.url);
    case 's3':
      return `s3://${config.bucket}/${config.prefix ?? ''}${config.endpoint ? ` at ${config.endpoint}` : ''}`;
    case 'postgres':
      return `schema ${config.schema ?? 'public'} of the database in $${config.url_env}`;
  }
}
