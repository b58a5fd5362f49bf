/**
 * A pinned definition stores its tasks compactly (history format 2) and must read back as
 * the very text it was pinned from: the flow's version is a hash of that text. Checked on
 * flows as the front ends write them, and on random tasks of any shape against the text
 * itself: what cannot be restored to the byte is stored whole.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, type FlowSpec, type RetryPolicy, type TaskSpec } from '../../src/core/model.js';
import { pinSpec, readPinnedSpec } from '../../src/core/run-history.js';
import { defineFlow } from '../../src/define/builder.js';

/** The text of the spec as read back from its pinned form. */
function roundTrip(spec: FlowSpec): string {
  return JSON.stringify(readPinnedSpec(pinSpec(spec), 'flow f version x'));
}

/** The stored tasks of a pinned spec. */
function storedTasks(spec: FlowSpec): unknown {
  return (JSON.parse(pinSpec(spec)) as { tasks: unknown }).tasks;
}

function flowOf(tasks: readonly unknown[]): FlowSpec {
  return { name: 'f', params: {}, tasks: tasks as TaskSpec[], pools: {}, maxActiveRuns: null, timeoutMs: null };
}

function task(id: string, fields: Partial<TaskSpec> = {}): TaskSpec {
  return {
    id,
    kind: 'function',
    dependsOn: [],
    triggerRule: 'all_success',
    retry: DEFAULT_RETRY,
    timeoutMs: null,
    pool: null,
    with: {},
    config: {},
    ...fields,
  };
}

describe('the compact form of pinned tasks', () => {
  it('keeps of each task only the fields that differ from the flow’s defaults, and reads back the same text', () => {
    const f = defineFlow({
      name: 'etl',
      pools: { db: 2 },
      defaults: { retry: { maxAttempts: 3, backoff: '5s' }, pool: 'db' },
    });
    const extract = f.task('extract', async () => [1, 2]);
    const parts = [0, 1, 2].map((i) => f.task(`part_${i}`, { after: [extract] }, async () => i));
    f.task('load', { after: parts, retry: { maxAttempts: 5 }, timeout: '1m', labels: ['gpu'] }, async () => null);
    f.map('square', { over: extract }, async () => null);
    const spec = f.toSpec('etl.ts');
    const stored = storedTasks(spec) as { defaults: Record<string, unknown>; list: Record<string, unknown>[] };
    expect(stored.defaults).toMatchObject({ kind: 'function', pool: 'db', retry: { maxAttempts: 3, backoffMs: 5000 } });
    expect(stored.list[0]).toEqual({ id: 'extract' });
    expect(stored.list[1]).toEqual({ id: 'part_0', dependsOn: ['extract'] });
    expect(Object.keys(stored.list[4] as object)).toEqual(['id', 'dependsOn', 'retry', 'timeoutMs', 'labels']);
    expect(roundTrip(spec)).toBe(JSON.stringify(spec));
    expect(pinSpec(spec).length).toBeLessThan(JSON.stringify(spec).length / 2);
  });

  it('takes as defaults what most tasks have, even when the first task has its own', () => {
    const own: RetryPolicy = { ...DEFAULT_RETRY, maxAttempts: 4 };
    const spec = flowOf([
      task('a', { retry: own, kind: 'shell', timeoutMs: 5 }),
      ...['b', 'c', 'd'].map((id) => task(id)),
    ]);
    const stored = storedTasks(spec) as { defaults: TaskSpec; list: Record<string, unknown>[] };
    expect(stored.defaults).toMatchObject({ kind: 'function', retry: DEFAULT_RETRY, timeoutMs: null });
    expect(stored.list).toEqual([
      { id: 'a', kind: 'shell', retry: own, timeoutMs: 5 },
      { id: 'b' },
      { id: 'c' },
      { id: 'd' },
    ]);
    expect(roundTrip(spec)).toBe(JSON.stringify(spec));
  });

  it('leaves out a field equal to its default only when its JSON text is the same, key order included', () => {
    const { neverRetryOn, ...others } = DEFAULT_RETRY;
    const reordered: RetryPolicy = { neverRetryOn, ...others };
    const spec = flowOf([
      task('a'),
      task('b'),
      task('c', { retry: { ...DEFAULT_RETRY } }),
      task('d', { retry: reordered }),
    ]);
    const stored = storedTasks(spec) as { list: Record<string, unknown>[] };
    expect(stored.list.map((t) => 'retry' in t)).toEqual([false, false, false, true]);
    expect(roundTrip(spec)).toBe(JSON.stringify(spec));
  });

  it('stores the tasks whole when a task’s fields are in another order or have no JSON value', () => {
    const { kind, ...rest } = task('b');
    for (const odd of [{ ...rest, kind }, task('b', { timeoutMs: undefined as unknown as null })]) {
      const spec = flowOf([task('a'), odd]);
      expect(Array.isArray(storedTasks(spec))).toBe(true);
      expect(roundTrip(spec)).toBe(JSON.stringify(spec));
    }
  });

  it('reads the whole form in format 2 and definitions pinned in format 1 or before formats', () => {
    const spec = flowOf([task('a'), task('b', { dependsOn: ['a'] })]);
    for (const stored of [{ v: 2, ...spec }, { v: 1, ...spec }, spec]) {
      expect(JSON.stringify(readPinnedSpec(JSON.stringify(stored), 'flow f version x'))).toBe(JSON.stringify(spec));
    }
  });

  it('reads back the text of any tasks it is given', () => {
    fc.assert(
      fc.property(fc.array(taskArb, { minLength: 1, maxLength: 6 }), fc.boolean(), (tasks, nested) => {
        const all =
          nested && tasks.length > 1 ? [...tasks.slice(1), { ...tasks[0], map: mapOf(tasks.slice(1)) }] : tasks;
        const spec = flowOf(all);
        expect(roundTrip(spec)).toBe(JSON.stringify(spec));
      }),
      { numRuns: 500 },
    );
  });
});

