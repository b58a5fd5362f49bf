/**
 * Checks the code a YAML flow's function tasks name, so that a flow is refused when it is
 * loaded rather than when a task starts: the module file exists (else "did you mean" a
 * near file name in that folder), it imports, and the export each task names is there and
 * is a function (else "did you mean" the closest exported function, and the list of them).
 *
 * Importing runs the module's top-level code, as running the flow would; each module is
 * imported once however many tasks use it, through the same loader the function executor
 * uses, so a later run in this process does not import it again.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { isBatonError } from '../core/errors.js';
import type { KeyPath, SchemaProblem } from './flow-schema.js';
import { checkInputFile } from './input-file.js';
import { importModule } from './module-loader.js';
import { suggest } from './suggest.js';

/** A function task that names a module, as written. */
export interface ModuleUse {
  readonly taskId: string;
  /** Where the task is written, e.g. `['tasks', 'load']`. */
  readonly path: KeyPath;
  /** As written: relative to the flow file. */
  readonly module: string;
  readonly exportName: string;
  /** False when `export` was left out and `default` is meant. */
  readonly exportWritten: boolean;
}

/** The files a `module:` may name (the flow schema's rule). */
const MODULE_FILE = /\.(ts|mts|js|mjs)$/;

type Loaded = { readonly ok: true; readonly exports: Record<string, unknown> } | { readonly ok: false };

/** Every problem of the modules `uses` name; modules resolve against the flow file's folder. */
export async function checkModuleUses(uses: readonly ModuleUse[], flowFile: string): Promise<SchemaProblem[]> {
  const problems: SchemaProblem[] = [];
  const loaded = new Map<string, Promise<Loaded>>();
  for (const use of uses) {
    const file = resolve(dirname(flowFile), use.module);
    let loading = loaded.get(file);
    if (!loading) {
      // Problems of the file itself are reported once, at the first task that names it.
      loading = loadOnce(use, file, problems);
      loaded.set(file, loading);
    }
    const result = await loading;
    if (result.ok) checkExport(use, result.exports, problems);
  }
  return problems;
}

async function loadOnce(use: ModuleUse, file: string, problems: SchemaProblem[]): Promise<Loaded> {
  const at = [...use.path, 'module'];
  // Checked with fstat before importing: importing a FIFO would block the command forever.
  try {
    checkInputFile(file, { limit: 'input_file_bytes', what: 'module', code: 'DEF_MODULE' });
  } catch (error) {
    const errno = isBatonError(error) ? error.details.errno : undefined;
    if (errno === 'ENOENT' || errno === 'ENOTDIR') problems.push(missingFile(use, file, at));
    else {
      problems.push({
        code: 'DEF_MODULE',
        path: at,
        message: `task ${use.taskId}: ${isBatonError(error) ? error.message : String(error)}`,
        hint: isBatonError(error)
          ? error.hint
          : 'Point module at a regular .ts, .mts, .js or .mjs file, relative to the flow file.',
        at: 'value',
      });
    }
    return { ok: false };
  }
  try {
    return { ok: true, exports: await importModule(file) };
  } catch (error) {
    // The loader's message starts with "cannot import <file>: ", which this one says itself.
    const text = isBatonError(error) ? error.message : String(error);
    const why = text.startsWith(`cannot import ${file}: `) ? text.slice(`cannot import ${file}: `.length) : text;
    problems.push({
      code: 'DEF_MODULE',
      path: at,
      message: `task ${use.taskId}: cannot import ${file}: ${firstLine(why)}`,
      hint: 'Fix the error in the module (run it with node or tsx to see it in full); its imports must resolve from its folder.',
      at: 'value',
    });
    return { ok: false };
  }
}

function missingFile(use: ModuleUse, file: string, at: KeyPath): SchemaProblem {
  const folder = dirname(file);
  let names: string[] | undefined;
  try {
    names = readdirSync(folder).filter((n) => MODULE_FILE.test(n) && isFile(resolve(folder, n)));
  } catch {
    names = undefined;
  }
  const guess = names === undefined ? undefined : suggest(basename(file), names);
  const written =
    guess === undefined ? undefined : `${use.module.slice(0, use.module.length - basename(file).length)}${guess}`;
  return {
    code: 'DEF_MODULE',
    path: at,
    message:
      `task ${use.taskId}: module ${use.module} does not exist${written ? ` (did you mean "${written}"?)` : ''}; ` +
      (names === undefined ? `there is no folder ${folder}` : `there is no file ${file}`),
    hint: written
      ? `Change module to "${written}".`
      : names === undefined || names.length === 0
        ? 'Module paths are relative to the flow file; create the module or fix the path.'
        : `Module paths are relative to the flow file; modules in ${folder}: ${names.join(', ')}.`,
    at: 'value',
  };
}

function checkExport(use: ModuleUse, exports: Record<string, unknown>, problems: SchemaProblem[]): void {
  const value = exports[use.exportName];
  if (typeof value === 'function') return;
  const functions = Object.keys(exports).filter((k) => typeof exports[k] === 'function');
  const listing = functions.length > 0 ? `exported functions: ${functions.join(', ')}` : 'it exports no function';
  const at = [...use.path, use.exportWritten ? 'export' : 'module'];
  if (value !== undefined) {
    problems.push({
      code: 'DEF_MODULE',
      path: at,
      message: `task ${use.taskId}: export "${use.exportName}" of ${use.module} is ${describe(value)}, not a function; ${listing}`,
      hint:
        functions.length > 0
          ? `Set export to one of: ${functions.join(', ')}; or export a function as "${use.exportName}".`
          : `Export a function as "${use.exportName}" from ${use.module}.`,
      at: 'value',
    });
    return;
  }
  const guess = suggest(use.exportName, functions);
  const what = use.exportWritten ? `no export "${use.exportName}"` : 'no default export';
  problems.push({
    code: 'DEF_MODULE',
    path: at,
    message: `task ${use.taskId}: ${use.module} has ${what}${guess ? ` (did you mean "${guess}"?)` : ''}; ${listing}`,
    hint: guess
      ? `Change export to "${guess}".`
      : functions.length > 0
        ? `Set \`export:\` to one of: ${functions.join(', ')}.`
        : `Export a function from ${use.module}${use.exportWritten ? ` named "${use.exportName}"` : ' as its default export'}.`,
    at: 'value',
  });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  return `a ${typeof value}`;
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
