/** The live event stream. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { LiveEvents } from '../events.js';
import { ErrorBodySchema, LiveEventsQuerySchema } from '../schemas.js';

export function eventRoutes(live: LiveEvents): FastifyPluginAsyncZod {
  return async (app) => {
    app.get(
      '/events',
      {
        schema: {
          summary:
            'A text/event-stream of `run`, `task` and `log` events (resumable with Last-Event-ID; `: ping` every 15 s)',
          tags: ['events'],
          querystring: LiveEventsQuerySchema,
          response: { 400: ErrorBodySchema },
        },
      },
      (request, reply) => {
        live.stream(request, reply, {
          ...(request.query.run !== undefined ? { run: request.query.run } : {}),
          ...(request.query.flow !== undefined ? { flow: request.query.flow } : {}),
        });
      },
    );
  };
}
