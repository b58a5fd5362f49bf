/**
 * A minimal HTTP listener for webhook triggers: `POST /hooks/<trigger>` (or
 * `/hooks/<flow>/<trigger>` when a name is used by several flows). With `secret_env` set on
 * the trigger, the request must carry `X-Baton-Signature: sha256=<hex HMAC-SHA256 of the
 * raw body>`. The JSON body (an object) becomes the run's params after validation. An
 * `Idempotency-Key` header makes a repeated delivery return the same run.
 *
 * Answers: 202 with the run id; 400 malformed body; 401 bad or missing signature; 404 no
 * such webhook; 409 paused or ambiguous; 413 body too large; 422 params refused. A refused
 * request creates no run.
 *
 * The listener faces whatever can reach its port, so that every connection is bounded
 * (the `http_*` limits of core/limits.ts): headers within the header timeout, the whole
 * call within the header and body timeouts, an idle kept-alive connection within the idle
 * timeout, and no more than `connections` at once. A slow or stalled client is answered
 * 408 and disconnected; one over the limit is disconnected at once.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BatonError } from '../core/errors.js';
import { LIMITS, limitExceeded } from '../core/limits.js';
import type { Store, TriggerRecord } from '../store/store.js';
import type { TriggerService } from './trigger-service.js';

export interface WebhookServerOptions {
  readonly store: Store;
  /** Where events go; only `emit` is used, so that a caller may swap services behind it. */
  readonly service: Pick<TriggerService, 'emit'>;
  readonly host?: string;
  readonly port?: number;
  /** How the user picks another port, for the PORT_IN_USE hint (e.g. `--port <n>`). */
  readonly portOption?: string;
  /** Size, time and connection bounds; each defaults to its entry in core/limits.ts. */
  readonly limits?: Partial<HttpLimits>;
  /** Environment the secrets are read from. */
  readonly env: NodeJS.ProcessEnv;
}

/** What a listener accepts (`limits.http_*` of baton.yaml). */
export interface HttpLimits {
  /** Largest body, in bytes (413 over it). */
  readonly bodyBytes: number;
  /** Time for the request line and headers, in ms. */
  readonly headerTimeoutMs: number;
  /** Time for the body, in ms: a call must be complete within header + body timeouts of its first byte. */
  readonly bodyTimeoutMs: number;
  /** Time an idle kept-alive connection stays open, in ms. */
  readonly idleTimeoutMs: number;
  /** Connections open at once; more are closed as they come. */
  readonly connections: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  bodyBytes: LIMITS.http_body_bytes.default,
  headerTimeoutMs: LIMITS.http_header_timeout_ms.default,
  bodyTimeoutMs: LIMITS.http_body_timeout_ms.default,
  idleTimeoutMs: LIMITS.http_idle_timeout_ms.default,
  connections: LIMITS.http_connections.default,
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        // Keep reading (and dropping) the rest so that the client gets its 413.
        over = true;
        chunks.length = 0;
        const error = limitExceeded('http_body_bytes', 'its body', 'the call', { limit });
        reject(new HttpError(413, 'PAYLOAD_TOO_LARGE', error.message, error.hint));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    // A connection cut mid-body (the request timeout, the client gone) ends no `end`: settle.
    req.on('close', () => {
      if (!req.complete) reject(new HttpError(400, 'USAGE', 'the connection closed before the body was complete'));
    });
  });
}

/** How long, and how many bytes, a refused call's remaining body is read before the answer. */
const DRAIN_MS = 5_000;
const DRAIN_BYTES = 64 * 1024 * 1024;

/**
 * Reads and drops what is left of a request's body, until it ends, the connection closes,
 * or the drain's time or byte bound is reached (a client that keeps sending past those is
 * answered anyway, and may miss the answer: it was sending far more than any limit).
 */
function drainBody(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    if (req.destroyed) return resolve();
    let bytes = 0;
    const done = () => {
      clearTimeout(timer);
      req.off('data', count);
      req.off('end', done);
      req.off('close', done);
      resolve();
    };
    const count = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > DRAIN_BYTES) done();
    };
    const timer = setTimeout(done, DRAIN_MS);
    req.on('data', count);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}

/**
 * Node's own bounds for these limits. A call gets the header and body timeouts together
 * (`requestTimeout` counts from its first byte, and must not be below `headersTimeout`).
 * Node looks for expired calls every `connectionsCheckingInterval` (30 s by default, which
 * would add up to 30 s to every timeout): a quarter of the shortest one, at most a second.
 */
