/**
 * Imports user modules. `.js`/`.mjs` files load with Node's own loader; TypeScript files
 * (`.ts`, `.mts`, `.cts`, `.tsx`) load through tsx's scoped `tsImport` (esbuild under the
 * hood), imported only when a TypeScript file is met so that other commands do not pay
 * for it. Scoped imports leave the process's own module loading untouched.
 *
 * A scoped import evaluates the file afresh on every call, so imports are shared per file
 * revision: the check that a flow's modules load (module-check.ts) and the tasks that run
 * them later in the same process get one instance, and top-level code runs once.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BatonError } from '../core/errors.js';
import { withoutInternalPaths } from '../core/internal-paths.js';
import { checkInputFile } from './input-file.js';

const BATON_ROOT = fileURLToPath(new URL('../..', import.meta.url));

type TsImport = (specifier: string, parentURL: string) => Promise<unknown>;
let tsImportFn: Promise<TsImport> | undefined;

function needsTranspiler(path: string): boolean {
  return /\.(c|m)?tsx?$/.test(path);
}

/**
 * A token that changes when the file changes (mtime and size). Module caches key on it, and
 * it is part of the import URL, so that a long-running process runs the code a new run was
 * pinned to rather than the copy it loaded first. (Modules imported by the file are not
 * reloaded: restart the process after changing those.)
 */
export function moduleRevision(path: string): string {
  try {
    const st = statSync(path);
    return `${Math.trunc(st.mtimeMs)}-${st.size}`;
  } catch {
    return 'missing';
  }
}

const imported = new Map<string, Promise<Record<string, unknown>>>();

/**
 * A `.ts` file outside an ES-module package is compiled to CommonJS, and Node then hands
 * its whole `exports` object over as `default`, the real default export inside it. The
 * exports are given as the file wrote them, so that `export default function` is the
 * default export whatever the package type. The compiled object says so with `__esModule`.
 */
function withCommonJsInterop(mod: Record<string, unknown>): Record<string, unknown> {
  const inner = mod.default;
  if (typeof inner !== 'object' || inner === null || (inner as { __esModule?: unknown }).__esModule !== true)
    return mod;
  const { default: realDefault, ...named } = inner as Record<string, unknown>;
  const { default: _wrapped, ...outer } = mod;
  return { ...named, ...outer, ...(realDefault === undefined ? {} : { default: realDefault }) };
}

/**
 * Imports a module by absolute path, once per revision of the file; failures become
 * DEF_LOAD errors naming the file (and are not kept, so a fixed file loads next time). A
 * path that is not a regular file within `input_file_bytes` is refused without importing.
 */
export function importModule(path: string): Promise<Record<string, unknown>> {
  const key = `${path}\u0000${moduleRevision(path)}`;
  let loading = imported.get(key);
  if (!loading) {
    loading = importUncached(path);
    imported.set(key, loading);
    loading.catch(() => imported.delete(key));
  }
  return loading;
}

let ownPackageHook: 'registered' | 'unavailable' | undefined;

/** Whether `node_modules/<name>` exists from `dir` upward, as Node's resolution looks. */
function resolvableFrom(dir: string, name: string): boolean {
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, 'node_modules', name, 'package.json'))) return true;
    if (dirname(at) === at) return false;
  }
}

/**
 * Lets a module import Baton by its package name when its project has not installed Baton
 * (own-package-hook.ts), so that a project fresh from `baton init` validates and runs
 * before `npm install`. Registered once, and only when such a module is met.
 */
function ensureOwnPackageResolves(path: string): void {
  if (ownPackageHook !== undefined) return;
  const packageJson = join(BATON_ROOT, 'package.json');
  const { name } = JSON.parse(readFileSync(packageJson, 'utf8')) as { name: string };
  if (resolvableFrom(dirname(path), name)) return;
  const hook = new URL('./own-package-hook.js', import.meta.url);
  // Under a test runner this module runs from src/, where no compiled hook exists; Node
  // before 20.6 has no `register` (the project then needs Baton installed, as usual).
  const register = (nodeModule as { register?: typeof nodeModule.register }).register;
  if (!existsSync(fileURLToPath(hook)) || typeof register !== 'function') {
    ownPackageHook = 'unavailable';
    return;
  }
  register(hook, { data: { name, packageJsonUrl: pathToFileURL(packageJson).href } });
  ownPackageHook = 'registered';
}

async function importUncached(path: string): Promise<Record<string, unknown>> {
  // `import` would block forever on a FIFO and read a device without end: the path must be
  // a regular file of bounded size before the loader opens it.
  checkInputFile(path, { limit: 'input_file_bytes', what: 'module', code: 'DEF_LOAD' });
  try {
    ensureOwnPackageResolves(path);
    const url = `${pathToFileURL(path).href}?rev=${moduleRevision(path)}`;
    if (needsTranspiler(path)) {
      tsImportFn ??= import('tsx/esm/api').then((api) => api.tsImport as TsImport);
      return withCommonJsInterop((await (await tsImportFn)(url, import.meta.url)) as Record<string, unknown>);
    }
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    // Node names the importer (this file, inside Baton) in its messages: useless to users.
    const message = withoutInternalPaths(error instanceof Error ? error.message : String(error), BATON_ROOT);
    throw new BatonError('DEF_LOAD', `cannot import ${path}: ${message}`, { cause: error });
  }
}
