/** One asset: its lineage graph, versions, check results and staleness; materialize it. */
import { lazy, Suspense, useMemo, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { api } from '../api/client';
import { ApiErrorBox, PageHead, Time } from '../components/bits';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { shellQuote } from '../lib/cli';
import { formatBytes } from '../lib/format';
import type { GraphStructure, ModelNode, NodeStatus } from '../lib/graph-model';
import { useApi, useNow } from '../lib/use-api';

const DagView = lazy(() => import('../components/DagView'));

export default function AssetPage() {
  const params = useParams();
  const key = params['*'] ?? '';
  const navigate = useNavigate();
  const detail = useApi(`asset/${key}`, (signal) => api.asset(key, signal));
  const lineage = useApi(`lineage/${key}`, (signal) => api.assetLineage(key, 3, signal));
  const now = useNow(30_000);
  const [materializing, setMaterializing] = useState(false);

  const structure = useMemo<GraphStructure | null>(() => {
    if (!lineage.data) return null;
    return {
      nodes: lineage.data.nodes.map((n) => ({ id: n.key, label: n.key, kind: 'task', members: [n.key] })),
      edges: lineage.data.edges,
    };
  }, [lineage.data]);
  const staleness = useMemo(() => new Map((lineage.data?.nodes ?? []).map((n) => [n.key, n.stale])), [lineage.data]);
  const status = useMemo(
    () =>
      (node: ModelNode): NodeStatus => {
        const state = staleness.get(node.id) ? 'stale' : 'succeeded';
        return { state, counts: { [state]: 1 }, total: 1 };
      },
    [staleness],
  );

  if (detail.error) return <ApiErrorBox error={detail.error} />;
  const d = detail.data;
  if (!d) return <div className="muted pad">Loading asset…</div>;
  return (
    <div>
      <PageHead title={<>Asset {d.asset.key}</>}>
        {d.asset.stale ? <span className="warn">⚠ stale</span> : <span className="ok">✓ fresh</span>}
        <button type="button" className="primary" data-testid="materialize" onClick={() => setMaterializing(true)}>
          Materialize
        </button>
      </PageHead>
      <div className="run-meta small">
        <span>
          latest <code>{d.asset.latest_version}</code> <Time iso={d.asset.latest_at} now={now} />
        </span>
        <span>
          by <Link to={`/flows/${encodeURIComponent(d.asset.flow)}`}>{d.asset.flow}</Link> ›{' '}
          <Link to={`/runs/${encodeURIComponent(d.asset.run_id)}?task=${encodeURIComponent(d.asset.task)}`}>
            {d.asset.task}
          </Link>
        </span>
      </div>
      <h3>Lineage</h3>
      <ApiErrorBox error={lineage.error} />
      {structure ? (
        <Suspense fallback={<div className="muted pad">Loading graph…</div>}>
          <DagView
            structure={structure}
            status={status}
            selected={key}
            onSelect={(n) => navigate(`/assets/${n.id}`)}
            height={300}
          />
        </Suspense>
      ) : null}
      <div className="split">
        <section>
          <h3>Upstream</h3>
          <table className="table">
            <tbody>
              {d.upstream.map((u) => (
                <tr key={u.key}>
                  <td>
                    <Link to={`/assets/${u.key}`}>{u.key}</Link>
                  </td>
                  <td className="small">
                    read <code>{u.version_read ?? '–'}</code>, latest <code>{u.latest_version ?? '–'}</code>
                  </td>
                  <td>{u.stale ? <span className="warn">⚠ newer upstream</span> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <h3>Downstream</h3>
          <table className="table">
            <tbody>
              {d.downstream.map((u) => (
                <tr key={u.key}>
                  <td>
                    <Link to={`/assets/${u.key}`}>{u.key}</Link>
                  </td>
                  <td>{u.stale ? <span className="warn">⚠ stale</span> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section>
          <h3>Checks</h3>
          <table className="table">
            <tbody>
              {d.checks.map((c) => (
                <tr key={c.name}>
                  <td className={c.passed ? 'ok' : c.severity === 'error' ? 'bad' : 'warn'}>
                    {c.passed ? '✓ passed' : `✕ ${c.severity}`}
                  </td>
                  <td>{c.name}</td>
                  <td className="muted">{c.kind}</td>
                  <td className="small">
                    {c.passed ? '' : `${c.failing_count} failing`} {c.message ?? ''}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      </div>
      <h3>Versions</h3>
      <table className="table">
        <thead>
          <tr>
            <th>version</th>
            <th>at</th>
            <th>run</th>
            <th className="num">rows</th>
            <th className="num">size</th>
          </tr>
        </thead>
        <tbody>
          {d.versions.map((v) => (
            <tr key={v.version}>
              <td>
                <code>{v.version}</code>
              </td>
              <td>
                <Time iso={typeof v.at === 'string' ? v.at : null} now={now} />
              </td>
              <td>
                {typeof v.run_id === 'string' ? (
                  <Link
                    to={`/runs/${encodeURIComponent(v.run_id)}${v.task ? `?task=${encodeURIComponent(String(v.task))}` : ''}`}
                  >
                    {v.run_id}
                  </Link>
                ) : null}
              </td>
              <td className="num">{typeof v.row_count === 'number' ? v.row_count : '–'}</td>
              <td className="num">{formatBytes(typeof v.size === 'number' ? v.size : null)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="small muted">
        CLI: <code>baton asset show {shellQuote(key)}</code>
      </p>
      {materializing ? (
        <ConfirmDialog
          title={`Materialize ${key}?`}
          command={`baton asset materialize ${shellQuote(key)}`}
          confirmLabel="Materialize"
          onConfirm={async () => {
            const res = await api.materialize(key);
            navigate(`/runs/${encodeURIComponent(res.id)}`);
          }}
          onClose={() => setMaterializing(false)}
        />
      ) : null}
    </div>
  );
}
