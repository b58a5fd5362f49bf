/**
 * Rows written many to a statement: a commit of a busy run carries hundreds of events and
 * task rows, and each statement run has a fixed cost (binding, stepping, resetting) well
 * above that of one more row in a statement already running. Statements are prepared once
 * per row count and kept.
 */
import type Database from 'better-sqlite3';

/** Rows per statement: 50 rows of 10 columns stay far below SQLite's limit on parameters. */
const MAX_ROWS = 50;

export class MultiRowInsert {
  private readonly statements = new Map<number, Database.Statement>();
  /** One list for every batch, filled from the start: no list grown afresh per batch. */
  private readonly values: unknown[];
  private count = 0;

  /**
   * `sql(values)` is the statement for the rows `values` (`(?, …), (?, …)`): `INSERT …
   * VALUES ${values}` and whatever follows them (an ON CONFLICT clause).
   */
  constructor(
    private readonly db: Database.Database,
    private readonly columns: number,
    private readonly sql: (values: string) => string,
  ) {
    this.values = new Array<unknown>(columns * MAX_ROWS).fill(null);
  }

  /** Queues the next value of a row, in column order (every row whole); a full batch is written at once. */
  put(value: unknown): void {
    this.values[this.count++] = value;
    if (this.count === this.values.length) this.flush();
  }

  /** Writes the rows queued so far. Call it before anything in the transaction reads them. */
  flush(): void {
    const count = this.count;
    if (count === 0) return;
    this.count = 0;
    // The statement binds its values before it returns: the list may be refilled at once.
    this.statementFor(count / this.columns).run(
      count === this.values.length ? this.values : this.values.slice(0, count),
    );
  }

  /** Forgets queued rows (of a transaction that failed before they were written). */
  clear(): void {
    this.count = 0;
  }

  private statementFor(rows: number): Database.Statement {
    let statement = this.statements.get(rows);
    if (!statement) {
      const row = `(${Array.from({ length: this.columns }, () => '?').join(', ')})`;
      statement = this.db.prepare(this.sql(Array.from({ length: rows }, () => row).join(', ')));
      this.statements.set(rows, statement);
    }
    return statement;
  }
}
