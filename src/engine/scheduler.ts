/**
 * A scheduler process: any number may run against one database; exactly one leads, by a
 * lease row on the database clock. The leader drives runs (an engine in dispatch mode:
 * attempts go to the task queue for workers); the others stand by and try for the lease
 * every third of its length. A leader whose process dies is replaced at a standby's next
 * try where the store sees its session end (PostgreSQL), else once its lease lapses (by
 * default 5 s); the leases it held on runs end with its leadership, so its runs are taken
 * over at once. One that merely stalls is fenced out of its runs by their epochs if
 * another took over meanwhile.
 */
import type { LeaderLease, Store } from '../store/store.js';
import type { Engine } from './engine.js';
import type { LongTimer } from './long-timer.js';
import { setLongInterval } from './long-timer.js';

export interface SchedulerOptions {
  readonly store: Store;
  /** Builds the engine the leader runs; called on each accession. */
  readonly createEngine: () => Engine;
  readonly owner: string;
  /** Leadership lease in ms. Default 5000. */
  readonly leaseMs?: number;
  readonly onDiagnostic?: (message: string) => void;
  /** Told when this process becomes leader or stops being it. */
  readonly onLeadership?: (leading: boolean) => void;
}

export const SCHEDULER_LEADERSHIP = 'scheduler';

export class SchedulerProcess {
  private timer: LongTimer | undefined;
  private lease: LeaderLease | null = null;
  private engine: Engine | null = null;
  private ticking = false;
  private stopped = false;

  constructor(private readonly o: SchedulerOptions) {}

  get leading(): boolean {
    return this.lease !== null;
  }

  start(): void {
    const every = Math.max(50, Math.floor((this.o.leaseMs ?? 5000) / 3));
    // A third of the lease: any lease a setting allows, beyond what setInterval holds.
    this.timer = setLongInterval(() => void this.tick(), every);
    void this.tick();
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      const lease = await this.o.store.acquireLeadership(SCHEDULER_LEADERSHIP, this.o.owner, this.o.leaseMs ?? 5000);
      if (lease && !this.lease) {
        this.lease = lease;
        this.engine = this.o.createEngine();
        this.engine.startWorker();
        this.o.onLeadership?.(true);
      } else if (!lease && this.lease) {
        await this.abdicate('leadership lost');
      } else if (lease) {
        this.lease = lease;
      }
    } catch (error) {
      this.o.onDiagnostic?.(`leadership check failed: ${(error as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  private async abdicate(reason: string): Promise<void> {
    this.o.onDiagnostic?.(`standing down: ${reason}`);
    const engine = this.engine;
    this.engine = null;
    this.lease = null;
    await engine?.stop();
    this.o.onLeadership?.(false);
  }

  /** Stops leading and hands the lease back so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    while (this.ticking) await new Promise((r) => setTimeout(r, 10));
    const lease = this.lease;
    if (this.engine) await this.engine.stop();
    this.engine = null;
    this.lease = null;
    if (lease) await this.o.store.releaseLeadership(lease).catch(() => undefined);
  }
}
