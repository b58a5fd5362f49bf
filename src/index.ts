/**
 * Baton's public API for flow authors: the flow builder and the types a task sees.
 */
export { defineFlow, FlowDefinition } from './define/builder.js';
export type {
  DurationInput,
  FlowOptions,
  FlowTaskContext,
  FunctionTaskOptions,
  ParamDef,
  ParamValues,
  RetryInput,
  ShellTaskOptions,
  TaskRef,
} from './define/builder.js';
export type { AttemptContext, TaskLogger } from './core/task-context.js';
export { BatonError, ERROR_CODES } from './core/errors.js';
export type { ErrorCode } from './core/errors.js';
