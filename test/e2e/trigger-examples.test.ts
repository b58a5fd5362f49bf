/**
 * The trigger examples run as their READMEs say, each on a copy in a temp folder (so that
 * no .baton/, warehouse/ or processed/ is left in the repository), bounded in time:
 * - cron-etl: the trigger service with an injected clock and a real engine. One night
 *   fires on time; then the process is down for eight nights, and the next start catches
 *   up on the five most recent (max_catchup) with their data intervals, across the
 *   spring-forward night in Berlin, records the three older ones as skipped, and reports
 *   the catch-up runs that are still queued an hour after their fire time as deadline_missed.
 * - file-drop: the real `baton dev --no-webhooks` (a snapshot of bin/ and dist/, since
 *   another build may rewrite dist/ meanwhile); a CSV dropped into inbox/ is loaded by one
 *   run and moved to processed/ after it.
 * - stream-consumer: the Redis at 127.0.0.1:6379, a stream of its own per test; entries
 *   become runs of at most 10 messages, each entry in exactly one run, all acknowledged.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import { openRuntime } from '../../src/app/runtime.js';
import { isTerminalRun } from '../../src/core/states.js';
import type { RunRecord } from '../../src/store/store.js';
import type { CliResult, RunJson, ShowJson } from './cli-helpers.js';
import { REPO_ROOT, describeResult, waitFor } from './cli-helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A copy of examples/<name> in a fresh temp folder, without what running it by hand leaves. */
function copyExample(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `baton-${name}-`));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const skip = new Set(['.baton', 'warehouse', 'processed']);
  cpSync(join(REPO_ROOT, 'examples', name), dir, {
    recursive: true,
    filter: (src) => !skip.has(basename(src)),
  });
  return dir;
}

async function openProject(dir: string): Promise<Runtime> {
  const rt = await openRuntime({ cwd: dir, env: {} });
  cleanups.push(() => rt.close());
  return rt;
}

/** The runs of a flow once `count` of them exist and all have ended, oldest first. */
function finishedRuns(rt: Runtime, flow: string, count: number, timeoutMs = 30_000): Promise<RunRecord[]> {
  return waitFor(
    async () => {
      const runs = await rt.store.listRuns({ flow, limit: 1000 });
      return runs.length === count && runs.every((r) => isTerminalRun(r.state))
        ? [...runs].sort((a, b) => String(a.params.interval_end).localeCompare(String(b.params.interval_end)))
        : undefined;
    },
    { timeoutMs, intervalMs: 50, what: `${count} finished run(s) of ${flow}` },
  );
}

const at = (iso: string) => Date.parse(iso);

