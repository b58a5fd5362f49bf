/**
 * Flows that would fail the moment they run are refused by `baton validate` (a subflow
 * naming no flow of the project, a NUL in a command), child runs are bounded in depth and
 * in number per run, and the webhook listener of `baton dev` bounds what a slow or idle
 * client can hold: all through the real binary, with the limits set low in baton.yaml.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { BatonProcess, Sandbox, ShowJson, ValidateJson } from './cli-helpers.js';
import { createSandbox, describeResult, listRuns, parseJson, showRun, useTempDirs, waitFor } from './cli-helpers.js';

const temp = useTempDirs();

function project(files: Record<string, string>): Sandbox {
  const sandbox = createSandbox(temp.mkdir('baton-limits-'));
  mkdirSync(sandbox.path('flows'));
  for (const [name, text] of Object.entries(files)) sandbox.write(name, text);
  return sandbox;
}

function problemsOf(result: ValidateJson, file: string) {
  return result.files.find((f) => f.file.endsWith(file))?.problems ?? [];
}

const LEAF = `name: load_region
params:
  region: { type: string, default: eu }
tasks:
  load:
    kind: shell
    command: [echo, '\${{ params.region }}']
`;

describe('validate refuses what would fail at run time', () => {
  it('names a subflow whose flow is not in the project, with "did you mean", at its line; run creates nothing', async () => {
    const sandbox = project({
      'flows/load_region.yaml': LEAF,
      'flows/nightly.yaml': `name: nightly
tasks:
  per_region:
    subflow:
      flow: load_regoin
      params: { region: us }
`,
      // A subflow names a flow, not its file: a path is refused as such.
      'package.json': JSON.stringify({ name: 'limits', type: 'module' }),
      'flows/typed.ts': `import { defineFlow } from 'baton-orchestrator';
const flow = defineFlow({ name: 'typed' });
flow.subflow('child', { flow: 'load_regon' });
export default flow;
`,
      'flows/by_path.ts': `import { defineFlow } from 'baton-orchestrator';
const flow = defineFlow({ name: 'by_path' });
flow.subflow('child', { flow: 'flows/load_region.yaml' });
export default flow;
`,
    });
    const result = await sandbox.run(['validate', '--json']);
    expect(result.code, describeResult(result)).toBe(3);
    const json = parseJson<ValidateJson>(result);
    expect(problemsOf(json, 'load_region.yaml')).toEqual([]);
    expect(problemsOf(json, 'nightly.yaml')).toEqual([
      {
        code: 'DEF_UNKNOWN_FLOW',
        message:
          'tasks.per_region.subflow.flow: task per_region starts flow "load_regoin", which is not a flow of the project (did you mean "load_region"?)',
        hint: 'Change it to "load_region".',
        location: {
          file: sandbox.path('flows/nightly.yaml'),
          line: 5,
          column: 13,
          path: 'tasks.per_region.subflow.flow',
        },
      },
    ]);
    expect(problemsOf(json, 'by_path.ts').map((p) => [p.code, p.message])).toEqual([
      [
        'DEF_INVALID',
        'tasks.child.flow: must be the name of a flow of the project (the `name:` it declares), not a file path, got "flows/load_region.yaml"',
      ],
    ]);

    expect(problemsOf(json, 'typed.ts')).toEqual([
      {
        code: 'DEF_UNKNOWN_FLOW',
        message:
          'task child starts flow "load_regon", which is not a flow of the project (did you mean "load_region"?)',
        hint: 'Change it to "load_region".',
        location: { file: sandbox.path('flows/typed.ts'), line: 3, column: 31 },
      },
    ]);

    const run = await sandbox.run(['run', 'nightly']);
    expect(run.code, describeResult(run)).toBe(3);
    expect(run.stderr).toContain('DEF_UNKNOWN_FLOW');
    expect(await listRuns(sandbox)).toEqual([]);
  });

  it('names a NUL character written in a command argument or an env value', async () => {
    const sandbox = project({
      'flows/nul.yaml': `name: nul
tasks:
  say:
    kind: shell
    command: ["printf", "a\\0b"]
    env: { MARK: "x\\0" }
`,
    });
    const result = await sandbox.run(['validate', '--json']);
    expect(result.code, describeResult(result)).toBe(3);
    const problems = problemsOf(parseJson<ValidateJson>(result), 'nul.yaml');
    expect(problems.map((p) => [p.code, p.location?.line, p.message])).toEqual([
      [
        'DEF_INVALID',
        5,
        'tasks.say.command[1]: task say: argument 1 of its command holds a NUL character, which no command can receive',
      ],
      [
        'DEF_INVALID',
        6,
        'tasks.say.env.MARK: task say: env "MARK" holds a NUL character, which no command can receive',
      ],
    ]);
  });
});

describe('child runs', () => {
  it('stops a flow that starts itself at limits.subflow_depth, with SUBFLOW_DEPTH and depth + 1 runs', async () => {
    const sandbox = project({
      'baton.yaml': 'limits:\n  subflow_depth: 3\n',
      'flows/recurse.yaml': `name: recurse
tasks:
  again:
    subflow: { flow: recurse }
`,
    });
    const result = await sandbox.run(['run', 'recurse'], { timeoutMs: 60_000 });
    expect(result.code, describeResult(result)).toBe(1);
    const runs = await listRuns(sandbox);
    // The top-level run at depth 0 and its descendants at depths 1 to 3.
    expect(runs).toHaveLength(4);
    expect(runs.every((r) => r.state === 'failed')).toBe(true);
    const deepest = await showRun(sandbox, runs[0]?.id ?? '');
    expect(deepest.tasks[0]?.error).toMatchObject({
      code: 'SUBFLOW_DEPTH',
      message: `subflow again of run ${deepest.id}: a child run at depth 4 is over the limit subflow_depth (3)`,
    });
    // The limit is a validation-kind error: the deepest task is not retried.
    expect(deepest.tasks[0]?.attempts).toBe(1);
    const top = await showRun(sandbox, runs.at(-1)?.id ?? '');
    expect(top.tasks[0]?.error?.code).toBe('SUBFLOW_FAILED');
  });

  it('refuses children past limits.child_runs_per_run, creating exactly the limit', async () => {
    const sandbox = project({
      'baton.yaml': 'limits:\n  child_runs_per_run: 3\n',
      'flows/load_region.yaml': LEAF,
      'flows/fan.yaml': `name: fan
params:
  regions: { type: array, default: [eu, us, apac, latam, africa] }
tasks:
  each:
    map: { over: '\${{ params.regions }}' }
    subflow: { flow: load_region, params: { region: '\${{ item }}' } }
`,
    });
    const result = await sandbox.run(['run', 'fan'], { timeoutMs: 60_000 });
    expect(result.code, describeResult(result)).toBe(1);
    const runs = await listRuns(sandbox);
    const fan = runs.find((r) => r.flow === 'fan');
    expect(runs.filter((r) => r.flow === 'load_region')).toHaveLength(3);
    const shown = parseJson<ShowJson>(await sandbox.run(['show', fan?.id ?? '', '--json', '--expand']));
    const refused = shown.tasks.filter((t) => t.error?.code === 'SUBFLOW_CHILD_RUNS');
    expect(refused).toHaveLength(2);
    expect(refused[0]?.error?.message).toMatch(/child run 4 is over the limit child_runs_per_run \(3\)$/);
  });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A raw connection to the listener: what it received, and when the server closed it. */
