/**
 * Imports user modules. `.js`/`.mjs` files load with Node's own loader; TypeScript files
 * (`.ts`, `.mts`, `.cts`, `.tsx`) load through tsx's scoped `tsImport` (esbuild under the
 * hood), imported only when a TypeScript file is met so that other commands do not pay
 * for it. Scoped imports leave the process's own module loading untouched.
 */
import { statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { BatonError } from '../core/errors.js';

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

/** Imports a module by absolute path; failures become DEF_LOAD errors naming the file. */
export async function importModule(path: string): Promise<Record<string, unknown>> {
  try {
    const url = `${pathToFileURL(path).href}?rev=${moduleRevision(path)}`;
    if (needsTranspiler(path)) {
      tsImportFn ??= import('tsx/esm/api').then((api) => api.tsImport as TsImport);
      return (await (
        await tsImportFn
      )(url, import.meta.url)) as Record<string, unknown>;
    }
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new BatonError('DEF_LOAD', `cannot import ${path}: ${message}`, { cause: error });
  }
}
