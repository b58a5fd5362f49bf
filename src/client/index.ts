/**
 * Baton's public client: open a project's store from a program, start runs and await
 * their results, follow their events, answer what they wait for, and execute them in
 * process. This module loads nothing heavy: the store drivers load when `openClient` runs.
 *
 * @example
 * import { openClient } from 'baton-orchestrator';
 * const baton = await openClient({ database: 'baton.db', flows: [orders] });
 * const worker = baton.startWorker();
 * const run = await baton.start(orders, { order: 'o-1' });
 * console.log(await run.result());
 * await baton.close();
 */
import type { BatonClient } from './client.js';
import type { ClientOptions } from './types.js';

export type { BatonClient } from './client.js';
export type { RunHandle } from './run-handle.js';
export type * from './types.js';

/**
 * Opens a client on a store: `database` (a SQLite file or a `postgres://` URL) and/or
 * `project` (a folder with baton.yaml or flows/). Migrates the store if it is new. Throws
 * USAGE without either, DATABASE_URL_INVALID for a malformed URL, CONFIG_INVALID for a bad
 * baton.yaml, NO_PROJECT for a project folder that is none, STORE_* when the store cannot
 * be opened.
 */
export async function openClient(options: ClientOptions): Promise<BatonClient> {
  const { createClient } = await import('./client.js');
  return createClient(options);
}
