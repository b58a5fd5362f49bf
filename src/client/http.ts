/**
 * The wire of the remote client: JSON requests to a Baton server's `/api/v1` with the global
 * fetch (which keeps connections alive), its error answers turned back into the BatonErrors
 * the server threw, and its live event stream read as Server-Sent Events from the response
 * body. Loads no server code: the shapes come from src/server/schemas.ts as types only.
 */
import { BatonError, ERROR_CODES } from '../core/errors.js';
import type { ErrorCode, Problem } from '../core/errors.js';
import type { ErrorBody } from '../server/schemas.js';

/** One event of a text/event-stream. */
export interface StreamEvent {
  readonly event: string;
  readonly data: string;
}

const isErrorCode = (code: string): code is ErrorCode => Object.hasOwn(ERROR_CODES, code);
const isProblem = (p: unknown): p is Problem =>
  typeof p === 'object' &&
  p !== null &&
  typeof (p as Problem).message === 'string' &&
  isErrorCode(String((p as Problem).code));

/** The BatonError an error answer carries; INTERNAL for a code this client does not know. */
export function errorFromAnswer(status: number, text: string, what: string): BatonError {
  let body: ErrorBody | undefined;
  try {
    body = JSON.parse(text) as ErrorBody;
  } catch {
    body = undefined;
  }
  const error = body?.error;
  if (!error || typeof error.code !== 'string') {
    return new BatonError('SERVER_UNREACHABLE', `${what} answered HTTP ${status}, not a Baton error`, {
      details: { status, body: text.slice(0, 500) },
    });
  }
  // The server sends an error's problems among its details: they are the error's again here.
  const { problems, ...details } = error.details ?? {};
  if (!isErrorCode(error.code)) {
    return new BatonError('INTERNAL', `${what}: ${error.code}: ${error.message}`, {
      details: { ...details, code: error.code, status },
    });
  }
  return new BatonError(error.code, error.message, {
    ...(error.hint !== null ? { hint: error.hint } : {}),
    ...(Array.isArray(problems) ? { problems: problems.filter(isProblem) } : {}),
    details,
  });
}

/** A server at a base URL, spoken to in JSON. */
export class HttpApi {
  private readonly base: string;

  constructor(
    url: string,
    private readonly headers: Readonly<Record<string, string>> = {},
  ) {
    this.base = url.replace(/\/+$/, '');
  }

  /** The server's address, for messages. */
  get url(): string {
    return this.base;
  }

  private async send(method: string, path: string, body: unknown, accept: string, signal?: AbortSignal) {
    try {
      return await fetch(`${this.base}/api/v1${path}`, {
        method,
        headers: {
          accept,
          ...this.headers,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
      throw new BatonError('SERVER_UNREACHABLE', `cannot reach the Baton server at ${this.base}: ${reason}`, {
        cause: error,
        details: { url: this.base },
      });
    }
  }

  /** Sends a request and returns its JSON answer; an error answer is thrown as its BatonError. */
  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.send(method, path, body, 'application/json', signal);
    const text = await res.text();
    const what = `${method} ${this.base}/api/v1${path.split('?')[0]}`;
    if (!res.ok) throw errorFromAnswer(res.status, text, what);
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new BatonError('SERVER_UNREACHABLE', `${what} answered something that is not JSON`, {
        cause: error,
        details: { status: res.status, body: text.slice(0, 500) },
      });
    }
  }

  /**
   * Opens a text/event-stream: resolves once the server has answered (and so listens for
   * this client), with its events until the server ends it or `signal` aborts. Comment
   * lines (`: ping`) and ids are dropped.
   */
  async stream(path: string, signal: AbortSignal): Promise<AsyncGenerator<StreamEvent, void, undefined>> {
    const res = await this.send('GET', path, undefined, 'text/event-stream', signal);
    if (!res.ok) throw errorFromAnswer(res.status, await res.text(), `GET ${this.base}/api/v1${path}`);
    return readEvents(res);
  }
}

/** The events of a text/event-stream answer, as they arrive. */
async function* readEvents(res: Response): AsyncGenerator<StreamEvent, void, undefined> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const parsed = parseBlock(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (parsed) yield parsed;
    }
  }
}

/** One event block of a stream; null for a block of comments only. */
function parseBlock(block: string): StreamEvent | null {
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const at = line.indexOf(':');
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length === 0 ? null : { event, data: data.join('\n') };
}
