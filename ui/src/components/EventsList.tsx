/** A run's event history, with the raw payload of each event one click away. */
import { useState } from 'react';
import { api } from '../api/client';
import type { HistoryEvent } from '../api/types';
import { useApi } from '../lib/use-api';
import { ApiErrorBox, JsonView, Time } from './bits';

export function EventsList({ runId, now }: { runId: string; now: number }) {
  const [after, setAfter] = useState<number | undefined>(undefined);
  const page = useApi(`${runId}/${after ?? ''}`, (signal) => api.runEvents(runId, { after, limit: 500 }, signal));
  const items: HistoryEvent[] = page.data?.items ?? [];
  return (
    <div>
      <ApiErrorBox error={page.error} />
      <table className="table">
        <thead>
          <tr>
            <th>seq</th>
            <th>at</th>
            <th>type</th>
            <th>payload</th>
          </tr>
        </thead>
        <tbody>
          {items.map((e) => {
            const { seq, type, at, ...rest } = e;
            return (
              <tr key={seq}>
                <td className="num">{seq}</td>
                <td>
                  <Time iso={at} now={now} absolute />
                </td>
                <td>
                  <code>{type}</code>
                </td>
                <td>
                  <details>
                    <summary className="ellipsis">{JSON.stringify(rest).slice(0, 120)}</summary>
                    <JsonView value={rest} />
                  </details>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {items.length > 0 && page.data?.next_cursor ? (
        <button type="button" onClick={() => setAfter(items[items.length - 1]?.seq)}>
          Next events
        </button>
      ) : null}
      <p className="small muted">
        CLI: <code>baton show {runId} --events</code>
      </p>
    </div>
  );
}
