/**
 * What task code sees of an attempt: the context passed to function tasks. Pure types,
 * shared by the flow builder (which types it for flow authors) and the engine (which
 * fills it in).
 */
import type { TaskError } from './model.js';

/** Logger handed to task code; lines go to the task log, batched with the next commit. */
export interface TaskLogger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** What the data namespace knows of an object (or, in a listing, of a folder). */
export interface DataObjectInfo {
  /** The key inside its mount, without a leading or trailing `/`. */
  readonly key: string;
  readonly size: number;
  /** Changes whenever the content does (S3/HTTP ETag; size and time for a local file). */
  readonly etag?: string;
  /** Last change, ms since the epoch. */
  readonly modifiedAt?: number;
  readonly contentType?: string;
  /** True for a folder in a listing. */
  readonly folder?: boolean;
}

/**
 * The data namespace as a task sees it (`ctx.data`): paths are `data://<mount>/<key>`, with
 * the mounts of baton.yaml. Every read and write is recorded with the run, task and attempt
 * (`baton data stat` shows the producer); writes are atomic; remote reads go through the
 * cache.
 */
export interface TaskData {
  /** The whole object. */
  read(path: string): Promise<Uint8Array>;
  /** The whole object as UTF-8 text. */
  readText(path: string): Promise<string>;
  /** The whole object parsed as JSON. */
  readJson<T = unknown>(path: string): Promise<T>;
  /** The object's bytes as a stream, for objects too large to hold in memory. */
  stream(path: string): Promise<AsyncIterable<Uint8Array>>;
  /** Writes the whole object atomically; a stream (async iterable of bytes) is written as it comes. */
  write(
    path: string,
    body: Uint8Array | string | AsyncIterable<Uint8Array>,
    options?: { readonly contentType?: string },
  ): Promise<DataObjectInfo & { readonly sha256: string }>;
  /** Writes a value as JSON. */
  writeJson(path: string, value: unknown): Promise<DataObjectInfo & { readonly sha256: string }>;
  /** Objects and folders under a folder path (every object below it with `recursive`). */
  list(path: string, options?: { readonly recursive?: boolean; readonly limit?: number }): Promise<DataObjectInfo[]>;
  /** The object's info, or null when it does not exist. */
  stat(path: string): Promise<DataObjectInfo | null>;
  /** Removes the object; false when there was none. */
  remove(path: string): Promise<boolean>;
  /** A local file with the object's bytes (the cached copy of a remote object), for tools that read files. */
  localFile(path: string): Promise<string>;
  /**
   * A connection to the database of a postgres mount, from the mount's pool, for SQL the
   * table paths cannot say (`sql` tasks run on it). Release it when done. DATA_UNSUPPORTED
   * for mounts of other kinds.
   */
  connect(mount: string): Promise<DatabaseConnection>;
}

/** One column of a query result: its name and the database's type id (a PostgreSQL OID) and modifier. */
export interface DatabaseField {
  readonly name: string;
  readonly typeId: number;
  readonly typeModifier: number;
}

/**
 * A connection handed out by a database mount. Values are bound parameters (`$1`, `$2`);
 * rows come back as arrays in the order of `fields`, with the mount's conversions
 * (docs/data.md). Errors are DATA_IO naming the mount, with the server's message.
 */
export interface DatabaseConnection {
  /** The schema of the mount: its table keys name tables of this schema. */
  readonly schema: string;
  query(
    text: string,
    values?: readonly unknown[],
  ): Promise<{ readonly fields: readonly DatabaseField[]; readonly rows: unknown[][]; readonly rowCount: number }>;
  /** Cancels the statement running on the connection, if any (the query then fails). */
  cancel(): Promise<void>;
  /** Gives the connection back to the pool; `broken` closes it instead (after an error mid-transaction). */
  release(broken?: boolean): void;
}

/** Everything an attempt may read. Passed to function tasks as their context. */
export interface AttemptContext {
  readonly runId: string;
  readonly flow: string;
  readonly taskId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Stable across attempts and restarts: `<run>/<task>/<map index>`; use it to make side effects idempotent. */
  readonly idempotencyKey: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** The task's `with` values, templates rendered. */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** Outputs of the direct upstream tasks that succeeded, by task id. */
  readonly upstream: Readonly<Record<string, unknown>>;
  /** Aborted on cancellation or timeout; `signal.reason` says which. */
  readonly signal: AbortSignal;
  readonly log: TaskLogger;
  /** Inside a map: the item this instance works on (an array of items when the map batches). */
  readonly item?: unknown;
  /** Inside a map: the instance's position among the map's items (among its batches, when it batches). */
  readonly mapIndex?: number;
  /** In an on_failure handler: the failure of the task it handles. */
  readonly error?: TaskError | null;
  /** The data namespace: read and write `data://` paths (docs/data.md). */
  readonly data: TaskData;
}

/** Who touches data: the attempt a `TaskData` is made for. */
export interface DataActorRef {
  readonly runId: string;
  readonly taskId: string;
  readonly attempt: number;
}

/** Makes the `ctx.data` of an attempt. */
export type TaskDataProvider = (actor: DataActorRef) => TaskData;

/** The signature of a function task. */
export type TaskFunction = (context: AttemptContext) => unknown;
