/**
 * `baton validate`: every problem of a flow file reported at once, each with
 * file:line:column, in text and in JSON; a broken flow changes nothing.
 */
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { ValidateJson } from './cli-helpers.js';
import { createSandbox, describeResult, listRuns, parseJson, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

// Four problems: an unknown key (line 7), a bad duration (line 11), an unknown
// dependency (line 12) and the cycle b → c → a → b (in run order), reported at b's
// depends_on (line 12).
const BROKEN = `name: broken
tasks:
  a:
    kind: shell
    command: ["echo", "a"]
    depends_on: [c]
    timout: 5m
  b:
    kind: shell
    command: ["echo", "b"]
    timeout: 5 minutes
    depends_on: [a, missing_task]
  c:
    kind: shell
    command: ["echo", "c"]
    depends_on: [b]
`;

const VALID = `name: fine
params:
  day: { type: string, default: '2024-01-01' }
tasks:
  a:
    kind: shell
    command: ["echo", "\${{ params.day }}"]
    timeout: 30s
  b:
    kind: shell
    command: ["echo", "b"]
    depends_on: [a]
`;

describe('baton validate', () => {
  it('reports every problem of a file with file:line:column and exits 3', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('broken.yaml', BROKEN);
    const result = await sandbox.run(['validate', 'broken.yaml']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stdout).toContain(`FAIL  ${file}: 4 problem(s)`);
    expect(result.stdout).toContain(`${file}:7:5: DEF_INVALID: tasks.a.timout: unknown key (did you mean "timeout"?)`);
    expect(result.stdout).toContain(`${file}:11:14: DEF_INVALID: tasks.b.timeout: must be a duration`);
    expect(result.stdout).toContain('got "5 minutes"');
    expect(result.stdout).toContain(
      `${file}:12:21: DEF_UNKNOWN_DEPENDENCY: tasks.b.depends_on[1]: task b depends on "missing_task"`,
    );
    expect(result.stdout).toContain(`${file}:12:5: DEF_CYCLE: tasks.b.depends_on: cycle b → c → a → b`);
    // Each problem says what to do next.
    expect(result.stdout.match(/^\s+hint: /gm)).toHaveLength(4);
  });

  it('--json lists the problems with their locations', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('broken.yaml', BROKEN);
    const result = await sandbox.run(['validate', file, '--json']);
    expect(result.code, describeResult(result)).toBe(3);
    const report = parseJson<ValidateJson>(result);
    expect(report.ok).toBe(false);
    expect(report.files).toHaveLength(1);
    const problems = report.files[0]?.problems ?? [];
    expect(problems.map((p) => [p.code, p.location?.line, p.location?.column, p.location?.path])).toEqual([
      ['DEF_INVALID', 7, 5, 'tasks.a.timout'],
      ['DEF_INVALID', 11, 14, 'tasks.b.timeout'],
      ['DEF_CYCLE', 12, 5, 'tasks.b.depends_on'],
      ['DEF_UNKNOWN_DEPENDENCY', 12, 21, 'tasks.b.depends_on[1]'],
    ]);
    expect(problems.every((p) => p.location?.file === file && typeof p.hint === 'string')).toBe(true);
    expect(problems.find((p) => p.code === 'DEF_CYCLE')?.message).toContain('b → c → a → b');
  });

  it('a valid file passes', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('fine.yaml', VALID);
    const text = await sandbox.run(['validate', 'fine.yaml']);
    expect(text.code, describeResult(text)).toBe(0);
    expect(text.stdout).toMatch(/^ok {4}/);
    expect(text.stdout).toMatch(/\(flow fine, version [0-9a-f]{12}\)$/m);
    expect(text.stdout).toContain(file);
    const json = await sandbox.run(['validate', 'fine.yaml', '--json']);
    expect(json.code, describeResult(json)).toBe(0);
    expect(parseJson<ValidateJson>(json)).toMatchObject({ ok: true, files: [{ file, name: 'fine', problems: [] }] });
  });

  it('validates every flow of a project folder and fails if one is broken', async () => {
    const sandbox = createSandbox(temp.mkdir());
    sandbox.write('baton.yaml', 'concurrency: 4\n');
    mkdirSync(sandbox.path('flows'));
    sandbox.write('flows/fine.yaml', VALID);
    sandbox.write('flows/broken.yaml', BROKEN);
    const result = await sandbox.run(['validate', '--json']);
    expect(result.code, describeResult(result)).toBe(3);
    const report = parseJson<ValidateJson>(result);
    expect(report.files.map((f) => [f.name, f.problems.length])).toEqual([
      [null, 4],
      ['fine', 0],
    ]);
  });

  it('running a broken flow file exits 3 with the same problems and creates no run', async () => {
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('broken.yaml', BROKEN);
    const result = await sandbox.run(['run', 'broken.yaml']);
    expect(result.code, describeResult(result)).toBe(3);
    expect(result.stderr).toContain(`4 problem(s) in ${file}`);
    expect(result.stderr).toContain(`${file}:12:5: DEF_CYCLE`);
    expect(await listRuns(sandbox)).toEqual([]);
  });
});
