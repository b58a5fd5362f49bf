/**
 * The error task code throws to fail with a code and a kind of its own, so that retry
 * policies and failure handlers can match on it (`retry_on: [RATE_LIMITED]`,
 * `on_failure: { on: [transient] }`). Any error with string `code` and `kind` properties
 * works the same; this class just types them.
 *
 * @example
 * throw new TaskFailure('the API is rate limiting us', { code: 'RATE_LIMITED', kind: 'transient' });
 */
import type { ErrorKind } from './model.js';

export interface TaskFailureOptions {
  /** A code of your own (upper snake case by convention). Default `TASK_FAILED`. */
  readonly code?: string;
  /** The family of the error; see ERROR_KINDS. Default: derived from the code, else `error`. */
  readonly kind?: ErrorKind;
  /** JSON data recorded with the failure (shown by `baton show`, given to handlers). */
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
}

export class TaskFailure extends Error {
  readonly code: string;
  readonly kind: ErrorKind | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(message: string, options: TaskFailureOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TaskFailure';
    this.code = options.code ?? 'TASK_FAILED';
    this.kind = options.kind;
    this.details = options.details;
  }
}
