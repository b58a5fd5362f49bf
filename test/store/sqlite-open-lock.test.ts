/**
 * Opening an SQLite store while another process holds the file's write lock, as when a
 * `baton worker` and a command start together on a new file and one of them creates the
 * tables: the other waits for the lock longer than an ordinary write would (on a busy
 * machine that takes a while), instead of exiting with STORE_BUSY.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Longer than the store's ordinary wait for a lock (busyTimeoutMs, 5000 by default). */
const HOLD_MS = 6500;

it('waits for another process that holds the write lock of a new file past the ordinary busy timeout', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-sqlite-open-'));
  dirs.push(dir);
  const path = join(dir, 'baton.db');
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  // Another process takes the lock first and keeps it, as one migrating the new file would.
  const holder = spawn(
    process.execPath,
    [
      '-e',
      `const D = require(${JSON.stringify(driver)});
       const db = new D(${JSON.stringify(path)});
       db.pragma('journal_mode = WAL');
       db.exec('BEGIN EXCLUSIVE');
       db.exec('CREATE TABLE other_process (x)');
       process.stdout.write('locked\\n');
       setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${HOLD_MS});`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the lock holder did not start in 30 s')), 30_000);
      holder.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('locked')) {
          clearTimeout(timer);
          resolve();
        }
      });
      holder.on('exit', (code) => reject(new Error(`the lock holder exited early (code ${code})`)));
    });
    const began = Date.now();
    const store = new SqliteStore({ path });
    try {
      // It waited for the lock, then created its tables beside the other process's.
      expect(Date.now() - began).toBeGreaterThan(1000);
      expect(await store.listRuns({ limit: 1 })).toEqual([]);
      expect(store.integrityCheck()).toBe('ok');
    } finally {
      await store.close();
    }
  } finally {
    holder.kill('SIGKILL');
  }
}, 60_000);
