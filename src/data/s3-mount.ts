/**
 * The `s3` mount: a bucket, or a prefix in it, on AWS or any S3-compatible server. The
 * AWS SDK is an optional peer dependency, imported when the first S3 mount opens, so that
 * a project without one never loads it.
 *
 * Invariants
 * - Keys of the mount are keys of the bucket under `<prefix>/`; listings give them back
 *   relative to that prefix, and nothing outside it is ever named.
 * - A write is atomic: a body of up to PART_BYTES is one PutObject; a longer stream is a
 *   multipart upload, which S3 shows under the key only once it completes, and which is
 *   aborted on any failure or abort signal. The SHA-256 of the bytes is computed as they pass.
 * - Errors are BatonErrors naming the mount, the key and the server's error code and
 *   message; the credentials are cut out of any text the server sends back, and the SDK's
 *   error object (which may carry request details) is never kept as the cause.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { BatonError } from '../core/errors.js';
import type {
  DataMount,
  ListOptions,
  MountContext,
  MountOperationOptions,
  ObjectInfo,
  S3MountConfig,
  WriteBody,
  WriteOptions,
  WriteResult,
} from './mount.js';

/** Size of a multipart upload's parts, and the largest body sent as one PutObject. */
export const PART_BYTES = 8 * 1024 * 1024;
/** Parts uploaded at once during a multipart write. */
const PARTS_IN_FLIGHT = 3;
/** Most keys one ListObjectsV2 page holds (the S3 limit). */
const PAGE_KEYS = 1000;

type S3Sdk = typeof import('@aws-sdk/client-s3');

/** What an SDK error looks like: the S3 error code is its name. */
interface SdkError {
  readonly name?: string;
  readonly Code?: string;
  readonly message?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

/**
 * Opens the mount `name` on the bucket of `config`. Credentials come from the environment
 * variables the config names (both or neither), read from `context.env`; without them, the
 * SDK's default chain (environment, profile, instance role). Nothing is sent until the
 * first operation. Example:
 * `await openS3Mount('raw', { kind: 's3', bucket: 'lake', prefix: 'raw', endpoint: 'http://127.0.0.1:9000', path_style: true }, context)`.
 */
export async function openS3Mount(name: string, config: S3MountConfig, context: MountContext): Promise<DataMount> {
  const credentials = credentialsFrom(name, config, context.env);
  const sdk = await loadSdk(name);
  const client = new sdk.S3Client({
    region: config.region ?? 'us-east-1',
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.path_style ?? false,
    ...(credentials !== undefined ? { credentials } : {}),
  });
  const secrets = credentials ? [credentials.accessKeyId, credentials.secretAccessKey] : [];
  return new S3Mount(name, config, sdk, client, secrets);
}

async function loadSdk(name: string): Promise<S3Sdk> {
  try {
    return await import('@aws-sdk/client-s3');
  } catch (error) {
    throw new BatonError('DEP_MISSING', `mount ${name} (kind s3) needs the npm package @aws-sdk/client-s3`, {
      hint: 'Run `npm install @aws-sdk/client-s3` in the project.',
      cause: error,
    });
  }
}

type Credentials = { readonly accessKeyId: string; readonly secretAccessKey: string };

function credentialsFrom(
  name: string,
  config: S3MountConfig,
  env: Readonly<Record<string, string | undefined>>,
): Credentials | undefined {
  const idVar = config.access_key_id_env;
  const secretVar = config.secret_access_key_env;
  if (idVar === undefined && secretVar === undefined) return undefined;
  const where = `data.mounts.${name}`;
  if (idVar === undefined || secretVar === undefined) {
    const given = idVar === undefined ? 'secret_access_key_env' : 'access_key_id_env';
    throw new BatonError('CONFIG_INVALID', `${where}: ${given} is set but not its pair`, {
      hint: 'Set both access_key_id_env and secret_access_key_env, or neither to use the AWS default credential chain.',
    });
  }
  const missing = [
    [idVar, 'access_key_id_env'],
    [secretVar, 'secret_access_key_env'],
  ].filter(([variable]) => !env[variable as string]);
  if (missing.length > 0) {
    throw new BatonError(
      'CONFIG_INVALID',
      `${where}: environment variable${missing.length > 1 ? 's' : ''} ${missing.map(([v, key]) => `${v} (${key})`).join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set`,
      { hint: 'Export the variable in the environment of the process that reads the mount.' },
    );
  }
  return { accessKeyId: env[idVar] as string, secretAccessKey: env[secretVar] as string };
}

class S3Mount implements DataMount {
  readonly kind = 's3' as const;
  readonly writable = true;
  readonly remote = true;
  private readonly bucket: string;
  /** The bucket prefix of every key, with its trailing `/`; `''` for the whole bucket. */
  private readonly base: string;

