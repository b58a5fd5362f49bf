/**
 * Errors as HTTP answers: every failure is `{ error: { code, message, hint, details } }`
 * with a status from its Baton error code (400 malformed, 404 not found, 409 conflict,
 * 413 too large, 422 well-formed but refused, 500 otherwise).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { BatonError } from '../core/errors.js';
import type { ErrorCode } from '../core/errors.js';
import type { ErrorBody } from './schemas.js';

const NOT_FOUND: ReadonlySet<ErrorCode> = new Set([
  'ROUTE_NOT_FOUND',
  'FLOW_NOT_FOUND',
  'DEF_UNKNOWN_FLOW',
  'RUN_NOT_FOUND',
  'TASK_NOT_FOUND',
  'ASSET_NOT_FOUND',
  'BACKFILL_NOT_FOUND',
]);
const CONFLICT: ReadonlySet<ErrorCode> = new Set([
  'RUN_OWNED',
  'RUN_NOT_RETRYABLE',
  'RUN_INVALID_TRANSITION',
  'APPROVAL_NOT_WAITING',
  'STORE_CONFLICT',
  'RUN_AMBIGUOUS',
]);

/** The HTTP status of a Baton error. */
export function statusOfError(error: BatonError): number {
  if (NOT_FOUND.has(error.code)) return 404;
  if (CONFLICT.has(error.code)) return 409;
  if (error.code === 'PAYLOAD_TOO_LARGE') return 413;
  if (error.code === 'REQUEST_INVALID') return 400;
  if (error.code === 'APPROVER_NOT_ALLOWED') return 403;
  return error.source === 'user' ? 422 : 500;
}

/** The body of an error answer. */
export function errorBody(error: BatonError): ErrorBody {
  const details: Record<string, unknown> = { ...error.details };
  if (error.problems.length > 0) details.problems = error.problems;
  return {
    error: {
      code: error.code,
      message: error.message,
      hint: error.hint || null,
      details: Object.keys(details).length > 0 ? details : null,
    },
  };
}

/** Sends `error` as its answer. */
export function sendError(reply: FastifyReply, error: BatonError): FastifyReply {
  return reply.status(statusOfError(error)).type('application/json').send(errorBody(error));
}

/** A Fastify error (bad JSON, a body over the limit, a failed validation) as a Baton error. */
function fromFastify(error: FastifyError): BatonError {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation.map((v) => ({
      path: `${error.validationContext ?? ''}${v.instancePath}`,
      message: v.message ?? 'invalid',
    }));
    const text = issues.map((i) => `${i.path || 'request'}: ${i.message}`).join('; ');
    return new BatonError('REQUEST_INVALID', `invalid request: ${text}`, { details: { issues } });
  }
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new BatonError(
      'PAYLOAD_TOO_LARGE',
      `the body is over ${error.message.replace(/^.*?(\d+).*$/, '$1')} bytes`,
      {
        hint: 'Send less, or raise limits.http_body_bytes in baton.yaml.',
      },
    );
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new BatonError('REQUEST_INVALID', error.message, {
      hint:
        error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? 'Send the body as JSON with Content-Type: application/json.'
          : undefined,
    });
  }
  return new BatonError('INTERNAL', `a bug in Baton: ${error.message}`, { cause: error });
}

/** Answers every failure as JSON, and unknown routes under /api as ROUTE_NOT_FOUND. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const baton = error instanceof BatonError ? error : fromFastify(error);
    const status = statusOfError(baton);
    if (status >= 500) request.log.error({ err: error }, baton.message);
    return reply.status(status).type('application/json').send(errorBody(baton));
  });
}

/** The answer to a request for no route: ROUTE_NOT_FOUND. */
export function routeNotFound(request: FastifyRequest): BatonError {
  return new BatonError('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`);
}
