/**
 * The stored form of a pinned flow's tasks from history format 2 on. A task spec carries
 * every field, and most tasks of a flow share most of them (the same retry policy, no
 * timeout, no pool, no inputs): written out in full, a flow of 100,000 tasks is some 40 MB,
 * of which the default retry policy alone is two thirds, and all of it is written in the
 * transaction that creates the flow's first run. Stored compactly, each task keeps only the
 * leading fields (TASK_HEAD) that differ from a table of defaults written once beside it,
 * and reading puts them back.
 *
 * The definition read must be the one pinned to the byte: its version is a hash of its JSON
 * text, which is checked again before a run resumes. So a field is left out only when its
 * JSON text is that of the default, and the fields are put back in the order the front ends
 * write them (`id`, then TASK_HEAD, then the rest as they were). A flow whose tasks do not
 * all have that order, or whose leading fields are not all plain JSON, is not compacted:
 * `compactTasks` returns null and the tasks are stored as they are.
 */
import { DEFAULT_RETRY, type TaskSpec } from './model.js';

/** The fields every task has, in the order they follow its `id`; those that may be left out. */
const TASK_HEAD = ['kind', 'dependsOn', 'triggerRule', 'retry', 'timeoutMs', 'pool', 'with', 'config'] as const;

type HeadKey = (typeof TASK_HEAD)[number];

const HEAD_KEYS: ReadonlySet<string> = new Set(TASK_HEAD);

/** The empty default of `with` and `config`, which `sameJson` knows by identity. */
const EMPTY_OBJECT: Readonly<Record<string, unknown>> = Object.freeze({});

/** The value of each leading field that a stored task leaves out. */
export type TaskDefaults = { readonly [K in HeadKey]: TaskSpec[K] };

/** The tasks of a flow in their compact stored form: `list` holds each task without its default fields. */
export interface CompactTasks {
  readonly defaults: TaskDefaults;
  readonly list: readonly Record<string, unknown>[];
}

type Loose = Record<string, unknown>;

/**
 * The compact form of `tasks`, or null when it would not read back as the same text.
 * The defaults are the values most tasks have (kind, trigger rule, retry policy, timeout,
 * pool), and no dependencies, inputs or settings.
 */
export function compactTasks(tasks: readonly TaskSpec[]): CompactTasks | null {
  const defaults: TaskDefaults = {
    kind: majority(tasks, 'kind', 'function'),
    dependsOn: [],
    triggerRule: majority(tasks, 'triggerRule', 'all_success'),
    retry: majority(tasks, 'retry', DEFAULT_RETRY),
    timeoutMs: majority(tasks, 'timeoutMs', null),
    pool: majority(tasks, 'pool', null),
    with: EMPTY_OBJECT,
    config: EMPTY_OBJECT,
  };
  // A default with no JSON value of its own could not be written in the table.
  if (!TASK_HEAD.every((key) => hasJsonValue(defaults[key]))) return null;
  const list = compactList(tasks, defaults);
  return list ? { defaults, list } : null;
}

/** The tasks of a compact form, as they were pinned. */
export function restoreTasks(compact: CompactTasks): TaskSpec[] {
  return restoreList(compact.list, compact.defaults);
}

function compactList(tasks: readonly unknown[], d: TaskDefaults): Loose[] | null {
  const out: Loose[] = new Array<Loose>(tasks.length);
  for (let i = 0; i < tasks.length; i++) {
    const task = compactTask(tasks[i], d);
    if (!task) return null;
    out[i] = task;
  }
  return out;
}

function compactTask(value: unknown, d: TaskDefaults): Loose | null {
  if (!isPlainObject(value)) return null;
  const task = value as Loose;
  const keys = Object.keys(task);
  if (keys[0] !== 'id' || !hasJsonValue(task.id)) return null;
  const out: Loose = { id: task.id };
  for (let i = 0; i < TASK_HEAD.length; i++) {
    const key = TASK_HEAD[i] as HeadKey;
    if (keys[i + 1] !== key) return null;
    const v = task[key];
    if (!hasJsonValue(v)) return null;
    if (!sameJson(v, d[key])) out[key] = v;
  }
  for (let i = TASK_HEAD.length + 1; i < keys.length; i++) {
    const key = keys[i] as string;
    // Put back by assignment, this key would set the prototype instead.
    if (key === '__proto__') return null;
    if (key === 'map') {
      const map = compactMap(task.map, d);
      if (!map) return null;
      out.map = map;
    } else out[key] = task[key];
  }
  return out;
}

