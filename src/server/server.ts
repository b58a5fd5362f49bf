/**
 * The Baton server: one port for the web UI (`/`), the JSON API (`/api/v1`) and the
 * webhooks (`/hooks/<trigger>`). It calls the application layer (src/app) as the CLI does.
 * The connection and size bounds of `limits.http_*` hold on the whole port.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifySwagger from '@fastify/swagger';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Runtime } from '../app/runtime.js';
import type { TriggerService } from '../triggers/trigger-service.js';
import type { HttpLimits } from '../triggers/webhook-server.js';
import { DEFAULT_HTTP_LIMITS, WebhookHandler, createBoundedServer, listenError } from '../triggers/webhook-server.js';
import { installErrorHandler, routeNotFound, sendError } from './errors.js';
import { LiveEvents } from './events.js';
import { loadUiFiles, sendUiFile } from './ui-files.js';
import type { LiveEventsOptions } from './events.js';
import { assetRoutes } from './routes/assets.js';
import { backfillRoutes } from './routes/backfills.js';
import { eventRoutes } from './routes/events.js';
import { flowRoutes } from './routes/flows.js';
import { metaRoutes } from './routes/meta.js';
import { runRoutes } from './routes/runs.js';
import { triggerRoutes } from './routes/triggers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The prebuilt web UI, when `npm run build` made it. */
export const DEFAULT_UI_DIR = resolve(ROOT, 'dist', 'ui');

/** This Baton's version. */
export function batonVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

export interface ServerOptions {
  readonly rt: Runtime;
  /** The web UI's files; the default is dist/ui of the package. Without index.html, `/` says how to build it. */
  readonly uiDir?: string;
  /**
   * Webhooks under `/hooks`: the trigger service that takes the events, and the environment
   * their secrets are read from. Absent: no `/hooks` routes.
   */
  readonly webhooks?: { readonly service: Pick<TriggerService, 'emit'>; readonly env: NodeJS.ProcessEnv };
  /** Size, time and connection bounds; each defaults to `rt.config.http`, then core/limits.ts. */
  readonly limits?: Partial<HttpLimits>;
  /** The shared scanner of live events. */
  readonly live?: LiveEventsOptions;
}

const NOT_BUILT = `<!doctype html>
<html><head><meta charset="utf-8"><title>Baton</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto">
<h1>Baton</h1>
<p>The web UI is not built. Run <code>npm run build</code> in the Baton package, then reload.</p>
<p>The API is served at <a href="/api/v1/openapi.json">/api/v1</a>.</p>
</body></html>
`;

/** A Baton server, not yet listening (`app.inject` works on it); `close` stops its live events too. */
export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...options.rt.config.http, ...options.limits };
  const app = Fastify({
    serverFactory: (handler) => createBoundedServer(limits, handler),
    bodyLimit: limits.bodyBytes,
    logger: false,
    return503OnClosing: true,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);

  const version = batonVersion();
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Baton HTTP API',
        version: 'v1',
        description: 'Runs, flows, triggers, backfills and assets of a Baton project (docs/http-api.md).',
      },
    },
    transform: jsonSchemaTransform,
  });

  const live = new LiveEvents(options.rt, options.live);
  await live.start();
  app.addHook('preClose', async () => {
    await live.close();
  });

  await app.register(
    async (api) => {
      await api.register(metaRoutes(options.rt, version));
      await api.register(flowRoutes(options.rt));
      await api.register(runRoutes(options.rt, live));
      await api.register(triggerRoutes(options.rt));
      await api.register(backfillRoutes(options.rt));
      await api.register(assetRoutes(options.rt));
      await api.register(eventRoutes(live));
    },
    { prefix: '/api/v1' },
  );

  if (options.webhooks) {
    const handler = new WebhookHandler({
      store: options.rt.store,
      service: options.webhooks.service,
      bodyBytes: limits.bodyBytes,
      env: options.webhooks.env,
    });
    // The webhook handler reads the raw body itself (its signature covers the bytes as
    // sent): it takes the request before Fastify parses anything.
    const takeOver = async (request: FastifyRequest, reply: FastifyReply) => {
      reply.hijack();
      await handler.handle(request.raw, reply.raw);
    };
    for (const url of ['/hooks', '/hooks/*']) {
      app.route({
        method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
        url,
        schema: { hide: true },
        onRequest: takeOver,
        // Never reached: the onRequest hook answers every call.
        handler: () => {},
      });
    }
  }

  const uiDir = options.uiDir ?? DEFAULT_UI_DIR;
  const ui = existsSync(join(uiDir, 'index.html')) ? loadUiFiles(uiDir) : null;
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    if (path === '/api' || path.startsWith('/api/') || (request.method !== 'GET' && request.method !== 'HEAD')) {
      return sendError(reply, routeNotFound(request));
    }
    if (!ui) return reply.type('text/html; charset=utf-8').send(NOT_BUILT);
    // A file of the UI, or else one of its pages, which the UI routes in the browser: its index.html.
    const file = ui.get(path) ?? (path.startsWith('/assets/') ? undefined : ui.get('/index.html'));
    if (!file) return sendError(reply, routeNotFound(request));
    return sendUiFile(reply, file, request.headers['if-none-match']);
  });
  return app;
}

/** A server listening, with its address. */
export interface RunningServer {
  readonly app: FastifyInstance;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Builds the server and listens on `host:port` (port 0: any free one). A port taken is
 * PORT_IN_USE, any other failure to listen USAGE; either way nothing is left listening.
 */
export async function startServer(
  options: ServerOptions & { readonly host?: string; readonly port?: number; readonly portOption?: string },
): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 8420;
  const app = await buildServer(options);
  try {
    await app.listen({ host, port });
  } catch (error) {
    await app.close();
    throw listenError(error, host, port, options.portOption, 'serve the UI and API');
  }
  const bound = (app.server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    app,
    port: bound,
    url: `http://${shown}:${bound}/`,
    async close() {
      await app.close();
      app.server.closeAllConnections?.();
    },
  };
}
