import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import type { GraphNodeInput } from '../../src/core/graph.js';
import {
  analyzeGraph,
  compileGraph,
  downstreamClosure,
  findGraphProblems,
  rememberGraph,
  upstreamClosure,
} from '../../src/core/graph.js';

const n = (id: string, ...dependsOn: string[]): GraphNodeInput => ({ id, dependsOn });

/** Kahn's algorithm: true if every node can be ordered, i.e. there is no cycle. */
function isAcyclic(nodes: readonly GraphNodeInput[]): boolean {
  const remaining = new Map(nodes.map((node) => [node.id, new Set(node.dependsOn)]));
  let progressed = true;
  while (progressed) {
    progressed = false;
    for (const [id, deps] of remaining) {
      if ([...deps].every((d) => !remaining.has(d))) {
        remaining.delete(id);
        progressed = true;
      }
    }
  }
  return remaining.size === 0;
}

/** A reported cycle is real if it closes, visits no task twice and follows real edges. */
function expectRealCycle(nodes: readonly GraphNodeInput[], path: readonly string[]): void {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  expect(path.length).toBeGreaterThanOrEqual(3);
  expect(path[path.length - 1]).toBe(path[0]);
  const members = path.slice(0, -1);
  expect(new Set(members).size).toBe(members.length);
  for (let k = 0; k + 1 < path.length; k++) {
    // Execution order: each task is a dependency of the next one.
    expect(byId.get(path[k + 1] as string)?.dependsOn).toContain(path[k]);
  }
}

/**
 * Random DAG: task i may depend only on tasks declared before it, then the declaration
 * order is shuffled so that the search does not meet tasks in topological order.
 */
const dagArb = fc
  .integer({ min: 1, max: 20 })
  .chain((size) =>
    fc.tuple(
      fc.tuple(...Array.from({ length: size }, (_, i) => fc.subarray(Array.from({ length: i }, (_, j) => j)))),
      fc.shuffledSubarray(
        Array.from({ length: size }, (_, i) => i),
        { minLength: size, maxLength: size },
      ),
    ),
  )
  .map(([deps, order]) => order.map((i) => n(`t${i}`, ...(deps[i] as number[]).map((j) => `t${j}`))));

/** Random directed graph (cycles allowed, no self edges). */
const graphArb = fc
  .integer({ min: 1, max: 10 })
  .chain((size) =>
    fc
      .array(fc.tuple(fc.nat(size - 1), fc.nat(size - 1)), { maxLength: size * 2 })
      .map((edges) =>
        Array.from({ length: size }, (_, i) =>
          n(`t${i}`, ...new Set(edges.filter(([from, to]) => from === i && to !== i).map(([, to]) => `t${to}`))),
        ),
      ),
  );

