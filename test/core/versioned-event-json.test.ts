/**
 * The stored text of an event is written without copying the event: it must stay the very
 * text of `JSON.stringify(versionedEvent(event))`, which histories already on disk hold.
 */
import { describe, expect, it } from 'vitest';
import { versionedEvent, versionedEventJson } from '../../src/core/run-history.js';
import type { RunEvent } from '../../src/core/run-machine.js';

describe('versionedEventJson', () => {
  const events: RunEvent[] = [
    { type: 'run_started', at: 1 },
    { type: 'task_started', at: 2, task: 't1', attempt: 1 },
    { type: 'task_succeeded', at: 3, task: 't1', attempt: 1, output: { a: [1, 'x', null], b: 'é"\n' } },
    { type: 'task_succeeded', at: 4, task: 't2', attempt: 2, output: null, signal: undefined },
    { type: 'tasks_queued', at: 5, tasks: ['a', 'b'] },
    // Read back from a store, an event carries its format already.
    { v: 1, type: 'run_started', at: 6 } as RunEvent,
  ];

  it.each(events.map((e) => [e.type, e] as const))('writes %s as the copied event would be', (_type, event) => {
    expect(versionedEventJson(event)).toBe(JSON.stringify(versionedEvent(event)));
  });
});