describe('examples/cron-etl', () => {
  it('fires nightly in Berlin time and, after eight nights down, catches up on the five most recent with their data intervals', async () => {
    const dir = copyExample('cron-etl');
    let clock = at('2024-03-25T12:00:00Z');
    const now = () => clock;
    const TRIGGER = 'daily_orders/nightly';

    // First life: registered at noon on March 25; the first fire time is 02:00 CET on the 26th.
    const rt1 = await openProject(dir);
    // A tick every hour of real time: the test drives every evaluation itself with tick().
    const service1 = rt1.createTriggerService({ now, tickMs: 3_600_000 });
    await service1.start();
    cleanups.push(() => service1.stop());
    expect((await rt1.store.getTrigger(TRIGGER))?.nextFireAt).toBe(at('2024-03-26T01:00:00Z'));
    const engine1 = rt1.createEngine({ pollMs: 50 });
    engine1.startWorker();
    cleanups.push(() => engine1.stop());

    clock = at('2024-03-26T01:00:05Z');
    await service1.tick();
    const [first] = await finishedRuns(rt1, 'daily_orders', 1);
    expect(first).toMatchObject({
      state: 'succeeded',
      params: { interval_start: '2024-03-25T01:00:00.000Z', interval_end: '2024-03-26T01:00:00.000Z' },
    });
    await service1.stop();
    await engine1.drain();
    await rt1.close();

    // Down until 02:00:20 CEST on April 3: eight fire times were missed, the spring-forward
    // night of March 31 among them (02:00 does not exist there; croner fires at 03:00 CEST).
    clock = at('2024-04-03T00:00:20Z');
    const rt2 = await openProject(dir);
    const service2 = rt2.createTriggerService({ now, tickMs: 3_600_000 });
    await service2.start();
    cleanups.push(() => service2.stop());
    const created = await rt2.store.listRuns({ flow: 'daily_orders', limit: 100 });
    const intervals = created
      .filter((r) => r.id !== first?.id)
      .map((r) => [r.params.interval_start, r.params.interval_end])
      .sort((a, b) => String(a[1]).localeCompare(String(b[1])));
    expect(intervals).toEqual([
      ['2024-03-29T01:00:00.000Z', '2024-03-30T01:00:00.000Z'],
      ['2024-03-30T01:00:00.000Z', '2024-03-31T01:00:00.000Z'],
      // The first night of summer time: 02:00 CET → 02:00 CEST is 23 hours.
      ['2024-03-31T01:00:00.000Z', '2024-04-01T00:00:00.000Z'],
      ['2024-04-01T00:00:00.000Z', '2024-04-02T00:00:00.000Z'],
      ['2024-04-02T00:00:00.000Z', '2024-04-03T00:00:00.000Z'],
    ]);
    expect((await rt2.store.getTrigger(TRIGGER))?.nextFireAt).toBe(at('2024-04-04T00:00:00Z'));

    // No worker yet: the next evaluation finds the four oldest catch-up runs still queued more
    // than an hour (the deadline) after their fire times; the newest is 20 s late, within it.
    clock = at('2024-04-03T00:00:30Z');
    await service2.tick();
    await service2.tick();
    const history = await rt2.store.listFirings(TRIGGER, 100);
    const outcomes = history.map((f) => f.outcome).reverse();
    expect(outcomes).toEqual([
      'run',
      'skipped',
      'run',
      'run',
      'run',
      'run',
      'run',
      'deadline_missed',
      'deadline_missed',
      'deadline_missed',
      'deadline_missed',
    ]);
    const skipped = history.find((f) => f.outcome === 'skipped');
    expect(skipped?.reason).toBe(
      '3 missed fire time(s) skipped by catch-up policy all (latest skipped 2024-03-29T01:00:00.000Z)',
    );
    const late = history.filter((f) => f.outcome === 'deadline_missed');
    const lateRuns = await Promise.all(late.map((f) => rt2.store.getRun(f.runId as string)));
    expect(lateRuns.map((r) => r?.params.interval_end).sort()).toEqual([
      '2024-03-30T01:00:00.000Z',
      '2024-03-31T01:00:00.000Z',
      '2024-04-01T00:00:00.000Z',
      '2024-04-02T00:00:00.000Z',
    ]);
    for (const f of history.filter((h) => h.outcome === 'run')) {
      const run = await rt2.store.getRun(f.runId as string);
      expect(f.dedupeKey).toBe(`${TRIGGER}@${String(run?.params.interval_end)}`);
    }

    // A second service over the same store (another scheduler, a restart) creates nothing twice.
    const service3 = rt2.createTriggerService({ now, tickMs: 3_600_000 });
    await service3.start();
    await service3.stop();
    expect(await rt2.store.listRuns({ flow: 'daily_orders', limit: 100 })).toHaveLength(6);

    const engine2 = rt2.createEngine({ pollMs: 50 });
    engine2.startWorker();
    cleanups.push(() => engine2.stop());
    const runs = await finishedRuns(rt2, 'daily_orders', 6);
    expect(runs.map((r) => r.state)).toEqual(Array(6).fill('succeeded'));
    const warehouse = readdirSync(join(dir, 'warehouse')).sort();
    expect(warehouse).toEqual([
      'orders_2024-03-25T01.json',
      'orders_2024-03-29T01.json',
      'orders_2024-03-30T01.json',
      'orders_2024-03-31T01.json',
      'orders_2024-04-01T00.json',
      'orders_2024-04-02T00.json',
    ]);
    const short = JSON.parse(readFileSync(join(dir, 'warehouse', 'orders_2024-03-31T01.json'), 'utf8')) as {
      interval_start: string;
      interval_end: string;
      orders: unknown[];
    };
    expect(short).toMatchObject({
      interval_start: '2024-03-31T01:00:00.000Z',
      interval_end: '2024-04-01T00:00:00.000Z',
    });
    expect(short.orders).toHaveLength(23);
    const dstRun = runs.find((r) => r.params.interval_end === '2024-04-01T00:00:00.000Z') as RunRecord;
    const logs = await rt2.store.readLogs(dstRun.id, { task: 'report' });
    expect(logs.map((l) => l.text)).toContain(
      'loaded 23 orders of 2024-03-31T01:00:00.000Z .. 2024-04-01T00:00:00.000Z into warehouse/orders_2024-03-31T01.json',
    );
  }, 60_000);
});

