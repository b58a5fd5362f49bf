/**
 * Loads a flow written in YAML or JSON into the normalized `FlowSpec`. It owns three
 * things: positions (every problem names file, 1-based line and column, and key path),
 * the checks that span more than one key (pools, params, retry bounds; the graph and
 * expressions through the structure checks shared with the builder, flow-structure.ts),
 * and normalization (defaults merged, durations in ms, camelCase config).
 *
 * All problems are collected before anything is returned: a spec is produced only when
 * there are none, so a half-valid flow never reaches the engine. Reading a file can also
 * check the modules of its function tasks (module-check.ts), with the same positions.
 * JSON goes through the YAML parser (JSON is YAML 1.2), so it gets the same positions and
 * duplicate-key checks.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { BatonError, type ErrorCode, type Problem } from '../core/errors.js';
import { DEFAULT_RETRY, isParkingKind, type FlowSpec, type ParamSpec } from '../core/model.js';
import {
  FlowFileSchema,
  ParamFileSchema,
  checkNames,
  durationMs,
  formatPath,
  isRecord,
  parseWith,
  show,
  valueAt,
  type KeyPath,
  type ParamFile,
  type ParsedFlowFile,
  type SchemaProblem,
} from './flow-schema.js';
import { errorSelectorProblem, type DraftGroup } from './flow-draft.js';
import { resolveFlow } from './flow-structure.js';
import { checkModuleUses, type ModuleUse } from './module-check.js';
import { checkParamSpec } from './params.js';
import { suggest } from './suggest.js';
import { checkTasks, everyTask, runsNothing, type CheckedTask } from './task-check.js';
import { TRIGGER_PARAMS, normalizeTrigger, withTriggerParams } from './trigger-schema.js';
import { draftOf, mergeRetry, type TaskDefaults } from './yaml-draft.js';

export interface LoadResult {
  /** Present only when `problems` is empty. */
  readonly spec?: FlowSpec;
  /** Sorted by line, then column. */
  readonly problems: readonly Problem[];
  /** The modules the function tasks name (those whose keys parsed), even when there are problems. */
  readonly modules?: readonly ModuleUse[];
}

export interface LoadOptions {
  /** Task kinds the caller can execute (default: function, shell). */
  readonly kinds?: readonly string[];
  /** Pools declared outside the flow (project config); a task may use them undeclared. */
  readonly knownPools?: readonly string[];
  /**
   * loadFlowFile only: import the module of every function task and check its export
   * (module-check.ts). Off by default, since importing runs the modules' code.
   */
  readonly checkModules?: boolean;
}

export const DEFAULT_KINDS: readonly string[] = ['function', 'shell'];

function scalarText(node: unknown): string {
  return String(isScalar(node) ? node.value : node);
}

/** The `id` value of a task written in a list, if it has a string one. */
function idNode(node: unknown): Node | undefined {
  if (!isMap(node)) return undefined;
  const id = node.items.find((p) => scalarText(p.key) === 'id')?.value;
  return isScalar(id) && typeof id.value === 'string' ? (id as Node) : undefined;
}

/** True for the path of a task: `tasks.<id>`, or `tasks.<id>.tasks.<id>` inside a map over a group. */
function isTaskPath(path: KeyPath): boolean {
  return path.length >= 2 && path.length % 2 === 0 && path.every((part, i) => i % 2 === 1 || part === 'tasks');
}

/** Collects problems with positions resolved against one parsed document (baton.yaml's too). */
export class Reporter {
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
    for (const p of problems) this.add(p.code ?? code, p.path, p.message, p.hint, p.at);
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

