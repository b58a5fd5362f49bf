/**
 * The abort switch of one attempt. Most bodies never look at their AbortSignal, and an
 * AbortController with its signal is an EventTarget of its own, costly at thousands of
 * attempts a second: the signal is made only when something reads it, already aborted
 * (with the same reason) if the attempt was aborted before. Baton's own code waits for an
 * abort through `onAbort`, which needs no signal.
 */
export class AttemptController {
  private controller: AbortController | undefined;
  private isAborted = false;
  private abortReason: unknown = undefined;
  private listeners: (() => void)[] | undefined;

  /** The attempt's AbortSignal (`context.signal`), made on first read. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.isAborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  get aborted(): boolean {
    return this.isAborted;
  }

  /** Why the attempt was aborted (an AttemptAbort from Baton); undefined while it was not. */
  get reason(): unknown {
    return this.abortReason;
  }

  /** Aborts once, like AbortController.abort: a later call changes nothing. */
  abort(reason: unknown): void {
    if (this.isAborted) return;
    this.isAborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }

  /**
   * Calls `listener` once when the attempt is aborted (not at all if it already was: check
   * `aborted` first). Returns a function that removes it.
   */
  onAbort(listener: () => void): () => void {
    if (this.isAborted) return noop;
    (this.listeners ??= []).push(listener);
    return () => {
      const listeners = this.listeners;
      if (!listeners) return;
      const at = listeners.indexOf(listener);
      if (at >= 0) listeners.splice(at, 1);
    };
  }
}

function noop(): void {}
