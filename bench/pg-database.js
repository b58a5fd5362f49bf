// A fresh PostgreSQL database for one benchmark, on the server named by BATON_BENCH_PG_URL,
// dropped after it whatever happens.
import pg from 'pg';

export const adminUrl = process.env.BATON_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Creates a database named `<prefix>_<pid>_<time>`, calls `fn(url, name)`, then drops it.
 * `beforeDrop(admin, name)` runs on an admin connection first (to read the database's
 * statistics while it still exists).
 */
export async function withBenchDatabase(prefix, fn, beforeDrop) {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString(), name);
  } finally {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      await beforeDrop?.(c, name);
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  }
}
