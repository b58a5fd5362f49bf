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
import { BatonError } from '../core/errors.js';
import type { BatonClient } from './client.js';
import type { BatonRemoteClient } from './remote-client.js';
import type { ClientOptions } from './types.js';

export type { BatonClient } from './client.js';
export type { BatonRemoteClient } from './remote-client.js';
export type { RunHandle } from './run-handle.js';
export type * from './types.js';

/** The options of a client on a server: `url`, without a store. */
export type RemoteClientOptions = Pick<ClientOptions, 'url' | 'headers'> & { readonly url: string };

/**
 * Opens a client on a store: `database` (a SQLite file or a `postgres://` URL) and/or
 * `project` (a folder with baton.yaml or flows/). Migrates the store if it is new. Throws
 * USAGE without either, DATABASE_URL_INVALID for a malformed URL, CONFIG_INVALID for a bad
 * baton.yaml, NO_PROJECT for a project folder that is none, STORE_* when the store cannot
 * be opened.
 *
 * With `url` instead, opens a client on a Baton server (`baton server`, `baton dev`) over
 * its HTTP API: the same methods, answers and error codes, save those that need this
 * process (`register`, `startWorker`: USAGE). SERVER_UNREACHABLE when the server does not
 * answer; USAGE when `url` comes with `database`, `project` or `flows`.
 */
export async function openClient(options: RemoteClientOptions): Promise<BatonRemoteClient>;
export async function openClient(options: ClientOptions): Promise<BatonClient>;
export async function openClient(options: ClientOptions): Promise<BatonClient | BatonRemoteClient> {
  if (options.url !== undefined) {
    const local = (['database', 'project', 'flows', 'env', 'concurrency'] as const).filter(
      (k) => options[k] !== undefined,
    );
    if (local.length > 0) {
      throw new BatonError('USAGE', `openClient takes url or a store, not both: ${local.join(', ')} given with url`, {
        hint: "Pass { url: 'http://127.0.0.1:8420' } alone to talk to a server, or { database } / { project } to open a store.",
      });
    }
    const { createRemoteClient } = await import('./remote-client.js');
    return createRemoteClient(options.url, options.headers);
  }
  const { createClient } = await import('./client.js');
  return createClient(options);
}
