/**
 * File-arrival triggers on both stores, with a real trigger service and an engine running
 * the runs: one run per new or changed file (param `file`), none for a file left alone or
 * touched without change (`identity: hash`), none twice across a restart, files still
 * being written left until stable, and `move_to` only after the run succeeded (a failed
 * run leaves its file). Then the same through `baton dev`, as a user would run it.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import type { Runtime } from '../../src/app/runtime.js';
import { openRuntime } from '../../src/app/runtime.js';
import type { RunRecord } from '../../src/store/store.js';
import type { TriggerService } from '../../src/triggers/trigger-service.js';
import { createTestDatabase } from '../store/pg-helpers.js';
import { freePort } from '../helpers/ports.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const POLL_MS = 100;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tempDir(prefix: string): string {
  // Real path: the flow catalog may resolve symlinks (macOS /tmp), and params hold absolute paths.
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const stores: Record<string, () => Promise<Record<string, string>>> = {
  sqlite: async () => ({}),
  postgres: async () => {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    return { BATON_DATABASE_URL: db.url };
  },
};

/** A project in a temp folder: `flows/<name>` for each flow, an `inbox/` beside them. */
async function project(store: string, flows: Record<string, string>): Promise<{ rt: Runtime; dir: string }> {
  const env = await (stores[store] as () => Promise<Record<string, string>>)();
  const dir = tempDir('baton-file-trig-');
  writeFileSync(join(dir, 'baton.yaml'), 'lease: 2s\n');
  mkdirSync(join(dir, 'flows'));
  mkdirSync(join(dir, 'inbox'));
  for (const [name, text] of Object.entries(flows)) writeFileSync(join(dir, 'flows', name), text);
  const rt = await openRuntime({ cwd: dir, env });
  cleanups.push(() => rt.close());
  const engine = rt.createEngine({ pollMs: 50 });
  engine.startWorker();
  cleanups.push(() => engine.stop());
  return { rt, dir };
}

async function startService(rt: Runtime): Promise<TriggerService> {
  const service = rt.createTriggerService({ tickMs: 100 });
  await service.start();
  cleanups.push(() => service.stop());
  return service;
}

