/**
 * Read models of a run shared by the CLI (`baton show`) and the server: the run with its
 * task runs, children and materializations, one task run with its attempts.
 */
import { BatonError } from '../core/errors.js';
import type { RunState } from '../core/run-machine.js';
import type { RunMaterialization } from '../store/ports/assets.js';
import type { RunRecord, TaskRunRecord } from '../store/store.js';
import { loadRunState } from './run-state.js';
import type { Runtime } from './runtime.js';

/** Child runs listed by `show`, at most this many. */
const CHILDREN_SHOWN = 1000;
/** Materializations listed by `show`, at most this many. */
const ASSETS_SHOWN = 100;

/** What `show` prints of a run: its record, task runs, folded state (when it can be had) and child runs. */
export interface ShowData {
  readonly run: RunRecord;
  readonly tasks: readonly TaskRunRecord[];
  readonly state: RunState | null;
  readonly children: readonly RunRecord[];
  /** What the run materialized, at most ASSETS_SHOWN, with its check results. */
  readonly assets: readonly RunMaterialization[];
  /** More than ASSETS_SHOWN were materialized. */
  readonly moreAssets: boolean;
}

/**
 * A run as `baton show` and the server's run detail see it: record, task runs, folded
 * state (null when its history cannot be folded: `notice` says why), child runs and what
 * it materialized. RUN_NOT_FOUND for an unknown id.
 */
export async function loadRunView(
  rt: Runtime,
  runId: string,
  notice: (message: string) => void = () => {},
): Promise<ShowData> {
  const run = await rt.store.getRun(runId);
  if (!run) throw new BatonError('RUN_NOT_FOUND', `no run with id ${runId}`, { hint: 'List runs with `baton runs`.' });
  const tasks = await rt.store.getTaskRuns(runId);
  let state: RunState | null = null;
  try {
    state = (await loadRunState(rt, runId)).state;
  } catch (error) {
    // The rows alone still make a listing; only waits and the summaries of maps and groups need the history.
    notice(`baton: cannot fold the history of run ${runId} (${(error as Error).message}); listing its rows as stored`);
  }
  // Listed in the order they were started. Children created in the same millisecond (the
  // items of a map) tie on time; their parent tasks (`per_region[2]` before `per_region[10]`)
  // then give the order, since run ids are random.
  const children = (await rt.store.listRuns({ parentRunId: runId, limit: CHILDREN_SHOWN })).sort(
    (a, b) => a.createdAt - b.createdAt || naturalOrder(a.parentTask ?? '', b.parentTask ?? ''),
  );
  const assets = await rt.assets.ofRun(runId, { limit: ASSETS_SHOWN + 1 });
  return {
    run,
    tasks,
    state,
    children,
    assets: assets.slice(0, ASSETS_SHOWN),
    moreAssets: assets.length > ASSETS_SHOWN,
  };
}

const naturalCollator = new Intl.Collator('en', { numeric: true });

/** `a[2]` before `a[10]`. */
function naturalOrder(a: string, b: string): number {
  return naturalCollator.compare(a, b);
}
