/**
 * `baton dev` through the real binary: a line when a run starts and one when it ends
 * (with what made it, and where to look when it failed), reloading flows as their files
 * change (a new flow's trigger fires; an invalid change keeps the last good version), and its
 * port (UI, API and webhooks) in use ending the command at once, having started nothing.
 */
import { mkdirSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { BatonProcess, Sandbox } from './cli-helpers.js';
import { createSandbox, describeResult, listRuns, useTempDirs, waitFor } from './cli-helpers.js';

const temp = useTempDirs();

/** A flow with an interval trigger firing every second; `fail` makes its task exit 3. */
function tickerYaml(name: string, fail = false): string {
  return [
    `name: ${name}`,
    'triggers:',
    '  often: { kind: interval, every: 1s }',
    'tasks:',
    '  work:',
    '    kind: shell',
    `    command: ['sh', '-c', '${fail ? 'exit 3' : 'echo ok'}']`,
    '    retry: { max_attempts: 1 }',
    '',
  ].join('\n');
}

const PLAIN = `name: plain
tasks:
  work:
    kind: shell
    command: ['sh', '-c', 'echo ok']
`;

function project(files: Record<string, string>): Sandbox {
  const sandbox = createSandbox(temp.mkdir('baton-dev-'));
  mkdirSync(sandbox.path('flows'));
  for (const [name, text] of Object.entries(files)) sandbox.write(name, text);
  return sandbox;
}

/** Waits until baton dev's stderr matches, and returns the match. */
function waitForLine(dev: BatonProcess, pattern: RegExp, what: string, from = 0): Promise<RegExpMatchArray> {
  return waitFor(() => dev.stderr().slice(from).match(pattern) ?? undefined, {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: `${what}; baton dev said:\n${dev.stderr()}`,
  });
}

async function stop(dev: BatonProcess): Promise<void> {
  dev.kill('SIGTERM');
  const result = await dev.done;
  expect(result.code, describeResult(result)).toBe(0);
  expect(result.stdout).toBe('');
}

async function startDev(sandbox: Sandbox): Promise<BatonProcess> {
  const dev = sandbox.start(['dev', '--no-webhooks', '--port', String(await freePort())], { timeoutMs: 60_000 });
  await waitForLine(dev, /baton dev: executing runs and \d+ trigger\(s\)/, 'baton dev to start');
  return dev;
}

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('baton dev', () => {
  it('prints a line when a run starts and when it ends, with its trigger, state and duration', async () => {
    const sandbox = project({ 'flows/tick.yaml': tickerYaml('tick'), 'flows/boom.yaml': tickerYaml('boom', true) });
    const dev = await startDev(sandbox);

    const started = await waitForLine(
      dev,
      /baton dev: run (r[0-9a-z]{15}) of tick started \(trigger tick\/often\)\n/,
      'a start line for tick',
    );
    const id = started[1] as string;
    await waitForLine(
      dev,
      new RegExp(`baton dev: run ${id} of tick succeeded in \\d+(\\.\\d+)?m?s \\(trigger tick/often\\)\\n`),
      `the end line of ${id}`,
    );
    const failed = await waitForLine(
      dev,
      /baton dev: run (r[0-9a-z]{15}) of boom failed in \d+(\.\d+)?m?s \(trigger boom\/often\): TASK_FAILED: (.*)\n/,
      'the end line of a failed run',
    );
    const failedId = failed[1] as string;
    expect(failed[0]).toContain(`see baton show ${failedId} and baton logs ${failedId}`);
    expect(dev.stderr()).toContain(`baton dev: run ${failedId} of boom started (trigger boom/often)`);

    // A run made by hand is `manual`.
    const manual = await sandbox.run(['run', 'tick', '--enqueue', '-q']);
    expect(manual.code, describeResult(manual)).toBe(0);
    const manualId = manual.stdout.trim();
    await waitForLine(
      dev,
      new RegExp(`baton dev: run ${manualId} of tick succeeded in [^\\n]* \\(manual\\)\\n`),
      'the end line of the manual run',
    );
    await stop(dev);

    // One start and one end line per run that ended.
    const runs = (await listRuns(sandbox)).filter((r) => r.state === 'succeeded' || r.state === 'failed');
    for (const run of runs) {
      const lines = dev.stderr().split('\n');
      expect(lines.filter((l) => l.startsWith(`baton dev: run ${run.id} of ${run.flow} started`))).toHaveLength(1);
      expect(lines.filter((l) => l.startsWith(`baton dev: run ${run.id} of ${run.flow} ${run.state} in`))).toHaveLength(
        1,
      );
    }
  });

  it('reloads when a flow file is added or changed; an invalid change keeps the last good version', async () => {
    const sandbox = project({ 'flows/plain.yaml': PLAIN });
    const dev = await startDev(sandbox);
    expect(dev.stderr()).toContain('executing runs and 0 trigger(s)');

    sandbox.write('flows/tick.yaml', tickerYaml('tick'));
    await waitForLine(dev, /baton dev: flows\/tick\.yaml changed; reloaded 2 flows, 1 trigger\n/, 'the reload');
    await waitForLine(dev, /baton dev: run r[0-9a-z]{15} of tick succeeded in .* \(trigger tick\/often\)\n/, 'a run');

    // A typo: reported with its position, and the last good version goes on firing.
    sandbox.write('flows/tick.yaml', tickerYaml('tick').replace('kind: shell', 'kind: shel'));
    const broken = await waitForLine(
      dev,
      /baton dev: flows\/tick\.yaml has 1 problem; its last good version keeps running:\n {2}flows\/tick\.yaml:6:11: DEF_INVALID: tasks\.work\.kind: unknown kind "shel" \(did you mean "shell"\?\)/,
      'the problem of the broken file',
    );
    const after = dev.stderr().indexOf(broken[0]) + broken[0].length;
    await waitForLine(
      dev,
      /baton dev: run r[0-9a-z]{15} of tick succeeded in .* \(trigger tick\/often\)\n/,
      'a run',
      after,
    );

    sandbox.write('flows/tick.yaml', tickerYaml('tick'));
    await waitForLine(dev, /baton dev: flows\/tick\.yaml is valid again\n/, 'the fix', after);

    // Removed: its trigger stops firing.
    rmSync(sandbox.path('flows/tick.yaml'));
    await waitForLine(dev, /baton dev: flows\/tick\.yaml changed; reloaded 1 flow, 0 triggers\n/, 'the removal', after);
    await stop(dev);
  });

  it('exits 2 with PORT_IN_USE naming the port when its port is taken, having started nothing', async () => {
    const sandbox = project({ 'flows/tick.yaml': tickerYaml('tick') });
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as AddressInfo;
    try {
      const result = await sandbox.run(['dev', '--port', String(port)], { timeoutMs: 15_000 });
      expect(result.code, describeResult(result)).toBe(2);
      expect(result.stderr).toContain(
        `error: PORT_IN_USE: cannot serve the UI and API on http://127.0.0.1:${port}: port ${port} is already in use`,
      );
      expect(result.stderr).toContain('--port <n>');
      expect(result.stderr).not.toContain('executing runs');

      const json = await sandbox.run(['dev', '--port', String(port)], {
        timeoutMs: 15_000,
        env: { BATON_JSON_ERRORS: '1' },
      });
      expect(json.code, describeResult(json)).toBe(2);
      const error = (JSON.parse(json.stderr) as { error: { code: string; details: { port: number } } }).error;
      expect(error.code).toBe('PORT_IN_USE');
      expect(error.details.port).toBe(port);
    } finally {
      await new Promise<void>((resolve) => holder.close(() => resolve()));
    }
    // Nothing ran: no trigger service started, so the interval trigger made no run.
    expect(await listRuns(sandbox)).toEqual([]);
  });

  it('takes webhook calls on its port and prints their runs', async () => {
    const sandbox = project({
      'flows/hooked.yaml': `name: hooked
triggers:
  hook: { kind: webhook }
tasks:
  work:
    kind: shell
    command: ['sh', '-c', 'echo ok']
`,
    });
    const port = await freePort();
    const dev = sandbox.start(['dev', '--port', String(port)], { timeoutMs: 60_000 });
    await waitForLine(dev, /baton dev: executing runs and 1 trigger\(s\)/, 'baton dev to start');
    const response = await fetch(`http://127.0.0.1:${port}/hooks/hook`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(202);
    const { run_id: runId } = (await response.json()) as { run_id: string };
    await waitForLine(
      dev,
      new RegExp(`baton dev: run ${runId} of hooked succeeded in .* \\(trigger hooked/hook\\)\\n`),
      'the end line of the webhook run',
    );
    await stop(dev);
  });
});
