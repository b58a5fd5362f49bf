import { describe, expect, it } from 'vitest';
import {
  elapsedMs,
  formatBytes,
  formatCount,
  formatDuration,
  formatRelative,
  formatUtc,
} from '../../ui/src/lib/format.js';
import { cliCommand, shellQuote } from '../../ui/src/lib/cli.js';
import { collectParams, paramFields } from '../../ui/src/lib/params-form.js';
import { dominantState, stateLook } from '../../ui/src/lib/states.js';

describe('formatDuration', () => {
  it('uses the most readable unit', () => {
    expect(formatDuration(null)).toBe('–');
    expect(formatDuration(420)).toBe('420ms');
    expect(formatDuration(4_230)).toBe('4.2s');
    expect(formatDuration(42_000)).toBe('42s');
    expect(formatDuration(192_000)).toBe('3m 12s');
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000)).toBe('2h 05m');
    expect(formatDuration(3 * 86_400_000 + 4 * 3_600_000)).toBe('3d 4h');
  });
});

describe('times and sizes', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  it('measures running and finished durations', () => {
    expect(elapsedMs('2026-12-07T11:59:00Z', null, now)).toBe(60_000);
    expect(elapsedMs('2026-12-07T11:00:00Z', '2026-12-07T11:00:01Z', now)).toBe(1000);
    expect(elapsedMs(null, null, now)).toBeNull();
  });
  it('says how long ago, or how soon', () => {
    expect(formatRelative('2026-12-07T11:55:00Z', now)).toBe('5m ago');
    expect(formatRelative('2026-12-07T15:00:00Z', now)).toBe('in 3h');
    expect(formatUtc('2026-12-07T11:55:00.123Z')).toBe('2026-12-07 11:55:00 UTC');
  });
  it('abbreviates counts and bytes', () => {
    expect(formatCount(950)).toBe('950');
    expect(formatCount(1_234)).toBe('1.2k');
    expect(formatCount(12_345)).toBe('12k');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
  });
});

describe('states', () => {
  it('gives every state an icon and a label besides its colour', () => {
    for (const s of [
      'succeeded',
      'failed',
      'running',
      'retrying',
      'queued',
      'skipped',
      'upstream_failed',
      'cancelled',
    ]) {
      const look = stateLook(s);
      expect(look.icon).not.toBe('?');
      expect(look.color).toMatch(/^var\(--st-/);
    }
    expect(stateLook('brand_new').label).toBe('brand new');
  });
  it('ranks failures above everything else', () => {
    expect(dominantState(['succeeded', 'running', 'failed'])).toBe('failed');
    expect(dominantState(['succeeded', 'skipped'])).toBe('skipped');
    expect(dominantState([])).toBeNull();
  });
});

describe('cliCommand', () => {
  it('writes the CLI line of each action', () => {
    expect(cliCommand({ kind: 'cancel', run: 'r1' })).toBe('baton cancel r1');
    expect(cliCommand({ kind: 'retry-failed', run: 'r1' })).toBe('baton retry r1 --from-failed');
    expect(cliCommand({ kind: 'retry-from', run: 'r1', task: 'load' })).toBe('baton retry r1 --task load --downstream');
    expect(cliCommand({ kind: 'approve', run: 'r1', task: 'gate', by: 'ann', comment: 'looks good' })).toBe(
      "baton approve r1 gate --by ann --comment 'looks good'",
    );
    expect(cliCommand({ kind: 'signal', run: 'r1', event: 'ready', payload: '{"a":1}' })).toBe(
      `baton signal r1 ready --data '{"a":1}'`,
    );
    expect(cliCommand({ kind: 'start', flow: 'etl', params: { day: '2026-01-01', n: 3 } })).toBe(
      'baton run etl -p day=2026-01-01 -p n=3',
    );
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});

describe('params form', () => {
  const schema = {
    type: 'object',
    required: ['day', 'limit'],
    properties: {
      day: { type: 'string', description: 'the day to load' },
      limit: { type: 'integer', default: 10 },
      dry: { type: 'boolean' },
      mode: { enum: ['full', 'incremental'], default: 'full' },
      tables: { type: 'array', items: { type: 'string' } },
    },
  };
  it('derives one field per param', () => {
    const fields = paramFields(schema);
    expect(fields.map((f) => [f.name, f.kind, f.required, f.initial])).toEqual([
      ['day', 'text', true, ''],
      ['limit', 'integer', true, '10'],
      ['dry', 'boolean', false, ''],
      ['mode', 'enum', false, '"full"'],
      ['tables', 'json', false, ''],
    ]);
  });
  it('turns the texts into typed params and names the problems', () => {
    const fields = paramFields(schema);
    const ok = collectParams(fields, { day: '2026-01-01', limit: '5', dry: 'true', tables: '["a"]' });
    expect(ok.problems).toEqual({});
    expect(ok.params).toEqual({ day: '2026-01-01', limit: 5, dry: true, mode: 'full', tables: ['a'] });
    const bad = collectParams(fields, { day: '', limit: '1.5', tables: '[' });
    expect(bad.problems).toEqual({ day: 'required', limit: 'not an integer', tables: 'not valid JSON' });
  });
});
