/**
 * The task methods of the TypeScript builder, shared by a flow and by the template of a
 * map over a group (`f.mapGroup(id, opts, (g) => { g.task(…) })`). Each method records
 * the task and registers its code under the task's key; `FlowDefinition.toSpec` turns the
 * records into drafts and lets the structure resolver (flow-structure.ts) check and
 * normalize them exactly as it does a YAML flow's.
 *
 * Refs remember the level they were made at. A task inside a map that names a task of an
 * enclosing level (in `inputs`, `after` or `over`) cannot depend on it, since template
 * dependencies are local; the map at that level waits for it instead.
 */
import { readConsumes, readProduces } from './asset-schema.js';
import type { AssetDeclaration } from './builder-types.js';
import { CACHEABLE_KINDS, isParkingKind, type RetryPolicy } from '../core/model.js';
import type { TaskFunction } from '../core/task-context.js';
import type {
  ApprovalOptions,
  BaseTaskOptions,
  BranchOutput,
  RaceResult,
  ChoiceFunctionOptions,
  ChoiceRulesOptions,
  CommonTaskOptions,
  DurationInput,
  FunctionTaskOptions,
  InputsOf,
  ItemOf,
  MapGroupOptions,
  MapItemContext,
  MapOverOptions,
  MapTaskOptions,
  OnFailureInput,
  ParamDef,
  ParkingTaskOptions,
  RaceOptions,
  RaceScoreFunction,
  RetryInput,
  ShellBody,
  ShellTaskOptions,
  SleepOptions,
  SqlTaskOptions,
  SubflowOptions,
  TaskContext,
  TaskRef,
  Upstream,
  WaitForEventOptions,
  WaitUntilOptions,
} from './builder-types.js';
import { parseWith, type KeyPath } from './flow-schema.js';
import {
  handlerId,
  structuralBody,
  type DraftCatch,
  type DraftTask,
  type NameRef,
  type TaskBody,
  type TemplatedValue,
} from './flow-draft.js';
import { BODY_FORMS, NAMED_TRIGGER_RULES, type BodyForm } from './task-schema.js';
import { shellScriptsOf } from './shell-scripts.js';
import { SqlTaskSchema } from './sql-schema.js';
import { BatonError } from '../core/errors.js';

/** What toSpec gives a recorded task to become a draft: the flow's defaults, and checks that report. */
export interface DraftContext {
  readonly defaults: { readonly retry: RetryPolicy; readonly timeoutMs: number | null; readonly pool: string | null };
  duration(value: DurationInput | undefined, path: KeyPath): number | null;
  retry(base: RetryPolicy, input: RetryInput | undefined, path: KeyPath): RetryPolicy;
  problem(path: KeyPath, message: string, hint?: string): void;
  readonly pools: Readonly<Record<string, number>>;
}

/** One level of tasks: the flow, or a map's template. Identity marks which refs belong to it. */
export interface Level {
  /** Where its tasks are written: `['tasks']`, `['tasks', '<map>', 'tasks']`, … */
  readonly path: KeyPath;
  /** Key prefix of its tasks (`<map>`), null at the top level. */
  readonly keyPrefix: string | null;
  /** For a template: the enclosing level, and the dependencies its map takes on behalf of its tasks. */
  readonly parent?: { readonly level: Level; readonly lifted: NameRef[] };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const OWNER = Symbol('baton.level');

/**
 * Shared empty settings: most tasks of a large flow have no inputs or config, and one
 * empty object per task and field adds up over 100,000 tasks. Specs are never mutated.
 */
const NONE: Readonly<Record<string, unknown>> = Object.freeze({});
const NO_VALUES: readonly TemplatedValue[] = Object.freeze([]);
const NO_DEPS: readonly NameRef[] = Object.freeze([]);
const NO_NAMES: readonly string[] = Object.freeze([]);
/** What a task without inputs takes from them. */
const NO_INPUTS = Object.freeze({ with: NONE, deps: NO_DEPS, templated: NO_VALUES });
/** The body of a function task without inputs: the same for every such task. */
const PLAIN_FUNCTION: RecordedBody = Object.freeze({
  kind: 'function',
  with: NONE,
  config: NONE,
  templated: NO_VALUES,
});

/**
 * A name written at `list[index]` (an entry of `after`). Its key path is made only when a
 * problem names it: a flow may list 300,000 dependencies, and nearly all are fine.
 */
class ListedName implements NameRef {
  constructor(
    readonly name: string,
    private readonly level: Level,
    private readonly task: string,
    private readonly index: number,
  ) {}

