/**
 * DuckDB, the engine of `sql` tasks, is an optional peer dependency (`@duckdb/node-api`):
 * a project without sql tasks never downloads its binary. A flow with a sql task is
 * refused when it is loaded if the package is missing, with the exact `npm install` line,
 * rather than failing when the task first runs.
 */
import type { FlowSpec, TaskSpec } from '../core/model.js';
import { BatonError, type Problem } from '../core/errors.js';
import { canImport, installLine, type PackageProbe } from '../triggers/source-clients.js';

export const DUCKDB_PACKAGE = '@duckdb/node-api';

/** The module, as `import()` gives it. */
export type DuckDbModule = typeof import('@duckdb/node-api');

let loading: Promise<DuckDbModule> | undefined;

/**
 * Imports DuckDB (once, through `importer` when given: tests stand in a failing one);
 * DEP_MISSING when it is not installed.
 */
export function loadDuckDb(importer?: () => Promise<DuckDbModule>): Promise<DuckDbModule> {
  const load = (importer ?? (() => import('@duckdb/node-api')))().catch((error: unknown) => {
    if (!importer) loading = undefined;
    throw new BatonError('DEP_MISSING', `sql tasks need the npm package ${DUCKDB_PACKAGE}, which cannot be loaded`, {
      hint: `Run \`${installLine(DUCKDB_PACKAGE)}\` in the project.`,
      cause: error,
    });
  });
  if (importer) return load;
  loading ??= load;
  return loading;
}

/** Every task of a spec, those of maps over groups included. */
function everyTask(tasks: readonly TaskSpec[]): TaskSpec[] {
  return tasks.flatMap((t) => [t, ...everyTask(t.map?.template.filter((inner) => inner !== t) ?? [])]);
}

/** One problem for the first sql task of `spec` when DuckDB is not installed. */
export function missingSqlEngineProblems(spec: FlowSpec, file: string, probe: PackageProbe = canImport): Problem[] {
  const task = everyTask(spec.tasks).find((t) => t.kind === 'sql');
  if (!task || probe(DUCKDB_PACKAGE)) return [];
  return [
    {
      code: 'DEP_MISSING',
      message: `task ${task.id} (kind sql) needs the npm package ${DUCKDB_PACKAGE}, which is not installed`,
      hint: `Run \`${installLine(DUCKDB_PACKAGE)}\` in the project, then validate again.`,
      location: { file, path: `tasks.${task.id}` },
    },
  ];
}
