/**
 * The history as a contract. Every stored event and every pinned flow definition carries
 * the format it was written in (`v`); a history written before formats were numbered has
 * none and reads as format 1. A Baton reads every format up to HISTORY_FORMAT and refuses
 * a newer one (HISTORY_TOO_NEW) rather than guess at fields it does not know. An event
 * that is illegal in the state its run or task is in is RUN_INVALID_TRANSITION: the
 * history is never bent to fit.
 *
 * Raise HISTORY_FORMAT when the meaning of a stored event or of the pinned spec changes,
 * teach the fold to read the older formats, and record new histories under
 * test/fixtures/histories (every recorded history must still fold to its final state).
 *
 * Formats: 1, the events and the pinned definition as they are; 2, the same events, and
 * the pinned definition's tasks stored compactly (compact-tasks.ts) when they can be; 3, as
 * 2, and a `run_created` may name the only tasks its run runs (`tasks`, the run of `baton
 * asset materialize`): a Baton that ignored the field would run the whole flow.
 */
import { compactTasks, restoreTasks, type CompactTasks } from './compact-tasks.js';
import { BatonError } from './errors.js';
import type { FlowSpec, TaskSpec } from './model.js';
import type { RunEvent } from './run-types.js';

/** The format this Baton writes, and the newest it reads. */
export const HISTORY_FORMAT = 3;

/** The first format whose pinned definitions may hold their tasks in the compact form. */
const COMPACT_TASKS_FORMAT = 2;

/** The format of a history written before events carried one. */
const UNNUMBERED_FORMAT = 1;

/** The event as it is stored: stamped with the format it is written in. */
export function versionedEvent(event: RunEvent): RunEvent {
  return { v: HISTORY_FORMAT, ...event };
}

const FORMAT_PREFIX = `{"v":${HISTORY_FORMAT},`;

/**
 * `JSON.stringify(versionedEvent(event))`, the same text, without copying the event first
 * (a commit writes thousands): the format goes in front of the event's own fields.
 */
export function versionedEventJson(event: RunEvent): string {
  const text = JSON.stringify(event);
  // An event that carries a format already, or has no field, is copied as before.
  if (Object.hasOwn(event, 'v') || text.length <= 2) return JSON.stringify(versionedEvent(event));
  return FORMAT_PREFIX + text.slice(1);
}

/**
 * The format of a stored event (of its `v`), checked: a format newer than this Baton
 * reads is HISTORY_TOO_NEW, one that is no format at all is RUN_INVALID_TRANSITION.
 */
export function eventFormat(runId: string, event: RunEvent): number {
  const v: unknown = event.v;
  if (v === undefined) return UNNUMBERED_FORMAT;
  return checkFormat(v, `run ${runId}: its ${String((event as { type?: unknown }).type)} event`, runId);
}

function checkFormat(v: unknown, what: string, runId: string | null): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new BatonError('RUN_INVALID_TRANSITION', `${what} has format version ${JSON.stringify(v)}, which is none`, {
      details: { ...(runId === null ? {} : { runId }), format: v ?? null },
    });
  }
  if (v > HISTORY_FORMAT) {
    throw new BatonError(
      'HISTORY_TOO_NEW',
      `${what} is written in history format ${v}; this Baton reads formats up to ${HISTORY_FORMAT}`,
      {
        hint: 'Upgrade Baton to the version that wrote it (or a newer one); an older Baton cannot read a newer history.',
        details: { ...(runId === null ? {} : { runId }), format: v, known: HISTORY_FORMAT },
      },
    );
  }
  return v;
}

/**
 * The JSON of a flow definition as it is pinned in the store, stamped with its format:
 * `tasks` is the compact form (an object, `{ defaults, list }`) when the tasks have one,
 * else the array of tasks as they are.
 */
export function pinSpec(spec: FlowSpec): string {
  const compact = compactTasks(spec.tasks);
  return JSON.stringify(compact ? { v: HISTORY_FORMAT, ...spec, tasks: compact } : { v: HISTORY_FORMAT, ...spec });
}

/**
 * Reads a pinned flow definition (`what` names it in errors: `flow x version y`). The
 * stamp is taken off and compact tasks are restored, so that the definition is the one
 * pinned, to the byte, and hashes to the version it was pinned under.
 */
export function readPinnedSpec(json: string, what: string): FlowSpec {
  const parsed = JSON.parse(json) as Omit<FlowSpec, 'tasks'> & { v?: unknown; tasks: TaskSpec[] | CompactTasks };
  if (parsed.v === undefined) return parsed as FlowSpec;
  const format = checkFormat(parsed.v, `the pinned definition of ${what}`, null);
  const { v: _format, ...spec } = parsed;
  if (format >= COMPACT_TASKS_FORMAT && !Array.isArray(spec.tasks)) spec.tasks = restoreTasks(spec.tasks);
  return spec as FlowSpec;
}

/** The error for an event that the state of its run or task does not allow. */
export function invalidTransition(
  runId: string,
  event: string,
  state: string,
  task: string | null,
  why = '',
): BatonError {
  const subject = task === null ? 'the run' : `task ${task}`;
  return new BatonError(
    'RUN_INVALID_TRANSITION',
    `run ${runId}: illegal transition: ${event} for ${subject} in state ${state}${why ? ` (${why})` : ''}`,
    { details: { runId, state, event, ...(task === null ? {} : { task }) } },
  );
}
