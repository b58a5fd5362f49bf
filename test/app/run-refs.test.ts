/**
 * Run references resolved against a real (SQLite) store: what `last` passes over, what a
 * whole id wins against, and the errors users see.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { resolveRunRef } from '../../src/app/run-refs.js';
import { BatonError } from '../../src/core/errors.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';

let dir: string;
let store: Store;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'baton-refs-'));
  store = new SqliteStore({ path: join(dir, 'baton.db') });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

let clock = 1_800_000_000_000;

async function run(id: string, flow = 'etl', parent?: string): Promise<void> {
  clock += 1000;
  await store.createRun({
    id,
    flow: { flow, version: 'v1', spec: '{}', sourcePath: '/flows/x.yaml', createdAt: clock },
    params: {},
    taskIds: ['a'],
    createdAt: clock,
    ...(parent ? { parent: { runId: parent, task: 'sub' } } : {}),
  });
}

async function refError(ref: string, options: { flow?: string } = {}): Promise<BatonError> {
  try {
    await resolveRunRef({ store }, ref, options);
  } catch (error) {
    if (error instanceof BatonError) return error;
    throw error;
  }
  throw new Error(`${ref} resolved`);
}

describe('resolveRunRef', () => {
  it('takes the newest top-level run for last, and the newest of a flow, children included, with --flow', async () => {
    await run('r1parent');
    await run('r2child', 'load', 'r1parent');
    await run('r3grandchild', 'load', 'r2child');
    expect((await resolveRunRef({ store }, 'last')).id).toBe('r1parent');
    expect((await resolveRunRef({ store }, 'last', { flow: 'load' })).id).toBe('r3grandchild');
    expect((await resolveRunRef({ store }, 'last', { flow: 'etl' })).id).toBe('r1parent');
  });

  it('names the root of the newest run when every recent run is a child', async () => {
    await run('r0root');
    for (let i = 0; i < 120; i++) await run(`r1child${String(i).padStart(3, '0')}`, 'load', 'r0root');
    expect((await resolveRunRef({ store }, 'last')).id).toBe('r0root');
  });

  it('lets a whole id win over the longer ids it starts, and a unique prefix name its run', async () => {
    await run('rab');
    await run('rabc');
    await run('rabd');
    expect((await resolveRunRef({ store }, 'rab')).id).toBe('rab');
    expect((await resolveRunRef({ store }, 'rabc')).id).toBe('rabc');
    expect((await resolveRunRef({ store }, ' rabd ')).id).toBe('rabd');
    const ambiguous = await refError('ra');
    expect(ambiguous.code).toBe('RUN_AMBIGUOUS');
    expect(ambiguous.exitCode).toBe(2);
    expect(ambiguous.details.candidates).toEqual([
      expect.objectContaining({ id: 'rab', flow: 'etl', state: 'queued' }),
      expect.objectContaining({ id: 'rabc' }),
      expect.objectContaining({ id: 'rabd' }),
    ]);
    expect(ambiguous.details.more).toBe(false);
  });

  it('lists at most ten candidates of an ambiguous prefix and says there are more', async () => {
    for (let i = 0; i < 12; i++) await run(`rx${String(i).padStart(2, '0')}`);
    const error = await refError('rx');
    expect((error.details.candidates as unknown[]).length).toBe(10);
    expect(error.details.more).toBe(true);
    expect(error.message).toMatch(/^run id prefix rx matches more than 10 runs:\n/);
    expect(error.message.endsWith('\n  …')).toBe(true);
  });

  it('reports what it cannot resolve with a code and a hint', async () => {
    expect(await refError('last')).toMatchObject({ code: 'RUN_NOT_FOUND', hint: expect.stringContaining('baton run') });
    await run('r1');
    expect(await refError('last', { flow: 'other' })).toMatchObject({
      code: 'RUN_NOT_FOUND',
      message: 'flow other has no runs yet, so `last` names none',
    });
    expect(await refError('zz')).toMatchObject({
      code: 'RUN_NOT_FOUND',
      message: 'no run with id zz, and none whose id starts with it',
    });
    expect(await refError('r1', { flow: 'etl' })).toMatchObject({ code: 'USAGE' });
    expect(await refError('  ')).toMatchObject({ code: 'USAGE' });
  });
});
