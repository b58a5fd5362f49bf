/**
 * Worker and scheduler churn on PostgreSQL (DESIGN.md, "Durable execution", "Processes"):
 * two `baton scheduler` and three `baton worker` processes, each a separate OS process in
 * its own project folder, share one database and one flow file. A seeded driver SIGKILLs a
 * random one of them every 2-5 s and starts it again, while 50 runs of a 40-task
 * fan-out/fan-in flow (2,000 task runs, some failing once and retried after 50-200 ms) are
 * enqueued and executed. At the end every run must have succeeded with each task's success
 * recorded once, no lost task, each retry timer fired once, nothing left in the queue and
 * no lease held, and no body run after its success was committed (the journal). Event times
 * follow the database clock and never go back within a run: in sequence order they do not
 * decrease, and each task's success is stamped no earlier than its start and than the
 * moment its body began (the journal; every process shares the database's host clock).
 *
 * Then a worker stopped with SIGSTOP for longer than its claim lease: the scheduler hands
 * its attempts on, and when it is continued its late completions are refused and its
 * remaining bodies abandoned. Then a lone scheduler frozen together with its worker past
 * every lease, three times (as when the database is away): it claims its own runs again
 * and must still record every lapsed claim. Last, a leader that dies between marking a
 * lapsed claim lost and committing that: its successor must still recover the attempt.
 *
 * `FAULTS_SEED=<n>` reproduces the kill sequence and the flow; `FAULTS_KEEP=1` keeps the
 * temp folder.
 */
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../store/pg-helpers.js';
import type { Member, Workspace } from './fault-helpers.js';
import { seededRandom } from '../core/fixtures.js';
import {
  between,
  checkInvariants,
  Cluster,
  createWorkspace,
  enqueueRuns,
  fanFlow,
  fanProject,
  flowYaml,
  killStray,
  pgQuery,
  readEnds,
  readJournal,
  refusedCompletions,
  runStates,
  seedFrom,
  sleep,
  stderrAll,
  TERMINAL,
  waitUntil,
  writeProject,
} from './fault-helpers.js';

const RUNS = 50;
const WIDTH = 38; // + root + join = 40 tasks per run
const LEASE_MS = 3000;
const KILL_EVERY_MS = [2000, 5000] as const;
const ENQUEUE_GAP_MS = 1000;
/** `baton run --enqueue` processes at once, at most. */
const ENQUEUE_PARALLEL = 3;
/** Churn and completion must fit in this... */
const BUDGET_MS = 180_000;
/**
 * ...or, on a machine so busy that enqueueing the runs (a CLI process each) runs late, in
 * this much after the last run was enqueued; never past the hard cap.
 */
const SETTLE_AFTER_ENQUEUE_MS = 90_000;
const HARD_CAP_MS = 360_000;
const MIN_KILLS = 8;

let ws: Workspace;

interface TimedEvent {
  readonly run_id: string;
  readonly seq: number;
  readonly type: string;
  readonly at: number;
  readonly task: string | null;
  readonly attempt: number | null;
}

/**
 * Where the event times of `ids` break the rules of docs/failure-modes.md ("Clocks disagree
 * or jump"): an event stamped before the run's previous event, a success stamped before its
 * attempt's start or before its body began; and how many events were looked at.
 */
