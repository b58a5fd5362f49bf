/**
 * Checks the tasks of a flow file one by one, with the tasks nested in them (the tasks of
 * a map over a group, failure handlers). A task is one of:
 *
 * - a kind with its keys (`kind: shell` + `command`), as registered in TASK_KIND_SCHEMAS;
 * - a body under a key of its own (`run:`, `sleep:`, `wait_until:`, `wait_for_event:`,
 *   `approval:`, `subflow:`), which names the kind;
 * - a `choice:` or a `race:`, which run nothing themselves;
 * - a map over a group: `map:` with `tasks:`.
 *
 * Any of the first two may carry `map:` to run once per item. Tasks are written as a map
 * from id to task, or as a list of tasks with `id`. Parsed values are kept for
 * normalization; names (ids, depends_on, branches) are checked with the structure.
 */
import { CACHEABLE_KINDS, isParkingKind, type QuorumSpec } from '../core/model.js';
import type { TriggerRule } from '../core/states.js';
import {
  TASK_KIND_SCHEMAS,
  TaskBaseSchema,
  isRecord,
  parseWith,
  problem,
  show,
  unknownKeyProblem,
  type KeyPath,
  type ParsedTaskBase,
  type SchemaProblem,
} from './flow-schema.js';
import { handlerId } from './flow-draft.js';
import { suggest } from './suggest.js';
import {
  BODY_FORMS,
  ChoiceFileSchema,
  HandlerKeysSchema,
  KEYED_KINDS,
  K_OF_N_HINT,
  MapFileSchema,
  NAMED_TRIGGER_RULES,
  NamedTriggerRuleSchema,
  QuorumFileSchema,
  RaceFileSchema,
  type BodyForm,
  type ParsedHandlerKeys,
  type ParsedMap,
} from './task-schema.js';

export type ParsedCommon = Omit<ParsedTaskBase, 'kind'>;

/** One task after its own keys were checked; parsed parts are set when they parsed. */
export interface CheckedTask {
  readonly id: string;
  /** Where the task is written, e.g. `['tasks', 'load']` or `['tasks', 'per_region', 'tasks', 'fetch']`. */
  readonly path: KeyPath;
  readonly raw: Record<string, unknown>;
  /** The body's kind (`shell`, `sleep`, …), or `map` (over a group), `choice`, `race`; undefined if unknown. */
  readonly kind: string | undefined;
  readonly base?: ParsedCommon;
  /** The body's normalized config (camelCase keys); set when the body parsed. */
  readonly config?: Record<string, unknown>;
  /** Inputs that stand for `with` (a subflow's params). */
  readonly params?: Record<string, unknown>;
  /** Paths, relative to the task, of the body's values that hold templates. */
  readonly templated: readonly KeyPath[];
  readonly triggerRule?: { readonly rule: TriggerRule; readonly quorum?: QuorumSpec };
  readonly map?: ParsedMap;
  /** The tasks of a map over a group. */
  readonly inner?: readonly CheckedTask[];
  readonly mode?: 'first' | 'all';
  readonly handler?: { readonly task: CheckedTask; readonly keys: ParsedHandlerKeys };
}

type Role = 'task' | 'handler';

const TASK_EXAMPLE = '`hello: { kind: shell, command: [echo, hi] }`';

/** Task keys common to every kind; `kind` itself is checked by hand for a better message. */
const TaskCommonSchema = TaskBaseSchema.omit({ kind: true });
const BASE_KEYS = Object.keys(TaskBaseSchema.shape);
/** Keys that shape the flow, accepted on every task (the structure says where they apply). */
const SHAPE_KEYS = ['trigger_rule', 'group', 'finally', 'map', 'on_failure'];
/** Keys of tasks that run something; a choice, a race and a map over a group take none. */
const RUN_KEYS = ['retry', 'timeout', 'pool', 'labels', 'with', 'produces', 'consumes', 'cache'];
/** Keys about worker slots, which tasks the engine carries out itself do not take. */
const SLOT_KEYS = ['pool', 'labels'];
const HANDLER_KEYS = Object.keys(HandlerKeysSchema.shape);
/** Keys that make up a task's body, one per task. */
const BODY_KEYS = [...BODY_FORMS.keys(), 'choice', 'race', 'tasks'];
/** The common keys parsed for a choice, a race and a map over a group: none of a running task. */
const STRUCTURAL_BASE_KEYS = BASE_KEYS.filter((k) => !RUN_KEYS.includes(k));