  /**
   * The key node and value node at a path; for a duplicated key, the last one (as toJS
   * keeps). In a list of tasks a name part finds the task with that `id`, whose id value
   * then serves as its key.
   */
  private find(path: KeyPath): { key: Node | undefined; value: Node | undefined } | undefined {
    let key: Node | undefined;
    let value = (this.doc.contents ?? undefined) as Node | undefined;
    for (const part of path) {
      if (isAlias(value)) value = value.resolve(this.doc) as Node | undefined;
      if (isMap(value)) {
        const pair = value.items.findLast((p) => scalarText(p.key) === String(part));
        if (!pair) return undefined;
        key = pair.key as Node;
        value = (pair.value ?? undefined) as Node | undefined;
      } else if (isSeq(value) && typeof part === 'number') {
        key = undefined;
        value = value.items[part] as Node | undefined;
        if (!value) return undefined;
      } else if (isSeq(value)) {
        const item = value.items.find((node) => idNode(node) !== undefined && scalarText(idNode(node)) === part);
        if (!item) return undefined;
        key = idNode(item);
        value = item as Node;
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
          const id = idNode(item);
          const inner = walk(item, [...path, id ? scalarText(id) : i]);
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
  const parsed = parseFlow(text, options);
  return resultOf(parsed);
}

/** What parsing found: the problems so far, the spec if there were none, and the modules tasks name. */
interface Parsed {
  readonly report: Reporter;
  readonly spec?: FlowSpec;
  readonly modules: readonly ModuleUse[];
}

function resultOf({ report, spec, modules }: Parsed): LoadResult {
  const found = modules.length > 0 ? { modules } : {};
  if (report.problems.length > 0 || !spec) return { problems: report.sorted(), ...found };
  return { spec, problems: [], ...found };
}

function parseFlow(text: string, options: { file: string } & LoadOptions): Parsed {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  const report = new Reporter(options.file, doc, lines);
  const isJson = /\.json$/i.test(options.file);

  let onlyDuplicates = true;
  for (const error of doc.errors) {
    const offset = error.pos[0];
    const path = error.code === 'DUPLICATE_KEY' ? report.pathOfKeyAt(offset) : undefined;
    if (path) {
      const isTask = isTaskPath(path);
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
  if (!onlyDuplicates) return { report, modules: [] };

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
    return { report, modules: [] };
  }
  if (raw === null || raw === undefined) {
    report.add('DEF_INVALID', [], 'the flow file is empty', 'A flow needs at least `name:` and `tasks:`.');
    return { report, modules: [] };
  }
  if (!isRecord(raw)) {
    report.add(
      'DEF_INVALID',
      [],
      `the top level must be a map with name and tasks, got ${show(raw)}`,
      'Start the file with `name: my_flow` and a `tasks:` map.',
    );
    return { report, modules: [] };
  }

  const flow = parseWith(FlowFileSchema, raw, [], 'a flow');
  if (!flow.ok) report.addAll(flow.problems);
  const { tasks, problems: taskProblems } = checkTasks(raw, options.kinds ?? DEFAULT_KINDS);
  report.addAll(taskProblems);
  report.addAll(checkNames(raw));
  const all = everyTask(tasks);
  const resolved = resolveFlow({
    tasks: tasks.map((t) => draftOf(t, flow.ok ? taskDefaults(flow.data) : undefined)),
    groups: groupsOf(raw),
    params: expressionParams(raw),
    dependsOnWord: 'depends_on',
  });
  report.addAll(resolved.problems);
  checkParams(raw, report);
  checkPools(raw, all, options.knownPools ?? [], report);
  checkRetryBounds(raw, all, report);
  checkErrorSelectors(raw, all, report);
  const modules = moduleUses(all);

  if (report.problems.length > 0 || !flow.ok || !resolved.tasks) return { report, modules };
  return { report, spec: normalize(flow.data, resolved.tasks, resolved.groups), modules };
}

/** The function tasks whose keys parsed, with the module and export they name. */
function moduleUses(tasks: readonly CheckedTask[]): ModuleUse[] {
  return tasks.flatMap((task) => {
    const module = task.kind === 'function' ? task.config?.module : undefined;
    if (typeof module !== 'string') return [];
    const exportName = task.config?.export;
    return [
      {
        taskId: task.id,
        path: task.path,
        module,
        exportName: typeof exportName === 'string' ? exportName : 'default',
        exportWritten: task.raw.export !== undefined,
      },
    ];
  });
}

/**
 * Reads and parses a flow file, and with `checkModules` checks the code its function tasks
 * name; an unreadable file is one DEF_LOAD problem.
 */
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
  const parsed = parseFlow(text, { ...options, file: path });
  // Every problem at once: the modules are checked even when other keys have problems.
  if (options.checkModules && parsed.modules.length > 0) {
    parsed.report.addAll(await checkModuleUses(parsed.modules, path));
  }
  return resultOf(parsed);
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

/** Params expressions may read: the flow's, and those its triggers fill in. */
function expressionParams(raw: Record<string, unknown>): string[] {
  const kinds = isRecord(raw.triggers)
    ? Object.values(raw.triggers).map((t) => (isRecord(t) && typeof t.kind === 'string' ? t.kind : ''))
    : [];
  return [
    ...(isRecord(raw.params) ? Object.keys(raw.params) : []),
    ...kinds.flatMap((k) => Object.keys(TRIGGER_PARAMS[k] ?? {})),
  ];
}

function groupsOf(raw: Record<string, unknown>): DraftGroup[] {
  if (!isRecord(raw.groups)) return [];
  return Object.entries(raw.groups).map(([name, group]) => ({
    name,
    path: ['groups', name],
    ...(isRecord(group) && typeof group.description === 'string' ? { description: group.description } : {}),
  }));
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
  // A task without a worker slot does not take pool, which is reported as such.
  for (const task of tasks) {
    if (!isParkingKind(task.kind ?? '') && !runsNothing(task)) check(task.raw.pool, [...task.path, 'pool']);
  }
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
  for (const task of tasks) if (!runsNothing(task)) check(task.raw.retry, [...task.path, 'retry'], flowLevel);
}

/** Retry lists name error codes or kinds; a misspelt kind would never match, so it is reported. */
function checkErrorSelectors(raw: Record<string, unknown>, tasks: readonly CheckedTask[], report: Reporter): void {
  const check = (retry: unknown, path: KeyPath) => {
    for (const key of ['retry_on', 'never_retry_on']) {
      const list = isRecord(retry) ? retry[key] : undefined;
      if (!Array.isArray(list)) continue;
      list.forEach((selector, i) => {
        const bad = typeof selector === 'string' ? errorSelectorProblem(selector) : undefined;
        if (bad) report.add('DEF_INVALID', [...path, key, i], bad.message, bad.hint);
      });
    }
  };
  check(valueAt(raw, ['defaults', 'retry']), ['defaults', 'retry']);
  for (const task of tasks) check(task.raw.retry, [...task.path, 'retry']);
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

function taskDefaults(flow: ParsedFlowFile): TaskDefaults {
  const defaults = flow.defaults ?? {};
  return {
    retry: mergeRetry(DEFAULT_RETRY, defaults.retry),
    timeoutMs: defaults.timeout ?? null,
    pool: defaults.pool ?? null,
  };
}

function normalize(flow: ParsedFlowFile, tasks: FlowSpec['tasks'], groups: FlowSpec['groups'] | undefined): FlowSpec {
  // fromEntries defines own properties, so a param named __proto__ stays a param.
  const params = Object.fromEntries(Object.entries(flow.params ?? {}).map(([name, p]) => [name, toParamSpec(p)]));
  const triggers = Object.entries(flow.triggers ?? {}).map(([name, t]) => normalizeTrigger(name, t));
  return {
    name: flow.name,
    ...(flow.description !== undefined ? { description: flow.description } : {}),
    params: withTriggerParams(params, triggers),
    tasks,
    pools: flow.pools ?? {},
    maxActiveRuns: flow.max_active_runs ?? null,
    timeoutMs: flow.timeout ?? null,
    ...(triggers.length > 0 ? { triggers } : {}),
    ...(flow.overlap ? { overlap: flow.overlap } : {}),
    ...(groups ? { groups } : {}),
  };
}
