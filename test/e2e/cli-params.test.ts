/**
 * Run params from the command line: typed, checked before anything is recorded, with
 * "did you mean" for typos; `--params-file`; `--dedupe-key` creating a run only once.
 */
import { describe, expect, it } from 'vitest';
import type { ShowJson } from './cli-helpers.js';
import { createSandbox, describeResult, listRuns, parseJson, taskOf, useTempDirs } from './cli-helpers.js';

const temp = useTempDirs();

const FLOW = `name: paramy
params:
  n: { type: integer, default: 1 }
  day: { type: string }
tasks:
  echo:
    kind: shell
    command: ["sh", "-c", "echo n=$N day=$DAY"]
    env: { N: "\${{ params.n }}", DAY: "\${{ params.day }}" }
`;

function sandboxWithFlow() {
  const sandbox = createSandbox(temp.mkdir());
  sandbox.write('paramy.yaml', FLOW);
  return sandbox;
}

describe('run params', () => {
  it('a value of the wrong type is a usage error naming the param, and creates no run', async () => {
    const sandbox = sandboxWithFlow();
    const result = await sandbox.run(['run', 'paramy.yaml', '--param', 'n=abc', '--param', 'day=2024-01-01']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toContain('RUN_PARAM_INVALID');
    expect(result.stderr).toContain('param "n" must be an integer, got "abc"');
    // The hint says what the flow accepts.
    expect(result.stderr).toContain('hint: This flow declares: n (integer, default 1), day (string, required).');
    expect(await listRuns(sandbox)).toEqual([]);
  });

  it('a missing required param and an unknown one are reported together, with did-you-mean', async () => {
    const sandbox = sandboxWithFlow();
    const result = await sandbox.run(['run', 'paramy.yaml', '--param', 'dya=2024-01-01']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toContain('2 invalid params');
    expect(result.stderr).toContain('unknown param "dya" (did you mean "day"?)');
    expect(result.stderr).toContain('missing required param "day" (string)');
    expect(await listRuns(sandbox)).toEqual([]);
  });

  it('a malformed --param is a usage error', async () => {
    const sandbox = sandboxWithFlow();
    const result = await sandbox.run(['run', 'paramy.yaml', '--param', 'day']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toContain('--param "day" must be written name=value');
    expect(await listRuns(sandbox)).toEqual([]);
  });

  it('--params-file supplies typed values, and --param overrides it', async () => {
    const sandbox = sandboxWithFlow();
    sandbox.write('params.json', JSON.stringify({ n: 5, day: '2024-01-02' }));
    const fromFile = await sandbox.run(['run', 'paramy.yaml', '--params-file', 'params.json', '--json']);
    expect(fromFile.code, describeResult(fromFile)).toBe(0);
    const first = parseJson<ShowJson>(fromFile);
    expect(first).toMatchObject({ state: 'succeeded', params: { n: 5, day: '2024-01-02' } });
    expect(taskOf(first, 'echo').output).toBe('n=5 day=2024-01-02');

    sandbox.write('params.yaml', 'n: 7\nday: "2024-01-03"\n');
    const overridden = await sandbox.run(['run', 'paramy.yaml', '--params-file', 'params.yaml', '-p', 'n=8', '--json']);
    expect(overridden.code, describeResult(overridden)).toBe(0);
    expect(parseJson<ShowJson>(overridden).params).toEqual({ n: 8, day: '2024-01-03' });
  });

  it('a --params-file that is not an object is a usage error', async () => {
    const sandbox = sandboxWithFlow();
    sandbox.write('params.json', '[1, 2]');
    const result = await sandbox.run(['run', 'paramy.yaml', '--params-file', 'params.json']);
    expect(result.code, describeResult(result)).toBe(2);
    expect(result.stderr).toContain('expected a JSON or YAML object');
    expect(await listRuns(sandbox)).toEqual([]);
  });

  it('--dedupe-key given twice creates one run', async () => {
    const sandbox = sandboxWithFlow();
    const args = ['run', 'paramy.yaml', '--param', 'day=2024-01-01', '--dedupe-key', 'k', '--json'];
    const first = await sandbox.run(args);
    expect(first.code, describeResult(first)).toBe(0);
    const second = await sandbox.run(args);
    expect(second.code, describeResult(second)).toBe(0);
    const runId = parseJson<ShowJson>(first).id;
    expect(parseJson<ShowJson>(second).id).toBe(runId);
    expect(second.stderr).toContain(`a run with dedupe key k exists already: ${runId}`);
    const runs = await listRuns(sandbox);
    expect(runs.map((r) => r.id)).toEqual([runId]);
  });
});
