/**
 * Turns checked flow-file tasks into the drafts the structure resolver reads. Names
 * (depends_on, branches, groups) are taken from the document as written, so that the
 * structure is checked even where a task's other keys have problems; bodies (kind,
 * retry, timeout, config, …) are normalized only where they parsed.
 */
import { isParkingKind, type RetryPolicy } from '../core/model.js';
import { isRecord, valueAt, type KeyPath, type ParsedRetry } from './flow-schema.js';
import {
  structuralBody,
  type DraftChoice,
  type DraftRace,
  type DraftTask,
  type NameRef,
  type TaskBody,
} from './flow-draft.js';
import type { TemplatedValue } from './reference-check.js';
import { shellScriptsOf } from './shell-scripts.js';
import type { CheckedTask } from './task-check.js';

/** What every task inherits from the flow; undefined when the flow's own keys have problems. */
export interface TaskDefaults {
  readonly retry: RetryPolicy;
  readonly timeoutMs: number | null;
  readonly pool: string | null;
}

export function mergeRetry(base: RetryPolicy, retry: ParsedRetry | undefined): RetryPolicy {
  if (!retry) return base;
  const retryOn = retry.retry_on ?? base.retryOn;
  return {
    maxAttempts: retry.max_attempts ?? base.maxAttempts,
    backoffMs: retry.backoff ?? base.backoffMs,
    maxBackoffMs: retry.max_backoff ?? base.maxBackoffMs,
    jitter: retry.jitter ?? base.jitter,
    ...(retryOn !== undefined ? { retryOn } : {}),
    neverRetryOn: retry.never_retry_on ?? base.neverRetryOn,
    ...((retry.count_lost ?? base.countLost) ? { countLost: true } : {}),
  };
}

/** The string entries of a list written at `path` (other entries are schema problems already). */
function namesAt(root: unknown, path: KeyPath): NameRef[] {
  const list = valueAt(root, path);
  if (!Array.isArray(list)) return [];
  return list.flatMap((name, i) => (typeof name === 'string' ? [{ name, path: [...path, i] }] : []));
}

function bodyOf(task: CheckedTask, defaults: TaskDefaults | undefined): TaskBody | undefined {
  if (!defaults || task.kind === undefined || !task.config) return undefined;
  if (task.kind === 'choice' || task.kind === 'race' || task.inner) return structuralBody(task.kind);
  const base = task.base;
  if (!base) return undefined;
  // The engine carries these out itself: the flow's attempt timeout and pool are not theirs.
  if (isParkingKind(task.kind)) {
    return {
      kind: task.kind,
      retry: mergeRetry(defaults.retry, base.retry),
      timeoutMs: base.timeout ?? null,
      pool: null,
      with: task.params ?? base.with ?? {},
      config: task.config,
    };
  }
  // Set field by field, in the same order: a spread of a conditional literal costs a lot per task.
  const body: { -readonly [K in keyof TaskBody]: TaskBody[K] } = {
    kind: task.kind,
    retry: mergeRetry(defaults.retry, base.retry),
    timeoutMs: base.timeout ?? defaults.timeoutMs,
    pool: base.pool ?? defaults.pool,
  } as TaskBody;
  if (base.labels?.length) body.labels = base.labels;
  body.with = task.params ?? base.with ?? {};
  body.config = task.config;
  if (base.produces?.length) body.produces = base.produces;
  if (base.consumes?.length) body.consumes = base.consumes;
  if (base.cache !== undefined) body.cache = base.cache;
  return body;
}

/**
 * A name written in a list of the document, at `[...at, ...keys, index]`. Its key path is
 * made only when a problem names it: a flow may list tens of thousands of dependencies.
 */
class WrittenName implements NameRef {
  constructor(
    readonly name: string,
    private readonly at: KeyPath,
    private readonly keys: readonly string[],
    private readonly index: number,
  ) {}

  get path(): KeyPath {
    return [...this.at, ...this.keys, this.index];
  }
}

/** A templated value of a task at `[...at, ...keys]`, its key path made when read. */
class WrittenValue implements TemplatedValue {
  constructor(
    readonly value: unknown,
    private readonly at: KeyPath,
    private readonly keys: KeyPath,
  ) {}

  get path(): KeyPath {
    return [...this.at, ...this.keys];
  }
}

const DEPENDS_ON = ['depends_on'];
const HANDLER_ON = ['on_failure', 'on'];

