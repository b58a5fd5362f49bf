/**
 * The example service of docs/api.md (examples/service/service.ts) runs as its header says:
 * started as a process on a SQLite file and on PostgreSQL, it answers POST /quotes with the
 * run's result, gives a repeated request with the same Idempotency-Key the same run,
 * refuses bad params with 400, and drains and exits 0 on SIGTERM. It imports the package by
 * name, so `npm run build` must have run.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../e2e/cli-helpers.js';
import { createTestDatabase } from '../store/pg-helpers.js';

const SERVICE = join(REPO_ROOT, 'examples', 'service', 'service.ts');
const TSX = join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  output(): string;
  exited: Promise<number | null>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Starts the service as a process; resolves once it says where it listens (bounded). */
async function startService(env: Record<string, string>): Promise<Running> {
  // The parent's BATON_* settings must not reach the service.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BATON_')));
  const child = spawn(process.execPath, [TSX, SERVICE], {
    cwd: REPO_ROOT,
    env: { ...base, ...env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /quote service on http:\/\/127\.0\.0\.1:(\d+)\/quotes/.exec(out);
    if (m) return { child, port: Number(m[1]), output: () => out, exited };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the service did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function post(port: number, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`http://127.0.0.1:${port}/quotes`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const stores: Record<string, () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>> = {
  sqlite: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-service-'));
    return {
      env: { BATON_DATABASE: join(dir, 'baton.db') },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  postgres: async () => {
    const db = await createTestDatabase();
    return { env: { BATON_DATABASE_URL: db.url }, cleanup: db.drop };
  },
};

describe('examples/service', () => {
  for (const [name, make] of Object.entries(stores)) {
    it(`answers quotes with the run's result, and stops gracefully (${name})`, async () => {
      const store = await make();
      cleanups.push(store.cleanup);
      const service = await startService(store.env);

      const first = await post(service.port, { sku: 'pro-7', quantity: 3 }, { 'idempotency-key': 'q-1' });
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ sku: 'pro-7', quantity: 3, total: 90 });
      expect(first.body.run).toMatch(/^r[0-9a-z]{15}$/);

      const again = await post(service.port, { sku: 'pro-7', quantity: 3 }, { 'idempotency-key': 'q-1' });
      expect(again.body.run).toBe(first.body.run);
      const other = await post(service.port, { sku: 'basic' });
      expect(other.body).toMatchObject({ sku: 'basic', quantity: 1, total: 12 });
      expect(other.body.run).not.toBe(first.body.run);

      const bad = await post(service.port, { sku: 'pro-7', quantity: 'three' });
      expect(bad.status).toBe(400);
      expect(bad.body.error).toBe('RUN_PARAM_INVALID');

      const status = await fetch(`http://127.0.0.1:${service.port}/runs/${String(first.body.run)}`);
      expect(await status.json()).toEqual({ id: first.body.run, state: 'succeeded' });

      service.child.kill('SIGTERM');
      const code = await Promise.race([
        service.exited,
        new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000)),
      ]);
      expect(code, service.output()).toBe(0);
      expect(service.output()).toContain('SIGTERM: draining');
      expect(service.output()).toContain('stopped');
    });
  }
});
