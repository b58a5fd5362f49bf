/**
 * The first event of every run. The stores write it when they create the run, and the
 * engine folds the same event when it holds a run whose creating commit is still to come
 * (CommitEntry.create): built here once, so that the two can never differ.
 */
import type { RunEvent } from '../core/run-machine.js';
import type { NewRun } from './store.js';

/** The `run_created` event of a new run. */
export function runCreatedEvent(input: NewRun): RunEvent {
  return {
    type: 'run_created',
    at: input.createdAt,
    flow: input.flow.flow,
    version: input.flow.version,
    params: input.params,
    ...(input.tasks ? { tasks: input.tasks } : {}),
  };
}
