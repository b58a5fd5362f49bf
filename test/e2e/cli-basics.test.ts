/**
 * The everyday commands as a new user meets them: init, validate, run, runs, show, flows,
 * logs, and the usage errors around them.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunJson, ShowJson } from './cli-helpers.js';
import { REPO_ROOT, baton, createSandbox, describeResult, parseJson, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

const TASK_KEYS = ['attempts', 'ended_at', 'error', 'id', 'output', 'skip_reason', 'started_at', 'state'];

describe('baton basics', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await baton(['--version'], { cwd: temp.mkdir() });
    expect(result.code, describeResult(result)).toBe(0);
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it('init, validate, run, show, runs, flows and logs work together in a new project', async () => {
    const dir = temp.mkdir();
    const cli = (args: string[]) => baton(args, { cwd: dir });

    const init = await cli(['init']);
    expect(init.code, describeResult(init)).toBe(0);
    expect(init.stdout).toContain('project ready');
    expect(init.stdout).toContain('next: npm install && npx baton run hello');
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    // Run from a clone, init depends on the clone. Before `npm install`, the TypeScript flow's
    // import of the package resolves to the Baton that runs it.
    const dependency = pkg.dependencies['baton-orchestrator'] ?? '';
    expect(dependency).toMatch(/^file:/);
    expect(resolve(dir, dependency.slice('file:'.length))).toBe(REPO_ROOT);
    expect(existsSync(join(dir, 'node_modules'))).toBe(false);

    const validate = await cli(['validate']);
    expect(validate.code, describeResult(validate)).toBe(0);
    expect(validate.stdout).toMatch(/^ok\s+.*hello\.ts/m);
    expect(validate.stdout).toMatch(/^ok\s+.*daily_report\.yaml/m);

    const run = await cli(['run', 'hello', '--param', 'who=x']);
    expect(run.code, describeResult(run)).toBe(0);
    const created = /run (\S+) of hello/.exec(run.stderr);
    expect(created, run.stderr).not.toBeNull();
    const runId = (created as RegExpExecArray)[1] as string;

    const show = await cli(['show', runId, '--json']);
    expect(show.code, describeResult(show)).toBe(0);
    const shown = parseJson<ShowJson>(show);
    expect(shown).toMatchObject({ id: runId, flow: 'hello', state: 'succeeded', params: { who: 'x' } });
    expect(shown.tasks.map((t) => t.id)).toEqual(['greet', 'announce']);
    for (const task of shown.tasks) {
      // duration_ms is the one key allowed beyond the documented set.
      expect(
        Object.keys(task)
          .filter((k) => k !== 'duration_ms')
          .sort(),
      ).toEqual(TASK_KEYS);
      expect(task).toMatchObject({ state: 'succeeded', attempts: 1, skip_reason: null, error: null });
    }
    expect(shown.tasks[0]?.output).toEqual({ greeting: 'hello, x!', length: 9 });

    const runs = await cli(['runs', '--json']);
    expect(runs.code, describeResult(runs)).toBe(0);
    const listed = parseJson<RunJson[]>(runs);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ id: runId, flow: 'hello', state: 'succeeded' });
    expect(Date.parse(listed[0]?.created_at ?? '')).not.toBeNaN();

    const failed = await cli(['runs', '--state', 'failed', '--json']);
    expect(failed.code, describeResult(failed)).toBe(0);
    expect(parseJson<RunJson[]>(failed)).toEqual([]);

    const flows = await cli(['flows', '--json']);
    expect(flows.code, describeResult(flows)).toBe(0);
    expect(parseJson<unknown[]>(flows)).toEqual([
      expect.objectContaining({ name: 'daily_report', tasks: 3, problems: [] }),
      expect.objectContaining({
        name: 'hello',
        tasks: 2,
        problems: [],
        params: { who: { type: 'string', default: 'world' } },
      }),
    ]);

    const logs = await cli(['logs', runId]);
    expect(logs.code, describeResult(logs)).toBe(0);
    expect(logs.stdout).toContain('hello, x!');

    const greetLogs = await cli(['logs', runId, 'greet', '--json']);
    expect(greetLogs.code, describeResult(greetLogs)).toBe(0);
    const lines = greetLogs.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { task: string; text: string });
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.task === 'greet')).toBe(true);
  });

  it('runs --state rejects a state that does not exist', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const result = await sandbox.run(['runs', '--state', 'done']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toContain('--state done: not a run state');
    expect(result.stderr).toContain('succeeded');
  });

  it('an unknown option is a usage error with a suggestion', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const result = await sandbox.run(['runs', '--jsn']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain("error: unknown option '--jsn'");
    expect(result.stderr).toContain('(Did you mean --json?)');
    // A usage error is caught before any database is opened.
    expect(existsSync(sandbox.db)).toBe(false);
  });

  it('an unknown command is a usage error with a suggestion', async () => {
    const result = await baton(['rnu', 'hello'], { cwd: temp.mkdir() });
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toContain("error: unknown command 'rnu'");
    expect(result.stderr).toContain('(Did you mean run?)');
  });

  it('show of an unknown run exits 4 with RUN_NOT_FOUND', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const result = await sandbox.run(['show', 'nope']);
    expect(result.code, describeResult(result)).toBe(4);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('RUN_NOT_FOUND');
    expect(result.stderr).toContain('no run with id nope');
  });

  it('run of an unknown flow exits 4 with FLOW_NOT_FOUND', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const result = await sandbox.run(['run', 'nothing_here']);
    expect(result.code, describeResult(result)).toBe(4);
    expect(result.stderr).toContain('FLOW_NOT_FOUND');
  });

  it('run of a flow whose file cannot be loaded names that file and its problem', async () => {
    const dir = temp.mkdir();
    mkdirSync(join(dir, 'flows'));
    writeFileSync(
      join(dir, 'flows', 'nightly.yaml'),
      'name: nightly_load\ntasks:\n  a: { kind: shell, comand: [echo] }\n',
    );
    const result = await baton(['run', 'nightly_load'], { cwd: dir });
    expect(result.code, describeResult(result)).toBe(4);
    expect(result.stderr).toContain('no flow named "nightly_load"');
    expect(result.stderr).toContain(
      `${join(dir, 'flows', 'nightly.yaml')}:3:21: DEF_INVALID: tasks.a.comand: unknown key`,
    );
    expect(result.stderr).toContain('baton validate');
  });
});
