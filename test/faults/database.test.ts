/**
 * Database faults (docs/failure-modes.md): two schedulers and two workers run ~20 runs of
 * a 40-task flow while every Baton connection to the database is terminated several times
 * (`pg_terminate_backend`) and the PostgreSQL server is stopped and started once. The
 * processes must reconnect by themselves and finish everything, nothing lost and nothing
 * recorded twice (the invariants of fault-helpers.ts). While the server is down, a CLI
 * call fails fast with a clear, retryable error: exit code 6 and STORE_UNAVAILABLE, no
 * stack trace, no hang.
 *
 * The server is running again at the end, even if the test fails.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../store/pg-helpers.js';
import type { CliResult, Member, Workspace } from './fault-helpers.js';
import { seededRandom } from '../core/fixtures.js';
import {
  checkInvariants,
  Cluster,
  createWorkspace,
  describeCli,
  ensurePgRunning,
  fanProject,
  killStray,
  pgCtl,
  pgIsReady,
  pgQuery,
  readJournal,
  runBaton,
  runStates,
  seedFrom,
  sleep,
  stderrAll,
  TERMINAL,
  waitUntil,
  writeProject,
} from './fault-helpers.js';

const RUNS = 20;
const WIDTH = 38;
const LEASE_MS = 3000;
/** When (ms after the start) every Baton connection is terminated, before the restart. */
const TERMINATE_AT = [3000, 6000, 9000] as const;
const STOP_AT = 11_000;
/** The server stays down at least this long: longer than every lease. */
const DOWN_MS = 4500;
/** One more termination this long after the server is back. */
const TERMINATE_AFTER_RESTART_MS = 3000;
const CLI_DEADLINE_MS = 15_000;
/** One `baton run --enqueue` starts this often, whatever the last one took... */
const ENQUEUE_GAP_MS = 2000;
/** ...with at most this many at once. */
const ENQUEUE_PARALLEL = 3;
/** Every run must end in this much from the start... */
const BUDGET_MS = 150_000;
/**
 * ...or, on a machine so busy that enqueueing the runs (a CLI process each) runs late, in
 * this much after the last run was enqueued; never past the hard cap.
 */
const SETTLE_AFTER_ENQUEUE_MS = 90_000;
const HARD_CAP_MS = 300_000;

let ws: Workspace;

beforeAll(() => {
  ws = createWorkspace('baton-dbfaults-');
});

afterAll(async () => {
  await ensurePgRunning();
  const left = await killStray();
  if (left > 0) console.log(`database faults: killed ${left} stray process(es)`);
  ws.remove();
});

/** Terminates every connection to `dbName` but the one asking; returns how many it ended. */
async function terminateAll(url: string, dbName: string): Promise<number> {
  const rows = await pgQuery<{ ok: boolean }>(
    url,
    'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [dbName],
  );
  return rows.filter((r) => r.ok).length;
}