export function serverOptions(limits: HttpLimits): ServerOptions {
  const requestTimeout = limits.headerTimeoutMs + limits.bodyTimeoutMs;
  return {
    headersTimeout: limits.headerTimeoutMs,
    requestTimeout,
    keepAliveTimeout: limits.idleTimeoutMs,
    maxHeaderSize: LIMITS.http_header_bytes.default,
    connectionsCheckingInterval: Math.max(
      25,
      Math.min(1000, Math.floor(Math.min(limits.headerTimeoutMs, limits.bodyTimeoutMs) / 4)),
    ),
  };
}

/**
 * An HTTP server held to `limits`: Node's own timeouts (serverOptions) and at most
 * `connections` open at once (past the limit Node closes each new connection as it is
 * accepted). Shared by the webhook listener and the Baton server, so that both face the
 * network with the same bounds.
 */
export function createBoundedServer(
  limits: HttpLimits,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  const server = createServer(serverOptions(limits), handler);
  server.maxConnections = limits.connections;
  return server;
}

/** Checks `sha256=<hex>` against the HMAC of the body, in constant time. */
export function verifySignature(secret: string, body: Buffer, header: string | undefined): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const given = Buffer.from(header.slice('sha256='.length), 'hex');
  const expected = createHmac('sha256', secret).update(body).digest();
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The error of a failed listen: PORT_IN_USE for a port taken, USAGE for anything else. */
export function listenError(
  error: unknown,
  host: string,
  port: number,
  portOption: string | undefined,
  what = 'serve webhooks',
): BatonError {
  const code = (error as NodeJS.ErrnoException).code;
  const another = portOption ? `pass another port with ${portOption}` : 'choose another port';
  const where = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (code === 'EADDRINUSE') {
    return new BatonError('PORT_IN_USE', `cannot ${what} on ${where}: port ${port} is already in use`, {
      hint: `Another process listens on port ${port} (another baton dev?). Stop it, or ${another}.`,
      details: { host, port },
      cause: error,
    });
  }
  return new BatonError('USAGE', `cannot ${what} on ${where}: ${(error as Error).message}`, {
    hint:
      code === 'EACCES'
        ? `Ports below 1024 need privileges: ${another}.`
        : 'Check the address: it must be one of this machine (127.0.0.1, 0.0.0.0 for every interface).',
    details: { host, port },
    cause: error,
  });
}

/** The answer to a BatonError raised while taking a delivery (a flow gone, the store away). */
function statusOf(error: BatonError): number {
  if (error.code === 'FLOW_NOT_FOUND') return 404;
  if (error.code.startsWith('STORE_')) return 503;
  return error.source === 'user' ? 422 : 500;
}

/** A path segment decoded; a malformed escape (`%ZZ`) names no trigger: 404, not an internal error. */
function decodePathPart(part: string, path: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(404, 'FLOW_NOT_FOUND', `no route ${path.slice(0, 200)}: it holds a malformed %-escape`);
  }
}

/** What the handling of a delivery needs: the store, the trigger service, the body limit, the secrets. */
export interface WebhookHandlerOptions {
  readonly store: Store;
  /** Where events go; only `emit` is used, so that a caller may swap services behind it. */
  readonly service: Pick<TriggerService, 'emit'>;
  /** Largest body, in bytes (413 over it). */
  readonly bodyBytes: number;
  /** Environment the secrets are read from. */
  readonly env: NodeJS.ProcessEnv;
}

/**
 * Takes webhook deliveries (`POST /hooks/<trigger>`, `/hooks/<flow>/<trigger>`) from a raw
 * Node request: used by the webhook listener below and by the Baton server's `/hooks` route.
 */
export class WebhookHandler {
  constructor(private readonly o: WebhookHandlerOptions) {}

  private async find(parts: string[]): Promise<TriggerRecord> {
    const hooks = (await this.o.store.listTriggers()).filter((t) => t.kind === 'webhook');
    const matches =
      parts.length === 2
        ? hooks.filter((t) => t.flow === parts[0] && t.name === parts[1])
        : hooks.filter((t) => t.name === parts[0]);
    if (matches.length === 0) throw new HttpError(404, 'FLOW_NOT_FOUND', `no webhook trigger named ${parts.join('/')}`);
    if (matches.length > 1) {
      throw new HttpError(
        409,
        'USAGE',
        `several flows have a webhook named ${parts[0]}: post to /hooks/<flow>/${parts[0]}`,
      );
    }
    return matches[0] as TriggerRecord;
  }

