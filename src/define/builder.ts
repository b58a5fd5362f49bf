/**
 * The TypeScript flow builder. A flow file creates a flow with `defineFlow`, adds tasks
 * with `.task()` (a function), `.shell()` (a command) and the other task methods
 * (builder-tasks.ts: maps, choices, races, sleeps, waits, approvals, subflows), and
 * exports it. A task's `inputs` are other tasks; their outputs arrive typed in
 * `ctx.inputs`, and the edge is added for you. The builder produces the same normalized
 * `FlowSpec` as the YAML loader, checked by the same structure checks: an input becomes
 * `with: { name: "${{ tasks.<id>.output }}" }`.
 *
 * @example
 * const f = defineFlow({ name: 'etl', params: { day: { type: 'string', default: '2024-01-01' } } });
 * const extract = f.task('extract', async ({ params }) => [params.day]);
 * f.task('load', { inputs: { rows: extract } }, async ({ inputs }) => inputs.rows.length);
 * export default f;
 */
import type { Problem } from '../core/errors.js';
import { BatonError } from '../core/errors.js';
import type { DurationRule } from '../core/duration.js';
import { readDuration } from '../core/duration.js';
import type { FlowSpec, ParamSpec, RetryPolicy } from '../core/model.js';
import { DEFAULT_RETRY } from '../core/model.js';
import type { TaskFunction } from '../core/task-context.js';
import type { z } from 'zod';
import type { OverlapPolicy, TriggerSpec } from '../core/trigger-spec.js';
import { OVERLAP_POLICIES } from '../core/trigger-spec.js';
import { parseDataPath } from '../core/data-path.js';
import { TaskBuilder, newRegistry, registeredFunction, rootLevel, type DraftContext } from './builder-tasks.js';
import type { DurationInput, ParamDef, RetryInput } from './builder-types.js';
import { FLOW_MARK, isFlowDefinitionLike } from './flow-mark.js';
import { formatPath, type KeyPath } from './flow-schema.js';
import { errorSelectorProblem } from './flow-draft.js';
import { resolveFlow } from './flow-structure.js';
import { checkParamSpec } from './params.js';
import { TriggerFileSchema, normalizeTrigger, withTriggerParams } from './trigger-schema.js';

export type {
  ApprovalOptions,
  AssetCheckInput,
  AssetDeclaration,
  BaseTaskOptions,
  BranchOutput,
  ChoiceFunctionOptions,
  ChoiceRule,
  ChoiceRulesOptions,
  CommonTaskOptions,
  DurationInput,
  FlowTaskContext,
  FunctionTaskOptions,
  HandlerContext,
  ItemOf,
  MapGroupOptions,
  MapItemContext,
  MapOverOptions,
  MapTaskOptions,
  OnFailureInput,
  ParamDef,
  ParamValues,
  ParkingTaskOptions,
  RaceOptions,
  RaceResult,
  RaceScoreFunction,
  RetryInput,
  ShellBody,
  ShellTaskOptions,
  SleepOptions,
  SqlInputOption,
  SqlTaskOptions,
  SubflowOptions,
  TaskContext,
  TaskRef,
  TriggerRuleInput,
  Upstream,
  WaitForEventOptions,
  WaitUntilOptions,
} from './builder-types.js';
export { TaskBuilder } from './builder-tasks.js';

export interface FlowOptions<P extends Record<string, ParamDef>> {
  readonly name: string;
  readonly description?: string;
  readonly params?: P;
  readonly defaults?: { readonly retry?: RetryInput; readonly timeout?: DurationInput; readonly pool?: string };
  readonly pools?: Readonly<Record<string, number>>;
  readonly maxActiveRuns?: number;
  readonly timeout?: DurationInput;
  /** What creates runs: the same shape as a YAML flow's `triggers:` map (see docs/triggers.md). */
  readonly triggers?: Readonly<Record<string, TriggerInput>>;
  /** What a trigger does while a run of the flow is active: allow (default), skip, queue, cancel_previous. */
  readonly overlap?: OverlapPolicy;
  /** Task groups, by name; a task's `group` may also name one not declared here. */
  readonly groups?: Readonly<Record<string, { readonly description?: string }>>;
  /** Data paths fetched into the cache when a run starts (`${{ params.x }}` allowed); see docs/data.md. */
  readonly prefetch?: readonly string[];
}

