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
 *
 * Loading is linear in the size of the text, whatever the text: the file's size is checked
 * before it is read (flow_file_bytes), its nesting while it is parsed and its aliases before
 * they are expanded (yaml-document.ts), and every check after that indexes what it looks
 * up. Files in the plain subset of YAML that large flows are written in are read by a fast
 * reader (yaml-fast.ts) that gives the same value and positions.
 */
import { LineCounter } from 'yaml';
import { BatonError, type ErrorCode, type Problem } from '../core/errors.js';
import { LIMITS, overLimit } from '../core/limits.js';
import { DEFAULT_RETRY, isParkingKind, type FlowSpec, type ParamSpec } from '../core/model.js';
import {
  FlowFileSchema,
  ParamFileSchema,
  checkNames,
  durationMs,
  isRecord,
  parseWith,
  show,
  valueAt,
  type KeyPath,
  type ParamFile,
  type ParsedFlowFile,
} from './flow-schema.js';
import { errorSelectorProblem, type DraftGroup } from './flow-draft.js';
import { resolveFlow } from './flow-structure.js';
import { readInputFile } from './input-file.js';
import { checkModuleUses, type ModuleUse } from './module-check.js';
import { checkParamSpec } from './params.js';
import { Suggester } from './suggest.js';
import { checkTasks, everyTask, runsNothing, type CheckedTask } from './task-check.js';
import { TRIGGER_PARAMS, normalizeTrigger, withTriggerParams } from './trigger-schema.js';
import { draftOf, mergeRetry, type TaskDefaults } from './yaml-draft.js';
import { parseYaml, toPlain, type YamlLimitHit } from './yaml-document.js';
import { Reporter } from './problem-reporter.js';
import { parseSimpleYaml } from './yaml-fast.js';

// baton.yaml's loader places its problems the same way.
export { Reporter } from './problem-reporter.js';

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
  /** The largest flow file, in bytes (`limits.flow_file_bytes`); the table's default when absent. */
  readonly flowFileBytes?: number;
}

export const DEFAULT_KINDS: readonly string[] = ['function', 'shell'];

/** True for the path of a task: `tasks.<id>`, or `tasks.<id>.tasks.<id>` inside a map over a group. */
function isTaskPath(path: KeyPath): boolean {
  return path.length >= 2 && path.length % 2 === 0 && path.every((part, i) => i % 2 === 1 || part === 'tasks');
}

/**
 * Parses flow text (YAML or JSON) and reports every problem at once.
 * Example: `parseFlowText(text, { file: 'flows/daily.yaml' }).problems`.
 */
export function parseFlowText(text: string, options: { file: string } & LoadOptions): LoadResult {
  const parsed = parseFlow(text, options);
  return resultOf(parsed);
}

/**
 * Syntax errors shown for one file: after the first few, the parser's picture of the rest
 * is a guess, and a file of 8 MiB of `]` would otherwise yield millions of them.
 */
const MAX_SYNTAX_ERRORS = 50;

function addLimitProblem(report: Reporter, over: YamlLimitHit): void {
  if (over.limit === 'flow_depth') {
    const { message } = overLimit('flow_depth', `a map or list nested ${over.value} deep`, over.max);
    report.addAt(
      'DEF_LIMIT',
      over.offset,
      message,
      `Flatten the data here: a flow's own keys nest a handful of levels; pass deep data as a JSON string or in a file. The limit flow_depth is fixed at ${over.max}.`,
    );
    return;
  }
  const { message } = overLimit(
    'flow_alias_nodes',
    `expanding the aliases up to this one (${over.value} values added)`,
    over.max,
  );
  report.addAt(
    'DEF_LIMIT',
    over.offset,
    message,
    `Write the repeated values out, or alias smaller values: an alias adds a copy of everything its anchor names, aliases inside it included. The limit flow_alias_nodes is fixed at ${over.max}.`,
  );
}

