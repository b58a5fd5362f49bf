/**
 * `baton validate` on hostile and huge flow files, through the real CLI: each ends with a
 * coded problem that names the limit and the line (or with exit 0), within a deadline and
 * in a process whose heap is capped, so that a parser that runs away fails the test by
 * running out of memory rather than by slowing a machine down. Speed itself is measured by
 * `npm run bench -- --only yaml`; the deadlines here are only generous bounds.
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/core/limits.js';
import {
  createSandbox,
  describeResult,
  parseJson,
  useTempDirs,
  type CliResult,
  type ValidateJson,
} from './cli-helpers.js';

const temp = useTempDirs();

/** A heap far smaller than the 4 GB that 10 MB of `[` used to take. */
const SMALL_HEAP = { NODE_OPTIONS: '--max-old-space-size=256' };

/** `baton validate <file> --json` with a small heap (by default); the problems of the one file. */
async function validate(name: string, text: string, timeoutMs = 10_000, env = SMALL_HEAP) {
  const sandbox = createSandbox(temp.mkdir());
  const file = sandbox.path(name);
  writeFileSync(file, text);
  const result: CliResult = await sandbox.run(['validate', file, '--json'], { env, timeoutMs });
  return { file, result, problems: () => parseJson<ValidateJson>(result).files[0]?.problems ?? [] };
}

const SHELL_TASK = 'kind: shell\n    command: [echo, ok]';

describe('baton validate: limits of flow files', () => {
  it('refuses 10 MB of "[" at once, by its size', async () => {
    const { file, result, problems } = await validate('brackets.yaml', '['.repeat(10 * 1024 * 1024));
    expect(result.code, describeResult(result)).toBe(3);
    expect(problems()).toEqual([
      expect.objectContaining({
        code: 'DEF_LOAD',
        message: `flow file ${file}: 10 MiB is over the limit flow_file_bytes (8 MiB)`,
        location: { file },
      }),
    ]);
  });

  it('refuses 7 MB of "[" (under the size limit) at the first bracket too deep', async () => {
    const { file, result, problems } = await validate('brackets.yaml', '['.repeat(7 * 1024 * 1024));
    expect(result.code, describeResult(result)).toBe(3);
    const depth = LIMITS.flow_depth.default;
    expect(problems()).toEqual([
      expect.objectContaining({
        code: 'DEF_LIMIT',
        message: `a map or list nested ${depth + 1} deep is over the limit flow_depth (${depth})`,
        location: { file, line: 1, column: depth + 1 },
      }),
    ]);
  });

  it('names the nesting limit and its line where deep nesting once overflowed the stack', async () => {
    const cases = {
      'lists.yaml': `name: deep\ntasks:\n  a:\n    ${SHELL_TASK}\n    with: { v: ${'['.repeat(100_000)}${']'.repeat(100_000)} }\n`,
      'maps.yaml': `name: deep\ntasks:\n  a:\n    ${SHELL_TASK}\n    with: ${'{a: '.repeat(100_000)}1${'}'.repeat(100_000)}\n`,
      'blocks.yaml': `name: deep\ntasks:\n  a:\n    ${SHELL_TASK}\n    with:\n${Array.from({ length: 2_000 }, (_, i) => `${' '.repeat(6 + 2 * i)}a:`).join('\n')} 1\n`,
    };
    for (const [name, text] of Object.entries(cases)) {
      const { result, problems } = await validate(name, text);
      expect(result.code, describeResult(result)).toBe(3);
      expect(result.stdout + result.stderr).not.toContain('Maximum call stack');
      const [problem, ...rest] = problems();
      expect(rest, name).toEqual([]);
      expect(problem, name).toMatchObject({ code: 'DEF_LIMIT' });
      expect(problem?.message, name).toMatch(/ is over the limit flow_depth \(64\)$/);
      expect(problem?.location?.line, name).toBeGreaterThanOrEqual(6);
    }
    // The text form says file:line:column, the code and the limit, and how to get under it.
    const sandbox = createSandbox(temp.mkdir());
    const file = sandbox.write('deep.yaml', cases['lists.yaml']);
    const text = await sandbox.run(['validate', file], { env: SMALL_HEAP });
    expect(text.code, describeResult(text)).toBe(3);
    expect(text.stdout).toMatch(new RegExp(`${file}:6:\\d+: DEF_LIMIT: a map or list nested 65 deep`));
    expect(text.stdout).toContain('hint: Flatten the data here');
  });

  it('refuses an alias bomb (a billion laughs) at the alias that goes over', async () => {
    const levels = ['  - &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
    for (let i = 1; i < 9; i++)
      levels.push(
        `  - &l${i} [${Array(10)
          .fill(`*l${i - 1}`)
          .join(', ')}]`,
      );
    const text = `name: bomb\ntasks:\n  a:\n    ${SHELL_TASK}\n    with:\n      v:\n${levels.map((l) => `    ${l}`).join('\n')}\n`;
    const { file, result, problems } = await validate('bomb.yaml', text);
    expect(result.code, describeResult(result)).toBe(3);
    expect(problems()).toEqual([
      expect.objectContaining({
        code: 'DEF_LIMIT',
        // Lists l0 to l4 add 123,400 values; the eighth alias of l5 (line 13) goes over.
        location: expect.objectContaining({ file, line: 13 }),
      }),
    ]);
    expect(problems()[0]?.message).toMatch(/is over the limit flow_alias_nodes \(1000000\)$/);
  });

  it('refuses a file over flow_file_bytes before reading it', async () => {
    const text = `name: big\ntasks:\n  a:\n    ${SHELL_TASK}\n# ${'x'.repeat(9 * 1024 * 1024)}\n`;
    const { file, result, problems } = await validate('big.yaml', text);
    expect(result.code, describeResult(result)).toBe(3);
    expect(problems()).toEqual([
      expect.objectContaining({
        code: 'DEF_LOAD',
        message: expect.stringMatching(
          new RegExp(`^flow file ${file}: .* is over the limit flow_file_bytes \\(8 MiB\\)$`),
        ),
        hint: expect.stringContaining('limits.flow_file_bytes'),
      }),
    ]);
  });

  it('validates a chain of 50,000 tasks, each with an expression reading the one before', async () => {
    const lines = ['name: chain', 'params:', '  day: { type: string, default: "2024-01-01" }', 'tasks:'];
    for (let i = 0; i < 50_000; i++) {
      lines.push(`  t${i}:`, `    ${SHELL_TASK}`);
      if (i === 0) lines.push('    with: { day: "${{ params.day }}" }');
      else lines.push(`    depends_on: [t${i - 1}]`, `    with: { previous: "\${{ tasks.t${i - 1}.output }}" }`);
    }
    // A valid flow of 6 MB is kept whole (its spec, its version): a heap of a few hundred MB.
    const { result } = await validate('chain.yaml', `${lines.join('\n')}\n`, 30_000, {
      NODE_OPTIONS: '--max-old-space-size=1024',
    });
    expect(result.code, describeResult(result)).toBe(0);
    expect(parseJson<ValidateJson>(result)).toMatchObject({ ok: true, files: [{ problems: [] }] });
  });
});