  constructor(
    readonly name: string,
    config: S3MountConfig,
    private readonly sdk: S3Sdk,
    private readonly client: S3Client,
    private readonly secrets: readonly string[],
  ) {
    this.bucket = config.bucket;
    const prefix = (config.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.base = prefix === '' ? '' : `${prefix}/`;
  }

  async stat(key: string, options: MountOperationOptions = {}): Promise<ObjectInfo | null> {
    if (key === '') return null;
    try {
      const head = await this.client.send(
        new this.sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.base + key }),
        sendOptions(options.signal),
      );
      return info(key, head.ContentLength, head.ETag, head.LastModified, head.ContentType);
    } catch (error) {
      if (isNotFound(error)) return null;
      throw this.ioError('stat', key, error);
    }
  }

  async list(folder: string, options: ListOptions = {}): Promise<ObjectInfo[]> {
    const limit = options.limit ?? Infinity;
    const prefix = folder === '' ? this.base : `${this.base}${folder}/`;
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    // Each page is a round trip that returns at least one entry or ends the listing.
    do {
      let page;
      try {
        page = await this.client.send(
          new this.sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            ...(prefix !== '' ? { Prefix: prefix } : {}),
            ...(options.recursive ? {} : { Delimiter: '/' }),
            MaxKeys: Math.min(PAGE_KEYS, limit - out.length),
            ...(token !== undefined ? { ContinuationToken: token } : {}),
          }),
        );
      } catch (error) {
        throw this.ioError('list', folder, error);
      }
      const entries: ObjectInfo[] = [];
      for (const o of page.Contents ?? []) {
        // Folder markers (keys ending in `/`, made by consoles) are not objects.
        if (o.Key === undefined || o.Key.endsWith('/') || !o.Key.startsWith(prefix)) continue;
        entries.push(info(this.relative(o.Key), o.Size, o.ETag, o.LastModified));
      }
      for (const p of page.CommonPrefixes ?? []) {
        if (p.Prefix === undefined || !p.Prefix.startsWith(prefix) || p.Prefix === prefix) continue;
        entries.push({ key: this.relative(p.Prefix).replace(/\/+$/, ''), size: 0, folder: true });
      }
      out.push(...entries);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined && out.length < limit);
    out.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    return out.length > limit ? out.slice(0, limit) : out;
  }

  async read(key: string, options: MountOperationOptions = {}): Promise<{ info: ObjectInfo; body: Readable }> {
    try {
      const got = await this.client.send(
        new this.sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.base + key }),
        sendOptions(options.signal),
      );
      // In Node the SDK's body is the response's IncomingMessage, a Readable.
      const body = got.Body as Readable | undefined;
      if (body === undefined) throw new Error('the response has no body');
      return { info: info(key, got.ContentLength, got.ETag, got.LastModified, got.ContentType), body };
    } catch (error) {
      // Only NoSuchKey: a missing bucket (NoSuchBucket, also a 404) is a broken mount, not a missing object.
      if ((error as SdkError | null)?.name === 'NoSuchKey') {
        throw new BatonError('DATA_NOT_FOUND', `mount ${this.name} (s3): no object ${JSON.stringify(key)}`);
      }
      throw this.ioError('read', key, error);
    }
  }

  async write(key: string, body: WriteBody, options: WriteOptions = {}): Promise<WriteResult> {
    const hash = createHash('sha256');
    const parts = chunksOf(body, PART_BYTES);
    let first: Buffer | null;
    let second: Buffer | null;
    try {
      first = await next(parts, this.name, key, options.signal);
      second = first === null ? null : await next(parts, this.name, key, options.signal);
    } catch (error) {
      stopReading(body, parts);
      throw this.ioError('write', key, error);
    }
    if (second === null) {
      const bytes = first ?? Buffer.alloc(0);
      hash.update(bytes);
      try {
        const put = await this.client.send(
          new this.sdk.PutObjectCommand({
            Bucket: this.bucket,
            Key: this.base + key,
            Body: bytes,
            ...(options.contentType !== undefined ? { ContentType: options.contentType } : {}),
          }),
          sendOptions(options.signal),
        );
        return written(key, bytes.length, put.ETag, options.contentType, hash.digest('hex'));
      } catch (error) {
        throw this.ioError('write', key, error);
      }
    }
    return this.writeParts(key, body, [first as Buffer, second], parts, hash, options);
  }

  /** A multipart upload of `head` and then the rest of `parts`, aborted if anything fails. */
  private async writeParts(
    key: string,
    body: WriteBody,
    head: readonly Buffer[],
    parts: AsyncIterator<Buffer>,
    hash: ReturnType<typeof createHash>,
    options: WriteOptions,
  ): Promise<WriteResult> {
    const Key = this.base + key;
    let uploadId: string | undefined;
    const done: Promise<{ ETag: string; PartNumber: number }>[] = [];
    try {
      const created = await this.client.send(
        new this.sdk.CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          ...(options.contentType !== undefined ? { ContentType: options.contentType } : {}),
        }),
        sendOptions(options.signal),
      );
      uploadId = created.UploadId;
      if (uploadId === undefined) throw new Error('the server gave no upload id');
      const UploadId = uploadId;
      let size = 0;
      const upload = (bytes: Buffer): void => {
        hash.update(bytes);
        size += bytes.length;
        const PartNumber = done.length + 1;
        const sent = this.client
          .send(
            new this.sdk.UploadPartCommand({ Bucket: this.bucket, Key, UploadId, PartNumber, Body: bytes }),
            sendOptions(options.signal),
          )
          .then((r) => ({ ETag: r.ETag ?? '', PartNumber }));
        // Awaited below, in order; this keeps a failure from being reported as unhandled first.
        sent.catch(() => undefined);
        done.push(sent);
      };
      for (const bytes of head) upload(bytes);
      for (;;) {
        if (done.length >= PARTS_IN_FLIGHT) await done[done.length - PARTS_IN_FLIGHT];
        const bytes = await next(parts, this.name, key, options.signal);
        if (bytes === null) break;
        upload(bytes);
      }
      const uploaded = await Promise.all(done);
      options.signal?.throwIfAborted();
      const completed = await this.client.send(
        new this.sdk.CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: uploaded },
        }),
        sendOptions(options.signal),
      );
      return written(key, size, completed.ETag, options.contentType, hash.digest('hex'));
    } catch (error) {
      stopReading(body, parts);
      // Parts still under way would outlive an abort sent now.
      await Promise.allSettled(done);
      const abortFailure = uploadId === undefined ? null : await this.abortUpload(Key, uploadId);
      const failure = error instanceof BatonError ? error : this.ioError('write', key, error);
      if (abortFailure === null) throw failure;
      throw new BatonError(
        failure.code,
        `${failure.message}; aborting its multipart upload failed too: ${abortFailure}`,
        {
          hint: `${failure.hint} The parts uploaded are not visible under the key; a lifecycle rule on incomplete multipart uploads removes them.`,
          details: failure.details,
          cause: failure.cause,
        },
      );
    }
  }

  /** Aborts an upload; null when it worked, else why it did not. */
  private async abortUpload(Key: string, UploadId: string): Promise<string | null> {
    try {
      await this.client.send(new this.sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }));
      return null;
    } catch (error) {
      return this.serverSays(error);
    }
  }

  async remove(key: string, options: MountOperationOptions = {}): Promise<boolean> {
    // DeleteObject answers the same whether or not the key existed.
    if ((await this.stat(key, options)) === null) return false;
    try {
      await this.client.send(
        new this.sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.base + key }),
        sendOptions(options.signal),
      );
      return true;
    } catch (error) {
      throw this.ioError('remove', key, error);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private relative(bucketKey: string): string {
    return bucketKey.slice(this.base.length);
  }

  /** The server's error code and message, without the credentials. */
  private serverSays(error: unknown): string {
    const e = (error ?? {}) as SdkError;
    const code = e.Code ?? e.name ?? 'Error';
    const status = e.$metadata?.httpStatusCode;
    let text = `${code}${status !== undefined ? ` (HTTP ${status})` : ''}: ${e.message ?? String(error)}`;
    for (const secret of this.secrets) if (secret !== '') text = text.split(secret).join('***');
    return text;
  }

  private ioError(operation: string, key: string, error: unknown): BatonError {
    if (error instanceof BatonError) return error;
    const e = (error ?? {}) as SdkError;
    const where = `s3://${this.bucket}/${this.base}${key}`;
    const says = this.serverSays(error);
    return new BatonError(
      'DATA_IO',
      `mount ${this.name} (s3): ${operation} ${JSON.stringify(key)} (${where}) failed: ${says}`,
      {
        details: {
          mount: this.name,
          key,
          operation,
          ...((e.Code ?? e.name) ? { serverCode: e.Code ?? e.name } : {}),
          ...(e.$metadata?.httpStatusCode !== undefined ? { status: e.$metadata.httpStatusCode } : {}),
        },
        // The SDK's error may hold request details: only its (cleaned) text is kept.
        cause: new Error(says),
      },
    );
  }
}

