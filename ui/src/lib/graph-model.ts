/**
 * The graph drawn for a flow or a run: the flow's tasks, with each map folded into one
 * node (its instances counted by state) and each group folded into one node unless it is
 * expanded. Structure and colours are separate so that the layout is computed once and
 * only the colours change while a run goes on. Pure: no DOM.
 */
import type { GraphEdge, GraphNode, TaskRun } from '../api/types.js';
import { dominantState } from './states.js';

/** One node of the drawn graph. */
export interface ModelNode {
  id: string;
  label: string;
  kind: 'task' | 'map' | 'group';
  /** The flow's task ids this node stands for (one for a task or a map). */
  members: string[];
}

/** The structure of the drawn graph: what the layout depends on. */
export interface GraphStructure {
  nodes: ModelNode[];
  edges: GraphEdge[];
}

/** What a node shows of a run: one state, and counts by state for maps and groups. */
export interface NodeStatus {
  state: string | null;
  counts: Record<string, number>;
  total: number;
}

/** The id of the node standing for a collapsed group. */
export function groupNodeId(group: string): string {
  return `group:${group}`;
}

/**
 * Folds groups (except those in `expanded`) into one node each and marks maps. Edges
 * between folded nodes are deduplicated; edges inside a group disappear.
 */
export function buildStructure(
  graph: { nodes: GraphNode[]; edges: GraphEdge[] },
  expanded: ReadonlySet<string> = new Set(),
): GraphStructure {
  const nodeOf = new Map<string, string>();
  const nodes: ModelNode[] = [];
  const groups = new Map<string, ModelNode>();
  for (const n of graph.nodes) {
    if (n.group && !expanded.has(n.group)) {
      const id = groupNodeId(n.group);
      let g = groups.get(n.group);
      if (!g) {
        g = { id, label: n.group, kind: 'group', members: [] };
        groups.set(n.group, g);
        nodes.push(g);
      }
      g.members.push(n.id);
      nodeOf.set(n.id, id);
    } else {
      nodes.push({ id: n.id, label: n.label ?? n.id, kind: n.map ? 'map' : 'task', members: [n.id] });
      nodeOf.set(n.id, n.id);
    }
  }
  const seen = new Set<string>();
  const edges: GraphEdge[] = [];
  const addEdge = (from: string, to: string) => {
    const a = nodeOf.get(from);
    const b = nodeOf.get(to);
    if (!a || !b || a === b) return;
    const key = `${a}\u0000${b}`;
    if (seen.has(key)) return;
    seen.add(key);
    edges.push({ from: a, to: b });
  };
  for (const e of graph.edges) addEdge(e.from, e.to);
  // depends_on and edges say the same thing; a server may fill only one of them.
  for (const n of graph.nodes) for (const d of n.depends_on) addEdge(d, n.id);
  return { nodes, edges };
}

/** A stable key of a structure, to lay it out again only when it changes. */
export function structureKey(structure: GraphStructure): string {
  return (
    structure.nodes.map((n) => n.id).join('\u0001') +
    '\u0002' +
    structure.edges.map((e) => `${e.from}\u0000${e.to}`).join('\u0001')
  );
}

/** Indexes a run's task runs: by id, and map instances by their map task. */
export interface TaskIndex {
  byId: Map<string, TaskRun>;
  instances: Map<string, TaskRun[]>;
}

/** Builds the TaskIndex of a run's task runs. */
export function indexTasks(tasks: readonly TaskRun[]): TaskIndex {
  const byId = new Map<string, TaskRun>();
  const instances = new Map<string, TaskRun[]>();
  for (const t of tasks) {
    byId.set(t.id, t);
    if (t.parent_task !== undefined) {
      let list = instances.get(t.parent_task);
      if (!list) {
        list = [];
        instances.set(t.parent_task, list);
      }
      list.push(t);
    }
  }
  return { byId, instances };
}

function addCount(counts: Record<string, number>, state: string): void {
  counts[state] = (counts[state] ?? 0) + 1;
}

/**
 * What a node shows of a run. A task shows its task run's state (`pending` if it has none
 * yet). A map counts its instances (or its own state before it fans out). A group counts
 * its members, each member map counting as its instances. The node's state is the most
 * urgent one among them.
 */
export function nodeStatus(node: ModelNode, index: TaskIndex): NodeStatus {
  const counts: Record<string, number> = {};
  for (const member of node.members) {
    const instances = index.instances.get(member);
    if (instances && instances.length > 0) {
      for (const i of instances) addCount(counts, i.state);
      const own = index.byId.get(member);
      // A map that failed itself (e.g. its items could not be computed) must show it.
      if (own && own.state === 'failed') addCount(counts, 'failed');
    } else {
      addCount(counts, index.byId.get(member)?.state ?? 'pending');
    }
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  if (node.kind === 'task') {
    const own = index.byId.get(node.members[0] ?? '');
    return { state: own?.state ?? 'pending', counts, total };
  }
  return { state: dominantState(Object.keys(counts)), counts, total };
}

/** The first failed task run of a run, by start time (map instances included), or null. */
export function firstFailedTask(tasks: readonly TaskRun[]): TaskRun | null {
  let best: TaskRun | null = null;
  for (const t of tasks) {
    if (t.state !== 'failed') continue;
    if (!best) {
      best = t;
      continue;
    }
    const a = t.started_at ?? t.ended_at ?? '';
    const b = best.started_at ?? best.ended_at ?? '';
    if (a && (!b || a < b)) best = t;
  }
  return best;
}

/** Replaces or adds one task run in a list of task runs (a live `task` event). */
export function upsertTask(tasks: readonly TaskRun[], task: TaskRun): TaskRun[] {
  return upsertTasks(tasks, new Map([[task.id, task]]));
}

/**
 * Replaces or adds many task runs at once, in one pass: live events are applied in
 * batches so that a run with 10,000 task runs does not copy its list per event.
 */
export function upsertTasks(tasks: readonly TaskRun[], updates: ReadonlyMap<string, TaskRun>): TaskRun[] {
  if (updates.size === 0) return tasks.slice();
  const left = new Map(updates);
  const next = tasks.map((t) => {
    const u = left.get(t.id);
    if (!u) return t;
    left.delete(t.id);
    return u;
  });
  for (const u of left.values()) next.push(u);
  return next;
}
