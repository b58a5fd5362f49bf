/**
 * Shared builders for core tests: a compact way to write a FlowSpec, a seeded random
 * source, and a harness that drives the run machine while keeping every event, so a
 * test can check at any point that folding the history reproduces the live state.
 */
import { expect } from 'vitest';
import type {
  CatchSpec,
  ChoiceSpec,
  FlowSpec,
  MapSpec,
  QuorumSpec,
  RaceSpec,
  RetryPolicy,
  TaskError,
  TaskSpec,
} from '../../src/core/model.js';
import { NON_RETRYABLE_CODES } from '../../src/core/model.js';
import type {
  Decision,
  FlowPlan,
  RunCommand,
  RunEvent,
  RunInput,
  RunState,
  TaskRun,
  Wait,
} from '../../src/core/run-machine.js';
import { compilePlan, createRunState, decide, foldRun } from '../../src/core/run-machine.js';
import { taskIdOf, taskIndexOf } from '../../src/core/run-topology.js';
import type { TaskStateName, TriggerRule } from '../../src/core/states.js';

/** A map as a test writes it; every field has a default. */
export interface MapDef {
  readonly over?: string;
  readonly maxParallel?: number | null;
  readonly batch?: number | null;
  readonly onItemFailure?: 'fail' | 'continue';
  /**
   * A map over a group: the group's tasks, with local ids and dependencies. Without it
   * the map is plain and its template is the task itself (same id, retry and kind).
   */
  readonly group?: readonly TaskDef[];
  /** The executor kind of a plain map's template (default `function`). */
  readonly kind?: string;
}

export interface TaskDef {
  readonly id: string;
  readonly deps?: readonly string[];
  readonly rule?: TriggerRule;
  readonly retry?: Partial<RetryPolicy>;
  /** Executor kind; defaults to `function`, or `map` / `race` when those are set. */
  readonly kind?: string;
  readonly map?: MapDef;
  readonly choice?: Partial<ChoiceSpec> & { readonly targets: readonly string[] };
  readonly quorum?: QuorumSpec;
  /** `deps` default to the branches and `rule` to `all_done`, as the front ends write a race. */
  readonly race?: Partial<RaceSpec> & { readonly branches: readonly string[] };
  readonly onFailure?: Partial<CatchSpec> & { readonly handler: string };
  readonly handles?: string;
  readonly finally?: boolean;
  readonly group?: string;
}

export const NO_RETRY: RetryPolicy = {
  maxAttempts: 1,
  backoffMs: 1000,
  maxBackoffMs: 60_000,
  jitter: 'none',
  neverRetryOn: NON_RETRYABLE_CODES,
};

export function taskSpec(def: TaskDef): TaskSpec {
  const kind = def.kind ?? (def.map ? 'map' : def.race ? 'race' : def.choice ? 'choice' : 'function');
  return {
    id: def.id,
    kind,
    dependsOn: def.deps ?? def.race?.branches ?? [],
    triggerRule: def.rule ?? (def.race ? 'all_done' : 'all_success'),
    retry: { ...NO_RETRY, ...def.retry },
    timeoutMs: null,
    pool: null,
    with: {},
    config: {},
    ...(def.map ? { map: mapSpec(def, def.map) } : {}),
    ...(def.choice
      ? {
          choice: {
            rules: def.choice.rules ?? [],
            otherwise: def.choice.otherwise ?? [],
            mode: def.choice.mode ?? 'first',
            targets: def.choice.targets,
          },
        }
      : {}),
    ...(def.quorum ? { quorum: def.quorum } : {}),
    ...(def.race
      ? {
          race: {
            branches: def.race.branches,
            mode: def.race.mode ?? 'first',
            priority: def.race.priority ?? null,
            score: def.race.score ?? false,
          },
        }
      : {}),
    ...(def.onFailure
      ? {
          onFailure: {
            handler: def.onFailure.handler,
            recover: def.onFailure.recover ?? false,
            on: def.onFailure.on ?? [],
          },
        }
      : {}),
    ...(def.handles !== undefined ? { handles: def.handles } : {}),
    ...(def.finally ? { finally: true } : {}),
    ...(def.group !== undefined ? { group: def.group } : {}),
  };
}

