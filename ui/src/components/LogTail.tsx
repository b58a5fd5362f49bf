/**
 * The tail of a run's log (optionally of one task): the lines so far, then, while the run
 * goes on, new lines from `/runs/{id}/logs?follow=true`.
 */
import { useEffect, useRef, useState } from 'react';
import { api, ApiError } from '../api/client';
import type { LogLine } from '../api/types';
import { ApiErrorBox } from './bits';

const KEEP = 2000;
const MAX_PAGES = 20;

/** `testId` tells the run's whole log (`run-log-panel`) from a task's (`log-panel`, the default). */
export function LogTail({
  runId,
  task,
  live,
  testId = 'log-panel',
}: {
  runId: string;
  task?: string;
  live: boolean;
  testId?: string;
}) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const [follow, setFollow] = useState(true);
  const box = useRef<HTMLPreElement>(null);

  useEffect(() => {
    const controller = new AbortController();
    let source: EventSource | null = null;
    setLines([]);
    setError(null);
    (async () => {
      let all: LogLine[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < MAX_PAGES; page++) {
        const res = await api.runLogs(runId, { task, limit: 500, cursor }, controller.signal);
        all = all.concat(res.items).slice(-KEEP);
        cursor = res.next_cursor;
        if (!cursor) break;
      }
      if (controller.signal.aborted) return;
      setLines(all);
      if (!live) return;
      const after = all.length > 0 ? all[all.length - 1]?.seq : undefined;
      source = new EventSource(api.runLogStreamUrl(runId, { task, after }));
      source.addEventListener('log', (e) => {
        try {
          const line = JSON.parse(String((e as MessageEvent).data)) as LogLine;
          setLines((prev) =>
            prev.length > 0 && (prev[prev.length - 1]?.seq ?? -1) >= line.seq ? prev : [...prev, line].slice(-KEEP),
          );
        } catch {
          // A malformed line is skipped; the next ones still show.
        }
      });
      // The stream ends with the run: do not let EventSource reconnect forever.
      source.onerror = () => {
        if (source && source.readyState === EventSource.CLOSED) source.close();
      };
    })().catch((e: unknown) => {
      if (!controller.signal.aborted)
        setError(e instanceof ApiError ? e : new ApiError(0, 'UNKNOWN', String(e), null, null));
    });
    return () => {
      controller.abort();
      source?.close();
    };
  }, [runId, task, live]);

  useEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines, follow]);

  return (
    <div className="log-tail">
      <div className="row small">
        <span className="muted">
          {lines.length} lines{live ? ' · live' : ''}
        </span>
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> follow
        </label>
        <span className="muted">
          CLI:{' '}
          <code>
            baton logs {runId}
            {task ? ` ${task}` : ''}
            {live ? ' -f' : ''}
          </code>
        </span>
      </div>
      <ApiErrorBox error={error} />
      <pre className="log" ref={box} data-testid={testId} tabIndex={0}>
        {lines.length === 0 ? <span className="muted">No log lines.</span> : null}
        {lines.map((l) => (
          <div key={l.seq} className={`log-line log-${l.stream}`}>
            <span className="log-meta" title={l.at}>
              {l.task}#{l.attempt}
            </span>{' '}
            {l.text}
          </div>
        ))}
      </pre>
    </div>
  );
}
