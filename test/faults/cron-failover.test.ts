/**
 * Schedules across scheduler failover on PostgreSQL (DESIGN.md: "no cron tick fires
 * twice"): two `baton scheduler` processes and one `baton worker` on a fresh database, a
 * flow with an interval trigger firing every 2 s, and the leading scheduler SIGKILLed and
 * restarted 4 times over ~40 s. At the end:
 * - exactly one run per (trigger, fire time): dedupe keys unique, one run per interval,
 *   one `run` firing per run and no `deduplicated` or `error` firing;
 * - every fire time on the 2 s grid from the trigger's recording to the last run either has
 *   its run or was recorded as skipped by the default catch-up policy `latest` (each gap
 *   matches one `skipped` firing that names its newest fire time and counts it exactly);
 * - each gap is bounded (a failover costs the lease plus a tick or two), and every run
 *   the schedule created succeeded with the durable-execution invariants of
 *   fault-helpers.ts.
 *
 * `FAULTS_SEED=<n>` reproduces the kill times; `FAULTS_KEEP=1` keeps the temp folder.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../store/pg-helpers.js';
import type { Member, Workspace } from './fault-helpers.js';
import { seededRandom } from '../core/fixtures.js';
import {
  between,
  checkInvariants,
  Cluster,
  createWorkspace,
  describeCli,
  flowYaml,
  killStray,
  pgQuery,
  runBaton,
  seedFrom,
  sleep,
  stderrAll,
  waitUntil,
  writeProject,
} from './fault-helpers.js';

const EVERY_MS = 2000;
const LEASE_MS = 2000;
const KILLS = 4;
/** Time between leader kills, ms: ~40 s for 4 kills. */
const KILL_EVERY_MS = [8000, 11_000] as const;
/** The whole test, failovers and the final drain, must fit in this. */
const BUDGET_MS = 150_000;
/** Longest acceptable gap between consecutive runs: lease, leadership retry, service start, a tick, margin. */
const MAX_GAP_MS = 12_000;
const TRIGGER = 'tick/every2s';

let ws: Workspace;

beforeAll(() => {
  ws = createWorkspace('baton-cron-failover-');
});

afterAll(async () => {
  const left = await killStray();
  if (left > 0) console.log(`cron failover: killed ${left} stray process(es)`);
  ws.remove();
});

interface RunRow {
  readonly id: string;
  readonly dedupe_key: string;
  readonly state: string;
  readonly created_at: number;
  readonly interval_end: string;
  readonly interval_start: string;
}

interface FiringRow {
  readonly seq: number;
  readonly at: number;
  readonly outcome: string;
  readonly reason: string;
  readonly run_id: string | null;
  readonly dedupe_key: string | null;
}