async function eventTimeProblems(
  url: string,
  ids: readonly string[],
  journal: string,
): Promise<{ problems: string[]; checked: number }> {
  const events = await pgQuery<TimedEvent>(
    url,
    `SELECT run_id, seq::int AS seq, type, at::float8 AS at, data->>'task' AS task, (data->>'attempt')::int AS attempt
     FROM events WHERE run_id = ANY($1::text[]) ORDER BY run_id, seq`,
    [[...ids]],
  );
  const bodyBegan = new Map(readJournal(journal).map((j) => [`${j.run} ${j.task} ${j.attempt}`, j.at]));
  const started = new Map<string, number>();
  const problems: string[] = [];
  let previous: TimedEvent | undefined;
  for (const e of events) {
    if (previous?.run_id === e.run_id && e.at < previous.at) {
      problems.push(
        `run ${e.run_id}: event ${e.seq} (${e.type}) is stamped ${previous.at - e.at} ms before event ${previous.seq} (${previous.type})`,
      );
    }
    const attempt = `${e.run_id} ${e.task} ${e.attempt}`;
    if (e.type === 'task_started') started.set(attempt, e.at);
    if (e.type === 'task_succeeded') {
      const start = started.get(attempt);
      const began = bodyBegan.get(attempt);
      if (start === undefined || e.at < start) problems.push(`${attempt}: succeeded at ${e.at}, started at ${start}`);
      if (began !== undefined && e.at < began)
        problems.push(`${attempt}: success stamped ${began - e.at} ms before its body began (journal)`);
    }
    previous = e;
  }
  return { problems, checked: events.length };
}

beforeAll(() => {
  ws = createWorkspace('baton-churn-');
});

afterAll(async () => {
  const left = await killStray();
  if (left > 0) console.log(`churn: killed ${left} stray process(es)`);
  ws.remove();
});

