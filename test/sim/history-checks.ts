/**
 * What must hold of a finished run's history after any fault: pure checks over its events,
 * each returning what it found wrong, in words.
 */
import type { RunEvent } from '../../src/core/run-machine.js';

/** A timer the committed history held when a new engine took the run over. */
export interface PendingTimer {
  /** The task run whose timer it is. */
  readonly task: string;
  /** `retry`, `sleep`, `wait_until`, `wait_for_event`. */
  readonly kind: string;
  readonly dueAt: number;
  /** How many events the history had at the takeover: later ones are the new owner's. */
  readonly after: number;
}

/**
 * What must hold of any finished run's history: no task succeeds twice (nor one attempt),
 * no attempt starts before its retry was due, and no wait ends before its timer.
 */
export function checkHistory(events: readonly RunEvent[]): string[] {
  const problems: string[] = [];
  const succeeded = new Map<string, number>();
  const retryDue = new Map<string, number>();
  const waitUntil = new Map<string, number>();
  for (const e of events) {
    if (e.type === 'task_succeeded') {
      const n = (succeeded.get(e.task) ?? 0) + 1;
      succeeded.set(e.task, n);
      if (n > 1) problems.push(`task ${e.task} succeeded ${n} times (again with attempt ${e.attempt})`);
      const until = waitUntil.get(e.task);
      if (until !== undefined && e.at < until) {
        problems.push(`wait ${e.task} ended at ${e.at}, before its timer at ${until}`);
      }
    } else if (e.type === 'retry_scheduled') {
      retryDue.set(e.task, e.dueAt);
    } else if (e.type === 'task_started') {
      const due = retryDue.get(e.task);
      if (due !== undefined && e.at < due)
        problems.push(`task ${e.task} attempt ${e.attempt} started at ${e.at}, before its retry was due at ${due}`);
      retryDue.delete(e.task);
    } else if (e.type === 'task_waiting' && e.wait.kind === 'timer') {
      waitUntil.set(e.task, e.wait.until);
    }
  }
  return problems;
}

/** The task runs an event is about (a task field, or a list of them). */
function tasksOf(e: RunEvent): string[] {
  if ('task' in e && typeof e.task === 'string') return [e.task];
  if ('tasks' in e && Array.isArray(e.tasks)) {
    return e.tasks.map((t: string | { readonly task: string }) => (typeof t === 'string' ? t : t.task));
  }
  return [];
}

/**
 * Every timer pending when a run was taken over fired when due: the first event about its
 * task after the takeover is no later than the due time (the timer's own effect at that
 * instant, or something that ended the wait earlier: a signal, a cancellation); and a run
 * that went on past the due time said something about the task by then.
 */
export function checkTimersFired(events: readonly RunEvent[], pending: readonly PendingTimer[]): string[] {
  const problems: string[] = [];
  const lastAt = events.length > 0 ? (events[events.length - 1] as RunEvent).at : Number.NEGATIVE_INFINITY;
  for (const p of pending) {
    const next = events.slice(p.after).find((e) => tasksOf(e).includes(p.task));
    const due = new Date(p.dueAt).toISOString();
    if (next && next.at > p.dueAt) {
      problems.push(
        `the ${p.kind} timer of ${p.task}, due at ${due} when the run was taken over, did not fire: the next event about it is ${next.type} at ${new Date(next.at).toISOString()}`,
      );
    } else if (!next && lastAt > p.dueAt) {
      problems.push(`the ${p.kind} timer of ${p.task}, due at ${due} when the run was taken over, never fired`);
    }
  }
  return problems;
}