  get path(): KeyPath {
    return this.level.path.concat(this.task, 'after', this.index);
  }
}

/**
 * The draft of a task that runs a body, with its key paths made when read (when a problem
 * names them) rather than once per task: a flow may record 100,000 tasks.
 */
class RunningDraft {
  constructor(
    readonly id: string,
    private readonly level: Level,
    private deps: readonly NameRef[] | undefined,
    /** Set when every dependency was written in `after` as a task of this level (or a name). */
    readonly dependsOnNames?: readonly string[],
  ) {}

  get dependsOn(): readonly NameRef[] {
    const names = this.dependsOnNames ?? NO_NAMES;
    this.deps ??= names.map((name, i) => new ListedName(name, this.level, this.id, i));
    return this.deps;
  }

  get path(): KeyPath {
    return this.level.path.concat(this.id);
  }

  get dependsOnPath(): KeyPath {
    return this.level.path.concat(this.id, 'after');
  }
}

/**
 * A ref as `ref()` hands it out: the task's id, and the level it was made at under a symbol
 * key (invisible to JSON and Object.keys). Both are set at construction, so that each of a
 * flow's 100,000 refs is one object of one shape.
 */
class LevelRef {
  readonly [OWNER]: Level;
  constructor(
    readonly id: string,
    level: Level,
  ) {
    this[OWNER] = level;
  }
}

/** Code registered under task keys, and the level each ref was made at; shared by a flow's levels. */
export interface Registry {
  readonly functions: Map<string, unknown>;
  /** The level each ref was made in, kept on the ref itself (a WeakMap of 100,000 refs slows every GC). */
  readonly owners: { get(ref: object): Level | undefined };
}

export function newRegistry(): Registry {
  return {
    functions: new Map(),
    owners: { get: (ref) => (ref as { [OWNER]?: Level })[OWNER] },
  };
}

/** The level of a flow's own tasks. */
export function rootLevel(): Level {
  return { path: ['tasks'], keyPrefix: null };
}

type Recorded = (ctx: DraftContext) => DraftTask;

type Fn<P extends Record<string, ParamDef>, I extends Record<string, TaskRef>, X extends object, O> = (
  ctx: TaskContext<P, InputsOf<I>, X>,
) => O | Promise<O>;

type NoInputs = Readonly<Record<string, never>>;

/** What a choice function returns: the id of one branch, or of several. */
type Selection<B extends string> = B | readonly B[];

function isShellBody(value: unknown): value is ShellBody {
  return typeof value === 'object' && value !== null && 'command' in value;
}

function shellConfig(body: ShellBody): Record<string, unknown> {
  return {
    command: body.command,
    ...(body.shell !== undefined ? { shell: body.shell } : {}),
    ...(body.env ? { env: body.env } : {}),
    ...(body.cwd ? { cwd: body.cwd } : {}),
  };
}

/** The templated values of a shell body, at the option names. */
function shellTemplated(body: ShellBody, path: KeyPath): TemplatedValue[] {
  return [
    { value: body.command, path: path.concat('command') },
    { value: body.env, path: path.concat('env') },
  ];
}

/** What a task or handler runs, as recordRunning and handlerOf take it. */
interface RecordedBody {
  readonly kind: string;
  readonly with: Readonly<Record<string, unknown>>;
  readonly config: Readonly<Record<string, unknown>>;
  readonly templated: readonly TemplatedValue[];
  readonly shellScripts?: readonly TemplatedValue[];
}

function shellRecord(body: ShellBody, path: KeyPath): RecordedBody {
  return {
    kind: 'shell',
    with: NONE,
    config: shellConfig(body),
    templated: shellTemplated(body, path),
    shellScripts: shellScriptsOf(body.command, path.concat('command')),
  };
}

/**
 * The task methods of one level. `P` types params; `X` is what task code receives besides
 * (the item, inside a map).
 */
export class TaskBuilder<P extends Record<string, ParamDef>, X extends object> {
  /** The level's tasks in declaration order, as toSpec will draft them. */
  protected readonly recorded: Recorded[] = [];

  constructor(
    protected readonly registry: Registry,
    private readonly level: Level,
  ) {}

