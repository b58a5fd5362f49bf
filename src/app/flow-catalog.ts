/**
 * Finds, loads and pins flows. A flow is a file: YAML/JSON (parsed and validated with
 * positions, and the modules of its function tasks imported and checked) or a
 * TypeScript/JavaScript module exporting a `defineFlow(...)` (imported through tsx). Its
 * version is a hash of the normalized definition plus the source of the code it runs, so
 * a run can always tell whether the code it started with is still there.
 * The catalog is also the engine's FlowResolver: it rebuilds a pinned version from the
 * store and refuses to execute code that changed since.
 */
import { createHash, type Hash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Problem } from '../core/errors.js';
import { missingClientProblems, type PackageProbe } from '../triggers/source-clients.js';
import { missingSqlEngineProblems } from '../data/duckdb.js';
import { BatonError } from '../core/errors.js';
import type { FlowSpec } from '../core/model.js';
import type { FlowPlan } from '../core/run-machine.js';
import { readPinnedSpec } from '../core/run-history.js';
import { compilePlan } from '../core/run-machine.js';
import { flattenTasks, runsFlowCode } from '../core/run-topology.js';
import type { FlowDefinition } from '../define/builder.js';
import { isFlowDefinitionLike } from '../define/flow-mark.js';
import { checkLaunch, type SubflowTargets } from '../define/launch-check.js';
import { checkInputFile, readInputFile } from '../define/input-file.js';
import { importModule, moduleRevision } from '../define/module-loader.js';
import type { TypeCheckResult } from '../define/type-check.js';
import type { FlowResolver, ResolvedFlow } from '../engine/engine.js';
import type { Store } from '../store/store.js';

export interface LoadedFlow {
  readonly spec: FlowSpec;
  readonly version: string;
  readonly sourcePath: string;
  readonly definition?: FlowDefinition;
}

const YAML_EXT = new Set(['.yaml', '.yml', '.json']);
const CODE_EXT = new Set(['.ts', '.mts', '.js', '.mjs']);
const TS_FILE = /\.(c|m)?tsx?$/;

export function isFlowFile(path: string): boolean {
  const ext = extname(path);
  return YAML_EXT.has(ext) || CODE_EXT.has(ext);
}

/**
 * The source of a file a flow runs, for its version; '' when it cannot be had (missing, or
 * not a regular file: a FIFO is never opened for reading), which changes the version.
 */
function readSource(path: string): string {
  try {
    return readInputFile(path, { limit: 'input_file_bytes', what: 'module', code: 'DEF_LOAD' });
  } catch {
    return '';
  }
}

/** Sources of the modules a YAML flow's function tasks run, in task order. */
function moduleSources(spec: FlowSpec, flowFile: string): string[] {
  const read = new Map<string, string>();
  return flattenTasks(spec.tasks)
    .map((t) => t.config.module)
    .filter((m): m is string => typeof m === 'string')
    .map((m) => {
      const path = resolve(dirname(flowFile), m);
      let text = read.get(path);
      if (text === undefined) {
        text = readSource(path);
        read.set(path, text);
      }
      return text;
    });
}

/** Version = short sha256 of the normalized spec and the sources it runs. */
export function flowVersion(spec: FlowSpec, sources: readonly string[]): string {
  const h = createHash('sha256');
  updateWithJson(h, spec);
  for (const s of sources) h.update('\u0000').update(s);
  return h.digest('hex').slice(0, 12);
}

/** Tasks serialized per piece fed to the hash: a few tens of kilobytes of text. */
const TASKS_PER_PIECE = 64;

/**
 * Feeds the hash the text of `JSON.stringify(spec)`, byte for byte, in pieces: the text of
 * a flow of 50,000 tasks is tens of megabytes, and made whole it is one more copy of that
 * size to allocate, collect and encode. The spec is plain data (no `toJSON`); anything else
 * is hashed as one text.
 */
function updateWithJson(h: Hash, spec: FlowSpec): void {
  const tasks = spec.tasks as unknown;
  if ('toJSON' in spec || !Array.isArray(tasks) || 'toJSON' in tasks) {
    h.update(JSON.stringify(spec));
    return;
  }
  let pending = '{';
  let first = true;
  for (const key of Object.keys(spec)) {
    const value = (spec as unknown as Record<string, unknown>)[key];
    if (value === tasks) {
      h.update(`${pending}${first ? '' : ','}${JSON.stringify(key)}:[`);
      first = false;
      pending = ']';
      for (let i = 0; i < tasks.length; i += TASKS_PER_PIECE) {
        let piece = '';
        const end = Math.min(tasks.length, i + TASKS_PER_PIECE);
        // As in JSON.stringify: an entry with no JSON text is written as null.
        for (let k = i; k < end; k++) piece += `${k > 0 ? ',' : ''}${JSON.stringify(tasks[k]) ?? 'null'}`;
        h.update(piece);
      }
      continue;
    }
    const json = JSON.stringify(value);
    // As in JSON.stringify: a key whose value has no JSON text is left out.
    if (json === undefined) continue;
    pending += `${first ? '' : ','}${JSON.stringify(key)}:${json}`;
    first = false;
  }
  h.update(`${pending}}`);
}

