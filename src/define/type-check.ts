/**
 * `baton validate --types`: type-checks TypeScript flows and task modules with the
 * TypeScript compiler API, under the project's tsconfig.json (found as tsc finds it, from
 * the project folder upwards) or, without one, under defaults that suit code Baton runs
 * through tsx. Loading a flow strips types without checking them; this is the check.
 *
 * TypeScript is an optional peer dependency: it is resolved from the project first (the
 * version the project pins), then from Baton's own install, and imported only here, so
 * that no other command pays for it. Diagnostics are reported for the project's files,
 * never for packages under node_modules.
 */
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TS from 'typescript';
import { BatonError } from '../core/errors.js';

type TypeScript = typeof TS;

export interface TypeDiagnostic {
  /** Absolute path; null for a diagnostic about the options. */
  readonly file: string | null;
  /** 1-based. */
  readonly line?: number;
  readonly column?: number;
  /** `TS2322`. */
  readonly code: string;
  readonly category: 'error' | 'warning';
  readonly message: string;
}

export interface TypeCheckResult {
  /** The tsconfig.json used; null when defaults were. */
  readonly tsconfig: string | null;
  /** The files checked (their imports are checked with them). */
  readonly files: readonly string[];
  readonly diagnostics: readonly TypeDiagnostic[];
  /** The TypeScript version that checked. */
  readonly version: string;
}

/** Options without a tsconfig.json: strict, Node's ESM rules, and `.ts` imports as tsx allows them. */
export const DEFAULT_COMPILER_OPTIONS = {
  strict: true,
  target: 'ES2022',
  module: 'NodeNext',
  moduleResolution: 'NodeNext',
  esModuleInterop: true,
  skipLibCheck: true,
  resolveJsonModule: true,
  allowImportingTsExtensions: true,
  noEmit: true,
} as const;

export const TYPESCRIPT_INSTALL = 'npm install --save-dev typescript';

/** The compiler: the project's, else the one installed beside Baton. */
export async function loadTypeScript(projectDir: string): Promise<TypeScript> {
  for (const from of [join(projectDir, 'package.json'), import.meta.url]) {
    let path: string;
    try {
      path = createRequire(from).resolve('typescript');
    } catch {
      continue;
    }
    const mod = (await import(pathToFileURL(path).href)) as TypeScript & { default?: TypeScript };
    // The compiler is CommonJS: its API is the default export of the namespace.
    return mod.default ?? mod;
  }
  throw new BatonError(
    'DEP_MISSING',
    `type-checking needs the TypeScript compiler (the typescript package), which is installed neither in ${projectDir} nor beside Baton`,
    { hint: TYPESCRIPT_INSTALL },
  );
}

/**
 * Type-checks `files` (absolute paths) with the options of the project's tsconfig.json.
 * Example: `await typeCheckFiles({ projectDir, files: ['/p/flows/etl.ts'] })`.
 */
export async function typeCheckFiles(input: {
  readonly projectDir: string;
  readonly files: readonly string[];
}): Promise<TypeCheckResult> {
  const ts = await loadTypeScript(input.projectDir);
  const configPath = ts.findConfigFile(input.projectDir, (f) => ts.sys.fileExists(f), 'tsconfig.json') ?? null;
  const configDiagnostics: TS.Diagnostic[] = [];
  let options: TS.CompilerOptions;
  let declarations: string[] = [];
  if (configPath) {
    const read = ts.readConfigFile(configPath, (f) => ts.sys.readFile(f));
    if (read.error) configDiagnostics.push(read.error);
    const parsed = ts.parseJsonConfigFileContent(read.config ?? {}, ts.sys, dirname(configPath), undefined, configPath);
    // "No inputs were found" speaks of the config's include, which this check does not use.
    configDiagnostics.push(...parsed.errors.filter((d) => d.code !== 18003));
    options = checkOnly(parsed.options);
    // Ambient declarations the project includes (globals, module shims) shape its types.
    declarations = parsed.fileNames.filter((f) => f.endsWith('.d.ts'));
  } else {
    const converted = ts.convertCompilerOptionsFromJson(DEFAULT_COMPILER_OPTIONS, input.projectDir);
    configDiagnostics.push(...converted.errors);
    options = converted.options;
  }
  const roots = [...new Set([...input.files, ...declarations])];
  const program = ts.createProgram({
    rootNames: roots,
    options,
    host: ts.createCompilerHost(options),
    configFileParsingDiagnostics: configDiagnostics,
  });
  const found: TS.Diagnostic[] = [
    ...configDiagnostics,
    ...program.getOptionsDiagnostics(),
    ...program.getGlobalDiagnostics(),
  ];
  for (const source of program.getSourceFiles()) {
    if (program.isSourceFileDefaultLibrary(source) || isPackageFile(source.fileName)) continue;
    found.push(...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source));
  }
  return {
    tsconfig: configPath,
    files: input.files,
    diagnostics: dedupe(
      found
        .filter((d) => d.category === ts.DiagnosticCategory.Error || d.category === ts.DiagnosticCategory.Warning)
        .map((d) => toDiagnostic(ts, d)),
    ),
    version: ts.version,
  };
}

/** Options about output, which a check that writes nothing drops (rootDir would refuse flows outside it). */
const OUTPUT_OPTIONS = ['composite', 'incremental', 'tsBuildInfoFile', 'emitDeclarationOnly', 'rootDir'] as const;

function checkOnly(options: TS.CompilerOptions): TS.CompilerOptions {
  const copy: TS.CompilerOptions = { ...options, noEmit: true };
  for (const key of OUTPUT_OPTIONS) delete copy[key];
  return copy;
}

function isPackageFile(path: string): boolean {
  return path.includes(`${sep}node_modules${sep}`) || path.includes('/node_modules/');
}

function toDiagnostic(ts: TypeScript, d: TS.Diagnostic): TypeDiagnostic {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  const category = d.category === ts.DiagnosticCategory.Error ? 'error' : 'warning';
  if (!d.file || d.start === undefined)
    return { file: d.file?.fileName ?? null, code: `TS${d.code}`, category, message };
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return { file: d.file.fileName, line: line + 1, column: character + 1, code: `TS${d.code}`, category, message };
}

/** A file reached from two roots is checked once, but a config problem may be listed twice. */
function dedupe(list: readonly TypeDiagnostic[]): TypeDiagnostic[] {
  const seen = new Set<string>();
  return list.filter((d) => {
    const key = `${d.file}:${d.line}:${d.column}:${d.code}:${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
