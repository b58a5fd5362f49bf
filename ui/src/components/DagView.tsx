/**
 * A flow's graph laid out by elkjs and drawn by React Flow. The layout depends only on the
 * structure (nodes and edges) and is computed once per structure; live updates change the
 * colours and counts of the nodes, never their places.
 */
import { memo, useEffect, useMemo, useState } from 'react';
import ELK from 'elkjs/lib/elk.bundled.js';
import {
  Background,
  Controls,
  Handle,
  MiniMap,
  Position,
  ReactFlow,
  type Edge,
  type Node,
  type NodeProps,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { structureKey, type GraphStructure, type ModelNode, type NodeStatus } from '../lib/graph-model';
import { stateLook } from '../lib/states';
import { StateCounts } from './bits';

const WIDTH = 190;
const HEIGHT = 40;
const TALL = 56;
/** Past this many nodes the graph is not drawn (the task list stays usable). */
export const MAX_DRAWN_NODES = 1500;

const elk = new ELK();

type Positions = Map<string, { x: number; y: number }>;

async function layout(structure: GraphStructure): Promise<Positions> {
  const result = await elk.layout({
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.layered.spacing.nodeNodeBetweenLayers': '48',
      'elk.spacing.nodeNode': '16',
      'elk.edgeRouting': 'POLYLINE',
    },
    children: structure.nodes.map((n) => ({ id: n.id, width: WIDTH, height: n.kind === 'task' ? HEIGHT : TALL })),
    edges: structure.edges.map((e, i) => ({ id: `e${i}`, sources: [e.from], targets: [e.to] })),
  });
  const positions: Positions = new Map();
  for (const c of result.children ?? []) positions.set(c.id, { x: c.x ?? 0, y: c.y ?? 0 });
  return positions;
}

interface TaskNodeData extends Record<string, unknown> {
  model: ModelNode;
  status: NodeStatus | null;
  selected: boolean;
}

const TaskNode = memo(function TaskNode({ data }: NodeProps<Node<TaskNodeData>>) {
  const { model, status, selected } = data;
  const state = status?.state ?? null;
  const look = stateLook(state);
  return (
    <div
      className={`gnode gnode-${model.kind}${selected ? ' selected' : ''}${status ? '' : ' gnode-plain'}`}
      style={{ ['--c' as string]: look.color }}
      data-testid={`task-${model.id}`}
      data-state={state ?? ''}
      title={`${model.id} — ${model.kind}${state ? ` — ${look.label}` : ''}`}
    >
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <div className="gnode-title">
        {status ? (
          <span className="gnode-icon" aria-label={look.label}>
            {look.icon}
          </span>
        ) : null}
        <span className="gnode-label">{model.label}</span>
        {model.kind !== 'task' ? (
          <span className="gnode-kind">{model.kind === 'map' ? '[map]' : '[group]'}</span>
        ) : null}
      </div>
      {model.kind !== 'task' && status ? (
        <div className="gnode-counts">
          <StateCounts counts={status.counts} />
        </div>
      ) : null}
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </div>
  );
});

const nodeTypes = { task: TaskNode };

/** The graph of a flow or a run. `status` is null for a flow (no colours). */
export default function DagView(props: {
  structure: GraphStructure;
  status: ((node: ModelNode) => NodeStatus) | null;
  selected?: string | null;
  onSelect?: (node: ModelNode) => void;
  height?: number;
}) {
  const { structure, status, selected, onSelect } = props;
  const key = useMemo(() => structureKey(structure), [structure]);
  const [positions, setPositions] = useState<{ key: string; map: Positions } | null>(null);
  const [layoutError, setLayoutError] = useState<string | null>(null);
  const tooBig = structure.nodes.length > MAX_DRAWN_NODES;

  useEffect(() => {
    if (tooBig) return;
    let cancelled = false;
    layout(structure).then(
      (map) => !cancelled && setPositions({ key, map }),
      (e: unknown) => !cancelled && setLayoutError(String(e)),
    );
    return () => {
      cancelled = true;
    };
    // The layout depends on the structure only, which `key` identifies.
  }, [key, tooBig]);

  const nodes = useMemo<Node<TaskNodeData>[]>(() => {
    if (!positions) return [];
    return structure.nodes.map((model) => ({
      id: model.id,
      type: 'task',
      position: positions.map.get(model.id) ?? { x: 0, y: 0 },
      data: { model, status: status ? status(model) : null, selected: selected === model.id },
      draggable: false,
      connectable: false,
    }));
  }, [positions, structure, status, selected]);

  const edges = useMemo<Edge[]>(
    () => structure.edges.map((e) => ({ id: `${e.from}->${e.to}`, source: e.from, target: e.to, focusable: false })),
    [structure],
  );

  if (tooBig) {
    return (
      <div className="muted pad">
        This graph has {structure.nodes.length} nodes, too many to draw; use the task list.
      </div>
    );
  }
  if (layoutError) return <div className="error-box">Graph layout failed: {layoutError}</div>;
  if (!positions) return <div className="muted pad">Laying out the graph…</div>;
  return (
    <div className="dag" style={{ height: props.height ?? 420 }} data-testid="dag">
      <ReactFlow
        key={positions.key}
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={{ maxZoom: 1 }}
        minZoom={0.05}
        nodesDraggable={false}
        nodesConnectable={false}
        onlyRenderVisibleElements={structure.nodes.length > 200}
        onNodeClick={(_, node) => onSelect?.(node.data.model)}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={16} size={1} />
        <Controls showInteractive={false} />
        {structure.nodes.length > 30 ? <MiniMap pannable zoomable /> : null}
      </ReactFlow>
    </div>
  );
}
