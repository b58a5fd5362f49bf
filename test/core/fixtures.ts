/**
 * Shared builders for core tests: a compact way to write a FlowSpec, a seeded random
 * source, and a harness that drives the run machine while keeping every event, so a
 * test can check at any point that folding the history reproduces the live state.
 */
import { expect } from 'vitest';
import type { FlowSpec, RetryPolicy, TaskError, TaskSpec } from '../../src/core/model.js';
import { NON_RETRYABLE_CODES } from '../../src/core/model.js';
import type { Decision, FlowPlan, RunEvent, RunInput, RunState, TaskRun } from '../../src/core/run-machine.js';
import { compilePlan, createRunState, decide, foldRun } from '../../src/core/run-machine.js';
import type { TaskStateName, TriggerRule } from '../../src/core/states.js';

export interface TaskDef {
  readonly id: string;
  readonly deps?: readonly string[];
  readonly rule?: TriggerRule;
  readonly retry?: Partial<RetryPolicy>;
}

export const NO_RETRY: RetryPolicy = {
  maxAttempts: 1,
  backoffMs: 1000,
  maxBackoffMs: 60_000,
  jitter: 'none',
  neverRetryOn: NON_RETRYABLE_CODES,
};

export function taskSpec(def: TaskDef): TaskSpec {
  return {
    id: def.id,
    kind: 'function',
    dependsOn: def.deps ?? [],
    triggerRule: def.rule ?? 'all_success',
    retry: { ...NO_RETRY, ...def.retry },
    timeoutMs: null,
    pool: null,
    with: {},
    config: {},
  };
}

export function flowSpec(tasks: readonly TaskDef[], name = 'test-flow'): FlowSpec {
  return { name, params: {}, tasks: tasks.map(taskSpec), pools: {}, maxActiveRuns: null, timeoutMs: null };
}

export function plan(tasks: readonly TaskDef[]): FlowPlan {
  return compilePlan(flowSpec(tasks));
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

  index(task: string): number {
    const i = this.plan.graph.indexOf.get(task);
    if (i === undefined) throw new Error(`no task ${task} in the test flow`);
    return i;
  }

  task(id: string): TaskRun {
    return this.state.tasks[this.index(id)] as TaskRun;
  }

  /** Task id → state name, for compact assertions. */
  states(): Record<string, TaskStateName> {
    return Object.fromEntries(this.state.tasks.map((t, i) => [this.plan.graph.ids[i], t.state]));
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

  /** The crash-recovery guarantee: the fold of the history is the live state. */
  expectFoldMatches(): void {
    expect(comparable(foldRun(this.runId, this.plan, this.events))).toStrictEqual(comparable(this.state));
  }
}

/** The parts of a run state that must survive a crash (the plan is shared, not state). */
export function comparable(run: RunState): Omit<RunState, 'plan'> {
  const { plan: _plan, ...rest } = run;
  return rest;
}
