/** A flow's recent runs as a strip of coloured squares, oldest on the left (Airflow's grid, one row). */
import { Link } from 'react-router';
import type { RecentRun } from '../api/types';
import { formatDuration, formatUtc } from '../lib/format';
import { StateSquare } from './bits';

export function RunStrip({ runs }: { runs: RecentRun[] }) {
  const oldestFirst = [...runs].reverse();
  return (
    <span className="strip">
      {oldestFirst.map((r) => (
        <Link key={r.id} to={`/runs/${encodeURIComponent(r.id)}`} tabIndex={-1}>
          <StateSquare
            state={r.state}
            size={12}
            title={`${r.id} · ${r.state} · ${formatUtc(r.created_at)} · ${formatDuration(r.duration_ms)}`}
          />
        </Link>
      ))}
    </span>
  );
}
