/**
 * openClient on a project folder: its baton.yaml applies (a lowered params limit), its flow
 * files start by name, and the store is the project's own; and what openClient refuses.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openClient } from '../../src/index.js';
import type { BatonClient } from '../../src/index.js';

const dirs: string[] = [];
const clients: BatonClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'baton-client-project-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'baton.yaml'), 'limits:\n  params_bytes: 200\n');
  writeFileSync(
    join(dir, 'flows', 'greet.yaml'),
    ['name: greet', 'params:', '  who: { type: string }', 'tasks:', '  say:', '    run: echo hello', ''].join('\n'),
  );
  return dir;
}

describe('openClient on a project', () => {
  it("starts a flow file by name, on the project's store, under its baton.yaml", async () => {
    const dir = project();
    const baton = await openClient({ project: dir });
    clients.push(baton);
    expect(baton.dialect).toBe('sqlite');
    expect(existsSync(join(dir, '.baton', 'baton.db'))).toBe(true);
    baton.startWorker();
    const run = await baton.start('greet', { who: 'ada' }, { output: 'say' });
    expect(await run.result({ timeoutMs: 30_000 })).toBe('hello');
    await expect(baton.start('greet', { who: 'x'.repeat(300) })).rejects.toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
      message: expect.stringContaining('the limit is 200 bytes') as unknown,
    });
    expect((await baton.list({ flow: 'greet' })).map((r) => r.id)).toEqual([run.id]);
  });

  it('refuses what names no store, a malformed URL, and a folder that is no project', async () => {
    await expect(openClient({})).rejects.toMatchObject({ code: 'USAGE' });
    await expect(openClient({ database: 'postgress://u:secret@h/db' })).rejects.toMatchObject({
      code: 'DATABASE_URL_INVALID',
      message: expect.not.stringContaining('secret') as unknown,
    });
    const empty = mkdtempSync(join(tmpdir(), 'baton-client-empty-'));
    dirs.push(empty);
    await expect(openClient({ project: empty })).rejects.toMatchObject({ code: 'NO_PROJECT' });
    expect(existsSync(join(empty, '.baton'))).toBe(false);
  });

  it('refuses calls once closed, and closing twice is harmless', async () => {
    const dir = project();
    const baton = await openClient({ project: dir });
    await baton.close();
    await baton.close();
    await expect(baton.start('greet', { who: 'a' })).rejects.toMatchObject({ code: 'USAGE' });
  });
});
