/**
 * Airflow's grid: runs as columns (oldest left), the flow's tasks as rows, one square per
 * task run. Maps and groups are one row each, coloured by their most urgent state.
 * Clicking a square opens that task run.
 */
import { useEffect, useMemo, useState } from 'react';
import { Link } from 'react-router';
import { api } from '../api/client';
import type { Run, TaskRun } from '../api/types';
import { indexTasks, nodeStatus, type GraphStructure, type TaskIndex } from '../lib/graph-model';
import { formatUtc } from '../lib/format';
import { stateLook } from '../lib/states';
import { StateSquare } from './bits';

/** How many runs' task lists are read at once. */
const PARALLEL = 4;

export function RunGrid({ structure, runs }: { structure: GraphStructure; runs: Run[] }) {
  const [tasks, setTasks] = useState<Map<string, TaskIndex>>(new Map());
  const runIds = runs.map((r) => r.id).join(',');

  useEffect(() => {
    const controller = new AbortController();
    const queue = [...runs];
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        const id = r.id;
        try {
          const page = await api.runTasks(id, controller.signal);
          const items: TaskRun[] = page.items;
          setTasks((prev) => new Map(prev).set(id, indexTasks(items)));
        } catch {
          // A run whose tasks cannot be read shows empty squares.
        }
      }
    };
    void Promise.all(Array.from({ length: PARALLEL }, worker));
    return () => controller.abort();
    // runIds identifies the runs shown.
  }, [runIds]);

  const columns = useMemo(() => [...runs].reverse(), [runs]);
  if (runs.length === 0) return <p className="muted">No runs yet.</p>;
  return (
    <div className="grid-wrap" data-testid="run-grid">
      <table className="grid">
        <thead>
          <tr>
            <th />
            {columns.map((r) => (
              <th key={r.id}>
                <Link
                  to={`/runs/${encodeURIComponent(r.id)}`}
                  title={`${r.id} · ${r.state} · ${formatUtc(r.created_at)}`}
                >
                  <StateSquare state={r.state} size={12} title={`${r.id} · ${stateLook(r.state).label}`} />
                </Link>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {structure.nodes.map((node) => (
            <tr key={node.id}>
              <th className="ellipsis" title={node.id}>
                {node.label}
                {node.kind !== 'task' ? <span className="muted"> [{node.kind}]</span> : null}
              </th>
              {columns.map((r) => {
                const index = tasks.get(r.id);
                const status = index ? nodeStatus(node, index) : null;
                const target =
                  node.kind === 'group'
                    ? `?expand=${encodeURIComponent(node.label)}`
                    : `?task=${encodeURIComponent(node.id)}`;
                const state = status && status.state !== 'pending' ? status.state : index ? 'pending' : null;
                return (
                  <td key={r.id}>
                    <Link to={`/runs/${encodeURIComponent(r.id)}${target}`} tabIndex={-1}>
                      <StateSquare state={state} size={12} title={`${node.id} in ${r.id}: ${state ?? 'loading'}`} />
                    </Link>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