const SHARED_RETRY: RetryPolicy = { ...DEFAULT_RETRY, maxAttempts: 2 };

/** Values of the leading fields: defaults and near-defaults, then values with no plain JSON text. */
const HEAD_VALUES: Record<string, { readonly plain: readonly unknown[]; readonly odd: readonly unknown[] }> = {
  kind: { plain: ['function', 'function', 'shell'], odd: [undefined] },
  dependsOn: { plain: [[], [], ['a'], ['a', 'b']], odd: [[undefined]] },
  triggerRule: { plain: ['all_success', 'all_success', 'all_done', null], odd: [Symbol('rule')] },
  retry: {
    plain: [DEFAULT_RETRY, DEFAULT_RETRY, SHARED_RETRY, { ...DEFAULT_RETRY }, { ...SHARED_RETRY, jitter: 'none' }],
    odd: [{ ...DEFAULT_RETRY, retryOn: undefined }],
  },
  timeoutMs: { plain: [null, null, 5000, -0], odd: [Number.NaN, () => 1] },
  pool: { plain: [null, null, 'cpu'], odd: [undefined] },
  with: { plain: [{}, {}, { x: 1 }], odd: [{ x: undefined }, { toJSON: () => 'w' }, new Date(0)] },
  config: { plain: [{}, {}, { module: './a.mjs' }], odd: [[], Object.create(null) as object] },
};

const HEAD = Object.keys(HEAD_VALUES);
const TAIL = ['labels', 'key', 'group', 'description', 'handles', 'finally'];

/** A value of a leading field: nearly always a plain one, so that most flows have a compact form. */
function headValueArb(key: string): fc.Arbitrary<unknown> {
  const { plain, odd } = HEAD_VALUES[key] as (typeof HEAD_VALUES)[string];
  return fc.oneof(
    { arbitrary: fc.constantFrom(...plain), weight: 60 },
    { arbitrary: fc.constantFrom(...odd), weight: 1 },
  );
}

/** Mostly nothing; sometimes `arb`. */
function rarely<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> {
  return fc.oneof({ arbitrary: fc.constant(null), weight: 30 }, { arbitrary: arb, weight: 1 });
}

/** A task as entries, so that keys may come in any order, be missing, or be odd. */
const taskArb = fc
  .record({
    id: fc.constantFrom('a', 'b', 'c', 'a'),
    head: fc.tuple(...HEAD.map(headValueArb)),
    tail: fc.subarray(TAIL),
    // A key that reads as an index: JSON.stringify writes it before every other.
    index: rarely(fc.constant('10')),
    swap: rarely(fc.tuple(fc.nat(12), fc.nat(12))),
    drop: rarely(fc.nat(9)),
  })
  .map(({ id, head, tail, index, swap, drop }) => {
    const entries: [string, unknown][] = [
      ['id', id],
      ...HEAD.map((k, i): [string, unknown] => [k, head[i]]),
      ...tail.map((k): [string, unknown] => [k, k === 'finally' ? true : [k]]),
      ...(index === null ? [] : [[index, 'i'] as [string, unknown]]),
    ];
    if (swap) {
      const [i, j] = [swap[0] % entries.length, swap[1] % entries.length];
      [entries[i], entries[j]] = [entries[j] as [string, unknown], entries[i] as [string, unknown]];
    }
    if (drop !== null) entries.splice(drop, 1);
    return Object.fromEntries(entries) as unknown as TaskSpec;
  });

function mapOf(template: readonly TaskSpec[]): TaskSpec['map'] {
  return { over: '${{ params.xs }}', maxParallel: null, batch: null, onItemFailure: 'fail', group: true, template };
}
