/**
 * What one task run sees of its run: the outputs of its upstream tasks, the `tasks.<id>`
 * its templates read, and, inside a map or a failure handler, its item and the error it
 * handles. Read from the run's folded state; shared by local attempts, dispatches to
 * workers, and the actions the engine carries out itself.
 */
import type { TaskError, TaskSpec } from '../core/model.js';
import type { RunState } from '../core/run-machine.js';
import {
  instanceOf,
  itemValueOf,
  localIdOf,
  siblingIndex,
  taskIdOf,
  taskSpecOf,
  upstreamOf,
} from '../core/run-topology.js';
import type { TaskScope } from './attempt-runner.js';
import { referencedTasks } from './attempt-runner.js';

/** A map item as templates read it: `map.index`, `map.item`, and the enclosing map's as `map.outer`. */
export interface MapScope {
  readonly index: number;
  readonly item: unknown;
  readonly outer: MapScope | null;
}

/** What a task run adds to the template scope and to its context beyond params and tasks. */
export interface TaskRunExtras {
  /** The task run's id (`process[3]` for a map instance). */
  readonly taskRunId: string;
  readonly map: MapScope | null;
  /** For a failure handler: the error of the task it handles. */
  readonly error: TaskError | null;
}

export function mapScopeOf(state: RunState, i: number): MapScope | null {
  const instance = instanceOf(state, i);
  if (!instance) return null;
  return { index: instance.item, item: itemValueOf(state, instance), outer: mapScopeOf(state, instance.parent) };
}

export function extrasOf(state: RunState, i: number): TaskRunExtras {
  const spec = taskSpecOf(state, i);
  let error: TaskError | null = null;
  if (spec.handles !== undefined) {
    const target = siblingIndex(state, i, spec.handles);
    error = target === undefined ? null : (state.tasks[target]?.error ?? null);
  }
  return { taskRunId: taskIdOf(state, i), map: mapScopeOf(state, i), error };
}

/** Outputs of the direct upstream task runs that succeeded, by their local id. */
export function upstreamOutputsOf(state: RunState, i: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const u of upstreamOf(state, i)) {
    const t = state.tasks[u];
    if (t?.state === 'succeeded') out[localIdOf(state, u)] = t.output;
  }
  return out;
}

/** `tasks.<id>` for templates: direct upstream task runs and any task the templates name. */
export function scopeTasksOf(state: RunState, i: number): Record<string, TaskScope> {
  const out: Record<string, TaskScope> = {};
  const add = (name: string, k: number) => {
    const t = state.tasks[k];
    if (!t || name in out) return;
    out[name] = t.state === 'succeeded' ? { state: t.state, output: t.output } : { state: t.state };
  };
  for (const u of upstreamOf(state, i)) add(localIdOf(state, u), u);
  const spec: TaskSpec = taskSpecOf(state, i);
  for (const name of referencedTasks(spec)) {
    const k = siblingIndex(state, i, name);
    if (k !== undefined) add(name, k);
  }
  return out;
}
