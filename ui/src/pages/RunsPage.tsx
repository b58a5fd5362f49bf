/** Every run, newest first, filtered by flow, state, time range and trigger (all in the URL). */
import { useCallback, useEffect, useRef, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { useVirtualizer } from '@tanstack/react-virtual';
import { api, ApiError } from '../api/client';
import { RUN_STATE_NAMES, type Run } from '../api/types';
import { ApiErrorBox, Duration, PageHead, StateBadge, Time } from '../components/bits';
import { useLiveEvents } from '../lib/events';
import { useListKeys } from '../lib/keyboard';
import { useNow } from '../lib/use-api';
import { stateLook } from '../lib/states';

const ROW = 26;
const RANGES: Record<string, number> = {
  '1h': 3_600_000,
  '24h': 86_400_000,
  '7d': 7 * 86_400_000,
  '30d': 30 * 86_400_000,
};

export function RunsPage() {
  const [search, setSearch] = useSearchParams();
  const flow = search.get('flow') ?? '';
  const states = (search.get('state') ?? '').split(',').filter(Boolean);
  const range = search.get('range') ?? '';
  const trigger = search.get('trigger') ?? '';
  // An exact interval (`since`, `until`, ISO times) wins over a preset range.
  const sinceParam = search.get('since') ?? '';
  const until = search.get('until') ?? '';
  const key = search.toString();

  const [runs, setRuns] = useState<Run[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const generation = useRef(0);
  const now = useNow(5000);

  const load = useCallback(
    async (from: string | null, gen: number) => {
      setLoading(true);
      try {
        const since =
          sinceParam || (RANGES[range] ? new Date(Date.now() - (RANGES[range] ?? 0)).toISOString() : undefined);
        const page = await api.runs({ flow, state: states.join(','), trigger, since, until, limit: 100, cursor: from });
        if (gen !== generation.current) return;
        setRuns((prev) => (from ? [...prev, ...page.items] : page.items));
        setCursor(page.next_cursor);
        setDone(page.next_cursor === null);
        setError(null);
      } catch (e) {
        if (gen === generation.current)
          setError(e instanceof ApiError ? e : new ApiError(0, 'UNKNOWN', String(e), null, null));
      } finally {
        if (gen === generation.current) setLoading(false);
      }
    },
    // The filters are all in `key`.
    [key],
  );

  useEffect(() => {
    generation.current++;
    setRuns([]);
    setDone(false);
    void load(null, generation.current);
  }, [load]);

  // Live: a run changing state is updated in place; a new run matching the filters comes on top.
  useLiveEvents(
    { flow: flow || undefined },
    {
      onRun: (r) =>
        setRuns((prev) => {
          const i = prev.findIndex((x) => x.id === r.id);
          if (i >= 0) {
            const next = prev.slice();
            next[i] = r;
            return next;
          }
          const matches =
            (!flow || r.flow === flow) &&
            (states.length === 0 || states.includes(r.state)) &&
            (!trigger || r.trigger === trigger);
          return matches && (prev.length === 0 || r.created_at >= (prev[0]?.created_at ?? '')) ? [r, ...prev] : prev;
        }),
      onOpen: () => {
        generation.current++;
        void load(null, generation.current);
      },
    },
  );

  const parent = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: runs.length,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW,
    overscan: 10,
  });
  const items = virtual.getVirtualItems();
  const last = items[items.length - 1];
  useEffect(() => {
    if (last && last.index >= runs.length - 20 && !done && !loading && cursor) void load(cursor, generation.current);
  }, [last, runs.length, done, loading, cursor, load]);

  const navigate = useNavigate();
  const [index, setIndex] = useState(-1);
  useListKeys(
    runs.length,
    index,
    (i) => {
      setIndex(i);
      virtual.scrollToIndex(i);
    },
    (i) => {
      const r = runs[i];
      if (r) navigate(`/runs/${encodeURIComponent(r.id)}`);
    },
  );

  const set = (name: string, value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(name, value);
    else next.delete(name);
    setSearch(next, { replace: true });
  };
  const toggleState = (s: string) =>
    set('state', states.includes(s) ? states.filter((x) => x !== s).join(',') : [...states, s].join(','));

  return (
    <div>
      <PageHead title="Runs">
        <span className="muted small">
          {runs.length}
          {done ? '' : '+'} runs
        </span>
      </PageHead>
      <div className="filters" role="search">
        <input
          type="search"
          data-search
          placeholder="flow ( / )"
          aria-label="Flow"
          value={flow}
          onChange={(e) => set('flow', e.target.value)}
        />
        <input
          type="search"
          placeholder="trigger"
          aria-label="Trigger"
          value={trigger}
          onChange={(e) => set('trigger', e.target.value)}
        />
        <select aria-label="Time range" value={range} onChange={(e) => set('range', e.target.value)}>
          <option value="">any time</option>
          {Object.keys(RANGES).map((r) => (
            <option key={r} value={r}>
              last {r}
            </option>
          ))}
        </select>
        {sinceParam || until ? (
          <span className="chip">
            {sinceParam ? `since ${sinceParam}` : ''} {until ? `until ${until}` : ''}{' '}
            <button
              type="button"
              className="link"
              aria-label="Clear the interval"
              onClick={() => {
                const next = new URLSearchParams(search);
                next.delete('since');
                next.delete('until');
                setSearch(next, { replace: true });
              }}
            >
              ×
            </button>
          </span>
        ) : null}
        {RUN_STATE_NAMES.map((s) => (
          <label key={s} className="chip" style={{ ['--c' as string]: stateLook(s).color }}>
            <input type="checkbox" checked={states.includes(s)} onChange={() => toggleState(s)} /> {stateLook(s).icon}{' '}
            {s}
          </label>
        ))}
      </div>
      <ApiErrorBox error={error} />
      <div className="vhead vrow runs-grid">
        <span>state</span>
        <span>run</span>
        <span>flow</span>
        <span>created</span>
        <span>duration</span>
        <span>trigger</span>
        <span>reason</span>
      </div>
      <div ref={parent} className="vbody" style={{ height: 'calc(100vh - 220px)' }} data-testid="runs-list">
        <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
          {items.map((v) => {
            const r = runs[v.index];
            if (!r) return null;
            return (
              <div
                key={r.id}
                className={`vrow runs-grid${v.index === index ? ' selected' : ''}`}
                style={{
                  position: 'absolute',
                  top: 0,
                  transform: `translateY(${v.start}px)`,
                  height: ROW,
                  width: '100%',
                }}
                data-testid={`run-${r.id}`}
                data-state={r.state}
              >
                <span>
                  <StateBadge state={r.state} />
                </span>
                <span className="ellipsis">
                  <Link to={`/runs/${encodeURIComponent(r.id)}`}>{r.id}</Link>
                </span>
                <span className="ellipsis">
                  <Link to={`/flows/${encodeURIComponent(r.flow)}`}>{r.flow}</Link>
                </span>
                <span>
                  <Time iso={r.created_at} now={now} />
                </span>
                <span>
                  <Duration ms={r.duration_ms} start={r.started_at} end={r.ended_at} now={now} />
                </span>
                <span className="muted ellipsis">{r.trigger ?? (r.parent ? 'child run' : 'manual')}</span>
                <span className="bad ellipsis" title={r.error?.message}>
                  {r.error?.message ?? ''}
                </span>
              </div>
            );
          })}
        </div>
        {!loading && runs.length === 0 && !error ? (
          <div className="empty">
            <p>No runs match.</p>
            <p className="muted">
              Start one from a flow's page, or with <code>baton run &lt;flow&gt;</code>.
            </p>
          </div>
        ) : null}
      </div>
      {loading ? <div className="muted small">Loading…</div> : null}
    </div>
  );
}