/** A report of one problem about the whole file. */
function fileProblem(file: string, code: ErrorCode, message: string, hint: string): Reporter {
  const report = new Reporter(file, undefined, new LineCounter());
  report.problems.push({ code, message, hint, location: { file } });
  return report;
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

/** Parses and checks flow text. */
function parseFlow(text: string, options: { file: string } & LoadOptions): Parsed {
  const isJson = /\.json$/i.test(options.file);
  const syntax = isJson ? 'JSON' : 'YAML';
  // loadFlowFile refuses a large file before reading it; text handed in directly is measured here.
  const maxBytes = options.flowFileBytes ?? LIMITS.flow_file_bytes.default;
  const bytes = text.length > maxBytes / 3 ? Buffer.byteLength(text, 'utf8') : text.length;
  if (bytes > maxBytes) {
    const { message, hint } = overLimit('flow_file_bytes', bytes, maxBytes);
    // DEF_LOAD, as for a file on disk that is refused before it is read.
    return { report: fileProblem(options.file, 'DEF_LOAD', `the flow text: ${message}`, hint), modules: [] };
  }
  // Most large flows are written in a plain subset of YAML that a fast reader takes in a
  // tenth of the time and memory; it keeps the places of keys and values, so problems get
  // their lines as from the full parser, which reads every other file.
  const simple = parseSimpleYaml(text, LIMITS.flow_depth.default);
  if (simple !== undefined) return checkFlow(simple.value, Reporter.forSimple(options.file, simple), options);
  const parsed = parseYaml(text);
  const report = new Reporter(options.file, parsed.doc, parsed.lines, parsed.aliases);
  const stop = (): Parsed => ({ report, modules: [] });

  for (const { offset, path } of parsed.duplicates) {
    const isTask = isTaskPath(path);
    report.addAt(
      isTask ? 'DEF_DUPLICATE_TASK' : 'DEF_INVALID',
      offset,
      isTask ? `duplicate task id "${String(path[1])}"` : 'duplicate key',
      isTask
        ? 'Give each task its own id; the second one here repeats an earlier task.'
        : 'Remove one of the two keys.',
      path,
    );
  }
  // A file cut off by a limit, or with syntax errors, has no tree to check further.
  if (parsed.over) {
    addLimitProblem(report, parsed.over);
    return stop();
  }
  // The parser stops reading after many errors, and says so with a last one of its own.
  const cut = parsed.errors.at(-1)?.code === 'TOO_MANY_ERRORS';
  const found = cut ? parsed.errors.slice(0, -1) : parsed.errors;
  const shown = found.slice(0, MAX_SYNTAX_ERRORS);
  for (const error of shown) {
    // The library's message may end with " at line N, column M:" and a code frame; the position is ours.
    const what = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? error.message;
    report.addAt(
      'DEF_INVALID',
      error.offset,
      `${syntax} syntax error: ${what}`,
      `Fix the ${syntax} syntax at this position.`,
    );
  }
  const more = found.length - shown.length;
  if (more > 0 || cut) {
    report.problems.push({
      code: 'DEF_INVALID',
      message: cut
        ? `more than ${more} more ${syntax} syntax errors after these; the rest of the file was not read`
        : `${more} more ${syntax} syntax error${more === 1 ? '' : 's'} after these`,
      hint: 'Fix the first errors: the later ones often follow from them.',
      location: { file: options.file },
    });
  }
  if (parsed.errors.length > 0) return stop();

  return checkFlow(toPlain(parsed), report, options);
}

/** Every check of a flow's plain value; problems go to `report`, positioned by its document. */
function checkFlow(raw: unknown, report: Reporter, options: { file: string } & LoadOptions): Parsed {
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
    // Checked before a byte is read: a file over flow_file_bytes, a FIFO or a device is refused as such.
    text = readInputFile(path, {
      limit: 'flow_file_bytes',
      ...(options.flowFileBytes !== undefined ? { limitBytes: options.flowFileBytes } : {}),
      what: 'flow file',
      code: 'DEF_LOAD',
    });
  } catch (error) {
    if (!(error instanceof BatonError)) throw error;
    return { problems: [{ code: error.code, message: error.message, hint: error.hint, location: { file: path } }] };
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
  const names = new Set(declared);
  let similar: Suggester | undefined;
  const check = (pool: unknown, path: KeyPath): void => {
    if (typeof pool !== 'string' || pool === '' || names.has(pool)) return;
    const guess = (similar ??= new Suggester(declared)).suggest(pool);
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
  // Paths are made only for the tasks that set the key: a flow may have 50,000 tasks.
  for (const task of tasks) {
    if (task.raw.pool !== undefined && !isParkingKind(task.kind ?? '') && !runsNothing(task))
      check(task.raw.pool, [...task.path, 'pool']);
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
  // A task without retry inherits what was checked above; no path is made for it.
  for (const task of tasks)
    if (task.raw.retry !== undefined && !runsNothing(task)) check(task.raw.retry, [...task.path, 'retry'], flowLevel);
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
  for (const task of tasks) if (isRecord(task.raw.retry)) check(task.raw.retry, [...task.path, 'retry']);
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
    ...(flow.prefetch?.length ? { prefetch: flow.prefetch } : {}),
    ...(groups ? { groups } : {}),
  };
}
