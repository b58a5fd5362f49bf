/**
 * What `${{ }}` expressions may read, checked where they are written: params the flow
 * declares, tasks upstream of the expression's task, and the roots that exist at that
 * place — `item` and `map` inside a map's template, `error` in an on_failure handler.
 * Shared by both front ends; every problem carries the key path of the string.
 */
import { collectReferences } from './expression.js';
import { formatPath, type KeyPath } from './flow-schema.js';
import { Suggester, listNames, suggest } from './suggest.js';

/** A value that may hold `${{ }}` templates, and where it is written. */
export interface TemplatedValue {
  readonly value: unknown;
  readonly path: KeyPath;
}

/** A set of task ids as the checks ask it: answered on demand, never listed. */
export interface TaskSet {
  has(id: string): boolean;
}

/** The task ids of a level for messages: the closest to a misspelt one, and a short listing. */
export interface TaskNames {
  suggest(name: string): string | undefined;
  /** `a, b, c` or, for many, the first ones and how many more. */
  listing(): string;
}

/** What an expression can see from where it is written. */
export interface ReadScope {
  /** The (local) id of the task the expression belongs to. */
  readonly self: string;
  /** Ids of the tasks at the same level: the flow's, or one map template's. */
  readonly local: ReadonlySet<string>;
  /** The local tasks it may read: those upstream of it. */
  readonly readable: TaskSet;
  /** Inside a map template: the flow's tasks, those the top-level map waits for, and that map. */
  readonly top?: { readonly ids: ReadonlySet<string>; readonly readable: TaskSet; readonly anchor: string };
  /** The tasks it could mean, for "did you mean" (by default made from `local` and `top` at each problem). */
  readonly names?: TaskNames;
  /** How many maps the expression is inside (0 at the top level). */
  readonly depth: number;
  /** In an on_failure handler: the task it handles. */
  readonly handles?: string;
  readonly params: readonly string[];
  /** How dependencies are written, for hints (`depends_on`, `after`). */
  readonly dependsOnWord: string;
}

export interface ReferenceProblem {
  readonly code: 'DEF_EXPRESSION';
  readonly path: KeyPath;
  readonly message: string;
  readonly hint: string;
  readonly at: 'value';
}

const TASK_FIELDS = ['output', 'state'];
const MAP_FIELDS = ['index', 'item', 'outer'];
const ERROR_FIELDS = ['code', 'kind', 'message'];

/** `a`, `a and b`, `a, b and c`. */
function listing(words: readonly string[], last = 'and'): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} ${last} ${words.at(-1) as string}`;
}

function rootsOf(scope: ReadScope): string[] {
  return ['params', 'tasks', 'run', ...(scope.depth > 0 ? ['item', 'map'] : []), ...(scope.handles ? ['error'] : [])];
}

/** Checks every expression inside `values`; returns the problems in the order written. */
export function checkReferences(values: readonly TemplatedValue[], scope: ReadScope): ReferenceProblem[] {
  const problems: ReferenceProblem[] = [];
  const add = (path: KeyPath, message: string, hint: string): void => {
    problems.push({ code: 'DEF_EXPRESSION', path, message, hint, at: 'value' });
  };
  for (let i = 0; i < values.length; i++) {
    // The value's key path is read only for a problem: a front end may make it on demand.
    const written = values[i] as TemplatedValue;
    const value = written.value;
    if (value === undefined) continue;
    const { references, problems: parse } = collectReferences(value);
    for (const p of parse)
      add(
        [...written.path, ...p.path],
        p.message,
        'Write expressions as `${{ params.name }}` or `${{ tasks.<upstream>.output }}`.',
      );
    for (const { path, ref } of references) {
      // The common case, an upstream task's output or state, is answered before anything
      // is made for a message: a flow may hold 50,000 such references.
      if (ref.root === 'tasks' && readsUpstream(ref.path, scope)) continue;
      const where = [...written.path, ...path];
      const text = formatPath([ref.root, ...ref.path]);
      const report = (message: string, hint: string) => add(where, message, hint);
      switch (ref.root) {
        case 'params':
          checkParam(text, ref.path, scope, report);
          break;
        case 'tasks':
          checkTask(text, ref.path, scope, report);
          break;
        case 'run':
          break;
        case 'item':
        case 'map':
          if (scope.depth === 0) {
            report(
              `reads ${text}, but ${ref.root} exists only inside a map: in the body of a task with map:, or in the tasks of a map over a group`,
              `Use ${ref.root} in a mapped task, or read the list itself (e.g. tasks.<id>.output).`,
            );
          } else if (ref.root === 'map') checkMap(text, ref.path, scope, report);
          break;
        case 'error':
          if (!scope.handles) {
            report(
              `reads ${text}, but error exists only in an on_failure handler`,
              'Read the failure in the handler of a task: `on_failure: { run: …, with: { why: "${{ error.message }}" } }`.',
            );
          } else if (ref.path[0] !== undefined && !ERROR_FIELDS.includes(String(ref.path[0]))) {
            const guess = suggest(String(ref.path[0]), ERROR_FIELDS);
            report(
              `reads ${text}; error has only code, kind and message${guess ? ` (did you mean "${guess}"?)` : ''}`,
              'Write error.code, error.kind or error.message.',
            );
          }
          break;
        default: {
          const roots = rootsOf(scope);
          const guess = suggest(ref.root, roots);
          report(
            `reads ${text}, but expressions may read only ${listing(roots)}${guess ? ` (did you mean "${guess}"?)` : ''}`,
            `Start the expression with ${listing(
              roots.map((r) => `${r}.`),
              'or',
            )}`,
          );
        }
      }
    }
  }
  return problems;
}

type Report = (message: string, hint: string) => void;

/**
 * True when `tasks.<path>` reads the output or state of a task of the same level that is
 * upstream of the expression's task: what checkTask accepts without a word, found by the
 * same tests in the same order.
 */
function readsUpstream(path: readonly (string | number)[], scope: ReadScope): boolean {
  const head = path[0];
  const field = path[1];
  if (head === undefined || field === undefined || !TASK_FIELDS.includes(String(field))) return false;
  const target = String(head);
  return (
    scope.local.has(target) &&
    target !== scope.self &&
    (scope.handles === undefined || target !== scope.handles) &&
    scope.readable.has(target)
  );
}

/** Per list of params (one per flow), a set and a suggester: every expression of every task asks. */
const paramIndex = new WeakMap<
  readonly string[],
  { readonly names: ReadonlySet<string>; readonly similar: Suggester }
>();

function checkParam(text: string, path: readonly (string | number)[], scope: ReadScope, report: Report): void {
  const head = path[0];
  let index = paramIndex.get(scope.params);
  if (!index) {
    index = { names: new Set(scope.params), similar: new Suggester(scope.params) };
    paramIndex.set(scope.params, index);
  }
  if (head === undefined || index.names.has(String(head))) return;
  const guess = index.similar.suggest(String(head));
  report(
    `reads ${text} but the flow has no param "${String(head)}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
    guess ? `Change it to params.${guess}.` : `Declare it under params, e.g. \`${String(head)}: { type: string }\`.`,
  );
}

