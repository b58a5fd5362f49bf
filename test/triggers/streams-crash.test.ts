/**
 * The crash test of the stream triggers (DESIGN.md: "a stream offset is committed only
 * after the run that it caused is committed"; "after kill -9 at any instant ... nothing is
 * lost"). For each broker, a real `baton dev --no-webhooks` process (a snapshot of bin/ and
 * dist/) kills itself with SIGKILL at the crash point `after_emit`: the run for a message
 * is committed and the broker has not been told. The message must still be outstanding at
 * the broker. A second `baton dev` must get it again, find its run by the dedupe key
 * (a `deduplicated` firing), acknowledge it, and leave exactly one run for it, finished.
 * A message published while the first process was down makes its own run.
 *
 * `STREAMS_CRASH_KEEP=1` keeps the temp folder.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from './stream-brokers.js';
import { BROKER_KINDS, createBroker } from './stream-brokers.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TRIGGER = 'on_stream/inbox';
/** JetStream redelivers after the ack wait of the consumer the source creates (10 s); the others at once. */
const REDELIVERY_MS = 30_000;
const START_MS = 30_000;
const STOP_MS = 20_000;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface Dev {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  stderr(): string;
}

let app = '';
let root = '';
const live = new Set<ChildProcess>();

beforeAll(() => {
  if (!existsSync(join(ROOT, 'dist', 'triggers', 'sources', 'nats-source.js'))) {
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }
  root = mkdtempSync(join(tmpdir(), 'baton-streams-crash-'));
  // A snapshot of the built CLI: another `npm run build` in this checkout may rewrite dist/
  // while the test runs, and a process that imports a half-written module fails.
  app = join(root, 'app');
  cpSync(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
});

afterAll(() => {
  for (const child of live) child.kill('SIGKILL');
  if (!root) return;
  // Unlink first: the link points at the project's own node_modules.
  rmSync(join(app, 'node_modules'), { force: true });
  if (process.env.STREAMS_CRASH_KEEP === '1') console.log(`streams crash test: kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
});

function startDev(dir: string, extraEnv: NodeJS.ProcessEnv = {}): Dev {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
  for (const key of Object.keys(env)) {
    if (key.startsWith('BATON_') && !(key in extraEnv)) delete env[key];
  }
  const child = spawn(process.execPath, [join(app, 'bin', 'baton.js'), 'dev', '--no-webhooks'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let stderr = '';
  child.stdout?.resume();
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<Exit>((resolveExit, reject) => {
    child.on('error', reject);
    // `close` comes after the process was reaped: its pid is gone.
    child.on('close', (code, signal) => {
      live.delete(child);
      resolveExit({ code, signal });
    });
  });
  return { child, exited, stderr: () => stderr };
}

/** Resolves with the exit, or kills the process and fails after `ms`. */
async function exitWithin(dev: Dev, ms: number, what: string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      dev.child.kill('SIGKILL');
      reject(new Error(`${what}: baton dev did not exit within ${ms} ms\nstderr:\n${dev.stderr()}`));
    }, ms);
  });
  try {
    return await Promise.race([dev.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface RunRow {
  readonly id: string;
  readonly state: string;
  readonly dedupe_key: string;
  readonly params: string;
}
interface FiringRow {
  readonly outcome: string;
  readonly run_id: string | null;
  readonly dedupe_key: string | null;
}

/** What the SQLite file holds now (read-only, WAL readers see committed state). */
function readDb(path: string): { runs: RunRow[]; firings: FiringRow[] } {
  if (!existsSync(path)) return { runs: [], firings: [] };
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const hasTable = (name: string) =>
      db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== undefined;
    if (!hasTable('runs') || !hasTable('trigger_firings')) return { runs: [], firings: [] };
    return {
      runs: db.prepare(`SELECT id, state, dedupe_key, params FROM runs ORDER BY created_at, id`).all() as RunRow[],
      firings: db
        .prepare(`SELECT outcome, run_id, dedupe_key FROM trigger_firings WHERE trigger_id = ? ORDER BY seq`)
        .all(TRIGGER) as FiringRow[],
    };
  } finally {
    db.close();
  }
}

async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`no ${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const dataOf = (run: RunRow) =>
  (JSON.parse(run.params) as { messages: { data: unknown }[] }).messages.map((m) => m.data);

function writeProject(dir: string, broker: Broker): void {
  mkdirSync(join(dir, 'flows'), { recursive: true });
  writeFileSync(join(dir, 'baton.yaml'), 'lease: 2s\n');
  writeFileSync(
    join(dir, 'flows', 'tasks.mjs'),
    'export function count(ctx) { return { n: ctx.params.messages.length }; }\n',
  );
  const flow = {
    name: 'on_stream',
    triggers: { inbox: broker.trigger },
    tasks: { count: { kind: 'function', module: './tasks.mjs', export: 'count' } },
  };
  writeFileSync(join(dir, 'flows', 'on_stream.yaml'), JSON.stringify(flow, null, 2));
}

describe('stream triggers survive kill -9 between the run commit and the broker ack', () => {
  it.each(BROKER_KINDS)(
    '%s',
    async (kind) => {
      const broker = await createBroker(kind);
      const dir = join(root, kind);
      const dbPath = join(dir, '.baton', 'baton.db');
      try {
        writeProject(dir, broker);
        await broker.publish([{ order: 1, kind }]);

        // 1. The process commits the run for the message, then dies before the ack.
        const first = startDev(dir, { BATON_CRASH_AT: 'after_emit:1' });
        const crash = await exitWithin(first, START_MS, 'the crashing process');
        expect(crash.signal, `the first process should die by SIGKILL at after_emit\n${first.stderr()}`).toBe(
          'SIGKILL',
        );
        const afterCrash = readDb(dbPath);
        expect(afterCrash.runs, 'the run was committed before the crash').toHaveLength(1);
        const [committed] = afterCrash.runs as [RunRow];
        expect(dataOf(committed)).toEqual([{ order: 1, kind }]);
        expect(committed.dedupe_key.startsWith(`${TRIGGER}:${kind}:`)).toBe(true);
        // The broker still has it, never acknowledged (RabbitMQ counts it once it saw the connection drop).
        await waitFor(async () => ((await broker.outstanding()) === 1 ? true : undefined), 5000, 'outstanding message');

        // 2. While down, one more message arrives.
        await broker.publish([{ order: 2, kind }]);

        // 3. A restart gets the first message again, finds its run, and acknowledges it.
        const second = startDev(dir);
        try {
          await waitFor(
            () => (readDb(dbPath).firings.some((f) => f.outcome === 'deduplicated') ? true : undefined),
            REDELIVERY_MS,
            `deduplicated firing after the restart (stderr:\n${second.stderr()})`,
          );
          await waitFor(
            async () => {
              const { runs } = readDb(dbPath);
              const done = runs.length === 2 && runs.every((r) => r.state === 'succeeded');
              return done && (await broker.outstanding()) === 0 ? true : undefined;
            },
            REDELIVERY_MS,
            'both runs finished and every message acknowledged',
          );
        } finally {
          second.child.kill('SIGTERM');
        }
        const stop = await exitWithin(second, STOP_MS, 'the restarted process');
        expect(stop, second.stderr()).toEqual({ code: 0, signal: null });

        const { runs, firings } = readDb(dbPath);
        expect(runs.map(dataOf)).toEqual([[{ order: 1, kind }], [{ order: 2, kind }]]);
        expect(runs[0]?.id).toBe(committed.id);
        expect(new Set(runs.map((r) => r.dedupe_key)).size).toBe(2);
        expect(firings.filter((f) => f.outcome === 'run')).toHaveLength(2);
        const redelivered = firings.filter((f) => f.outcome === 'deduplicated');
        expect(redelivered.length).toBeGreaterThanOrEqual(1);
        for (const f of redelivered)
          expect(f).toMatchObject({ run_id: committed.id, dedupe_key: committed.dedupe_key });
        expect(await broker.outstanding(), 'messages outstanding at the broker at the end').toBe(0);
      } finally {
        await broker.close();
      }
    },
    120_000,
  );
});