/** The source path recorded for a flow registered in code: `code:<flow name>`, no file. */
export const CODE_SOURCE_PREFIX = 'code:';

/** Whether a recorded source path names a flow registered in code rather than a file. */
export function isCodeSource(sourcePath: string): boolean {
  return sourcePath.startsWith(CODE_SOURCE_PREFIX);
}

/**
 * The version of a flow defined in code and registered without a file: its normalized
 * definition and the source text of the functions its tasks run, so that a worker running
 * other code than the process that started a run refuses the run instead of running it.
 */
function codeVersion(definition: FlowDefinition, spec: FlowSpec): string {
  const sources = flattenTasks(spec.tasks)
    .filter(runsFlowCode)
    .map((t) => String(definition.functionOf(t.key ?? t.id) ?? ''));
  return flowVersion(spec, sources);
}

export class FlowCatalog implements FlowResolver {
  private readonly byPath = new Map<string, Promise<LoadedFlow>>();
  /** Flows defined in code and registered by name (`register`), found before any file. */
  private readonly registered = new Map<string, LoadedFlow>();

  constructor(
    readonly projectDir: string,
    private readonly options: {
      readonly knownPools?: readonly string[];
      readonly kinds?: readonly string[];
      readonly store?: Store;
      /**
       * Also check a flow against the project when it is loaded (define/launch-check.ts): each
       * subflow names a flow of the project, no command holds a NUL. Off for a flow looked
       * at alone (the testing kit, which is given its subflows' flows another way).
       */
      readonly launchChecks?: boolean;
      /** Whether an optional package is installed (tests stand one in); Node's resolution by default. */
      readonly probe?: PackageProbe;
    } = {},
  ) {}

  /** The folder flows are discovered in. */
  get flowsDir(): string {
    return join(this.projectDir, 'flows');
  }

  /**
   * Loads one flow file; throws a BatonError listing every problem. Cached per path; the
   * checks against the project (`launchChecks`) run at every load, since they depend on
   * other files.
   */
  async load(path: string): Promise<LoadedFlow> {
    const flow = await this.loadOwn(path);
    if (!this.options.launchChecks) return flow;
    const problems = await checkLaunch(flow.spec, flow.sourcePath, this.subflowTargets(), () =>
      readFlowText(flow.sourcePath),
    );
    if (problems.length > 0) throw problemsError(flow.sourcePath, problems);
    return flow;
  }

  /** A flow file loaded and checked on its own, without the flows it names. Cached per path. */
  private loadOwn(path: string): Promise<LoadedFlow> {
    const abs = resolve(path);
    // Keyed by the file's revision: an edited flow is loaded again, not served stale.
    const key = `${abs}\u0000${moduleRevision(abs)}`;
    let loading = this.byPath.get(key);
    if (!loading) {
      loading = this.loadUncached(abs).then((flow) => {
        const missing = [
          ...missingClientProblems(flow.spec, abs, this.options.probe),
          ...missingSqlEngineProblems(flow.spec, abs, this.options.probe),
        ];
        if (missing.length > 0) throw problemsError(abs, missing);
        return flow;
      });
      this.byPath.set(key, loading);
      loading.catch(() => this.byPath.delete(key));
    }
    return loading;
  }

