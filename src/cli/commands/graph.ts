/**
 * `baton graph <flow>`: a flow's task graph, from the same compiled graph runs use. Text
 * for the terminal (tasks in dependency layers: a task sits one layer below its deepest
 * upstream, so each layer can start once the layers above it are done), Mermaid
 * `flowchart TD` and Graphviz DOT for docs and reviews. Maps, groups, choices, races and
 * other tasks that are more than a body are marked in every format.
 */
import type { MapSpec, TaskSpec } from '../../core/model.js';
import type { FlowGraph } from '../../core/graph.js';
import { compilePlan } from '../../core/run-machine.js';
import { openCatalog } from '../../app/runtime.js';
import type { LoadedFlow } from '../../app/flow-catalog.js';
import type { CliContext } from '../context.js';
import { table } from '../render.js';

export type GraphFormat = 'text' | 'mermaid' | 'dot';

/** A flow's tasks with their layer: 0 for tasks without upstreams, else one more than the deepest upstream. */
export interface LayeredGraph {
  readonly flow: LoadedFlow;
  readonly graph: FlowGraph;
  readonly layerOf: readonly number[];
  /** Task indexes per layer, in flow order within a layer. */
  readonly layers: readonly (readonly number[])[];
}

/** Layers by Kahn's algorithm: iterative, so a chain of thousands of tasks is no deeper a stack. */
export function layerGraph(flow: LoadedFlow, graph: FlowGraph): LayeredGraph {
  const n = graph.ids.length;
  const layerOf = new Array<number>(n).fill(0);
  const waiting = graph.upstream.map((up) => up.length);
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (waiting[i] === 0) queue.push(i);
  for (let head = 0; head < queue.length; head++) {
    const i = queue[head] as number;
    for (const d of graph.downstream[i] ?? []) {
      layerOf[d] = Math.max(layerOf[d] as number, (layerOf[i] as number) + 1);
      waiting[d] = (waiting[d] as number) - 1;
      if (waiting[d] === 0) queue.push(d);
    }
  }
  const layers: number[][] = [];
  for (let i = 0; i < n; i++) (layers[layerOf[i] as number] ??= []).push(i);
  return { flow, graph, layerOf, layers };
}

function mapNote(map: MapSpec): string {
  return `map over ${map.over}${map.group ? `: ${map.template.map((t) => t.id).join(', ')}` : ''}`;
}

/** What makes a task more than a body, in a few words; empty for a plain task. */
function marks(task: TaskSpec, graph: FlowGraph | null): string[] {
  const out: string[] = [];
  if (task.map) out.push(mapNote(task.map));
  if (task.choice) out.push(`choice of ${task.choice.targets.join(', ')}`);
  if (task.race) out.push(`race of ${task.race.branches.join(', ')} (${task.race.mode})`);
  if (task.group) out.push(`group ${task.group}`);
  if (task.quorum && graph) {
    const i = graph.indexOf.get(task.id);
    const n = i === undefined ? '?' : String(graph.upstream[i]?.length ?? 0);
    out.push(`needs ${task.quorum.k} of ${n}${task.quorum.cancelRest ? ', cancels the rest' : ''}`);
  } else if (task.triggerRule !== 'all_success') out.push(`rule ${task.triggerRule}`);
  if (task.onFailure) out.push(`on failure ${task.onFailure.handler}`);
  if (task.handles) out.push(`handles ${task.handles}`);
  if (task.finally) out.push('finally');
  return out;
}

/** A node's label in a drawing: its id, and its kind (with what a map maps over) on a second line. */
function nodeLabel(t: TaskSpec): string {
  return `${t.id}\n${t.map ? mapNote(t.map) : t.kind}`;
}

function renderText(g: LayeredGraph): string {
  const { spec, version } = g.flow;
  const tasks = spec.tasks;
  const rows: string[][] = [];
  g.layers.forEach((layer, l) => {
    layer.forEach((i, k) => {
      const t = tasks[i] as TaskSpec;
      const up = (g.graph.upstream[i] ?? []).map((u) => g.graph.ids[u] as string);
      rows.push([k === 0 ? String(l + 1) : '', t.id, t.kind, up.join(', ') || '-', marks(t, g.graph).join('; ')]);
      // A map over a group runs its template once per item: listed under it, upstreams local to one item.
      if (t.map?.group) {
        for (const local of t.map.template) {
          rows.push([
            '',
            `  ${local.id}`,
            local.kind,
            local.dependsOn.join(', ') || '-',
            marks(local, null).join('; '),
          ]);
        }
      }
    });
  });
  const layerCount = g.layers.length;
  const head = `flow ${spec.name} (version ${version}): ${tasks.length} task${tasks.length === 1 ? '' : 's'} in ${layerCount} layer${layerCount === 1 ? '' : 's'}`;
  return `${head}\n\n${table(['LAYER', 'TASK', 'KIND', 'UPSTREAM', 'NOTE'], rows)}`;
}

