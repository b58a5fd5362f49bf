/** The task runs of a run as a virtualized table (stays fast with 10,000 task runs). */
import { useEffect, useRef } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { TaskRun } from '../api/types';
import { useListKeys } from '../lib/keyboard';
import { Duration, StateBadge } from './bits';

const ROW = 24;

export function TaskTable(props: {
  tasks: TaskRun[];
  selected: string | null;
  /** `replace` when moving with j/k, so that the history is not filled with every step. */
  onSelect: (task: string, replace?: boolean) => void;
  now: number;
  /** The filter text (kept in the URL by the page). */
  filter: string;
  onFilter: (filter: string) => void;
}) {
  const { tasks, selected, onSelect, now, filter, onFilter: setFilter } = props;
  const shown = filter
    ? tasks.filter(
        (t) =>
          t.id.includes(filter) ||
          t.parent_task === filter ||
          t.state.includes(filter) ||
          (t.group ?? '').includes(filter),
      )
    : tasks;
  const parent = useRef<HTMLDivElement>(null);
  const virtual = useVirtualizer({
    count: shown.length,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW,
  });
  const index = shown.findIndex((t) => t.id === selected);
  useListKeys(shown.length, index, (i) => {
    const t = shown[i];
    if (t) onSelect(t.id, true);
  });
  useEffect(() => {
    if (index >= 0) virtual.scrollToIndex(index, { align: 'auto' });
  }, [index, virtual]);

  return (
    <div className="vtable">
      <div className="row">
        <input
          type="search"
          placeholder="Filter tasks by id, state or group ( / )"
          value={filter}
          onChange={(e) => setFilter(e.target.value)}
          data-search
          aria-label="Filter tasks"
        />
        <span className="muted small">
          {shown.length} of {tasks.length}
        </span>
      </div>
      <div className="vhead vrow tasks-grid">
        <span>task</span>
        <span>state</span>
        <span>attempts</span>
        <span>duration</span>
        <span>group / map</span>
      </div>
      <div ref={parent} className="vbody" style={{ height: 420 }} role="listbox" aria-label="Task runs">
        <div style={{ height: virtual.getTotalSize(), position: 'relative' }}>
          {virtual.getVirtualItems().map((v) => {
            const t = shown[v.index];
            if (!t) return null;
            return (
              <div
                key={t.id}
                role="option"
                aria-selected={t.id === selected}
                tabIndex={-1}
                className={`vrow tasks-grid${t.id === selected ? ' selected' : ''}`}
                style={{
                  position: 'absolute',
                  top: 0,
                  transform: `translateY(${v.start}px)`,
                  height: ROW,
                  width: '100%',
                }}
                data-testid={`task-${t.id}`}
                data-state={t.state}
                onClick={() => onSelect(t.id)}
              >
                <span className="ellipsis">
                  <code>{t.id}</code>
                </span>
                <span>
                  <StateBadge state={t.state} />
                </span>
                <span className="num">{t.attempts}</span>
                <span>
                  <Duration ms={t.duration_ms} start={t.started_at} end={t.ended_at} now={now} />
                </span>
                <span className="muted ellipsis">
                  {t.group ?? ''}
                  {t.parent_task !== undefined ? `${t.parent_task}[${t.item ?? ''}]` : ''}
                </span>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