function mapSpec(def: TaskDef, map: MapDef): MapSpec {
  const template = map.group
    ? map.group.map((t) => ({ ...taskSpec(t), key: `${def.id}/${t.id}` }))
    : [taskSpec({ id: def.id, retry: def.retry, kind: map.kind ?? 'function' })];
  return {
    over: map.over ?? '${{ params.items }}',
    maxParallel: map.maxParallel ?? null,
    batch: map.batch ?? null,
    onItemFailure: map.onItemFailure ?? 'fail',
    group: map.group !== undefined,
    template,
  };
}

export function flowSpec(tasks: readonly TaskDef[], name = 'test-flow'): FlowSpec {
  return { name, params: {}, tasks: tasks.map(taskSpec), pools: {}, maxActiveRuns: null, timeoutMs: null };
}

export function plan(tasks: readonly TaskDef[], extra: Partial<FlowSpec> = {}): FlowPlan {
  return compilePlan({ ...flowSpec(tasks), ...extra });
}

/** mulberry32: a small deterministic generator returning numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const boom: TaskError = { code: 'BOOM', message: 'task body threw', source: 'user' };

/** Drives one run: feeds inputs at an explicit clock and keeps the whole history. */
export class RunHarness {
  readonly events: RunEvent[] = [];
  state: RunState;
  now = 1_000;
  readonly random: () => number;

  constructor(
    readonly plan: FlowPlan,
    seed = 42,
    readonly runId = 'run-1',
  ) {
    this.state = createRunState(runId, plan);
    this.random = seededRandom(seed);
  }

  feed(input: RunInput): Decision {
    const decision = decide(this.state, input, this.now, this.random);
    this.events.push(...decision.events);
    return decision;
  }

  /** Index of a task run by id: a flow task, or a map instance (`m[3]`, `m[0].load`). */
  index(task: string): number {
    const i = taskIndexOf(this.state, task);
    if (i === undefined) throw new Error(`no task ${task} in the test run`);
    return i;
  }

  task(id: string): TaskRun {
    return this.state.tasks[this.index(id)] as TaskRun;
  }

  /** Task id → state name, for compact assertions. */
  states(): Record<string, TaskStateName> {
    return Object.fromEntries(this.state.tasks.map((t, i) => [taskIdOf(this.state, i), t.state]));
  }

  /** Ids of the task runs a decision dispatches, in order. */
  dispatched(decision: Decision): string[] {
    return decision.commands.flatMap((c) => (c.type === 'dispatch' ? [taskIdOf(this.state, c.task)] : []));
  }

  /** Commands of one type from a decision. */
  commands<T extends RunCommand['type']>(decision: Decision, type: T): Extract<RunCommand, { type: T }>[] {
    return decision.commands.filter((c): c is Extract<RunCommand, { type: T }> => c.type === type);
  }

  /** Starts the task's next attempt and returns its number. */
  startAttempt(task: string): number {
    this.feed({ type: 'attempt_started', task: this.index(task) });
    return this.task(task).attempt;
  }

  succeed(task: string, output: unknown = `${task}-out`): Decision {
    const attempt = this.startAttempt(task);
    return this.feed({ type: 'attempt_succeeded', task: this.index(task), attempt, output });
  }

  fail(task: string, error: TaskError = boom): Decision {
    const attempt = this.startAttempt(task);
    return this.feed({ type: 'attempt_failed', task: this.index(task), attempt, error });
  }

  /** Starts a map task's attempt and hands it its items, as the engine does. */
  expand(task: string, items: readonly unknown[]): Decision {
    const attempt = this.startAttempt(task);
    return this.feed({ type: 'map_items', task: this.index(task), attempt, items });
  }

  /** Starts a parking task's attempt and parks it on `wait`, as the engine does. */
  park(task: string, wait: Wait): Decision {
    const attempt = this.startAttempt(task);
    return this.feed({ type: 'attempt_parked', task: this.index(task), attempt, wait });
  }

  /** The crash-recovery guarantee: the fold of the history is the live state. */
  expectFoldMatches(): void {
    expect(comparable(foldRun(this.runId, this.plan, this.events))).toStrictEqual(comparable(this.state));
  }
}

/** The parts of a run state that must survive a crash (the plan is shared, not state). */
export function comparable(run: RunState): Omit<RunState, 'plan' | 'followUps'> {
  const { plan: _plan, followUps: _followUps, ...rest } = run;
  return rest;
}
