/**
 * The CLI against PostgreSQL: migrate, `baton scheduler` and `baton worker` processes,
 * runs queued by default and waited for, labels on the worker command line, draining on
 * SIGTERM, and pruning old runs.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../store/pg-helpers.js';
import { baton, describeResult, parseJson, startBaton, useTempDirs, waitFor } from './cli-helpers.js';
import type { BatonProcess } from './cli-helpers.js';

const temp = useTempDirs();
const drops: (() => Promise<void>)[] = [];
const procs: BatonProcess[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.kill('SIGKILL');
    await p.done.catch(() => undefined);
  }
  for (const drop of drops.splice(0)) await drop();
});

async function pgProject(): Promise<{ cwd: string; env: Record<string, string> }> {
  const db = await createTestDatabase();
  drops.push(db.drop);
  const dir = temp.mkdir('baton-e2e-pg-');
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'baton.yaml'), 'lease: 2s\nconcurrency: 4\n');
  writeFileSync(
    join(dir, 'flows', 'labelled.yaml'),
    [
      'name: labelled',
      'tasks:',
      '  any:',
      '    kind: shell',
      '    command: ["echo", "anywhere"]',
      '  eu:',
      '    kind: shell',
      '    command: ["sh", "-c", "echo in-eu"]',
      '    labels: [region-eu]',
      '    depends_on: [any]',
      '',
    ].join('\n'),
  );
  return { cwd: dir, env: { BATON_DATABASE_URL: db.url } };
}

function start(args: string[], o: { cwd: string; env: Record<string, string> }): BatonProcess {
  const p = startBaton(args, { ...o, timeoutMs: 60_000 });
  procs.push(p);
  return p;
}

describe('CLI on PostgreSQL', () => {
  it('queues a run by default and executes it with scheduler and labelled worker processes', async () => {
    const o = await pgProject();
    const migrated = await baton(['db', 'migrate'], o);
    expect(migrated.code, describeResult(migrated)).toBe(0);
    expect(migrated.stdout).toMatch(/is up to date/);

    const queued = await baton(['run', 'labelled'], o);
    expect(queued.code, describeResult(queued)).toBe(0);
    const runId = queued.stdout.trim();
    expect(runId).toMatch(/^r[0-9a-z]+$/);

    const scheduler = start(['scheduler'], o);
    const plain = start(['worker'], o);
    await waitFor(() => (scheduler.stderr().includes('leading') ? true : undefined), {
      timeoutMs: 15_000,
      what: 'the scheduler to lead',
    });
    // Only a worker with the region-eu label may take the second task.
    await waitFor(
      async () => {
        const show = parseJson<{ tasks: { id: string; state: string }[] }>(await baton(['show', runId, '--json'], o));
        return show.tasks[0]?.state === 'succeeded' ? true : undefined;
      },
      { timeoutMs: 15_000, what: 'the unlabelled task' },
    );
    await new Promise((r) => setTimeout(r, 500));
    let show = parseJson<{ state: string; tasks: { id: string; state: string }[] }>(
      await baton(['show', runId, '--json'], o),
    );
    expect(show.tasks[1]?.state).toBe('running');
    const eu = start(['worker', '--labels', 'region-eu,gpu'], o);
    await waitFor(
      async () => {
        show = parseJson(await baton(['show', runId, '--json'], o));
        return show.state === 'succeeded' ? true : undefined;
      },
      { timeoutMs: 15_000, what: 'the run to succeed' },
    );
    const logs = await baton(['logs', runId, 'eu'], o);
    expect(logs.stdout).toContain('in-eu');

    const waited = await baton(['run', 'labelled', '--wait', '--json'], o);
    expect(waited.code, describeResult(waited)).toBe(0);
    expect(parseJson<{ state: string }>(waited).state).toBe('succeeded');

    for (const p of [scheduler, plain, eu]) p.kill('SIGTERM');
    for (const p of [scheduler, plain, eu]) expect((await p.done).code).toBe(0);
  }, 90_000);

  it('refuses labels and the scheduler on the embedded store with a usage error', async () => {
    const dir = temp.mkdir('baton-e2e-sqlite-');
    mkdirSync(join(dir, 'flows'));
    const worker = await baton(['worker', '--labels', 'gpu'], { cwd: dir });
    expect(worker.code).toBe(2);
    expect(worker.stderr).toMatch(/--labels needs a PostgreSQL store/);
    const scheduler = await baton(['scheduler'], { cwd: dir });
    expect(scheduler.code).toBe(2);
    expect(scheduler.stderr).toMatch(/needs a PostgreSQL store/);
  });

  it('a scheduler whose webhook port is taken exits with PORT_IN_USE before it joins the election', async () => {
    const o = await pgProject();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const result = await baton(['scheduler', '--webhook-port', String(port)], { ...o, timeoutMs: 30_000 });
      expect(result.code, describeResult(result)).toBe(2);
      expect(result.stderr).toContain('PORT_IN_USE');
      expect(result.stderr).toContain(`port ${port} is already in use`);
      expect(result.stderr).not.toContain('standing by');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it('prunes finished runs older than a duration', async () => {
    const o = await pgProject();
    writeFileSync(
      join(o.cwd, 'flows', 'plain.yaml'),
      'name: plain\ntasks:\n  hi:\n    kind: shell\n    command: ["echo", "hi"]\n',
    );
    start(['scheduler'], o);
    start(['worker'], o);
    const done = await baton(['run', 'plain', '--wait', '--json'], o);
    expect(done.code, describeResult(done)).toBe(0);
    const id = parseJson<{ id: string }>(done).id;
    const kept = await baton(['db', 'prune', '--older-than', '30d', '--json'], o);
    expect(parseJson<{ pruned_runs: number }>(kept).pruned_runs).toBe(0);
    await new Promise((r) => setTimeout(r, 50));
    const pruned = await baton(['db', 'prune', '--older-than', '1ms', '--json'], o);
    expect(parseJson<{ pruned_runs: number }>(pruned).pruned_runs).toBe(1);
    const show = await baton(['show', id], o);
    expect(show.code).toBe(4);
    const bad = await baton(['db', 'prune', '--older-than', 'soon'], o);
    expect(bad.code).toBe(2);
  }, 60_000);
});
