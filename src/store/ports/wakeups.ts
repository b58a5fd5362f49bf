/**
 * Wake-ups: a hint that there may be work, so that idle processes need not poll often.
 *
 * Invariants:
 * - A wake-up is only a hint, sent after the transaction it announces has committed; it
 *   may be late, repeated or lost, and polling stays correct without it.
 */
import type { TaskOutcome } from '../store.js';

export interface Wakeups {
  /**
   * Wake-ups on a channel (`tasks`, `results`, `runs`) where the store supports them. A
   * `results` wake-up may carry the outcomes themselves (`TaskOutcome[]`); without them,
   * the subscriber harvests.
   */
  subscribe?(channel: 'tasks' | 'results' | 'runs', onWake: (outcomes?: readonly TaskOutcome[]) => void): () => void;
}
