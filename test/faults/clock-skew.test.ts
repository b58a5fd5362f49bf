/**
 * Clock skew (docs/failure-modes.md, "The clock jumps"): claims, leases and timers of the
 * scale-out mode are timed on the database clock, so processes whose clocks are an hour
 * off (`BATON_CLOCK_SKEW_MS`) must behave like the others.
 *
 * Workers: one with the right time, one an hour ahead, one an hour behind, each of the
 * skewed ones alone able to take one long task per run (labels), 3x the claim lease long.
 * Schedulers: one an hour ahead leads first, then hands over to one an hour behind. At the
 * end: no claim was taken twice or lost (every started attempt ran once and completed
 * once, no completion refused, no attempt lost), the long tasks succeeded at their first
 * attempt in the skewed workers, and every retry was scheduled on the database clock: its
 * `retry_scheduled` time follows the failure within moments (not an hour off), its due
 * time is that plus the delay, and the retry fires then.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../store/pg-helpers.js';
import type { FlowTask, Member, Workspace } from './fault-helpers.js';
import { seededRandom } from '../core/fixtures.js';
import {
  between,
  checkInvariants,
  Cluster,
  createWorkspace,
  enqueueRuns,
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

const HOUR = 3_600_000;
const LEASE_MS = 3000;
const LONG_MS = 3 * LEASE_MS;
const QUICK = 30;
const RUNS_PER_LEADER = 3;
/** A failure is recorded by the scheduler within this of the body's end (harvest latency). */
const RECORD_WITHIN_MS = 3000;
/** A retry fires within this after its due time (a handover in between may delay it). */
const FIRE_WITHIN_MS = 8000;
const TOLERANCE_MS = 100;

let ws: Workspace;

beforeAll(() => {
  ws = createWorkspace('baton-skew-');
});

afterAll(async () => {
  const left = await killStray();
  if (left > 0) console.log(`clock skew: killed ${left} stray process(es)`);
  ws.remove();
});

async function dbNow(url: string): Promise<number> {
  const [row] = await pgQuery<{ now: number }>(
    url,
    'SELECT (extract(epoch from clock_timestamp()) * 1000)::float8 AS now',
  );
  return Math.round(Number(row?.now));
}

