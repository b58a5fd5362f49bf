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
  return {
    kind: task.kind,
    retry: mergeRetry(defaults.retry, base.retry),
    timeoutMs: base.timeout ?? defaults.timeoutMs,
    pool: base.pool ?? defaults.pool,
    ...(base.labels?.length ? { labels: base.labels } : {}),
    with: task.params ?? base.with ?? {},
    config: task.config,
  };
}

/** The draft of one checked task (and of what is nested in it). Paths are relative to the document. */
export function draftOf(task: CheckedTask, defaults: TaskDefaults | undefined): DraftTask {
  const { raw, path } = task;
  const rel = (...keys: (string | number)[]): KeyPath => [...path, ...keys];
  const description = task.base?.description;
  const handler = task.handler;
  return {
    id: task.id,
    path,
    body: bodyOf(task, defaults),
    ...(description !== undefined ? { description } : {}),
    ...(typeof raw.group === 'string' ? { group: { name: raw.group, path: rel('group') } } : {}),
    dependsOn: namesAt(raw, ['depends_on']).map((r) => ({ name: r.name, path: [...path, ...r.path] })),
    dependsOnPath: rel('depends_on'),
    ...(task.triggerRule ? { triggerRule: { ...task.triggerRule, path: rel('trigger_rule') } } : {}),
    templated: task.templated.map((keys) => ({ value: valueAt(raw, keys), path: [...path, ...keys] })),
    ...(task.kind === 'shell'
      ? {
          shellScripts:
            'run' in raw ? shellScriptsOf(raw.run, rel('run')) : shellScriptsOf(raw.command, rel('command')),
        }
      : {}),
    ...(raw.map !== undefined
      ? {
          map: {
            path: rel('map'),
            over: { value: valueAt(raw, ['map', 'over']), path: rel('map', 'over') },
            maxParallel: task.map?.max_parallel ?? null,
            batch: task.map?.batch ?? null,
            onItemFailure: task.map?.on_item_failure ?? 'fail',
            ...(task.inner ? { tasks: task.inner.map((t) => draftOf(t, defaults)) } : {}),
            tasksPath: rel('tasks'),
          },
        }
      : {}),
    // A choice or race that is not a map is a schema problem already; it has no structure to check.
    ...(task.kind === 'choice' && isRecord(raw.choice) ? { choice: choiceOf(task) } : {}),
    ...(task.kind === 'race' && isRecord(raw.race) ? { race: raceOf(task) } : {}),
    ...(handler
      ? {
          onFailure: {
            path: rel('on_failure'),
            handler: draftOf(handler.task, defaults),
            idGiven: typeof valueAt(raw, ['on_failure', 'id']) === 'string',
            recover: handler.keys.recover ?? false,
            on: namesAt(raw, ['on_failure', 'on']).map((r) => ({ name: r.name, path: [...path, ...r.path] })),
          },
        }
      : {}),
    ...(raw.finally === true ? { finally: rel('finally') } : {}),
  };
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
