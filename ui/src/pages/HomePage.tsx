/** The flows: failing first, each with its schedule, next run and recent runs. */
import { useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api } from '../api/client';
import { ApiErrorBox, PageHead, StateBadge, Time } from '../components/bits';
import { RunStrip } from '../components/RunStrip';
import { useLiveEvents } from '../lib/events';
import { useListKeys } from '../lib/keyboard';
import { useApi, useNow } from '../lib/use-api';

export function HomePage() {
  const [search, setSearch] = useSearchParams();
  const q = search.get('q') ?? '';
  const flows = useApi(`flows?${q}`, (signal) => api.flows({ q, limit: 500 }, signal));
  const now = useNow(30_000);
  const navigate = useNavigate();
  // Live: when runs change, read the flows again, at most every few seconds.
  const reloadTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const { reload } = flows;
  useLiveEvents(
    {},
    {
      onRun: () => {
        reloadTimer.current ??= setTimeout(() => {
          reloadTimer.current = undefined;
          reload();
        }, 3000);
      },
      onOpen: reload,
    },
  );
  useEffect(() => () => clearTimeout(reloadTimer.current), []);
  const items = flows.data?.items ?? [];
  const [index, setIndex] = useState(-1);
  useListKeys(items.length, index, setIndex, (i) => {
    const f = items[i];
    if (f) navigate(`/flows/${encodeURIComponent(f.name)}`);
  });

  return (
    <div>
      <PageHead title="Flows">
        <input
          type="search"
          data-search
          placeholder="Search flows ( / )"
          aria-label="Search flows"
          value={q}
          onChange={(e) => setSearch(e.target.value ? { q: e.target.value } : {}, { replace: true })}
        />
      </PageHead>
      <ApiErrorBox error={flows.error} />
      {flows.data && items.length === 0 && !q ? <EmptyProject /> : null}
      {flows.data && items.length === 0 && q ? <p className="muted">No flow matches “{q}”.</p> : null}
      {items.length > 0 ? (
        <table className="table" data-testid="flows">
          <thead>
            <tr>
              <th>last</th>
              <th>flow</th>
              <th>recent runs</th>
              <th>triggers</th>
              <th>next run</th>
              <th className="num">tasks</th>
              <th>description</th>
            </tr>
          </thead>
          <tbody>
            {items.map((f, i) => {
              const next = f.triggers
                .filter((t) => !t.paused && t.next_fire_at)
                .map((t) => t.next_fire_at as string)
                .sort()[0];
              return (
                <tr key={f.name} className={i === index ? 'selected' : ''} data-testid={`flow-${f.name}`}>
                  <td>
                    {f.problems.length > 0 ? (
                      <span className="bad">✕ invalid</span>
                    ) : (
                      <StateBadge state={f.last_state} />
                    )}
                  </td>
                  <td>
                    <Link to={`/flows/${encodeURIComponent(f.name)}`}>{f.name}</Link>
                    {f.problems.length > 0 ? (
                      <div className="bad small">{f.problems.map((p) => p.message).join('; ')}</div>
                    ) : null}
                  </td>
                  <td>
                    <RunStrip runs={f.recent_runs} />
                  </td>
                  <td className="small">
                    {f.triggers.map((t) => (
                      <span key={t.name} className={t.paused ? 'muted' : ''} title={t.kind}>
                        {t.name}
                        {t.paused ? ' (paused)' : ''}{' '}
                      </span>
                    ))}
                  </td>
                  <td>{next ? <Time iso={next} now={now} /> : <span className="muted">–</span>}</td>
                  <td className="num">{f.task_count}</td>
                  <td className="muted ellipsis">{f.description ?? ''}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : null}
      {flows.data?.next_cursor ? <p className="muted small">More flows exist; narrow with the search.</p> : null}
    </div>
  );
}

/** What a project with no flows shows: how to get to a first run. */
function EmptyProject() {
  return (
    <div className="empty" data-testid="empty-state">
      <h2>No flows yet</h2>
      <p>Baton finds flows in your project's flow files. To get to a first run:</p>
      <ol>
        <li>
          Create a project: <code>baton init</code>
        </li>
        <li>
          Check the flows load: <code>baton validate</code>
        </li>
        <li>
          Start a run: <code>baton run &lt;flow&gt;</code>, or click <em>Start run</em> on a flow's page
        </li>
        <li>
          Keep flows, triggers and this UI live while you edit: <code>baton dev</code>
        </li>
      </ol>
    </div>
  );
}
