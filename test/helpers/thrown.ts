/** Catching the BatonError a synchronous call must throw, for assertions on its code and text. */
import { BatonError } from '../../src/core/errors.js';

/** Runs `fn`, which must throw a BatonError, and returns it. */
export function thrown(fn: () => unknown): BatonError {
  try {
    fn();
  } catch (error) {
    if (error instanceof BatonError) return error;
    throw new Error(`expected a BatonError, got ${String(error)}`);
  }
  throw new Error('expected an error, but nothing was thrown');
}

/** Awaits `promise`, which must reject with a BatonError, and returns it. */
export async function rejection(promise: Promise<unknown>): Promise<BatonError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BatonError) return error;
    throw new Error(`expected a BatonError, got ${String(error)}`);
  }
  throw new Error('expected a rejection, but the call resolved');
}
