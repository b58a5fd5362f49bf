/**
 * The task runs of one run and how they connect. A run starts with the flow's tasks
 * (indexes 0..n-1, from the compiled plan) and grows at run time: when a map task learns
 * its items it adds one instance of its template per item, appended after every index
 * that exists. Instances are addressed like any task run (by index), so that attempts,
 * retries, timers, logs and queue rows work for them unchanged.
 *
 * Ids: a plain map's instances are `<map>[i]`; a map over a group gives
 * `<map>[i].<local id>`; nested maps continue the path (`a[1].b[4]`).
 */
import type { FlowGraph } from './graph.js';
import { compileGraph } from './graph.js';
import type { FlowSpec, MapSpec, TaskSpec } from './model.js';

/** A compiled flow: spec plus graph, shared by all runs of one flow version. */
export interface FlowPlan {
  readonly spec: FlowSpec;
  readonly graph: FlowGraph;
}

/** One instance of a map template. */
export interface Instance {
  /** Index of the map task run that made it. */
  readonly parent: number;
  /** Item number within the map (0-based). */
  readonly item: number;
  /** Position of its spec within the template. */
  readonly local: number;
}

/** Task runs added at run time, stored after the flow's own. */
export interface DynamicTasks {
  readonly ids: string[];
  readonly specs: TaskSpec[];
  readonly instances: Instance[];
  readonly indexOf: Map<string, number>;
}

/** What `upstreamOf` and friends need of a run. */
export interface Topology {
  readonly plan: FlowPlan;
  dynamic: DynamicTasks | null;
  /** First index of each map's instances, by map task index. */
  readonly mapFirst: Map<number, number>;
  /** The item values of each map (a batch is an array of items), by map task index. */
  readonly mapItems: Map<number, readonly unknown[]>;
}

const templateGraphs = new WeakMap<MapSpec, FlowGraph>();

/** The template of a map, compiled once per spec. */
export function templateGraph(map: MapSpec): FlowGraph {
  let graph = templateGraphs.get(map);
  if (!graph) {
    graph = compileGraph(map.template);
    templateGraphs.set(map, graph);
  }
  return graph;
}

function staticCount(topology: Topology): number {
  return topology.plan.spec.tasks.length;
}

/** The instance behind a task run index, or null for the flow's own tasks. */
export function instanceOf(topology: Topology, i: number): Instance | null {
  const n = staticCount(topology);
  if (i < n) return null;
  const instance = topology.dynamic?.instances[i - n];
  if (!instance) throw new Error(`no task run #${i}`);
  return instance;
}

export function taskIdOf(topology: Topology, i: number): string {
  const n = staticCount(topology);
  if (i < n) return topology.plan.graph.ids[i] as string;
  const id = topology.dynamic?.ids[i - n];
  if (id === undefined) throw new Error(`no task run #${i}`);
  return id;
}

export function taskSpecOf(topology: Topology, i: number): TaskSpec {
  const n = staticCount(topology);
  if (i < n) return topology.plan.spec.tasks[i] as TaskSpec;
  const spec = topology.dynamic?.specs[i - n];
  if (!spec) throw new Error(`no task run #${i}`);
  return spec;
}

export function taskIndexOf(topology: Topology, id: string): number | undefined {
  return topology.plan.graph.indexOf.get(id) ?? topology.dynamic?.indexOf.get(id);
}

/** Every task run index, the flow's own first. */
export function taskCount(topology: Topology): number {
  return staticCount(topology) + (topology.dynamic?.ids.length ?? 0);
}

function itemBase(topology: Topology, instance: Instance): { base: number; graph: FlowGraph } {
  const mapSpec = taskSpecOf(topology, instance.parent).map as MapSpec;
  const first = topology.mapFirst.get(instance.parent) as number;
  return { base: first + instance.item * mapSpec.template.length, graph: templateGraph(mapSpec) };
}

const NONE: readonly number[] = [];

/** Task runs this one depends on (within its item, for an instance). */
export function upstreamOf(topology: Topology, i: number): readonly number[] {
  const instance = instanceOf(topology, i);
  if (!instance) return topology.plan.graph.upstream[i] as readonly number[];
  const { base, graph } = itemBase(topology, instance);
  const local = graph.upstream[instance.local] as readonly number[];
  return local.length === 0 ? NONE : local.map((u) => base + u);
}