// --- file-drop: the real CLI ------------------------------------------------------------

/** A snapshot of the built CLI (bin/, dist/, package.json, a link to node_modules). */
let app = '';
beforeAll(() => {
  app = mkdtempSync(join(tmpdir(), 'baton-app-'));
  cpSync(join(REPO_ROOT, 'bin'), join(app, 'bin'), { recursive: true });
  cpSync(join(REPO_ROOT, 'dist'), join(app, 'dist'), { recursive: true });
  copyFileSync(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
});
afterAll(() => {
  // Unlink first: the link points at the project's own node_modules.
  rmSync(join(app, 'node_modules'), { force: true });
  rmSync(app, { recursive: true, force: true });
});

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BATON_')) env[k] = v;
  return env;
}

interface Background {
  readonly child: ChildProcess;
  stderr(): string;
  readonly done: Promise<CliResult>;
}

/** `baton <args>` from the snapshot, in `cwd`, killed (and failing) after `timeoutMs`. */
function startSnapshot(args: readonly string[], cwd: string, timeoutMs: number): Background {
  const child = spawn(process.execPath, [join(app, 'bin', 'baton.js'), ...args], {
    cwd,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`baton ${args.join(' ')} outlived ${timeoutMs} ms\n--- stderr\n${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await done.catch(() => undefined);
      throw new Error(`the test left baton ${args.join(' ')} running`);
    }
  });
  return { child, stderr: () => stderr, done };
}

async function snapshot<T>(args: readonly string[], cwd: string): Promise<T> {
  const result = await startSnapshot(args, cwd, 20_000).done;
  if (result.code !== 0) throw new Error(`baton ${args.join(' ')}: ${describeResult(result)}`);
  return JSON.parse(result.stdout) as T;
}

/** Writes aside (a dotfile, never matched) and renames into the inbox, as the README says. */
function drop(dir: string, name: string, text: string): void {
  const aside = join(dir, 'inbox', `.${name}.part`);
  writeFileSync(aside, text);
  renameSync(aside, join(dir, 'inbox', name));
}

describe('examples/file-drop', () => {
  it('loads a CSV dropped into inbox/ with one run under `baton dev`, then moves it to processed/', async () => {
    const dir = realpathSync(copyExample('file-drop'));
    const dev = startSnapshot(['dev', '--no-webhooks'], dir, 60_000);
    await waitFor(() => (dev.stderr().includes('executing runs and 1 trigger(s)') ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: `baton dev to start; stderr so far:\n${dev.stderr()}`,
    });

    const sample = readFileSync(join(dir, 'samples', 'orders-2024-03-01.csv'), 'utf8');
    drop(dir, 'orders-2024-03-01.csv', sample);
    await waitFor(() => (existsSync(join(dir, 'processed', 'orders-2024-03-01.csv')) ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: `the file to reach processed/; baton dev said:\n${dev.stderr()}`,
    });
    expect(existsSync(join(dir, 'inbox', 'orders-2024-03-01.csv'))).toBe(false);
    const [run] = await snapshot<RunJson[]>(['runs', '--json'], dir);
    expect(run).toMatchObject({
      flow: 'ingest_orders',
      state: 'succeeded',
      params: { file: join(dir, 'inbox', 'orders-2024-03-01.csv') },
    });
    const show = await snapshot<ShowJson>(['show', run?.id as string, '--json'], dir);
    expect(show.tasks.find((t) => t.id === 'parse')?.output).toEqual({
      file: 'orders-2024-03-01.csv',
      rows: 3,
      total: 245.75,
    });

    // The same name again with other content: a new file, a second run; processed/ keeps the
    // first one and the second gets its run id as a suffix.
    drop(dir, 'orders-2024-03-01.csv', `${sample}4,umbrella,4.25\n`);
    const second = await waitFor(
      async () => {
        const runs = await snapshot<RunJson[]>(['runs', '--json'], dir);
        const newer = runs.find((r) => r.id !== run?.id && r.state === 'succeeded');
        return newer && existsSync(join(dir, 'processed', `orders-2024-03-01.${newer.id}.csv`)) ? newer : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'the second file to be loaded and moved' },
    );
    expect(readFileSync(join(dir, 'processed', `orders-2024-03-01.${second.id}.csv`), 'utf8')).toContain('umbrella');
    expect(readFileSync(join(dir, 'processed', 'orders-2024-03-01.csv'), 'utf8')).toBe(sample);

    // The firing history, read from the store (`baton triggers history` prints the same rows).
    const rt = await openProject(dir);
    const history = await rt.store.listFirings('ingest_orders/inbox', 10);
    expect(history.map((h) => [h.outcome, h.runId])).toEqual([
      ['run', second.id],
      ['run', run?.id],
    ]);
    expect(history[1]?.dedupeKey).toMatch(/^ingest_orders\/inbox:file:orders-2024-03-01\.csv:/);
    expect(history[1]?.reason).toBe('file orders-2024-03-01.csv arrived (64 bytes)');

    dev.child.kill('SIGTERM');
    const result = await dev.done;
    expect(result.code, describeResult(result)).toBe(0);
  }, 90_000);
});

// --- stream-consumer: the real Redis ------------------------------------------------------

describe('examples/stream-consumer', () => {
  it('turns Redis stream entries into runs of at most 10 messages, each entry once, acknowledged after its run', async () => {
    const dir = copyExample('stream-consumer');
    const stream = `baton-e2e-orders-${randomBytes(6).toString('hex')}`;
    const flowFile = join(dir, 'flows', 'order_events.yaml');
    const text = readFileSync(flowFile, 'utf8');
    expect(text).toContain('stream: orders\n');
    writeFileSync(flowFile, text.replace('stream: orders\n', `stream: ${stream}\n`));

    const redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    cleanups.push(async () => {
      await redis.del(stream);
      await redis.quit();
    });
    // 25 entries before the consumer starts (its group is created at the start of the stream).
    const ids: string[] = [];
    for (let i = 1; i <= 25; i++) {
      ids.push((await redis.xadd(stream, '*', 'event', JSON.stringify({ order: `o${i}`, amount: i }))) as string);
    }

    const rt = await openProject(dir);
    const service = rt.createTriggerService();
    await service.start();
    cleanups.push(() => service.stop());
    const engine = rt.createEngine({ pollMs: 50 });
    engine.startWorker();
    cleanups.push(() => engine.stop());

    const batches = await waitFor(
      async () => {
        const runs = (await rt.store.listRuns({ flow: 'order_events', limit: 100 })).filter((r) =>
          isTerminalRun(r.state),
        );
        const seen = runs.reduce((n, r) => n + (r.params.messages as unknown[]).length, 0);
        return seen >= 25 ? runs : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'runs for the 25 entries' },
    );
    // Read 10 at a time from a stream that already held 25: 10, 10 and 5.
    const sizes = batches.map((r) => (r.params.messages as unknown[]).length).sort((a, b) => b - a);
    expect(sizes).toEqual([10, 10, 5]);

    // Three more, while the consumer waits.
    for (let i = 26; i <= 28; i++) {
      ids.push((await redis.xadd(stream, '*', 'event', JSON.stringify({ order: `o${i}`, amount: i }))) as string);
    }
    const all = await waitFor(
      async () => {
        const runs = await rt.store.listRuns({ flow: 'order_events', limit: 100 });
        const done = runs.every((r) => isTerminalRun(r.state));
        const seen = runs.reduce((n, r) => n + (r.params.messages as unknown[]).length, 0);
        return done && seen >= 28 ? runs : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'runs for all 28 entries' },
    );
    expect(all.map((r) => r.state)).toEqual(all.map(() => 'succeeded'));
    const messages = all.flatMap((r) => r.params.messages as { id: string; stream: string; data: unknown }[]);
    expect(messages.map((m) => m.id).sort()).toEqual([...ids].sort());
    expect(all.every((r) => (r.params.messages as unknown[]).length <= 10)).toBe(true);
    expect(messages.find((m) => m.id === ids[0])).toMatchObject({ stream, data: { order: 'o1', amount: 1 } });

    let total = 0;
    for (const run of all) {
      const parse = (await rt.store.getTaskRuns(run.id)).find((t) => t.taskId === 'parse');
      total += (parse?.output as { total: number }).total;
    }
    expect(total).toBe((28 * 29) / 2);

    // Every entry acknowledged: nothing pending in the group.
    const pending = await waitFor(
      async () => {
        const [count] = (await redis.xpending(stream, 'baton')) as [number, ...unknown[]];
        return count === 0 ? count : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: 'the group to have nothing pending' },
    );
    expect(pending).toBe(0);
    const firings = await rt.store.listFirings('order_events/orders', 100);
    expect(firings.every((f) => f.outcome === 'run')).toBe(true);
    expect(firings.map((f) => f.dedupeKey).sort()).toEqual(all.map((r) => r.dedupeKey).sort() as string[]);
  }, 90_000);
});
