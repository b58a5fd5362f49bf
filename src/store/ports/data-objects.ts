/**
 * Data metadata: one row per object Baton has read or written through a mount
 * (`data://<mount>/<key>`), and the history of every read and write, for lineage.
 *
 * Invariants:
 * - A batch of accesses is recorded in one transaction, in the order given: its object
 *   rows and its access rows are all written, or none is (an entry the database refuses
 *   refuses the batch).
 * - A write makes its object row say what was written and by whom (size, ETag, SHA-256,
 *   schema, content type, producing run and task, time); a later write replaces all of it.
 *   A read keeps the producer: it updates the size, the ETag and the last read time, and
 *   creates a row without a producer for an object Baton has not written.
 * - Access rows are history: forgetting an object deletes its row only, never its
 *   accesses, and accesses are read back in the order they were recorded.
 * - Times are the caller's: each access carries when it happened (`at`), and the object
 *   row takes its written and read times from it. The store reads no clock here, so that a
 *   batch recorded late still dates each access when it happened.
 * - Paths compare bytewise (code point order) on both stores, whatever the database
 *   collation, so that listings page alike everywhere.
 */
import type {
  DataAccess,
  DataAccessFilter,
  DataAccessRecord,
  DataObjectListOptions,
  DataObjectRecord,
} from '../store.js';

export interface DataObjects {
  /**
   * Records reads and writes, in one transaction, in order: upserts each object's row and
   * appends one access row per entry. A path that is not the canonical path of an object
   * (`data://<mount>/<key>`, key not empty) is refused with DATA_PATH_INVALID (or
   * DATA_PATH_ESCAPE) before anything is written.
   */
  recordDataAccesses(accesses: readonly DataAccess[]): Promise<void>;
  /** The object's row, or null if Baton never met the object or forgot it. */
  getDataObject(path: string): Promise<DataObjectRecord | null>;
  /**
   * Object rows in path order (bytewise), at most `limit`: those of one mount, those whose
   * path starts with `prefix` (a plain string prefix: `data://raw/a` also matches
   * `data://raw/ab`; end it with `/` for a folder), and those after `afterPath` (the last
   * path of the previous page).
   */
  listDataObjects(options: DataObjectListOptions): Promise<DataObjectRecord[]>;
  /** Deletes the row of an object that was removed, keeping its accesses; false if there was none. */
  forgetDataObject(path: string): Promise<boolean>;
  /**
   * Accesses in the order they were recorded, at most `limit`: those of one run, of one
   * path, and after `afterSeq` (the last `seq` of the previous page).
   */
  dataAccesses(filter: DataAccessFilter): Promise<DataAccessRecord[]>;
}
