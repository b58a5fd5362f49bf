/** A flow: its graph, its runs × tasks grid, its triggers and a Start button with a params form. */
import { lazy, Suspense, useMemo, useState } from 'react';
import { Link, useParams, useSearchParams } from 'react-router';
import { api } from '../api/client';
import { ApiErrorBox, JsonView, PageHead, StateBadge, Time } from '../components/bits';
import { RunGrid } from '../components/RunGrid';
import { StartRunDialog } from '../components/StartRunDialog';
import { buildStructure } from '../lib/graph-model';
import { useApi, useNow } from '../lib/use-api';

const DagView = lazy(() => import('../components/DagView'));
const TABS = ['grid', 'graph', 'definition'] as const;

export default function FlowPage() {
  const { flow: name = '' } = useParams();
  const [search, setSearch] = useSearchParams();
  const tab = (TABS as readonly string[]).includes(search.get('tab') ?? '') ? search.get('tab') : 'grid';
  const flow = useApi(name, (signal) => api.flow(name, signal));
  const runs = useApi(`runs/${name}`, (signal) => api.runs({ flow: name, limit: 25 }, signal));
  const [starting, setStarting] = useState(false);
  const now = useNow(30_000);
  const graph = flow.data?.graph;
  const structure = useMemo(() => (graph ? buildStructure(graph) : null), [graph]);

  if (flow.error) return <ApiErrorBox error={flow.error} />;
  const f = flow.data;
  if (!f) return <div className="muted pad">Loading flow…</div>;
  return (
    <div>
      <PageHead title={<>Flow {f.name}</>}>
        <StateBadge state={f.last_state} />
        <Link to={`/runs?flow=${encodeURIComponent(f.name)}`}>all runs</Link>
        <button type="button" className="primary" data-testid="start-run" onClick={() => setStarting(true)}>
          Start run
        </button>
      </PageHead>
      <div className="run-meta small">
        <span className="muted">{f.file}</span>
        {f.version ? <span>v{f.version}</span> : null}
        <span>{f.task_count} tasks</span>
        {f.description ? <span>{f.description}</span> : null}
      </div>
      {f.problems.length > 0 ? (
        <div className="error-box">
          {f.problems.map((p, i) => (
            <div key={i}>
              {p.message} {p.location ? <code className="muted">{JSON.stringify(p.location)}</code> : null}
            </div>
          ))}
        </div>
      ) : null}
      {f.triggers.length > 0 ? (
        <table className="table">
          <thead>
            <tr>
              <th>trigger</th>
              <th>kind</th>
              <th>state</th>
              <th>next fire</th>
            </tr>
          </thead>
          <tbody>
            {f.triggers.map((t) => (
              <tr key={t.name}>
                <td>
                  <Link to={`/triggers?id=${encodeURIComponent(`${f.name}/${t.name}`)}`}>{t.name}</Link>
                </td>
                <td>{t.kind}</td>
                <td>{t.paused ? <span className="muted">‖ paused</span> : '▶ active'}</td>
                <td>
                  <Time iso={t.next_fire_at} now={now} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <div className="tabs" role="tablist">
        {TABS.map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            aria-selected={tab === t}
            className={tab === t ? 'active' : ''}
            onClick={() => setSearch(t === 'grid' ? {} : { tab: t }, { replace: true })}
          >
            {t}
          </button>
        ))}
      </div>
      {tab === 'grid' && structure ? (
        <>
          <ApiErrorBox error={runs.error} />
          <RunGrid structure={structure} runs={runs.data?.items ?? []} />
        </>
      ) : null}
      {tab === 'graph' && structure ? (
        <Suspense fallback={<div className="muted pad">Loading graph…</div>}>
          <DagView structure={structure} status={null} height={480} />
        </Suspense>
      ) : null}
      {tab === 'definition' ? <JsonView value={f.definition} /> : null}
      {starting ? <StartRunDialog flow={f.name} schema={f.params_schema} onClose={() => setStarting(false)} /> : null}
    </div>
  );
}
