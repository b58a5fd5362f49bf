/**
 * Databases for tests on the PostgreSQL server of the machine: each call creates a fresh
 * database with a unique name and the returned function drops it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const PG_ADMIN_URL = process.env.BATON_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let counter = 0;

/**
 * `options` is SQL after `CREATE DATABASE <name>`, for a database unlike the server's
 * default: `TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`.
 */
export async function createTestDatabase(options = ''): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `baton_test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} ${options}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A temp project folder on one of the two stores, for tests that run on both. */
export interface StoreSetup {
  readonly dir: string;
  /** Environment that points Baton at the store (empty for the embedded SQLite file). */
  readonly env: Record<string, string>;
  cleanup(): Promise<void>;
}

/** One factory per store; each creates a fresh folder (and, for PostgreSQL, a fresh database). */
export function storeSetups(prefix: string): Record<string, () => Promise<StoreSetup>> {
  return {
    sqlite: async () => {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      return { dir, env: {}, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
    postgres: async () => {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      const db = await createTestDatabase();
      return {
        dir,
        env: { BATON_DATABASE_URL: db.url },
        cleanup: async () => {
          await db.drop();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}