describe('churn', () => {
  it(
    '2 schedulers and 3 workers, one SIGKILLed and restarted every 2-5 s: 2,000 tasks, each success once',
    async () => {
      const seed = seedFrom('FAULTS_SEED');
      const tag = `[churn seed ${seed}; rerun with FAULTS_SEED=${seed}]`;
      console.log(`churn: seed ${seed}`);
      const rng = seededRandom(seed);
      const began = Date.now();
      const db = await createTestDatabase();
      const cluster = new Cluster(ws.bin, db.url);
      try {
        const base = join(ws.dir, 'churn');
        const { journal, config, client, tasks, flowFile, env } = fanProject(base, rng, {
          width: WIDTH,
          bodyMs: [50, 250],
          leaseMs: LEASE_MS,
          dbUrl: db.url,
        });

        const members: Member[] = [
          cluster.add('s1', 'scheduler', writeProject(base, 's1', config)),
          cluster.add('s2', 'scheduler', writeProject(base, 's2', config)),
          cluster.add('w1', 'worker', writeProject(base, 'w1', config)),
          cluster.add('w2', 'worker', writeProject(base, 'w2', config)),
          cluster.add('w3', 'worker', writeProject(base, 'w3', config)),
        ];
        await Promise.all(members.map((m) => cluster.ready(m)));

        // The enqueuer: runs arrive over ~60 s, so that kills land while work is in flight.
        const ids: string[] = [];
        let enqueueError: unknown;
        // One `baton run --enqueue` starts every ENQUEUE_GAP_MS, whatever the last one took:
        // on a busy machine a CLI process takes seconds to start, and one after another the
        // runs would arrive over many minutes instead of ~60 s. A few may be in flight at once.
        const enqueuer = (async () => {
          const inFlight = new Set<Promise<void>>();
          for (let i = 0; i < RUNS; i++) {
            const next = Date.now() + ENQUEUE_GAP_MS;
            while (inFlight.size >= ENQUEUE_PARALLEL) await Promise.race(inFlight);
            const one: Promise<void> = enqueueRuns(ws.bin, flowFile, 1, { cwd: client, env })
              .then((id) => void ids.push(...id))
              .finally(() => inFlight.delete(one));
            // A failure surfaces through the race above or the wait below.
            one.catch(() => undefined);
            inFlight.add(one);
            await sleep(Math.max(0, next - Date.now()));
          }
          await Promise.all(inFlight);
        })().catch((error: unknown) => {
          enqueueError = error;
        });
        let enqueued = false;
        let enqueuedAt = Number.POSITIVE_INFINITY;
        void enqueuer.then(() => {
          enqueued = true;
          enqueuedAt = Date.now();
        });
        const withinBudget = () => {
          const now = Date.now();
          if (now - began >= HARD_CAP_MS) return false;
          return now - began < BUDGET_MS || !enqueued || now - enqueuedAt < SETTLE_AFTER_ENQUEUE_MS;
        };

        let allDone = false;
        const watcher = (async () => {
          while (withinBudget() && enqueueError === undefined) {
            if (enqueued && ids.length === RUNS) {
              const states = await runStates(db.url, ids);
              if ([...states.values()].filter((s) => TERMINAL.has(s)).length === RUNS) {
                allDone = true;
                return;
              }
            }
            await sleep(500);
          }
        })();

        // The driver: every 2-5 s, SIGKILL a member and start it again: the leading scheduler
        // one time in four (a random pick hits the standby as often), else any of the five.
        const leader = async (): Promise<Member | undefined> => {
          const [row] = await pgQuery<{ holder: string }>(
            db.url,
            'SELECT holder FROM leadership WHERE lease_until >= baton_now()',
          );
          const pid = Number(row?.holder.split('/')[1]);
          return members.find((m) => m.role === 'scheduler' && m.proc.pid === pid);
        };
        const kills: { member: string; atMs: number; leader: boolean }[] = [];
        while (!allDone && withinBudget() && enqueueError === undefined) {
          const wait = between(rng, KILL_EVERY_MS[0], KILL_EVERY_MS[1]);
          const until = Date.now() + wait;
          while (!allDone && Date.now() < until) await sleep(100);
          if (allDone) break;
          const lead = await leader();
          const victim = (rng() < 0.25 && lead) || (members[Math.floor(rng() * members.length)] as Member);
          kills.push({ member: victim.name, atMs: Date.now() - began, leader: victim === lead });
          await cluster.killAndRestart(victim);
        }
        await watcher;
        if (enqueueError !== undefined) throw enqueueError;
        const churnMs = Date.now() - began;

        if (!allDone) {
          const states = await runStates(db.url, ids);
          const open = ids.filter((id) => !TERMINAL.has(states.get(id) ?? ''));
          const stuck = await pgQuery<{ run_id: string; task_id: string; state: string; attempts: number }>(
            db.url,
            `SELECT run_id, task_id, state, attempts FROM task_runs WHERE run_id = ANY($1::text[]) AND state <> 'succeeded' LIMIT 20`,
            [open],
          );
          const queue = await pgQuery<Record<string, unknown>>(
            db.url,
            // Claims first: one held with a live lease by no running body is a liveness bug.
            `SELECT id, run_id, task_id, attempt, status, worker, lease_until - baton_now() AS left_ms,
               baton_now() - created_at AS queued_ms
             FROM task_queue ORDER BY status <> 'claimed', id LIMIT 30`,
          );
          const notEnqueued = enqueued ? '' : ` (only ${ids.length} of ${RUNS} runs enqueued by then: a slow machine)`;
          throw new Error(
            `${tag} ${open.length} of ${ids.length} runs unfinished after ${churnMs} ms${notEnqueued}: ${open.slice(0, 5).join(', ')}\n` +
              `open tasks: ${JSON.stringify(stuck)}\nqueue: ${JSON.stringify(queue)}\n` +
              `kills: ${JSON.stringify(kills)}\n` +
              members.map((m) => `--- ${m.name}\n${stderrAll(m).slice(-2000)}`).join('\n'),
          );
        }

        // Stop everything: workers drain, schedulers hand over.
        const stoppedAt = Date.now();
        const exits = await cluster.shutdown();
        const stopMs = Date.now() - stoppedAt;
        // A process stopped by SIGTERM released its runs: a lease still live now can only be
        // one of a process SIGKILLed less than a lease ago.
        const liveLeases = await pgQuery<{ id: string; owner: string }>(
          db.url,
          'SELECT id, owner FROM runs WHERE owner IS NOT NULL AND lease_until >= baton_now()',
        );
        const heldByStopped = liveLeases.filter((l) =>
          members.some((m) => m.proc.pid === Number(l.owner.split('/')[1])),
        );
        // A lease left by a process killed in the last moments lapses within LEASE_MS.
        await sleep(LEASE_MS + 500);
        const report = await checkInvariants(db.url, { runIds: ids, tasksPerRun: tasks.length, journal });
        const times = await eventTimeProblems(db.url, ids, journal);
        const leaders = await pgQuery<{ holder: string }>(
          db.url,
          'SELECT holder FROM leadership WHERE lease_until >= baton_now()',
        );

        const refused = members
          .filter((m) => m.role === 'worker')
          .reduce((n, m) => n + refusedCompletions(stderrAll(m)), 0);
        const accessions = members
          .filter((m) => m.role === 'scheduler')
          .reduce((n, m) => n + (stderrAll(m).match(/baton scheduler: leading/g) ?? []).length, 0);
        const killsBy = (role: string) => kills.filter((k) => k.member.startsWith(role)).length;
        console.log(
          [
            `churn summary (seed ${seed})`,
            `  runs ${report.counts.runs}, task runs ${report.counts.tasks}, successes ${report.counts.successes}`,
            `  SIGKILLs ${kills.length} (schedulers ${killsBy('s')}, of them the leader ${kills.filter((k) => k.leader).length}; workers ${killsBy('w')}) at ${kills.map((k) => `${k.member}@${(k.atMs / 1000).toFixed(1)}s`).join(' ')}`,
            `  leadership accessions ${accessions}; completions refused ${refused}`,
            `  attempts started ${report.counts.startedAttempts}, lost with a process ${report.counts.lostAttempts}, failed ${report.counts.failedAttempts}`,
            `  retries scheduled ${report.counts.retriesScheduled}, fired ${report.counts.retriesFired} (fired ${report.counts.minRetryMarginMs}..${report.counts.maxRetryMarginMs} ms after due)`,
            `  bodies run ${report.counts.bodies} (${report.counts.wastedBodies} not the winning attempt)`,
            `  all runs ended after ${(churnMs / 1000).toFixed(1)} s; shutdown took ${stopMs} ms; run leases live after it ${liveLeases.length} (of SIGKILLed processes)`,
            `  event times checked ${times.checked}, out of order ${times.problems.length}`,
          ].join('\n'),
        );

        expect(report.problems.slice(0, 30), `${tag} ${report.problems.length} problem(s)`).toEqual([]);
        expect(times.problems.slice(0, 30), `${tag} ${times.problems.length} event time problem(s)`).toEqual([]);
        expect(cluster.unexpectedExits(), tag).toEqual([]);
        for (const e of exits)
          expect(e.exit, `${tag} ${e.member} on SIGTERM${e.detail}`).toEqual({ code: 0, signal: null });
        expect(leaders, `${tag} leadership still held after every scheduler stopped`).toEqual([]);
        expect(report.counts.successes).toBe(RUNS * tasks.length);
        expect(kills.length, tag).toBeGreaterThanOrEqual(MIN_KILLS);
        expect(kills.filter((k) => k.leader).length, `${tag} leader kills`).toBeGreaterThanOrEqual(1);
        expect(killsBy('w'), `${tag} worker kills`).toBeGreaterThanOrEqual(1);
        expect(heldByStopped, `${tag} runs still leased by a process stopped with SIGTERM`).toEqual([]);
        expect(report.counts.retriesScheduled, `${tag} retry timers armed`).toBeGreaterThan(0);
      } finally {
        await cluster.shutdown(5000).catch(() => undefined);
        await killStray();
        await db.drop();
      }
    },
    HARD_CAP_MS + 120_000,
  );

  it('a worker stopped past its claim lease: the attempts go on elsewhere, its late completions are refused and it abandons the rest', async () => {
    const began = Date.now();
    const db = await createTestDatabase();
    const cluster = new Cluster(ws.bin, db.url);
    try {
      const base = join(ws.dir, 'stop');
      mkdirSync(base, { recursive: true });
      const journal = join(base, 'journal');
      const leaseMs = 2000;
      const config = `lease: ${leaseMs / 1000}s\nconcurrency: 8\n`;
      const env = { BATON_DATABASE_URL: db.url };
      // Short bodies end while the worker is stopped (their completion comes late); long
      // ones are still running when it continues (it must abandon them). The hand-over takes
      // the lease plus a harvest, and on a busy machine several seconds more: the long bodies
      // outlast all of that with room to spare.
      const SHORT_MS = 1500;
      const LONG_MS = 20_000;
      const short = ['s0', 's1', 's2', 's3'];
      const long = ['l0', 'l1', 'l2', 'l3'];
      const flowFile = join(base, 'stop.yaml');
      writeFileSync(
        flowFile,
        flowYaml('stop', journal, [
          ...short.map((id) => ({ id, ms: SHORT_MS })),
          ...long.map((id) => ({ id, ms: LONG_MS })),
        ]),
      );
      const scheduler = cluster.add('s', 'scheduler', writeProject(base, 's', config));
      const a = cluster.add('w-a', 'worker', writeProject(base, 'w-a', config));
      // B is up before the run exists, and held (SIGSTOP) while A takes every attempt: a Node
      // process starting on a busy machine takes seconds, which must not stretch A's stop.
      const b = cluster.add('w-b', 'worker', writeProject(base, 'w-b', config));
      await Promise.all([cluster.ready(scheduler), cluster.ready(a), cluster.ready(b)]);
      b.proc.child.kill('SIGSTOP');
      const [runId] = await enqueueRuns(ws.bin, flowFile, 1, { cwd: writeProject(base, 'client', config), env });
      if (!runId) throw new Error('no run id');

      const startedOn = (pid: number) => readJournal(journal).filter((j) => j.run === runId && j.pid === pid);
      await waitUntil(() => (startedOn(a.proc.pid).length === 8 ? true : undefined), {
        timeoutMs: 15_000,
        what: 'worker A to start all 8 bodies',
      });
      const stoppedAt = Date.now();
      a.proc.child.kill('SIGSTOP');
      b.proc.child.kill('SIGCONT');
      // The scheduler sees A's claims lapse and hands the attempts on; B starts attempt 2 of each.
      await waitUntil(() => (startedOn(b.proc.pid).length === 8 ? true : undefined), {
        timeoutMs: 30_000,
        what: 'worker B to start attempt 2 of all 8 tasks',
      });
      const handedOnMs = Date.now() - stoppedAt;
      // Stopped well past the lease, and past the end of the short bodies.
      await sleep(Math.max(0, stoppedAt + 2.5 * leaseMs - Date.now()));
      const stoppedMs = Date.now() - stoppedAt;
      a.proc.child.kill('SIGCONT');
      const continuedAt = Date.now();

      const aEnds = () => readEnds(journal).filter((e) => e.run === runId && e.pid === a.proc.pid);
      await waitUntil(
        () => (aEnds().length === 8 && refusedCompletions(a.proc.stderr()) >= short.length ? true : undefined),
        { timeoutMs: 10_000, what: 'worker A to report its late completions and abandon the rest' },
      );
      const abandonMs =
        Math.max(
          ...aEnds()
            .filter((e) => e.outcome === 'aborted')
            .map((e) => e.at),
        ) - continuedAt;
      await waitUntil(
        async () => (TERMINAL.has((await runStates(db.url, [runId])).get(runId) ?? '') ? true : undefined),
        {
          // B's attempts of the long tasks run LONG_MS after the hand-over.
          timeoutMs: LONG_MS + 30_000,
          intervalMs: 200,
          what: 'the run to end',
        },
      );
      const exits = await cluster.shutdown();
      await sleep(leaseMs + 500);
      const report = await checkInvariants(db.url, { runIds: [runId], tasksPerRun: 8, journal });
      const times = await eventTimeProblems(db.url, [runId], journal);

      const successes = await pgQuery<{ task: string; attempt: number; n: number }>(
        db.url,
        `SELECT data->>'task' AS task, min((data->>'attempt')::int) AS attempt, count(*)::int AS n FROM events
         WHERE run_id = $1 AND type = 'task_succeeded' GROUP BY 1 ORDER BY 1`,
        [runId],
      );
      const refused = refusedCompletions(a.proc.stderr());
      const ends = aEnds();
      console.log(
        [
          'SIGSTOP summary',
          `  worker A stopped ${stoppedMs} ms (claim lease ${leaseMs} ms); attempts handed on to B within ${handedOnMs} ms`,
          `  A after SIGCONT: ${refused} completion(s) refused, ${ends.filter((e) => e.outcome === 'aborted').length} bodies abandoned within ${abandonMs} ms`,
          `  attempts lost ${report.counts.lostAttempts}; successes ${successes.map((s) => `${s.task}#${s.attempt}x${s.n}`).join(' ')}`,
          `  elapsed ${((Date.now() - began) / 1000).toFixed(1)} s`,
        ].join('\n'),
      );

      expect(report.problems).toEqual([]);
      expect(times.problems).toEqual([]);
      expect(cluster.unexpectedExits()).toEqual([]);
      for (const e of exits) expect(e.exit, `${e.member} on SIGTERM${e.detail}`).toEqual({ code: 0, signal: null });
      // Each task's success recorded once, by B's attempt 2; A's 8 claims were lost.
      expect(successes).toEqual([...long, ...short].sort().map((task) => ({ task, attempt: 2, n: 1 })));
      expect(report.counts.lostAttempts).toBe(8);
      const b2 = readJournal(journal).filter((j) => j.run === runId && j.attempt === 2);
      expect(new Set(b2.map((j) => j.pid))).toEqual(new Set([b.proc.pid]));
      // The short bodies ran to their end in A, and their completions were refused.
      expect(refused).toBe(short.length);
      expect(
        ends
          .filter((e) => e.outcome === 'done')
          .map((e) => e.task)
          .sort(),
      ).toEqual(short);
      // The long ones were abandoned at A's first renewal after SIGCONT, long before their end.
      expect(
        ends
          .filter((e) => e.outcome === 'aborted')
          .map((e) => e.task)
          .sort(),
      ).toEqual(long);
      expect(abandonMs).toBeLessThan(LONG_MS / 2);
    } finally {
      await cluster.shutdown(5000).catch(() => undefined);
      await killStray();
      await db.drop();
    }
  }, 150_000);

  it('a lone scheduler and its worker frozen (SIGSTOP) past their leases, three times: the scheduler takes its own runs again and finishes them', async () => {
    const seed = seedFrom('FAULTS_SEED');
    const tag = `[frozen leader seed ${seed}; rerun with FAULTS_SEED=${seed}]`;
    const rng = seededRandom(seed);
    const db = await createTestDatabase();
    const cluster = new Cluster(ws.bin, db.url);
    try {
      const base = join(ws.dir, 'frozen');
      mkdirSync(base, { recursive: true });
      const journal = join(base, 'journal');
      const leaseMs = 2000;
      const config = `lease: ${leaseMs / 1000}s\nconcurrency: 16\n`;
      const env = { BATON_DATABASE_URL: db.url };
      const tasks = fanFlow(rng, 10, [200, 1500]);
      const flowFile = join(base, 'fan.yaml');
      writeFileSync(flowFile, flowYaml('fan', journal, tasks));
      const s = cluster.add('s', 'scheduler', writeProject(base, 's', config));
      const w = cluster.add('w', 'worker', writeProject(base, 'w', config));
      await Promise.all([cluster.ready(s), cluster.ready(w)]);
      const client = writeProject(base, 'client', config);
      const ids = await enqueueRuns(ws.bin, flowFile, 6, { cwd: client, env, parallel: 3 });
      const freezes: number[] = [];
      for (let i = 0; i < 3; i++) {
        await sleep(between(rng, 300, 1500));
        const ms = between(rng, 2 * leaseMs, 3 * leaseMs);
        s.proc.child.kill('SIGSTOP');
        w.proc.child.kill('SIGSTOP');
        await sleep(ms);
        w.proc.child.kill('SIGCONT');
        s.proc.child.kill('SIGCONT');
        freezes.push(ms);
      }
      await waitUntil(
        async () => {
          const states = await runStates(db.url, ids);
          return [...states.values()].filter((x) => TERMINAL.has(x)).length === ids.length ? true : undefined;
        },
        { timeoutMs: 40_000, intervalMs: 250, what: 'every run to end' },
      ).catch(async (error: unknown) => {
        const queue = await pgQuery<{ run_id: string; task_id: string }>(
          db.url,
          'SELECT run_id, task_id, attempt, status, token, worker, lease_until - baton_now() AS left FROM task_queue LIMIT 10',
        );
        const first = queue[0];
        const trail = first
          ? await pgQuery(
              db.url,
              `SELECT seq, type, data->>'attempt' AS attempt FROM events WHERE run_id = $1
               AND (data->>'task' = $2 OR data->'tasks' ? $2) ORDER BY seq`,
              [first.run_id, first.task_id],
            )
          : [];
        const runs = await pgQuery(
          db.url,
          'SELECT id, state, owner, epoch, lease_until - baton_now() AS left FROM runs',
        );
        throw new Error(
          `${tag} ${(error as Error).message}; queue ${JSON.stringify(queue)}\ntrail ${JSON.stringify(trail)}\nruns ${JSON.stringify(runs)}\n${s.proc.stderr()}\n${w.proc.stderr()}`,
        );
      });
      const exits = await cluster.shutdown();
      await sleep(leaseMs + 500);
      const report = await checkInvariants(db.url, { runIds: ids, tasksPerRun: tasks.length, journal });
      // Frozen processes read the database clock late: their stamps must still be in order.
      const times = await eventTimeProblems(db.url, ids, journal);
      // Each claim of a run raises its epoch: above 1, the scheduler took the run again.
      const [claims] = await pgQuery<{ again: number }>(
        db.url,
        'SELECT coalesce(sum(epoch - 1), 0)::int AS again FROM runs WHERE id = ANY($1::text[])',
        [ids],
      );
      console.log(
        `frozen leader (seed ${seed}): frozen ${freezes.join(', ')} ms (run lease ${leaseMs} ms); ` +
          `attempts started ${report.counts.startedAttempts}, lost ${report.counts.lostAttempts}; ` +
          `runs claimed again ${claims?.again ?? 0} time(s)`,
      );
      expect(report.problems.slice(0, 30), tag).toEqual([]);
      expect(times.problems.slice(0, 30), tag).toEqual([]);
      expect(cluster.unexpectedExits(), tag).toEqual([]);
      for (const e of exits)
        expect(e.exit, `${tag} ${e.member} on SIGTERM${e.detail}`).toEqual({ code: 0, signal: null });
    } finally {
      await cluster.shutdown(5000).catch(() => undefined);
      await killStray();
      await db.drop();
    }
  }, 90_000);

  it('a leader that dies between marking a lapsed claim lost and committing it: the next leader still recovers the attempt', async () => {
    const db = await createTestDatabase();
    const cluster = new Cluster(ws.bin, db.url);
    try {
      const base = join(ws.dir, 'harvest');
      mkdirSync(base, { recursive: true });
      const journal = join(base, 'journal');
      const leaseMs = 2000;
      const config = `lease: ${leaseMs / 1000}s\nconcurrency: 4\n`;
      const env = { BATON_DATABASE_URL: db.url };
      const flowFile = join(base, 'one.yaml');
      writeFileSync(flowFile, flowYaml('one', journal, [{ id: 'only', ms: 3000 }]));
      const s1 = cluster.add('s1', 'scheduler', writeProject(base, 's1', config));
      const w = cluster.add('w', 'worker', writeProject(base, 'w', config));
      await Promise.all([cluster.ready(s1), cluster.ready(w)]);
      await waitUntil(() => (s1.proc.stderr().includes('leading') ? true : undefined), {
        timeoutMs: 10_000,
        what: 's1 to lead',
      });
      const [runId] = await enqueueRuns(ws.bin, flowFile, 1, { cwd: writeProject(base, 'client', config), env });
      if (!runId) throw new Error('no run id');
      await waitUntil(() => (readJournal(journal).length === 1 ? true : undefined), {
        timeoutMs: 15_000,
        what: 'the body to start',
      });
      // The leader freezes; the worker dies and its claim lapses.
      s1.proc.child.kill('SIGSTOP');
      await cluster.signal(w, 'SIGKILL');
      await waitUntil(
        async () =>
          (
            await pgQuery<{ n: number }>(
              db.url,
              `SELECT count(*)::int AS n FROM task_queue WHERE status = 'claimed' AND lease_until < baton_now()`,
            )
          )[0]?.n === 1
            ? true
            : undefined,
        { timeoutMs: 10_000, what: 'the claim to lapse' },
      );
      // What the leader's harvest does first (the statement of PostgresStore.harvestTasks);
      // then the leader dies before the commit that would record the lost attempt.
      await pgQuery(
        db.url,
        `UPDATE task_queue SET status = 'lost' WHERE run_id = $1 AND status = 'claimed' AND lease_until < baton_now()`,
        [runId],
      );
      await cluster.signal(s1, 'SIGKILL');
      const s2 = cluster.add('s2', 'scheduler', writeProject(base, 's2', config));
      const w2 = cluster.add('w2', 'worker', writeProject(base, 'w2', config));
      await Promise.all([cluster.ready(s2), cluster.ready(w2)]);
      const state = await waitUntil(
        async () => {
          const s = (await runStates(db.url, [runId])).get(runId) ?? '';
          return TERMINAL.has(s) ? s : undefined;
        },
        { timeoutMs: 25_000, intervalMs: 200, what: 'the run to end under the new leader' },
      ).catch(async (error: unknown) => {
        const queue = await pgQuery(db.url, 'SELECT id, task_id, attempt, status, worker FROM task_queue');
        throw new Error(`${(error as Error).message}; task_queue: ${JSON.stringify(queue)}\n${s2.proc.stderr()}`);
      });
      const exits = await cluster.shutdown();
      await sleep(leaseMs + 500);
      const report = await checkInvariants(db.url, { runIds: [runId], tasksPerRun: 1, journal });
      const times = await eventTimeProblems(db.url, [runId], journal);
      console.log(
        `orphaned harvest: run ${state}; attempts started ${report.counts.startedAttempts}, lost ${report.counts.lostAttempts}`,
      );
      expect(state).toBe('succeeded');
      expect(report.problems).toEqual([]);
      expect(times.problems).toEqual([]);
      expect(report.counts.lostAttempts).toBe(1);
      expect(cluster.unexpectedExits()).toEqual([]);
      for (const e of exits.filter((x) => x.member === 's2' || x.member === 'w2')) {
        expect(e.exit, `${e.member} on SIGTERM${e.detail}`).toEqual({ code: 0, signal: null });
      }
    } finally {
      await cluster.shutdown(5000).catch(() => undefined);
      await killStray();
      await db.drop();
    }
  }, 60_000);
});
