/**
 * The task graph of a flow: dense indexes, upstream and downstream adjacency, and the
 * structural checks (duplicate ids, unknown dependencies, cycles with their path). Built
 * once per flow version and shared by every run of it.
 */

export interface GraphNodeInput {
  readonly id: string;
  readonly dependsOn: readonly string[];
}

export interface FlowGraph {
  readonly ids: readonly string[];
  readonly indexOf: ReadonlyMap<string, number>;
  /** upstream[i]: indexes of the tasks task i depends on. */
  readonly upstream: readonly (readonly number[])[];
  /** downstream[i]: indexes of the tasks that depend on task i. */
  readonly downstream: readonly (readonly number[])[];
}

export type GraphProblem =
  | { readonly kind: 'duplicate'; readonly id: string; readonly index: number }
  | { readonly kind: 'unknown_dependency'; readonly id: string; readonly dependency: string }
  | { readonly kind: 'self_dependency'; readonly id: string }
  | { readonly kind: 'cycle'; readonly path: readonly string[] };

/** Finds every structural problem; an empty list means `compileGraph` will succeed. */
export function findGraphProblems(nodes: readonly GraphNodeInput[]): GraphProblem[] {
  const problems: GraphProblem[] = [];
  const indexOf = new Map<string, number>();
  nodes.forEach((node, index) => {
    if (indexOf.has(node.id)) problems.push({ kind: 'duplicate', id: node.id, index });
    else indexOf.set(node.id, index);
  });
  for (const node of nodes) {
    for (const dep of node.dependsOn) {
      if (dep === node.id) problems.push({ kind: 'self_dependency', id: node.id });
      else if (!indexOf.has(dep)) problems.push({ kind: 'unknown_dependency', id: node.id, dependency: dep });
    }
  }
  for (const path of findCycles(nodes, indexOf)) problems.push({ kind: 'cycle', path });
  return problems;
}

/**
 * Cycles found by an iterative depth-first search over dependency edges; each is reported
 * once, in dependency order, closing on its first task (`a → b → c → a`).
 */
function findCycles(nodes: readonly GraphNodeInput[], indexOf: ReadonlyMap<string, number>): string[][] {
  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const color = new Uint8Array(nodes.length);
  const cycles: string[][] = [];
  const seen = new Set<string>();
  for (let root = 0; root < nodes.length; root++) {
    if (color[root] !== WHITE) continue;
    const stack: { node: number; next: number }[] = [{ node: root, next: 0 }];
    color[root] = GREY;
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as { node: number; next: number };
      const deps = (nodes[frame.node] as GraphNodeInput).dependsOn;
      if (frame.next >= deps.length) {
        color[frame.node] = BLACK;
        stack.pop();
        continue;
      }
      const depId = deps[frame.next++] as string;
      const dep = indexOf.get(depId);
      if (dep === undefined || dep === frame.node) continue;
      if (color[dep] === WHITE) {
        color[dep] = GREY;
        stack.push({ node: dep, next: 0 });
      } else if (color[dep] === GREY) {
        const start = stack.findIndex((f) => f.node === dep);
        const members = stack.slice(start).map((f) => (nodes[f.node] as GraphNodeInput).id);
        const key = [...members].sort().join('\u0000');
        if (!seen.has(key)) {
          seen.add(key);
          // The stack runs from dependant to dependency; print in execution order.
          const ordered = members.reverse();
          cycles.push([...ordered, ordered[0] as string]);
        }
      }
    }
  }
  return cycles;
}

/** Builds the dense graph. Call only on nodes without problems. */
export function compileGraph(nodes: readonly GraphNodeInput[]): FlowGraph {
  const ids = nodes.map((n) => n.id);
  const indexOf = new Map<string, number>();
  ids.forEach((id, i) => indexOf.set(id, i));
  const upstream: number[][] = nodes.map(() => []);
  const downstream: number[][] = nodes.map(() => []);
  nodes.forEach((node, i) => {
    for (const dep of new Set(node.dependsOn)) {
      const j = indexOf.get(dep);
      if (j === undefined) throw new Error(`compileGraph: unknown dependency ${dep} of ${node.id}`);
      (upstream[i] as number[]).push(j);
      (downstream[j] as number[]).push(i);
    }
  });
  return { ids, indexOf, upstream, downstream };
}

/** All tasks reachable downstream of the given ones (not including them). */
export function downstreamClosure(graph: FlowGraph, from: readonly number[]): Set<number> {
  const out = new Set<number>();
  const queue = [...from];
  while (queue.length > 0) {
    const i = queue.pop() as number;
    for (const d of graph.downstream[i] as readonly number[]) {
      if (!out.has(d)) {
        out.add(d);
        queue.push(d);
      }
    }
  }
  return out;
}

/** All tasks reachable upstream of task `i` (its transitive dependencies). */
export function upstreamClosure(graph: FlowGraph, i: number): Set<number> {
  const out = new Set<number>();
  const queue = [...(graph.upstream[i] as readonly number[])];
  while (queue.length > 0) {
    const j = queue.pop() as number;
    if (out.has(j)) continue;
    out.add(j);
    queue.push(...(graph.upstream[j] as readonly number[]));
  }
  return out;
}