  /** Adds a function task. */
  task<O, I extends Record<string, TaskRef> = Record<string, never>>(
    id: string,
    fn: Fn<P, I, X, O>,
  ): TaskRef<Awaited<O>>;
  task<O, I extends Record<string, TaskRef> = Record<string, never>>(
    id: string,
    options: FunctionTaskOptions<I, P, X>,
    fn: Fn<P, I, X, O>,
  ): TaskRef<Awaited<O>>;
  task(id: string, a: unknown, b?: unknown): TaskRef {
    const options = (typeof a === 'function' ? NONE : a) as FunctionTaskOptions<Record<string, TaskRef>, P, X>;
    const inputs = options.inputs ? this.inputsOf(options.inputs, this.pathOf(id)) : NO_INPUTS;
    const names = inputs === NO_INPUTS ? this.plainNames(options.after) : undefined;
    const after = names ? undefined : this.upstream(options.after, id);
    const deps = after === undefined || inputs.deps.length === 0 ? after : inputs.deps.concat(after);
    this.registry.functions.set(this.keyOf(id), typeof a === 'function' ? a : b);
    const body: RecordedBody =
      inputs === NO_INPUTS
        ? PLAIN_FUNCTION
        : { kind: 'function', with: inputs.with, config: NONE, templated: inputs.templated };
    this.recordRunning(id, options, deps, body, NONE, names);
    return this.ref(id);
  }

  /** Adds a shell task; its output is the last line of stdout (or the JSON written to `$BATON_OUTPUT`). */
  shell(id: string, options: ShellTaskOptions<P, X>): TaskRef<unknown> {
    const path = this.pathOf(id);
    this.recordRunning(id, options, this.upstream(options.after, id), shellRecord(options, path));
    return this.ref(id);
  }

  /**
   * Adds a sql task: the same keys as in YAML (`kind: sql`), camelCased, checked when it is
   * added (DEF_INVALID listing every problem). An input `{ task: ref }` makes the task depend on it.
   */
  sql(id: string, options: SqlTaskOptions<P, X>): TaskRef<unknown> {
    const path = this.pathOf(id);
    const inputTasks: Upstream[] = [];
    const inputs: Record<string, unknown> = {};
    for (const [name, input] of Object.entries(options.inputs ?? {})) {
      if (typeof input === 'object' && 'task' in input) {
        inputTasks.push(input.task);
        inputs[name] = { task: typeof input.task === 'string' ? input.task : input.task.id };
      } else inputs[name] = input;
    }
    const written = {
      ...(options.engine !== undefined ? { engine: options.engine } : {}),
      ...(options.mount !== undefined ? { mount: options.mount } : {}),
      ...(options.inputs !== undefined ? { inputs } : {}),
      sql: options.sql,
      ...(options.params !== undefined ? { params: options.params } : {}),
      ...(options.output !== undefined ? { output: options.output } : {}),
    };
    const parsed = parseWith(SqlTaskSchema, written, path, 'a sql task');
    if (!parsed.ok) {
      const problems = parsed.problems.map((p) => ({
        code: 'DEF_INVALID' as const,
        message: `${p.path.join('.')}: ${p.message}`,
        hint: p.hint,
      }));
      throw new BatonError('DEF_INVALID', `sql task ${id}: ${problems.map((p) => p.message).join('; ')}`, {
        problems,
        hint: problems[0]?.hint,
      });
    }
    const after = [...(options.after ?? []), ...inputTasks];
    this.recordRunning(id, options, this.upstream(after, id), {
      kind: 'sql',
      with: NONE,
      config: parsed.data as Record<string, unknown>,
      templated: [{ value: options.params, path: path.concat('params') }],
    });
    return this.ref(id);
  }

  /**
   * Adds a mapped task: `fn` (or the command) runs once per item of `over`, with `ctx.item`
   * (an array of items with `batch`) and `ctx.mapIndex`. Its output lists the items' outputs.
   */
  map<T, O, I extends Record<string, TaskRef> = Record<string, never>, const B extends number | undefined = undefined>(
    id: string,
    options: MapTaskOptions<T, I, P, X, B>,
    fn: Fn<P, I, X & MapItemContext<ItemOf<T, B>>, O>,
  ): TaskRef<Awaited<O>[]>;
  map<T, const B extends number | undefined = undefined>(
    id: string,
    options: MapOverOptions<T, B> & CommonTaskOptions<P, X & MapItemContext<ItemOf<T, B>>>,
    body: ShellBody,
  ): TaskRef<unknown[]>;
  map(id: string, options: MapTaskOptions<unknown, Record<string, TaskRef>, P, X, undefined>, body: unknown): TaskRef {
    const path = this.pathOf(id);
    const over = this.overOf(options.over, path);
    const inputs = this.inputsOf(options.inputs, path);
    const deps = over.deps.concat(inputs.deps, this.upstream(options.after, id));
    const shell = isShellBody(body) ? body : undefined;
    if (!shell) this.registry.functions.set(this.keyOf(id), body);
    this.recordRunning(
      id,
      options,
      deps,
      shell
        ? shellRecord(shell, path)
        : { kind: 'function', with: inputs.with, config: NONE, templated: inputs.templated },
      { map: this.mapOf(options, path, over.value) },
    );
    return this.ref(id);
  }

