/**
 * An attempt's abort switch makes its AbortSignal only when something reads it; the
 * signal must still tell what an AbortController's would, whenever it is made.
 */
import { describe, expect, it } from 'vitest';
import { AttemptController } from '../../src/engine/attempt-controller.js';
import { AttemptAbort } from '../../src/engine/executor.js';

describe('AttemptController', () => {
  it('aborts a signal made before the abort, with the reason, and calls its listeners', () => {
    const c = new AttemptController();
    const signal = c.signal;
    const heard: unknown[] = [];
    signal.addEventListener('abort', () => heard.push(signal.reason));
    c.onAbort(() => heard.push('listener'));
    const reason = new AttemptAbort('timeout', 'timed out');
    c.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    expect(heard).toEqual([reason, 'listener']);
    expect(c.aborted).toBe(true);
    expect(c.reason).toBe(reason);
  });

  it('makes a signal read after the abort already aborted, with the same reason', () => {
    const c = new AttemptController();
    const reason = new AttemptAbort('cancelled', 'cancelled');
    c.abort(reason);
    expect(c.signal.aborted).toBe(true);
    expect(c.signal.reason).toBe(reason);
    expect(c.signal).toBe(c.signal);
  });

  it('aborts once: a second abort changes neither the reason nor calls listeners again', () => {
    const c = new AttemptController();
    let calls = 0;
    c.onAbort(() => calls++);
    const first = new AttemptAbort('lease_lost', 'lost');
    c.abort(first);
    c.abort(new AttemptAbort('cancelled', 'later'));
    expect(c.reason).toBe(first);
    expect(calls).toBe(1);
  });

  it('calls no listener that was removed, nor one added after the abort', () => {
    const c = new AttemptController();
    let calls = 0;
    const remove = c.onAbort(() => calls++);
    remove();
    c.abort(new AttemptAbort('cancelled', 'cancelled'));
    c.onAbort(() => calls++);
    expect(calls).toBe(0);
    expect(c.aborted).toBe(true);
  });
});