interface Probe {
  readonly socket: Socket;
  readonly opened: number;
  received(): string;
  /** ms from opening to close, or undefined while open. */
  closedAfter(): number | undefined;
}

async function open(port: number): Promise<Probe> {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  let closedAt: number | undefined;
  socket.setEncoding('utf8').on('data', (s: string) => (received += s));
  // A reset counts as closed too; the error itself is expected.
  socket.on('error', () => undefined);
  socket.on('close', () => (closedAt = Date.now()));
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', resolve);
  });
  const opened = Date.now();
  return {
    socket,
    opened,
    received: () => received,
    closedAfter: () => (closedAt === undefined ? undefined : closedAt - opened),
  };
}

function waitClosed(probe: Probe, timeoutMs: number, what: string): Promise<number> {
  return waitFor(() => probe.closedAfter(), { timeoutMs, intervalMs: 20, what });
}

describe('the webhook listener of baton dev', () => {
  it('closes slow and idle connections after its timeouts, and refuses connections past its limit', async () => {
    const sandbox = project({
      'baton.yaml': [
        'limits:',
        '  http_header_timeout_ms: 1500',
        '  http_body_timeout_ms: 1500',
        '  http_idle_timeout_ms: 1s',
        '  http_connections: 4',
        '',
      ].join('\n'),
      'flows/hooked.yaml': `name: hooked
triggers:
  hook: { kind: webhook }
tasks:
  work:
    kind: shell
    command: [echo, ok]
`,
    });
    const port = await freePort();
    const dev: BatonProcess = sandbox.start(['dev', '--port', String(port)], { timeoutMs: 90_000 });
    await waitFor(() => (/executing runs and 1 trigger/.test(dev.stderr()) ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: `baton dev to start; it said:\n${dev.stderr()}`,
    });
    const probes: Probe[] = [];
    try {
      // Headers sent a line at a time, never finished: cut at the header timeout (checked
      // every 375 ms here), answered 408, however steadily the client keeps sending.
      const slowHeaders = await open(port);
      probes.push(slowHeaders);
      slowHeaders.socket.write('POST /hooks/hook HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      for (let i = 0; i < 20 && slowHeaders.closedAfter() === undefined; i++) {
        await new Promise((r) => setTimeout(r, 200));
        if (!slowHeaders.socket.destroyed) slowHeaders.socket.write(`X-Slow-${i}: 1\r\n`);
      }
      const headersCut = await waitClosed(slowHeaders, 5000, 'the slow-headers connection to be closed');
      expect(headersCut).toBeGreaterThanOrEqual(1400);
      expect(headersCut).toBeLessThan(1500 + 2000);
      expect(slowHeaders.received()).toMatch(/^HTTP\/1\.1 408 /);

      // Headers complete, body stalled after 2 of 100 bytes: cut within header + body timeouts.
      const stalledBody = await open(port);
      probes.push(stalledBody);
      stalledBody.socket.write('POST /hooks/hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"');
      const bodyCut = await waitClosed(stalledBody, 7000, 'the stalled-body connection to be closed');
      expect(bodyCut).toBeGreaterThanOrEqual(2900);
      expect(bodyCut).toBeLessThan(3000 + 2000);
      expect(stalledBody.received()).toMatch(/^HTTP\/1\.1 408 /);

      // Four connections held (silent), the fifth is closed at once while they are still open.
      const held: Probe[] = [];
      for (let i = 0; i < 4; i++) held.push(await open(port));
      probes.push(...held);
      await new Promise((r) => setTimeout(r, 200));
      const extra = await open(port);
      probes.push(extra);
      const extraCut = await waitClosed(extra, 1000, 'the connection past the limit to be closed');
      expect(extraCut).toBeLessThan(1000);
      expect(extra.received()).toBe('');
      expect(held.map((p) => p.closedAfter())).toEqual([undefined, undefined, undefined, undefined]);
      // The silent ones go at the header timeout, which frees the listener for real calls.
      for (const p of held) await waitClosed(p, 5000, 'a silent connection to be closed');

      // A call that completes is answered; its kept-alive connection goes after the idle timeout.
      const keptAlive = await open(port);
      probes.push(keptAlive);
      keptAlive.socket.write('POST /hooks/hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}');
      // The answer is chunked (no length is set), so that it ends with the empty last chunk.
      await waitFor(() => (keptAlive.received().endsWith('\r\n0\r\n\r\n') ? true : undefined), {
        timeoutMs: 10_000,
        what: 'the answer to a complete call',
      });
      const answeredAfter = Date.now() - keptAlive.opened;
      expect(keptAlive.received()).toMatch(/^HTTP\/1\.1 202 /);
      const idleCut = await waitClosed(keptAlive, 6000, 'the idle kept-alive connection to be closed');
      expect(idleCut - answeredAfter).toBeGreaterThanOrEqual(900);
      expect(idleCut - answeredAfter).toBeLessThan(1000 + 2000);
    } finally {
      for (const p of probes) p.socket.destroy();
      dev.kill('SIGTERM');
      const result = await dev.done;
      expect(result.code, describeResult(result)).toBe(0);
    }
  });
});