  /** Adds a map over a group: the tasks `build` adds run once per item, with ids local to the item. */
  mapGroup<T, const B extends number | undefined = undefined>(
    id: string,
    options: MapGroupOptions<T, B>,
    build: (group: TaskBuilder<P, X & MapItemContext<ItemOf<T, B>>>) => void,
  ): TaskRef<unknown[]> {
    const path = this.pathOf(id);
    const over = this.overOf(options.over, path);
    const deps = over.deps.concat(this.upstream(options.after, id));
    const lifted: NameRef[] = [];
    const inner = new TaskBuilder<P, X & MapItemContext<ItemOf<T, B>>>(this.registry, {
      path: path.concat('tasks'),
      keyPrefix: this.keyOf(id),
      parent: { level: this.level, lifted },
    });
    build(inner);
    this.recorded.push((ctx) => ({
      ...this.shapeOf(id, options, deps.concat(...lifted)),
      body: structuralBody('map'),
      templated: [],
      map: { ...this.mapOf(options, path, over.value), tasks: inner.recorded.map((r) => r(ctx)) },
    }));
    return this.ref(id) as TaskRef<unknown[]>;
  }

  /** Adds a choice: the tasks of the first rule whose `when` holds run, the others' are skipped. */
  choice(id: string, options: ChoiceRulesOptions): TaskRef<unknown>;
  /** Adds a choice whose function returns the branch (or branches) to run. */
  choice<const B extends string>(
    id: string,
    options: ChoiceFunctionOptions<B>,
    select: (ctx: TaskContext<P, NoInputs, X>) => Selection<NoInfer<B>> | Promise<Selection<NoInfer<B>>>,
  ): TaskRef<unknown>;
  choice(id: string, options: ChoiceRulesOptions | ChoiceFunctionOptions<string>, select?: unknown): TaskRef {
    const path = this.pathOf(id);
    const deps = this.upstream(options.after, id);
    const names = (list: readonly Upstream[] | undefined, at: KeyPath): NameRef[] =>
      (list ?? []).map((u, i) => ({ name: typeof u === 'string' ? u : u.id, path: at.concat(i) }));
    if (select !== undefined) this.registry.functions.set(this.keyOf(id), select);
    this.recorded.push(() => {
      const shape = this.shapeOf(id, options, deps);
      if ('branches' in options) {
        return {
          ...shape,
          body: structuralBody('choice', { select: 'function' }),
          templated: [],
          choice: {
            path,
            rules: [],
            rulesPath: path.concat('rules'),
            otherwise: [],
            mode: 'first',
            branches: names(options.branches, path.concat('branches')),
          },
        };
      }
      return {
        ...shape,
        body: structuralBody('choice'),
        templated: [],
        choice: {
          path,
          rules: (options.rules ?? []).map((rule, i) => ({
            when: { value: rule.when, path: path.concat('rules', i, 'when') },
            then: names(rule.then, path.concat('rules', i, 'then')),
            thenPath: path.concat('rules', i, 'then'),
          })),
          rulesPath: path.concat('rules'),
          otherwise: names(options.otherwise, path.concat('otherwise')),
          mode: options.mode ?? 'first',
        },
      };
    });
    return this.ref(id);
  }