  /** Answers one request; never throws (every failure is answered with its status). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = async (status: number, body: Record<string, unknown>): Promise<void> => {
      // Refused before its body was read (a wrong method, an unknown route, a body over the
      // limit): read the rest before answering. Answering first and closing would leave
      // unread bytes on the socket, and the kernel then resets the connection, which throws
      // the answer away on the client's side before it reads it (EPIPE, no status).
      if (!req.complete) await drainBody(req);
      // A connection cut by a timeout (answered 408 by Node) or by the client takes no answer.
      if (req.socket.destroyed || res.writableEnded) return;
      res.writeHead(status, { 'content-type': 'application/json', ...(status === 413 ? { connection: 'close' } : {}) });
      res.end(JSON.stringify(body));
    };
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const parts = url.pathname.split('/').filter(Boolean);
      if (parts[0] !== 'hooks' || parts.length < 2 || parts.length > 3) {
        throw new HttpError(
          404,
          'FLOW_NOT_FOUND',
          `no route ${url.pathname.slice(0, 200)}; webhooks are at /hooks/<trigger>`,
        );
      }
      if (req.method !== 'POST') throw new HttpError(405, 'USAGE', 'webhooks take POST');
      const trigger = await this.find(parts.slice(1).map((part) => decodePathPart(part, url.pathname)));
      const body = await readBody(req, this.o.bodyBytes);
      const secretEnv = trigger.spec.config.secretEnv;
      if (typeof secretEnv === 'string') {
        const secret = this.o.env[secretEnv];
        if (!secret) {
          throw new HttpError(
            500,
            'CONFIG_INVALID',
            `webhook ${trigger.id}: environment variable ${secretEnv} is not set`,
          );
        }
        const header = req.headers['x-baton-signature'];
        if (!verifySignature(secret, body, Array.isArray(header) ? header[0] : header)) {
          throw new HttpError(
            401,
            'UNAUTHORIZED',
            'missing or wrong X-Baton-Signature (sha256=<hex HMAC-SHA256 of the body>)',
          );
        }
      }
      let params: unknown = {};
      if (body.length > 0) {
        try {
          params = JSON.parse(body.toString('utf8'));
        } catch (error) {
          throw new HttpError(400, 'USAGE', `the body is not JSON: ${(error as Error).message}`);
        }
      }
      if (params === null || typeof params !== 'object' || Array.isArray(params)) {
        throw new HttpError(400, 'USAGE', 'the body must be a JSON object of params');
      }
      const key = req.headers['idempotency-key'];
      const dedupeKey = `${trigger.id}#${typeof key === 'string' && key ? key : `${Date.now()}-${Math.random().toString(36).slice(2)}`}`;
      const [result] = await this.o.service.emit(trigger.id, [
        { dedupeKey, params: params as Record<string, unknown>, reason: `POST ${url.pathname}` },
      ]);
      if (!result || result.outcome === 'refused') {
        const error = result?.error;
        const status = error?.code === 'USAGE' ? 409 : 422;
        throw new HttpError(status, error?.code ?? 'RUN_PARAM_INVALID', error?.message ?? 'refused');
      }
      await send(202, { outcome: result.outcome, run_id: result.runId });
    } catch (error) {
      if (error instanceof HttpError) {
        const hint = error.hint === undefined ? {} : { hint: error.hint };
        await send(error.status, { error: { code: error.code, message: error.message, ...hint } });
      } else if (error instanceof BatonError)
        await send(statusOf(error), { error: { code: error.code, message: error.message } });
      else await send(500, { error: { code: 'INTERNAL', message: (error as Error).message } });
    }
  }
}

/** A listener of its own for webhooks (`baton scheduler --webhook-port`). */
export class WebhookServer {
  private server: Server | undefined;
  private readonly limits: HttpLimits;

  constructor(private readonly o: WebhookServerOptions) {
    this.limits = { ...DEFAULT_HTTP_LIMITS, ...o.limits };
  }

  /**
   * Starts listening; resolves with the bound port. A port taken by another process is
   * PORT_IN_USE, any other failure to listen (an address not of this machine, a port
   * below 1024 without the right) is USAGE; either way nothing is left listening.
   */
  async start(): Promise<number> {
    const handler = new WebhookHandler({
      store: this.o.store,
      service: this.o.service,
      bodyBytes: this.limits.bodyBytes,
      env: this.o.env,
    });
    const server = createBoundedServer(this.limits, (req, res) => void handler.handle(req, res));
    const host = this.o.host ?? '127.0.0.1';
    const port = this.o.port ?? 8787;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      server.close();
      throw listenError(error, host, port, this.o.portOption);
    }
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections?.();
  }
}
