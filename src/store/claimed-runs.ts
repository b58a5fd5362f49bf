/**
 * The row and events of runs just claimed, read in the claim's round trip, kept until the
 * claimant reads them (an engine resumes a run it claims from exactly these two reads).
 * Each is handed out once and only while nothing can have changed it: within a short time
 * of the claim, and before any write of this process to that run (commit, renewal,
 * release, another claim) forgets it. Only the lease holder writes a claimed run's row and
 * events, so until then the copy is what the database holds.
 */
import type { RunRecord, StoredEvent } from './store.js';

/** How long a copy is served after its claim; an engine reads it at once. */
const FRESH_MS = 1000;
/** Copies kept at most: a claimant that never reads them does not grow this. */
const MOST = 1024;

interface Loaded {
  readonly at: number;
  run: RunRecord | null;
  events: StoredEvent[] | null;
}

export class ClaimedRuns {
  private readonly byId = new Map<string, Loaded>();

  /** Keeps what a claim read of `run`. */
  keep(run: RunRecord, events: StoredEvent[]): void {
    const now = Date.now();
    for (const [id, loaded] of this.byId) {
      if (now - loaded.at <= FRESH_MS && this.byId.size < MOST) break;
      this.byId.delete(id);
    }
    this.byId.delete(run.id);
    this.byId.set(run.id, { at: now, run, events });
  }

  /** The run as claimed, once, if still fresh. */
  takeRun(id: string): RunRecord | null {
    const loaded = this.fresh(id);
    if (!loaded?.run) return null;
    const run = loaded.run;
    loaded.run = null;
    if (!loaded.events) this.byId.delete(id);
    return run;
  }

  /** All events of the run as claimed, once, if still fresh. */
  takeEvents(id: string): StoredEvent[] | null {
    const loaded = this.fresh(id);
    if (!loaded?.events) return null;
    const events = loaded.events;
    loaded.events = null;
    if (!loaded.run) this.byId.delete(id);
    return events;
  }

  /** Forgets the copies of these runs: this process is about to change them. */
  forget(ids: Iterable<string>): void {
    if (this.byId.size === 0) return;
    for (const id of ids) this.byId.delete(id);
  }

  private fresh(id: string): Loaded | undefined {
    const loaded = this.byId.get(id);
    if (!loaded) return undefined;
    if (Date.now() - loaded.at > FRESH_MS) {
      this.byId.delete(id);
      return undefined;
    }
    return loaded;
  }
}
