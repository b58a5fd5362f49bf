/**
 * `sql` tasks: SQL over the data namespace, run by DuckDB in the worker (or by the
 * PostgreSQL database of a mount), its result written to a file, a table or the task
 * output (src/data/sql-task.ts). DuckDB is loaded on the first sql attempt, so that
 * workers that never run one never load it.
 */
import type { ParsedSqlTask } from '../../define/sql-schema.js';
import { renderValue } from '../../define/expression.js';
import { loadDuckDb, type DuckDbModule } from '../../data/duckdb.js';
import { runSqlAttempt } from '../../data/sql-task.js';
import type { AttemptRequest, TaskExecutor } from '../executor.js';
import { AttemptAbort } from '../executor.js';

/** A sql executor; `importer` stands in for the import of DuckDB in tests. */
export function createSqlExecutor(importer?: () => Promise<DuckDbModule>): TaskExecutor {
  return {
    kind: 'sql',
    async execute(request: AttemptRequest): Promise<unknown> {
      const { task, context } = request;
      const config = task.config as unknown as ParsedSqlTask;
      const params = (config.params ? renderValue(config.params, request.templateScope) : {}) as Record<
        string,
        unknown
      >;
      const controller = request.controller;
      const reasonNow = () => (controller ? controller.reason : context.signal.reason);
      const isAborted = () => (controller ? controller.aborted : context.signal.aborted);
      if (isAborted()) throw abortReason(reasonNow());
      const duckdb = await loadDuckDb(importer);
      try {
        return await runSqlAttempt(duckdb, {
          taskId: task.id,
          config,
          params,
          data: context.data,
          upstream: context.upstream,
          onAbort: (stop) => {
            if (controller) return controller.onAbort(stop);
            context.signal.addEventListener('abort', stop, { once: true });
            return () => context.signal.removeEventListener('abort', stop);
          },
        });
      } catch (error) {
        // An interrupted query fails with DuckDB's "Interrupted"; the attempt ends for its abort's reason.
        if (isAborted()) throw abortReason(reasonNow());
        throw error;
      }
    },
  };
}

function abortReason(reason: unknown): AttemptAbort {
  return reason instanceof AttemptAbort ? reason : new AttemptAbort('cancelled', 'cancelled');
}

export const sqlExecutor: TaskExecutor = createSqlExecutor();
