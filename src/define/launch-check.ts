/**
 * Checks of a loaded flow against what its tasks will need when they start, so that a
 * flow refused at run time is refused at validation instead: every subflow names a flow
 * of the project, and no command argument or environment value written in the flow holds
 * a NUL character, which no process can receive.
 *
 * It runs on the normalized spec of a flow that loaded without problems, and finds the
 * file, line and key path of each problem in the YAML text only when there is one, so
 * that a valid flow costs no second parse. Which flows exist is the caller's to say
 * (`SubflowTargets`): the flow catalog, which knows the project, answers.
 */
import type { Node } from 'yaml';
import type { Problem, SourceLocation } from '../core/errors.js';
import type { FlowSpec, TaskSpec } from '../core/model.js';
import { flattenTasks } from '../core/run-topology.js';
import { formatPath, type KeyPath } from './flow-schema.js';
import { suggest } from './suggest.js';

/** The project's flows, as the caller knows them. */
export interface SubflowTargets {
  /** Whether the project has a flow of this name, as a subflow's child run would find it. */
  has(name: string): Promise<boolean>;
  /** The names of the project's flows, and how many flow files failed to load. */
  names(): Promise<{ readonly names: readonly string[]; readonly broken: number }>;
}

/** Where a problem points in the YAML document: the scalar at the end of a key path. */
type Locator = (path: KeyPath, value: unknown) => boolean;

interface Found {
  readonly task: TaskSpec;
  readonly code: Problem['code'];
  readonly message: string;
  readonly hint: string;
  readonly locate: Locator;
}

/** Where a command is written: `command` (a line, or argv entries under it) or `run`. */
const COMMAND_KEYS = new Set(['command', 'run']);

/**
 * Every problem of the flow at `file`, in the order written. `readSource` gives the text of
 * the file, read only when there is a problem to place; without it, problems name the
 * file only (a TypeScript flow: the line of a subflow's quoted name, when it is there once).
 * Example: a task `subflow: { flow: load_regoin }` in a project with a flow `load_region`
 * gives DEF_UNKNOWN_FLOW `tasks.fan.subflow.flow: task fan starts flow "load_regoin", which
 * is not a flow of the project (did you mean "load_region"?)`.
 */
export async function checkLaunch(
  spec: FlowSpec,
  file: string,
  targets: SubflowTargets,
  readSource: () => string | undefined,
): Promise<Problem[]> {
  const found: Found[] = [...nulProblems(spec), ...(await subflowProblems(spec, targets))];
  if (found.length === 0) return [];
  const locations = await locate(found, file, readSource);
  const problems = found.map((f, i): Problem => {
    const location = locations[i] ?? { file };
    const prefix = location.path ? `${location.path}: ` : '';
    return { code: f.code, message: `${prefix}${f.message}`, hint: f.hint, location };
  });
  // In the order written, as the loader reports its own problems.
  const at = (p: Problem) => [p.location?.line ?? Infinity, p.location?.column ?? 0] as const;
  return problems.sort((a, b) => at(a)[0] - at(b)[0] || at(a)[1] - at(b)[1]);
}

async function subflowProblems(spec: FlowSpec, targets: SubflowTargets): Promise<Found[]> {
  const out: Found[] = [];
  let known: { readonly names: readonly string[]; readonly broken: number } | undefined;
  for (const task of flattenTasks(spec.tasks)) {
    if (task.kind !== 'subflow') continue;
    const ref = task.config.flow;
    // A pinned version comes from the store, where it may outlive the flow's file.
    if (typeof ref !== 'string' || typeof task.config.version === 'string') continue;
    if (await targets.has(ref)) continue;
    known ??= await targets.names();
    const close = suggest(ref, known.names);
    const shown = known.names.slice(0, 10).join(', ');
    const more = known.names.length > 10 ? ` and ${known.names.length - 10} more` : '';
    const others = known.names.length === 0 ? 'the project has no flows' : `its flows: ${shown}${more}`;
    out.push({
      task,
      code: 'DEF_UNKNOWN_FLOW',
      message: `task ${task.id} starts flow "${ref}", which is not a flow of the project${close ? ` (did you mean "${close}"?)` : ''}`,
      hint: close
        ? `Change it to "${close}".`
        : known.broken > 0
          ? `Check the name (${others}); ${known.broken} flow file(s) of the project failed to load and may hold it: \`baton validate\` lists their problems.`
          : `Check the name (${others}), or add the flow to flows/.`,
      locate: (path, value) => value === ref && path.at(-1) === 'flow' && path.at(-2) === 'subflow',
    });
  }
  return out;
}

function holdsNul(value: unknown): boolean {
  return typeof value === 'string' && value.includes('\0');
}