/** A map's template is tasks too: compacted with the same defaults. */
function compactMap(value: unknown, d: TaskDefaults): Loose | null {
  if (!isPlainObject(value)) return null;
  const map = value as Loose;
  if (!Array.isArray(map.template)) return map;
  if ('toJSON' in map.template) return null;
  const template = compactList(map.template, d);
  return template ? { ...map, template } : null;
}

function restoreList(list: readonly unknown[], d: TaskDefaults): TaskSpec[] {
  const out = new Array<TaskSpec>(list.length);
  for (let i = 0; i < list.length; i++) out[i] = restoreTask(list[i] as Loose, d);
  return out;
}

function restoreTask(c: Loose, d: TaskDefaults): TaskSpec {
  // The fields in the order compactTask required them to be in; stored text holds no undefined.
  const task: Loose = { id: c.id };
  for (const key of TASK_HEAD) task[key] = c[key] !== undefined ? c[key] : d[key];
  for (const key in c) {
    if (key === 'id' || HEAD_KEYS.has(key)) continue;
    task[key] = key === 'map' ? restoreMap(c.map as Loose, d) : c[key];
  }
  return task as unknown as TaskSpec;
}

function restoreMap(map: Loose, d: TaskDefaults): Loose {
  return Array.isArray(map.template) ? { ...map, template: restoreList(map.template, d) } : map;
}

/**
 * The value of `key` that more than half of the tasks have, compared by identity (one pass,
 * Boyer-Moore): builders give the tasks that take a flow's defaults the very same policy
 * object. Without a majority, some value of the tasks; `fallback` for no tasks.
 */
function majority<K extends HeadKey>(tasks: readonly TaskSpec[], key: K, fallback: unknown): TaskSpec[K] {
  let candidate = fallback;
  let count = 0;
  for (let i = 0; i < tasks.length; i++) {
    const v = (tasks[i] as Partial<TaskSpec> | undefined)?.[key];
    if (count === 0) {
      candidate = v;
      count = 1;
    } else if (v === candidate) count++;
    else count--;
  }
  return candidate as TaskSpec[K];
}

/** Whether JSON.stringify writes `v` as a value (a key holding anything else is left out). */
function hasJsonValue(v: unknown): boolean {
  return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
}

function isPlainObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || 'toJSON' in v) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Whether `a` and `b` have the same JSON text: the same object, or plain objects with the
 * same keys in the same order and arrays of the same length, whose values are the same.
 * Anything else (a Date, a value with toJSON) counts as the same only when it is identical.
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  // Most fields compared are compared with an empty default: no keys to list for that.
  if (b === EMPTY_OBJECT) return isPlainObject(a) && !hasOwnKeys(a);
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length || 'toJSON' in a || 'toJSON' in b) return false;
    for (let i = 0; i < a.length; i++) if (!sameJsonMember(a[i], b[i])) return false;
    return true;
  }
  if (!isPlainObject(a) || !isPlainObject(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    const key = ka[i] as string;
    if (key !== kb[i]) return false;
    if (!sameJsonMember((a as Loose)[key], (b as Loose)[key])) return false;
  }
  return true;
}

function hasOwnKeys(v: object): boolean {
  for (const key in v) if (Object.hasOwn(v, key)) return true;
  return false;
}

/**
 * `sameJson` for a member of an array or object. A value with no JSON text of its own is
 * written as null in an array and left out with its key in an object: the same text for
 * any two such values, never the text of a value that has one.
 */
function sameJsonMember(a: unknown, b: unknown): boolean {
  const hasA = hasJsonValue(a);
  if (hasA !== hasJsonValue(b)) return false;
  return hasA ? sameJson(a, b) : true;
}