describe('clock skew', () => {
  it('workers and schedulers an hour ahead or behind: no claim stolen or lost, retries on the database clock', async () => {
    const seed = seedFrom('FAULTS_SEED');
    const tag = `[clock skew seed ${seed}; rerun with FAULTS_SEED=${seed}]`;
    console.log(`clock skew: seed ${seed}`);
    const rng = seededRandom(seed);
    const began = Date.now();
    const db = await createTestDatabase();
    const cluster = new Cluster(ws.bin, db.url);
    try {
      const base = join(ws.dir, 'skew');
      mkdirSync(base, { recursive: true });
      const journal = join(base, 'journal');
      const config = `lease: ${LEASE_MS / 1000}s\nconcurrency: 8\n`;
      const client = writeProject(base, 'client', config);
      const env = { BATON_DATABASE_URL: db.url };
      const tasks: FlowTask[] = [
        { id: 'long_ahead', ms: LONG_MS, labels: ['ahead'] },
        { id: 'long_behind', ms: LONG_MS, labels: ['behind'] },
        ...Array.from({ length: QUICK }, (_, i) => ({
          id: `q${String(i).padStart(2, '0')}`,
          ms: between(rng, 20, 150),
          failTimes: i % 3 === 0 ? 1 : 0,
          retry: { max_attempts: 3, backoff: `${between(rng, 200, 600)}ms`, max_backoff: '1s', jitter: 'none' },
        })),
      ];
      const flowFile = join(base, 'skew.yaml');
      writeFileSync(flowFile, flowYaml('skew', journal, tasks));
      const dbStart = await dbNow(db.url);

      // The leader first: an hour ahead; then the standby, an hour behind.
      const ahead = cluster.add('s-ahead', 'scheduler', writeProject(base, 's-ahead', config), {
        env: { BATON_CLOCK_SKEW_MS: String(HOUR) },
      });
      await cluster.ready(ahead);
      await waitUntil(() => (ahead.proc.stderr().includes('scheduler: leading') ? true : undefined), {
        timeoutMs: 10_000,
        what: 's-ahead to lead',
      });
      const behind = cluster.add('s-behind', 'scheduler', writeProject(base, 's-behind', config), {
        env: { BATON_CLOCK_SKEW_MS: String(-HOUR) },
      });
      const workers: Member[] = [
        cluster.add('w-right', 'worker', writeProject(base, 'w-right', config)),
        cluster.add('w-ahead', 'worker', writeProject(base, 'w-ahead', config), {
          env: { BATON_CLOCK_SKEW_MS: String(HOUR) },
          args: ['--labels', 'ahead'],
        }),
        cluster.add('w-behind', 'worker', writeProject(base, 'w-behind', config), {
          env: { BATON_CLOCK_SKEW_MS: String(-HOUR) },
          args: ['--labels', 'behind'],
        }),
      ];
      await Promise.all([behind, ...workers].map((m) => cluster.ready(m)));

      const ids = await enqueueRuns(ws.bin, flowFile, RUNS_PER_LEADER, { cwd: client, env, parallel: RUNS_PER_LEADER });
      // Let the first leader drive the quick tasks and their retries, then hand over
      // while the long tasks run.
      await sleep(4000);
      const handover = await cluster.signal(ahead, 'SIGTERM');
      await waitUntil(() => (behind.proc.stderr().includes('scheduler: leading') ? true : undefined), {
        timeoutMs: 10_000,
        what: 's-behind to lead',
      });
      ids.push(
        ...(await enqueueRuns(ws.bin, flowFile, RUNS_PER_LEADER, { cwd: client, env, parallel: RUNS_PER_LEADER })),
      );
      await waitUntil(
        async () => {
          const states = await runStates(db.url, ids);
          return [...states.values()].filter((s) => TERMINAL.has(s)).length === ids.length ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, what: 'every run to end' },
      ).catch((error: unknown) => {
        throw new Error(
          `${tag} ${(error as Error).message}\n` +
            cluster.members.map((m) => `--- ${m.name}\n${stderrAll(m).slice(-2000)}`).join('\n'),
        );
      });
      const dbEnd = await dbNow(db.url);
      const exits = await cluster.shutdown();
      await sleep(LEASE_MS + 500);
      const report = await checkInvariants(db.url, {
        runIds: ids,
        tasksPerRun: tasks.length,
        journal,
        retryToleranceMs: TOLERANCE_MS,
      });

      // Every event of these runs is stamped on the database clock.
      const [span] = await pgQuery<{ min: number; max: number }>(
        db.url,
        'SELECT min(at)::float8 AS min, max(at)::float8 AS max FROM events WHERE run_id = ANY($1::text[]) AND seq > 1',
        [ids],
      );
      // Retries: scheduled right after the failure (database time), due at that plus the
      // delay, fired then; the retry's body began after the due time.
      const ends = readEnds(journal);
      const bodies = readJournal(journal);
      const retryProblems: string[] = [];
      let recordLagMax = 0;
      let fireLagMax = 0;
      let retries = 0;
      for (const [k, trail] of report.trails) {
        const [runId = '', task = ''] = k.split(' ');
        trail.forEach((f, i) => {
          if (f.type !== 'retry_scheduled' || f.dueAt === undefined) return;
          retries++;
          const failed = trail[i - 1];
          const queued = trail[i + 1];
          const attempt = failed?.attempt ?? -1;
          const end = ends.find((e) => e.run === runId && e.task === task && e.attempt === attempt);
          const next = bodies.find((b) => b.run === runId && b.task === task && b.attempt === attempt + 1);
          if (!end || !queued || !next) {
            retryProblems.push(`${k}: incomplete retry trail after attempt ${attempt}`);
            return;
          }
          const recordLag = f.at - end.at;
          const fireLag = queued.at - f.dueAt;
          recordLagMax = Math.max(recordLagMax, recordLag);
          fireLagMax = Math.max(fireLagMax, fireLag);
          if (recordLag < -TOLERANCE_MS || recordLag > RECORD_WITHIN_MS) {
            retryProblems.push(`${k}: retry_scheduled at ${f.at}, ${recordLag} ms after the body ended (${end.at})`);
          }
          if (fireLag < -TOLERANCE_MS || fireLag > FIRE_WITHIN_MS) {
            retryProblems.push(`${k}: retry due ${f.dueAt} fired ${fireLag} ms after it`);
          }
          if (next.at < f.dueAt - TOLERANCE_MS) {
            retryProblems.push(`${k}: attempt ${attempt + 1} began at ${next.at}, before its due time ${f.dueAt}`);
          }
        });
      }
      const longs = bodies.filter((b) => b.task.startsWith('long_'));
      const pidOf = (name: string) => cluster.members.find((m) => m.name === name)?.proc.pid;
      const refused = workers.reduce((n, m) => n + refusedCompletions(stderrAll(m)), 0);
      const claimTrouble = workers.flatMap((m) =>
        stderrAll(m)
          .split('\n')
          .filter((l) => /claim failed|renewing claims failed|refused/.test(l)),
      );
      console.log(
        [
          `clock skew summary (seed ${seed})`,
          `  runs ${report.counts.runs}, task runs ${report.counts.tasks}, successes ${report.counts.successes}; attempts started ${report.counts.startedAttempts}, lost ${report.counts.lostAttempts}, bodies run ${report.counts.bodies}`,
          `  long tasks (${LONG_MS} ms, claim lease ${LEASE_MS} ms): ${longs.length} bodies, all attempt 1: ${longs.every((b) => b.attempt === 1)}`,
          `  completions refused ${refused}; claim trouble lines ${claimTrouble.length}`,
          `  retries ${retries}: recorded at most ${recordLagMax} ms after the failure, fired at most ${fireLagMax} ms after due (min ${report.counts.minRetryMarginMs} ms)`,
          `  event times on the database clock: first ${(span?.min ?? 0) - dbStart} ms after the test began, last ${dbEnd - (span?.max ?? 0)} ms before it ended`,
          `  handover exit ${JSON.stringify(handover)}; elapsed ${((Date.now() - began) / 1000).toFixed(1)} s`,
        ].join('\n'),
      );

      expect(report.problems.slice(0, 30), `${tag} ${report.problems.length} problem(s)`).toEqual([]);
      expect(cluster.unexpectedExits(), tag).toEqual([]);
      expect(handover, `${tag} s-ahead on SIGTERM`).toEqual({ code: 0, signal: null });
      for (const e of exits) {
        if (e.member !== 's-ahead')
          expect(e.exit, `${tag} ${e.member} on SIGTERM${e.detail}`).toEqual({ code: 0, signal: null });
      }
      // No claim stolen, none lost: each started attempt's body ran once and completed once.
      expect(report.counts.lostAttempts, tag).toBe(0);
      expect(report.counts.bodies, tag).toBe(report.counts.startedAttempts);
      expect(refused, tag).toBe(0);
      expect(claimTrouble, tag).toEqual([]);
      // The long tasks ran once each, in the skewed workers, and succeeded under their claim.
      expect(longs).toHaveLength(2 * ids.length);
      for (const b of longs) {
        expect(b.attempt, `${tag} ${b.run} ${b.task}`).toBe(1);
        expect(b.pid, `${tag} ${b.run} ${b.task}`).toBe(pidOf(b.task === 'long_ahead' ? 'w-ahead' : 'w-behind'));
      }
      // Times on the database clock, not an hour off.
      expect(span?.min ?? 0, tag).toBeGreaterThanOrEqual(dbStart - TOLERANCE_MS);
      expect(span?.max ?? 0, tag).toBeLessThanOrEqual(dbEnd + TOLERANCE_MS);
      expect(retries, `${tag} retries scheduled`).toBeGreaterThan(0);
      expect(retryProblems, tag).toEqual([]);
    } finally {
      await cluster.shutdown(5000).catch(() => undefined);
      await killStray();
      await db.drop();
    }
  }, 120_000);
});
