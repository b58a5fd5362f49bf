/**
 * A mount: one storage system behind a name of the data namespace (`data://<name>/...`).
 * Each kind (local folder, S3-compatible bucket, HTTP(S) site, PostgreSQL database)
 * implements this port; the namespace adds the path syntax, the cache and the metadata
 * rows on top, so that a mount knows nothing of either.
 *
 * Invariants every writable mount keeps:
 * - A write is atomic: readers see the old object or the whole new one, never a part; a
 *   write that fails or is killed leaves nothing visible under the key.
 * - Keys are checked (core/data-path.ts) before they reach a mount; a mount that has
 *   symbolic links refuses to follow one (DATA_PATH_ESCAPE).
 * - Errors are BatonErrors: DATA_NOT_FOUND, DATA_UNSUPPORTED, DATA_PATH_ESCAPE, or DATA_IO
 *   naming the mount, the key and what the storage answered, never a credential.
 */
import type { Readable } from 'node:stream';
import type { DataObjectInfo } from '../core/task-context.js';
import type { DatabaseConnection } from '../core/task-context.js';

export type MountKind = 'local' | 's3' | 'http' | 'postgres';

/**
 * The mount Baton keeps for itself, a folder of the project (`.baton/data`): it holds
 * outputs stored by reference unless `data.payloads` names another place. No mount of
 * baton.yaml may take its name.
 */
export const INTERNAL_MOUNT = 'baton';

/** The folder of the internal mount, relative to the project's root. */
export const INTERNAL_MOUNT_FOLDER = '.baton/data';

/**
 * What a mount knows of one object (or, in a listing, of one folder): the type task code
 * sees too (`ctx.data.stat`). For a local file the ETag is `"<size>-<mtime in ms>"`.
 */
export type ObjectInfo = DataObjectInfo;

/** What a write stored. */
export interface WriteResult extends ObjectInfo {
  /** SHA-256 of the bytes written, hex. */
  readonly sha256: string;
}

export interface ListOptions {
  /** Every object under the prefix, rather than its direct children and folders. */
  readonly recursive?: boolean;
  /** Most entries returned. */
  readonly limit?: number;
}

export interface MountOperationOptions {
  readonly signal?: AbortSignal;
}

export interface WriteOptions extends MountOperationOptions {
  readonly contentType?: string;
}

/** The body of a write: bytes, text (UTF-8), or a stream of bytes. */
export type WriteBody = Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

export interface DataMount {
  readonly name: string;
  readonly kind: MountKind;
  /** False for mounts that refuse writes and removals (HTTP). */
  readonly writable: boolean;
  /** Whether reads go through the local cache: true for mounts whose bytes cross a network. */
  readonly remote: boolean;
  /** The object's info, or null when there is none under the key. */
  stat(key: string, options?: MountOperationOptions): Promise<ObjectInfo | null>;
  /** Objects (and, unless recursive, folders) under a folder key (`''` for the root), in key order. */
  list(folder: string, options?: ListOptions): Promise<ObjectInfo[]>;
  /** The object's bytes as a stream, with its info as read; DATA_NOT_FOUND when absent. */
  read(key: string, options?: MountOperationOptions): Promise<{ readonly info: ObjectInfo; readonly body: Readable }>;
  /** Writes the whole object atomically (see the invariants above). */
  write(key: string, body: WriteBody, options?: WriteOptions): Promise<WriteResult>;
  /** Removes the object; false when there was none. */
  remove(key: string, options?: MountOperationOptions): Promise<boolean>;
  /** Lets go of connections and clients. */
  close(): Promise<void>;
  /** A connection to the database behind the mount, for database mounts (postgres) only. */
  connect?(options?: MountOperationOptions): Promise<DatabaseConnection>;
}

/** `data.mounts.<name>` of kind `local`: a folder, relative to the project's root or absolute. */
export interface LocalMountConfig {
  readonly kind: 'local';
  readonly path: string;
}

/** `data.mounts.<name>` of kind `s3`: a bucket, or a prefix in it, on AWS or any S3-compatible server. */
export interface S3MountConfig {
  readonly kind: 's3';
  readonly bucket: string;
  /** Keys of the mount live under this prefix of the bucket (no leading or trailing `/`). */
  readonly prefix?: string;
  /** The server's URL, for S3-compatible servers (MinIO, Ceph, R2, ...); AWS when absent. */
  readonly endpoint?: string;
  /** Default `us-east-1`. */
  readonly region?: string;
  /** Path-style addressing (`<endpoint>/<bucket>/<key>`), which most S3-compatible servers need. */
  readonly path_style?: boolean;
  /** Environment variables that hold the credentials; the SDK's default chain when absent. */
  readonly access_key_id_env?: string;
  readonly secret_access_key_env?: string;
  /** How long a cached copy is trusted without asking the server (ms); 0: always validated by ETag. */
  readonly ttl?: number;
}

/** `data.mounts.<name>` of kind `http`: read-only objects under a base URL. */
export interface HttpMountConfig {
  readonly kind: 'http';
  /** Base URL; a key is resolved under it (`<url>/<key>`). */
  readonly url: string;
  /** Request headers whose values come from environment variables: `{ Authorization: API_TOKEN }`. */
  readonly headers_env?: Readonly<Record<string, string>>;
  /** How long a cached copy is trusted without asking the server (ms); 0: always validated by ETag. */
  readonly ttl?: number;
}

/** `data.mounts.<name>` of kind `postgres`: tables and named queries as datasets, tables as write targets. */
export interface PostgresMountConfig {
  readonly kind: 'postgres';
  /** The environment variable that holds the connection URL (credentials never sit in baton.yaml). */
  readonly url_env: string;
  /** The schema whose tables the mount shows; default `public`. */
  readonly schema?: string;
  /** Named read-only queries, each readable as `data://<mount>/queries/<name>`. */
  readonly queries?: Readonly<Record<string, string>>;
}

export type MountConfig = LocalMountConfig | S3MountConfig | HttpMountConfig | PostgresMountConfig;

/** `data.cache` in baton.yaml: the read-through cache of remote mounts. */
export interface CacheConfig {
  /** The cache's folder, relative to the project's root; default `.baton/cache`. */
  readonly dir?: string;
  /** Most bytes the cache keeps; least recently used entries that are not pinned go first. Default 10 GiB. */
  readonly max_bytes?: number;
}

/** What a mount is built with besides its configuration. */
export interface MountContext {
  /** The project's root: relative local paths are resolved against it. */
  readonly root: string;
  /** The environment credentials and URLs are read from. */
  readonly env: Readonly<Record<string, string | undefined>>;
}