/**
 * Checks the top-level tasks (a map or a list under `tasks:`) and everything nested in them.
 * Problems across tasks (names, graph, expressions) are the structure's.
 */
export function checkTasks(
  raw: Record<string, unknown>,
  kinds: readonly string[],
): { tasks: CheckedTask[]; problems: SchemaProblem[] } {
  const problems: SchemaProblem[] = [];
  const written = raw.tasks;
  // Anything else is reported by the flow schema.
  if (!isRecord(written) && !Array.isArray(written)) return { tasks: [], problems };
  if ((Array.isArray(written) ? written.length : Object.keys(written).length) === 0) {
    problems.push(
      problem(['tasks'], 'must declare at least one task', `Add a task under tasks, e.g. ${TASK_EXAMPLE}.`),
    );
  }
  return { tasks: checkCollection(written, ['tasks'], kinds, problems), problems };
}

/** True for a choice, a race and a map over a group, which take no keys of running tasks. */
export function runsNothing(task: CheckedTask): boolean {
  return task.kind === 'choice' || task.kind === 'race' || task.inner !== undefined;
}

/** Every task, nested ones (of maps and handlers) included, parents first. */
export function everyTask(tasks: readonly CheckedTask[]): CheckedTask[] {
  return tasks.flatMap((t) => [t, ...everyTask(t.inner ?? []), ...(t.handler ? everyTask([t.handler.task]) : [])]);
}

interface Written {
  readonly id: string;
  readonly task: unknown;
  readonly path: KeyPath;
  /** Written in a list, where `id` is a key of the task. */
  readonly listed: boolean;
}

function checkCollection(
  value: unknown,
  path: KeyPath,
  kinds: readonly string[],
  problems: SchemaProblem[],
): CheckedTask[] {
  const out: CheckedTask[] = [];
  for (const entry of entriesOf(value, path, problems)) {
    if (isRecord(entry.task)) out.push(checkTask(entry, entry.task, kinds, problems, 'task'));
    else {
      const message = `must be a map with kind and the keys of that kind, got ${show(entry.task)}`;
      problems.push(problem(entry.path, message, `Write the task as a map, e.g. ${TASK_EXAMPLE}.`));
    }
  }
  return out;
}

/** The tasks of a map (id → task) or of a list (`- id: …`); a repeated id in a list is reported here. */
function entriesOf(value: unknown, path: KeyPath, problems: SchemaProblem[]): Written[] {
  if (isRecord(value))
    return Object.entries(value).map(([id, task]) => ({ id, task, path: [...path, id], listed: false }));
  if (!Array.isArray(value)) {
    problems.push(
      problem(
        path,
        `must be a map from task id to task, or a list of tasks with id, got ${show(value)}`,
        'Write `tasks:` followed by the tasks, e.g. `fetch: { run: ./fetch.sh }`.',
      ),
    );
    return [];
  }
  const out: Written[] = [];
  const seen = new Set<string>();
  value.forEach((task, i) => {
    const at = [...path, i];
    if (!isRecord(task)) {
      out.push({ id: String(i), task, path: at, listed: true });
      return;
    }
    if (task.id === undefined) {
      problems.push(
        problem([...at, 'id'], 'required for a task in a list but missing', 'Add `id:` with the task id.', 'parent'),
      );
    } else if (typeof task.id !== 'string') {
      problems.push(
        problem([...at, 'id'], `must be the task id, got ${show(task.id)}`, 'Write the task id as a name.'),
      );
    } else if (seen.has(task.id)) {
      problems.push({
        ...problem(
          [...at, 'id'],
          `duplicate task id "${task.id}"`,
          'Give each task its own id; this one repeats an earlier task.',
        ),
        code: 'DEF_DUPLICATE_TASK',
      });
    } else {
      seen.add(task.id);
      out.push({ id: task.id, task, path: [...path, task.id], listed: true });
    }
  });
  return out;
}

