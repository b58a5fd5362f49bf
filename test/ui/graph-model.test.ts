import { describe, expect, it } from 'vitest';
import type { GraphNode, TaskRun } from '../../ui/src/api/types.js';
import {
  buildStructure,
  firstFailedTask,
  groupNodeId,
  indexTasks,
  nodeStatus,
  structureKey,
  upsertTask,
} from '../../ui/src/lib/graph-model.js';

function node(id: string, extra: Partial<GraphNode> = {}): GraphNode {
  return { id, kind: 'command', group: null, trigger_rule: 'all_success', map: false, depends_on: [], ...extra };
}

function task(id: string, state: string, extra: Partial<TaskRun> = {}): TaskRun {
  return {
    id,
    state,
    attempts: 1,
    started_at: null,
    ended_at: null,
    duration_ms: null,
    skip_reason: null,
    output: null,
    error: null,
    ...extra,
  };
}

// extract -> [load_a, load_b in group "load"] -> fanout (map) -> report
const graph = {
  nodes: [
    node('extract'),
    node('load_a', { group: 'load', depends_on: ['extract'] }),
    node('load_b', { group: 'load', depends_on: ['extract', 'load_a'] }),
    node('fanout', { map: true, depends_on: ['load_a', 'load_b'] }),
    node('report', { depends_on: ['fanout'] }),
  ],
  edges: [
    { from: 'extract', to: 'load_a' },
    { from: 'extract', to: 'load_b' },
    { from: 'load_a', to: 'load_b' },
    { from: 'load_a', to: 'fanout' },
    { from: 'load_b', to: 'fanout' },
    { from: 'fanout', to: 'report' },
  ],
};

describe('buildStructure', () => {
  it('folds a group into one node and drops the edges inside it', () => {
    const s = buildStructure(graph);
    expect(s.nodes.map((n) => [n.id, n.kind])).toEqual([
      ['extract', 'task'],
      [groupNodeId('load'), 'group'],
      ['fanout', 'map'],
      ['report', 'task'],
    ]);
    expect(s.nodes[1]?.members).toEqual(['load_a', 'load_b']);
    expect(s.edges).toEqual([
      { from: 'extract', to: 'group:load' },
      { from: 'group:load', to: 'fanout' },
      { from: 'fanout', to: 'report' },
    ]);
  });

  it('keeps an expanded group as its tasks', () => {
    const s = buildStructure(graph, new Set(['load']));
    expect(s.nodes.map((n) => n.id)).toEqual(['extract', 'load_a', 'load_b', 'fanout', 'report']);
    expect(s.edges).toContainEqual({ from: 'load_a', to: 'load_b' });
    expect(structureKey(s)).not.toBe(structureKey(buildStructure(graph)));
  });

  it('takes edges from depends_on when the edge list is empty', () => {
    const s = buildStructure({ nodes: graph.nodes, edges: [] }, new Set(['load']));
    expect(s.edges).toHaveLength(6);
  });
});

describe('nodeStatus', () => {
  const instances = Array.from({ length: 10_000 }, (_, i) =>
    task(`fanout[${i}]`, i < 9_990 ? 'succeeded' : i < 9_995 ? 'running' : 'failed', {
      parent_task: 'fanout',
      item: i,
    }),
  );
  const tasks = [
    task('extract', 'succeeded'),
    task('load_a', 'succeeded'),
    task('load_b', 'retrying'),
    task('fanout', 'waiting'),
    ...instances,
  ];
  const index = indexTasks(tasks);
  const s = buildStructure(graph);
  const byId = new Map(s.nodes.map((n) => [n.id, n]));

  it('counts the instances of a map by state and shows the most urgent', () => {
    const status = nodeStatus(byId.get('fanout')!, index);
    expect(status.counts).toEqual({ succeeded: 9_990, running: 5, failed: 5 });
    expect(status.total).toBe(10_000);
    expect(status.state).toBe('failed');
  });

  it('counts the members of a group', () => {
    const status = nodeStatus(byId.get('group:load')!, index);
    expect(status.counts).toEqual({ succeeded: 1, retrying: 1 });
    expect(status.state).toBe('retrying');
  });

  it('shows a task that has not run as pending', () => {
    expect(nodeStatus(byId.get('report')!, index).state).toBe('pending');
    expect(nodeStatus(byId.get('extract')!, index).state).toBe('succeeded');
  });
});

describe('firstFailedTask and upsertTask', () => {
  it('picks the failed task that started first', () => {
    const tasks = [
      task('b', 'failed', { started_at: '2026-01-01T00:00:05Z' }),
      task('a', 'succeeded', { started_at: '2026-01-01T00:00:00Z' }),
      task('c', 'failed', { started_at: '2026-01-01T00:00:02Z' }),
    ];
    expect(firstFailedTask(tasks)?.id).toBe('c');
    expect(firstFailedTask([task('a', 'succeeded')])).toBeNull();
  });

  it('replaces a task run by id or appends a new one', () => {
    const tasks = [task('a', 'running')];
    expect(upsertTask(tasks, task('a', 'succeeded'))).toEqual([task('a', 'succeeded')]);
    expect(upsertTask(tasks, task('b', 'queued')).map((t) => t.id)).toEqual(['a', 'b']);
    expect(tasks[0]?.state).toBe('running');
  });
});
