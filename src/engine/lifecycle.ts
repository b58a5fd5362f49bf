/**
 * The engine's own lifecycle, as one state instead of flags that must agree:
 *
 *   idle → working      startWorker
 *   idle, working → draining   drain
 *   any → stopped       stop (after draining, or at once)
 *
 * - `idle`: runs only what it is asked to (`execute`, `resume`): the foreground engine of
 *   `baton run`, or an engine not started yet. A child run is executed in this process.
 * - `working`: a worker: claims queued, orphaned and due parked runs while it has room, and
 *   parks the runs that only wait. A child run is claimed like any queued run.
 * - `draining`: takes no new run and starts no new attempt; the attempts running finish and
 *   commit, then the engine stops.
 * - `stopped`: owns nothing. Runs it held were handed back (released, or parked when they
 *   only wait); nothing moves it out of this state.
 */
import { BatonError } from '../core/errors.js';

export type EnginePhase = 'idle' | 'working' | 'draining' | 'stopped';

const NEXT: Readonly<Record<EnginePhase, readonly EnginePhase[]>> = {
  idle: ['working', 'draining', 'stopped'],
  working: ['draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

export class EngineLifecycle {
  private current: EnginePhase = 'idle';

  get phase(): EnginePhase {
    return this.current;
  }

  /** True while the engine claims work of its own (worker mode). */
  get working(): boolean {
    return this.current === 'working';
  }

  /** True once the engine takes no new work: draining or stopped. */
  get closing(): boolean {
    return this.current === 'draining' || this.current === 'stopped';
  }

  get stopped(): boolean {
    return this.current === 'stopped';
  }

  /**
   * Moves to `next`. Moving to the phase the engine is already in is a no-op (false); a move
   * the diagram above does not allow is ENGINE_STOPPED when the engine has stopped, and a
   * bug otherwise.
   */
  moveTo(next: EnginePhase): boolean {
    if (next === this.current) return false;
    if (!NEXT[this.current].includes(next)) {
      if (this.current === 'stopped' || this.current === 'draining') {
        throw new BatonError('ENGINE_STOPPED', `the engine is ${this.current} and cannot be ${next}`, {
          hint: 'Create a new engine (or client worker) to take work again.',
        });
      }
      throw new BatonError('INTERNAL', `engine lifecycle: no move from ${this.current} to ${next}`);
    }
    this.current = next;
    return true;
  }
}
