/**
 * How each run and task state is shown: a CSS colour variable, an icon and a label, so
 * that colour is never the only signal.
 */

export interface StateLook {
  /** CSS custom property holding the state's colour. */
  color: string;
  icon: string;
  label: string;
}

const LOOKS: Record<string, StateLook> = {
  succeeded: { color: 'var(--st-succeeded)', icon: '✓', label: 'succeeded' },
  failed: { color: 'var(--st-failed)', icon: '✕', label: 'failed' },
  running: { color: 'var(--st-running)', icon: '▶', label: 'running' },
  retrying: { color: 'var(--st-retrying)', icon: '↻', label: 'retrying' },
  queued: { color: 'var(--st-queued)', icon: '…', label: 'queued' },
  pending: { color: 'var(--st-pending)', icon: '○', label: 'pending' },
  waiting: { color: 'var(--st-waiting)', icon: '‖', label: 'waiting' },
  stale: { color: 'var(--warn)', icon: '⚠', label: 'stale' },
  skipped: { color: 'var(--st-skipped)', icon: '↷', label: 'skipped' },
  upstream_failed: { color: 'var(--st-upstream-failed)', icon: '⤓', label: 'upstream failed' },
  cancelled: { color: 'var(--st-cancelled)', icon: '⊘', label: 'cancelled' },
};

/** The look of a state; an unknown state gets a neutral one with its own name. */
export function stateLook(state: string | null | undefined): StateLook {
  if (!state) return { color: 'var(--st-none)', icon: '·', label: 'none' };
  return LOOKS[state] ?? { color: 'var(--st-none)', icon: '?', label: state.replace(/_/g, ' ') };
}

/**
 * The order in which states draw attention, most urgent first. It picks the state that
 * stands for a collapsed group and sorts counts.
 */
export const STATE_PRIORITY: readonly string[] = [
  'failed',
  'retrying',
  'running',
  'waiting',
  'queued',
  'upstream_failed',
  'cancelled',
  'pending',
  'skipped',
  'succeeded',
];

/** The most urgent of some states (by STATE_PRIORITY; unknown states after known ones). */
export function dominantState(states: Iterable<string>): string | null {
  let best: string | null = null;
  let bestRank = Infinity;
  for (const s of states) {
    const i = STATE_PRIORITY.indexOf(s);
    const rank = i === -1 ? STATE_PRIORITY.length : i;
    if (rank < bestRank) {
      best = s;
      bestRank = rank;
    }
  }
  return best;
}

/** Run states in which a run is over. */
export const TERMINAL_RUN = new Set(['succeeded', 'failed', 'cancelled']);
/** Task states in which a task run is over. */
export const TERMINAL_TASK = new Set(['succeeded', 'failed', 'skipped', 'upstream_failed', 'cancelled']);
