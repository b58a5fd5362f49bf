/**
 * "Is B upstream of A?" (upstream-index.ts) against a brute force over random graphs, with
 * and without cycles, asked in random orders (the index keeps answers between questions),
 * and on chains long enough that a transitive closure per task would not fit in memory.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createUpstreamIndex } from '../../src/define/upstream-index.js';

type Deps = Map<string, { name: string }[]>;

function graphOf(n: number, edges: readonly [number, number][]): Deps {
  const deps: Deps = new Map();
  for (let i = 0; i < n; i++) deps.set(`t${i}`, []);
  for (const [from, to] of edges) {
    const list = deps.get(`t${from}`) as { name: string }[];
    if (!list.some((d) => d.name === `t${to}`)) list.push({ name: `t${to}` });
  }
  return deps;
}

/** Every task reachable upstream of `from`, by breadth-first search. */
function upstreamOf(deps: Deps, from: string): Set<string> {
  const seen = new Set<string>();
  const queue = (deps.get(from) ?? []).map((d) => d.name);
  while (queue.length > 0) {
    const id = queue.shift() as string;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const d of deps.get(id) ?? []) queue.push(d.name);
  }
  return seen;
}

describe('the upstream index', () => {
  it('answers as a search of the whole graph would, cycles included', () => {
    const graph = fc.integer({ min: 1, max: 14 }).chain((n) =>
      fc.record({
        n: fc.constant(n),
        edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 3 * n }),
        // Forward-only edges make a DAG, the usual case; the others may close cycles.
        acyclic: fc.boolean(),
        order: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { minLength: 1, maxLength: 60 }),
      }),
    );
    fc.assert(
      fc.property(graph, ({ n, edges, acyclic, order }) => {
        const kept = acyclic ? edges.filter(([a, b]) => b < a) : edges;
        const deps = graphOf(n, kept);
        const index = createUpstreamIndex(deps);
        for (const [a, b] of [...order, ...order.map(([x, y]) => [y, x] as [number, number])]) {
          const from = `t${a}`;
          const target = `t${b}`;
          expect(index.isUpstream(from, target), `${target} upstream of ${from} in ${JSON.stringify(kept)}`).toBe(
            upstreamOf(deps, from).has(target),
          );
        }
      }),
      { numRuns: 500 },
    );
  });

  it('answers for a chain of 100,000 tasks from anywhere to anywhere', () => {
    const n = 100_000;
    const deps: Deps = new Map();
    for (let i = 0; i < n; i++) deps.set(`t${i}`, i === 0 ? [] : [{ name: `t${i - 1}` }]);
    const index = createUpstreamIndex(deps);
    for (let i = 1; i < n; i += 97) {
      expect(index.isUpstream(`t${i}`, 't0')).toBe(true);
      expect(index.isUpstream(`t${i}`, `t${i >> 1}`)).toBe(true);
      expect(index.isUpstream(`t${i >> 1}`, `t${i}`)).toBe(false);
    }
    expect(index.isUpstream('t0', 't0')).toBe(false);
    expect(index.isUpstream('t5', 'nothing')).toBe(false);
  });

  it('answers through joins, where a task hangs under one dependency only', () => {
    // t3 joins t1 and t2; t4 follows t3. t0 is upstream of all through t1 only.
    const deps = graphOf(6, [
      [1, 0],
      [2, 5],
      [3, 2],
      [3, 1],
      [4, 3],
    ]);
    const index = createUpstreamIndex(deps);
    expect(index.isUpstream('t4', 't0')).toBe(true);
    expect(index.isUpstream('t4', 't5')).toBe(true);
    expect(index.isUpstream('t2', 't0')).toBe(false);
    expect(index.isUpstream('t5', 't4')).toBe(false);
  });
});