function checkTask(text: string, path: readonly (string | number)[], scope: ReadScope, report: Report): void {
  const [head, field] = path;
  const self = scope.self;
  const word = scope.dependsOnWord;
  if (head === undefined) {
    report(`reads ${text}; name a task, as in tasks.<id>.output`, 'Read one upstream task, e.g. tasks.extract.output.');
    return;
  }
  const target = String(head);
  if (scope.local.has(target)) {
    if (target === self) {
      report(`task ${self} reads its own result (${text})`, 'Read an upstream task, or a param, instead.');
      return;
    }
    if (scope.handles !== undefined && target === scope.handles) {
      report(
        `handler ${self} reads ${text}, but ${target} is the task that failed`,
        'Read the failure as error.code, error.kind and error.message.',
      );
      return;
    }
    if (!scope.readable.has(target)) {
      if (scope.handles !== undefined) {
        report(
          `handler ${self} reads ${text} but ${target} is not upstream of ${scope.handles}, the task it handles`,
          `A handler reads what its task may read; add ${target} to the ${word} of ${scope.handles}.`,
        );
      } else {
        report(
          `task ${self} reads ${text} but ${target} is not upstream of ${self}; add it to ${word}`,
          `Add ${target} to the ${word} of ${self}.`,
        );
      }
      return;
    }
  } else if (scope.top?.ids.has(target)) {
    const { anchor, readable } = scope.top;
    if (target === anchor) {
      report(
        `task ${self} reads ${text}, the result of the map it is part of`,
        'Inside a map, read item, map, sibling tasks and what the map waits for.',
      );
      return;
    }
    if (!readable.has(target)) {
      report(
        `task ${self} reads ${text} but ${target} is not upstream of map ${anchor}; add it to the ${word} of ${anchor}`,
        `Add ${target} to the ${word} of ${anchor}: tasks inside a map read what their map waits for.`,
      );
      return;
    }
  } else {
    const names =
      scope.names ??
      taskNames([...scope.local, ...(scope.top ? [...scope.top.ids].filter((id) => !scope.local.has(id)) : [])]);
    const guess = names.suggest(target);
    const inside = scope.depth > 0 ? ' (tasks inside a map read their sibling tasks and the flow’s tasks)' : '';
    report(
      `task ${self} reads ${text} but there is no task "${target}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
      guess ? `Change it to tasks.${guess}.` : `Use one of the task ids: ${names.listing()}${inside}.`,
    );
    return;
  }
  if (field === undefined || !TASK_FIELDS.includes(String(field))) {
    report(
      `reads ${text}; a task exposes only output and state`,
      `Write tasks.${target}.output (or tasks.${target}.state).`,
    );
  }
}

/** Names of tasks for messages, over a fixed list (suggestions indexed once, listing capped). */
export function taskNames(ids: readonly string[]): TaskNames {
  let suggester: Suggester | undefined;
  return {
    suggest: (name) => (suggester ??= new Suggester(ids)).suggest(name),
    listing: () => listNames(ids),
  };
}

/** `map.index`, `map.item`, and one `.outer` per enclosing map: `map.outer.item`. */
function checkMap(text: string, path: readonly (string | number)[], scope: ReadScope, report: Report): void {
  let outers = 0;
  while (path[outers] === 'outer') outers++;
  if (outers > scope.depth - 1) {
    const maps = scope.depth === 1 ? 'one map' : `${scope.depth} maps`;
    report(
      `reads ${text}, but the task is inside ${maps}: ${formatPath(['map', ...path.slice(0, outers)])} goes past the outermost`,
      'Write map.item and map.index for this map, and one .outer for each enclosing map.',
    );
    return;
  }
  const field = path[outers];
  if (field !== undefined && !MAP_FIELDS.includes(String(field))) {
    const guess = suggest(String(field), MAP_FIELDS);
    report(
      `reads ${text}; map has only index, item and outer${guess ? ` (did you mean "${guess}"?)` : ''}`,
      'Write map.index, map.item, or map.outer for the enclosing map.',
    );
  }
}