  /** Adds a race between tasks: the first to succeed wins (mode `first`), or the best once all ended (`all`). */
  race<const R extends readonly Upstream[]>(
    id: string,
    options: RaceOptions<R>,
  ): TaskRef<RaceResult<BranchOutput<R[number]>>>;
  /** Adds a race in mode `all` whose function scores each successful branch; the highest score wins. */
  race<const R extends readonly Upstream[]>(
    id: string,
    options: RaceOptions<R> & { readonly mode: 'all' },
    score: RaceScoreFunction<BranchOutput<R[number]>>,
  ): TaskRef<RaceResult<BranchOutput<R[number]>>>;
  race(id: string, options: RaceOptions<readonly Upstream[]>, score?: unknown): TaskRef {
    const path = this.pathOf(id);
    const names = (list: readonly Upstream[], at: KeyPath): NameRef[] =>
      list.map((u, i) => ({ name: typeof u === 'string' ? u : u.id, path: at.concat(i) }));
    // Not in the type, but JavaScript callers may pass it: the structure check refuses it.
    const after = (options as { readonly after?: readonly Upstream[] }).after;
    const deps = this.upstream(after, id);
    if (score !== undefined) this.registry.functions.set(this.keyOf(id), score);
    this.recorded.push(() => ({
      ...this.shapeOf(id, options, deps),
      body: structuralBody('race'),
      templated: [],
      race: {
        path,
        branches: names(options.branches, path.concat('branches')),
        branchesPath: path.concat('branches'),
        mode: options.mode ?? 'first',
        priority: options.priority ? names(options.priority, path.concat('priority')) : null,
        priorityPath: path.concat('priority'),
        score: score !== undefined,
      },
    }));
    return this.ref(id);
  }

  /** Adds a sleep: a duration, or one `${{ }}` expression that yields milliseconds. */
  sleep(id: string, options: SleepOptions<P, X>): TaskRef<unknown> {
    return this.parking(id, options, 'sleep', options.duration, { sleep: 'duration' });
  }

  /** Adds a wait until an instant (ISO 8601 text, epoch ms, or one expression). */
  waitUntil(id: string, options: WaitUntilOptions<P, X>): TaskRef<unknown> {
    return this.parking(id, options, 'wait_until', options.until, { wait_until: 'until' });
  }

  /** Adds a wait for an event sent to the run (e.g. by the API); its output is the event's payload. */
  waitForEvent(id: string, options: WaitForEventOptions<P, X>): TaskRef<unknown> {
    const { event, match, timeout } = options;
    return this.parking(id, options, 'wait_for_event', { event, match, timeout });
  }

  /** Adds an approval: the run waits until someone approves (or rejects, which fails the task). */
  approval(id: string, options: ApprovalOptions<P, X>): TaskRef<unknown> {
    const { message, timeout, approvers } = options;
    return this.parking(id, options, 'approval', { message, timeout, approvers });
  }

  /** Adds a child run of another flow; its output is the child run's outputs. */
  subflow(id: string, options: SubflowOptions<P, X>): TaskRef<unknown> {
    const { flow, version, params } = options;
    return this.parking(id, options, 'subflow', { flow, version, params });
  }

  // --- recording -------------------------------------------------------------------

  private pathOf(id: string): KeyPath {
    return this.level.path.concat(id);
  }

  private keyOf(id: string): string {
    return this.level.keyPrefix === null ? id : `${this.level.keyPrefix}/${id}`;
  }

  private ref(id: string): TaskRef {
    return new LevelRef(id, this.level);
  }

  /**
   * The names in `after` when each is a name or a ref of this level (nearly always): they
   * are then the task's dependencies as written, with no `NameRef` made for each.
   */
  private plainNames(list: readonly Upstream[] | undefined): readonly string[] | undefined {
    if (!list || list.length === 0) return NO_NAMES;
    const names = new Array<string>(list.length);
    for (let i = 0; i < list.length; i++) {
      const u = list[i] as Upstream;
      if (typeof u === 'string') names[i] = u;
      else if (this.registry.owners.get(u) === this.level) names[i] = u.id;
      else return undefined;
    }
    return names;
  }

  /** The dependencies written in `after` of task `id`. */
  private upstream(list: readonly Upstream[] | undefined, id: string): NameRef[] {
    if (!list || list.length === 0) return [];
    // Made at its length (an array grown by push keeps room for 16): a flow may hold 100,000.
    const out = new Array<NameRef | undefined>(list.length);
    let lifted = 0;
    for (let i = 0; i < list.length; i++) {
      const dep = this.dependencyOn(list[i] as Upstream, id, i);
      out[i] = dep;
      if (!dep) lifted++;
    }
    return lifted === 0 ? (out as NameRef[]) : out.filter((d): d is NameRef => d !== undefined);
  }

