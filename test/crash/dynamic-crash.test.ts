/**
 * Dynamic flows survive `kill -9` like static ones. One run of a flow with a 100-item map
 * (retries included), a durable sleep, a wait for an event, a subflow, a failure handler
 * that recovers, and a finally task is driven by real `baton resume` processes that are
 * SIGKILLed after seeded random delays; the event is sent with `baton signal` whenever the
 * run waits for it, whichever process holds the run. A last resume finishes the run.
 *
 * Then the database, the journal of every body that ran (committed or not) and `baton show
 * --json` must agree: the run succeeded with the output of a run without kills, no map
 * item ran after its committed success, the subflow made one child run and it is linked,
 * the handler recovered the failed task, the finally task ran, and on SQLite the database
 * file is intact. Runs on both stores.
 *
 * `CRASH_SEED=<n>` reproduces a failure (every failure message names the seed).
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../core/fixtures.js';
import { storeSetups } from '../store/pg-helpers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin', 'baton.js');
const ITEMS = 100;
const MIN_KILLS = 24;
const MAX_KILLS = 45;
const BUDGET_MS = 90_000;

const FLOW = `
name: dyn_crash
tasks:
  list:
    kind: function
    module: ./dynamic-tasks.mjs
    export: list
    with: { items: ${ITEMS} }
  each:
    depends_on: [list]
    map: { over: "\${{ tasks.list.output }}", max_parallel: 4 }
    kind: function
    module: ./dynamic-tasks.mjs
    export: item
    retry: { max_attempts: 3, backoff: 20ms, max_backoff: 50ms }
  nap:
    depends_on: [each]
    sleep: 300ms
  go:
    depends_on: [nap]
    wait_for_event: { event: go }
  child:
    depends_on: [go]
    subflow: { flow: dyn_child, params: { n: "\${{ tasks.go.output.n }}" } }
  risky:
    depends_on: [child]
    kind: function
    module: ./dynamic-tasks.mjs
    export: boom
    on_failure:
      kind: function
      module: ./dynamic-tasks.mjs
      export: fix
      recover: true
  total:
    depends_on: [risky]
    kind: function
    module: ./dynamic-tasks.mjs
    export: total
    with: { values: "\${{ tasks.each.output }}" }
  cleanup:
    finally: true
    kind: function
    module: ./dynamic-tasks.mjs
    export: tidy
`;

const CHILD = `
name: dyn_child
params:
  n: { type: integer }
tasks:
  double:
    kind: function
    module: ./dynamic-tasks.mjs
    export: double
`;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

const live = new Set<ChildProcess>();
afterAll(() => {
  for (const child of live) child.kill('SIGKILL');
});

function baton(
  cwd: string,
  env: NodeJS.ProcessEnv,
  args: readonly string[],
  options: { killAfterMs?: number; timeoutMs: number },
): Promise<Exit> {
  return new Promise((resolveExit, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const killer =
      options.killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    const guard = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (error) => {
      clearTimeout(killer);
      clearTimeout(guard);
      live.delete(child);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      clearTimeout(guard);
      live.delete(child);
      resolveExit({ code, signal, stdout, stderr });
    });
  });
}

interface ShownTask {
  readonly id: string;
  readonly state: string;
  readonly attempts: number;
  readonly output: unknown;
}
interface ShownRun {
  readonly id: string;
  readonly state: string;
  readonly tasks: readonly ShownTask[];
  readonly children?: readonly { id: string; state: string; parent_task?: string }[];
}

for (const [storeName, makeStore] of Object.entries(storeSetups('baton-dyn-crash-'))) {
  describe(`dynamic flows under kill -9 on ${storeName}`, () => {
    it('a map, a sleep, an event, a subflow, a handler and a finally task end as without kills', async () => {
      const seed = Number(process.env.CRASH_SEED ?? randomInt(1, 2 ** 31 - 1));
      const rng = seededRandom(seed);
      const why = (m: string) => `${m} (CRASH_SEED=${seed}, ${storeName})`;
      const setup = await makeStore();
      const dir = setup.dir;
      try {
        mkdirSync(join(dir, 'flows'));
        mkdirSync(join(dir, 'journal'));
        writeFileSync(join(dir, 'flows', 'dyn_crash.yaml'), FLOW);
        writeFileSync(join(dir, 'flows', 'dyn_child.yaml'), CHILD);
        copyFileSync(
          join(ROOT, 'test', 'fixtures', 'crash', 'dynamic-tasks.mjs'),
          join(dir, 'flows', 'dynamic-tasks.mjs'),
        );
        const db = join(dir, 'baton.db');
        const env = { ...process.env, ...setup.env, CRASH_JOURNAL_DIR: join(dir, 'journal') };
        const cli = (args: readonly string[], options: { killAfterMs?: number; timeoutMs: number }) =>
          baton(dir, env, ['--db', db, ...args], options);

        const created = await cli(['run', 'dyn_crash', '--enqueue', '--json'], { timeoutMs: 30_000 });
        expect(created.code, why(created.stderr)).toBe(0);
        const runId = (JSON.parse(created.stdout) as { id: string }).id;

        const started = Date.now();
        let kills = 0;
        let signals = 0;
        while (kills < MAX_KILLS && Date.now() - started < BUDGET_MS) {
          // Enough kills landed: let the next resume run a while longer, so the run ends.
          const window = kills >= MIN_KILLS ? 3_000 : 500;
          const exit = await cli(['resume', runId], {
            killAfterMs: 150 + Math.floor(rng() * window),
            timeoutMs: 30_000,
          });
          if (exit.signal === 'SIGKILL') kills++;
          else if (exit.code !== 0 && exit.code !== 1)
            throw new Error(why(`resume exited ${exit.code}: ${exit.stderr}`));
          const shown = await cli(['show', runId, '--json'], { timeoutMs: 30_000 });
          const run = JSON.parse(shown.stdout) as ShownRun;
          if (run.state === 'succeeded' || run.state === 'failed') break;
          // Sent by whoever holds the run: applied directly now that its owner is dead.
          // Parked runs are killed a few times too before the event arrives.
          if (run.tasks.find((t) => t.id === 'go')?.state === 'waiting' && kills >= MIN_KILLS / 2) {
            const sent = await cli(['signal', runId, 'go', '--data', '{"n":21}', '--id', 'go-1'], {
              timeoutMs: 40_000,
            });
            expect(sent.code, why(`signal: ${sent.stderr}`)).toBe(0);
            signals++;
          }
        }
        const last = await cli(['resume', runId], { timeoutMs: 60_000 });
        expect([0, 1], why(`final resume: ${last.stderr}`)).toContain(last.code);
        let shown = JSON.parse(
          (await cli(['show', runId, '--json', '--expand'], { timeoutMs: 30_000 })).stdout,
        ) as ShownRun;
        if (shown.tasks.find((t) => t.id === 'go')?.state === 'waiting') {
          await cli(['signal', runId, 'go', '--data', '{"n":21}', '--id', 'go-1'], { timeoutMs: 40_000 });
          signals++;
          await cli(['resume', runId], { timeoutMs: 60_000 });
          shown = JSON.parse(
            (await cli(['show', runId, '--json', '--expand'], { timeoutMs: 30_000 })).stdout,
          ) as ShownRun;
        }

        expect(kills, why('too few kills landed')).toBeGreaterThanOrEqual(MIN_KILLS / 2);
        expect(signals, why('the event was never sent')).toBeGreaterThanOrEqual(1);
        expect(shown.state, why(JSON.stringify(shown.tasks.filter((t) => t.state !== 'succeeded')))).toBe('succeeded');
        const task = (id: string) => shown.tasks.find((t) => t.id === id);
        const expectedValues = Array.from({ length: ITEMS }, (_, i) => i * 3);
        expect(task('each')?.output, why('map output')).toEqual(expectedValues);
        expect(task('total')?.output, why('total')).toBe(expectedValues.reduce((a, b) => a + b, 0));
        expect(task('go')?.output).toEqual({ n: 21 });
        expect(task('child')?.output).toEqual({ double: 42 });
        expect(task('risky')?.output).toEqual({ recovered: 'BOOM' });
        expect(task('cleanup')?.output).toBe('tidy');

        // One child run, linked to its parent task, whatever was killed in between.
        expect(
          shown.children?.map((c) => [c.state, c.parent_task]),
          why('children'),
        ).toEqual([['succeeded', 'child']]);

        // No map item ran after its success was committed: its journal attempts never
        // exceed the attempt that succeeded, and every item ran at least once.
        const journal = readFileSync(join(dir, 'journal', `${runId}.journal`), 'utf8')
          .trim()
          .split('\n');
        for (let i = 0; i < ITEMS; i++) {
          const id = `each[${i}]`;
          const committed = task(id);
          expect(committed?.state, why(id)).toBe('succeeded');
          const ran = journal.filter((l) => l.startsWith(`${id} `)).map((l) => Number(l.split(' ')[1]));
          expect(ran.length, why(`${id} never ran`)).toBeGreaterThan(0);
          expect(Math.max(...ran), why(`${id} ran after its committed success`)).toBeLessThanOrEqual(
            committed?.attempts ?? 0,
          );
        }
        for (const once of ['total', 'cleanup']) {
          const ran = journal.filter((l) => l.startsWith(`${once} `)).map((l) => Number(l.split(' ')[1]));
          expect(Math.max(...ran), why(`${once} ran after its committed success`)).toBeLessThanOrEqual(
            task(once)?.attempts ?? 0,
          );
        }

        if (storeName === 'sqlite' && existsSync(db)) {
          const check = new Database(db, { readonly: true });
          try {
            expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
          } finally {
            check.close();
          }
        }
      } finally {
        if (!process.env.CRASH_KEEP) await setup.cleanup();
      }
    }, 240_000);
  });
}
