/**
 * The one place that reads configuration and wires concrete adapters: the store (SQLite
 * file or PostgreSQL), the executors, the flow catalog, engines, workers and schedulers. Faces (CLI, later the server) call these
 * functions and never build adapters themselves.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isAbsolute, relative, resolve } from 'node:path';
import { BatonError } from '../core/errors.js';
import { readPinnedSpec } from '../core/run-history.js';
import type { ChildRunLauncher, EngineOptions } from '../engine/engine.js';
import { Engine } from '../engine/engine.js';
import { ExecutorRegistry } from '../engine/executor.js';
import { functionExecutor } from '../engine/executors/function.js';
import { shellExecutor } from '../engine/executors/shell.js';
import { sqlExecutor } from '../engine/executors/sql.js';
import { choiceExecutor, raceExecutor } from '../engine/executors/control.js';
import { SchedulerProcess } from '../engine/scheduler.js';
import type { TaskWorkerOptions } from '../engine/task-worker.js';
import { TaskWorker } from '../engine/task-worker.js';
import { SqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/store.js';
import type { TriggerFlow, TriggerFlows, TriggerServiceOptions } from '../triggers/trigger-service.js';
import { TriggerService } from '../triggers/trigger-service.js';
import { triggerSources } from '../triggers/sources.js';
import type { BatonConfig, ConfigOverrides } from './config.js';
import { buildRun } from './runs.js';
import { loadConfig } from './config.js';
import { crashPointsFromEnv } from '../engine/crash-points.js';
import type { LoadedFlow } from './flow-catalog.js';
import { FlowCatalog } from './flow-catalog.js';
import { ProjectData } from './data.js';
import { ProjectAssets } from './assets.js';
import { taskDataProvider } from '../data/task-data.js';
import { namespacePayloads } from '../data/payloads.js';
import { ProjectResultCache } from '../data/result-cache-key.js';
import type { PayloadStore } from '../core/payload-ref.js';

export interface Runtime {
  readonly config: BatonConfig;
  readonly store: Store;
  readonly catalog: FlowCatalog;
  readonly executors: ExecutorRegistry;
  /** The data namespace: mounts, cache and metadata (docs/data.md). */
  readonly data: ProjectData;
  /** Outputs stored by reference (over limits.output_bytes). */
  readonly payloads: PayloadStore;
  /** Assets: versions, lineage and checks (docs/data.md). */
  readonly assets: ProjectAssets;
  createEngine(overrides?: Partial<EngineOptions>): Engine;
  /** A worker process's task loop (PostgreSQL deployments). */
  createWorker(overrides?: Partial<TaskWorkerOptions>): TaskWorker;
  /** The trigger service over this project's flows (time triggers, event sources). */
  createTriggerService(options?: Partial<TriggerServiceOptions>): TriggerService;
  /** A scheduler process: leader election plus an engine in dispatch mode, and the triggers while leading. */
  createScheduler(options?: {
    triggers?: boolean;
    leaseMs?: number;
    engine?: Partial<EngineOptions>;
    onDiagnostic?: (m: string) => void;
    onLeadership?: (leading: boolean) => void;
  }): SchedulerProcess;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly flags?: ConfigOverrides;
  /**
   * Outside any project, keep runs in `.baton/` of the working directory instead of
   * refusing: for commands given a flow file by path (`baton run ./x.yaml`).
   */
  readonly allowNoProject?: boolean;
  /** Where to say which project and store a command uses, when that is not obvious. */
  readonly notice?: (message: string) => void;
}

/**
 * Refuses to open the default store outside a project (a typo'd folder must not grow an
 * empty `.baton/`), and says which project and store are used when they are not the
 * working directory's.
 */
function checkProject(config: BatonConfig, options: RuntimeOptions): void {
  const where = config.databaseUrl ? 'PostgreSQL' : relativeOrAbsolute(options.cwd, config.databasePath);
  if (config.projectMarker === 'none' && !config.databaseNamed) {
    if (!options.allowNoProject) {
      throw new BatonError(
        'NO_PROJECT',
        `${config.projectDir} is not a Baton project: no baton.yaml or flows/ folder here or in a parent folder, and no store`,
        {
          hint: 'Run `baton init` to create a project here, cd into a project, or name a store with --db or BATON_DATABASE_URL.',
        },
      );
    }
    options.notice?.(`baton: ${config.projectDir} is not a Baton project; keeping its runs in ${where}`);
    return;
  }
  if (resolve(config.projectDir) !== resolve(options.cwd)) {
    options.notice?.(`baton: project ${config.projectDir} (store ${where})`);
  }
}

