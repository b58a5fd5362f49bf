/**
 * The loader of flow files at scale and at its limits: large flows load (no check is
 * quadratic), problems of large flows are each reported once with a line and short hints,
 * and the limits on size, nesting and aliases are coded problems with a line. How long a
 * load takes is measured by `npm run bench -- --only yaml`, never asserted here.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/core/limits.js';
import { parseFlowText } from '../../src/define/load-yaml.js';

function chain(n: number, extra = ''): string {
  const lines = ['name: chain', 'params:', '  day: { type: string }', 'tasks:'];
  for (let i = 0; i < n; i++) {
    lines.push(`  t${i}:`, '    kind: shell', '    command: [echo, hi]');
    if (i === 0) lines.push('    with: { day: "${{ params.day }}" }');
    else lines.push(`    depends_on: [t${i - 1}]`, `    with: { previous: "\${{ tasks.t${i - 1}.output }}"${extra} }`);
  }
  return `${lines.join('\n')}\n`;
}

describe('large flows', () => {
  it('a chain of 50,000 tasks, each reading the one before, loads', () => {
    const result = parseFlowText(chain(50_000), { file: 'chain.yaml' });
    expect(result.problems).toEqual([]);
    expect(result.spec?.tasks).toHaveLength(50_000);
    expect(result.spec?.tasks[49_999]?.dependsOn).toEqual(['t49998']);
  });

  it('200,000 keys under one with: load', () => {
    const keys = Array.from({ length: 200_000 }, (_, i) => `      k${i}: v${i}`);
    const text = `name: wide\ntasks:\n  a:\n    kind: shell\n    command: [echo, hi]\n    with:\n${keys.join('\n')}\n`;
    const result = parseFlowText(text, { file: 'wide.yaml' });
    expect(result.problems).toEqual([]);
    expect(Object.keys(result.spec?.tasks[0]?.with ?? {})).toHaveLength(200_000);
  });

  it('a flow read by the full parser (anchors) gives the spec of the same flow written plainly', () => {
    const plain = chain(50).replaceAll('command: [echo, hi]', 'command: [echo, hi]\n    retry: { max_attempts: 3 }');
    const anchored = plain
      .replace('retry: { max_attempts: 3 }', 'retry: &retry { max_attempts: 3 }')
      .replaceAll('retry: { max_attempts: 3 }', 'retry: *retry');
    expect(anchored).toContain('*retry');
    expect(parseFlowText(anchored, { file: 'f.yaml' }).spec).toEqual(parseFlowText(plain, { file: 'f.yaml' }).spec);
  });

  it('20,000 tasks that depend on a missing task are each reported, with a line and a short hint', () => {
    const lines = ['name: broken', 'tasks:'];
    for (let i = 0; i < 20_000; i++)
      lines.push(`  t${i}: { kind: shell, command: [echo], depends_on: [missing_${i}] }`);
    const result = parseFlowText(`${lines.join('\n')}\n`, { file: 'broken.yaml' });
    expect(result.problems).toHaveLength(20_000);
    expect(result.problems.every((p) => p.code === 'DEF_UNKNOWN_DEPENDENCY')).toBe(true);
    expect(result.problems[19_999]?.location).toMatchObject({ line: 20_002, path: 'tasks.t19999.depends_on[0]' });
    expect(Math.max(...result.problems.map((p) => (p.hint ?? '').length))).toBeLessThan(300);
  });

  it('a million syntax errors are reported as the first fifty and a count, and the rest is not read', () => {
    const result = parseFlowText(']'.repeat(1_000_000), { file: 'f.yaml' });
    expect(result.problems).toHaveLength(51);
    expect(result.problems[0]).toMatchObject({ code: 'DEF_INVALID', location: { line: 1, column: 1 } });
    expect(result.problems.at(-1)?.message).toBe(
      'more than 950 more YAML syntax errors after these; the rest of the file was not read',
    );
    const some = parseFlowText('a: b\n c: d\n', { file: 'f.yaml' }).problems;
    expect(some.length).toBeGreaterThan(0);
    expect(some.length).toBeLessThan(51);
  });
});

describe('limits of flow files', () => {
  it('nesting deeper than flow_depth is DEF_LIMIT at the line that goes deeper', () => {
    const depth = LIMITS.flow_depth.default;
    const text = `name: deep\ntasks:\n  a:\n    kind: shell\n    command: [echo]\n    with:\n      v: ${'['.repeat(1_000_000)}\n`;
    const [problem, ...rest] = parseFlowText(text, { file: 'deep.yaml' }).problems;
    expect(rest).toEqual([]);
    expect(problem).toMatchObject({
      code: 'DEF_LIMIT',
      message: `a map or list nested ${depth + 1} deep is over the limit flow_depth (${depth})`,
      location: { file: 'deep.yaml', line: 7 },
    });
    expect(problem?.hint).toContain('flow_depth is fixed at 64');
  });

  it('aliases that expand past flow_alias_nodes are DEF_LIMIT at the alias that goes over', () => {
    const levels = ['  a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) {
      const name = String.fromCharCode(97 + i);
      levels.push(
        `  ${name}: &${name} [${Array(10)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(', ')}]`,
      );
    }
    const text = `name: bomb\nparams:\n${levels.map((l) => l.replace(': &', ': { type: array, default: &').replace(/]$/, '] }')).join('\n')}\ntasks:\n  a: { kind: shell, command: [echo] }\n`;
    const problems = parseFlowText(text, { file: 'bomb.yaml' }).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ code: 'DEF_LIMIT', location: { file: 'bomb.yaml', line: 8 } });
    expect(problems[0]?.message).toMatch(/is over the limit flow_alias_nodes \(1000000\)$/);
  });

  it('text over flow_file_bytes is refused before it is parsed', () => {
    const result = parseFlowText(`name: big\n# ${'x'.repeat(100)}\n`, { file: 'big.yaml', flowFileBytes: 64 });
    expect(result.problems).toEqual([
      expect.objectContaining({
        code: 'DEF_LOAD',
        message: 'the flow text: 113 bytes is over the limit flow_file_bytes (64 bytes)',
        location: { file: 'big.yaml' },
      }),
    ]);
  });
});