/** What acceptedKeys found, by what decides it: a kind's schema, a body form, or a form type. */
const ACCEPTED: readonly Map<unknown, readonly string[]>[] = [new Map(), new Map(), new Map(), new Map()];
const NO_KIND = {};

/**
 * The keys a task of this form takes. The same few lists serve every task of a flow:
 * each is made once, rather than once per task of a file that may hold 50,000.
 */
function acceptedKeys(
  form: Form,
  kindEntry: { readonly keys: { readonly shape: object } } | undefined,
  listed: boolean,
  role: Role,
): readonly string[] {
  const owner = form.type === 'kind' ? (kindEntry ?? NO_KIND) : form.type === 'body' ? form.body : form.type;
  const cache = ACCEPTED[(listed ? 2 : 0) + (role === 'handler' ? 1 : 0)] as Map<unknown, readonly string[]>;
  let keys = cache.get(owner);
  if (keys) return keys;
  const ownKeys =
    form.type === 'kind'
      ? Object.keys(kindEntry?.keys.shape ?? {})
      : form.type === 'body'
        ? form.body.keys
        : form.type === 'group'
          ? ['tasks']
          : [form.type];
  keys = [
    ...BASE_KEYS,
    ...SHAPE_KEYS,
    ...ownKeys,
    ...(listed ? ['id'] : []),
    ...(role === 'handler' ? HANDLER_KEYS : []),
  ].filter((k, i, all) => all.indexOf(k) === i);
  cache.set(owner, keys);
  return keys;
}

type Form =
  | { readonly type: 'kind'; readonly kind: string | undefined }
  | { readonly type: 'body'; readonly kind: string; readonly body: BodyForm }
  | { readonly type: 'choice' | 'race'; readonly kind: 'choice' | 'race' }
  | { readonly type: 'group'; readonly kind: 'map' };

const STRUCTURAL: Readonly<Record<string, string>> = {
  choice: 'a choice',
  race: 'a race',
  group: 'a map over a group',
};

function checkTask(
  entry: Written,
  task: Record<string, unknown>,
  kinds: readonly string[],
  problems: SchemaProblem[],
  role: Role,
): CheckedTask {
  const { id, path } = entry;
  const form = formOf(task, path, kinds, problems);
  const kindEntry = form.type === 'kind' && form.kind !== undefined ? TASK_KIND_SCHEMAS.get(form.kind) : undefined;
  checkKeys(task, path, form, acceptedKeys(form, kindEntry, entry.listed, role), problems);

  const pick = (keys: readonly string[]) => {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(task)) if (keys.includes(k)) setOwn(out, k, task[k]);
    return out;
  };
  // A choice, a race and a map over a group get their running keys reported, not parsed.
  const structural = form.type !== 'kind' && form.type !== 'body';
  const base = parseWith(TaskCommonSchema, pick(structural ? STRUCTURAL_BASE_KEYS : BASE_KEYS), path, 'a task');
  if (!base.ok) problems.push(...base.problems);
  const triggerRule = parseTriggerRule(task.trigger_rule, [...path, 'trigger_rule'], problems);
  if (task.group !== undefined && typeof task.group !== 'string')
    problems.push(
      problem([...path, 'group'], `must be a group name, got ${show(task.group)}`, 'Write the name of a group.'),
    );
  if (task.finally !== undefined && typeof task.finally !== 'boolean')
    problems.push(
      problem([...path, 'finally'], `must be true or false, got ${show(task.finally)}`, 'Write finally: true.'),
    );
  const map = task.map === undefined ? undefined : parseWith(MapFileSchema, task.map, [...path, 'map'], 'a map');
  if (map && !map.ok) problems.push(...map.problems);

  const body = parseBody(task, path, form, pick, problems);
  const inner =
    form.type === 'group' && task.tasks !== undefined
      ? checkCollection(task.tasks, [...path, 'tasks'], kinds, problems)
      : undefined;
  const handler = task.on_failure === undefined ? undefined : checkHandler(id, task.on_failure, path, kinds, problems);
  if (role === 'handler') {
    const keys = parseWith(HandlerKeysSchema, pick(HANDLER_KEYS), path, 'a handler');
    if (!keys.ok) problems.push(...keys.problems);
  }
  return {
    id,
    path,
    raw: task,
    kind: form.kind,
    ...(base.ok ? { base: base.data } : {}),
    ...body,
    ...(triggerRule ? { triggerRule } : {}),
    ...(map?.ok ? { map: map.data } : {}),
    ...(inner ? { inner } : {}),
    ...(handler ? { handler } : {}),
  };
}

