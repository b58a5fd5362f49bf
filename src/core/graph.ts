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
  return scan(nodes).problems;
}

/**
 * Checks the nodes and, when nothing is wrong, builds the graph `compileGraph` would: the
 * check and the build share one pass over the names.
 */
export function analyzeGraph(
  nodes: readonly GraphNodeInput[],
  /**
   * The position of each node by id, when the caller keeps one (ids then never repeat):
   * it becomes the graph's `indexOf`, and must not change afterwards.
   */
  positions?: Map<string, number>,
): {
  readonly problems: GraphProblem[];
  readonly graph: FlowGraph | undefined;
} {
  const { problems, indexOf, first, edges } = scan(nodes, positions);
  if (problems.length > 0) return { problems, graph: undefined };
  const ids: string[] = new Array<string>(nodes.length);
  for (let i = 0; i < nodes.length; i++) ids[i] = (nodes[i] as GraphNodeInput).id;
  return { problems, graph: denseGraph(ids, indexOf, first, edges) };
}

const NO_EDGES: readonly number[] = Object.freeze([]);

/**
 * The adjacency lists of edges given as in `scan` (all known, no self edge). A repeated
 * dependency is one edge. Each list is made at its final length: lists grown by push
 * keep room for 16 entries, which for 100,000 tasks is tens of megabytes.
 */
function denseGraph(ids: string[], indexOf: Map<string, number>, first: Int32Array, edges: Int32Array): FlowGraph {
  const n = ids.length;
  const ups = new Int32Array(n);
  const downs = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const start = first[i] as number;
    const end = first[i + 1] as number;
    // Short lists are searched for repeats; a long one gets a set.
    const taken = end - start > 16 ? new Set<number>() : undefined;
    for (let k = start; k < end; k++) {
      const j = edges[k] as number;
      let repeated = false;
      if (taken) repeated = taken.has(j) || (taken.add(j), false);
      else for (let m = start; m < k && !repeated; m++) repeated = edges[m] === j;
      if (repeated) {
        edges[k] = -1;
        continue;
      }
      ups[i] = (ups[i] as number) + 1;
      downs[j] = (downs[j] as number) + 1;
    }
  }
  const upstream: (readonly number[])[] = new Array<readonly number[]>(n);
  const downstream: number[][] = new Array<number[]>(n);
  const filled = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const d = downs[i] as number;
    downstream[i] = d === 0 ? (NO_EDGES as number[]) : new Array<number>(d);
  }
  for (let i = 0; i < n; i++) {
    const count = ups[i] as number;
    if (count === 0) {
      upstream[i] = NO_EDGES;
      continue;
    }
    const up = new Array<number>(count);
    let u = 0;
    for (let k = first[i] as number; k < (first[i + 1] as number); k++) {
      const j = edges[k] as number;
      if (j < 0) continue;
      up[u++] = j;
      const at = filled[j] as number;
      (downstream[j] as number[])[at] = i;
      filled[j] = at + 1;
    }
    upstream[i] = up;
  }
  return { ids, indexOf, upstream, downstream };
}

/**
 * Graphs already built for a list of nodes (a flow's tasks, checked when the flow was
 * defined), so that compiling the plan of that very list does not build it again. Lists
 * of tasks are never changed once made.
 */
const built = new WeakMap<readonly GraphNodeInput[], FlowGraph>();

/** Lets `compileGraph(nodes)` return `graph`, which must be what it would build. */
export function rememberGraph(nodes: readonly GraphNodeInput[], graph: FlowGraph): void {
  built.set(nodes, graph);
}

/**
 * The problems of the nodes, and their names and edges as indexes for the cycle search
 * and the build: node i's edges are edges[first[i]] to edges[first[i+1]], in one flat
 * array; a self or unknown dependency is no edge (-1).
 */
