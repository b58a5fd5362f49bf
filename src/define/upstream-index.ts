/**
 * "Is task B upstream of task A?" over one level of a flow, answered without the
 * transitive closure of every task, which is quadratic in time and memory for a chain
 * (the last of 50,000 chained tasks has 49,999 upstream tasks, the one before 49,998, …).
 *
 * Built once in O(tasks + edges), for the graph as it is when asked (which may still
 * have cycles: they are reported elsewhere, and must not hang this):
 *
 * - levels: a task's longest path from a task without dependencies (Kahn's order). A task
 *   can be upstream of another only if its level is lower; tasks on or after a cycle have
 *   none, and are searched without that bound;
 * - a spanning forest: each task hangs under its first dependency, numbered in pre-order,
 *   so that "B is an ancestor of A in the forest" (every chain, every tree) is one
 *   comparison of intervals;
 * - otherwise a search upward from A, bounded by the levels, whose answers are kept per
 *   target: a later question about the same target stops where an earlier search passed.
 */
export interface UpstreamIndex {
  /** True when `target` is upstream of `from`, directly or not; a task on a cycle is upstream of itself. */
  isUpstream(from: string, target: string): boolean;
}

const NONE = -1;

/** Each task's dependencies by task id, as a map or a view of one; `keys` lists every task once. */
export interface DependencyLists {
  keys(): Iterable<string>;
  get(id: string): readonly (string | { readonly name: string })[] | undefined;
}

export function createUpstreamIndex(deps: DependencyLists): UpstreamIndex {
  const ids = [...deps.keys()];
  const indexOf = new Map<string, number>();
  ids.forEach((id, i) => indexOf.set(id, i));
  const n = ids.length;
  // Upstream edges by index; a name not in the level (reported elsewhere) is no edge.
  const up: number[][] = ids.map((id) => {
    const out: number[] = [];
    for (const d of deps.get(id) ?? []) {
      const j = indexOf.get(typeof d === 'string' ? d : d.name);
      if (j !== undefined) out.push(j);
    }
    return out;
  });

  const level = levels(up, n);
  const { pre, size } = forest(up, level, n);
  /** Per target: tasks known to have it upstream, and tasks known not to. */
  const reaches = new Map<number, Set<number>>();
  const misses = new Map<number, Set<number>>();

  const search = (from: number, target: number): boolean => {
    const found = reaches.get(target) ?? new Set<number>();
    const missed = misses.get(target) ?? new Set<number>();
    reaches.set(target, found);
    misses.set(target, missed);
    if (found.has(from)) return true;
    if (missed.has(from)) return false;
    const bound = level[target] as number;
    // Tasks at or below the target's level cannot reach it (when both have levels).
    const prune = (k: number) => bound !== NONE && level[k] !== NONE && (level[k] as number) <= bound;
    const parent = new Map<number, number>([[from, NONE]]);
    const stack = [from];
    while (stack.length > 0) {
      const k = stack.pop() as number;
      for (const j of up[k] as number[]) {
        // Checked before `parent`: on a cycle, the target may be where the search started.
        if (j === target || found.has(j)) {
          // Every task on the way from `from` to here has the target upstream too.
          for (let at: number = k; at !== NONE; at = parent.get(at) as number) found.add(at);
          return true;
        }
        if (parent.has(j)) continue;
        parent.set(j, k);
        if (missed.has(j) || prune(j)) continue;
        stack.push(j);
      }
    }
    for (const k of parent.keys()) missed.add(k);
    return false;
  };

  return {
    isUpstream(fromId: string, targetId: string): boolean {
      const from = indexOf.get(fromId);
      const target = indexOf.get(targetId);
      if (from === undefined || target === undefined) return false;
      if ((up[from] as number[]).includes(target)) return true;
      const lf = level[from] as number;
      const lt = level[target] as number;
      // A task with a level has only tasks with lower levels upstream, none on a cycle.
      if (lf !== NONE && lt === NONE) return false;
      if (lf !== NONE && lt !== NONE) {
        if (lt >= lf) return false;
        const p = pre[target] as number;
        if (p <= (pre[from] as number) && (pre[from] as number) < p + (size[target] as number)) return true;
      }
      return search(from, target);
    },
  };
}

/** Longest-path levels in Kahn's order; NONE for tasks on a cycle or after one. */
function levels(up: readonly number[][], n: number): Int32Array {
  const level = new Int32Array(n).fill(NONE);
  const down: number[][] = Array.from({ length: n }, () => []);
  const waiting = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (const j of up[i] as number[]) (down[j] as number[]).push(i);
    waiting[i] = (up[i] as number[]).length;
  }
  const ready: number[] = [];
  for (let i = 0; i < n; i++) if (waiting[i] === 0) ready.push(i);
  for (const i of ready) level[i] = 0;
  for (let at = 0; at < ready.length; at++) {
    const i = ready[at] as number;
    for (const k of down[i] as number[]) {
      level[k] = Math.max(level[k] as number, (level[i] as number) + 1);
      waiting[k] = (waiting[k] as number) - 1;
      if (waiting[k] === 0) ready.push(k);
    }
  }
  // Kahn's order reaches only tasks with no cycle upstream; the rest keep NONE.
  for (let i = 0; i < n; i++) if (waiting[i] !== 0) level[i] = NONE;
  return level;
}

/**
 * Pre-order numbers and subtree sizes of the forest in which each task (with a level)
 * hangs under its first dependency: B is an ancestor of A there iff
 * pre[B] ≤ pre[A] < pre[B] + size[B]. Iterative, so that a chain of any length is fine.
 */
function forest(up: readonly number[][], level: Int32Array, n: number): { pre: Int32Array; size: Int32Array } {
  const pre = new Int32Array(n).fill(NONE);
  const size = new Int32Array(n);
  const children: number[][] = Array.from({ length: n }, () => []);
  const roots: number[] = [];
  for (let i = 0; i < n; i++) {
    if (level[i] === NONE) continue;
    const first = (up[i] as number[])[0];
    if (first === undefined) roots.push(i);
    else (children[first] as number[]).push(i);
  }
  let next = 0;
  for (const root of roots) {
    const stack: { node: number; child: number }[] = [{ node: root, child: 0 }];
    pre[root] = next++;
    while (stack.length > 0) {
      const frame = stack[stack.length - 1] as { node: number; child: number };
      const kids = children[frame.node] as number[];
      if (frame.child < kids.length) {
        const kid = kids[frame.child++] as number;
        pre[kid] = next++;
        stack.push({ node: kid, child: 0 });
      } else {
        size[frame.node] = next - (pre[frame.node] as number);
        stack.pop();
      }
    }
  }
  return { pre, size };
}
