/**
 * The result cache of a project (engine/result-cache.ts) over its store and namespace. An
 * attempt's key is the SHA-256 of everything its output may depend on: the pinned flow
 * version (whose hash covers the definition and the code), the task's normalized spec, its
 * rendered inputs, the params, the upstream outputs, what its templates read, and the
 * current versions of the data it declares it reads: the latest version of each asset in
 * `consumes`, and the ETag of each data path in a SQL task's `inputs` and in the flow's
 * `prefetch`. Data whose version cannot be read now (a path that cannot be stat'ed, an
 * object without an ETag, a database query or table) makes the attempt uncacheable: the
 * body runs, and nothing is recorded.
 */
import { createHash } from 'node:crypto';
import { renderValue } from '../define/expression.js';
import type { CacheAttempt, CachedResult, ResultCache } from '../engine/result-cache.js';
import type { Store } from '../store/store.js';
import type { DataNamespace } from './namespace.js';

/** The store methods the result cache uses. */
export type ResultCacheStore = Pick<Store, 'recordResultCache' | 'resultCache' | 'getAsset'>;

/** The version of the key's layout: raised when what goes into a key changes, so that old entries miss. */
const KEY_LAYOUT = 1;

export class ProjectResultCache implements ResultCache {
  constructor(
    private readonly store: ResultCacheStore,
    private readonly namespace: Pick<DataNamespace, 'stat'>,
    private readonly now: () => number = Date.now,
  ) {}

  async key(attempt: CacheAttempt): Promise<string | null> {
    if (attempt.version === undefined) return null;
    const paths = dataPathsRead(attempt);
    if (paths === null) return null;
    const etags: [string, string][] = [];
    for (const path of [...new Set(paths)].sort()) {
      const info = await this.namespace.stat(path);
      if (!info || info.etag === null || info.etag === undefined) return null;
      etags.push([path, info.etag]);
    }
    const assets: [string, string | null][] = [];
    for (const key of [...new Set(attempt.task.consumes ?? [])].sort()) {
      assets.push([key, (await this.store.getAsset(key))?.latestVersion ?? null]);
    }
    const scope = attempt.scopeTasks
      ? Object.fromEntries(Object.entries(attempt.scopeTasks).map(([id, t]) => [id, t.output ?? null]))
      : null;
    const content = canonicalJson({
      layout: KEY_LAYOUT,
      flow: attempt.flow,
      version: attempt.version,
      task: attempt.task,
      inputs: attempt.inputs,
      params: attempt.params,
      upstream: attempt.upstream,
      scope,
      item: attempt.extras?.map ?? null,
      error: attempt.extras?.error ?? null,
      assets,
      etags,
    });
    return createHash('sha256').update(content).digest('hex');
  }

  async lookup(key: string, flow: string, taskId: string): Promise<CachedResult | null> {
    const entry = await this.store.resultCache(key);
    if (!entry || entry.flow !== flow || entry.taskId !== taskId) return null;
    return { output: entry.output, cachedFrom: `${entry.runId}/${entry.taskRunId}/${entry.attempt}` };
  }

  async record(
    key: string,
    attempt: { flow: string; taskId: string; runId: string; taskRunId: string; attempt: number },
    output: unknown,
  ): Promise<void> {
    await this.store.recordResultCache({ key, ...attempt, output, at: this.now() });
  }
}

/**
 * The data paths an attempt declares it reads: a SQL task's file inputs and the flow's
 * prefetch paths (rendered over params). Null when it reads data that has no version to
 * compare: a SQL input that is a database query or table, or a SQL task run on PostgreSQL.
 */
function dataPathsRead(attempt: CacheAttempt): string[] | null {
  const paths = attempt.prefetch.map((template) => String(renderValue(template, { params: attempt.params })));
  if (attempt.task.kind !== 'sql') return paths;
  const config = attempt.task.config;
  if (config.engine === 'postgres') return null;
  const inputs = (config.inputs ?? {}) as Readonly<Record<string, unknown>>;
  for (const input of Object.values(inputs)) {
    if (typeof input === 'string') paths.push(input);
    // An upstream task's rows are in the upstream outputs already.
    else if (!(typeof input === 'object' && input !== null && 'task' in input)) return null;
  }
  return paths;
}

/**
 * JSON with object keys sorted, so that the same values make the same text whatever order
 * their keys were written in (params come from a command line, a trigger, an API call).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sorted(value));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = sorted((value as Record<string, unknown>)[key]);
  return out;
}