function nulProblems(spec: FlowSpec): Found[] {
  const out: Found[] = [];
  const hint =
    'Remove the NUL character (often pasted with binary data or written as "\\0"); pass such data through a file.';
  for (const task of flattenTasks(spec.tasks)) {
    if (task.kind !== 'shell') continue;
    const { command, env, shell, cwd } = task.config;
    const args = Array.isArray(command) ? command : [command];
    const arg = args.findIndex(holdsNul);
    if (arg >= 0) {
      const what = Array.isArray(command) ? `argument ${arg} of its command` : 'its command line';
      out.push({
        task,
        code: 'DEF_INVALID',
        message: `task ${task.id}: ${what} holds a NUL character, which no command can receive`,
        hint,
        locate: (path, value) =>
          holdsNul(value) && (COMMAND_KEYS.has(String(path.at(-1))) || path.at(-2) === 'command'),
      });
    }
    const vars = env !== null && typeof env === 'object' ? (env as Record<string, unknown>) : {};
    const name = Object.keys(vars).find((k) => holdsNul(k) || holdsNul(vars[k]));
    if (name !== undefined) {
      out.push({
        task,
        code: 'DEF_INVALID',
        message: `task ${task.id}: env ${JSON.stringify(name)} holds a NUL character, which no command can receive`,
        hint,
        locate: (path, value) => path.at(-2) === 'env' && (holdsNul(value) || holdsNul(path.at(-1))),
      });
    }
    for (const [key, value] of [
      ['shell', shell],
      ['cwd', cwd],
    ] as const) {
      if (!holdsNul(value)) continue;
      out.push({
        task,
        code: 'DEF_INVALID',
        message: `task ${task.id}: ${key} holds a NUL character, which no ${key === 'cwd' ? 'path' : 'command'} can hold`,
        hint,
        locate: (path, v) => path.at(-1) === key && holdsNul(v),
      });
    }
  }
  return out;
}

/**
 * The location of each problem: in a YAML or JSON file, the scalar its locator matches
 * under the problem's task (`tasks.<id>`, the task of a map's group, or an on_failure
 * handler), else under any task; in other files, the file alone, or the line of the
 * subflow's quoted name when it is written once.
 */
async function locate(
  found: readonly Found[],
  file: string,
  readSource: () => string | undefined,
): Promise<SourceLocation[]> {
  const text = readSource();
  if (text === undefined) return found.map(() => ({ file }));
  if (!/\.(ya?ml|json)$/i.test(file)) return found.map((f) => quotedLine(f, file, text));
  // The parser loads only when a problem is found: a valid flow is not parsed twice.
  const yaml = await import('yaml');
  const lines = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { lineCounter: lines });
  const scalars: Scalar[] = [];
  walk(yaml, doc.contents, [], scalars);
  const used = new Set<number>();
  return found.map((f) => {
    const candidates = scalars.filter((s, i) => !used.has(i) && f.locate(s.path, s.value));
    const own = candidates.find((s) => taskIdsOf(s.path).includes(f.task.id));
    const hit = own ?? candidates[0];
    if (!hit) return { file };
    used.add(scalars.indexOf(hit));
    const pos = lines.linePos(hit.offset);
    return { file, line: pos.line, column: pos.col, path: formatPath(hit.path) };
  });
}

/** The ids of the tasks a key path passes through: `tasks.<id>` (or a list item's `id`). */
function taskIdsOf(path: KeyPath): string[] {
  const ids: string[] = [];
  for (let i = 0; i + 1 < path.length; i++) if (path[i] === 'tasks') ids.push(String(path[i + 1]));
  return ids;
}

interface Scalar {
  readonly path: KeyPath;
  readonly value: unknown;
  readonly offset: number;
}

/** Every scalar value of the document with its key path and offset (an empty value: its key's). */
function walk(yaml: typeof import('yaml'), node: unknown, path: KeyPath, out: Scalar[]): void {
  const { isMap, isScalar, isSeq } = yaml;
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const child = [...path, key];
      if (isScalar(pair.value) || pair.value === null) {
        const target = (pair.value ?? pair.key) as Node | null;
        const offset = target?.range?.[0];
        if (offset !== undefined)
          out.push({ path: child, value: isScalar(pair.value) ? pair.value.value : null, offset });
      } else walk(yaml, pair.value, child, out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      // A task in a list is named by its `id`, as the loader's key paths name it.
      const id = isMap(item) ? item.items.find((p) => isScalar(p.key) && p.key.value === 'id')?.value : undefined;
      const part = path.at(-1) === 'tasks' && isScalar(id) && typeof id.value === 'string' ? id.value : i;
      if (isScalar(item)) {
        const offset = item.range?.[0];
        if (offset !== undefined) out.push({ path: [...path, part], value: item.value, offset });
      } else walk(yaml, item, [...path, part], out);
    });
  }
}

/** In a TypeScript or JavaScript flow: the line of the subflow's name when it is quoted there once. */
function quotedLine(f: Found, file: string, text: string): SourceLocation {
  const ref = f.task.config.flow;
  if (f.code !== 'DEF_UNKNOWN_FLOW' || typeof ref !== 'string') return { file };
  const quotes = ["'", '"', '`'].map((q) => `${q}${ref}${q}`);
  const offsets = quotes.flatMap((q) => {
    const at: number[] = [];
    for (let i = text.indexOf(q); i >= 0; i = text.indexOf(q, i + 1)) at.push(i);
    return at;
  });
  if (offsets.length !== 1) return { file };
  const before = text.slice(0, offsets[0]);
  const line = before.split('\n').length;
  return { file, line, column: (offsets[0] as number) - before.lastIndexOf('\n') };
}
