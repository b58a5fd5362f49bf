/**
 * The TypeScript flow builder. A flow file creates a flow with `defineFlow`, adds tasks
 * with `.task()` (a function) and `.shell()` (a command), and exports it. A task's
 * `inputs` are other tasks; their outputs arrive typed in `ctx.inputs`, and the edge is
 * added for you. The builder produces the same normalized `FlowSpec` as the YAML loader:
 * an input becomes `with: { name: "${{ tasks.<id>.output }}" }`.
 *
 * @example
 * const f = defineFlow({ name: 'etl', params: { day: { type: 'string', default: '2024-01-01' } } });
 * const extract = f.task('extract', async ({ params }) => [params.day]);
 * f.task('load', { inputs: { rows: extract } }, async ({ inputs }) => inputs.rows.length);
 * export default f;
 */
import type { Problem } from '../core/errors.js';
import { BatonError } from '../core/errors.js';
import { findGraphProblems } from '../core/graph.js';
import { parseDuration } from '../core/duration.js';
import type { FlowSpec, ParamSpec, ParamType, RetryPolicy, TaskSpec } from '../core/model.js';
import { DEFAULT_RETRY } from '../core/model.js';
import type { TriggerRule } from '../core/states.js';
import { TRIGGER_RULES } from '../core/states.js';
import type { AttemptContext, TaskFunction } from '../core/task-context.js';
import type { z } from 'zod';
import type { OverlapPolicy, TriggerSpec } from '../core/trigger-spec.js';
import { OVERLAP_POLICIES } from '../core/trigger-spec.js';
import { FLOW_MARK, isFlowDefinitionLike } from './flow-mark.js';
import { checkParamSpec } from './params.js';
import { TriggerFileSchema, normalizeTrigger, withTriggerParams } from './trigger-schema.js';

/** A param declaration; the value type follows `type`. */
export interface ParamDef {
  readonly type: ParamType;
  readonly default?: unknown;
  readonly description?: string;
  readonly enum?: readonly unknown[];
}

type ValueOf<T extends ParamType> = T extends 'string'
  ? string
  : T extends 'number' | 'integer'
    ? number
    : T extends 'boolean'
      ? boolean
      : T extends 'array'
        ? unknown[]
        : Record<string, unknown>;

/** The params object a task sees, typed from the declarations. */
export type ParamValues<P extends Record<string, ParamDef>> = { readonly [K in keyof P]: ValueOf<P[K]['type']> };

/** A duration in ms or as text (`250ms`, `30s`, `5m`). */
export type DurationInput = number | string;

export interface RetryInput {
  readonly maxAttempts?: number;
  readonly backoff?: DurationInput;
  readonly maxBackoff?: DurationInput;
  readonly jitter?: 'full' | 'none';
  readonly retryOn?: readonly string[];
  readonly neverRetryOn?: readonly string[];
  /** Count attempts lost with their worker against maxAttempts (default false). */
  readonly countLost?: boolean;
}

/** A handle on a declared task; `O` is its output type. */
export interface TaskRef<O = unknown> {
  readonly id: string;
  /** Phantom field carrying the output type; never set at run time. */
  readonly __output?: O;
}

type OutputOf<R> = R extends TaskRef<infer O> ? O : never;

export interface CommonTaskOptions {
  /** Extra upstream tasks whose outputs are not needed. */
  readonly after?: readonly TaskRef[];
  readonly retry?: RetryInput;
  readonly timeout?: DurationInput;
  readonly pool?: string;
  /** Labels a worker must have to take this task (PostgreSQL deployments). */
  readonly labels?: readonly string[];
  readonly triggerRule?: TriggerRule;
  readonly description?: string;
}

export interface FunctionTaskOptions<I extends Record<string, TaskRef>> extends CommonTaskOptions {
  /** Upstream tasks whose outputs this task reads, by input name. */
  readonly inputs?: I;
}

export interface ShellTaskOptions extends CommonTaskOptions {
  /** argv (run without a shell), or a command line when `shell` is set. */
  readonly command: readonly string[] | string;
  readonly shell?: boolean | string;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/** What a function task receives. */
export interface FlowTaskContext<P, I> extends Omit<AttemptContext, 'params' | 'inputs'> {
  readonly params: P;
  readonly inputs: I;
}

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
}

/** A trigger as written in `triggers:` (YAML keys). */
export type TriggerInput = z.input<typeof TriggerFileSchema>;

interface DraftTask {
  readonly id: string;
  readonly kind: string;
  readonly dependsOn: string[];
  readonly options: CommonTaskOptions;
  readonly with: Record<string, unknown>;
  readonly config: Record<string, unknown>;
}

export class FlowDefinition<P extends Record<string, ParamDef> = Record<string, ParamDef>> {
  readonly [FLOW_MARK] = true;
  private readonly drafts: DraftTask[] = [];
  private readonly functions = new Map<string, TaskFunction>();

