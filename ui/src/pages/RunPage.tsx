/**
 * A run: its state and actions, then graph, timeline, task list and events as tabs, and
 * the selected task's panel. The tab, the selected task and the expanded groups are in the
 * URL. A failed run opens on its first failed task.
 */
import { lazy, Suspense, useCallback, useEffect, useMemo, useRef } from 'react';
import { Link, useParams, useSearchParams } from 'react-router';
import { api } from '../api/client';
import type { GraphNode, Run, RunDetail, TaskRun } from '../api/types';
import { ApiErrorBox, Duration, PageHead, StateBadge, StateCounts, Time } from '../components/bits';
import { EventsList } from '../components/EventsList';
import { LogTail } from '../components/LogTail';
import { Gantt } from '../components/Gantt';
import { RunActions } from '../components/RunActions';
import { TaskPanel } from '../components/TaskPanel';
import { TaskTable } from '../components/TaskTable';
import { useLiveEvents } from '../lib/events';
import {
  buildStructure,
  firstFailedTask,
  indexTasks,
  nodeStatus,
  upsertTasks,
  type ModelNode,
} from '../lib/graph-model';
import { TERMINAL_RUN } from '../lib/states';
import { useApi, useNow } from '../lib/use-api';
import { useStateFavicon } from '../lib/favicon';

const loadDagView = () => import('../components/DagView');
const DagView = lazy(loadDagView);

const TABS = ['graph', 'gantt', 'tasks', 'logs', 'events'] as const;
type Tab = (typeof TABS)[number];