/** A trigger as written in `triggers:` (YAML keys). */
export type TriggerInput = z.input<typeof TriggerFileSchema>;

const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,127}$/;

export class FlowDefinition<P extends Record<string, ParamDef> = Record<string, ParamDef>> extends TaskBuilder<
  P,
  object
> {
  readonly [FLOW_MARK] = true;

  constructor(readonly options: FlowOptions<P>) {
    super(newRegistry(), rootLevel());
  }

  get name(): string {
    return this.options.name;
  }

  /**
   * The code behind a task key: a task's id at the top level; `<map>/<local id>` inside a
   * map over a group (`<outer>/<inner>/<local>` when nested); a plain map's function under
   * the map's key; a handler's under its id (`<task>.on_failure` unless given). For a
   * choice it is the function that selects branches; for a race in mode `all`, the score
   * function `(output, branchId) => number`.
   */
  functionOf(key: string): TaskFunction | undefined {
    return registeredFunction(this.registry, key);
  }

  /** Validates and normalizes; throws DEF_* with every problem listed. */
  toSpec(file = '<flow>'): FlowSpec {
    const problems: Problem[] = [];
    const report = (path: KeyPath, message: string, hint?: string, code: Problem['code'] = 'DEF_INVALID') => {
      const dotted = formatPath(path);
      problems.push({
        code,
        message: `${dotted}: ${message}`,
        ...(hint ? { hint } : {}),
        location: { file, path: dotted },
      });
    };
    const o = this.options;
    if (!NAME.test(o.name)) report(['name'], `"${o.name}" is not a valid flow name`);
    // Timeouts unless told: zero is refused where it would end at once what must take time.
    const duration = (value: DurationInput | undefined, path: KeyPath, rule: DurationRule = 'positive') => {
      if (value === undefined) return null;
      const read = readDuration(value, rule);
      if (read.ok) return read.ms;
      if (read.reason === 'not_a_duration') report(path, `"${value}" is not a duration (use e.g. 250ms, 30s, 5m, 1h)`);
      else report(path, read.message, read.hint);
      return null;
    };
    const retry = (base: RetryPolicy, input: RetryInput | undefined, path: KeyPath): RetryPolicy => {
      if (!input) return base;
      const maxAttempts = input.maxAttempts ?? base.maxAttempts;
      if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100)
        report(path.concat('maxAttempts'), `must be an integer from 1 to 100, got ${maxAttempts}`);
      const backoffMs = duration(input.backoff, path.concat('backoff'), 'non_negative') ?? base.backoffMs;
      const maxBackoffMs = duration(input.maxBackoff, path.concat('maxBackoff'), 'non_negative') ?? base.maxBackoffMs;
      if (backoffMs > maxBackoffMs)
        report(path.concat('maxBackoff'), `must be at least backoff (${backoffMs} ms), got ${maxBackoffMs} ms`);
      for (const key of ['retryOn', 'neverRetryOn'] as const) {
        input[key]?.forEach((selector, i) => {
          const bad = errorSelectorProblem(selector);
          if (bad) report(path.concat(key, i), bad.message, bad.hint);
        });
      }
      return {
        maxAttempts,
        backoffMs,
        maxBackoffMs,
        jitter: input.jitter ?? base.jitter,
        ...((input.retryOn ?? base.retryOn) ? { retryOn: input.retryOn ?? base.retryOn } : {}),
        neverRetryOn: input.neverRetryOn ?? base.neverRetryOn,
        ...((input.countLost ?? base.countLost) ? { countLost: true } : {}),
      };
    };
    const params: Record<string, ParamSpec> = {};
    for (const [name, def] of Object.entries(o.params ?? {})) {
      const spec: ParamSpec = { ...def };
      const message = checkParamSpec(name, spec);
      if (message) report(['params', name], message);
      params[name] = spec;
    }
    const triggers = this.triggers(report);
    const pools = { ...(o.pools ?? {}) };
    const context: DraftContext = {
      defaults: {
        retry: retry(DEFAULT_RETRY, o.defaults?.retry, ['defaults', 'retry']),
        timeoutMs: duration(o.defaults?.timeout, ['defaults', 'timeout']),
        pool: o.defaults?.pool ?? null,
      },
      duration,
      retry,
      problem: report,
      pools,
    };
    const resolved = resolveFlow({
      tasks: this.recorded.map((draft) => draft(context)),
      groups: Object.entries(o.groups ?? {}).map(([name, g]) => ({
        name,
        path: ['groups', name],
        ...(g.description !== undefined ? { description: g.description } : {}),
      })),
      params: Object.keys(withTriggerParams(params, triggers)),
      dependsOnWord: 'after',
    });
    for (const p of resolved.problems) report(p.path, p.message, p.hint, p.code);
    const timeoutMs = duration(o.timeout, ['timeout']);
    if (o.overlap !== undefined && !OVERLAP_POLICIES.includes(o.overlap))
      report(['overlap'], `"${o.overlap}" is not one of ${OVERLAP_POLICIES.join(', ')}`);
    for (const [i, path] of (o.prefetch ?? []).entries()) {
      if (typeof path !== 'string' || !path.startsWith('data://')) {
        report(['prefetch', String(i)], 'must be a data path (data://<mount>/<key>)');
      } else if (!path.includes('${{')) {
        try {
          parseDataPath(path);
        } catch (error) {
          report(['prefetch', String(i)], (error as Error).message);
        }
      }
    }
    const first = problems[0];
    if (first || !resolved.tasks) {
      const message = first?.message ?? 'the flow has no tasks that could be normalized';
      throw new BatonError(
        first?.code ?? 'DEF_INVALID',
        `${problems.length} problem(s) in flow ${o.name} (${file}): ${message}`,
        {
          problems,
        },
      );
    }
    return {
      name: o.name,
      ...(o.description ? { description: o.description } : {}),
      params: withTriggerParams(params, triggers),
      tasks: resolved.tasks,
      pools,
      maxActiveRuns: o.maxActiveRuns ?? null,
      timeoutMs,
      ...(triggers.length > 0 ? { triggers } : {}),
      ...(o.overlap ? { overlap: o.overlap } : {}),
      ...(resolved.groups ? { groups: resolved.groups } : {}),
      ...(o.prefetch?.length ? { prefetch: [...o.prefetch] } : {}),
    };
  }

  private triggers(report: (path: KeyPath, message: string) => void): TriggerSpec[] {
    const triggers: TriggerSpec[] = [];
    for (const [name, input] of Object.entries(this.options.triggers ?? {})) {
      const parsed = TriggerFileSchema.safeParse(input);
      if (!NAME.test(name)) report(['triggers', name], `"${name}" is not a valid trigger name`);
      if (parsed.success) triggers.push(normalizeTrigger(name, parsed.data));
      else
        for (const issue of parsed.error.issues) report(['triggers', name, ...issue.path.map(String)], issue.message);
    }
    return triggers;
  }
}

/** Declares a flow. Export it (default export, or a named export) from a file under `flows/`. */
export function defineFlow<const P extends Record<string, ParamDef> = Record<string, never>>(
  options: FlowOptions<P>,
): FlowDefinition<P> {
  return new FlowDefinition(options);
}

export function isFlowDefinition(value: unknown): value is FlowDefinition {
  return isFlowDefinitionLike(value);
}
