/**
 * Run history is a versioned contract. Every file in test/fixtures/histories is a run
 * recorded by a real engine (scripts/record-histories.js): its pinned flow definition, its
 * events as the store kept them, and the final state the engine recorded. Each must still
 * fold to that state. Add files whenever the history format changes (see the README
 * there); never rewrite the old ones, which stand for databases already in use.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HISTORY_FORMAT, pinSpec, readPinnedSpec } from '../../src/core/run-history.js';
import type { RunEvent, RunEventType, RunState } from '../../src/core/run-machine.js';
import { compilePlan, decide, foldRun } from '../../src/core/run-machine.js';
import { taskIdOf, taskIndexOf } from '../../src/core/run-topology.js';
import { plan } from './fixtures.js';
import { thrown } from '../helpers/thrown.js';

interface RecordedTask {
  readonly id: string;
  readonly state: string;
  readonly attempt: number;
  readonly output?: unknown;
  readonly error: string | null;
}

interface RecordedHistory {
  readonly name: string;
  readonly description: string;
  readonly format: number;
  readonly runId: string;
  readonly flow: Record<string, unknown>;
  readonly events: RunEvent[];
  readonly final: { readonly state: string; readonly error: string | null; readonly tasks: RecordedTask[] };
}

const DIR = join(import.meta.dirname, '..', 'fixtures', 'histories');
const corpus: RecordedHistory[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(DIR, f), 'utf8')) as RecordedHistory);

function fold(h: RecordedHistory, events: readonly RunEvent[] = h.events): RunState {
  const spec = readPinnedSpec(JSON.stringify(h.flow), `flow ${h.name}`);
  return foldRun(h.runId, compilePlan(spec), events);
}

/** What the fold says, in the shape the files record. */
function finalOf(run: RunState): RecordedHistory['final'] {
  return {
    state: run.state,
    error: run.error?.code ?? null,
    tasks: run.tasks.map((t, i) => ({
      id: taskIdOf(run, i),
      state: t.state,
      attempt: t.attempt,
      ...(t.output === undefined || t.output === null ? {} : { output: t.output }),
      error: t.error?.code ?? null,
    })),
  };
}

function history(name: string): RecordedHistory {
  const h = corpus.find((c) => c.name === name);
  if (!h) throw new Error(`no recorded history ${name}`);
  return h;
}

/** The history with `edit` applied to a copy of its events. */
function edited(h: RecordedHistory, edit: (events: RunEvent[]) => void): RunEvent[] {
  const events = structuredClone(h.events);
  edit(events);
  return events;
}

function indexWhere(events: readonly RunEvent[], pick: (e: RunEvent) => boolean, what: string): number {
  const i = events.findIndex(pick);
  if (i < 0) throw new Error(`the history has no ${what}`);
  return i;
}

/** Every event type; the compiler checks that none is missing. */
const EVENT_TYPES: Record<RunEventType, true> = {
  run_created: true,
  run_started: true,
  tasks_queued: true,
  task_started: true,
  task_succeeded: true,
  attempt_failed: true,
  retry_scheduled: true,
  task_failed: true,
  tasks_skipped: true,
  tasks_cancelled: true,
  cancel_requested: true,
  run_retried: true,
  task_waiting: true,
  task_expanded: true,
  map_items_started: true,
  task_catching: true,
  signal_received: true,
  approval_decided: true,
  run_succeeded: true,
  run_failed: true,
  run_cancelled: true,
};

describe('the corpus of recorded histories', () => {
  it('holds runs of every kind of flow, and every event type at least once', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(15);
    const seen = new Set(corpus.flatMap((h) => h.events.map((e) => e.type)));
    expect(Object.keys(EVENT_TYPES).filter((t) => !seen.has(t as RunEventType))).toEqual([]);
    expect(new Set(corpus.map((h) => h.final.state))).toEqual(new Set(['succeeded', 'failed', 'cancelled']));
  });

  for (const h of corpus) {
    it(`${h.name}: folds to the final state the engine recorded (${h.description})`, () => {
      expect(h.format).toBeLessThanOrEqual(HISTORY_FORMAT);
      expect(finalOf(fold(h))).toEqual(h.final);
    });
  }

  it('reads a history written before formats were numbered (no `v`) as format 1', () => {
    for (const h of corpus.filter((c) => c.format === 1)) {
      const unnumbered = h.events.map(({ v: _v, ...event }) => event as RunEvent);
      expect(unnumbered.some((e) => e.v !== undefined)).toBe(false);
      const { v: _v, ...spec } = h.flow;
      expect(finalOf(fold({ ...h, flow: spec }, unnumbered))).toEqual(h.final);
    }
  });
});