function scan(
  nodes: readonly GraphNodeInput[],
  positions?: Map<string, number>,
): {
  problems: GraphProblem[];
  indexOf: Map<string, number>;
  first: Int32Array;
  edges: Int32Array;
} {
  const problems: GraphProblem[] = [];
  const n = nodes.length;
  const known = positions !== undefined && positions.size === n;
  const indexOf = known ? positions : new Map<string, number>();
  // Indexed loops: this runs once per flow, mostly before the optimizing compiler steps in,
  // and a for-of step there allocates an iterator result, 400,000 of them for a large flow.
  for (let index = 0; index < n && !known; index++) {
    const id = (nodes[index] as GraphNodeInput).id;
    if (indexOf.has(id)) problems.push({ kind: 'duplicate', id, index });
    else indexOf.set(id, index);
  }
  const { first, edges } = flatEdges(nodes, (node, dep) => {
    const j = indexOf.get(dep);
    if (dep === node.id) problems.push({ kind: 'self_dependency', id: node.id });
    else if (j === undefined) problems.push({ kind: 'unknown_dependency', id: node.id, dependency: dep });
    return dep === node.id || j === undefined ? -1 : j;
  });
  for (const path of findCycles(nodes, first, edges)) problems.push({ kind: 'cycle', path });
  return { problems, indexOf, first, edges };
}

/**
 * The nodes' dependencies as positions in one flat array: node i's are edges[first[i]] to
 * edges[first[i+1]]. `position` gives a dependency's position, or -1 for no edge.
 */
function flatEdges(
  nodes: readonly GraphNodeInput[],
  position: (node: GraphNodeInput, dep: string) => number,
): { first: Int32Array; edges: Int32Array } {
  const n = nodes.length;
  const first = new Int32Array(n + 1);
  let count = 0;
  for (let i = 0; i < n; i++) {
    first[i] = count;
    count += (nodes[i] as GraphNodeInput).dependsOn.length;
  }
  first[n] = count;
  const edges = new Int32Array(count);
  let e = 0;
  for (let i = 0; i < n; i++) {
    const node = nodes[i] as GraphNodeInput;
    const deps = node.dependsOn;
    for (let k = 0; k < deps.length; k++) edges[e++] = position(node, deps[k] as string);
  }
  return { first, edges };
}

/**
 * Cycles found by an iterative depth-first search over dependency edges; each is reported
 * once, in dependency order, closing on its first task (`a → b → c → a`). The search keeps
 * its stack in typed arrays: a flow may have 100,000 tasks, and a frame object per task
 * would be garbage for the collector to copy.
 */
function findCycles(nodes: readonly GraphNodeInput[], first: Int32Array, edges: Int32Array): string[][] {
  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const n = nodes.length;
  const color = new Uint8Array(n);
  // A grey node is on the stack, at depth[node]; next[k] is the next edge of the frame at depth k.
  const stackNode = new Int32Array(n);
  const stackNext = new Int32Array(n);
  const depth = new Int32Array(n);
  const cycles: string[][] = [];
  const seen = new Set<string>();
  for (let root = 0; root < n; root++) {
    if (color[root] !== WHITE) continue;
    let top = 0;
    stackNode[0] = root;
    stackNext[0] = first[root] as number;
    depth[root] = 0;
    color[root] = GREY;
    while (top >= 0) {
      const node = stackNode[top] as number;
      const at = stackNext[top] as number;
      if (at >= (first[node + 1] as number)) {
        color[node] = BLACK;
        top--;
        continue;
      }
      stackNext[top] = at + 1;
      const dep = edges[at] as number;
      if (dep < 0) continue;
      if (color[dep] === WHITE) {
        color[dep] = GREY;
        top++;
        stackNode[top] = dep;
        stackNext[top] = first[dep] as number;
        depth[dep] = top;
      } else if (color[dep] === GREY) {
        const members: string[] = [];
        for (let k = depth[dep] as number; k <= top; k++)
          members.push((nodes[stackNode[k] as number] as GraphNodeInput).id);
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
  const known = built.get(nodes);
  if (known) return known;
  const n = nodes.length;
  const ids: string[] = new Array<string>(n);
  const indexOf = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = (nodes[i] as GraphNodeInput).id;
    ids[i] = id;
    indexOf.set(id, i);
  }
  const { first, edges } = flatEdges(nodes, (node, dep) => {
    const j = indexOf.get(dep);
    if (j === undefined) throw new Error(`compileGraph: unknown dependency ${dep} of ${node.id}`);
    return j;
  });
  return denseGraph(ids, indexOf, first, edges);
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
