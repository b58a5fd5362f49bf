/** Small shared pieces: state badges, times, durations, errors. */
import { useState, type ReactNode } from 'react';
import type { ApiError } from '../api/client';
import type { TaskError } from '../api/types';
import { elapsedMs, formatDuration, formatRelative, formatUtc } from '../lib/format';
import { stateLook } from '../lib/states';

/** A state as a coloured icon and label. */
export function StateBadge({ state, testId }: { state: string | null; testId?: string }) {
  const look = stateLook(state);
  return (
    <span className="badge" style={{ ['--c' as string]: look.color }} data-testid={testId} data-state={state ?? ''}>
      {/* The icon comes from CSS so that the badge's text is the state alone. */}
      <span className="badge-icon" aria-hidden data-icon={look.icon} />
      {state ?? 'none'}
    </span>
  );
}

/** A coloured square with the state's icon (the grid and strips); the label is in the title. */
export function StateSquare({ state, title, size = 14 }: { state: string | null; title?: string; size?: number }) {
  const look = stateLook(state);
  return (
    <span
      className="sq"
      style={{ ['--c' as string]: look.color, width: size, height: size }}
      title={title ?? look.label}
      aria-label={title ?? look.label}
      data-state={state ?? ''}
    >
      {look.icon}
    </span>
  );
}

/** A time in the user's zone (relative when recent), with UTC on hover. */
export function Time({
  iso,
  now,
  absolute = false,
}: {
  iso: string | null | undefined;
  now: number;
  absolute?: boolean;
}) {
  if (!iso) return <span className="muted">–</span>;
  const local = new Date(iso);
  const text =
    absolute || Math.abs(now - local.getTime()) > 86_400_000 ? local.toLocaleString() : formatRelative(iso, now);
  return (
    <time dateTime={iso} title={`${formatUtc(iso)}\n${local.toLocaleString()}`}>
      {text}
    </time>
  );
}

/** A duration, ticking while `end` is null. */
export function Duration(props: { ms: number | null; start?: string | null; end?: string | null; now: number }) {
  const ms = props.ms ?? elapsedMs(props.start ?? null, props.end ?? null, props.now);
  return <span className="num">{formatDuration(ms)}</span>;
}

/** An API error: its message, its hint and its code. */
export function ApiErrorBox({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <div className="error-box" role="alert">
      <div>
        <strong>{error.message}</strong> <code className="muted">{error.code}</code>
      </div>
      {error.hint ? <div className="hint">{error.hint}</div> : null}
    </div>
  );
}

/** A task's error with its hint, its stack and details on demand. */
export function TaskErrorView({ error }: { error: TaskError }) {
  const [open, setOpen] = useState(true);
  return (
    <div className="error-box" data-testid="task-error">
      <div>
        <strong>{error.message}</strong> <code className="muted">{error.code}</code>
        {error.source ? <span className="muted"> · {error.source}</span> : null}
      </div>
      {error.hint ? <div className="hint">{error.hint}</div> : null}
      {error.stack ? (
        <details open={open} onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
          <summary>stack</summary>
          <pre className="stack">{error.stack}</pre>
        </details>
      ) : null}
      {error.details !== undefined && error.details !== null ? (
        <details>
          <summary>details</summary>
          <pre className="json">{JSON.stringify(error.details, null, 2)}</pre>
        </details>
      ) : null}
    </div>
  );
}

/** A JSON value, shown folded when long. */
export function JsonView({ value }: { value: unknown }) {
  if (value === undefined) return <span className="muted">–</span>;
  const text = JSON.stringify(value, null, 2) ?? 'undefined';
  return <pre className="json">{text.length > 20_000 ? text.slice(0, 20_000) + '\n… (cut)' : text}</pre>;
}

/** A page heading with actions on its right. */
export function PageHead({ title, children }: { title: ReactNode; children?: ReactNode }) {
  return (
    <div className="page-head">
      <h1>{title}</h1>
      <div className="page-actions">{children}</div>
    </div>
  );
}

/** Counts by state, each with its colour and icon, most urgent first. */
export function StateCounts({ counts }: { counts: Record<string, number> }) {
  const entries = Object.entries(counts).filter(([, n]) => n > 0);
  return (
    <span className="counts">
      {entries.map(([state, n]) => {
        const look = stateLook(state);
        return (
          <span key={state} className="count" style={{ ['--c' as string]: look.color }} title={`${n} ${look.label}`}>
            {look.icon}
            {n}
          </span>
        );
      })}
    </span>
  );
}
