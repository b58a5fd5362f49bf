/**
 * Loads a flow written in YAML or JSON into the normalized `FlowSpec`. It owns three
 * things: positions (every problem names file, 1-based line and column, and key path),
 * the checks that span more than one key (graph, pools, params, expressions, retry
 * bounds), and normalization (defaults merged, durations in ms, camelCase config).
 *
 * All problems are collected before anything is returned: a spec is produced only when
 * there are none, so a half-valid flow never reaches the engine. JSON goes through the
 * YAML parser (JSON is YAML 1.2), so it gets the same positions and duplicate-key checks.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { BatonError, type ErrorCode, type Problem } from '../core/errors.js';
import { findGraphProblems } from '../core/graph.js';
import { DEFAULT_RETRY, type FlowSpec, type ParamSpec, type RetryPolicy, type TaskSpec } from '../core/model.js';
import { collectReferences } from './expression.js';
import {
  FlowFileSchema,
  ParamFileSchema,
  checkNames,
  checkTasks,
  durationMs,
  formatPath,
  isRecord,
  parseWith,
  show,
  valueAt,
  type CheckedTask,
  type KeyPath,
  type ParamFile,
  type ParsedFlowFile,
  type ParsedRetry,
  type SchemaProblem,
} from './flow-schema.js';
import { checkParamSpec } from './params.js';
import { suggest } from './suggest.js';
import { TRIGGER_PARAMS, normalizeTrigger, withTriggerParams } from './trigger-schema.js';

export interface LoadResult {
  /** Present only when `problems` is empty. */
  readonly spec?: FlowSpec;
  /** Sorted by line, then column. */
  readonly problems: readonly Problem[];
}

export interface LoadOptions {
  /** Task kinds the caller can execute (default: function, shell). */
  readonly kinds?: readonly string[];
  /** Pools declared outside the flow (project config); a task may use them undeclared. */
  readonly knownPools?: readonly string[];
}

export const DEFAULT_KINDS: readonly string[] = ['function', 'shell'];

const EXPRESSION_ROOTS = ['params', 'tasks', 'run'];
const TASK_FIELDS = ['output', 'state'];

/** Collects problems with positions resolved against one parsed document. */
class Reporter {
  readonly problems: Problem[] = [];

