/**
 * A postgres mount on a fresh database of the test server, with a password in its URL
 * (trust auth ignores it) so that tests can check that it never shows.
 */
import { Readable } from 'node:stream';
import pg from 'pg';
import type { DataMount } from '../../src/data/mount.js';
import { openPostgresMount } from '../../src/data/postgres-mount.js';
import { createTestDatabase } from '../store/pg-helpers.js';
export { rejection } from '../helpers/thrown.js';

export const PASSWORD = 'Pw-9f3KqZ7x';

export interface TestMount {
  readonly mount: DataMount;
  /** The mount's URL, password included. */
  readonly url: string;
  /** Runs SQL on the database directly, as a user of it would. */
  sql<T extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<T[]>;
  cleanup(): Promise<void>;
}

export async function openTestMount(queries?: Record<string, string>): Promise<TestMount> {
  const db = await createTestDatabase();
  const parsed = new URL(db.url);
  parsed.password = PASSWORD;
  const url = parsed.toString();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const mount = await openPostgresMount(
    'warehouse',
    { kind: 'postgres', url_env: 'WAREHOUSE_URL', ...(queries ? { queries } : {}) },
    { root: process.cwd(), env: { WAREHOUSE_URL: url } },
  );
  return {
    mount,
    url,
    sql: async (text, values) => (await client.query(text, values)).rows,
    async cleanup() {
      await mount.close();
      await client.end();
      await db.drop();
    },
  };
}

/** The whole body of a read, as text. */
export async function readText(mount: DataMount, key: string): Promise<string> {
  const { body } = await mount.read(key);
  let text = '';
  for await (const chunk of body) text += String(chunk);
  return text;
}

/** The BatonError a call rejects with. */

/** A body that arrives in pieces of `size` bytes, cutting lines and characters. */
export function piecewise(text: string, size: number): Readable {
  const bytes = Buffer.from(text);
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  return Readable.from(pieces);
}