/** Which form the task has, from its body key or its kind; conflicts are reported. */
function formOf(
  task: Record<string, unknown>,
  path: KeyPath,
  kinds: readonly string[],
  problems: SchemaProblem[],
): Form {
  const bodies = BODY_KEYS.filter((k) => k in task);
  const key = bodies[0];
  for (const extra of bodies.slice(1)) {
    problems.push(
      problem(
        [...path, extra],
        `a task has one body, but this one has ${key as string} and ${extra}`,
        'Keep one of them, and put the other in a task of its own.',
        'key',
      ),
    );
  }
  if (key === undefined) return { type: 'kind', kind: kindOf(task.kind, path, kinds, problems) };
  let form: Form;
  if (key === 'tasks') {
    form = { type: 'group', kind: 'map' };
    if (!('map' in task)) {
      problems.push(
        problem(
          [...path, 'tasks'],
          'lists tasks, but only a map over a group has tasks of its own',
          'Add `map: { over: "${{ … }}" }` to run these tasks once per item, or move them to the flow.',
          'key',
        ),
      );
    }
  } else if (key === 'choice' || key === 'race') form = { type: key, kind: key };
  else {
    const body = BODY_FORMS.get(key) as BodyForm;
    form = { type: 'body', kind: body.kind, body };
    if (body.kind === 'shell' && !kinds.includes('shell')) {
      problems.push(
        problem(
          [...path, key],
          `runs a command line, which needs shell tasks; known kinds: ${kinds.join(', ')}`,
          `Use a task of one of the known kinds: ${kinds.join(', ')}.`,
          'key',
        ),
      );
    }
  }
  if (task.kind !== undefined && task.kind !== form.kind) {
    problems.push(
      problem(
        [...path, 'kind'],
        `is ${show(task.kind)}, but the task's body is ${key} (a ${form.kind} task)`,
        'Remove kind: the body says what the task is.',
      ),
    );
  }
  return form;
}

function kindOf(
  written: unknown,
  path: KeyPath,
  kinds: readonly string[],
  problems: SchemaProblem[],
): string | undefined {
  const known = kinds.join(', ');
  const at = [...path, 'kind'];
  if (written === undefined) {
    problems.push(
      problem(
        at,
        `required but missing; known kinds: ${known}`,
        `Add \`kind:\` with one of: ${known}; or write a body such as \`run: <command line>\`.`,
        'parent',
      ),
    );
    return undefined;
  }
  if (typeof written === 'string' && kinds.includes(written)) return written;
  const keyed = typeof written === 'string' ? KEYED_KINDS[written] : undefined;
  if (keyed !== undefined) {
    problems.push(
      problem(
        at,
        `${written as string} tasks are written with a key of their own: ${keyed}`,
        `Remove kind, and write ${keyed}.`,
      ),
    );
    return undefined;
  }
  const guess = typeof written === 'string' ? suggest(written, kinds) : undefined;
  const message =
    typeof written === 'string'
      ? `unknown kind ${show(written)}${guess ? ` (did you mean "${guess}"?)` : ''}; known kinds: ${known}`
      : `must be the name of a kind (${known}), got ${show(written)}`;
  problems.push(problem(at, message, `Set kind to one of: ${known}.`));
  return undefined;
}

