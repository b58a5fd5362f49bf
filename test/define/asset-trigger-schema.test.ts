/**
 * The `asset` trigger kind as flow files declare it: defaults filled, and every mistake
 * (unknown key, empty or bad asset list, bad wait_for or min_interval) reported at load
 * with DEF_INVALID, its file and line, all at once.
 */
import { describe, expect, it } from 'vitest';
import type { Problem } from '../../src/core/errors.js';
import { parseFlowText } from '../../src/define/load-yaml.js';

function flow(trigger: readonly string[]): string {
  return [
    'name: report',
    'triggers:',
    '  on_assets:',
    ...trigger.map((l) => `    ${l}`),
    'tasks:',
    '  work:',
    '    kind: shell',
    '    command: ["true"]',
    '',
  ].join('\n');
}

function problems(text: string): { code: string; line: number | undefined; path: string; message: string }[] {
  const result = parseFlowText(text, { file: 'flows/report.yaml' });
  expect(result.spec).toBeUndefined();
  return result.problems.map((p: Problem) => ({
    code: p.code,
    line: p.location?.line,
    path: p.location?.path ?? '',
    message: p.message,
  }));
}

describe('asset triggers in flow files', () => {
  it('fills the defaults: wait_for all, no min_interval, and declares the upstream_assets param', () => {
    const result = parseFlowText(flow(['kind: asset', 'assets: [orders_clean, customers]']), { file: 'f.yaml' });
    expect(result.problems).toEqual([]);
    expect(result.spec?.triggers).toEqual([
      {
        name: 'on_assets',
        kind: 'asset',
        params: {},
        config: { assets: ['orders_clean', 'customers'], waitFor: 'all', minIntervalMs: 0, pollMs: 1000 },
      },
    ]);
    expect(result.spec?.params.upstream_assets).toMatchObject({ type: 'object', default: {} });
  });

  it('reads wait_for any and min_interval as a duration', () => {
    const result = parseFlowText(
      flow(['kind: asset', 'assets: [orders_clean]', 'wait_for: any', 'min_interval: 10m']),
      { file: 'f.yaml' },
    );
    expect(result.spec?.triggers?.[0]?.config).toMatchObject({ waitFor: 'any', minIntervalMs: 600_000 });
  });

  it('refuses an empty asset list with its line', () => {
    expect(problems(flow(['kind: asset', 'assets: []']))).toEqual([
      expect.objectContaining({ code: 'DEF_INVALID', line: 5, message: expect.stringContaining('at least one asset') }),
    ]);
  });

  it('refuses an unknown key, a bad wait_for and a bad key, all at once', () => {
    const found = problems(flow(['kind: asset', 'assets: ["bad key!"]', 'wait_for: some', 'every: 5m']));
    expect(found.map((p) => p.code)).toEqual(['DEF_INVALID', 'DEF_INVALID', 'DEF_INVALID']);
    expect(found.map((p) => p.line).sort()).toEqual([5, 6, 7]);
    expect(found.find((p) => p.line === 6)?.message).toMatch(/all.*any/);
    expect(found.find((p) => p.line === 5)?.message).toMatch(/asset key/);
    expect(found.find((p) => p.line === 7)?.message).toMatch(/every/);
  });

  it('refuses a missing asset list and an asset listed twice', () => {
    expect(problems(flow(['kind: asset']))).toEqual([
      expect.objectContaining({ code: 'DEF_INVALID', line: 3, path: 'triggers.on_assets.assets' }),
    ]);
    expect(problems(flow(['kind: asset', 'assets: [a, a]']))).toEqual([
      expect.objectContaining({ code: 'DEF_INVALID', line: 5, message: expect.stringContaining('twice') }),
    ]);
  });

  it('accepts asset keys that no flow declares', () => {
    expect(
      parseFlowText(flow(['kind: asset', 'assets: [from_elsewhere/table.v2]']), { file: 'f.yaml' }).problems,
    ).toEqual([]);
  });
});