/** Lets go of the body after a failure: a stream is destroyed, so that its source stops too. */
function stopReading(body: WriteBody, parts: AsyncIterator<Buffer>): void {
  const stream = body as Partial<Readable>;
  if (typeof stream.destroy === 'function') stream.destroy();
  // Not awaited: the generator may be waiting on a body that never ends.
  parts.return?.().catch(() => undefined);
}

function sendOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal ? { abortSignal: signal } : {};
}

function isNotFound(error: unknown): boolean {
  const e = error as SdkError | null;
  if (!e || typeof e !== 'object') return false;
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}

function unquote(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/^"|"$/g, '');
}

function info(
  key: string,
  size: number | undefined,
  etag: string | undefined,
  modified: Date | undefined,
  contentType?: string,
): ObjectInfo {
  const tag = unquote(etag);
  return {
    key,
    size: size ?? 0,
    ...(tag ? { etag: tag } : {}),
    ...(modified ? { modifiedAt: modified.getTime() } : {}),
    ...(contentType ? { contentType } : {}),
  };
}

function written(
  key: string,
  size: number,
  etag: string | undefined,
  contentType: string | undefined,
  sha256: string,
): WriteResult {
  return { ...info(key, size, etag, undefined, contentType), sha256 };
}

/** The next part of the body; rejects as soon as `signal` aborts, even while the body stalls. */
async function next(
  parts: AsyncIterator<Buffer>,
  mount: string,
  key: string,
  signal: AbortSignal | undefined,
): Promise<Buffer | null> {
  try {
    signal?.throwIfAborted();
    const pending = parts.next();
    const r = signal ? await raceAbort(pending, signal) : await pending;
    return r.done ? null : r.value;
  } catch (error) {
    if (error instanceof BatonError || (error as Error).name === 'AbortError') throw error;
    throw new BatonError(
      'DATA_IO',
      `mount ${mount} (s3): write ${JSON.stringify(key)}: reading the body failed: ${(error as Error).message}`,
      {
        cause: error,
        hint: 'The body given to the write failed; nothing was stored under the key.',
      },
    );
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
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

/** The body cut into buffers of exactly `size` bytes (the last one shorter, never empty). */
async function* chunksOf(body: WriteBody, size: number): AsyncGenerator<Buffer> {
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const bytes =
      typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
    return;
  }
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    let bytes =
      typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (pendingBytes + bytes.length >= size) {
      const take = size - pendingBytes;
      pending.push(bytes.subarray(0, take));
      yield Buffer.concat(pending, size);
      bytes = bytes.subarray(take);
      pending = [];
      pendingBytes = 0;
    }
    if (bytes.length > 0) {
      pending.push(bytes);
      pendingBytes += bytes.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending, pendingBytes);
}