  /**
   * The dependency a ref or name stands for here, written at `at` (a key path, or the
   * `after` of a task with the index there); undefined when the ref belongs to an enclosing
   * level, whose map then waits for it instead.
   */
  private dependencyOn(u: Upstream, at: KeyPath | string, index = 0): NameRef | undefined {
    const name = typeof u === 'string' ? u : u.id;
    const ref: NameRef = typeof at === 'string' ? new ListedName(name, this.level, at, index) : { name, path: at };
    if (typeof u === 'string') return ref;
    const owner = this.registry.owners.get(u);
    // The common case: a ref of this very level.
    if (owner === this.level) return ref;
    let level: Level = this.level;
    while (owner && owner !== level && level.parent && level.parent.level !== owner) level = level.parent.level;
    if (owner && level.parent?.level === owner) {
      level.parent.lifted.push(ref);
      return undefined;
    }
    // A ref of another map's template (then reported as unknown here).
    return ref;
  }

  private inputsOf(
    inputs: Readonly<Record<string, TaskRef>> | undefined,
    path: KeyPath,
  ): {
    with: Readonly<Record<string, unknown>>;
    deps: readonly NameRef[];
    templated: readonly TemplatedValue[];
  } {
    if (!inputs) return NO_INPUTS;
    const out = { with: {} as Record<string, unknown>, deps: [] as NameRef[], templated: [] as TemplatedValue[] };
    for (const [name, ref] of Object.entries(inputs)) {
      const value = `\${{ tasks.${ref.id}.output }}`;
      out.with[name] = value;
      out.templated.push({ value, path: path.concat('inputs', name) });
      const dep = this.dependencyOn(ref, path.concat('inputs', name));
      if (dep) out.deps.push(dep);
    }
    return out;
  }

  private overOf(over: TaskRef | string, path: KeyPath): { value: string; deps: NameRef[] } {
    if (typeof over === 'string') return { value: over, deps: [] };
    const dep = this.dependencyOn(over, path.concat('over'));
    return { value: `\${{ tasks.${over.id}.output }}`, deps: dep ? [dep] : [] };
  }

  private mapOf(options: MapOverOptions<unknown, number | undefined>, path: KeyPath, over: string) {
    return {
      path,
      over: { value: over, path: path.concat('over') },
      maxParallel: options.maxParallel ?? null,
      batch: options.batch ?? null,
      onItemFailure: options.onItemFailure ?? 'fail',
      tasksPath: path.concat('tasks'),
    } as const;
  }

  /** The fields every task has: id, names, trigger rule, group, handler, finally. */
  private shapeOf(
    id: string,
    options: BaseTaskOptions & { onFailure?: OnFailureInput<P, X>; finally?: boolean },
    deps: readonly NameRef[],
  ): Omit<DraftTask, 'body' | 'templated'> & { onFailure?: DraftCatch } {
    const path = this.pathOf(id);
    const shape = { id, path, dependsOn: deps, dependsOnPath: path.concat('after') };
    shapeFields(shape, options);
    return shape;
  }

  /** Records a task that runs a body (function, command, or one the engine carries out). */
  private recordRunning(
    id: string,
    options: CommonTaskOptions<P, X> | ParkingTaskOptions<P, X>,
    deps: readonly NameRef[] | undefined,
    body: RecordedBody,
    extra: Partial<Pick<DraftTask, 'map'>> = NONE,
    names?: readonly string[],
  ): void {
    const handler = options.onFailure ? this.handlerOf(id, options.onFailure) : undefined;
    const level = this.level;
    this.recorded.push((ctx) => {
      // One object per draft, its paths made only if asked for: a flow may record 100,000 of them.
      const draft = new RunningDraft(id, level, deps, names) as unknown as Mutable<DraftTask>;
      if (options.triggerRule !== undefined) checkTriggerRule(options.triggerRule, draft.path, ctx);
      shapeFields(draft, options);
      draft.body = plainBody(ctx, options, body) ?? bodyOf(ctx, draft.path, options, body);
      draft.templated = body.templated;
      if (body.shellScripts) draft.shellScripts = body.shellScripts;
      if (extra.map) draft.map = extra.map;
      if (handler) draft.onFailure = handler(ctx);
      return draft;
    });
  }

  private handlerOf(taskId: string, input: OnFailureInput<P, X>): (ctx: DraftContext) => DraftCatch {
    const id = input.id ?? handlerId(taskId);
    const path = [...this.pathOf(taskId), 'onFailure'];
    const run = input.run;
    if (typeof run === 'function') this.registry.functions.set(this.keyOf(id), run);
    const body: RecordedBody = isShellBody(run)
      ? shellRecord(run, path)
      : { kind: 'function', with: NONE, config: NONE, templated: NO_VALUES };
    return (ctx) => ({
      path,
      handler: {
        id,
        path,
        body: bodyOf(ctx, path, input, body),
        dependsOn: [],
        dependsOnPath: path.concat('after'),
        templated: body.templated,
        ...(body.shellScripts ? { shellScripts: body.shellScripts } : {}),
      },
      idGiven: input.id !== undefined,
      recover: input.recover ?? false,
      on: (input.on ?? []).map((name, i) => ({ name, path: path.concat('on', i) })),
    });
  }

