/** Health, version and the OpenAPI document. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Runtime } from '../../app/runtime.js';
import { HealthSchema, VersionSchema } from '../schemas.js';

export function metaRoutes(rt: Runtime, version: string): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/health',
      {
        schema: {
          summary: 'Whether the server is up, and on which store',
          tags: ['meta'],
          response: { 200: HealthSchema },
        },
      },
      () => ({
        status: 'ok' as const,
        version,
        store: rt.store.dialect === 'sqlite' ? ('sqlite' as const) : ('postgres' as const),
      }),
    );
    app.get(
      '/version',
      { schema: { summary: 'The version of Baton and of the API', tags: ['meta'], response: { 200: VersionSchema } } },
      () => ({ version, api: 'v1' as const }),
    );
    app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
  };
}