/** Text inside a Mermaid `"…"` label: entity codes for what Mermaid would read as syntax or markup. */
export function mermaidText(text: string): string {
  return text.replace(/[#"<>&\n]/g, (c) =>
    c === '\n'
      ? '<br/>'
      : c === '#'
        ? '#35;'
        : c === '"'
          ? '#quot;'
          : c === '<'
            ? '#lt;'
            : c === '>'
              ? '#gt;'
              : '#amp;',
  );
}

function renderMermaid(g: LayeredGraph): string {
  const tasks = g.flow.spec.tasks;
  // Node ids are generated: task ids may hold characters Mermaid reads as syntax.
  const node = (i: number) => `t${i}`;
  const shape = (i: number): string => {
    const t = tasks[i] as TaskSpec;
    const label = `"${mermaidText(nodeLabel(t))}"`;
    if (t.map) return `[[${label}]]`;
    if (t.choice) return `{${label}}`;
    if (t.race) return `{{${label}}}`;
    if (t.finally || t.handles) return `([${label}])`;
    return `[${label}]`;
  };
  const lines = ['flowchart TD'];
  const groups = new Map<string, number[]>();
  for (const layer of g.layers) {
    for (const i of layer) {
      const group = tasks[i]?.group;
      if (group) groups.set(group, [...(groups.get(group) ?? []), i]);
      else lines.push(`  ${node(i)}${shape(i)}`);
    }
  }
  [...groups].forEach(([name, members], k) => {
    lines.push(`  subgraph g${k} ["${mermaidText(name)}"]`);
    for (const i of members) lines.push(`    ${node(i)}${shape(i)}`);
    lines.push('  end');
  });
  for (const layer of g.layers) {
    for (const i of layer) {
      for (const u of g.graph.upstream[i] ?? []) lines.push(`  ${node(u)} --> ${node(i)}`);
    }
  }
  return lines.join('\n');
}

const DOT_KEYWORDS = new Set(['node', 'edge', 'graph', 'digraph', 'subgraph', 'strict']);

/** A DOT id: bare when DOT reads it as one, else a quoted string (only `"` and `\` need escaping). */
export function dotId(id: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(id) && !DOT_KEYWORDS.has(id.toLowerCase())) return id;
  return `"${id.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** A DOT label string: quoted, with lines broken by `\n`. */
function dotLabel(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`;
}

function renderDot(g: LayeredGraph): string {
  const tasks = g.flow.spec.tasks;
  const attrs = (i: number): string => {
    const t = tasks[i] as TaskSpec;
    const shape = t.map
      ? 'box3d'
      : t.choice
        ? 'diamond'
        : t.race
          ? 'hexagon'
          : t.finally || t.handles
            ? 'box, style=rounded'
            : 'box';
    return `[label=${dotLabel(nodeLabel(t))}, shape=${shape}]`;
  };
  const lines = [`digraph ${dotId(g.flow.spec.name)} {`, '  rankdir=TB;'];
  const groups = new Map<string, number[]>();
  for (const layer of g.layers) {
    for (const i of layer) {
      const group = tasks[i]?.group;
      if (group) groups.set(group, [...(groups.get(group) ?? []), i]);
      else lines.push(`  ${dotId(g.graph.ids[i] as string)} ${attrs(i)};`);
    }
  }
  // Graphviz draws a subgraph as a box only when its name starts with `cluster`.
  [...groups].forEach(([name, members], k) => {
    lines.push(`  subgraph cluster_${k} {`, `    label=${dotLabel(name)};`);
    for (const i of members) lines.push(`    ${dotId(g.graph.ids[i] as string)} ${attrs(i)};`);
    lines.push('  }');
  });
  for (const layer of g.layers) {
    for (const i of layer) {
      for (const u of g.graph.upstream[i] ?? []) {
        lines.push(`  ${dotId(g.graph.ids[u] as string)} -> ${dotId(g.graph.ids[i] as string)};`);
      }
    }
  }
  lines.push('}');
  return lines.join('\n');
}

function graphJson(g: LayeredGraph): Record<string, unknown> {
  const { spec, version } = g.flow;
  return {
    flow: spec.name,
    version,
    layers: g.layers.map((layer) => layer.map((i) => g.graph.ids[i])),
    tasks: spec.tasks.map((t, i) => ({
      id: t.id,
      kind: t.kind,
      layer: (g.layerOf[i] as number) + 1,
      upstream: (g.graph.upstream[i] ?? []).map((u) => g.graph.ids[u]),
      group: t.group ?? null,
      marks: marks(t, g.graph),
      ...(t.map?.group
        ? { template: t.map.template.map((l) => ({ id: l.id, kind: l.kind, upstream: l.dependsOn })) }
        : {}),
    })),
  };
}

export async function graphCommand(
  ctx: CliContext,
  flowRef: string,
  flags: { format?: GraphFormat; json?: boolean },
): Promise<number> {
  const { catalog } = await openCatalog(ctx.runtime);
  const flow = await catalog.find(flowRef);
  const layered = layerGraph(flow, compilePlan(flow.spec).graph);
  if (flags.json) ctx.stdout(JSON.stringify(graphJson(layered), null, 2));
  else if (flags.format === 'mermaid') ctx.stdout(renderMermaid(layered));
  else if (flags.format === 'dot') ctx.stdout(renderDot(layered));
  else ctx.stdout(renderText(layered));
  return 0;
}