  constructor(
    private readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  add(code: ErrorCode, path: KeyPath, message: string, hint: string, at: SchemaProblem['at'] = 'value'): void {
    const dotted = formatPath(path);
    const offset = this.offsetOf(path, at);
    const pos = offset === undefined ? undefined : this.lines.linePos(offset);
    this.problems.push({
      code,
      message: dotted ? `${dotted}: ${message}` : message,
      hint,
      location: {
        file: this.file,
        ...(pos ? { line: pos.line, column: pos.col } : {}),
        ...(dotted ? { path: dotted } : {}),
      },
    });
  }

  addAll(problems: readonly SchemaProblem[], code: ErrorCode = 'DEF_INVALID'): void {
    for (const p of problems) this.add(code, p.path, p.message, p.hint, p.at);
  }

  /** Where to point: the value, its key, or (for a missing key) the key of the map that lacks it. */
  private offsetOf(path: KeyPath, at: SchemaProblem['at']): number | undefined {
    const target = at === 'parent' ? path.slice(0, -1) : path;
    for (let n = target.length; n >= 0; n--) {
      const found = this.find(target.slice(0, n));
      if (!found) continue;
      const { key, value } = found;
      // A missing or empty value (`params:`) has no useful range of its own: use its key.
      const emptyValue =
        !value?.range || (isScalar(value) && value.value === null && value.range[0] === value.range[1]);
      const node = (at !== 'value' || emptyValue || n < target.length) && key ? key : (value ?? key);
      if (node?.range) return node.range[0];
    }
    return undefined;
  }

  /** The key node and value node at a path; for a duplicated key, the last one (as toJS keeps). */
  private find(path: KeyPath): { key: Node | undefined; value: Node | undefined } | undefined {
    let key: Node | undefined;
    let value = (this.doc.contents ?? undefined) as Node | undefined;
    for (const part of path) {
      if (isAlias(value)) value = value.resolve(this.doc) as Node | undefined;
      if (isMap(value)) {
        const pair = value.items.findLast((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(part));
        if (!pair) return undefined;
        key = pair.key as Node;
        value = (pair.value ?? undefined) as Node | undefined;
      } else if (isSeq(value) && typeof part === 'number') {
        key = undefined;
        value = value.items[part] as Node | undefined;
        if (!value) return undefined;
      } else return undefined;
    }
    return { key, value };
  }

  /** The key path of the map key that starts at `offset` (used for YAML duplicate-key errors). */
  pathOfKeyAt(offset: number): KeyPath | undefined {
    const walk = (node: unknown, path: (string | number)[]): KeyPath | undefined => {
      if (isMap(node)) {
        for (const pair of node.items) {
          const name = String(isScalar(pair.key) ? pair.key.value : pair.key);
          if ((pair.key as Node | null)?.range?.[0] === offset) return [...path, name];
          const inner = walk(pair.value, [...path, name]);
          if (inner) return inner;
        }
      } else if (isSeq(node)) {
        for (const [i, item] of node.items.entries()) {
          const inner = walk(item, [...path, i]);
          if (inner) return inner;
        }
      }
      return undefined;
    };
    return walk(this.doc.contents, []);
  }

  sorted(): Problem[] {
    const rank = (p: Problem): [number, number] => [p.location?.line ?? Infinity, p.location?.column ?? Infinity];
    return [...this.problems].sort((a, b) => {
      const [la, ca] = rank(a);
      const [lb, cb] = rank(b);
      return la - lb || ca - cb;
    });
  }
}

/**
 * Parses flow text (YAML or JSON) and reports every problem at once.
 * Example: `parseFlowText(text, { file: 'flows/daily.yaml' }).problems`.
 */
export function parseFlowText(text: string, options: { file: string } & LoadOptions): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  const report = new Reporter(options.file, doc, lines);
  const isJson = /\.json$/i.test(options.file);

  let onlyDuplicates = true;
  for (const error of doc.errors) {
    const offset = error.pos[0];
    const path = error.code === 'DUPLICATE_KEY' ? report.pathOfKeyAt(offset) : undefined;
    if (path) {
      const isTask = path.length === 2 && path[0] === 'tasks';
      report.add(
        isTask ? 'DEF_DUPLICATE_TASK' : 'DEF_INVALID',
        path,
        isTask ? `duplicate task id "${String(path[1])}"` : 'duplicate key',
        isTask
          ? 'Give each task its own id; the second one here repeats an earlier task.'
          : 'Remove one of the two keys.',
        'key',
      );
      continue;
    }
    onlyDuplicates = false;
    const pos = lines.linePos(offset);
    // The library's message ends with " at line N, column M:" and a code frame; we keep the first part.
    const what = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? error.message;
    report.problems.push({
      code: 'DEF_INVALID',
      message: `${isJson ? 'JSON' : 'YAML'} syntax error: ${what}`,
      hint: `Fix the ${isJson ? 'JSON' : 'YAML'} syntax at this position.`,
      location: { file: options.file, line: pos.line, column: pos.col },
    });
  }
  // After a syntax error the tree is a guess; schema messages about it would mislead.
  if (!onlyDuplicates) return { problems: report.sorted() };

  let raw: unknown;
  try {
    raw = doc.toJS(); // throws on alias bombs (the library caps alias expansion)
  } catch (error) {
    report.add(
      'DEF_INVALID',
      [],
      `cannot read the document: ${(error as Error).message}`,
      'Simplify the anchors and aliases.',
    );
    return { problems: report.sorted() };
  }
  if (raw === null || raw === undefined) {
    report.add('DEF_INVALID', [], 'the flow file is empty', 'A flow needs at least `name:` and `tasks:`.');
    return { problems: report.sorted() };
  }
  if (!isRecord(raw)) {
    report.add(
      'DEF_INVALID',
      [],
      `the top level must be a map with name and tasks, got ${show(raw)}`,
      'Start the file with `name: my_flow` and a `tasks:` map.',
    );
    return { problems: report.sorted() };
  }

  const flow = parseWith(FlowFileSchema, raw, [], 'a flow');
  if (!flow.ok) report.addAll(flow.problems);
  const { tasks, problems: taskProblems } = checkTasks(raw, options.kinds ?? DEFAULT_KINDS);
  report.addAll(taskProblems);
  report.addAll(checkNames(raw));
  checkGraph(tasks, report);
  checkExpressions(raw, tasks, report);
  checkParams(raw, report);
  checkPools(raw, tasks, options.knownPools ?? [], report);
  checkRetryBounds(raw, tasks, report);

  if (report.problems.length > 0 || !flow.ok) return { problems: report.sorted() };
  return { spec: normalize(flow.data, tasks), problems: [] };
}

/** Reads and parses a flow file; an unreadable file is one DEF_LOAD problem. */
export async function loadFlowFile(path: string, options: LoadOptions = {}): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    return {
      problems: [
        {
          code: 'DEF_LOAD',
          message: `cannot read ${path}: ${(error as Error).message}`,
          hint: 'Check that the file exists and is readable.',
          location: { file: path },
        },
      ],
    };
  }
  return parseFlowText(text, { ...options, file: path });
}

