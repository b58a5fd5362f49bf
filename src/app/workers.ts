/**
 * Executing runs in this process: the loop behind `baton worker` and the public client's
 * `startWorker`. Two kinds, over the same store:
 * - `runs`: claims queued runs (and runs whose owner died) and drives each whole, timers
 *   and all; what `baton worker` does on SQLite and `baton dev` does. Any store.
 * - `tasks`: executes the attempts that schedulers put on the task queue, taking only those
 *   whose labels it has; what `baton worker` does on PostgreSQL. PostgreSQL only.
 */
import { BatonError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import type { Runtime } from './runtime.js';

export type WorkerMode = 'runs' | 'tasks';

export interface StartWorkerOptions {
  readonly mode: WorkerMode;
  /** Attempt bodies at once; default the configuration's `concurrency`. */
  readonly concurrency?: number;
  /** With mode `tasks`: take only attempts whose labels are all among these. */
  readonly labels?: readonly string[];
  readonly onDiagnostic?: (message: string) => void;
}

/** A running worker. `drain` and `stop` may be called any number of times; the first decides. */
export interface RunningWorker {
  /** Its owner name in the store. */
  readonly id: string;
  readonly mode: WorkerMode;
  /** With mode `runs`: its engine, to be told of new runs sooner than its next poll. */
  readonly engine?: Engine;
  /** Takes nothing new, lets running attempts finish and be stored, then releases what it holds. */
  drain(): Promise<void>;
  /** Stops at once: running attempts are aborted, their runs and claims released. */
  stop(): Promise<void>;
}

/**
 * Starts a worker and returns at once. USAGE for mode `tasks` on SQLite (one process drives
 * whole runs there) and for labels with mode `runs` (labels select queued attempts).
 */
export function startWorker(rt: Runtime, options: StartWorkerOptions): RunningWorker {
  const labels = [...(options.labels ?? [])];
  const diagnostic = options.onDiagnostic ? { onDiagnostic: options.onDiagnostic } : {};
  const concurrency = options.concurrency !== undefined ? { concurrency: options.concurrency } : {};
  if (options.mode === 'tasks') {
    if (rt.store.dialect !== 'postgres') {
      throw new BatonError('USAGE', 'a worker that takes queued tasks (by labels) needs a PostgreSQL store', {
        hint: 'On the embedded store one process runs every task: start a worker of whole runs, without labels.',
      });
    }
    const worker = rt.createWorker({ labels, ...concurrency, ...diagnostic });
    worker.start();
    return once({ id: worker.owner, mode: 'tasks', drain: () => worker.drain(), stop: () => worker.stop() });
  }
  if (labels.length > 0) {
    throw new BatonError('USAGE', 'labels select queued tasks; a worker of whole runs takes none', {
      hint: 'Drop the labels, or run the worker in mode `tasks` beside `baton scheduler` processes on PostgreSQL.',
    });
  }
  const engine = rt.createEngine({ ...concurrency, ...diagnostic });
  engine.startWorker();
  return once({ id: engine.owner, mode: 'runs', engine, drain: () => engine.drain(), stop: () => engine.stop() });
}

/** The first of `drain` and `stop` decides; later calls wait for it. */
function once(worker: RunningWorker): RunningWorker {
  let ending: Promise<void> | undefined;
  return {
    ...worker,
    drain: () => (ending ??= worker.drain()),
    stop: () => (ending ??= worker.stop()),
  };
}
