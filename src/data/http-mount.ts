/**
 * A mount of kind `http`: read-only objects under a base URL (`data://web/a/b.csv` is
 * `<url>/a/b.csv`). Each key segment is percent-encoded, so a key can only name a URL
 * under the base. `stat` is a HEAD request and `read` a GET; HTTP has no listing, and the
 * mount refuses writes and removals (DATA_UNSUPPORTED). Header values (an API token) come
 * from environment variables and never appear in errors. Reads go through the cache,
 * validated by the server's ETag (or Last-Modified and Content-Length when it sends none).
 */
import { Readable } from 'node:stream';
import { BatonError } from '../core/errors.js';
import type {
  DataMount,
  HttpMountConfig,
  MountContext,
  MountOperationOptions,
  ObjectInfo,
  WriteResult,
} from './mount.js';

/** How long a request may take to answer with its headers. */
const HEADERS_TIMEOUT_MS = 30_000;

/** Opens an HTTP mount; CONFIG_INVALID when a header's environment variable is not set. */
export function openHttpMount(name: string, config: HttpMountConfig, context: MountContext): DataMount {
  const base = new URL(config.url);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new BatonError('CONFIG_INVALID', `data.mounts.${name}.url: ${base.protocol} is not http: or https:`);
  }
  const headers: Record<string, string> = {};
  for (const [header, variable] of Object.entries(config.headers_env ?? {})) {
    const value = context.env[variable];
    if (value === undefined || value === '') {
      throw new BatonError(
        'CONFIG_INVALID',
        `data.mounts.${name}.headers_env.${header}: the environment variable ${variable} is not set`,
        { hint: `Set ${variable} in the environment of every Baton process that reads this mount.` },
      );
    }
    headers[header] = value;
  }
  return new HttpMount(name, base, headers);
}

class HttpMount implements DataMount {
  readonly kind = 'http';
  readonly writable = false;
  readonly remote = true;
  private readonly base: string;

  constructor(
    readonly name: string,
    url: URL,
    private readonly headers: Readonly<Record<string, string>>,
  ) {
    const href = url.href;
    this.base = href.endsWith('/') ? href : `${href}/`;
  }

  async stat(key: string, options: MountOperationOptions = {}): Promise<ObjectInfo | null> {
    const response = await this.request('HEAD', key, options);
    if (response.status === 404 || response.status === 410) return null;
    if (!response.ok) throw this.statusError(key, response);
    return infoOf(key, response);
  }

  async list(folder: string): Promise<ObjectInfo[]> {
    throw new BatonError('DATA_UNSUPPORTED', `data://${this.name}/${folder}: an HTTP mount cannot be listed`, {
      hint: 'Read its objects by their full key; list a local, s3 or postgres mount instead.',
    });
  }

  async read(key: string, options: MountOperationOptions = {}): Promise<{ info: ObjectInfo; body: Readable }> {
    const response = await this.request('GET', key, options);
    if (response.status === 404 || response.status === 410) {
      throw new BatonError('DATA_NOT_FOUND', `data://${this.name}/${key} does not exist (HTTP ${response.status})`);
    }
    if (!response.ok || !response.body) throw this.statusError(key, response);
    // The web stream's type in the DOM typings differs from Node's; they are the same object at run time.
    return {
      info: infoOf(key, response),
      body: Readable.fromWeb(response.body as import('node:stream/web').ReadableStream),
    };
  }

  async write(key: string): Promise<WriteResult> {
    throw this.readOnly(key);
  }

  async remove(key: string): Promise<boolean> {
    throw this.readOnly(key);
  }

  async close(): Promise<void> {}

  private url(key: string): string {
    return this.base + key.split('/').map(encodeURIComponent).join('/');
  }

  private async request(method: 'GET' | 'HEAD', key: string, options: MountOperationOptions): Promise<Response> {
    const timeout = AbortSignal.timeout(HEADERS_TIMEOUT_MS);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    try {
      return await fetch(this.url(key), { method, headers: this.headers, signal, redirect: 'follow' });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = timeout.aborted
        ? `no answer within ${HEADERS_TIMEOUT_MS / 1000} s`
        : (cause?.code ?? cause?.message ?? (error as Error).message);
      throw new BatonError('DATA_IO', `data://${this.name}/${key}: ${method} ${this.url(key)} failed: ${why}`, {
        cause: error,
      });
    }
  }

  private statusError(key: string, response: Response): BatonError {
    return new BatonError(
      'DATA_IO',
      `data://${this.name}/${key}: the server answered HTTP ${response.status} ${response.statusText}`.trim(),
      { details: { status: response.status } },
    );
  }

  private readOnly(key: string): BatonError {
    return new BatonError('DATA_UNSUPPORTED', `data://${this.name}/${key}: an HTTP mount is read-only`, {
      hint: 'Write to a mount of kind local, s3 or postgres.',
    });
  }
}

function infoOf(key: string, response: Response): ObjectInfo {
  const length = Number(response.headers.get('content-length') ?? '');
  const modified = Date.parse(response.headers.get('last-modified') ?? '');
  const etag = response.headers.get('etag');
  const contentType = response.headers.get('content-type');
  const size = Number.isFinite(length) && length >= 0 ? length : 0;
  return {
    key,
    size,
    // Without an ETag, the modification time and length stand in for one: they change with the content.
    ...(etag ? { etag } : Number.isFinite(modified) ? { etag: `W/"${size}-${modified}"` } : {}),
    ...(Number.isFinite(modified) ? { modifiedAt: modified } : {}),
    ...(contentType ? { contentType } : {}),
  };
}