/** Returns the spec, or throws one BatonError carrying every problem. */
export function assertLoaded(result: LoadResult, file: string): FlowSpec {
  const first = result.problems[0];
  if (first) {
    const n = result.problems.length;
    throw new BatonError(first.code, `${n} problem${n === 1 ? '' : 's'} in ${file}`, {
      problems: result.problems,
      ...(first.hint ? { hint: first.hint } : {}),
      ...(first.location ? { location: first.location } : {}),
    });
  }
  if (!result.spec) throw new BatonError('DEF_INVALID', `no flow in ${file}`);
  return result.spec;
}

// --- checks across keys ------------------------------------------------------------

/** The string entries of a task's depends_on (bad entries are schema problems already). */
function dependsOn(task: CheckedTask): string[] {
  const deps = task.raw.depends_on;
  return Array.isArray(deps) ? deps.filter((d): d is string => typeof d === 'string') : [];
}

function checkGraph(tasks: readonly CheckedTask[], report: Reporter): void {
  const ids = tasks.map((t) => t.id);
  const seen = new Map<string, number>();
  /** Index of the nth occurrence of `dep` in the task's depends_on, n counted per call. */
  const entry = (id: string, dep: string): KeyPath => {
    const key = `${id}\u0000${dep}`;
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    const deps = tasks.find((t) => t.id === id)?.raw.depends_on;
    const indexes = Array.isArray(deps) ? deps.flatMap((d, i) => (d === dep ? [i] : [])) : [];
    return ['tasks', id, 'depends_on', indexes[n] ?? indexes[0] ?? 0];
  };
  for (const problem of findGraphProblems(tasks.map((t) => ({ id: t.id, dependsOn: dependsOn(t) })))) {
    if (problem.kind === 'unknown_dependency') {
      const guess = suggest(problem.dependency, ids);
      report.add(
        'DEF_UNKNOWN_DEPENDENCY',
        entry(problem.id, problem.dependency),
        `task ${problem.id} depends on "${problem.dependency}", which is not a task of this flow${guess ? ` (did you mean "${guess}"?)` : ''}`,
        guess ? `Change it to "${guess}".` : `Use one of the task ids: ${ids.join(', ')}.`,
      );
    } else if (problem.kind === 'self_dependency') {
      report.add(
        'DEF_CYCLE',
        entry(problem.id, problem.id),
        `task ${problem.id} depends on itself`,
        `Remove ${problem.id} from its own depends_on.`,
      );
    } else if (problem.kind === 'cycle') {
      const first = problem.path[0] as string;
      report.add(
        'DEF_CYCLE',
        ['tasks', first, 'depends_on'],
        `cycle ${problem.path.join(' → ')}`,
        'Remove one of the depends_on edges of this cycle.',
        'key',
      );
    }
    // 'duplicate' cannot happen here: duplicate YAML keys are reported by the parser.
  }
}

/** Transitive upstream ids of every task, ignoring unknown ids (reported elsewhere). */
function upstreamSets(tasks: readonly CheckedTask[]): Map<string, Set<string>> {
  const direct = new Map(tasks.map((t) => [t.id, dependsOn(t)]));
  const out = new Map<string, Set<string>>();
  for (const task of tasks) {
    const seen = new Set<string>();
    const queue = [...(direct.get(task.id) ?? [])];
    for (let dep = queue.pop(); dep !== undefined; dep = queue.pop()) {
      if (seen.has(dep) || !direct.has(dep)) continue;
      seen.add(dep);
      queue.push(...(direct.get(dep) ?? []));
    }
    out.set(task.id, seen);
  }
  return out;
}

function formatRef(root: string, path: readonly (string | number)[]): string {
  return formatPath([root, ...path]);
}