export default function RunPage() {
  const { runId = '' } = useParams();
  const [search, setSearch] = useSearchParams();
  const tab: Tab = (TABS as readonly string[]).includes(search.get('tab') ?? '') ? (search.get('tab') as Tab) : 'graph';
  const selected = search.get('task');
  const expanded = useMemo(() => new Set((search.get('expand') ?? '').split(',').filter(Boolean)), [search]);

  const run = useApi<RunDetail>(runId, (signal) => api.run(runId, signal));
  const flowName = run.data?.flow ?? '';
  const flow = useApi(flowName, (signal) => api.flow(flowName, signal), flowName !== '');
  const live = run.data ? !TERMINAL_RUN.has(run.data.state) : false;
  const now = useNow(1000, live);
  useStateFavicon(run.data?.state ?? null);

  // The graph's code (its layout library is most of the UI's size) loads while the run and
  // its flow are fetched, not after them.
  useEffect(() => {
    if (tab === 'graph') void loadDagView();
  }, [tab]);

  const setRun = run.setData;
  // Task events come in bursts on big runs: apply them a few times a second, not one by one.
  const pendingTasks = useRef(new Map<string, TaskRun>());
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => {
      const updates = pendingTasks.current;
      if (updates.size === 0) return;
      pendingTasks.current = new Map();
      setRun((prev) => (prev ? { ...prev, tasks: upsertTasks(prev.tasks, updates) } : prev));
    }, 250);
    return () => clearInterval(timer);
  }, [live, setRun]);
  useLiveEvents(
    { run: runId },
    {
      onRun: (r: Run) => {
        setRun((prev) => (prev && prev.id === r.id ? { ...prev, ...r } : prev));
        // The end of the run closes the stream: read the run once more, after its end. That
        // read replaces one still in flight (which may have left before the end, and would
        // otherwise land after this event) and brings the tasks' last states.
        if (r.id === runId && TERMINAL_RUN.has(r.state)) run.reload();
      },
      onTask: (e) => {
        if (e.run_id === runId) pendingTasks.current.set(e.task.id, e.task);
      },
      onOpen: run.reload,
    },
    live,
  );

  const setParam = useCallback(
    (changes: Record<string, string | null>, replace = false) => {
      setSearch(
        (prev) => {
          const next = new URLSearchParams(prev);
          for (const [k, v] of Object.entries(changes)) {
            if (v === null || v === '') next.delete(k);
            else next.set(k, v);
          }
          return next;
        },
        { replace },
      );
    },
    [setSearch],
  );

  // Errors first: a failed run opens on its first failed task.
  const data = run.data;
  useEffect(() => {
    if (!data || selected || data.state !== 'failed') return;
    const first = data.failure?.task ?? firstFailedTask(data.tasks)?.id ?? null;
    if (first) setParam({ task: first }, true);
  }, [data, selected, setParam]);

  const index = useMemo(() => indexTasks(data?.tasks ?? []), [data?.tasks]);
  const graph = flow.data?.graph;
  const structure = useMemo(() => (graph ? buildStructure(graph, expanded) : null), [graph, expanded]);
  const status = useCallback((node: ModelNode) => nodeStatus(node, index), [index]);
  const nodesById = useMemo(() => new Map<string, GraphNode>((graph?.nodes ?? []).map((n) => [n.id, n])), [graph]);
  const counts = useMemo(() => {
    const c: Record<string, number> = {};
    for (const t of data?.tasks ?? []) c[t.state] = (c[t.state] ?? 0) + 1;
    return c;
  }, [data?.tasks]);

  if (run.error && !data) return <ApiErrorBox error={run.error} />;
  if (!data) return <div className="muted pad">Loading run…</div>;

  const selectTask = (id: string, replace = false) => setParam({ task: id }, replace);
  const onNode = (node: ModelNode) => {
    if (node.kind === 'group') {
      const group = node.label;
      setParam({ expand: [...expanded, group].join(',') });
    } else setParam({ task: node.id });
  };
  const task = selected ? (index.byId.get(selected) ?? null) : null;

  return (
    <div className="run-page">
      <PageHead
        title={
          <>
            Run <code>{data.id}</code>
          </>
        }
      >
        <StateBadge state={data.state} testId="run-state" />
      </PageHead>
      <div className="run-meta small">
        <span>
          flow <Link to={`/flows/${encodeURIComponent(data.flow)}`}>{data.flow}</Link>{' '}
          <span className="muted">v{data.version}</span>
        </span>
        <span>
          created <Time iso={data.created_at} now={now} />
        </span>
        <span>
          duration <Duration ms={data.duration_ms} start={data.started_at} end={data.ended_at} now={now} />
        </span>
        {data.trigger ? <span>trigger {data.trigger}</span> : <span className="muted">manual</span>}
        {data.parent ? (
          <span>
            parent{' '}
            <Link
              to={`/runs/${encodeURIComponent(data.parent.run)}?task=${encodeURIComponent(data.parent.task ?? '')}`}
            >
              {data.parent.run} › {data.parent.task}
            </Link>
          </span>
        ) : null}
        {Object.entries(data.labels).map(([k, v]) => (
          <span key={k} className="label">
            {k}={v}
          </span>
        ))}
        <StateCounts counts={counts} />
      </div>
      <RunActions run={data} onDone={run.reload} />
      {data.failure ? (
        <div className="error-box">
          <strong>Failed</strong>
          {data.failure.task ? (
            <>
              {' '}
              at{' '}
              <button type="button" className="link" onClick={() => selectTask(data.failure?.task ?? '')}>
                {data.failure.task}
              </button>
            </>
          ) : null}{' '}
          after {data.failure.attempts} attempt(s): {data.failure.message}{' '}
          <code className="muted">{data.failure.code}</code>
        </div>
      ) : null}

      <div className="run-body">
        <div className="run-main">
          <div className="tabs" role="tablist">
            {TABS.map((t) => (
              <button
                key={t}
                type="button"
                role="tab"
                aria-selected={tab === t}
                className={tab === t ? 'active' : ''}
                onClick={() => setParam({ tab: t === 'graph' ? null : t })}
                data-testid={`tab-${t}`}
              >
                {t}
              </button>
            ))}
            {expanded.size > 0 ? (
              <button type="button" className="link" onClick={() => setParam({ expand: null })}>
                collapse groups
              </button>
            ) : null}
          </div>
          {tab === 'graph' ? (
            structure ? (
              <Suspense fallback={<div className="muted pad">Loading graph…</div>}>
                <DagView structure={structure} status={status} selected={selected} onSelect={onNode} height={460} />
              </Suspense>
            ) : (
              <>
                <ApiErrorBox error={flow.error} />
                {!flow.error ? <div className="muted pad">Loading the flow's graph…</div> : null}
              </>
            )
          ) : null}
          {tab === 'gantt' ? <Gantt tasks={data.tasks} selected={selected} onSelect={selectTask} now={now} /> : null}
          {tab === 'tasks' ? (
            <TaskTable
              tasks={data.tasks}
              selected={selected}
              onSelect={selectTask}
              now={now}
              filter={search.get('q') ?? ''}
              onFilter={(q) => setParam({ q }, true)}
            />
          ) : null}
          {tab === 'logs' ? <LogTail runId={data.id} live={live} testId="run-log-panel" /> : null}
          {tab === 'events' ? <EventsList runId={data.id} now={now} /> : null}

          {data.children.length > 0 ? (
            <>
              <h3>Child runs</h3>
              <table className="table">
                <tbody>
                  {data.children.map((c) => (
                    <tr key={c.id}>
                      <td>
                        <Link to={`/runs/${encodeURIComponent(c.id)}`}>{c.id}</Link>
                      </td>
                      <td>{c.flow}</td>
                      <td>
                        <StateBadge state={c.state} />
                      </td>
                      <td>{c.parent ? <code>{c.parent.task}</code> : null}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : null}
          {data.assets.length > 0 ? (
            <>
              <h3>Assets produced</h3>
              <table className="table">
                <thead>
                  <tr>
                    <th>asset</th>
                    <th>version</th>
                    <th>task</th>
                    <th>rows</th>
                    <th>checks</th>
                  </tr>
                </thead>
                <tbody>
                  {data.assets.map((a) => (
                    <tr key={`${a.asset}@${a.version}`}>
                      <td>
                        <Link to={`/assets/${a.asset}`}>{a.asset}</Link>
                      </td>
                      <td>
                        <code>{a.version}</code>
                      </td>
                      <td>
                        <button type="button" className="link" onClick={() => selectTask(a.task)}>
                          {a.task}
                        </button>
                      </td>
                      <td className="num">{a.row_count ?? '–'}</td>
                      <td>
                        {a.checks.map((c) => (
                          <span key={c.name} className={c.passed ? 'ok' : c.severity === 'error' ? 'bad' : 'warn'}>
                            {c.passed ? '✓' : '✕'} {c.name}{' '}
                          </span>
                        ))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : null}
        </div>
        <aside className="run-side">
          {task ? (
            <TaskPanel
              run={data}
              task={task}
              node={nodesById.get(task.parent_task ?? task.id)}
              tasksById={index.byId}
              now={now}
              onChanged={run.reload}
              onSelect={selectTask}
            />
          ) : selected ? (
            <p className="muted pad">
              Task <code>{selected}</code> has not run in this run.
            </p>
          ) : (
            <p className="muted pad">
              Select a task in the graph, the timeline or the list to see its attempts, error and log.
            </p>
          )}
        </aside>
      </div>
    </div>
  );
}
