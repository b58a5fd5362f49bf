/**
 * Eager starts through the public client: on the embedded store, with a worker of whole
 * runs in the process, `start` hands the run to that worker, which creates it and records
 * its start in one commit (no separate creation, no claim); a worker without room leaves
 * the run queued, and claims it once it has room again. On PostgreSQL runs are created
 * queued.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defineFlow, openClient } from '../../src/index.js';
import type { BatonClient } from '../../src/index.js';
import { PostgresStore } from '../../src/store/postgres/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { CommitEntry } from '../../src/store/store.js';
import { createTestDatabase } from '../store/pg-helpers.js';

let release: () => void = () => undefined;
let gate = Promise.resolve();
const held = defineFlow({ name: 'eager_held' });
held.task('wait_for_gate', async () => {
  await gate;
  return 'passed';
});
const quick = defineFlow({ name: 'eager_quick' });
quick.task('only', async () => 42);

const WAIT = { timeoutMs: 30_000 };

type Setup = { database: string; store: typeof SqliteStore | typeof PostgresStore; cleanup: () => Promise<void> };
const stores: Record<string, () => Promise<Setup>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-eager-'));
    return {
      database: join(dir, 'baton.db'),
      store: SqliteStore,
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  postgres: async () => {
    const db = await createTestDatabase();
    return { database: db.url, store: PostgresStore, cleanup: db.drop };
  },
};

for (const [storeName, makeStore] of Object.entries(stores)) {
  describe(`eager starts on ${storeName}`, () => {
    let setup: Setup;
    let baton: BatonClient;

    beforeEach(async () => {
      setup = await makeStore();
      baton = await openClient({ database: setup.database, flows: [held, quick] });
    });

    afterEach(async () => {
      release();
      vi.restoreAllMocks();
      await baton.close();
      await setup.cleanup();
    });

    it.runIf(storeName === 'postgres')('a worker of this client leaves the run queued, and claims it', async () => {
      baton.startWorker();
      const creates = vi.spyOn(setup.store.prototype, 'createRun');
      const run = await baton.start(quick);
      expect(await run.result(WAIT)).toEqual({ only: 42 });
      expect(creates).toHaveBeenCalledTimes(1);
    });

    it.runIf(storeName === 'sqlite')('a worker of this client creates and starts the run in one commit', async () => {
      baton.startWorker();
      const proto = setup.store.prototype;
      const creates = vi.spyOn(proto, 'createRun');
      const claims = vi.spyOn(proto, 'claimRun');
      const commits = vi.spyOn(proto, 'commit');
      const run = await baton.start(quick);
      expect(run.created).toBe(true);
      expect(await run.result(WAIT)).toEqual({ only: 42 });
      expect(creates).not.toHaveBeenCalled();
      expect(claims).not.toHaveBeenCalled();
      const creating = commits.mock.calls
        .flatMap(([entries]) => entries as readonly CommitEntry[])
        .filter((e) => e.create?.run.id === run.id);
      expect(creating).toHaveLength(1);
      expect(creating[0]?.events.map((e) => e.type)).toEqual(['run_started', 'tasks_queued', 'task_started']);
      const events: string[] = [];
      for await (const record of baton.watch(run.id)) events.push(record.event.type);
      expect(events.slice(0, 4)).toEqual(['run_created', 'run_started', 'tasks_queued', 'task_started']);
      expect(events.at(-1)).toBe('run_succeeded');
    });

    it.runIf(storeName === 'sqlite')(
      'a worker without room leaves the run queued, and claims it once it has room',
      async () => {
        gate = new Promise<void>((resolve) => (release = resolve));
        // Room for max(64, 4 × concurrency) runs: the 65th and later are queued.
        baton.startWorker({ concurrency: 1 });
        const creates = vi.spyOn(setup.store.prototype, 'createRun');
        const runs = [];
        for (let i = 0; i < 66; i++) runs.push(await baton.start(held));
        expect(creates).toHaveBeenCalledTimes(2);
        expect(new Set(runs.map((r) => r.id)).size).toBe(66);
        release();
        const results = await Promise.all(runs.map((r) => r.result(WAIT)));
        expect(results.every((r) => r.wait_for_gate === 'passed')).toBe(true);
      },
      60_000,
    );
  });
}
