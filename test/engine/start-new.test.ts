/**
 * Engine.startNew against a real SQLite file: a run created and started by the engine that
 * executes it costs one commit, its first body starts only after that commit, a failed
 * commit creates nothing twice, and a run that exists already is refused.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildRun } from '../../src/app/runs.js';
import { BatonError } from '../../src/core/errors.js';
import type { CommitEntry, Store } from '../../src/store/store.js';
import type { Project } from './harness.js';
import { flowYaml, openProject, workTask } from './harness.js';

let project: Project | undefined;
afterEach(async () => {
  await project?.close();
  project = undefined;
});

/** Records the store calls an engine makes, and lets a test act before each commit. */
function spyOn(store: Store, beforeCommit: (entries: readonly CommitEntry[]) => void = () => undefined) {
  const calls: string[] = [];
  const commits: (readonly CommitEntry[])[] = [];
  const s = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const name of ['createRun', 'createRuns', 'claimRun', 'claimRuns', 'commit'] as const) {
    const original = s[name]?.bind(store);
    if (!original) continue;
    s[name] = async (...args: unknown[]) => {
      calls.push(name);
      if (name === 'commit') {
        const entries = args[0] as readonly CommitEntry[];
        beforeCommit(entries);
        commits.push(entries);
      }
      return original(...args);
    };
  }
  return { calls, commits };
}

async function setUp(): Promise<{ p: Project; next: () => Promise<ReturnType<typeof buildRun>> }> {
  const p = await openProject();
  project = p;
  p.write('flows/two.yaml', flowYaml('two', [workTask('a'), workTask('b', { deps: ['a'] })]));
  const flow = await p.rt.catalog.find(join(p.dir, 'flows/two.yaml'));
  return { p, next: async () => buildRun(p.rt.config, flow, { params: { dir: p.dir } }) };
}

describe('Engine.startNew', () => {
  it('creates, claims and starts a run in one commit, and runs it to its end', async () => {
    const { p, next } = await setUp();
    const journalAtCommit: number[] = [];
    const spy = spyOn(p.rt.store, () => journalAtCommit.push(p.journal().length));
    const engine = p.rt.createEngine();
    try {
      const input = await next();
      const started = await engine.startNew(input);
      expect(started).toMatchObject({ runId: input.id, created: true });
      expect(await started.done).toBe('succeeded');
    } finally {
      await engine.stop();
    }
    // Neither a creation nor a claim of its own: the first commit did both.
    expect(spy.calls.filter((c) => c !== 'commit')).toEqual([]);
    const first = spy.commits[0]?.[0];
    expect(first?.create?.run.id).toBeDefined();
    expect(first?.events.map((e) => e.type)).toEqual(['run_started', 'tasks_queued', 'task_started']);
    // No body had run when the commit recording its start was made.
    expect(journalAtCommit[0]).toBe(0);
    expect(spy.commits.slice(1).every((entries) => entries.every((e) => e.create === undefined))).toBe(true);
    const id = first?.lease.runId as string;
    const events = (await p.events(id)).map((e) => e.type);
    expect(events.slice(0, 4)).toEqual(['run_created', 'run_started', 'tasks_queued', 'task_started']);
    expect(events.at(-1)).toBe('run_succeeded');
    expect(p.journal()).toEqual(['a 1', 'b 1']);
    expect(await p.rt.store.getRun(id)).toMatchObject({ state: 'succeeded', owner: null });
  });

  it('retries a creating commit that failed, and creates the run once', async () => {
    const { p, next } = await setUp();
    let failures = 0;
    const store = p.rt.store as unknown as { commit: Store['commit'] };
    const commit = store.commit.bind(p.rt.store);
    store.commit = async (entries) => {
      if (entries.some((e) => e.create) && failures < 2) {
        failures++;
        // Nothing is written by a commit that fails: the body must not start either.
        expect(p.journal()).toEqual([]);
        throw new BatonError('STORE_IO', 'disk I/O error (injected)');
      }
      return commit(entries);
    };
    const engine = p.rt.createEngine();
    try {
      const input = await next();
      const { done } = await engine.startNew(input);
      expect(await done).toBe('succeeded');
      expect(failures).toBe(2);
      expect((await p.events(input.id)).filter((e) => e.type === 'run_created')).toHaveLength(1);
      expect((await p.rt.store.listRuns({})).map((r) => r.id)).toEqual([input.id]);
    } finally {
      await engine.stop();
    }
  });

  it('refuses a run whose id exists already and runs nothing of it', async () => {
    const { p, next } = await setUp();
    const input = await next();
    await p.rt.store.createRun(input);
    const engine = p.rt.createEngine();
    try {
      await expect(engine.startNew(input)).rejects.toMatchObject({ code: 'STORE_FENCED' });
    } finally {
      await engine.stop();
    }
    expect(p.journal()).toEqual([]);
    expect(await p.rt.store.getRun(input.id)).toMatchObject({ state: 'queued', owner: null });
    expect((await p.events(input.id)).map((e) => e.type)).toEqual(['run_created']);
  });

  it('refuses a run on a stopped engine, creating nothing', async () => {
    const { p, next } = await setUp();
    const engine = p.rt.createEngine();
    await engine.stop();
    const input = await next();
    await expect(engine.startNew(input)).rejects.toMatchObject({ code: 'ENGINE_STOPPED' });
    expect(await p.rt.store.getRun(input.id)).toBeNull();
  });

  it('finds the run of a dedupe key rather than creating a second', async () => {
    const { p, next } = await setUp();
    const engine = p.rt.createEngine();
    try {
      const first = { ...(await next()), dedupeKey: 'nightly-1' };
      const a = await engine.startNew(first);
      expect(a.created).toBe(true);
      expect(await a.done).toBe('succeeded');
      const b = await engine.startNew({ ...(await next()), dedupeKey: 'nightly-1' });
      expect(b).toMatchObject({ runId: first.id, created: false });
      expect(await b.done).toBe('succeeded');
    } finally {
      await engine.stop();
    }
    expect(p.journal()).toEqual(['a 1', 'b 1']);
  });
});