  constructor(readonly options: FlowOptions<P>) {}

  get name(): string {
    return this.options.name;
  }

  /** Adds a function task. */
  task<O, I extends Record<string, TaskRef> = Record<string, never>>(
    id: string,
    fn: (ctx: FlowTaskContext<ParamValues<P>, { [K in keyof I]: OutputOf<I[K]> }>) => O | Promise<O>,
  ): TaskRef<Awaited<O>>;
  task<O, I extends Record<string, TaskRef> = Record<string, never>>(
    id: string,
    options: FunctionTaskOptions<I>,
    fn: (ctx: FlowTaskContext<ParamValues<P>, { [K in keyof I]: OutputOf<I[K]> }>) => O | Promise<O>,
  ): TaskRef<Awaited<O>>;
  task(id: string, a: unknown, b?: unknown): TaskRef {
    const options = (typeof a === 'function' ? {} : a) as FunctionTaskOptions<Record<string, TaskRef>>;
    const fn = (typeof a === 'function' ? a : b) as TaskFunction;
    const inputs = options.inputs ?? {};
    const withValues: Record<string, unknown> = {};
    for (const [name, ref] of Object.entries(inputs)) withValues[name] = `\${{ tasks.${ref.id}.output }}`;
    const deps = [...Object.values(inputs).map((r) => r.id), ...(options.after ?? []).map((r) => r.id)];
    this.drafts.push({ id, kind: 'function', dependsOn: [...new Set(deps)], options, with: withValues, config: {} });
    this.functions.set(id, fn);
    return { id };
  }

  /** Adds a shell task; its output is the last line of stdout (or the JSON written to `$BATON_OUTPUT`). */
  shell(id: string, options: ShellTaskOptions): TaskRef<unknown> {
    const config: Record<string, unknown> = { command: options.command };
    if (options.shell !== undefined) config.shell = options.shell;
    if (options.env) config.env = options.env;
    if (options.cwd) config.cwd = options.cwd;
    const deps = (options.after ?? []).map((r) => r.id);
    this.drafts.push({ id, kind: 'shell', dependsOn: [...new Set(deps)], options, with: {}, config });
    return { id };
  }

  /** The function behind a task, for the engine. */
  functionOf(taskId: string): TaskFunction | undefined {
    return this.functions.get(taskId);
  }

