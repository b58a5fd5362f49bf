/**
 * A lock file per object, so that a second process waits for the download a first one is
 * making rather than downloading the same bytes. Created with O_EXCL; its holder touches it
 * while it works, and a lock untouched for `staleMs` belongs to a process that died and is
 * removed. The lock only saves downloads: two processes that both download (a stale lock
 * broken twice, a wait given up) still each rename a whole file into place.
 */
import { open, rm, stat, utimes } from 'node:fs/promises';

export interface LockOptions {
  /** A lock untouched for this long (ms) is taken over. */
  readonly staleMs: number;
  /** Pause between tries (ms). */
  readonly pollMs: number;
  /** After waiting this long (ms), go on without the lock. */
  readonly maxWaitMs: number;
  readonly signal?: AbortSignal;
}

/** A held lock; `release` is idempotent. */
export interface HeldLock {
  /** False when the wait was given up and the caller goes on without the lock. */
  readonly held: boolean;
  /** Whether another process held the lock while this one waited. */
  readonly waited: boolean;
  release(): Promise<void>;
}

/** Takes the lock file at `path`, waiting while a live process holds it. */
export async function acquireLock(path: string, options: LockOptions): Promise<HeldLock> {
  const started = Date.now();
  let waited = false;
  // Bounded by maxWaitMs: each pass either takes the lock, breaks a stale one, or sleeps pollMs.
  while (Date.now() - started < options.maxWaitMs) {
    options.signal?.throwIfAborted();
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      return held(path, options.staleMs, waited);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let touched: number;
    try {
      touched = (await stat(path)).mtimeMs;
    } catch {
      continue; // Released between the two calls.
    }
    if (Date.now() - touched > options.staleMs) {
      await rm(path, { force: true });
      continue;
    }
    waited = true;
    await sleep(options.pollMs, options.signal);
  }
  return { held: false, waited, release: async () => undefined };
}

function held(path: string, staleMs: number, waited: boolean): HeldLock {
  // Touched well within the stale time, so that a long download is not taken for a dead one.
  const timer = setInterval(
    () => {
      const now = new Date();
      utimes(path, now, now).catch(() => undefined);
    },
    Math.max(10, Math.floor(staleMs / 4)),
  );
  timer.unref();
  let released = false;
  return {
    held: true,
    waited,
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      await rm(path, { force: true });
    },
  };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
