/**
 * The result cache as the attempt runner sees it (`cache: inputs`): before a body runs, the
 * output of an earlier success that read exactly the same is looked up by a key; after a
 * body succeeds, its output is recorded under that key. The key is made by the data layer
 * (data/result-cache-key.ts), which knows the versions of what a task reads.
 */
import type { TaskSpec } from '../core/model.js';
export { CACHEABLE_KINDS } from '../core/model.js';
import type { TaskRunExtras } from './run-scope.js';
import type { TaskScope } from './attempt-runner.js';

/** What an attempt reads, as far as its key is concerned. */
export interface CacheAttempt {
  readonly flow: string;
  /** The pinned flow version (its hash covers the definition and its code); undefined: no caching. */
  readonly version: string | undefined;
  readonly task: TaskSpec;
  readonly params: Readonly<Record<string, unknown>>;
  /** Rendered `with`. */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** Upstream outputs, read back when stored by reference. */
  readonly upstream: Readonly<Record<string, unknown>>;
  /** What templates read as `tasks.<id>` (outputs read back), when it is more than the upstream. */
  readonly scopeTasks: Readonly<Record<string, TaskScope>> | undefined;
  readonly extras: TaskRunExtras | undefined;
  /** The flow's `prefetch` paths (templates over params): data the run declares it reads. */
  readonly prefetch: readonly string[];
}

/** An earlier success found by key. */
export interface CachedResult {
  readonly output: unknown;
  /** `<run>/<task run>/<attempt>` of the success. */
  readonly cachedFrom: string;
}

export interface ResultCache {
  /** The key of an attempt, or null when something it reads has no version that can be read now. */
  key(attempt: CacheAttempt): Promise<string | null>;
  /** The success recorded with this key by the same flow and task, if any. */
  lookup(key: string, flow: string, taskId: string): Promise<CachedResult | null>;
  /** Records a success under its key. */
  record(
    key: string,
    attempt: { flow: string; taskId: string; runId: string; taskRunId: string; attempt: number },
    output: unknown,
  ): Promise<void>;
}
