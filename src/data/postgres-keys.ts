/**
 * The keys of a postgres mount and the SQL names they become. A key is `<table>`,
 * `<table>.jsonl`, `<table>.csv`, or `queries/<name>` with the same suffixes; the format
 * is JSON Lines unless the key ends in `.csv`.
 *
 * Names that reach SQL are checked here and only ever written through `quoteIdent`: a
 * table or query name is letters, digits, `_` and `-`, starting with a letter or `_`, so
 * that no key can carry SQL text; a column name (from a body's first row or header) is
 * quoted, whatever it holds.
 */
import { BatonError } from '../core/errors.js';

export type DatasetFormat = 'jsonl' | 'csv';

/** The folder under which named queries appear. */
export const QUERIES_FOLDER = 'queries';

/** What a key of a postgres mount names. */
export interface DatasetKey {
  readonly kind: 'table' | 'query';
  readonly name: string;
  readonly format: DatasetFormat;
}

/** A table, schema or query name the mount accepts; PostgreSQL keeps 63 bytes of a name. */
const NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;

export const CONTENT_TYPES: Readonly<Record<DatasetFormat, string>> = {
  jsonl: 'application/x-ndjson',
  csv: 'text/csv',
};

/** Whether `name` is a table, schema or query name the mount accepts. */
export function isDatasetName(name: string): boolean {
  return NAME.test(name);
}

/** A name as a quoted SQL identifier: `orders` → `"orders"`, a `"` doubled. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Parses a key of mount `mount`; DATA_PATH_INVALID when it names no table or query. */
export function parseDatasetKey(mount: string, key: string): DatasetKey {
  const parts = key.split('/');
  const query = parts.length === 2 && parts[0] === QUERIES_FOLDER;
  if (parts.length > 1 && !query) throw badKey(mount, key);
  const last = parts[parts.length - 1] ?? '';
  const format: DatasetFormat = last.endsWith('.csv') ? 'csv' : 'jsonl';
  const name = last.endsWith('.csv') ? last.slice(0, -4) : last.endsWith('.jsonl') ? last.slice(0, -6) : last;
  if (!NAME.test(name)) throw badKey(mount, key);
  return { kind: query ? 'query' : 'table', name, format };
}

function badKey(mount: string, key: string): BatonError {
  return new BatonError(
    'DATA_PATH_INVALID',
    `mount "${mount}": ${JSON.stringify(key)} names no table or query of a postgres mount`,
    {
      hint: 'Name a table as `<table>`, `<table>.jsonl` or `<table>.csv`, and a named query as `queries/<name>` (same suffixes); a name has only letters, digits, `_` and `-`, and starts with a letter or `_`.',
      details: { mount, key },
    },
  );
}
