/**
 * A timeline of a run's task runs: one row per task run, a bar from its start to its end
 * (to now while running), the retries marked. Rows are virtualized.
 */
import { useMemo, useRef } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { TaskRun } from '../api/types';
import { formatDuration } from '../lib/format';
import { stateLook } from '../lib/states';

const ROW = 20;

export function Gantt(props: {
  tasks: TaskRun[];
  selected: string | null;
  onSelect: (task: string) => void;
  now: number;
}) {
  const { tasks, selected, onSelect, now } = props;
  const rows = useMemo(
    () =>
      tasks
        .filter((t) => t.started_at)
        .sort(
          (a, b) =>
            (a.started_at ?? '').localeCompare(b.started_at ?? '') ||
            a.id.localeCompare(b.id, undefined, { numeric: true }),
        ),
    [tasks],
  );
  const t0 = rows.length > 0 ? Date.parse(rows[0]?.started_at ?? '') : 0;
  let t1 = t0 + 1;
  for (const r of rows) t1 = Math.max(t1, r.ended_at ? Date.parse(r.ended_at) : now);
  const span = t1 - t0;
  const parent = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: rows.length,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW,
  });

  if (rows.length === 0) return <p className="muted pad">No task has started yet.</p>;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return (
    <div className="gantt" data-testid="gantt">
      <div className="gantt-axis">
        <span className="gantt-label" />
        <span className="gantt-track">
          {ticks.map((f) => (
            <span key={f} className="tick" style={{ left: `${f * 100}%` }}>
              +{formatDuration(span * f)}
            </span>
          ))}
        </span>
      </div>
      <div ref={parent} className="vbody" style={{ height: 420 }}>
        <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
          {virtual.getVirtualItems().map((v) => {
            const t = rows[v.index];
            if (!t) return null;
            const s = Date.parse(t.started_at ?? '');
            const e = t.ended_at ? Date.parse(t.ended_at) : now;
            const look = stateLook(t.state);
            return (
              <div
                key={t.id}
                className={`gantt-row${t.id === selected ? ' selected' : ''}`}
                style={{
                  position: 'absolute',
                  top: 0,
                  transform: `translateY(${v.start}px)`,
                  height: ROW,
                  width: '100%',
                }}
                onClick={() => onSelect(t.id)}
                data-testid={`task-${t.id}`}
                data-state={t.state}
              >
                <span className="gantt-label ellipsis" title={t.id}>
                  {t.id}
                </span>
                <span className="gantt-track">
                  <span
                    className={`bar${t.attempts > 1 ? ' retried' : ''}`}
                    style={{
                      ['--c' as string]: look.color,
                      left: `${((s - t0) / span) * 100}%`,
                      width: `max(2px, ${((e - s) / span) * 100}%)`,
                    }}
                    title={`${t.id}: ${look.label}, ${formatDuration(e - s)}, ${t.attempts} attempt(s)`}
                  >
                    {t.attempts > 1 ? `×${t.attempts}` : ''}
                  </span>
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
