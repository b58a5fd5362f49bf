/**
 * Rules of the tasks that stand apart from the graph: a finally task (runs once every
 * other task ended) and a failure handler (starts when its task fails). Problems name the
 * key that breaks the rule.
 */
import {
  errorSelectorProblem,
  type AddProblem,
  type DraftCatch,
  type DraftTask,
  type StructureProblem,
} from './flow-draft.js';
import type { KeyPath } from './flow-schema.js';

/** What a finally task may not have: edges, a trigger rule, a map, a choice, a race, a handler. */
export function checkFinally(d: DraftTask, depth: number, word: string, add: AddProblem): void {
  const at = d.finally as KeyPath;
  const not = (path: KeyPath, message: string, hint: string, where: StructureProblem['at'] = 'key') =>
    add('DEF_INVALID', path, message, hint, where);
  if (depth > 0)
    not(at, 'finally applies to tasks of the flow, not to tasks inside a map', 'Move the task out of the map.');
  if (d.dependsOn.length > 0)
    not(d.dependsOnPath, `a finally task runs once every other task ended; it takes no ${word}`, `Remove ${word}.`);
  if (d.triggerRule)
    not(
      d.triggerRule.path,
      'a finally task runs however the run ends; it takes no trigger rule',
      'Remove the trigger rule.',
    );
  if (d.map) not(d.map.path, 'a finally task cannot be a map', 'Map in another task; keep finally for cleanup.');
  if (d.choice) not(d.choice.path, 'a finally task cannot be a choice', 'Remove finally.');
  if (d.race) not(d.race.path, 'a finally task cannot be a race', 'Remove finally.');
  if (d.onFailure)
    not(
      d.onFailure.path,
      'a finally task takes no on_failure handler',
      'Handle the failure inside the task, or remove on_failure.',
    );
}

/** What a failure handler may not have: it starts when its task fails, and runs one body. */
export function checkHandler(h: DraftTask, of: string, c: DraftCatch, word: string, add: AddProblem): void {
  const not = (path: KeyPath, message: string, hint: string) => add('DEF_INVALID', path, message, hint, 'key');
  if (h.dependsOn.length > 0)
    not(h.dependsOnPath, `a handler starts when ${of} fails; it takes no ${word}`, `Remove ${word} from the handler.`);
  if (h.triggerRule)
    not(h.triggerRule.path, `a handler starts when ${of} fails; it takes no trigger rule`, 'Remove the trigger rule.');
  if (h.group) not(h.group.path, 'a handler belongs to no group', 'Remove group from the handler.');
  if (h.map) not(h.map.path, 'a handler cannot be a map', 'Give the handler one task body.');
  if (h.choice) not(h.choice.path, 'a handler cannot be a choice', 'Give the handler one task body.');
  if (h.race) not(h.race.path, 'a handler cannot be a race', 'Give the handler one task body.');
  if (h.finally) not(h.finally, 'a handler cannot be a finally task', 'Remove finally from the handler.');
  if (h.onFailure) not(h.onFailure.path, 'a handler takes no on_failure of its own', 'Remove the nested on_failure.');
  for (const ref of c.on) {
    const bad = errorSelectorProblem(ref.name);
    if (bad) add('DEF_INVALID', ref.path, bad.message, bad.hint);
  }
}
