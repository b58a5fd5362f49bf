/**
 * Payloads: task outputs stored by reference (core/payload-ref.ts) as JSON objects of the
 * data namespace, one per attempt, under `<prefix>/<run id>/<task run id>.<attempt>.json`.
 * A payload is written before the attempt's outcome is reported (atomically, like every
 * write), so that a recorded reference always names a whole payload; it is read back and
 * checked against its SHA-256 before a downstream body sees it. The payloads of a run go
 * when the run is pruned (`prunePayloads`).
 */
import { createHash } from 'node:crypto';
import { BatonError } from '../core/errors.js';
import { formatDataPath, type DataPath } from '../core/data-path.js';
import { PAYLOAD_KEY, type PayloadOwner, type PayloadRef, type PayloadStore } from '../core/payload-ref.js';
import type { DataNamespace } from './namespace.js';

/** A payload store under `prefix` (a folder of the namespace). */
export function namespacePayloads(namespace: DataNamespace, prefix: DataPath): PayloadStore {
  const folder = formatDataPath(prefix).replace(/\/$/, '');
  return {
    async store(owner: PayloadOwner, json: string): Promise<PayloadRef> {
      // A task run id holds no `/` today; one never splits the key into folders.
      const name = `${owner.taskId.replace(/\//g, '~')}.${owner.attempt}.json`;
      const path = `${folder}/${owner.runId}/${name}`;
      const written = await namespace.write(path, json, {
        contentType: 'application/json',
        actor: { runId: owner.runId, taskId: owner.taskId, attempt: owner.attempt },
      });
      return { [PAYLOAD_KEY]: { path, bytes: written.size, sha256: written.sha256 } };
    },
    async load(ref: PayloadRef): Promise<unknown> {
      const { path, sha256 } = ref[PAYLOAD_KEY];
      let bytes: Buffer;
      try {
        bytes = await namespace.readBytes(path);
      } catch (error) {
        if (error instanceof BatonError && error.code === 'DATA_NOT_FOUND') {
          throw new BatonError('DATA_NOT_FOUND', `the output stored by reference at ${path} is gone`, {
            hint: 'It was removed (by `baton db prune` or by hand): rerun the task that produced it (`baton retry <run> --task <task>`).',
          });
        }
        throw error;
      }
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== sha256) {
        throw new BatonError('DATA_IO', `the output stored by reference at ${path} changed since it was written`, {
          hint: 'Payloads are written once by their task; rerun the task that produced it.',
        });
      }
      return JSON.parse(bytes.toString('utf8')) as unknown;
    },
  };
}

/**
 * Removes the payloads of runs that no longer exist (pruned): each run's folder under
 * `prefix` whose run `exists` denies. Returns how many objects went.
 */
export async function prunePayloads(
  namespace: DataNamespace,
  prefix: DataPath,
  exists: (runId: string) => Promise<boolean>,
): Promise<number> {
  const folder = formatDataPath(prefix).replace(/\/$/, '');
  let removed = 0;
  for (const entry of await namespace.list(folder, { limit: 1_000_000 })) {
    if (!entry.folder) continue;
    const runId = entry.key.slice(entry.key.lastIndexOf('/') + 1);
    if (await exists(runId)) continue;
    for (const object of await namespace.list(`${folder}/${runId}`, { recursive: true, limit: 1_000_000 })) {
      if (!object.folder && (await namespace.remove(`data://${prefix.mount}/${object.key}`))) removed++;
    }
  }
  return removed;
}
