/** Assets: their latest version, who made it, and whether they are stale. */
import { useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { api } from '../api/client';
import { ApiErrorBox, PageHead, Time } from '../components/bits';
import { useListKeys } from '../lib/keyboard';
import { useApi, useNow } from '../lib/use-api';

export function AssetsPage() {
  const [search, setSearch] = useSearchParams();
  const q = search.get('q') ?? '';
  const stale = search.get('stale') === '1';
  const assets = useApi('assets', (signal) => api.assets({ limit: 500 }, signal));
  const now = useNow(30_000);
  const navigate = useNavigate();
  const items = (assets.data?.items ?? []).filter(
    (a) => (!q || a.key.includes(q) || a.flow.includes(q)) && (!stale || a.stale),
  );
  const [index, setIndex] = useState(-1);
  useListKeys(items.length, index, setIndex, (i) => {
    const a = items[i];
    if (a) navigate(`/assets/${a.key}`);
  });
  const set = (name: string, value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(name, value);
    else next.delete(name);
    setSearch(next, { replace: true });
  };

  return (
    <div>
      <PageHead title="Assets">
        <input
          type="search"
          data-search
          placeholder="Filter ( / )"
          aria-label="Filter assets"
          value={q}
          onChange={(e) => set('q', e.target.value)}
        />
        <label>
          <input type="checkbox" checked={stale} onChange={(e) => set('stale', e.target.checked ? '1' : '')} /> stale
          only
        </label>
      </PageHead>
      <ApiErrorBox error={assets.error} />
      <table className="table">
        <thead>
          <tr>
            <th>asset</th>
            <th>status</th>
            <th>latest version</th>
            <th>materialized</th>
            <th>by</th>
          </tr>
        </thead>
        <tbody>
          {items.map((a, i) => (
            <tr key={a.key} className={i === index ? 'selected' : ''} data-testid={`asset-${a.key}`}>
              <td>
                <Link to={`/assets/${a.key}`}>{a.key}</Link>
              </td>
              <td>{a.stale ? <span className="warn">⚠ stale</span> : <span className="ok">✓ fresh</span>}</td>
              <td>
                <code>{a.latest_version}</code>
              </td>
              <td>
                <Time iso={a.latest_at} now={now} />
              </td>
              <td className="small">
                <Link to={`/flows/${encodeURIComponent(a.flow)}`}>{a.flow}</Link> ›{' '}
                <Link to={`/runs/${encodeURIComponent(a.run_id)}?task=${encodeURIComponent(a.task)}`}>{a.task}</Link>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {assets.data && items.length === 0 ? (
        <p className="muted">
          No assets{q || stale ? ' match' : ' yet: tasks that declare an asset materialize it when they run'}.
        </p>
      ) : null}
    </div>
  );
}
