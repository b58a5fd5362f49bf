/**
 * `baton dev` and `baton server` through the real binary, in a project made by `baton init`:
 * the URL printed, a run started over HTTP until it succeeds, a webhook on the same port
 * creating a run, and `baton server` answering the API on the embedded store.
 */
import { describe, expect, it } from 'vitest';
import type { BatonProcess, Sandbox } from './cli-helpers.js';
import { createSandbox, describeResult, useTempDirs, waitFor } from './cli-helpers.js';
import { freePort } from '../helpers/ports.js';

const temp = useTempDirs();

async function initProject(): Promise<Sandbox> {
  const sandbox = createSandbox(temp.mkdir('baton-server-'));
  const init = await sandbox.run(['init'], { timeoutMs: 20_000 });
  expect(init.code, describeResult(init)).toBe(0);
  return sandbox;
}

function waitForLine(p: BatonProcess, pattern: RegExp, what: string): Promise<RegExpMatchArray> {
  return waitFor(() => p.stderr().match(pattern) ?? undefined, {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: `${what}; it said:\n${p.stderr()}`,
  });
}

async function stop(p: BatonProcess): Promise<void> {
  p.kill('SIGTERM');
  const result = await p.done;
  expect(result.code, describeResult(result)).toBe(0);
}

async function runState(base: string, id: string, want: string): Promise<Record<string, unknown>> {
  return waitFor(
    async () => {
      const run = (await (await fetch(`${base}/api/v1/runs/${id}`)).json()) as Record<string, unknown>;
      return run.state === want ? run : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: `run ${id} to be ${want}` },
  );
}

describe('baton dev serves the UI, the API and the webhooks on one port', () => {
  it('prints its URL, starts a run over HTTP, and takes a webhook that creates a run', async () => {
    const sandbox = await initProject();
    sandbox.write(
      'flows/hooked.yaml',
      "name: hooked\ntriggers:\n  hook: { kind: webhook }\ntasks:\n  work:\n    kind: shell\n    command: ['sh', '-c', 'echo ok']\n",
    );
    const port = await freePort();
    const dev = sandbox.start(['dev', '--port', String(port)], { timeoutMs: 90_000 });
    try {
      await waitForLine(dev, new RegExp(`baton dev: UI and API on http://127\\.0\\.0\\.1:${port}/\\n`), 'the URL');
      await waitForLine(dev, /baton dev: executing runs and 1 trigger\(s\)/, 'baton dev to start');
      const base = `http://127.0.0.1:${port}`;
      const started = await fetch(`${base}/api/v1/flows/daily_report/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ params: { day: '2024-03-01' } }),
      });
      expect(started.status).toBe(201);
      const { id } = (await started.json()) as { id: string };
      const run = await runState(base, id, 'succeeded');
      expect(run.params).toEqual({ day: '2024-03-01' });

      const hook = await fetch(`${base}/hooks/hook`, { method: 'POST', body: '{}' });
      expect(hook.status).toBe(202);
      const { run_id: hookRun } = (await hook.json()) as { run_id: string };
      expect((await runState(base, hookRun, 'succeeded')).trigger).toBe('hooked/hook');
      expect((await fetch(`${base}/`)).status).toBe(200);
    } finally {
      await stop(dev);
    }
  }, 120_000);
});

describe('baton server', () => {
  it('serves the API over the embedded store, and exits 0 on SIGTERM', async () => {
    const sandbox = await initProject();
    const port = await freePort();
    const server = sandbox.start(['server', '--port', String(port)], { timeoutMs: 60_000 });
    try {
      await waitForLine(
        server,
        new RegExp(`baton server: UI and API on http://127\\.0\\.0\\.1:${port}/\\n`),
        'the URL',
      );
      const health = (await (await fetch(`http://127.0.0.1:${port}/api/v1/health`)).json()) as Record<string, unknown>;
      expect(health).toMatchObject({ status: 'ok', store: 'sqlite' });
      const flows = (await (await fetch(`http://127.0.0.1:${port}/api/v1/flows`)).json()) as {
        items: { name: string }[];
      };
      expect(flows.items.map((f) => f.name)).toEqual(['daily_report', 'hello']);
    } finally {
      await stop(server);
    }
  }, 90_000);
});
