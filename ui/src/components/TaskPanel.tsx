/** One task run in full: state, error with stack, attempts, log tail, output and inputs. */
import { Link } from 'react-router';
import { api } from '../api/client';
import type { AttemptInfo, GraphNode, RunDetail, TaskRun } from '../api/types';
import { elapsedMs, formatDuration } from '../lib/format';
import { TERMINAL_RUN } from '../lib/states';
import { useApi } from '../lib/use-api';
import { ApiErrorBox, Duration, JsonView, StateBadge, TaskErrorView, Time } from './bits';
import { LogTail } from './LogTail';
import { RunActions } from './RunActions';
import { stateLook } from '../lib/states';

function AttemptBars({ attempts, now }: { attempts: AttemptInfo[]; now: number }) {
  const starts = attempts.map((a) => (a.started_at ? Date.parse(a.started_at) : NaN)).filter((t) => !Number.isNaN(t));
  if (starts.length === 0) return null;
  const t0 = Math.min(...starts);
  const t1 = Math.max(...attempts.map((a) => (a.ended_at ? Date.parse(a.ended_at) : a.started_at ? now : t0)), t0 + 1);
  return (
    <div className="attempt-bars" aria-hidden>
      {attempts.map((a) => {
        const s = a.started_at ? Date.parse(a.started_at) : t0;
        const e = a.ended_at ? Date.parse(a.ended_at) : now;
        return (
          <div
            key={a.attempt}
            className="bar"
            style={{
              ['--c' as string]: stateLook(a.state).color,
              left: `${((s - t0) / (t1 - t0)) * 100}%`,
              width: `${Math.max(0.5, ((e - s) / (t1 - t0)) * 100)}%`,
            }}
            title={`attempt ${a.attempt}: ${a.state}`}
          />
        );
      })}
    </div>
  );
}

/** The panel of the selected task run. */
export function TaskPanel(props: {
  run: RunDetail;
  task: TaskRun;
  node: GraphNode | undefined;
  tasksById: Map<string, TaskRun>;
  now: number;
  onChanged: () => void;
  onSelect: (task: string) => void;
}) {
  const { run, task, node, now } = props;
  const live = !TERMINAL_RUN.has(run.state);
  // Read the attempts again whenever the task run changes (state or attempt count).
  const detail = useApi(`${run.id}/${task.id}/${task.state}/${task.attempts}`, (signal) =>
    api.taskRun(run.id, task.id, signal),
  );
  const attempts = detail.data?.attempts ?? [];
  const upstream = node?.depends_on ?? [];

  return (
    <section className="panel" aria-label={`Task ${task.id}`} data-testid="task-panel">
      <div className="panel-head">
        <h2>
          <code>{task.id}</code>
        </h2>
        <StateBadge state={task.state} testId="task-state" />
        <span className="muted small">
          {task.attempts} attempt{task.attempts === 1 ? '' : 's'} ·{' '}
          <Duration ms={task.duration_ms} start={task.started_at} end={task.ended_at} now={now} />
        </span>
      </div>
      <RunActions run={run} task={task} onDone={props.onChanged} />
      <dl className="kv">
        <dt>started</dt>
        <dd>
          <Time iso={task.started_at} now={now} />
        </dd>
        <dt>ended</dt>
        <dd>
          <Time iso={task.ended_at} now={now} />
        </dd>
        {node?.map && task.parent_task === undefined ? (
          <>
            <dt>items</dt>
            <dd>
              <Link to={`?tab=tasks&q=${encodeURIComponent(task.id)}&task=${encodeURIComponent(task.id)}`}>
                list the instances of {task.id}
              </Link>
            </dd>
          </>
        ) : null}
        {node ? (
          <>
            <dt>kind</dt>
            <dd>
              {node.kind}
              {node.map ? ' (map)' : ''} · rule {node.trigger_rule}
            </dd>
          </>
        ) : null}
        {task.parent_task !== undefined ? (
          <>
            <dt>map</dt>
            <dd>
              <button type="button" className="link" onClick={() => props.onSelect(task.parent_task ?? '')}>
                {task.parent_task}
              </button>{' '}
              item {task.item}
            </dd>
          </>
        ) : null}
        {task.skip_reason ? (
          <>
            <dt>skipped</dt>
            <dd>{task.skip_reason}</dd>
          </>
        ) : null}
        {task.cached_from ? (
          <>
            <dt>cached</dt>
            <dd>
              output reused from <code>{task.cached_from}</code>
            </dd>
          </>
        ) : null}
        {task.wait ? (
          <>
            <dt>waits for</dt>
            <dd>
              <code>{JSON.stringify(task.wait)}</code>
            </dd>
          </>
        ) : null}
      </dl>
      {task.error ? <TaskErrorView error={task.error} /> : null}

      <h3>Attempts</h3>
      <ApiErrorBox error={detail.error} />
      <AttemptBars attempts={attempts} now={now} />
      <table className="table attempts">
        <thead>
          <tr>
            <th>#</th>
            <th>state</th>
            <th>started</th>
            <th>duration</th>
            <th>error</th>
          </tr>
        </thead>
        <tbody>
          {attempts.map((a) => (
            <tr key={a.attempt}>
              <td className="num">{a.attempt}</td>
              <td>
                <StateBadge state={a.state} />
              </td>
              <td>
                <Time iso={a.started_at} now={now} />
              </td>
              <td className="num">{formatDuration(elapsedMs(a.started_at, a.ended_at, now))}</td>
              <td className="ellipsis" title={a.error?.stack ?? a.error?.message}>
                {a.error ? a.error.message : ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>

      <h3>Log</h3>
      <LogTail runId={run.id} task={task.id} live={live} />

      <h3>Output</h3>
      <JsonView value={task.output} />

      <h3>Inputs</h3>
      {upstream.length === 0 ? <p className="muted small">No upstream tasks; the run's params:</p> : null}
      {upstream.map((u) => (
        <details key={u}>
          <summary>
            <button type="button" className="link" onClick={() => props.onSelect(u)}>
              {u}
            </button>{' '}
            <StateBadge state={props.tasksById.get(u)?.state ?? 'pending'} />
          </summary>
          <JsonView value={props.tasksById.get(u)?.output} />
        </details>
      ))}
      {upstream.length === 0 ? <JsonView value={run.params} /> : null}
      <p className="small muted">
        CLI:{' '}
        <code>
          baton show {run.id} --task {task.id}
        </code>
      </p>
      {task.wait && typeof task.wait.run === 'string' ? (
        <p>
          Child run: <Link to={`/runs/${encodeURIComponent(task.wait.run)}`}>{task.wait.run}</Link>
        </p>
      ) : null}
    </section>
  );
}
