/**
 * What a front end hands the structure resolver (flow-structure.ts): each task as a
 * `DraftTask` — names as written, with the key path where each was written, and the
 * fields the front end normalizes itself — and what comes back. The YAML loader and the
 * TypeScript builder both speak this, so that one set of checks serves both.
 */
import type { AssetSpec } from '../core/asset-spec.js';
import type { ErrorCode } from '../core/errors.js';
import { DEFAULT_RETRY, ERROR_KINDS, type QuorumSpec, type RetryPolicy, type TaskSpec } from '../core/model.js';
import type { TriggerRule } from '../core/states.js';
import type { KeyPath } from './flow-schema.js';
import type { TemplatedValue } from './reference-check.js';
import { suggest } from './suggest.js';

export type { TemplatedValue } from './reference-check.js';

/** Adds a problem; `at` defaults to the value. */
export type AddProblem = (
  code: ErrorCode,
  path: KeyPath,
  message: string,
  hint: string,
  at?: StructureProblem['at'],
) => void;

export interface StructureProblem {
  readonly code: ErrorCode;
  readonly path: KeyPath;
  readonly message: string;
  readonly hint: string;
  /** `value`: the node at path; `key`: the key of its last segment; `parent`: the map that lacks it. */
  readonly at: 'value' | 'key' | 'parent';
}

/** A name written where a task (or a group) is meant. */
export interface NameRef {
  readonly name: string;
  readonly path: KeyPath;
}

/** The fields of a TaskSpec that each front end normalizes itself. */
export interface TaskBody {
  readonly kind: string;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number | null;
  readonly pool: string | null;
  readonly labels?: readonly string[];
  readonly with: Readonly<Record<string, unknown>>;
  readonly config: Readonly<Record<string, unknown>>;
  readonly produces?: readonly AssetSpec[];
  readonly consumes?: readonly string[];
  readonly cache?: 'inputs';
}

export interface DraftTask {
  readonly id: string;
  /** Where the task is written; problems `at: 'key'` point at its id. */
  readonly path: KeyPath;
  /** Undefined when the front end found problems in the task's own keys. */
  readonly body: TaskBody | undefined;
  readonly description?: string;
  readonly group?: NameRef;
  readonly dependsOn: readonly NameRef[];
  /**
   * The names of `dependsOn`, in order, when the front end holds them as a list: a task whose
   * names are all plain tasks of its level then needs no `NameRef` made for them.
   */
  readonly dependsOnNames?: readonly string[];
  /** Where the task's dependencies are (or would be) written. */
  readonly dependsOnPath: KeyPath;
  /** As written; absent means `all_success`. `quorum` comes with `k_of_n`. */
  readonly triggerRule?: { readonly rule: TriggerRule; readonly path: KeyPath; readonly quorum?: QuorumSpec };
  /** Values of the body holding templates; a plain map's run once per item. */
  readonly templated: readonly TemplatedValue[];
  /** Strings of a shell body that a shell parses (shell-scripts.ts): no expression may be written there. */
  readonly shellScripts?: readonly TemplatedValue[];
  readonly map?: DraftMap;
  readonly choice?: DraftChoice;
  readonly race?: DraftRace;
  readonly onFailure?: DraftCatch;
  /** Present on a finally task: where `finally` is written. */
  readonly finally?: KeyPath;
}

export interface DraftMap {
  readonly path: KeyPath;
  readonly over: TemplatedValue;
  readonly maxParallel: number | null;
  readonly batch: number | null;
  readonly onItemFailure: 'fail' | 'continue';
  /** The tasks of a map over a group; absent for a plain map, whose own body runs per item. */
  readonly tasks?: readonly DraftTask[];
  readonly tasksPath: KeyPath;
}

export interface DraftRule {
  readonly when: TemplatedValue;
  readonly then: readonly NameRef[];
  readonly thenPath: KeyPath;
}

export interface DraftChoice {
  readonly path: KeyPath;
  readonly rules: readonly DraftRule[];
  readonly rulesPath: KeyPath;
  readonly otherwise: readonly NameRef[];
  readonly mode: 'first' | 'all';
  /** Set when the task's code selects (TypeScript): the tasks it may select. */
  readonly branches?: readonly NameRef[];
}

export interface DraftRace {
  readonly path: KeyPath;
  readonly branches: readonly NameRef[];
  readonly branchesPath: KeyPath;
  readonly mode: 'first' | 'all';
  readonly priority: readonly NameRef[] | null;
  readonly priorityPath: KeyPath;
  /** The task's code scores each branch's output (TypeScript). */
  readonly score: boolean;
}

export interface DraftCatch {
  readonly path: KeyPath;
  /** Its id is the one written, else `handlerId(task)`. */
  readonly handler: DraftTask;
  /** True when the id was written (it must then be a valid name). */
  readonly idGiven: boolean;
  readonly recover: boolean;
  readonly on: readonly NameRef[];
}

export interface DraftGroup {
  readonly name: string;
  readonly path: KeyPath;
  readonly description?: string;
}

export interface FlowDraft {
  readonly tasks: readonly DraftTask[];
  readonly groups: readonly DraftGroup[];
  /** Params expressions may read (the flow's and its triggers'). */
  readonly params: readonly string[];
  /** How the front end calls a task's dependencies, for messages: `depends_on`, `after`. */
  readonly dependsOnWord: string;
}

export interface ResolvedFlow {
  /** Present when there are no problems. */
  readonly tasks?: TaskSpec[];
  readonly groups?: Record<string, { description?: string }>;
  readonly problems: StructureProblem[];
}

/** The id of a failure handler whose id is not written. */
export function handlerId(taskId: string): string {
  return `${taskId}.on_failure`;
}

/** The fields of a task that runs nothing itself (a map, a choice, a race). */
export function structuralBody(kind: string, config: Record<string, unknown> = {}): TaskBody {
  return { kind, retry: DEFAULT_RETRY, timeoutMs: null, pool: null, with: {}, config };
}

/**
 * A problem with an error selector of `retry_on`, `never_retry_on` or `on`: lower-case
 * words are taken as error kinds, so a misspelt kind is caught; anything else is a code.
 */
export function errorSelectorProblem(selector: string): { message: string; hint: string } | undefined {
  const kinds: readonly string[] = ERROR_KINDS;
  if (kinds.includes(selector) || !/^[a-z_]+$/.test(selector)) return undefined;
  const guess = suggest(selector, kinds);
  if (guess === undefined) return undefined;
  return {
    message: `"${selector}" is not an error kind (did you mean "${guess}"?)`,
    hint: `Error kinds are ${kinds.join(', ')}; error codes are written as thrown, e.g. TASK_FAILED.`,
  };
}