describe('findGraphProblems', () => {
  it('finds nothing wrong with a diamond', () => {
    expect(findGraphProblems([n('a'), n('b', 'a'), n('c', 'a'), n('d', 'b', 'c')])).toEqual([]);
  });

  it('finds nothing wrong with an empty graph', () => {
    expect(findGraphProblems([])).toEqual([]);
  });

  it('reports a duplicate id at the index of the second declaration', () => {
    expect(findGraphProblems([n('a'), n('b', 'a'), n('a')])).toEqual([{ kind: 'duplicate', id: 'a', index: 2 }]);
  });

  it('reports every unknown dependency with the task that names it', () => {
    expect(findGraphProblems([n('a', 'x'), n('b', 'a', 'y')])).toEqual([
      { kind: 'unknown_dependency', id: 'a', dependency: 'x' },
      { kind: 'unknown_dependency', id: 'b', dependency: 'y' },
    ]);
  });

  it('reports a self dependency, not as a cycle', () => {
    expect(findGraphProblems([n('a', 'a'), n('b', 'a')])).toEqual([{ kind: 'self_dependency', id: 'a' }]);
  });

  it('reports all problems at once', () => {
    const problems = findGraphProblems([n('a', 'a'), n('b', 'ghost'), n('b'), n('c', 'd'), n('d', 'c')]);
    expect(problems).toEqual([
      { kind: 'duplicate', id: 'b', index: 2 },
      { kind: 'self_dependency', id: 'a' },
      { kind: 'unknown_dependency', id: 'b', dependency: 'ghost' },
      { kind: 'cycle', path: ['d', 'c', 'd'] },
    ]);
  });

  it('prints a two-task cycle in execution order', () => {
    // a depends on b: b runs first, then a, whose dependant b closes the cycle.
    expect(findGraphProblems([n('a', 'b'), n('b', 'a')])).toEqual([{ kind: 'cycle', path: ['b', 'a', 'b'] }]);
  });

  it('prints a three-task cycle in execution order (b → c → a → b), as the YAML loader shows it', () => {
    expect(findGraphProblems([n('a', 'c'), n('b', 'a'), n('c', 'b')])).toEqual([
      { kind: 'cycle', path: ['b', 'c', 'a', 'b'] },
    ]);
  });

  it('prints a cycle met through a task outside it from the task it was entered at', () => {
    // entry → a → b → c → a in dependency direction; execution order c → b → a → c.
    expect(findGraphProblems([n('entry', 'a'), n('a', 'b'), n('b', 'c'), n('c', 'a')])).toEqual([
      { kind: 'cycle', path: ['c', 'b', 'a', 'c'] },
    ]);
  });

  it('reports two disjoint cycles separately and each once', () => {
    const problems = findGraphProblems([n('a', 'b'), n('b', 'a'), n('c', 'd'), n('d', 'c'), n('e', 'a', 'c')]);
    expect(problems).toEqual([
      { kind: 'cycle', path: ['b', 'a', 'b'] },
      { kind: 'cycle', path: ['d', 'c', 'd'] },
    ]);
  });

  it('never reports a cycle in a DAG', () => {
    fc.assert(
      fc.property(dagArb, (nodes) => {
        expect(findGraphProblems(nodes)).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('reports a real cycle once a back edge is added to a DAG', () => {
    fc.assert(
      fc.property(dagArb, fc.nat(), fc.nat(), (nodes, pickTask, pickAncestor) => {
        const graph = compileGraph(nodes);
        const withUpstream = nodes.map((_, i) => i).filter((i) => upstreamClosure(graph, i).size > 0);
        fc.pre(withUpstream.length > 0);
        const late = withUpstream[pickTask % withUpstream.length] as number;
        const ancestors = [...upstreamClosure(graph, late)].sort((x, y) => x - y);
        const early = ancestors[pickAncestor % ancestors.length] as number;
        // `late` already depends (transitively) on `early`; make `early` depend on `late`.
        const cyclic = nodes.map((node, i) =>
          i === early ? n(node.id, ...node.dependsOn, nodes[late]?.id as string) : node,
        );
        const cycles = findGraphProblems(cyclic).filter((p) => p.kind === 'cycle');
        expect(cycles.length).toBeGreaterThan(0);
        for (const cycle of cycles) expectRealCycle(cyclic, cycle.path);
      }),
      { numRuns: 300 },
    );
  });

  it('reports a cycle exactly when Kahn cannot order the graph, and only real ones, each once', () => {
    fc.assert(
      fc.property(graphArb, (nodes) => {
        const cycles = findGraphProblems(nodes).flatMap((p) => (p.kind === 'cycle' ? [p.path] : []));
        expect(cycles.length > 0).toBe(!isAcyclic(nodes));
        for (const path of cycles) expectRealCycle(nodes, path);
        const keys = cycles.map((path) => [...path.slice(0, -1)].sort().join(','));
        expect(new Set(keys).size).toBe(keys.length);
      }),
      { numRuns: 500 },
    );
  });
});

describe('compileGraph', () => {
  it('builds dense upstream and downstream adjacency in declaration order', () => {
    const g = compileGraph([n('a'), n('b', 'a'), n('c', 'a'), n('d', 'c', 'b')]);
    expect(g.ids).toEqual(['a', 'b', 'c', 'd']);
    expect([...g.indexOf]).toEqual([
      ['a', 0],
      ['b', 1],
      ['c', 2],
      ['d', 3],
    ]);
    expect(g.upstream).toEqual([[], [0], [0], [2, 1]]);
    expect(g.downstream).toEqual([[1, 2], [3], [3], []]);
  });

  it('counts a dependency listed twice once', () => {
    const g = compileGraph([n('a'), n('b', 'a', 'a')]);
    expect(g.upstream).toEqual([[], [0]]);
    expect(g.downstream).toEqual([[1], []]);
  });

  it('throws on an unknown dependency', () => {
    expect(() => compileGraph([n('a', 'ghost')])).toThrow('compileGraph: unknown dependency ghost of a');
  });

  it('keeps upstream and downstream mirror images of each other on random DAGs', () => {
    fc.assert(
      fc.property(dagArb, (nodes) => {
        const g = compileGraph(nodes);
        nodes.forEach((node, i) => {
          expect([...(g.upstream[i] ?? [])].map((j) => g.ids[j]).sort()).toEqual([...new Set(node.dependsOn)].sort());
          for (const j of g.upstream[i] ?? []) expect(g.downstream[j]).toContain(i);
        });
      }),
      { numRuns: 200 },
    );
  });
});

/** The dense graph by brute force: each dependency once, in the order first listed. */
function bruteGraph(nodes: readonly GraphNodeInput[]) {
  const ids = nodes.map((node) => node.id);
  const upstream = nodes.map((node) => [...new Set(node.dependsOn)].map((d) => ids.indexOf(d)));
  const downstream = ids.map((_, j) => ids.flatMap((_, i) => ((upstream[i] as number[]).includes(j) ? [i] : [])));
  return { ids, upstream, downstream };
}

/** A DAG whose tasks list some dependencies again, a few of them many times (past the short-list search). */
const repeatedArb = fc
  .tuple(dagArb, fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 40 }))))
  .map(([nodes, repeats]) =>
    nodes.map((node, i) => {
      const extra = repeats
        .filter(([at]) => at % nodes.length === i && node.dependsOn.length > 0)
        .flatMap(([, pick, times]) =>
          Array<string>(times).fill(node.dependsOn[pick % node.dependsOn.length] as string),
        );
      return n(node.id, ...node.dependsOn, ...extra);
    }),
  );

describe('analyzeGraph', () => {
  it("gives findGraphProblems' problems, and the graph only when there are none", () => {
    fc.assert(
      fc.property(graphArb, (nodes) => {
        const { problems, graph } = analyzeGraph(nodes);
        expect(problems).toEqual(findGraphProblems(nodes));
        expect(graph === undefined).toBe(problems.length > 0);
      }),
      { numRuns: 300 },
    );
  });

  it('builds the graph a brute force builds, and compileGraph the same, repeated dependencies once', () => {
    fc.assert(
      fc.property(repeatedArb, (nodes) => {
        const expected = bruteGraph(nodes);
        for (const g of [analyzeGraph(nodes).graph, compileGraph(nodes)]) {
          expect(g).toBeDefined();
          expect({ ids: g?.ids, upstream: g?.upstream, downstream: g?.downstream }).toEqual(expected);
          expect([...(g?.indexOf ?? [])]).toEqual(expected.ids.map((id, i) => [id, i]));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('lets compileGraph hand back a graph built for that very list of nodes, and only for it', () => {
    const nodes = [n('a'), n('b', 'a')];
    const { graph } = analyzeGraph(nodes);
    rememberGraph(nodes, graph as NonNullable<typeof graph>);
    expect(compileGraph(nodes)).toBe(graph);
    const copy = [...nodes];
    expect(compileGraph(copy)).not.toBe(graph);
    expect(compileGraph(copy)).toEqual(graph);
  });
});

describe('closures', () => {
  const g = compileGraph([n('a'), n('b', 'a'), n('c', 'b'), n('d', 'a'), n('e')]);

  it('collects every transitive dependant, not the start', () => {
    expect([...downstreamClosure(g, [0])].sort()).toEqual([1, 2, 3]);
    expect([...downstreamClosure(g, [1, 4])].sort()).toEqual([2]);
  });

  it('collects every transitive dependency, not the task itself', () => {
    expect([...upstreamClosure(g, 2)].sort()).toEqual([0, 1]);
    expect([...upstreamClosure(g, 4)]).toEqual([]);
  });
});
