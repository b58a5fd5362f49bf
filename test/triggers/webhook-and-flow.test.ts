/**
 * Webhook and flow-to-flow triggers on both stores: HMAC signatures, bodies validated as
 * params, idempotent deliveries, paused triggers, and runs of one flow started by the end
 * of another with its outputs as params.
 */
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import type { Runtime } from '../../src/app/runtime.js';
import { createRun, openRuntime } from '../../src/app/runtime.js';
import { isTerminalRun } from '../../src/core/states.js';
import type { TriggerService } from '../../src/triggers/trigger-service.js';
import { WebhookServer } from '../../src/triggers/webhook-server.js';
import { createTestDatabase } from '../store/pg-helpers.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const stores: Record<string, () => Promise<{ dir: string; env: Record<string, string> }>> = {
  sqlite: async () => ({ dir: mkdtempSync(join(tmpdir(), 'baton-trig-')), env: {} }),
  postgres: async () => {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    return { dir: mkdtempSync(join(tmpdir(), 'baton-trig-')), env: { BATON_DATABASE_URL: db.url } };
  },
};

async function project(kind: string, flows: Record<string, string>): Promise<{ rt: Runtime; dir: string }> {
  const { dir, env } = await (stores[kind] as () => Promise<{ dir: string; env: Record<string, string> }>)();
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'flows'));
  for (const [name, text] of Object.entries(flows)) writeFileSync(join(dir, 'flows', name), text);
  const rt = await openRuntime({ cwd: dir, env: { ...env, HOOK_SECRET: 'sesame' } });
  cleanups.push(() => rt.close());
  return { rt, dir };
}

function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000): Promise<T> {
  return waitFor(probe, { timeoutMs: ms, intervalMs: 50, what });
}

function sign(body: string): string {
  return `sha256=${createHmac('sha256', 'sesame').update(body).digest('hex')}`;
}

const HOOK_FLOW = `name: ingest
params:
  table: { type: string }
  rows: { type: integer, default: 0 }
triggers:
  incoming: { kind: webhook, secret_env: HOOK_SECRET }
tasks:
  load:
    kind: shell
    command: ["echo", "\${{ params.table }}"]
`;

for (const kind of Object.keys(stores)) {
  describe(`triggers on ${kind}`, () => {
    it('turns signed webhook calls into runs, refusing bad signatures, bodies and params without creating runs', async () => {
      const { rt } = await project(kind, { 'ingest.yaml': HOOK_FLOW });
      const service: TriggerService = rt.createTriggerService({ tickMs: 100 });
      await service.start();
      cleanups.push(() => service.stop());
      const server = new WebhookServer({
        store: rt.store,
        service,
        env: { HOOK_SECRET: 'sesame' },
        port: 0,
        limits: { bodyBytes: 200 },
      });
      const port = await server.start();
      cleanups.push(() => server.stop());
      const post = async (path: string, body: string, headers: Record<string, string> = {}) => {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', body, headers });
        return { status: res.status, json: (await res.json()) as Record<string, unknown> };
      };
      const body = JSON.stringify({ table: 'orders', rows: 3 });
      const ok = await post('/hooks/incoming', body, { 'x-baton-signature': sign(body), 'idempotency-key': 'd1' });
      expect(ok.status).toBe(202);
      expect(ok.json.outcome).toBe('run');
      const again = await post('/hooks/ingest/incoming', body, {
        'x-baton-signature': sign(body),
        'idempotency-key': 'd1',
      });
      expect(again).toEqual({ status: 202, json: { outcome: 'deduplicated', run_id: ok.json.run_id } });
      expect((await rt.store.getRun(ok.json.run_id as string))?.params).toEqual({ table: 'orders', rows: 3 });

      expect((await post('/hooks/incoming', body)).status).toBe(401);
      expect((await post('/hooks/incoming', body, { 'x-baton-signature': sign(`${body} `) })).status).toBe(401);
      const notJson = '{"table":';
      expect((await post('/hooks/incoming', notJson, { 'x-baton-signature': sign(notJson) })).status).toBe(400);
      const badParams = JSON.stringify({ tabel: 'x' });
      const refused = await post('/hooks/incoming', badParams, { 'x-baton-signature': sign(badParams) });
      expect(refused.status).toBe(422);
      expect(String((refused.json.error as { message: string }).message)).toMatch(
        /unknown param "tabel" \(did you mean "table"\?\)/,
      );
      const big = JSON.stringify({ table: 'x'.repeat(300) });
      expect((await post('/hooks/incoming', big, { 'x-baton-signature': sign(big) })).status).toBe(413);
      expect((await post('/hooks/nothing', body)).status).toBe(404);

      await rt.store.setTriggerPaused('ingest/incoming', true);
      const paused = await post('/hooks/incoming', body, { 'x-baton-signature': sign(body) });
      expect(paused.status).toBe(409);
      expect((await rt.store.listRuns({ flow: 'ingest' })).map((r) => r.id)).toEqual([ok.json.run_id]);
      const history = (await rt.store.listFirings('ingest/incoming', 10)).map((f) => f.outcome);
      expect(history).toEqual(['skipped', 'error', 'deduplicated', 'run']);
    });

    it('starts a flow when another one succeeds, with its outputs as params, once per upstream run', async () => {
      const { rt } = await project(kind, {
        'extract.yaml': `name: extract\ntasks:\n  count:\n    kind: shell\n    command: ["echo", "42"]\n`,
        'report.yaml': [
          'name: report',
          'triggers:',
          '  after_extract: { kind: flow, flow: extract }',
          'tasks:',
          '  say:',
          '    kind: shell',
          '    command: ["echo", "${{ params.upstream_outputs.count }}"]',
          '',
        ].join('\n'),
      });
      const service = rt.createTriggerService({ tickMs: 100 });
      await service.start();
      cleanups.push(() => service.stop());
      const engine = rt.createEngine({ pollMs: 50 });
      engine.startWorker();
      cleanups.push(() => engine.stop());
      const extract = await rt.catalog.find('extract');
      const first = (await createRun(rt, extract)).run.id;
      const report = await until(async () => {
        const runs = await rt.store.listRuns({ flow: 'report' });
        return runs.length === 1 && isTerminalRun(runs[0]?.state ?? 'queued') ? runs[0] : undefined;
      }, 'the report run');
      expect(report?.state).toBe('succeeded');
      expect(report?.params).toMatchObject({ upstream_run: first, upstream_outputs: { count: '42' } });
      const logs = await rt.store.readLogs(report?.id as string, {});
      expect(logs.map((l) => l.text)).toContain('42');
      // A restarted service does not fire again for the same upstream run.
      await service.stop();
      const again = rt.createTriggerService({ tickMs: 100 });
      await again.start();
      cleanups.push(() => again.stop());
      await new Promise((r) => setTimeout(r, 1500));
      expect(await rt.store.listRuns({ flow: 'report' })).toHaveLength(1);
    });
  });
}
