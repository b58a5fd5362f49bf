/**
 * The context a task body receives. `signal` is a getter of the class, not of each
 * context: an accessor of an object's own makes V8 build it as a slow dictionary object
 * (a kilobyte and microseconds per attempt), and the AbortSignal behind it is made only
 * when a body reads it (see AttemptController).
 */
import type { TaskError } from '../core/model.js';
import { BatonError } from '../core/errors.js';
import type { AttemptContext, TaskData, TaskDataProvider, TaskLogger } from '../core/task-context.js';
import type { AttemptController } from './attempt-controller.js';

/** What a context is made from: the public context less what the class derives itself. */
export type AttemptContextFields = Omit<AttemptContext, 'signal' | 'item' | 'mapIndex' | 'error' | 'data'>;

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
  readonly #dataProvider: TaskDataProvider | undefined;
  #data: TaskData | undefined;

  constructor(
    fields: AttemptContextFields,
    controller: AttemptController,
    map: { readonly item: unknown; readonly index: number } | null,
    error: TaskError | null,
    data?: TaskDataProvider,
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
    this.#dataProvider = data;
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

  /** The data namespace for this attempt; made on first read. */
  get data(): TaskData {
    if (!this.#data) {
      if (!this.#dataProvider) {
        throw new BatonError('USAGE', `task ${this.taskId}: this engine was started without a data namespace`, {
          hint: 'Start runs through the runtime (`baton run`, the client), which gives tasks the mounts of baton.yaml.',
        });
      }
      this.#data = this.#dataProvider({ runId: this.runId, taskId: this.taskId, attempt: this.attempt });
    }
    return this.#data;
  }
}
