/**
 * The store's own lifecycle: opening the schema, reading the database clock, closing.
 *
 * Invariants:
 * - `migrate` applies pending migrations in order, once, even when several processes
 *   start at the same time, and refuses a database migrated by a newer Baton.
 * - `now` is the database clock: leases, timers and due times are measured on it, never
 *   on a caller's clock, so that processes on machines whose clocks disagree still agree.
 */
export interface StoreLifecycle {
  readonly dialect: 'sqlite' | 'postgres';
  /** Applies pending migrations; refuses a database newer than this code. */
  migrate(): Promise<void>;
  close(): Promise<void>;
  /** The database clock, in ms since the epoch. */
  now(): Promise<number>;
}
