/**
 * Durations as users write them: `250ms`, `90s`, `5m`, `2h`, `1d`, or a combination like
 * `1m30s`. A bare number is milliseconds.
 *
 * This is the one place that bounds them: every duration Baton accepts (flow files, the
 * TypeScript builder, baton.yaml, a sleep computed at run time) is read here, and none is
 * longer than `MAX_DURATION_MS` (the limit `duration_ms`). Timers rely on that bound, and
 * the engine's timer helper (long-timer.ts) waits correctly up to it and beyond.
 */
import { LIMITS, overLimit } from './limits.js';

/** The longest duration Baton accepts anywhere, in ms: 366 days. */
export const MAX_DURATION_MS: number = LIMITS.duration_ms.default;

/** How durations are written, for messages. */
export const DURATION_FORMS = '250ms, 90s, 5m, 1h, 1m30s or a whole number of milliseconds';

/**
 * What a key accepts. `positive` where zero (or less) would end something at once that
 * must take time: timeouts, intervals, leases, polls, deadlines. `non_negative` where
 * zero means "at once" on purpose: a retry backoff (retry at once), a sleep, a jitter,
 * a kill grace (SIGKILL right after SIGTERM).
 */
export type DurationRule = 'positive' | 'non_negative';

/** Why a value is not an accepted duration. */
export type DurationRefusal = 'not_a_duration' | 'too_small' | 'over_limit';

export type DurationReading =
  | { readonly ok: true; readonly ms: number }
  | { readonly ok: false; readonly reason: DurationRefusal; readonly message: string; readonly hint: string };

export interface ReadDurationOptions {
  /** Refuse numbers with a fraction (flow files: `1.5` is more likely a mistake than 1.5 ms). Default false. */
  readonly wholeNumbers?: boolean;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;

/**
 * Reads a duration under a rule: its milliseconds (whole), or why it is refused, with a
 * message ("must …, got …" or the limit's words) and a hint. The message does not name
 * the key: the caller's report does.
 * Example: `readDuration('0s', 'positive')` → refused, `must be longer than 0, got "0s"`.
 */
export function readDuration(
  input: unknown,
  rule: DurationRule = 'non_negative',
  options: ReadDurationOptions = {},
): DurationReading {
  const raw = rawMs(input, options.wholeNumbers ?? false);
  const shown = typeof input === 'string' ? JSON.stringify(input) : String(input);
  if (raw === undefined) {
    return {
      ok: false,
      reason: 'not_a_duration',
      message: `must be a duration like ${DURATION_FORMS}`,
      hint: `Write a duration such as ${DURATION_FORMS}.`,
    };
  }
  if (raw < 0 || (rule === 'positive' && raw === 0)) {
    return {
      ok: false,
      reason: 'too_small',
      message: rule === 'positive' ? `must be longer than 0, got ${shown}` : `must not be negative, got ${shown}`,
      hint:
        rule === 'positive'
          ? 'Write at least 1ms, such as 30s or 10m (zero would end it at once); to have none, leave an optional key out.'
          : 'Write 0 or a longer duration, such as 30s or 10m.',
    };
  }
  if (raw > MAX_DURATION_MS) {
    // Shown as the exact text it amounts to (`366d1ms`), which says by how much it is over.
    const shown = Number.isFinite(raw) ? writeDuration(raw) : String(input);
    return { ok: false, reason: 'over_limit', ...overLimit('duration_ms', shown) };
  }
  return { ok: true, ms: raw };
}

/**
 * Parses a duration of zero or more, up to `MAX_DURATION_MS`; `undefined` if the text is
 * not one or is longer (`readDuration` says which).
 */
export function parseDuration(input: string | number): number | undefined {
  const read = readDuration(input);
  return read.ok ? read.ms : undefined;
}

/**
 * Milliseconds as written, rounded to whole ones, with no bound; negative only for a
 * negative number (text has no sign). Undefined if it is not a duration at all.
 */
function rawMs(input: unknown, wholeNumbers: boolean): number | undefined {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || (wholeNumbers && !Number.isInteger(input))) return undefined;
    // `-0` and `-0.4` read as 0, which the rule then judges.
    return Math.round(input) || 0;
  }
  if (typeof input !== 'string') return undefined;
  const text = input.trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (text === '') return undefined;
  PART.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  for (let m = PART.exec(text); m; m = PART.exec(text)) {
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    consumed = PART.lastIndex;
  }
  return consumed === text.length ? Math.round(total) : undefined;
}

/**
 * Writes milliseconds as the shortest exact text `parseDuration` reads back to the same
 * value: `1d2h`, `1m30s`, `250ms`, `0ms`.
 */
export function writeDuration(ms: number): string {
  let left = Math.round(ms);
  if (left <= 0) return '0ms';
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit] as number;
    const n = Math.floor(left / size);
    if (n > 0) out += `${n}${unit}`;
    left -= n * size;
  }
  return out;
}

/** Formats milliseconds for humans: `850ms`, `2.5s`, `3m04s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  if (m < 60) return `${m}m${String(s).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