  private async loadUncached(abs: string): Promise<LoadedFlow> {
    const ext = extname(abs);
    // A device, a FIFO or a folder is refused before anything opens it for reading, and a
    // YAML file over its limit before it is parsed; code files are checked by the importer.
    if (!CODE_EXT.has(ext)) {
      const yaml = YAML_EXT.has(ext);
      checkInputFile(abs, {
        limit: yaml ? 'flow_file_bytes' : 'input_file_bytes',
        what: 'flow file',
        code: 'DEF_LOAD',
      });
    }
    if (YAML_EXT.has(ext)) {
      // The YAML parser and schema library load only when a YAML flow is met.
      const { loadFlowFile } = await import('../define/load-yaml.js');
      // A flow is checked completely when it is loaded, its task modules included, so that
      // `baton run` refuses it before a run exists. Commands that read runs never load flows.
      const result = await loadFlowFile(abs, {
        ...(this.options.kinds ? { kinds: this.options.kinds } : {}),
        ...(this.options.knownPools ? { knownPools: this.options.knownPools } : {}),
        checkModules: true,
      });
      if (!result.spec) throw problemsError(abs, result.problems);
      const spec = result.spec;
      return { spec, version: flowVersion(spec, moduleSources(spec, abs)), sourcePath: abs };
    }
    if (!CODE_EXT.has(ext)) {
      throw new BatonError('DEF_LOAD', `${abs}: not a flow file (expected .yaml, .yml, .json, .ts, .mts, .js or .mjs)`);
    }
    const mod = await importModule(abs);
    // A .ts file outside an ESM package loads as CommonJS: its exports sit under `default`.
    const inner = mod.default;
    const exported =
      inner && typeof inner === 'object' && !isFlowDefinitionLike(inner)
        ? { ...mod, ...(inner as Record<string, unknown>) }
        : mod;
    const flows = Object.entries(exported).filter(([, v]) => isFlowDefinitionLike(v)) as [string, FlowDefinition][];
    const chosen = flows.find(([k]) => k === 'default') ?? (flows.length === 1 ? flows[0] : undefined);
    if (!chosen) {
      throw new BatonError(
        'DEF_LOAD',
        flows.length === 0
          ? `${abs} does not export a flow`
          : `${abs} exports ${flows.length} flows (${flows.map(([k]) => k).join(', ')}); export one, or make one the default export`,
        {
          hint: 'Export the result of defineFlow({...}) as the default export.',
          details: { noFlow: flows.length === 0 },
        },
      );
    }
    const definition = chosen[1];
    const spec = definition.toSpec(abs);
    return { spec, version: flowVersion(spec, [readSource(abs)]), sourcePath: abs, definition };
  }

  /**
   * The flows a subflow may name, as the child-run launcher finds them (`find`): a flow
   * under `flows/`, by name. Every flow is listed at most once per check, and only when a
   * name is not the name of its file.
   */
  private subflowTargets(): SubflowTargets {
    let listing: Promise<{ names: string[]; broken: number }> | undefined;
    const list = () => (listing ??= this.flowNames());
    // Many subflow tasks (a generated flow) often name the same few flows: look each up once.
    const known = new Map<string, Promise<boolean>>();
    const lookUp = async (name: string): Promise<boolean> => {
      for (const ext of [...YAML_EXT, ...CODE_EXT]) {
        const candidate = join(this.flowsDir, `${name}${ext}`);
        if (!isFile(candidate)) continue;
        const loaded = await this.loadOwn(candidate).catch(() => undefined);
        if (loaded?.spec.name === name) return true;
      }
      return (await list()).names.includes(name);
    };
    return {
      has: (name) => {
        let found = known.get(name);
        if (!found) known.set(name, (found = lookUp(name)));
        return found;
      },
      names: list,
    };
  }

  /** The names of the flows under `flows/`, each loaded on its own, and how many failed to load. */
  private async flowNames(): Promise<{ names: string[]; broken: number }> {
    let files: string[];
    try {
      files = readdirSync(this.flowsDir).filter(isFlowFile).sort();
    } catch {
      return { names: [], broken: 0 };
    }
    const names = new Set<string>();
    let broken = 0;
    for (const file of files) {
      try {
        names.add((await this.loadOwn(join(this.flowsDir, file))).spec.name);
      } catch (error) {
        // A code file without a flow is a helper module of the flows beside it.
        if (!(error instanceof BatonError && error.details.noFlow === true)) broken++;
      }
    }
    return { names: [...names].sort(), broken };
  }

  /**
   * Makes a flow defined in code (`defineFlow`) known by its name, without a file: `find`
   * returns it before any file of that name, and runs of it resolve to its functions in
   * this process. Registering another definition under the same name replaces it (runs
   * already started keep their pinned version); the same definition again is a no-op, so a
   * flow is registered once its tasks are all added. Throws DEF_* listing every problem.
   */
  register(definition: FlowDefinition): LoadedFlow {
    if (!isFlowDefinitionLike(definition)) {
      throw new BatonError('USAGE', 'register: expected a flow from defineFlow()', {
        hint: 'Pass the value defineFlow({...}) returned, with its tasks added.',
      });
    }
    // The same definition again (every `start(flow, …)` passes it) is not normalized again.
    const known = this.registered.get(definition.name);
    if (known?.definition === definition) return known;
    const spec = definition.toSpec(`${CODE_SOURCE_PREFIX}${definition.name}`);
    const loaded: LoadedFlow = {
      spec,
      version: codeVersion(definition, spec),
      sourcePath: `${CODE_SOURCE_PREFIX}${spec.name}`,
      definition,
    };
    this.registered.set(spec.name, loaded);
    return loaded;
  }