  /**
   * Records a task the engine carries out itself. Its settings go through the YAML
   * schema of the same body (e.g. `wait_for_event: { event, match, timeout }`), so that
   * both front ends accept and normalize the same values; `rename` maps the body's key
   * to the option it was given as when the body is a single value.
   */
  private parking(
    id: string,
    options: ParkingTaskOptions<P, X>,
    key: string,
    value: unknown,
    rename: Readonly<Record<string, string>> = {},
  ): TaskRef<unknown> {
    const path = this.pathOf(id);
    const form = BODY_FORMS.get(key) as BodyForm;
    const written = { [key]: withoutUndefined(value) };
    // Paths inside the body are the option names: `wait_for_event.match` is `match`.
    const at = (inner: KeyPath): KeyPath => [
      ...path,
      ...(rename[String(inner[0])] ? [rename[String(inner[0])] as string] : []),
      ...inner.slice(1),
    ];
    const templated = form.templated(written).map((inner) => ({ value: valueIn(written, inner), path: at(inner) }));
    const deps = this.upstream(options.after, id);
    const handler = options.onFailure ? this.handlerOf(id, options.onFailure) : undefined;
    this.recorded.push((ctx) => {
      checkTriggerRule(options.triggerRule, path, ctx);
      const parsed = parseWith(form.schema, written, [], `a ${key} task`);
      if (!parsed.ok) for (const p of parsed.problems) ctx.problem(at(p.path), p.message, p.hint);
      const normalized = parsed.ok ? form.toConfig(parsed.data as Record<string, unknown>) : undefined;
      return {
        ...this.shapeOf(id, options, deps),
        body: normalized
          ? bodyOf(
              ctx,
              path,
              { ...(options.retry ? { retry: options.retry } : {}) },
              {
                kind: form.kind,
                with: normalized.with ?? {},
                config: normalized.config,
              },
            )
          : undefined,
        templated,
        ...(handler ? { onFailure: handler(ctx) } : {}),
      };
    });
    return this.ref(id);
  }
}

function withoutUndefined(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}

function valueIn(root: unknown, path: KeyPath): unknown {
  let cur = root;
  for (const part of path)
    cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[part] : undefined;
  return cur;
}

/** A trigger rule written by name must be one; `k_of_n` needs its count, in the object form. */
function checkTriggerRule(rule: unknown, path: KeyPath, ctx: DraftContext): void {
  if (rule === undefined || typeof rule === 'object') return;
  const at = path.concat('triggerRule');
  if (rule === 'k_of_n') {
    ctx.problem(
      at,
      'k_of_n needs the number of upstream successes to wait for',
      'Write triggerRule: { kOfN: 2, cancelRest: true }.',
    );
    return;
  }
  if (!(NAMED_TRIGGER_RULES as readonly unknown[]).includes(rule)) {
    ctx.problem(
      at,
      `"${String(rule)}" is not one of ${NAMED_TRIGGER_RULES.join(', ')}`,
      `Use one of them, or { kOfN: <count> } to wait for that many upstream successes.`,
    );
  }
}

/** Adds to a task's draft the optional fields every kind of task has: description, group, trigger rule, finally. */
function shapeFields(
  shape: Pick<DraftTask, 'path'> & { -readonly [K in keyof DraftTask]?: DraftTask[K] },
  options: BaseTaskOptions & { finally?: boolean },
): void {
  const rule = options.triggerRule;
  if (options.description !== undefined) shape.description = options.description;
  if (options.group !== undefined) shape.group = { name: options.group, path: shape.path.concat('group') };
  if (typeof rule === 'object') {
    shape.triggerRule = {
      rule: 'k_of_n',
      path: shape.path.concat('triggerRule'),
      quorum: { k: rule.kOfN, cancelRest: rule.cancelRest ?? false },
    };
  } else if (rule !== undefined) shape.triggerRule = { rule, path: shape.path.concat('triggerRule') };
  if (options.finally) shape.finally = shape.path.concat('finally');
}

/**
 * The body of a function task without inputs that sets nothing itself, shared by every
 * such task of the flow; undefined for any other task.
 */
function plainBody(ctx: DraftContext, options: BodyOptions, body: RecordedBody): TaskBody | undefined {
  if (
    body !== PLAIN_FUNCTION ||
    options.retry ||
    options.timeout !== undefined ||
    options.pool !== undefined ||
    options.produces !== undefined ||
    options.consumes !== undefined ||
    options.cache !== undefined
  ) {
    return undefined;
  }
  // An undeclared default pool is reported by bodyOf, once per task that takes it.
  const pool = ctx.defaults.pool;
  return !options.labels?.length && (pool === null || pool in ctx.pools) ? plainBodyOf(ctx) : undefined;
}

/** The normalized body: the flow's defaults under the task's own retry, timeout and pool. */
function bodyOf(
  ctx: DraftContext,
  path: KeyPath,
  options: BodyOptions,
  body: { kind: string; with: Readonly<Record<string, unknown>>; config: Readonly<Record<string, unknown>> },
): TaskBody {
  // Paths are built only for settings that are there: a flow may have 100,000 tasks.
  const retry = options.retry ? ctx.retry(ctx.defaults.retry, options.retry, path.concat('retry')) : ctx.defaults.retry;
  const timeoutMs = options.timeout === undefined ? null : ctx.duration(options.timeout, path.concat('timeout'));
  // The engine carries these out itself: no worker slot, and the flow's attempt timeout is not theirs.
  if (isParkingKind(body.kind))
    return { kind: body.kind, retry, timeoutMs, pool: null, with: body.with, config: body.config };
  const pool = options.pool ?? ctx.defaults.pool;
  if (pool !== null && !(pool in ctx.pools)) {
    ctx.problem(
      path.concat('pool'),
      `pool "${pool}" is not declared`,
      `Declare it in the flow's pools, e.g. pools: { ${pool}: 2 }.`,
    );
  }
  for (const label of options.labels ?? []) {
    if (!/^[A-Za-z0-9_.:-]+$/.test(label)) {
      ctx.problem(path.concat('labels'), `"${label}" is not a label (letters, digits and _ . : - only)`);
    }
  }
  const out: { -readonly [K in keyof TaskBody]: TaskBody[K] } = {
    kind: body.kind,
    retry,
    timeoutMs: timeoutMs ?? ctx.defaults.timeoutMs,
    pool,
    with: body.with,
    config: body.config,
  };
  if (options.labels?.length) out.labels = [...options.labels];
  if (options.produces !== undefined) {
    const read = readProduces(options.produces);
    for (const p of read.problems) ctx.problem(path.concat('produces', ...p.path), p.message, p.hint);
    if (read.specs.length) out.produces = read.specs;
  }
  if (options.consumes !== undefined) {
    const read = readConsumes(options.consumes);
    for (const p of read.problems) ctx.problem(path.concat('consumes', ...p.path), p.message, p.hint);
    if (read.keys.length) out.consumes = read.keys;
  }
  if (options.cache !== undefined) {
    if (!CACHEABLE_KINDS.has(body.kind)) {
      ctx.problem(path.concat('cache'), `cache applies to function, shell and sql tasks, not ${body.kind} tasks`);
    } else if (options.cache === 'inputs') out.cache = 'inputs';
    else ctx.problem(path.concat('cache'), `cache must be 'inputs', not ${JSON.stringify(options.cache)}`);
  }
  return out;
}

/** The settings of a task that its normalized body is made from. */
interface BodyOptions {
  retry?: RetryInput;
  timeout?: DurationInput;
  pool?: string;
  labels?: readonly string[];
  produces?: readonly AssetDeclaration[];
  consumes?: readonly string[];
  cache?: 'inputs';
}

/** The body of a function task with no inputs and no settings of its own, per flow. */
const plainBodies = new WeakMap<DraftContext, TaskBody>();

/** The body of every function task that sets nothing itself, made once per flow (specs are never mutated). */
function plainBodyOf(ctx: DraftContext): TaskBody {
  let body = plainBodies.get(ctx);
  if (!body) {
    const { pool, retry, timeoutMs } = ctx.defaults;
    body = { kind: 'function', retry, timeoutMs, pool, with: NONE, config: NONE };
    plainBodies.set(ctx, body);
  }
  return body;
}

/** The code behind a task key, as the registry holds it. */
export function registeredFunction(registry: Registry, key: string): TaskFunction | undefined {
  // Choice and race functions are registered under their task's key too; callers know the kind.
  return registry.functions.get(key) as TaskFunction | undefined;
}