describe('history formats', () => {
  const h = history(`chain-v${HISTORY_FORMAT}`);

  it('has every scenario recorded in the current format, and in format 1', () => {
    const scenarios = (format: number) =>
      corpus
        .filter((c) => c.format === format)
        .map((c) => c.name.replace(/-v\d+$/, ''))
        .sort();
    expect(scenarios(HISTORY_FORMAT)).toEqual(scenarios(1));
  });

  it('stamps the format on events as they are stored and on pinned definitions', () => {
    expect(h.events.every((e) => e.v === HISTORY_FORMAT)).toBe(true);
    expect(h.flow.v).toBe(HISTORY_FORMAT);
    const spec = readPinnedSpec(JSON.stringify(h.flow), 'flow chain');
    expect('v' in spec).toBe(false);
    expect(JSON.parse(pinSpec(spec))).toEqual(h.flow);
  });

  it('pins tasks compactly from format 2 on, and reads back the text it pinned', () => {
    for (const recorded of corpus.filter((c) => c.format >= 2)) {
      expect(Array.isArray(recorded.flow.tasks), recorded.name).toBe(false);
      const spec = readPinnedSpec(JSON.stringify(recorded.flow), `flow ${recorded.name}`);
      // Pinned again, it is the same text, stamped with the format written today.
      expect(pinSpec(spec), recorded.name).toBe(JSON.stringify({ ...recorded.flow, v: HISTORY_FORMAT }));
    }
  });

  it('refuses an event in a newer format with HISTORY_TOO_NEW, naming the run and the format', () => {
    const events = edited(h, (es) => {
      es[3] = { ...(es[3] as RunEvent), v: HISTORY_FORMAT + 1 };
    });
    const error = thrown(() => fold(h, events));
    expect(error.code).toBe('HISTORY_TOO_NEW');
    expect(error.message).toContain(`run ${h.runId}`);
    expect(error.message).toContain(`format ${HISTORY_FORMAT + 1}`);
    expect(error.hint).toMatch(/Upgrade Baton/);
  });

  it('refuses a pinned definition in a newer format with HISTORY_TOO_NEW', () => {
    const error = thrown(() => readPinnedSpec(JSON.stringify({ ...h.flow, v: 7 }), 'flow chain version x'));
    expect(error.code).toBe('HISTORY_TOO_NEW');
    expect(error.message).toContain('flow chain version x');
  });

  it('refuses a format that is no number', () => {
    const events = edited(h, (es) => {
      es[2] = { ...(es[2] as RunEvent), v: 'one' as unknown as number };
    });
    expect(thrown(() => fold(h, events)).code).toBe('RUN_INVALID_TRANSITION');
  });
});