/** Keys the task's form does not take: unknown ones, another kind's, and those of tasks that run something. */
function checkKeys(
  task: Record<string, unknown>,
  path: KeyPath,
  form: Form,
  accepted: readonly string[],
  problems: SchemaProblem[],
): void {
  const what = STRUCTURAL[form.type];
  const firstBody = BODY_KEYS.find((k) => k in task);
  for (const key of Object.keys(task)) {
    if (BODY_KEYS.includes(key) && key !== firstBody) continue; // a second body, reported
    if (what !== undefined && RUN_KEYS.includes(key)) {
      const hint = form.type === 'group' ? `Set ${key} on the tasks of the map.` : `Remove ${key}.`;
      problems.push(problem([...path, key], `not a key of ${what}, which runs nothing itself`, hint, 'key'));
      continue;
    }
    // A task-level timeout is an attempt's; waits carry their own (a subflow's is its child's).
    if (form.type === 'body' && key === 'timeout' && isParkingKind(form.kind) && form.kind !== 'subflow') {
      const own = form.kind === 'wait_for_event' || form.kind === 'approval';
      problems.push(
        problem(
          [...path, key],
          `not a key of ${form.kind} tasks, which run no attempt to time out`,
          own ? `Set the wait's own timeout: ${form.kind}: { timeout: … }.` : 'Remove timeout.',
          'key',
        ),
      );
      continue;
    }
    if (form.type === 'body' && key === 'cache' && !CACHEABLE_KINDS.has(form.kind)) {
      problems.push(
        problem(
          [...path, key],
          `not a key of ${form.kind} tasks: only function, shell and sql tasks reuse an earlier output`,
          'Remove cache.',
          'key',
        ),
      );
      continue;
    }
    if (form.type === 'body' && isParkingKind(form.kind) && SLOT_KEYS.includes(key)) {
      problems.push(
        problem(
          [...path, key],
          `not a key of ${form.kind} tasks, which the engine carries out without a worker slot`,
          `Remove ${key}.`,
          'key',
        ),
      );
      continue;
    }
    if (accepted.includes(key)) continue;
    if (form.type === 'body' && form.body.key === 'run' && (key === 'command' || key === 'shell')) {
      problems.push(
        problem(
          [...path, key],
          'run already gives the command line (run with /bin/sh)',
          `Remove ${key}, or replace run with kind: shell and command.`,
          'key',
        ),
      );
      continue;
    }
    const owners = [...TASK_KIND_SCHEMAS].filter(([k, e]) => k !== form.kind && key in e.keys.shape).map(([k]) => k);
    if (owners.length === 0) problems.push(unknownKeyProblem([...path, key], accepted));
    // With an unknown kind we cannot tell whether such a key is wrong; the kind problem says enough.
    else if (form.kind !== undefined) {
      const message = `not a key of ${form.kind} tasks; it belongs to ${owners.join(', ')} tasks`;
      problems.push(
        problem([...path, key], message, `Remove ${key}, or change kind to ${owners[0] as string}.`, 'key'),
      );
    }
  }
}

function parseTriggerRule(
  value: unknown,
  path: KeyPath,
  problems: SchemaProblem[],
): CheckedTask['triggerRule'] | undefined {
  if (value === undefined) return undefined;
  if (value === 'k_of_n') {
    problems.push(problem(path, 'k_of_n needs the number of upstream successes to wait for', K_OF_N_HINT));
    return undefined;
  }
  if (isRecord(value)) {
    const parsed = parseWith(QuorumFileSchema, value, path, 'k_of_n');
    if (!parsed.ok) {
      problems.push(...parsed.problems);
      return undefined;
    }
    return { rule: 'k_of_n', quorum: { k: parsed.data.k_of_n, cancelRest: parsed.data.cancel_rest ?? false } };
  }
  if (typeof value !== 'string') {
    problems.push(
      problem(
        path,
        `must be a trigger rule (${NAMED_TRIGGER_RULES.join(', ')}) or { k_of_n: <count> }, got ${show(value)}`,
        'Write e.g. `trigger_rule: all_done` or `trigger_rule: { k_of_n: 2 }`.',
      ),
    );
    return undefined;
  }
  const parsed = parseWith(NamedTriggerRuleSchema, value, path);
  if (!parsed.ok) {
    problems.push(...parsed.problems);
    return undefined;
  }
  return { rule: parsed.data as TriggerRule };
}

