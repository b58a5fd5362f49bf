/**
 * A sql task run through its executor on a real namespace: a local mount `raw` (and
 * `curated`) in a temp folder, and a postgres mount `warehouse` on a fresh database.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { FlowSpec } from '../../src/core/model.js';
import type { Problem } from '../../src/core/errors.js';
import { DataNamespace } from '../../src/data/namespace.js';
import { taskDataProvider } from '../../src/data/task-data.js';
import { parseFlowText } from '../../src/define/load-yaml.js';
import type { DuckDbModule } from '../../src/data/duckdb.js';
import { AttemptAbort } from '../../src/engine/executor.js';
import { createSqlExecutor } from '../../src/engine/executors/sql.js';
import { createTestDatabase } from '../store/pg-helpers.js';

export const KINDS = ['function', 'shell', 'sql'];

export interface SqlBench {
  readonly root: string;
  readonly namespace: DataNamespace;
  /** SQL on the warehouse database, as its users run it. */
  sql<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  /** Loads a one-task flow (the task's YAML under `tasks.t`), and returns its spec or its problems. */
  load(taskYaml: string): { spec?: FlowSpec; problems: readonly Problem[] };
  /**
   * Runs task `t` of the flow; `abortAfterMs` aborts the attempt after that long.
   */
  run(
    taskYaml: string,
    options?: {
      params?: Record<string, unknown>;
      upstream?: Record<string, unknown>;
      abortAfterMs?: number;
      load?: () => Promise<DuckDbModule>;
    },
  ): Promise<unknown>;
  close(): Promise<void>;
}

export async function openSqlBench(): Promise<SqlBench> {
  const root = mkdtempSync(join(tmpdir(), 'baton-sql-'));
  mkdirSync(join(root, 'lake', 'raw'), { recursive: true });
  mkdirSync(join(root, 'lake', 'curated'), { recursive: true });
  const db = await createTestDatabase();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const namespace = new DataNamespace({
    mounts: {
      raw: { kind: 'local', path: 'lake/raw' },
      curated: { kind: 'local', path: 'lake/curated' },
      warehouse: { kind: 'postgres', url_env: 'WAREHOUSE_URL' },
    },
    context: { root, env: { WAREHOUSE_URL: db.url } },
  });
  const provider = taskDataProvider(namespace);
  const load = (taskYaml: string) => {
    const indented = taskYaml
      .trim()
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n');
    const text = `name: sqlflow\nparams:\n  day: { type: string, default: "2024-01-01" }\n  who: { type: string, default: "" }\ntasks:\n  up: { kind: shell, command: [echo] }\n  t:\n${indented}\n`;
    return parseFlowText(text, { file: join(root, 'flow.yaml'), kinds: KINDS });
  };
  return {
    root,
    namespace,
    sql: async (text, values) => (await client.query(text, values)).rows,
    load,
    async run(taskYaml, options = {}) {
      const loaded = load(taskYaml);
      if (!loaded.spec) throw new Error(loaded.problems.map((p) => p.message).join('\n'));
      const task = loaded.spec.tasks.find((t) => t.id === 't');
      if (!task) throw new Error('no task t');
      const controller = new AbortController();
      const timer =
        options.abortAfterMs === undefined
          ? undefined
          : setTimeout(() => controller.abort(new AttemptAbort('cancelled', 'cancelled')), options.abortAfterMs);
      const params = { day: '2024-01-01', who: '', ...options.params };
      const upstream = options.upstream ?? {};
      const executor = createSqlExecutor(options.load);
      try {
        return await executor.execute({
          task,
          context: {
            runId: 'r1',
            flow: 'sqlflow',
            taskId: 't',
            attempt: 1,
            idempotencyKey: 'r1/t/0',
            params,
            inputs: {},
            upstream,
            signal: controller.signal,
            log: { info: () => undefined, warn: () => undefined, error: () => undefined },
            data: provider({ runId: 'r1', taskId: 't', attempt: 1 }),
          },
          flowDir: root,
          resolveFunction: () => undefined,
          writeLog: () => undefined,
          killGraceMs: 1000,
          templateScope: { params, tasks: {} },
        });
      } finally {
        if (timer) clearTimeout(timer);
      }
    },
    async close() {
      await namespace.close();
      await client.end();
      await db.drop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
