/** Triggers: next fire times, pause/resume, and the firing history of the selected one (`?id=`). */
import { useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, ApiError } from '../api/client';
import type { Trigger } from '../api/types';
import { ApiErrorBox, PageHead, Time } from '../components/bits';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { shellQuote } from '../lib/cli';
import { useListKeys } from '../lib/keyboard';
import { useApi, useNow } from '../lib/use-api';

export function TriggersPage() {
  const [search, setSearch] = useSearchParams();
  const selected = search.get('id');
  const q = search.get('q') ?? '';
  const triggers = useApi('triggers', (signal) => api.triggers({ limit: 500 }, signal));
  const now = useNow(10_000);
  const [toggling, setToggling] = useState<Trigger | null>(null);
  const [error] = useState<ApiError | null>(null);
  const items = (triggers.data?.items ?? []).filter((t) => !q || t.id.includes(q) || t.kind.includes(q));
  const index = items.findIndex((t) => t.id === selected);
  const select = (id: string | null) => {
    const next = new URLSearchParams(search);
    if (id) next.set('id', id);
    else next.delete('id');
    setSearch(next, { replace: true });
  };
  useListKeys(items.length, index, (i) => select(items[i]?.id ?? null));

  return (
    <div>
      <PageHead title="Triggers">
        <input
          type="search"
          data-search
          placeholder="Filter ( / )"
          aria-label="Filter triggers"
          value={q}
          onChange={(e) => {
            const next = new URLSearchParams(search);
            if (e.target.value) next.set('q', e.target.value);
            else next.delete('q');
            setSearch(next, { replace: true });
          }}
        />
      </PageHead>
      <ApiErrorBox error={triggers.error ?? error} />
      <div className="split">
        <table className="table">
          <thead>
            <tr>
              <th>trigger</th>
              <th>kind</th>
              <th>state</th>
              <th>next fire times</th>
              <th>last firing</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {items.map((t) => (
              <tr key={t.id} className={t.id === selected ? 'selected' : ''} data-testid={`trigger-${t.id}`}>
                <td>
                  <button type="button" className="link" onClick={() => select(t.id)}>
                    {t.id}
                  </button>
                </td>
                <td>{t.kind}</td>
                <td>{t.paused ? <span className="muted">‖ paused</span> : '▶ active'}</td>
                <td className="small">
                  {(t.next_fire_times.length > 0 ? t.next_fire_times : t.next_fire_at ? [t.next_fire_at] : []).map(
                    (at) => (
                      <div key={at}>
                        <Time iso={at} now={now} absolute />
                      </div>
                    ),
                  )}
                </td>
                <td className="small">
                  {t.last_firing ? (
                    <>
                      <Time iso={t.last_firing.at} now={now} /> {t.last_firing.outcome}{' '}
                      {t.last_firing.run_id ? (
                        <Link to={`/runs/${encodeURIComponent(t.last_firing.run_id)}`}>{t.last_firing.run_id}</Link>
                      ) : null}
                    </>
                  ) : (
                    <span className="muted">never</span>
                  )}
                </td>
                <td>
                  <button type="button" data-testid={`trigger-toggle-${t.id}`} onClick={() => setToggling(t)}>
                    {t.paused ? 'Resume' : 'Pause'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {selected ? <TriggerHistory id={selected} now={now} /> : null}
      </div>
      {triggers.data && items.length === 0 ? (
        <p className="muted">No triggers. Declare schedules, webhooks or sensors in a flow's `triggers`.</p>
      ) : null}
      {toggling ? (
        <ConfirmDialog
          title={`${toggling.paused ? 'Resume' : 'Pause'} ${toggling.id}?`}
          command={`baton triggers ${toggling.paused ? 'resume' : 'pause'} ${shellQuote(toggling.id)}`}
          confirmLabel={toggling.paused ? 'Resume' : 'Pause'}
          onConfirm={() => (toggling.paused ? api.resumeTrigger(toggling.id) : api.pauseTrigger(toggling.id))}
          onClose={(done) => {
            setToggling(null);
            if (done) triggers.reload();
          }}
        />
      ) : null}
    </div>
  );
}

function TriggerHistory({ id, now }: { id: string; now: number }) {
  const history = useApi(`history/${id}`, (signal) => api.triggerHistory(id, { limit: 100 }, signal));
  return (
    <section className="panel" aria-label={`History of ${id}`}>
      <h2>History of {id}</h2>
      <ApiErrorBox error={history.error} />
      <table className="table">
        <thead>
          <tr>
            <th>at</th>
            <th>outcome</th>
            <th>run</th>
            <th>reason</th>
          </tr>
        </thead>
        <tbody>
          {(history.data?.items ?? []).map((f) => (
            <tr key={f.seq}>
              <td>
                <Time iso={f.at} now={now} absolute />
              </td>
              <td className={f.outcome === 'error' || f.outcome === 'deadline_missed' ? 'bad' : ''}>{f.outcome}</td>
              <td>{f.run_id ? <Link to={`/runs/${encodeURIComponent(f.run_id)}`}>{f.run_id}</Link> : null}</td>
              <td className="ellipsis">{f.reason}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="small muted">
        CLI: <code>baton triggers history {shellQuote(id)}</code>
      </p>
    </section>
  );
}