/** Sets an own property whatever its name, as Object.fromEntries does (`__proto__` included). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

/** camelCase keys by snake_case key: the keys of bodies are few, and every task has some. */
const CAMEL = new Map<string, string>();
const camel = (key: string): string => {
  let out = CAMEL.get(key);
  if (out === undefined) {
    out = key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    // Keys come from the schemas' shapes, but a bound keeps this safe whatever they are.
    if (CAMEL.size < 1000) CAMEL.set(key, out);
  }
  return out;
};

/** The templated paths of a task of a registered kind: one list per kind, shared by its tasks. */
const KIND_TEMPLATED = new Map<unknown, KeyPath[]>();

/** The body's config (and a subflow's params), with the body's templated paths. */
function parseBody(
  task: Record<string, unknown>,
  path: KeyPath,
  form: Form,
  pick: (keys: readonly string[]) => Record<string, unknown>,
  problems: SchemaProblem[],
): Pick<CheckedTask, 'config' | 'params' | 'templated' | 'mode'> {
  const bodyTemplated = (keys: readonly KeyPath[]): KeyPath[] => [['with'], ...keys];
  switch (form.type) {
    case 'kind': {
      const entry = form.kind === undefined ? undefined : TASK_KIND_SCHEMAS.get(form.kind);
      let templated = KIND_TEMPLATED.get(entry);
      if (!templated) {
        templated = bodyTemplated((entry?.templated ?? []).map((k) => [k]));
        KIND_TEMPLATED.set(entry, templated);
      }
      // A known kind without a registered schema has no keys of its own.
      if (form.kind === undefined) return { templated };
      if (!entry) return { config: {}, templated };
      const own = parseWith(entry.keys, pick(Object.keys(entry.keys.shape)), path, `a ${form.kind} task`);
      if (!own.ok) {
        problems.push(...own.problems);
        return { templated };
      }
      const data = own.data as Record<string, unknown>;
      const config: Record<string, unknown> = {};
      for (const key of Object.keys(data)) {
        const value = data[key];
        if (value === undefined) continue;
        setOwn(config, camel(key), value);
      }
      return { config, templated };
    }
    case 'body': {
      const templated = bodyTemplated(form.body.templated(task));
      if (form.body.kind === 'subflow' && task.with !== undefined) {
        problems.push(
          problem(
            [...path, 'with'],
            'a subflow takes its params under subflow.params',
            'Move these values to subflow.params.',
            'key',
          ),
        );
      }
      const own = parseWith(form.body.schema, pick(form.body.keys), path, `a ${form.body.key} task`);
      if (!own.ok) {
        problems.push(...own.problems);
        return { templated };
      }
      const normalized = form.body.toConfig(own.data as Record<string, unknown>);
      return { config: normalized.config, ...(normalized.with ? { params: normalized.with } : {}), templated };
    }
    case 'choice':
    case 'race': {
      const schema = form.type === 'choice' ? ChoiceFileSchema : RaceFileSchema;
      const parsed = parseWith(schema, task[form.type], [...path, form.type], `a ${form.type}`);
      if (!parsed.ok) {
        problems.push(...parsed.problems);
        return { templated: [] };
      }
      return { config: {}, templated: [], mode: parsed.data.mode ?? 'first' };
    }
    case 'group':
      return { config: {}, templated: [] };
  }
}

function checkHandler(
  taskId: string,
  written: unknown,
  taskPath: KeyPath,
  kinds: readonly string[],
  problems: SchemaProblem[],
): CheckedTask['handler'] {
  const path = [...taskPath, 'on_failure'];
  if (!isRecord(written)) {
    problems.push(
      problem(
        path,
        `must be a handler task: a map with a body, got ${show(written)}`,
        'Write e.g. `on_failure: { run: ./fallback.sh, recover: true }`.',
      ),
    );
    return undefined;
  }
  const id = typeof written.id === 'string' ? written.id : handlerId(taskId);
  const task = checkTask({ id, task: written, path, listed: false }, written, kinds, problems, 'handler');
  const keys = HandlerKeysSchema.safeParse(
    Object.fromEntries(Object.entries(written).filter(([k]) => HANDLER_KEYS.includes(k))),
  );
  return { task, keys: keys.success ? keys.data : {} };
}