describe('cron failover', () => {
  it('SIGKILLing the leading scheduler 4 times: one run per fire time, gaps only where catch-up skipped them', async () => {
    const seed = seedFrom('FAULTS_SEED');
    const tag = `[cron failover seed ${seed}; rerun with FAULTS_SEED=${seed}]`;
    const rng = seededRandom(seed);
    const began = Date.now();
    const db = await createTestDatabase();
    const cluster = new Cluster(ws.bin, db.url);
    try {
      const base = join(ws.dir, 'failover');
      mkdirSync(base, { recursive: true });
      const journal = join(base, 'journal');
      // One project for every process: the trigger is recorded with this flow file.
      const dir = writeProject(base, 'project', `lease: ${LEASE_MS / 1000}s\nconcurrency: 8\n`);
      mkdirSync(join(dir, 'flows'));
      writeFileSync(
        join(dir, 'flows', 'tick.yaml'),
        flowYaml('tick', journal, [{ id: 'work', ms: 50 }]).replace(
          '\ntasks:',
          `\ntriggers:\n  every2s:\n    kind: interval\n    every: ${EVERY_MS / 1000}s\ntasks:`,
        ),
      );
      const env = { BATON_DATABASE_URL: db.url };

      const schedulers: Member[] = [cluster.add('s1', 'scheduler', dir), cluster.add('s2', 'scheduler', dir)];
      const worker = cluster.add('w1', 'worker', dir);
      await Promise.all([...schedulers, worker].map((m) => cluster.ready(m)));

      /** The scheduler holding a live leadership lease, once its process is ours and alive. */
      const leader = async (): Promise<Member | undefined> => {
        const [row] = await pgQuery<{ holder: string }>(
          db.url,
          "SELECT holder FROM leadership WHERE name = 'scheduler' AND lease_until >= baton_now()",
        );
        const pid = Number(row?.holder.split('/')[1]);
        return schedulers.find((m) => m.proc.pid === pid && m.proc.exit === null);
      };
      const runCount = async () =>
        Number(
          (
            await pgQuery<{ n: number }>(db.url, 'SELECT count(*)::int AS n FROM runs WHERE trigger_id = $1', [TRIGGER])
          )[0]?.n,
        );

      // Steady state first: a leader, and the schedule creating runs.
      await waitUntil(async () => ((await runCount()) >= 2 ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 200,
        what: 'the first scheduled runs',
      });

      const kills: { member: string; atMs: number; runsBefore: number }[] = [];
      for (let k = 0; k < KILLS && Date.now() - began < BUDGET_MS / 2; k++) {
        await sleep(between(rng, KILL_EVERY_MS[0], KILL_EVERY_MS[1]));
        const victim = await waitUntil(leader, { timeoutMs: 20_000, intervalMs: 100, what: 'a live leader' });
        kills.push({ member: victim.name, atMs: Date.now() - began, runsBefore: await runCount() });
        await cluster.killAndRestart(victim);
      }
      // A new leader after the last kill, and a few more fire times under it.
      await waitUntil(leader, { timeoutMs: 20_000, intervalMs: 100, what: 'a leader after the last kill' });
      const settled = await runCount();
      await waitUntil(async () => ((await runCount()) >= settled + 3 ? true : undefined), {
        timeoutMs: 20_000,
        intervalMs: 200,
        what: 'runs under the last leader',
      });

      // Stop the schedule and let the worker finish what it created.
      const paused = await runBaton(ws.bin, ['triggers', 'pause', TRIGGER], { cwd: dir, env, timeoutMs: 30_000 });
      expect(paused.code, describeCli(paused)).toBe(0);
      // A tick in flight when the pause landed may still create one run: wait for quiet.
      await sleep(1500);
      await waitUntil(
        async () => {
          const [row] = await pgQuery<{ n: number }>(
            db.url,
            "SELECT count(*)::int AS n FROM runs WHERE trigger_id = $1 AND state NOT IN ('succeeded', 'failed', 'cancelled')",
            [TRIGGER],
          );
          return row?.n === 0 ? true : undefined;
        },
        { timeoutMs: Math.max(10_000, BUDGET_MS - (Date.now() - began)), intervalMs: 250, what: 'every run to end' },
      );
      const shutdown = await cluster.shutdown();
      const unexpected = cluster.unexpectedExits();

      const runs = await pgQuery<RunRow>(
        db.url,
        `SELECT id, dedupe_key, state, created_at::float8 AS created_at, params->>'interval_end' AS interval_end,
           params->>'interval_start' AS interval_start
         FROM runs WHERE trigger_id = $1 ORDER BY params->>'interval_end'`,
        [TRIGGER],
      );
      const firings = await pgQuery<FiringRow>(
        db.url,
        'SELECT seq::int AS seq, at::float8 AS at, outcome, reason, run_id, dedupe_key FROM trigger_firings WHERE trigger_id = $1 ORDER BY seq',
        [TRIGGER],
      );
      const problems: string[] = [];

      // Exactly one run per fire time.
      const fireTimes = runs.map((r) => Date.parse(r.interval_end));
      if (new Set(runs.map((r) => r.dedupe_key)).size !== runs.length) problems.push('a dedupe key repeats');
      if (new Set(fireTimes).size !== runs.length) problems.push('a fire time has two runs');
      for (const r of runs) {
        const t = Date.parse(r.interval_end);
        if (r.dedupe_key !== `${TRIGGER}@${r.interval_end}`) problems.push(`run ${r.id}: dedupe key ${r.dedupe_key}`);
        if (t % EVERY_MS !== 0)
          problems.push(`run ${r.id}: fire time ${r.interval_end} is off the ${EVERY_MS} ms grid`);
        if (Date.parse(r.interval_start) !== t - EVERY_MS) problems.push(`run ${r.id}: interval ${r.interval_start}`);
      }
      const ran = firings.filter((f) => f.outcome === 'run');
      const byOutcome = (o: string) => firings.filter((f) => f.outcome === o).length;
      if (ran.length !== runs.length) problems.push(`${ran.length} run firings for ${runs.length} runs`);
      if (new Set(ran.map((f) => f.run_id)).size !== ran.length) problems.push('two run firings name one run');
      if (byOutcome('deduplicated') > 0) problems.push(`${byOutcome('deduplicated')} deduplicated firing(s)`);
      if (byOutcome('error') > 0) problems.push(`${byOutcome('error')} error firing(s)`);

      // Gaps: each must be one `skipped` firing of the catch-up policy, naming its newest
      // missed fire time and counting every missed one.
      const skips = new Map<number, number>();
      for (const f of firings.filter((x) => x.outcome === 'skipped')) {
        const m = /^(\d+) missed fire time\(s\) skipped by catch-up policy latest \(latest skipped (\S+)\)$/.exec(
          f.reason,
        );
        if (!m) problems.push(`unexpected skipped firing: ${f.reason}`);
        else skips.set(Date.parse(m[2] as string), Number(m[1]));
      }
      const gaps: { after: string; missed: number; ms: number }[] = [];
      for (let i = 1; i < fireTimes.length; i++) {
        const prev = fireTimes[i - 1] as number;
        const cur = fireTimes[i] as number;
        const missed = (cur - prev) / EVERY_MS - 1;
        if (missed === 0) continue;
        gaps.push({ after: new Date(prev).toISOString(), missed, ms: cur - prev });
        const recorded = skips.get(cur - EVERY_MS);
        if (recorded !== missed) {
          problems.push(
            `${missed} fire time(s) between ${new Date(prev).toISOString()} and ${new Date(cur).toISOString()} have no run; skipped firing says ${recorded ?? 'nothing'}`,
          );
        }
        skips.delete(cur - EVERY_MS);
        if (cur - prev > MAX_GAP_MS) problems.push(`a gap of ${cur - prev} ms after ${new Date(prev).toISOString()}`);
      }
      // Before the first run: fire times after the trigger was recorded that the first tick
      // found already past (a busy machine starts the first leader's trigger service late)
      // are one skipped firing naming the fire time before the first run.
      const [registered] = await pgQuery<{ at: number }>(
        db.url,
        'SELECT registered_at::float8 AS at FROM triggers WHERE id = $1',
        [TRIGGER],
      );
      const first = fireTimes[0];
      if (registered && first !== undefined) {
        const missed = Math.ceil((first - registered.at) / EVERY_MS) - 1;
        const recorded = skips.get(first - EVERY_MS);
        if (missed > 0) gaps.push({ after: `the trigger was recorded`, missed, ms: first - registered.at });
        if ((recorded ?? 0) !== missed) {
          problems.push(
            `${missed} fire time(s) between the trigger's recording at ${new Date(registered.at).toISOString()} and the first run have no run; skipped firing says ${recorded ?? 'nothing'}`,
          );
        }
        skips.delete(first - EVERY_MS);
        if (first - registered.at > MAX_GAP_MS)
          problems.push(`the first run came ${first - registered.at} ms after the trigger was recorded`);
      }
      for (const [t, n] of skips) {
        problems.push(`a skipped firing of ${n} fire time(s) up to ${new Date(t).toISOString()} matches no gap`);
      }
      const delays = runs.map((r) => r.created_at - Date.parse(r.interval_end));
      const report = await checkInvariants(db.url, { runIds: runs.map((r) => r.id), tasksPerRun: 1, journal });
      problems.push(...report.problems);

      const accessions = schedulers.reduce(
        (n, m) => n + (stderrAll(m).match(/baton scheduler: leading/g) ?? []).length,
        0,
      );
      console.log(
        [
          `cron failover (seed ${seed}): ${((Date.now() - began) / 1000).toFixed(1)} s`,
          `  leader SIGKILLs ${kills.length} at ${kills.map((k) => `${k.member}@${(k.atMs / 1000).toFixed(1)}s`).join(' ')}; leadership accessions ${accessions}`,
          `  runs ${runs.length} from ${runs[0]?.interval_end} to ${runs.at(-1)?.interval_end}; firings: run ${ran.length}, skipped ${byOutcome('skipped')}, deduplicated ${byOutcome('deduplicated')}, error ${byOutcome('error')}`,
          `  skipped by catch-up policy latest: ${gaps.reduce((n, g) => n + g.missed, 0)} fire time(s) in ${gaps.length} gap(s): ${gaps.map((g) => `${g.missed} after ${g.after} (${g.ms} ms)`).join('; ') || 'none'}`,
          `  run created after its fire time: max ${Math.max(...delays)} ms, median ${[...delays].sort((a, b) => a - b)[Math.floor(delays.length / 2)]} ms`,
          `  task bodies ${report.counts.bodies}, lost attempts ${report.counts.lostAttempts}`,
        ].join('\n'),
      );

      expect(unexpected, `${tag} processes that died by themselves`).toEqual([]);
      expect(
        shutdown.filter((s) => s.exit.code !== 0).map((s) => `${s.member}: ${s.exit.code ?? s.exit.signal}${s.detail}`),
        `${tag} clean shutdown`,
      ).toEqual([]);
      expect(kills.length, `${tag} leader kills`).toBe(KILLS);
      expect(accessions, `${tag} a new leader after every kill`).toBeGreaterThanOrEqual(KILLS + 1);
      expect(problems, tag).toEqual([]);
      // ~45 s of schedule at one run per 2 s, less what failovers skipped.
      expect(runs.length, tag).toBeGreaterThanOrEqual(12);
      expect(Date.now() - began, `${tag} time`).toBeLessThan(BUDGET_MS + 30_000);
    } finally {
      await cluster.shutdown(5000).catch(() => undefined);
      await killStray();
      await db.drop();
    }
  });
});