  /** The flows registered in code, by name. */
  registeredFlows(): LoadedFlow[] {
    return [...this.registered.values()];
  }

  /** Finds a flow registered in code by name, a flow file by path, or a flow of the project by name. */
  async find(ref: string): Promise<LoadedFlow> {
    const own = this.registered.get(ref);
    if (own) return own;
    const asPath = resolve(ref);
    // A path that exists but is no regular file (a FIFO, a folder) is loaded too, to be
    // refused with what it is rather than reported as not found.
    if (isFlowFile(ref) && existsSync(asPath)) return this.load(asPath);
    for (const ext of [...YAML_EXT, ...CODE_EXT]) {
      const candidate = join(this.flowsDir, `${ref}${ext}`);
      if (isFile(candidate)) {
        const loaded = await this.load(candidate);
        if (loaded.spec.name === ref) return loaded;
      }
    }
    const entries = await this.list();
    for (const entry of entries) {
      if (entry.flow?.spec.name === ref) return entry.flow;
    }
    // The flow may be one of those that failed to load: say which, rather than only "not found".
    const broken = entries.filter((e) => e.problems.length > 0);
    throw new BatonError(
      'FLOW_NOT_FOUND',
      `no flow named "${ref}" in ${this.flowsDir}, and no flow file at ${asPath}`,
      {
        ...(broken.length > 0
          ? {
              hint: 'The flow files with the problems above could not be loaded, and one of them may hold it: fix them (`baton validate` lists every problem).',
              problems: broken.flatMap((e) => e.problems),
            }
          : {}),
      },
    );
  }

  /** Every flow file under `flows/`, loaded, with its problems. */
  async list(): Promise<{ path: string; flow?: LoadedFlow; problems: readonly Problem[] }[]> {
    let names: string[];
    try {
      names = readdirSync(this.flowsDir).filter(isFlowFile).sort();
    } catch {
      return [];
    }
    const out: { path: string; flow?: LoadedFlow; problems: readonly Problem[] }[] = [];
    for (const name of names) {
      const path = join(this.flowsDir, name);
      try {
        out.push({ path, flow: await this.load(path), problems: [] });
      } catch (error) {
        // A code file without a flow is a helper module of the flows beside it.
        if (error instanceof BatonError && error.details.noFlow === true) continue;
        out.push({ path, problems: problemsOf(error, path) });
      }
    }
    return out;
  }

  /**
   * Type-checks TypeScript code (`validate --types`): the TypeScript files among `files`
   * (flows, and helper modules beside them) and the TypeScript modules that the function
   * tasks of the YAML files among them name, whether or not those flows have other
   * problems. The compiler is imported only here.
   */
  async typeCheck(files: readonly string[]): Promise<TypeCheckResult> {
    const [{ typeCheckFiles }, { loadFlowFile }] = await Promise.all([
      import('../define/type-check.js'),
      import('../define/load-yaml.js'),
    ]);
    const modules: string[] = [];
    for (const file of files) {
      if (!YAML_EXT.has(extname(file)) || isUnreadable(file, 'flow_file_bytes')) continue;
      const { modules: uses = [] } = await loadFlowFile(file, this.options.kinds ? { kinds: this.options.kinds } : {});
      for (const use of uses) modules.push(resolve(dirname(file), use.module));
    }
    // What is not a regular file was reported by `load`; the compiler would block on a FIFO.
    const checked = [...new Set([...files, ...modules].map((f) => resolve(f)))].filter(
      (f) => TS_FILE.test(f) && !isUnreadable(f, 'input_file_bytes'),
    );
    return typeCheckFiles({ projectDir: this.projectDir, files: checked });
  }

  /** The pinned definition of a version, without loading its code. */
  async plan(flow: string, version: string): Promise<FlowPlan> {
    const store = this.options.store;
    if (!store) throw new Error('FlowCatalog.plan needs a store');
    const record = await store.getFlowVersion(flow, version);
    if (!record) throw new BatonError('FLOW_NOT_FOUND', `flow ${flow} version ${version} is not in the store`);
    return compilePlan(readPinnedSpec(record.spec, `flow ${flow} version ${version}`));
  }