describe('illegal transitions in a stored history', () => {
  const expectIllegal = (h: RecordedHistory, events: RunEvent[], parts: readonly string[]) => {
    const error = thrown(() => fold(h, events));
    expect(error.code).toBe('RUN_INVALID_TRANSITION');
    expect(error.message).toContain(`run ${h.runId}`);
    for (const part of parts) expect(error.message).toContain(part);
    return error;
  };

  it('a task that succeeds twice', () => {
    const h = history('chain');
    const events = edited(h, (es) => {
      const i = indexWhere(es, (e) => e.type === 'task_succeeded', 'success');
      es.splice(i + 1, 0, es[i] as RunEvent);
    });
    const error = expectIllegal(h, events, ['task_succeeded', 'task extract', 'state succeeded']);
    expect(error.details).toMatchObject({
      runId: h.runId,
      state: 'succeeded',
      event: 'task_succeeded',
      task: 'extract',
    });
  });

  it('a task that starts before it was queued', () => {
    const h = history('chain');
    const events = edited(h, (es) => {
      const i = indexWhere(es, (e) => e.type === 'tasks_queued', 'queueing');
      es.splice(i, 1);
    });
    expectIllegal(h, events, ['task_started', 'task extract', 'state pending']);
  });

  it('an event after the run ended', () => {
    const h = history('chain');
    const events = edited(h, (es) => {
      es.push({ type: 'tasks_queued', at: (es.at(-1) as RunEvent).at, tasks: ['load'] });
    });
    expectIllegal(h, events, ['tasks_queued', 'state succeeded']);
  });

  it('a result for an attempt that is not the current one', () => {
    const h = history('retries');
    const events = edited(h, (es) => {
      const i = indexWhere(es, (e) => e.type === 'task_succeeded' && e.task === 'flaky', 'success of flaky');
      es[i] = { ...(es[i] as Extract<RunEvent, { type: 'task_succeeded' }>), attempt: 1 };
    });
    expectIllegal(h, events, ['task_succeeded', 'task flaky', 'attempt 1']);
  });

  it('a rerun of a run that has not ended, and a second start', () => {
    const h = history('chain');
    const rerun = edited(h, (es) => {
      es.splice(3, 0, { type: 'run_retried', at: (es[2] as RunEvent).at, tasks: ['extract'] });
    });
    expectIllegal(h, rerun, ['run_retried', 'the run', 'state running']);
    const restart = edited(h, (es) => {
      es.splice(3, 0, { type: 'run_started', at: (es[2] as RunEvent).at });
    });
    expectIllegal(h, restart, ['run_started', 'state running']);
  });

  it('an event naming a task the run does not have, and an event type nobody knows', () => {
    const h = history('chain');
    const ghost = edited(h, (es) => {
      es.splice(3, 0, { type: 'tasks_queued', at: (es[2] as RunEvent).at, tasks: ['ghost'] });
    });
    expectIllegal(h, ghost, ['tasks_queued', 'task ghost']);
    const unknown = edited(h, (es) => {
      es.splice(3, 0, { type: 'task_teleported', at: 0 } as unknown as RunEvent);
    });
    expectIllegal(h, unknown, ['task_teleported', 'no such event']);
  });

  it('items for a map that has them already, and items started beyond its list', () => {
    const h = history('map');
    const twice = edited(h, (es) => {
      const i = indexWhere(es, (e) => e.type === 'task_expanded' && e.task === 'square', 'expansion of square');
      const expanded = es[i] as Extract<RunEvent, { type: 'task_expanded' }>;
      // Put the map back to running first, so that only the known items make it illegal.
      es.splice(
        i + 1,
        0,
        { type: 'attempt_failed', at: expanded.at, task: expanded.task, attempt: 1, error: lostError, lost: true },
        { type: 'tasks_queued', at: expanded.at, tasks: [expanded.task] },
        { type: 'task_started', at: expanded.at, task: expanded.task, attempt: 2 },
        expanded,
      );
    });
    expectIllegal(h, twice, ['task_expanded', 'task square', 'its items are known already']);
    const beyond = edited(h, (es) => {
      const i = indexWhere(es, (e) => e.type === 'map_items_started', 'items started');
      const started = es[i] as Extract<RunEvent, { type: 'map_items_started' }>;
      es[i] = { ...started, items: [...started.items, 99] };
    });
    expectIllegal(h, beyond, ['map_items_started', 'no item #99']);
  });
});

const lostError = { code: 'WORKER_LOST', message: 'lost', source: 'baton' as const };

describe('illegal inputs to decide', () => {
  it('items for a task that is no map are RUN_INVALID_TRANSITION, not a crash', () => {
    const p = plan([{ id: 'a' }]);
    const run = foldRun('r-1', p, []);
    decide(run, { type: 'start' }, 1, () => 0);
    decide(run, { type: 'attempt_started', task: 0 }, 2, () => 0);
    const error = thrown(() => decide(run, { type: 'map_items', task: 0, attempt: 1, items: [1] }, 3, () => 0));
    expect(error.code).toBe('RUN_INVALID_TRANSITION');
    expect(error.message).toBe('run r-1: illegal transition: task_expanded for task a in state running (it is no map)');
  });

  it('stale and duplicate inputs stay ignored: they are not illegal', () => {
    const h = history('retries');
    // The run as it was when flaky's first attempt had failed and its retry was scheduled.
    const end = indexWhere(h.events, (e) => e.type === 'retry_scheduled' && e.task === 'flaky', 'retry of flaky');
    const run = fold(h, h.events.slice(0, end + 1));
    expect(run.state).toBe('running');
    const flaky = taskIndexOf(run, 'flaky') as number;
    expect(run.tasks[flaky]?.state).toBe('retrying');
    const before = JSON.stringify(finalOf(run));
    for (const input of [
      { type: 'attempt_succeeded', task: flaky, attempt: 1, output: 'late' },
      { type: 'attempt_failed', task: flaky, attempt: 1, error: lostError },
      { type: 'attempt_lost', task: flaky, attempt: 1 },
      { type: 'attempt_started', task: flaky },
      { type: 'decision', task: flaky, approved: true, by: 'x', comment: null },
      { type: 'child_finished', task: flaky, runId: 'r-x', state: 'succeeded', output: null, error: null },
      { type: 'start' },
    ] as const) {
      expect(decide(run, input, (h.events[end] as RunEvent).at, () => 0).events).toEqual([]);
    }
    expect(JSON.stringify(finalOf(run))).toBe(before);
  });
});