/** The string entries of the list at `keys` in `raw`, as names written under the task at `at`. */
function writtenNames(raw: unknown, at: KeyPath, keys: readonly string[]): WrittenName[] {
  const list = valueAt(raw, keys);
  if (!Array.isArray(list)) return [];
  const out: WrittenName[] = [];
  for (let i = 0; i < list.length; i++) {
    const name: unknown = list[i];
    // Other entries are schema problems already.
    if (typeof name === 'string') out.push(new WrittenName(name, at, keys, i));
  }
  return out;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The draft of one checked task (and of what is nested in it). Paths are relative to the
 * document. One object of a fixed shape, optional fields set only when present: a flow
 * file may hold 50,000 tasks, and spreads of conditional literals cost a lot there.
 */
export function draftOf(task: CheckedTask, defaults: TaskDefaults | undefined): DraftTask {
  const { raw, path } = task;
  const rel = (...keys: (string | number)[]): KeyPath => [...path, ...keys];
  const description = task.base?.description;
  const handler = task.handler;
  const dependsOn = writtenNames(raw, path, DEPENDS_ON);
  const templated = task.templated.map((keys) => new WrittenValue(valueAt(raw, keys), path, keys));
  const draft: Mutable<DraftTask> = {
    id: task.id,
    path,
    body: bodyOf(task, defaults),
    dependsOn,
    // Every entry is a name, one for one: the resolver then needs no path for any of them.
    dependsOnNames: dependsOn.map((r) => r.name),
    dependsOnPath: rel('depends_on'),
    templated,
  };
  if (description !== undefined) draft.description = description;
  if (typeof raw.group === 'string') draft.group = { name: raw.group, path: rel('group') };
  if (task.triggerRule) draft.triggerRule = { ...task.triggerRule, path: rel('trigger_rule') };
  if (task.kind === 'shell') {
    draft.shellScripts =
      'run' in raw ? shellScriptsOf(raw.run, rel('run')) : shellScriptsOf(raw.command, rel('command'));
  }
  if (raw.map !== undefined) {
    draft.map = {
      path: rel('map'),
      over: { value: valueAt(raw, ['map', 'over']), path: rel('map', 'over') },
      maxParallel: task.map?.max_parallel ?? null,
      batch: task.map?.batch ?? null,
      onItemFailure: task.map?.on_item_failure ?? 'fail',
      ...(task.inner ? { tasks: task.inner.map((t) => draftOf(t, defaults)) } : {}),
      tasksPath: rel('tasks'),
    };
  }
  // A choice or race that is not a map is a schema problem already; it has no structure to check.
  if (task.kind === 'choice' && isRecord(raw.choice)) draft.choice = choiceOf(task);
  if (task.kind === 'race' && isRecord(raw.race)) draft.race = raceOf(task);
  if (handler) {
    draft.onFailure = {
      path: rel('on_failure'),
      handler: draftOf(handler.task, defaults),
      idGiven: typeof valueAt(raw, ['on_failure', 'id']) === 'string',
      recover: handler.keys.recover ?? false,
      on: writtenNames(raw, path, HANDLER_ON),
    };
  }
  if (raw.finally === true) draft.finally = rel('finally');
  return draft;
}

function choiceOf(task: CheckedTask): DraftChoice {
  const { raw, path } = task;
  const at = [...path, 'choice'];
  const written = raw.choice;
  const rules = isRecord(written) && Array.isArray(written.rules) ? written.rules : [];
  return {
    path: at,
    rulesPath: isRecord(written) && 'rules' in written ? [...at, 'rules'] : at,
    rules: rules.flatMap((rule, i) =>
      isRecord(rule)
        ? [
            {
              when: { value: rule.when, path: [...at, 'rules', i, 'when'] },
              then: namesAt(rule, ['then']).map((r) => ({ name: r.name, path: [...at, 'rules', i, ...r.path] })),
              thenPath: [...at, 'rules', i, 'then'],
            },
          ]
        : [],
    ),
    otherwise: namesAt(written, ['otherwise']).map((r) => ({ name: r.name, path: [...at, ...r.path] })),
    mode: task.mode ?? 'first',
  };
}

function raceOf(task: CheckedTask): DraftRace {
  const { raw, path } = task;
  const at = [...path, 'race'];
  const priority = valueAt(raw, ['race', 'priority']);
  const names = (key: string) => namesAt(raw.race, [key]).map((r) => ({ name: r.name, path: [...at, ...r.path] }));
  return {
    path: at,
    branches: names('branches'),
    branchesPath: [...at, 'branches'],
    mode: task.mode ?? 'first',
    priority: Array.isArray(priority) ? names('priority') : null,
    priorityPath: [...at, 'priority'],
    score: false,
  };
}
