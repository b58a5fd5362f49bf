/**
 * A Node service that starts Baton runs and awaits their results: an HTTP endpoint
 * `POST /quotes` with `{ "sku": "pro-7", "quantity": 3 }` starts a run of the quote flow and
 * answers with the run's result. Runs are durable: they are rows in the store, executed by
 * the worker in this process (or by any `baton worker` on the same store), and a request
 * repeated with the same `Idempotency-Key` header gets the same run.
 *
 * Run it from the repository root (after `npm run build`):
 *   npx tsx examples/service/service.ts            # SQLite file examples/service/.baton/baton.db
 *   BATON_DATABASE_URL=postgres://… npx tsx examples/service/service.ts   # or BATON_DATABASE=file.db
 *   curl -s localhost:3000/quotes -d '{"sku":"pro-7","quantity":3}'
 * SIGINT or SIGTERM drains the worker (running attempts finish) and closes the store.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { BatonError, openClient, type BatonClient } from 'baton-orchestrator';
import { quote, total } from './flows.js';

export interface ServiceOptions {
  /** A SQLite file or a postgres:// URL. */
  readonly database: string;
  /** 0 picks a free port. */
  readonly port: number;
}

export interface Service {
  readonly baton: BatonClient;
  readonly server: Server;
  readonly port: number;
  /** Stops taking requests, drains the worker, closes the store. */
  stop(): Promise<void>;
}

/** How long a request waits for its run before it answers 202 with the run's id instead. */
const ANSWER_WITHIN_MS = 10_000;

export async function startService(options: ServiceOptions): Promise<Service> {
  const baton = await openClient({ database: options.database, flows: [quote] });
  // This process executes runs too; more workers may run anywhere on the same store.
  const worker = baton.startWorker({ concurrency: 8 });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const runMatch = /^\/runs\/([A-Za-z0-9]+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && runMatch) {
      const status = await baton.status(runMatch[1] as string);
      return send(res, 200, { id: status.id, state: status.state });
    }
    if (req.method !== 'POST' || req.url !== '/quotes') return send(res, 404, { error: 'not found' });
    const body = JSON.parse(await readBody(req)) as { sku?: string; quantity?: number };
    const key = req.headers['idempotency-key'];
    const run = await baton.start(
      quote,
      { sku: String(body.sku ?? ''), ...(body.quantity !== undefined ? { quantity: body.quantity } : {}) },
      { output: total, ...(typeof key === 'string' ? { dedupeKey: `quote:${key}` } : {}) },
    );
    try {
      // Typed by the `total` task: { sku: string; quantity: number; total: number }.
      const result = await run.result({ timeoutMs: ANSWER_WITHIN_MS });
      return send(res, 200, { run: run.id, ...result });
    } catch (error) {
      if (error instanceof BatonError && error.code === 'RUN_WAIT_TIMEOUT') {
        return send(res, 202, { run: run.id, state: 'running', poll: `/runs/${run.id}` });
      }
      throw error;
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      const code = error instanceof BatonError ? error.code : 'INTERNAL';
      const status =
        code === 'RUN_PARAM_INVALID' || code === 'PAYLOAD_TOO_LARGE' ? 400 : code === 'RUN_NOT_FOUND' ? 404 : 500;
      send(res, status, { error: code, message: (error as Error).message });
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  let stopping: Promise<void> | undefined;
  return {
    baton,
    server,
    port,
    stop: () =>
      (stopping ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await worker.drain();
        await baton.close();
      })()),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > 64 * 1024) throw new BatonError('PAYLOAD_TOO_LARGE', 'the request body is over 64 KiB');
  }
  return text || '{}';
}

// Run as a program (not imported by the test): listen until SIGINT or SIGTERM.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const database =
    process.env.BATON_DATABASE_URL ??
    process.env.BATON_DATABASE ??
    fileURLToPath(new URL('./.baton/baton.db', import.meta.url));
  const service = await startService({ database, port: Number(process.env.PORT ?? 3000) });
  console.log(`quote service on http://127.0.0.1:${service.port}/quotes (store: ${service.baton.dialect})`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.log(`${signal}: draining`);
      void service.stop().then(() => console.log('stopped'));
    });
  }
}