describe('database faults', () => {
  it(
    'terminated connections and a server restart mid-run: everything reconnects and finishes, nothing lost or doubled',
    async () => {
      const seed = seedFrom('FAULTS_SEED');
      const tag = `[database faults seed ${seed}; rerun with FAULTS_SEED=${seed}]`;
      console.log(`database faults: seed ${seed}`);
      const rng = seededRandom(seed);
      const began = Date.now();
      const db = await createTestDatabase();
      const dbName = new URL(db.url).pathname.slice(1);
      const cluster = new Cluster(ws.bin, db.url);
      try {
        const base = join(ws.dir, 'db');
        const { journal, config, client, tasks, flowFile, env } = fanProject(base, rng, {
          width: WIDTH,
          bodyMs: [100, 300],
          leaseMs: LEASE_MS,
          dbUrl: db.url,
        });
        const members: Member[] = [
          cluster.add('s1', 'scheduler', writeProject(base, 's1', config)),
          cluster.add('s2', 'scheduler', writeProject(base, 's2', config)),
          cluster.add('w1', 'worker', writeProject(base, 'w1', config)),
          cluster.add('w2', 'worker', writeProject(base, 'w2', config)),
        ];
        await Promise.all(members.map((m) => cluster.ready(m)));
        const t0 = Date.now();

        // The enqueuer: one `baton run --enqueue` every ENQUEUE_GAP_MS, a few at once, so that a
        // CLI process slow to start on a busy machine does not spread the runs over many minutes;
        // while the server is down `baton run` fails with exit 6, and is tried again.
        const ids: string[] = [];
        let enqueueRetries = 0;
        let enqueuedAt = Number.POSITIVE_INFINITY;
        const enqueueOne = async (): Promise<string> => {
          for (let attempt = 1; ; attempt++) {
            const r = await runBaton(ws.bin, ['run', flowFile, '--enqueue'], { cwd: client, env, timeoutMs: 30_000 });
            const id = r.stdout.trim();
            if (r.code === 0 && /^r[0-9a-z]{15}$/.test(id)) return id;
            if (r.code !== 6 || attempt >= 20) throw new Error(`${tag} baton run --enqueue: ${describeCli(r)}`);
            enqueueRetries++;
            await sleep(1000);
          }
        };
        const enqueuer = (async () => {
          const inFlight = new Set<Promise<void>>();
          for (let i = 0; i < RUNS; i++) {
            if (Date.now() - began > HARD_CAP_MS) throw new Error(`${tag} only ${ids.length} of ${RUNS} runs enqueued`);
            const next = Date.now() + ENQUEUE_GAP_MS;
            while (inFlight.size >= ENQUEUE_PARALLEL) await Promise.race(inFlight);
            const one: Promise<void> = enqueueOne()
              .then((id) => void ids.push(id))
              .finally(() => inFlight.delete(one));
            // A failure surfaces through the race above or the wait below.
            one.catch(() => undefined);
            inFlight.add(one);
            await sleep(Math.max(0, next - Date.now()));
          }
          await Promise.all(inFlight);
          enqueuedAt = Date.now();
        })();
        let enqueueError: unknown;
        enqueuer.catch((error: unknown) => (enqueueError = error));

        // The faults.
        const terminated: number[] = [];
        for (const at of TERMINATE_AT) {
          await sleep(Math.max(0, t0 + at - Date.now()));
          terminated.push(await terminateAll(db.url, dbName));
        }
        await sleep(Math.max(0, t0 + STOP_AT - Date.now()));
        const stopMs = pgCtl('stop');
        const downAt = Date.now();
        let cli: CliResult;
        try {
          cli = await runBaton(ws.bin, ['runs', '--json'], { cwd: client, env, timeoutMs: CLI_DEADLINE_MS });
        } finally {
          await sleep(Math.max(0, downAt + DOWN_MS - Date.now()));
          pgCtl('start');
        }
        await waitUntil(() => (pgIsReady() ? true : undefined), {
          timeoutMs: 30_000,
          intervalMs: 100,
          what: 'PostgreSQL',
        });
        const upAt = Date.now();
        const downMs = upAt - downAt;
        await sleep(TERMINATE_AFTER_RESTART_MS);
        terminated.push(await terminateAll(db.url, dbName));

        await enqueuer.catch(() => undefined);
        if (enqueueError !== undefined) throw enqueueError;
        console.log(
          `database faults: ${RUNS} runs enqueued ${((enqueuedAt - t0) / 1000).toFixed(1)} s after the start, the server back after ${((upAt - t0) / 1000).toFixed(1)} s`,
        );
        const deadline = Math.min(
          began + HARD_CAP_MS,
          Math.max(began + BUDGET_MS, enqueuedAt + SETTLE_AFTER_ENQUEUE_MS),
        );
        const finishedAt = await waitUntil(
          async () => {
            const states = await runStates(db.url, ids);
            return [...states.values()].filter((s) => TERMINAL.has(s)).length === RUNS ? Date.now() : undefined;
          },
          { timeoutMs: Math.max(10_000, deadline - Date.now()), intervalMs: 500, what: 'every run to end' },
        ).catch(async (error: unknown) => {
          const states = await runStates(db.url, ids);
          const open = ids.filter((id) => !TERMINAL.has(states.get(id) ?? ''));
          const queue = await pgQuery(
            db.url,
            'SELECT run_id, task_id, attempt, status, worker FROM task_queue LIMIT 20',
          );
          throw new Error(
            `${tag} ${(error as Error).message}: ${open.length} open (${open.slice(0, 5).join(', ')}); queue ${JSON.stringify(queue)}\n` +
              members.map((m) => `--- ${m.name}\n${stderrAll(m).slice(-2500)}`).join('\n'),
          );
        });

        const exits = await cluster.shutdown();
        await sleep(LEASE_MS + 500);
        const report = await checkInvariants(db.url, { runIds: ids, tasksPerRun: tasks.length, journal });
        // Each worker ran bodies after the restart: it reconnected by itself.
        const bodiesAfterRestart = members
          .filter((m) => m.role === 'worker')
          .map((m) => ({
            worker: m.name,
            n: readJournal(journal).filter((j) => j.pid === m.proc.pid && j.at > upAt).length,
          }));
        const diagnostics = (pattern: RegExp) =>
          members.reduce((n, m) => n + (stderrAll(m).match(pattern) ?? []).length, 0);
        console.log(
          [
            `database faults summary (seed ${seed})`,
            `  runs ${report.counts.runs}, task runs ${report.counts.tasks}, successes ${report.counts.successes}`,
            `  connections terminated: ${terminated.join(', ')}; server stopped in ${stopMs} ms, down ${downMs} ms`,
            `  baton runs --json while down: exit ${cli.code} after ${cli.ms} ms: ${cli.stderr.trim().slice(0, 200)}`,
            `  baton run --enqueue retried ${enqueueRetries} time(s) while down`,
            `  diagnostics: commit failed ${diagnostics(/commit failed/g)}, claim failed ${diagnostics(/claim failed/g)}, reporting failed ${diagnostics(/reporting outcomes failed/g)}, leadership check failed ${diagnostics(/leadership check failed/g)}, standing down ${diagnostics(/standing down/g)}`,
            `  bodies after the restart: ${bodiesAfterRestart.map((b) => `${b.worker} ${b.n}`).join(', ')}`,
            `  attempts started ${report.counts.startedAttempts}, lost ${report.counts.lostAttempts}; retries ${report.counts.retriesScheduled} scheduled, ${report.counts.retriesFired} fired`,
            `  runs enqueued over ${((enqueuedAt - t0) / 1000).toFixed(1)} s; all ended ${((finishedAt - upAt) / 1000).toFixed(1)} s after the restart, ${((finishedAt - began) / 1000).toFixed(1)} s after the start`,
          ].join('\n'),
        );

        // The CLI call while the server was down: fast, clear, retryable.
        expect(cli.timedOut, describeCli(cli)).toBe(false);
        expect(cli.code, describeCli(cli)).toBe(6);
        expect(cli.stderr, describeCli(cli)).toContain('STORE_UNAVAILABLE');
        expect(cli.stderr, describeCli(cli)).not.toMatch(/internal|\n\s+at /);
        expect(cli.ms).toBeLessThan(CLI_DEADLINE_MS);

        expect(report.problems.slice(0, 30), `${tag} ${report.problems.length} problem(s)`).toEqual([]);
        expect(cluster.unexpectedExits(), tag).toEqual([]);
        for (const e of exits)
          expect(e.exit, `${tag} ${e.member} on SIGTERM${e.detail}`).toEqual({ code: 0, signal: null });
        expect(
          terminated.every((n) => n >= 4),
          `${tag} each termination ended the processes' connections`,
        ).toBe(true);
        for (const b of bodiesAfterRestart)
          expect(b.n, `${tag} ${b.worker} ran bodies after the restart`).toBeGreaterThan(0);
      } finally {
        await ensurePgRunning();
        await cluster.shutdown(5000).catch(() => undefined);
        await killStray();
        await db.drop();
      }
    },
    // After the cap come the shutdown (a member may first have to start, then to stop) and the checks.
    HARD_CAP_MS + 120_000,
  );
});