  /** Rebuilds a pinned version for the engine; refuses changed code. */
  async resolve(flow: string, version: string): Promise<ResolvedFlow> {
    const store = this.options.store;
    if (!store) throw new Error('FlowCatalog.resolve needs a store');
    const record = await store.getFlowVersion(flow, version);
    if (!record) throw new BatonError('FLOW_NOT_FOUND', `flow ${flow} version ${version} is not in the store`);
    const spec = readPinnedSpec(record.spec, `flow ${flow} version ${version}`);
    const plan = compilePlan(spec);
    const needsCode = flattenTasks(spec.tasks).some(runsFlowCode);
    if (isCodeSource(record.sourcePath)) return this.resolveRegistered(flow, version, plan, needsCode);
    let definition: FlowDefinition | undefined;
    if (needsCode && YAML_EXT.has(extname(record.sourcePath))) {
      // The pinned definition is in the store; only the modules it runs can have changed.
      // Checking their sources is enough, and spares parsing the flow file again.
      const current = flowVersion(spec, moduleSources(spec, record.sourcePath));
      if (current !== version) {
        throw new BatonError(
          'FLOW_VERSION_MISMATCH',
          `flow ${flow}: the run is pinned to version ${version} but the task modules of ${basename(record.sourcePath)} changed (now version ${current})`,
        );
      }
    } else if (needsCode) {
      let current: LoadedFlow;
      try {
        current = await this.load(record.sourcePath);
      } catch (error) {
        throw new BatonError(
          'FLOW_VERSION_MISMATCH',
          `flow ${flow}: cannot load ${record.sourcePath} to run version ${version}: ${(error as Error).message}`,
          { cause: error },
        );
      }
      if (current.version !== version) {
        throw new BatonError(
          'FLOW_VERSION_MISMATCH',
          `flow ${flow}: the run is pinned to version ${version} but ${basename(record.sourcePath)} is now version ${current.version}`,
        );
      }
      definition = current.definition;
    }
    return {
      plan,
      flowDir: dirname(record.sourcePath),
      resolveFunction: (taskId) => definition?.functionOf(taskId),
    };
  }

  /** A pinned version of a flow registered in code: only this process's registration can run it. */
  private resolveRegistered(flow: string, version: string, plan: FlowPlan, needsCode: boolean): ResolvedFlow {
    const own = this.registered.get(flow);
    if (needsCode && own?.version !== version) {
      throw new BatonError(
        'FLOW_VERSION_MISMATCH',
        own
          ? `flow ${flow}: the run is pinned to version ${version} but the flow registered in this process is version ${own.version}`
          : `flow ${flow} is defined in code (version ${version}) and not registered in this process`,
        {
          hint: 'Register the same flow in the process that executes its runs: openClient({ flows: [flow] }) or client.register(flow).',
        },
      );
    }
    const definition = own?.version === version ? own.definition : undefined;
    return { plan, flowDir: this.projectDir, resolveFunction: (key) => definition?.functionOf(key) };
  }
}

/**
 * Whether `path` exists but must not be read: not a regular file (a FIFO would block its
 * reader), or over `limit`. A missing file is left to the reader, which reports it.
 */
function isUnreadable(path: string, limit: 'flow_file_bytes' | 'input_file_bytes'): boolean {
  try {
    checkInputFile(path, { limit, what: 'file', code: 'DEF_LOAD' });
    return false;
  } catch (error) {
    return !(error instanceof BatonError && error.details.errno === 'ENOENT');
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The text of a loaded flow file, for the positions of its problems; undefined when it cannot be read again. */
function readFlowText(path: string): string | undefined {
  if (!YAML_EXT.has(extname(path)) && !CODE_EXT.has(extname(path))) return undefined;
  try {
    // The file loaded a moment ago; a size limit raised in baton.yaml may exceed the default here.
    return readInputFile(path, {
      limit: 'flow_file_bytes',
      limitBytes: Number.MAX_SAFE_INTEGER,
      what: 'flow file',
      code: 'DEF_LOAD',
    });
  } catch {
    return undefined;
  }
}

function problemsError(file: string, problems: readonly Problem[]): BatonError {
  const first = problems[0];
  return new BatonError(first?.code ?? 'DEF_INVALID', `${problems.length} problem(s) in ${file}`, { problems });
}

/** The problems an error stands for, for listing. */
export function problemsOf(error: unknown, file: string): Problem[] {
  if (error instanceof BatonError) {
    if (error.problems.length > 0) return [...error.problems];
    return [{ code: error.code, message: error.message, hint: error.hint, location: { file } }];
  }
  return [{ code: 'DEF_LOAD', message: (error as Error).message, location: { file } }];
}
