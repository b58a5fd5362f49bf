/**
 * Imports user modules. `.js`/`.mjs` files load with Node's own loader; TypeScript files
 * (`.ts`, `.mts`, `.cts`, `.tsx`) load through tsx's scoped `tsImport` (esbuild under the
 * hood), imported only when a TypeScript file is met so that other commands do not pay
 * for it. Scoped imports leave the process's own module loading untouched.
 */
import { pathToFileURL } from 'node:url';
import { BatonError } from '../core/errors.js';

type TsImport = (specifier: string, parentURL: string) => Promise<unknown>;
let tsImportFn: Promise<TsImport> | undefined;

function needsTranspiler(path: string): boolean {
  return /\.(c|m)?tsx?$/.test(path);
}

/** Imports a module by absolute path; failures become DEF_LOAD errors naming the file. */
export async function importModule(path: string): Promise<Record<string, unknown>> {
  try {
    const url = pathToFileURL(path).href;
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