function relativeOrAbsolute(cwd: string, path: string): string {
  const rel = relative(cwd, path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

export function createExecutors(): ExecutorRegistry {
  return new ExecutorRegistry([functionExecutor, shellExecutor, sqlExecutor, choiceExecutor, raceExecutor]);
}

/** A catalog for validation only: no store needed. */
export async function openCatalog(options: RuntimeOptions): Promise<{ config: BatonConfig; catalog: FlowCatalog }> {
  const config = await loadConfig(options.cwd, options.env, options.flags);
  const catalog = new FlowCatalog(config.projectDir, {
    knownPools: Object.keys(config.pools),
    kinds: createExecutors().kinds(),
    launchChecks: true,
  });
  return { config, catalog };
}

/** Reads the configuration of the project at `options.cwd` and wires the runtime over it. */
export async function openRuntime(options: RuntimeOptions): Promise<Runtime> {
  const config = await loadConfig(options.cwd, options.env, options.flags);
  checkProject(config, options);
  return createRuntime(config, { env: options.env });
}

/**
 * The composition root: opens the store that `config` names and wires the executors, the
 * flow catalog, and the factories of engines, workers, schedulers and trigger services.
 * `env` carries what the trigger sources and the test hooks read; nothing else reads it.
 */
export async function createRuntime(
  config: BatonConfig,
  options: { readonly env: NodeJS.ProcessEnv },
): Promise<Runtime> {
  const faults = crashPointsFromEnv(options.env);
  // Test hook: pretend this machine's clock is off by the given ms (see docs/failure-modes.md).
  const skew = Number(options.env.BATON_CLOCK_SKEW_MS ?? 0) || 0;
  const clock = skew !== 0 ? { now: () => Date.now() + skew } : undefined;
  let store: Store;
  if (config.databaseUrl) {
    // Loaded only for PostgreSQL deployments, so that the embedded path stays light.
    const { PostgresStore } = await import('../store/postgres/postgres-store.js');
    store = await PostgresStore.open({ url: config.databaseUrl, poolSize: config.poolSize });
  } else {
    store = new SqliteStore({ path: config.databasePath, ...(faults ? { faults } : {}) });
  }
  const executors = createExecutors();
  const catalog = new FlowCatalog(config.projectDir, {
    knownPools: Object.keys(config.pools),
    kinds: executors.kinds(),
    store,
    launchChecks: true,
  });
  const data = new ProjectData(config, store, options.env);
  const dataProvider = taskDataProvider(data.namespace);
  const payloads = namespacePayloads(data.namespace, config.data.payloads);
  const assets = new ProjectAssets(store, data.namespace);
  const afterBody = assets.afterBody();
  const resultCache = new ProjectResultCache(store, data.namespace);
  const children: ChildRunLauncher = {
    async launch(request) {
      let loaded: LoadedFlow;
      if (request.version) {
        const record = await store.getFlowVersion(request.flow, request.version);
        if (!record) {
          throw new BatonError(
            'FLOW_NOT_FOUND',
            `subflow ${request.parentTask}: flow ${request.flow} version ${request.version} is not in the store`,
            { hint: 'Run the child flow once at that version, or drop `version` to use its current definition.' },
          );
        }
        const spec = readPinnedSpec(record.spec, `flow ${request.flow} version ${request.version}`);
        loaded = { spec, version: request.version, sourcePath: record.sourcePath };
      } else {
        loaded = await catalog.find(request.flow);
      }
      const run = buildRun(config, loaded, {
        params: request.params,
        // One child per parent attempt: after a crash the attempt finds the child it made.
        dedupeKey: `child:${request.parentRunId}/${request.parentTask}/${request.attempt}`,
      });
      // The store checks the nesting and the parent's count of children as it creates the
      // child, so that a flow starting itself ends at the limit with SUBFLOW_DEPTH.
      const created = await store.createRun({
        ...run,
        parent: {
          runId: request.parentRunId,
          task: request.parentTask,
          limits: { depth: config.subflowDepth, childRuns: config.childRunsPerRun },
        },
      });
      return created.run.id;
    },
  };
  // Engines and workers still running, stopped by `close`; each leaves the set when it stops,
  // so that a long-lived process making one per request (cancel, signal) does not grow it.
  const engines = new Set<Engine>();
  const workers = new Set<TaskWorker>();
  const tracked = <T extends { stop(): Promise<void> }>(set: Set<T>, item: T): T => {
    set.add(item);
    const stop = item.stop.bind(item);
    item.stop = async () => {
      try {
        await stop();
      } finally {
        set.delete(item);
      }
    };
    return item;
  };
  const schedulers: SchedulerProcess[] = [];
  const engineDefaults = (): EngineOptions => ({
    store,
    executors,
    flows: catalog,
    concurrency: config.concurrency,
    pools: config.pools,
    leaseMs: config.leaseMs,
    outputLimitBytes: config.outputLimitBytes,
    logLimitBytes: config.logLimitBytes,
    logLineLimitBytes: config.logLineLimitBytes,
    errorLimitBytes: config.errorLimitBytes,
    killGraceMs: config.killGraceMs,
    children,
    data: dataProvider,
    payloads,
    payloadLimitBytes: config.payloadLimitBytes,
    afterBody,
    resultCache,
    prefetch: (runId, paths, params) => data.prefetch(runId, paths, params),
    // On PostgreSQL a creating commit costs more round trips than a creation and a claim,
    // and holds up the worker's other commits meanwhile: there runs are created queued.
    eagerStarts: store.dialect === 'sqlite',
    ...(faults ? { faults } : {}),
    ...(clock ? { clock } : {}),
  });
  let triggerService: TriggerService | undefined;
  const runtime: Runtime = {
    config,
    store,
    catalog,
    executors,
    data,
    payloads,
    assets,
    createEngine(overrides = {}) {
      return tracked(engines, new Engine({ ...engineDefaults(), ...overrides }));
    },
    createWorker(overrides = {}) {
      const worker = new TaskWorker({
        store,
        executors,
        flows: catalog,
        concurrency: config.concurrency,
        leaseMs: config.leaseMs,
        outputLimitBytes: config.outputLimitBytes,
        logLimitBytes: config.logLimitBytes,
        logLineLimitBytes: config.logLineLimitBytes,
        errorLimitBytes: config.errorLimitBytes,
        killGraceMs: config.killGraceMs,
        data: dataProvider,
        payloads,
        payloadLimitBytes: config.payloadLimitBytes,
        afterBody,
        resultCache,
        prefetch: (runId, paths, params) => data.prefetch(runId, paths, params),
        ...(faults ? { faults } : {}),
        ...(clock ? { clock } : {}),
        ...overrides,
      });
      return tracked(workers, worker);
    },
    createTriggerService(overrides = {}) {
      return new TriggerService({
        store,
        flows: triggerFlows(runtime),
        sources: triggerSources(options.env, store),
        errorLimitBytes: config.errorLimitBytes,
        ...(clock ? { now: () => clock.now() } : {}),
        ...overrides,
      });
    },
    createScheduler(options = {}) {
      const owner = `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
      const scheduler = new SchedulerProcess({
        store,
        owner,
        leaseMs: options.leaseMs ?? Math.min(config.leaseMs, 5000),
        createEngine: () => {
          const engine = new Engine({
            ...engineDefaults(),
            mode: 'dispatch',
            owner,
            // One scheduler drives every run: in-flight attempts are bounded by workers, not here.
            concurrency: 1_000_000,
            leaseMs: options.leaseMs ?? Math.min(config.leaseMs, 5000),
            ...(options.onDiagnostic ? { onDiagnostic: options.onDiagnostic } : {}),
            ...options.engine,
          });
          return tracked(engines, engine);
        },
        ...(options.onDiagnostic ? { onDiagnostic: options.onDiagnostic } : {}),
        onLeadership: (leading) => {
          // Only the leader evaluates triggers, so that a fire time is acted on by one process.
          if (options.triggers !== false) {
            if (leading) {
              const service = runtime.createTriggerService(
                options.onDiagnostic ? { onDiagnostic: options.onDiagnostic } : {},
              );
              triggerService = service;
              // A start that fails (the database away at that moment) is tried again while this
              // process still leads, so that a leader never runs its term without triggers.
              const startTriggers = (): void => {
                service.start().catch((e: unknown) => {
                  options.onDiagnostic?.(`triggers did not start, retrying: ${(e as Error).message}`);
                  void service.stop().then(() => {
                    if (triggerService === service) setTimeout(startTriggers, 2000).unref();
                  });
                });
              };
              startTriggers();
            } else {
              const stopping = triggerService;
              triggerService = undefined;
              void stopping?.stop();
            }
          }
          options.onLeadership?.(leading);
        },
      });
      schedulers.push(scheduler);
      return scheduler;
    },
    async close() {
      await triggerService?.stop();
      for (const s of schedulers) await s.stop();
      for (const w of [...workers]) await w.stop();
      for (const e of [...engines]) await e.stop();
      await data.close();
      await store.close();
    },
  };
  return runtime;
}

export { buildRun, createRun, newRunId } from './runs.js';
export type { StartRunOptions } from './runs.js';

/** The project's flows as the trigger service sees them. */
export function triggerFlows(rt: Runtime): TriggerFlows {
  const toFlow = (loaded: LoadedFlow): TriggerFlow => ({
    name: loaded.spec.name,
    sourcePath: loaded.sourcePath,
    triggers: loaded.spec.triggers ?? [],
    overlap: loaded.spec.overlap ?? 'allow',
    newRun: (params, o) =>
      buildRun(rt.config, loaded, {
        params,
        dedupeKey: o.dedupeKey,
        triggerId: o.triggerId,
        now: o.at,
        ...(o.priority !== undefined ? { priority: o.priority } : {}),
      }),
  });
  return {
    async list() {
      return (await rt.catalog.list()).flatMap((e) => (e.flow && e.flow.spec.triggers?.length ? [toFlow(e.flow)] : []));
    },
    async get(name, sourcePath) {
      try {
        const loaded = sourcePath ? await rt.catalog.load(sourcePath) : await rt.catalog.find(name);
        return loaded.spec.name === name ? toFlow(loaded) : null;
      } catch {
        return null;
      }
    },
  };
}
