/**
 * The context a task body receives. `signal` is a getter of the class, not of each
 * context: an accessor of an object's own makes V8 build it as a slow dictionary object
 * (a kilobyte and microseconds per attempt), and the AbortSignal behind it is made only
 * when a body reads it (see AttemptController).
 */
import type { TaskError } from '../core/model.js';
import type { AttemptContext, TaskLogger } from '../core/task-context.js';
import type { AttemptController } from './attempt-controller.js';

/** What a context is made from: the public context less what the class derives itself. */
export type AttemptContextFields = Omit<AttemptContext, 'signal' | 'item' | 'mapIndex' | 'error'>;

export class TaskAttemptContext implements AttemptContext {
  readonly runId: string;
  readonly flow: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly idempotencyKey: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, unknown>>;
  readonly upstream: Readonly<Record<string, unknown>>;
  readonly log: TaskLogger;
  // Declared only: a context outside a map or a handler has none of these keys.
  declare readonly item?: unknown;
  declare readonly mapIndex?: number;
  declare readonly error?: TaskError | null;
  readonly #controller: AttemptController;

  constructor(
    fields: AttemptContextFields,
    controller: AttemptController,
    map: { readonly item: unknown; readonly index: number } | null,
    error: TaskError | null,
  ) {
    this.runId = fields.runId;
    this.flow = fields.flow;
    this.taskId = fields.taskId;
    this.attempt = fields.attempt;
    this.idempotencyKey = fields.idempotencyKey;
    this.params = fields.params;
    this.inputs = fields.inputs;
    this.upstream = fields.upstream;
    this.log = fields.log;
    this.#controller = controller;
    const self = this as { item?: unknown; mapIndex?: number; error?: TaskError | null };
    if (map) {
      self.item = map.item;
      self.mapIndex = map.index;
    }
    if (error) self.error = error;
  }

  /** Aborted on cancellation or timeout; made on first read. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }
}
