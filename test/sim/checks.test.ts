/**
 * The history checks the simulation ends with, on hand-written histories: each names what
 * it finds, so that a simulation cannot pass because a check looked at nothing.
 */
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../src/core/run-machine.js';
import { checkHistory, checkTimersFired } from './history-checks.js';

const at = (s: number) => Date.UTC(2030, 0, 1) + s * 1000;

describe('simulation checks', () => {
  it('finds a task that succeeded twice, a retry started early and a sleep that ended early', () => {
    const events: RunEvent[] = [
      { type: 'task_started', at: at(0), task: 'a', attempt: 1 },
      { type: 'task_succeeded', at: at(1), task: 'a', attempt: 1, output: 1 },
      { type: 'task_succeeded', at: at(2), task: 'a', attempt: 2, output: 2 },
      { type: 'retry_scheduled', at: at(3), task: 'b', dueAt: at(60), delayMs: 57_000 },
      { type: 'task_started', at: at(30), task: 'b', attempt: 2 },
      { type: 'task_waiting', at: at(4), task: 'c', attempt: 1, wait: { kind: 'timer', until: at(100) } },
      { type: 'task_succeeded', at: at(50), task: 'c', attempt: 1, output: null },
    ];
    const problems = checkHistory(events);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toContain('task a succeeded 2 times');
    expect(problems[1]).toContain('task b attempt 2 started');
    expect(problems[2]).toContain('wait c ended');
  });

  it('finds a timer pending at a takeover that fired late or never', () => {
    const events: RunEvent[] = [
      { type: 'retry_scheduled', at: at(0), task: 'a', dueAt: at(10), delayMs: 10_000 },
      { type: 'tasks_queued', at: at(20), tasks: ['a'] },
      { type: 'task_succeeded', at: at(30), task: 'x', attempt: 1, output: null },
    ];
    const late = checkTimersFired(events, [{ task: 'a', kind: 'retry', dueAt: at(10), after: 1 }]);
    expect(late[0]).toContain('the retry timer of a');
    expect(late[0]).toContain('did not fire');
    const never = checkTimersFired(events, [{ task: 'b', kind: 'sleep', dueAt: at(25), after: 1 }]);
    expect(never[0]).toContain('never fired');
    // Fired on time, or the run ended before it was due: nothing to report.
    expect(checkTimersFired(events, [{ task: 'a', kind: 'retry', dueAt: at(20), after: 1 }])).toEqual([]);
    expect(checkTimersFired(events, [{ task: 'b', kind: 'sleep', dueAt: at(40), after: 1 }])).toEqual([]);
  });
});