function checkExpressions(raw: Record<string, unknown>, tasks: readonly CheckedTask[], report: Reporter): void {
  const kinds = isRecord(raw.triggers)
    ? Object.values(raw.triggers).map((t) => (isRecord(t) && typeof t.kind === 'string' ? t.kind : ''))
    : [];
  const params = [
    ...(isRecord(raw.params) ? Object.keys(raw.params) : []),
    ...kinds.flatMap((k) => Object.keys(TRIGGER_PARAMS[k] ?? {})),
  ];
  const ids = tasks.map((t) => t.id);
  const upstream = upstreamSets(tasks);
  for (const task of tasks) {
    const ups = upstream.get(task.id) ?? new Set<string>();
    for (const key of ['with', ...task.templated]) {
      const value = task.raw[key];
      if (value === undefined) continue;
      const at = ['tasks', task.id, key];
      const { references, problems } = collectReferences(value);
      for (const p of problems)
        report.add(
          p.code,
          [...at, ...p.path],
          p.message,
          'Write expressions as `${{ params.name }}` or `${{ tasks.<upstream>.output }}`.',
        );
      for (const { path, ref } of references) {
        const where = [...at, ...path];
        const text = formatRef(ref.root, ref.path);
        const [head, field] = ref.path;
        if (ref.root === 'params') {
          if (head !== undefined && !params.includes(String(head))) {
            const guess = suggest(String(head), params);
            report.add(
              'DEF_EXPRESSION',
              where,
              `reads ${text} but the flow has no param "${String(head)}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
              guess
                ? `Change it to params.${guess}.`
                : `Declare it under params, e.g. \`${String(head)}: { type: string }\`.`,
            );
          }
        } else if (ref.root === 'tasks') {
          const target = head === undefined ? undefined : String(head);
          if (target === undefined) {
            report.add(
              'DEF_EXPRESSION',
              where,
              `reads ${text}; name a task, as in tasks.<id>.output`,
              'Read one upstream task, e.g. tasks.extract.output.',
            );
          } else if (!ids.includes(target)) {
            const guess = suggest(target, ids);
            report.add(
              'DEF_EXPRESSION',
              where,
              `task ${task.id} reads ${text} but there is no task "${target}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
              guess ? `Change it to tasks.${guess}.` : `Use one of the task ids: ${ids.join(', ')}.`,
            );
          } else if (target === task.id) {
            report.add(
              'DEF_EXPRESSION',
              where,
              `task ${task.id} reads its own result (${text})`,
              'Read an upstream task, or a param, instead.',
            );
          } else if (!ups.has(target)) {
            report.add(
              'DEF_EXPRESSION',
              where,
              `task ${task.id} reads ${text} but ${target} is not upstream of ${task.id}; add it to depends_on`,
              `Add ${target} to the depends_on of ${task.id}.`,
            );
          } else if (field === undefined || !TASK_FIELDS.includes(String(field))) {
            report.add(
              'DEF_EXPRESSION',
              where,
              `reads ${text}; a task exposes only output and state`,
              `Write tasks.${target}.output (or tasks.${target}.state).`,
            );
          }
        } else if (ref.root !== 'run') {
          const guess = suggest(ref.root, EXPRESSION_ROOTS);
          report.add(
            'DEF_EXPRESSION',
            where,
            `reads ${text}, but expressions may read only params, tasks and run${guess ? ` (did you mean "${guess}"?)` : ''}`,
            'Start the expression with params., tasks. or run.',
          );
        }
      }
    }
  }
}

function checkParams(raw: Record<string, unknown>, report: Reporter): void {
  if (!isRecord(raw.params)) return;
  for (const [name, param] of Object.entries(raw.params)) {
    // Only a well-formed spec can be checked for consistency; schema problems are reported already.
    if (!isRecord(param) || !ParamFileSchema.safeParse(param).success) continue;
    const spec = toParamSpec(param as ParamFile);
    const bad = checkParamSpec(name, spec);
    if (bad) {
      const where = 'default' in param ? 'default' : 'enum' in param ? 'enum' : undefined;
      const path = ['params', name, ...(where ? [where] : [])];
      report.add(
        'DEF_INVALID',
        path,
        bad,
        `Make the default match type ${spec.type} (and the enum, if any), or change the type.`,
      );
    }
  }
}

function checkPools(
  raw: Record<string, unknown>,
  tasks: readonly CheckedTask[],
  knownPools: readonly string[],
  report: Reporter,
): void {
  const declared = [...(isRecord(raw.pools) ? Object.keys(raw.pools) : []), ...knownPools];
  const check = (pool: unknown, path: KeyPath): void => {
    if (typeof pool !== 'string' || pool === '' || declared.includes(pool)) return;
    const guess = suggest(pool, declared);
    report.add(
      'DEF_INVALID',
      path,
      `pool "${pool}" is not declared in pools${guess ? ` (did you mean "${guess}"?)` : ''}`,
      guess
        ? `Change it to "${guess}", or declare "${pool}" under pools.`
        : `Declare it under pools, e.g. \`pools: { ${pool}: 2 }\`.`,
    );
  };
  check(valueAt(raw, ['defaults', 'pool']), ['defaults', 'pool']);
  for (const task of tasks) check(task.raw.pool, ['tasks', task.id, 'pool']);
}

/**
 * backoff must not exceed max_backoff in the policy a task actually gets (built-in
 * defaults, then defaults.retry, then task.retry). Each violation is reported once, at the
 * level that introduced it.
 */
function checkRetryBounds(raw: Record<string, unknown>, tasks: readonly CheckedTask[], report: Reporter): void {
  const ms = (v: unknown): number | undefined => (v === undefined ? undefined : durationMs(v));
  const level = (retry: unknown) => ({
    backoff: isRecord(retry) ? retry.backoff : undefined,
    max: isRecord(retry) ? retry.max_backoff : undefined,
  });
  const check = (retry: unknown, path: KeyPath, inherited: { backoff: number; max: number }) => {
    const { backoff, max } = level(retry);
    if (backoff === undefined && max === undefined) return inherited;
    const b = backoff === undefined ? inherited.backoff : ms(backoff);
    const m = max === undefined ? inherited.max : ms(max);
    if (b === undefined || m === undefined) return inherited; // bad durations are reported by the schema
    if (b > m) {
      // Point at the key this level wrote: max_backoff if present, else the backoff that overshoots.
      report.add(
        'DEF_INVALID',
        [...path, max === undefined ? 'backoff' : 'max_backoff'],
        max === undefined
          ? `must be at most max_backoff (${m}ms), got ${show(backoff)}`
          : `must be at least backoff (${b}ms), got ${show(max)}`,
        'Raise max_backoff or lower backoff: max_backoff caps every retry delay.',
      );
    }
    return { backoff: b, max: m };
  };
  const builtIn = { backoff: DEFAULT_RETRY.backoffMs, max: DEFAULT_RETRY.maxBackoffMs };
  const flowLevel = check(valueAt(raw, ['defaults', 'retry']), ['defaults', 'retry'], builtIn);
  for (const task of tasks) check(task.raw.retry, ['tasks', task.id, 'retry'], flowLevel);
}

// --- normalization -----------------------------------------------------------------

function toParamSpec(param: ParamFile): ParamSpec {
  return {
    type: param.type,
    ...('default' in param ? { default: param.default } : {}),
    ...(param.description !== undefined ? { description: param.description } : {}),
    ...(param.enum !== undefined ? { enum: param.enum } : {}),
  };
}

function mergeRetry(base: RetryPolicy, retry: ParsedRetry | undefined): RetryPolicy {
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

const camel = (key: string): string => key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function normalize(flow: ParsedFlowFile, tasks: readonly CheckedTask[]): FlowSpec {
  const defaults = flow.defaults ?? {};
  const flowRetry = mergeRetry(DEFAULT_RETRY, defaults.retry);
  // fromEntries defines own properties, so a param named __proto__ stays a param.
  const params = Object.fromEntries(Object.entries(flow.params ?? {}).map(([name, p]) => [name, toParamSpec(p)]));
  const specs = tasks.map((task): TaskSpec => {
    // Reached only without problems, so every task parsed and its kind is known.
    const base = task.base ?? {};
    const config = Object.fromEntries(
      Object.entries(task.config ?? {}).flatMap(([key, value]) => (value === undefined ? [] : [[camel(key), value]])),
    );
    return {
      id: task.id,
      kind: task.kind as string,
      dependsOn: base.depends_on ?? [],
      triggerRule: base.trigger_rule ?? 'all_success',
      retry: mergeRetry(flowRetry, base.retry),
      timeoutMs: base.timeout ?? defaults.timeout ?? null,
      pool: base.pool ?? defaults.pool ?? null,
      ...(base.labels?.length ? { labels: base.labels } : {}),
      with: base.with ?? {},
      config,
      ...(base.description !== undefined ? { description: base.description } : {}),
    };
  });
  const triggers = Object.entries(flow.triggers ?? {}).map(([name, t]) => normalizeTrigger(name, t));
  return {
    name: flow.name,
    ...(flow.description !== undefined ? { description: flow.description } : {}),
    params: withTriggerParams(params, triggers),
    tasks: specs,
    pools: flow.pools ?? {},
    maxActiveRuns: flow.max_active_runs ?? null,
    timeoutMs: flow.timeout ?? null,
    ...(triggers.length > 0 ? { triggers } : {}),
    ...(flow.overlap ? { overlap: flow.overlap } : {}),
  };
}
