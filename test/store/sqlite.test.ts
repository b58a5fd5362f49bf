import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { PORT_CONFORMANCE } from './conformance/index.js';
import type { StoreFactory } from './conformance/index.js';

const dirs = new Map<Store, string>();

const sqlite: StoreFactory = {
  name: 'sqlite',
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'baton-store-'));
    const store = new SqliteStore({ path: join(dir, 'baton.db') });
    dirs.set(store, dir);
    return store;
  },
  async destroy(store) {
    await store.close();
    rmSync(dirs.get(store) as string, { recursive: true, force: true });
  },
  // Another store object on the same file, as another process opens it; better-sqlite3
  // runs each statement to its end, so claimers in one process take turns on the write lock.
  async connect(store) {
    return new SqliteStore({ path: join(dirs.get(store) as string, 'baton.db') });
  },
  async timers(store, runId) {
    const db = new Database(join(dirs.get(store) as string, 'baton.db'), { readonly: true });
    try {
      return db
        .prepare('SELECT task_idx AS task, due_at AS dueAt FROM timers WHERE run_id = ? ORDER BY task_idx')
        .all(runId) as { task: number; dueAt: number }[];
    } finally {
      db.close();
    }
  },
};

for (const conformance of PORT_CONFORMANCE) conformance(sqlite);

describe('sqlite store specifics', () => {
  it('uses WAL and synchronous=FULL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-store-'));
    try {
      const path = join(dir, 'baton.db');
      const store = new SqliteStore({ path });
      const db = new Database(path);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      db.close();
      expect(store.integrityCheck()).toBe('ok');
      void store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a database migrated by a newer Baton', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-store-'));
    try {
      const path = join(dir, 'baton.db');
      void new SqliteStore({ path }).close();
      const db = new Database(path);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('future');
      db.close();
      expect(() => new SqliteStore({ path })).toThrow(/migration 999/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns a held write lock into STORE_BUSY and writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-store-'));
    const path = join(dir, 'baton.db');
    const store = new SqliteStore({ path, busyTimeoutMs: 50 });
    const other = new Database(path);
    try {
      other.exec('BEGIN IMMEDIATE');
      await expect(
        store.createRun({
          id: 'r1',
          flow: { flow: 'f', version: 'v', spec: '{}', sourcePath: '/f', createdAt: 0 },
          params: {},
          taskIds: ['a'],
          createdAt: 0,
        }),
      ).rejects.toMatchObject({ code: 'STORE_BUSY' });
      other.exec('ROLLBACK');
      expect(await store.getRun('r1')).toBeNull();
    } finally {
      other.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