function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000): Promise<T> {
  return waitFor(probe, { timeoutMs: ms, intervalMs: 50, what });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs of a flow, oldest first. */
async function runsOf(rt: Runtime, flow: string): Promise<RunRecord[]> {
  return (await rt.store.listRuns({ flow, limit: 1000 })).sort((a, b) => a.createdAt - b.createdAt);
}

async function runCount(rt: Runtime, flow: string, n: number): Promise<RunRecord[]> {
  return until(async () => {
    const runs = await runsOf(rt, flow);
    if (runs.length > n) throw new Error(`expected ${n} runs of ${flow}, found ${runs.length}`);
    return runs.length === n ? runs : undefined;
  }, `${n} run(s) of ${flow}`);
}

/** Checks, over several polls, that no run beyond the first `n` appears. */
async function staysAt(rt: Runtime, flow: string, n: number): Promise<void> {
  await pause(POLL_MS * 6);
  expect((await runsOf(rt, flow)).length).toBe(n);
}

function flowYaml(trigger: string, command = 'grep -q ok "$F"'): string {
  return [
    'name: ingest',
    'triggers:',
    `  arrivals: ${trigger}`,
    'tasks:',
    '  check:',
    '    kind: shell',
    `    command: ["sh", "-c", ${JSON.stringify(command)}]`,
    "    env: { F: '${{ params.file }}' }",
    '',
  ].join('\n');
}

for (const store of Object.keys(stores)) {
  describe(`file triggers on ${store}`, () => {
    it('makes one run per new or changed file, none for unchanged files or after a restart', async () => {
      const { rt, dir } = await project(store, {
        'ingest.yaml': flowYaml(`{ kind: file, path: ../inbox, glob: "**/*.csv", poll: ${POLL_MS}ms }`),
      });
      const inbox = join(dir, 'inbox');
      const service = await startService(rt);

      writeFileSync(join(inbox, 'a.csv'), 'ok,1\n');
      const [first] = await runCount(rt, 'ingest', 1);
      expect(first?.params).toEqual({ file: join(inbox, 'a.csv') });
      await until(
        async () => ((await rt.store.getRun(first?.id ?? ''))?.state === 'succeeded' ? true : undefined),
        'the run',
      );
      await staysAt(rt, 'ingest', 1);

      mkdirSync(join(inbox, 'sub', 'deeper'), { recursive: true });
      writeFileSync(join(inbox, 'sub', 'deeper', 'b.csv'), 'ok,2\n');
      writeFileSync(join(inbox, 'notes.txt'), 'not matched by the glob\n');
      writeFileSync(join(inbox, '.c.csv'), 'dotfiles are never taken\n');
      const two = await runCount(rt, 'ingest', 2);
      expect(two[1]?.params).toEqual({ file: join(inbox, 'sub', 'deeper', 'b.csv') });

      writeFileSync(join(inbox, 'a.csv'), 'ok,1\nok,3\n');
      const three = await runCount(rt, 'ingest', 3);
      expect(three[2]?.params).toEqual({ file: join(inbox, 'a.csv') });
      await staysAt(rt, 'ingest', 3);

      const keys = (await rt.store.listFirings('ingest/arrivals', 100)).map((f) => [f.outcome, f.dedupeKey]);
      const size = statSync(join(inbox, 'a.csv')).size;
      expect(keys).toHaveLength(3);
      expect(keys.every(([outcome]) => outcome === 'run')).toBe(true);
      expect(keys[0]?.[1]).toMatch(new RegExp(`^ingest/arrivals:file:a\\.csv:${size}-\\d+$`));
      expect(keys[1]?.[1]).toMatch(/^ingest\/arrivals:file:sub\/deeper\/b\.csv:/);

      // A new service on the same store (a restart) re-emits nothing: not even deduplicated firings.
      const firings = (await rt.store.listFirings('ingest/arrivals', 100)).length;
      await service.stop();
      await startService(rt);
      await staysAt(rt, 'ingest', 3);
      expect((await rt.store.listFirings('ingest/arrivals', 100)).length).toBe(firings);
      writeFileSync(join(inbox, 'd.csv'), 'ok,4\n');
      const four = await runCount(rt, 'ingest', 4);
      expect(four[3]?.params).toEqual({ file: join(inbox, 'd.csv') });
    });

    it('with identity: hash, ignores touches and rewrites with the same content', async () => {
      const { rt, dir } = await project(store, {
        'ingest.yaml': flowYaml(`{ kind: file, path: ../inbox, identity: hash, poll: ${POLL_MS}ms }`),
      });
      const file = join(dir, 'inbox', 'report.csv');
      const service = await startService(rt);
      writeFileSync(file, 'ok,1\n');
      await runCount(rt, 'ingest', 1);

      const later = new Date(Date.now() + 60_000);
      utimesSync(file, later, later);
      await staysAt(rt, 'ingest', 1);
      writeFileSync(file, 'ok,1\n');
      await staysAt(rt, 'ingest', 1);

      writeFileSync(file, 'ok,2\n');
      const runs = await runCount(rt, 'ingest', 2);
      expect(runs[1]?.params).toEqual({ file });
      const [latest] = await rt.store.listFirings('ingest/arrivals', 1);
      expect(latest?.dedupeKey).toMatch(/^ingest\/arrivals:file:report\.csv:sha256-[0-9a-f]{64}$/);

      await service.stop();
      await startService(rt);
      await staysAt(rt, 'ingest', 2);
    });

    it('takes a file only once it stopped growing', async () => {
      const { rt, dir } = await project(store, {
        'ingest.yaml': flowYaml(`{ kind: file, path: ../inbox, poll: ${POLL_MS}ms }`),
      });
      const file = join(dir, 'inbox', 'big.csv');
      await startService(rt);
      writeFileSync(file, 'ok');
      // Appends faster than the poll period for 15 polls: never stable, never taken.
      for (let i = 0; i < 50; i++) {
        await pause(30);
        appendFileSync(file, `,${i}`);
      }
      expect(await runsOf(rt, 'ingest')).toHaveLength(0);
      const runs = await runCount(rt, 'ingest', 1);
      expect(runs[0]?.params).toEqual({ file });
      const [firing] = await rt.store.listFirings('ingest/arrivals', 1);
      expect(firing?.dedupeKey).toContain(`:big.csv:${statSync(file).size}-`);
      await staysAt(rt, 'ingest', 1);
    });

    it('moves a file to move_to only after its run succeeded, and leaves the file of a failed run', async () => {
      // The task takes 700 ms, so the file can be seen in place while its run is running.
      const { rt, dir } = await project(store, {
        'ingest.yaml': flowYaml(
          `{ kind: file, path: ../inbox, glob: "**/*.csv", move_to: ../inbox/done, poll: ${POLL_MS}ms }`,
          'sleep 0.7; grep -q ok "$F"',
        ),
      });
      const inbox = join(dir, 'inbox');
      const done = join(inbox, 'done');
      const service = await startService(rt);
      mkdirSync(join(inbox, 'eu'));
      writeFileSync(join(inbox, 'eu', 'good.csv'), 'ok\n');
      writeFileSync(join(inbox, 'bad.csv'), 'no\n');

      const runs = await runCount(rt, 'ingest', 2);
      const good = runs.find((r) => r.params.file === join(inbox, 'eu', 'good.csv')) as RunRecord;
      const bad = runs.find((r) => r.params.file === join(inbox, 'bad.csv')) as RunRecord;
      await until(async () => ((await rt.store.getRun(good.id))?.state === 'running' ? true : undefined), 'running');
      expect(existsSync(join(inbox, 'eu', 'good.csv'))).toBe(true);
      expect(existsSync(join(done, 'eu', 'good.csv'))).toBe(false);

      // A restart while the run is running: the new service finds the pending move in the cursor.
      await service.stop();
      await startService(rt);
      await until(() => (existsSync(join(done, 'eu', 'good.csv')) ? true : undefined), 'the move');
      expect((await rt.store.getRun(good.id))?.state).toBe('succeeded');
      expect(existsSync(join(inbox, 'eu', 'good.csv'))).toBe(false);
      await until(async () => ((await rt.store.getRun(bad.id))?.state === 'failed' ? true : undefined), 'failure');
      await pause(POLL_MS * 4);
      expect(existsSync(join(inbox, 'bad.csv'))).toBe(true);
      expect(existsSync(join(done, 'bad.csv'))).toBe(false);
      // Moved files are under the watched folder, but never taken again.
      await staysAt(rt, 'ingest', 2);

      // A second good.csv does not overwrite the first one moved.
      writeFileSync(join(inbox, 'eu', 'good.csv'), 'ok, again\n');
      const [, , again] = await runCount(rt, 'ingest', 3);
      await until(() => (existsSync(join(done, 'eu', `good.${again?.id}.csv`)) ? true : undefined), 'second move');
      expect(existsSync(join(done, 'eu', 'good.csv'))).toBe(true);
      await staysAt(rt, 'ingest', 3);
    });
  });
}

describe('baton dev with a file trigger', () => {
  /** A snapshot of the built CLI: others may rebuild dist/ while this test runs. */
  function snapshot(): string {
    const app = tempDir('baton-file-dev-app-');
    cpSync(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
    copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'), 'dir');
    return join(app, 'bin', 'baton.js');
  }

  function childEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BATON_')) env[k] = v;
    return env;
  }

  function cli(
    bin: string,
    args: string[],
    cwd: string,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((done) => {
      execFile(process.execPath, [bin, ...args], { cwd, env: childEnv(), timeout: 20_000 }, (error, stdout, stderr) =>
        done({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr }),
      );
    });
  }

  it('runs the flow for a file dropped into the folder', async () => {
    const bin = snapshot();
    const dir = tempDir('baton-file-dev-');
    writeFileSync(join(dir, 'baton.yaml'), 'lease: 2s\n');
    mkdirSync(join(dir, 'flows'));
    mkdirSync(join(dir, 'inbox'));
    writeFileSync(
      join(dir, 'flows', 'ingest.yaml'),
      flowYaml(`{ kind: file, path: ../inbox, move_to: ../archive, poll: ${POLL_MS}ms }`),
    );
    const port = String(await freePort());
    const dev: ChildProcess = spawn(process.execPath, [bin, 'dev', '--no-webhooks', '--port', port], {
      cwd: dir,
      env: childEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    dev.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    dev.stdout?.resume();
    const exited = new Promise<number | null>((r) => dev.on('close', (code) => r(code)));
    cleanups.push(async () => {
      if (dev.exitCode === null && dev.signalCode === null) {
        dev.kill('SIGKILL');
        await exited;
      }
    });
    await until(() => (stderr.includes('1 trigger(s)') ? true : undefined), `baton dev to start:\n${stderr}`);

    writeFileSync(join(dir, 'inbox', 'orders.csv'), 'ok\n');
    const run = await until(async () => {
      const result = await cli(bin, ['runs', '--json'], dir);
      expect(result.code, result.stderr).toBe(0);
      const runs = JSON.parse(result.stdout) as { id: string; state: string; params: Record<string, unknown> }[];
      return runs.find((r) => r.state === 'succeeded');
    }, 'a succeeded run in baton runs --json');
    expect(run.params).toEqual({ file: join(dir, 'inbox', 'orders.csv') });
    await until(() => (existsSync(join(dir, 'archive', 'orders.csv')) ? true : undefined), 'the move to archive');

    dev.kill('SIGTERM');
    const code = await Promise.race([exited, pause(15_000).then(() => 'timeout' as const)]);
    expect(code, stderr).toBe(0);
    const runs = JSON.parse((await cli(bin, ['runs', '--json'], dir)).stdout) as unknown[];
    expect(runs).toHaveLength(1);
  });
});
