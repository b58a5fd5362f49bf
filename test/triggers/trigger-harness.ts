/**
 * Shared setup of the trigger tests: a project in a temp folder (baton.yaml and
 * flows/*.yaml written by the test) opened with `openRuntime` on a real SQLite file or on
 * a fresh PostgreSQL database, a virtual clock the test advances, and trigger services
 * built through `rt.createTriggerService({ now })` as the CLI builds them.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runtime } from '../../src/app/runtime.js';
import { openRuntime } from '../../src/app/runtime.js';
import type { RunStateName } from '../../src/core/states.js';
import type { FiringRecord, RunRecord } from '../../src/store/store.js';
import type { TriggerService } from '../../src/triggers/trigger-service.js';
import { createTestDatabase } from '../store/pg-helpers.js';

export interface Backend {
  readonly name: 'sqlite' | 'postgres';
  /** Environment for openRuntime, and how to remove what was made. */
  open(): Promise<{ env: Record<string, string>; drop: () => Promise<void> }>;
}

export const BACKENDS: readonly Backend[] = [
  { name: 'sqlite', open: async () => ({ env: {}, drop: async () => undefined }) },
  {
    name: 'postgres',
    async open() {
      const db = await createTestDatabase();
      return { env: { BATON_DATABASE_URL: db.url }, drop: db.drop };
    },
  },
];

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
/** The origin of the virtual clock: on the hour, so hourly interval fire times are T0 + n h. */
export const T0 = Date.parse('2024-05-01T00:00:00Z');
export const h = (n: number): number => T0 + n * HOUR;
export const iso = (ms: number): string => new Date(ms).toISOString();

/** A YAML flow with one shell task and the given top-level lines (triggers, overlap…). */
export function flowYaml(name: string, lines: readonly string[]): string {
  return [`name: ${name}`, ...lines, 'tasks:', '  work:', '    kind: shell', '    command: ["true"]', ''].join('\n');
}

/** The `triggers:` lines of one time trigger. */
export function timeTrigger(name: string, settings: Readonly<Record<string, string | number>>): string[] {
  return ['triggers:', `  ${name}:`, ...Object.entries(settings).map(([k, v]) => `    ${k}: ${v}`)];
}

export interface TriggerProject {
  readonly dir: string;
  readonly rt: Runtime;
  readonly clock: { now: number };
  readonly diagnostics: string[];
  /** A new trigger service on this project's store, reading the virtual clock. */
  service(): TriggerService;
  /** Runs of a flow, ordered by their interval end (then creation). */
  runs(flow: string): Promise<RunRecord[]>;
  /** Firings of a trigger, oldest first. */
  firings(triggerId: string): Promise<FiringRecord[]>;
  /** Ends a run as a process executing it would (claim, then commit the final state). */
  finish(runId: string, state?: Extract<RunStateName, 'succeeded' | 'failed' | 'cancelled'>): Promise<void>;
  /** Marks a queued run running, owned by a (pretend) engine whose lease has lapsed. */
  start(runId: string): Promise<void>;
  writeFlow(name: string, text: string): void;
  close(): Promise<void>;
}

export async function openTriggerProject(
  backend: Backend,
  flows: Readonly<Record<string, string>>,
  o: { now?: number } = {},
): Promise<TriggerProject> {
  const dir = mkdtempSync(join(tmpdir(), `baton-triggers-${backend.name}-`));
  mkdirSync(join(dir, 'flows'));
  writeFileSync(join(dir, 'baton.yaml'), 'concurrency: 4\n');
  const writeFlow = (name: string, text: string) => writeFileSync(join(dir, 'flows', `${name}.yaml`), text);
  for (const [name, text] of Object.entries(flows)) writeFlow(name, text);
  const db = await backend.open();
  let rt: Runtime;
  try {
    rt = await openRuntime({ cwd: dir, env: db.env });
  } catch (error) {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const clock = { now: o.now ?? T0 + MINUTE };
  const diagnostics: string[] = [];
  const end = async (runId: string, state: 'succeeded' | 'failed' | 'cancelled', running: boolean) => {
    const lease = await rt.store.claimRun(runId, { owner: 'test-engine', leaseMs: 60_000 });
    if (!lease) throw new Error(`cannot claim run ${runId}`);
    const at = clock.now;
    const event =
      state === 'succeeded'
        ? { type: 'run_succeeded' as const, at }
        : state === 'failed'
          ? { type: 'run_failed' as const, at, error: { code: 'TASK_FAILED', message: 'failed in a test' } }
          : { type: 'run_cancelled' as const, at, reason: 'cancelled in a test' };
    await rt.store.commit([
      {
        lease,
        events: running ? [{ type: 'run_started', at }] : [event],
        run: running
          ? { state: 'running', startedAt: at, endedAt: null, error: null }
          : {
              state,
              startedAt: at,
              endedAt: at,
              error: state === 'failed' ? { code: 'TASK_FAILED', message: 'failed in a test' } : null,
            },
        tasks: [],
        timers: [],
        logs: [],
      },
    ]);
    await rt.store.releaseRun(lease);
  };
  return {
    dir,
    rt,
    clock,
    diagnostics,
    service: () =>
      rt.createTriggerService({ now: () => clock.now, onDiagnostic: (m) => diagnostics.push(m), tickMs: 3_600_000 }),
    async runs(flow) {
      const runs = await rt.store.listRuns({ flow, limit: 10_000 });
      const end = (r: RunRecord) => String(r.params.interval_end ?? '');
      return runs.sort((a, b) => end(a).localeCompare(end(b)) || a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    },
    async firings(triggerId) {
      return (await rt.store.listFirings(triggerId, 10_000)).reverse();
    },
    finish: (runId, state = 'succeeded') => end(runId, state, false),
    start: (runId) => end(runId, 'succeeded', true),
    writeFlow,
    async close() {
      await rt.close();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
