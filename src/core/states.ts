/**
 * State names of runs and task runs, as the CLI, `--json` output and the store spell
 * them. Each set is one const object; the type derives from it.
 */

export const RUN_STATES = {
  queued: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  cancelled: 'cancelled',
} as const;
export type RunStateName = (typeof RUN_STATES)[keyof typeof RUN_STATES];
export const TERMINAL_RUN_STATES: ReadonlySet<RunStateName> = new Set(['succeeded', 'failed', 'cancelled']);

export const TASK_STATES = {
  pending: 'pending',
  queued: 'queued',
  running: 'running',
  retrying: 'retrying',
  /** Parked: a sleep, an event, an approval, a child run, or the items of a map. */
  waiting: 'waiting',
  succeeded: 'succeeded',
  failed: 'failed',
  skipped: 'skipped',
  cancelled: 'cancelled',
} as const;
export type TaskStateName = (typeof TASK_STATES)[keyof typeof TASK_STATES];
export const TERMINAL_TASK_STATES: ReadonlySet<TaskStateName> = new Set([
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
]);

export function isTerminalTask(state: TaskStateName): boolean {
  return TERMINAL_TASK_STATES.has(state);
}

export function isTerminalRun(state: RunStateName): boolean {
  return TERMINAL_RUN_STATES.has(state);
}

export const TRIGGER_RULES = [
  'all_success',
  'all_failed',
  'all_done',
  'one_success',
  'one_failed',
  'none_failed',
  'none_failed_min_one_success',
  'always',
  'k_of_n',
] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];