  /** Validates and normalizes; throws DEF_* with every problem listed. */
  toSpec(file = '<flow>'): FlowSpec {
    const problems: Problem[] = [];
    const at = (path: string) => ({ file, path });
    const o = this.options;
    if (!/^[A-Za-z_][A-Za-z0-9_-]{0,127}$/.test(o.name)) {
      problems.push({
        code: 'DEF_INVALID',
        message: `name: "${o.name}" is not a valid flow name`,
        location: at('name'),
      });
    }
    const duration = (value: DurationInput | undefined, path: string): number | null => {
      if (value === undefined) return null;
      const ms = parseDuration(value);
      if (ms === undefined) {
        problems.push({
          code: 'DEF_INVALID',
          message: `${path}: "${value}" is not a duration (use e.g. 250ms, 30s, 5m, 1h)`,
          location: at(path),
        });
        return null;
      }
      return ms;
    };
    const retry = (base: RetryPolicy, input: RetryInput | undefined, path: string): RetryPolicy => {
      if (!input) return base;
      const maxAttempts = input.maxAttempts ?? base.maxAttempts;
      if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 100) {
        problems.push({
          code: 'DEF_INVALID',
          message: `${path}.maxAttempts: must be an integer from 1 to 100, got ${maxAttempts}`,
          location: at(`${path}.maxAttempts`),
        });
      }
      const backoffMs = duration(input.backoff, `${path}.backoff`) ?? base.backoffMs;
      const maxBackoffMs = duration(input.maxBackoff, `${path}.maxBackoff`) ?? base.maxBackoffMs;
      if (backoffMs > maxBackoffMs) {
        problems.push({
          code: 'DEF_INVALID',
          message: `${path}.maxBackoff: must be at least backoff (${backoffMs} ms), got ${maxBackoffMs} ms`,
          location: at(`${path}.maxBackoff`),
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
      if (message)
        problems.push({ code: 'DEF_INVALID', message: `params.${name}: ${message}`, location: at(`params.${name}`) });
      params[name] = spec;
    }
    const defaultRetry = retry(DEFAULT_RETRY, o.defaults?.retry, 'defaults.retry');
    const defaultTimeout = duration(o.defaults?.timeout, 'defaults.timeout');
    const pools = { ...(o.pools ?? {}) };
    const tasks: TaskSpec[] = this.drafts.map((d) => {
      const path = `tasks.${d.id}`;
      if (!/^[A-Za-z_][A-Za-z0-9_-]{0,127}$/.test(d.id)) {
        problems.push({
          code: 'DEF_INVALID',
          message: `${path}: "${d.id}" is not a valid task id`,
          location: at(path),
        });
      }
      const rule = d.options.triggerRule ?? 'all_success';
      if (!TRIGGER_RULES.includes(rule)) {
        problems.push({
          code: 'DEF_INVALID',
          message: `${path}.triggerRule: "${rule}" is not one of ${TRIGGER_RULES.join(', ')}`,
          location: at(`${path}.triggerRule`),
        });
      }
      for (const label of d.options.labels ?? []) {
        if (!/^[A-Za-z0-9_.:-]+$/.test(label)) {
          problems.push({
            code: 'DEF_INVALID',
            message: `${path}.labels: "${label}" is not a label (letters, digits and _ . : - only)`,
            location: at(`${path}.labels`),
          });
        }
      }
      const pool = d.options.pool ?? o.defaults?.pool ?? null;
      if (pool !== null && !(pool in pools)) {
        problems.push({
          code: 'DEF_INVALID',
          message: `${path}.pool: pool "${pool}" is not declared`,
          hint: `Declare it in the flow's pools, e.g. pools: { ${pool}: 2 }.`,
          location: at(`${path}.pool`),
        });
      }
      return {
        id: d.id,
        kind: d.kind,
        dependsOn: d.dependsOn,
        triggerRule: rule,
        retry: retry(defaultRetry, d.options.retry, `${path}.retry`),
        timeoutMs: duration(d.options.timeout, `${path}.timeout`) ?? defaultTimeout,
        pool,
        ...(d.options.labels?.length ? { labels: [...d.options.labels] } : {}),
        with: d.with,
        config: d.config,
        ...(d.options.description ? { description: d.options.description } : {}),
      };
    });
    for (const p of findGraphProblems(tasks)) {
      if (p.kind === 'duplicate') {
        problems.push({
          code: 'DEF_DUPLICATE_TASK',
          message: `tasks: task id "${p.id}" is used twice`,
          location: at(`tasks.${p.id}`),
        });
      } else if (p.kind === 'unknown_dependency') {
        problems.push({
          code: 'DEF_UNKNOWN_DEPENDENCY',
          message: `tasks.${p.id}: depends on "${p.dependency}", which is not a task of this flow`,
          hint: 'Pass a TaskRef returned by .task() or .shell() of the same flow.',
          location: at(`tasks.${p.id}`),
        });
      } else if (p.kind === 'self_dependency') {
        problems.push({
          code: 'DEF_CYCLE',
          message: `tasks.${p.id}: a task cannot depend on itself`,
          location: at(`tasks.${p.id}`),
        });
      } else {
        problems.push({
          code: 'DEF_CYCLE',
          message: `cycle: ${p.path.join(' → ')}`,
          location: at(`tasks.${p.path[0]}`),
        });
      }
    }
    const timeoutMs = duration(o.timeout, 'timeout');
    const triggers: TriggerSpec[] = [];
    for (const [name, input] of Object.entries(o.triggers ?? {})) {
      const parsed = TriggerFileSchema.safeParse(input);
      if (!/^[A-Za-z_][A-Za-z0-9_-]{0,127}$/.test(name)) {
        problems.push({
          code: 'DEF_INVALID',
          message: `triggers: "${name}" is not a valid trigger name`,
          location: at(`triggers.${name}`),
        });
      }
      if (parsed.success) triggers.push(normalizeTrigger(name, parsed.data));
      else {
        for (const issue of parsed.error.issues) {
          const path = ['triggers', name, ...issue.path.map(String)].join('.');
          problems.push({ code: 'DEF_INVALID', message: `${path}: ${issue.message}`, location: at(path) });
        }
      }
    }
    if (o.overlap !== undefined && !OVERLAP_POLICIES.includes(o.overlap)) {
      problems.push({
        code: 'DEF_INVALID',
        message: `overlap: "${o.overlap}" is not one of ${OVERLAP_POLICIES.join(', ')}`,
        location: at('overlap'),
      });
    }
    if (problems.length > 0) {
      const first = problems[0] as Problem;
      throw new BatonError(first.code, `${problems.length} problem(s) in flow ${o.name} (${file}): ${first.message}`, {
        problems,
      });
    }
    return {
      name: o.name,
      ...(o.description ? { description: o.description } : {}),
      params: withTriggerParams(params, triggers),
      tasks,
      pools,
      maxActiveRuns: o.maxActiveRuns ?? null,
      timeoutMs,
      ...(triggers.length > 0 ? { triggers } : {}),
      ...(o.overlap ? { overlap: o.overlap } : {}),
    };
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
