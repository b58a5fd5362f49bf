/**
 * Named parameters for SQL that PostgreSQL runs: `sql` tasks write `$day` (as DuckDB takes
 * it), and PostgreSQL takes `$1`. The rewrite skips string literals, quoted identifiers,
 * comments and dollar-quoted bodies, so a `$day` inside text stays text; values are bound,
 * never put into the SQL.
 */
import { BatonError } from '../core/errors.js';

/** `sql` with each `$name` replaced by `$<n>`, and the values in that order. */
export function toPositional(
  taskId: string,
  sql: string,
  params: Readonly<Record<string, unknown>>,
): { text: string; values: unknown[] } {
  const order: string[] = [];
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    let end = i + 1;
    if (c === "'" || c === '"') {
      end = closing(sql, i + 1, c);
    } else if (c === '-' && next === '-') {
      const nl = sql.indexOf('\n', i);
      end = nl === -1 ? sql.length : nl;
    } else if (c === '/' && next === '*') {
      const close = sql.indexOf('*/', i + 2);
      end = close === -1 ? sql.length : close + 2;
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i));
      const name = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(sql.slice(i));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        end = close === -1 ? sql.length : close + tag[0].length;
      } else if (name) {
        const key = name[1] as string;
        if (!Object.hasOwn(params, key)) {
          throw new BatonError('SQL_FAILED', `task ${taskId}: the SQL uses $${key}, which params does not give`, {
            hint: `Add \`${key}\` under params, or remove $${key} from the SQL.`,
          });
        }
        let index = order.indexOf(key);
        if (index === -1) index = order.push(key) - 1;
        out += `$${index + 1}`;
        i += name[0].length;
        continue;
      }
    }
    out += sql.slice(i, end);
    i = end;
  }
  return { text: out, values: order.map((k) => params[k]) };
}

/** The index after the quote that closes one opened before `from` (a doubled quote escapes it). */
function closing(sql: string, from: number, quote: string): number {
  let i = from;
  while (i < sql.length) {
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return sql.length;
}