/** Task runs that depend on this one (within its item, for an instance). */
export function downstreamOf(topology: Topology, i: number): readonly number[] {
  const instance = instanceOf(topology, i);
  if (!instance) return topology.plan.graph.downstream[i] as readonly number[];
  const { base, graph } = itemBase(topology, instance);
  const local = graph.downstream[instance.local] as readonly number[];
  return local.length === 0 ? NONE : local.map((d) => base + d);
}

/**
 * The task run that `id` names from task run `i`'s point of view: a sibling in the same
 * item for an instance (template ids are local), else a task of the flow.
 */
export function siblingIndex(topology: Topology, i: number, id: string): number | undefined {
  const instance = instanceOf(topology, i);
  if (!instance) return topology.plan.graph.indexOf.get(id);
  const { base, graph } = itemBase(topology, instance);
  const local = graph.indexOf.get(id);
  return local === undefined ? topology.plan.graph.indexOf.get(id) : base + local;
}

/** The local id of a task run within its item (its id, for a flow task). */
export function localIdOf(topology: Topology, i: number): string {
  const instance = instanceOf(topology, i);
  if (!instance) return taskIdOf(topology, i);
  return taskSpecOf(topology, i).id;
}

/** The value an instance works on: its item, or its batch of items. */
export function itemValueOf(topology: Topology, instance: Instance): unknown {
  return topology.mapItems.get(instance.parent)?.[instance.item];
}

/**
 * Path of a task run's spec: the flow task's index, then each template position down to
 * it. A worker resolves the spec from the pinned plan with it (`specAtPath`).
 */
export function specPathOf(topology: Topology, i: number): number[] {
  const path: number[] = [];
  let at = i;
  for (;;) {
    const instance = instanceOf(topology, at);
    if (!instance) {
      path.unshift(at);
      return path;
    }
    path.unshift(instance.local);
    at = instance.parent;
  }
}

/** The spec at a path from `specPathOf`, or undefined if the plan has no such task. */
export function specAtPath(plan: FlowPlan, path: readonly number[]): TaskSpec | undefined {
  let spec = plan.spec.tasks[path[0] ?? -1];
  for (const local of path.slice(1)) spec = spec?.map?.template[local];
  return spec;
}

/**
 * Adds the instances of a map: `count` items, each a copy of the template. Returns the
 * index of the first new task run.
 */
export function addInstances(topology: Topology, parent: number, items: readonly unknown[]): number {
  const mapSpec = taskSpecOf(topology, parent).map as MapSpec;
  const dynamic: DynamicTasks = (topology.dynamic ??= {
    ids: [] as string[],
    specs: [] as TaskSpec[],
    instances: [] as Instance[],
    indexOf: new Map<string, number>(),
  });
  const first = staticCount(topology) + dynamic.ids.length;
  const parentId = taskIdOf(topology, parent);
  const template = mapSpec.template;
  for (let item = 0; item < items.length; item++) {
    for (let local = 0; local < template.length; local++) {
      const spec = template[local] as TaskSpec;
      const id = mapSpec.group ? `${parentId}[${item}].${spec.id}` : `${parentId}[${item}]`;
      dynamic.indexOf.set(id, first + item * template.length + local);
      dynamic.ids.push(id);
      dynamic.specs.push(spec);
      dynamic.instances.push({ parent, item, local });
    }
  }
  topology.mapFirst.set(parent, first);
  topology.mapItems.set(parent, items);
  return first;
}

/** Every task run a map made, its nested maps' included. */
export function descendantsOf(topology: Topology, parent: number): number[] {
  const first = topology.mapFirst.get(parent);
  if (first === undefined) return [];
  const mapSpec = taskSpecOf(topology, parent).map as MapSpec;
  const count = (topology.mapItems.get(parent)?.length ?? 0) * mapSpec.template.length;
  const out: number[] = [];
  for (let i = first; i < first + count; i++) {
    out.push(i);
    if (topology.mapFirst.has(i)) out.push(...descendantsOf(topology, i));
  }
  return out;
}

/** Every task spec of a flow, those inside map templates included (depth first). */
export function flattenTasks(tasks: readonly TaskSpec[]): TaskSpec[] {
  const out: TaskSpec[] = [];
  for (const task of tasks) {
    out.push(task);
    if (task.map) out.push(...flattenTasks(task.map.template));
  }
  return out;
}

/** True if running the spec calls code from the flow's module (functions, choice or score functions). */
export function runsFlowCode(task: TaskSpec): boolean {
  if (task.kind === 'function') return true;
  if (task.kind === 'choice') return (task.choice?.rules.length ?? 0) === 0;
  return task.race?.score === true;
}
