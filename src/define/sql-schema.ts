/**
 * The keys of a `sql` task: the tables its SQL sees (`inputs`), the SQL itself, the values
 * bound to its `$name` parameters, where the result goes (`output`), and which engine runs
 * it (DuckDB in the worker, or the PostgreSQL database of a mount). Everything that can be
 * known from the flow file alone is checked here, at load time; whether a mount exists and
 * is of the right kind is known only to the runtime (SQL task errors, docs/data.md).
 */
import { z } from 'zod';
import { hasTemplate } from './expression.js';

/** Output formats a `sql` task writes to a file, by the extension of `output.to`. */
export const SQL_FILE_FORMATS = ['parquet', 'csv', 'json', 'jsonl'] as const;
export type SqlFileFormat = (typeof SQL_FILE_FORMATS)[number];
/** How rows reach a table of a postgres mount. */
export const SQL_TABLE_MODES = ['append', 'replace', 'merge'] as const;
export type SqlTableMode = (typeof SQL_TABLE_MODES)[number];
export const SQL_ENGINES = ['duckdb', 'postgres'] as const;

/** An input's or key column's name: what the SQL calls it, unquoted. */
const SQL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SQL_NAME_RULE = 'must be a SQL name: letters, digits and _, starting with a letter or _';
const DATA_PATH_RULE = 'must be a data path, data://<mount>/<key>';

const dataPath = z.string().regex(/^data:\/\/[^/]+\/.+/, { error: DATA_PATH_RULE });
const sqlName = z.string().regex(SQL_NAME, { error: SQL_NAME_RULE });

const SqlInputSchema = z.union(
  [
    dataPath,
    z.strictObject({ query: z.string().min(1), mount: z.string().min(1) }),
    z.strictObject({ table: sqlName, mount: z.string().min(1) }),
    z.strictObject({ task: z.string().min(1) }),
  ],
  {
    error:
      'must be a data path (data://<mount>/<file>), { query, mount }, { table, mount } or { task: <upstream task> }',
  },
);

const SqlOutputSchema = z.strictObject({
  to: dataPath,
  mode: z.enum(SQL_TABLE_MODES).optional(),
  key: z.array(sqlName).min(1).optional(),
});

/** The format a file output is written in, from the extension of its path; undefined when it names no file. */
export function sqlFileFormat(path: string): SqlFileFormat | undefined {
  const match = /\.([A-Za-z0-9]+)$/.exec(path.slice(path.lastIndexOf('/') + 1));
  const ext = match?.[1]?.toLowerCase();
  return (SQL_FILE_FORMATS as readonly string[]).includes(ext ?? '') ? (ext as SqlFileFormat) : undefined;
}

/** True when a key names a file (it has an extension), rather than a table. */
function namesFile(path: string): boolean {
  return /\.[^./]+$/.test(path.slice(path.lastIndexOf('/') + 1));
}

export const SqlTaskSchema = z
  .object({
    engine: z.enum(SQL_ENGINES).optional(),
    mount: z.string().min(1).optional(),
    inputs: z.record(z.string(), SqlInputSchema).optional(),
    sql: z.string().refine((v) => v.trim() !== '', { error: 'must be a SQL statement' }),
    params: z.record(z.string(), z.unknown()).optional(),
    output: SqlOutputSchema.optional(),
  })
  .superRefine((task, ctx) => {
    const issue = (path: (string | number)[], message: string, hint: string) =>
      ctx.addIssue({ code: 'custom', path, message, params: { hint } });
    // Names are checked here rather than by the record, whose key errors say only "invalid".
    for (const section of ['inputs', 'params'] as const) {
      for (const name of Object.keys(task[section] ?? {})) {
        if (!SQL_NAME.test(name)) {
          issue(
            [section, name],
            `${SQL_NAME_RULE}, got ${JSON.stringify(name)}`,
            'Rename it: the SQL names it unquoted.',
          );
        }
      }
    }
    if (hasTemplate(task.sql)) {
      issue(
        ['sql'],
        'holds a ${{ }} template, which would put values into the SQL text',
        'Write `$name` in the SQL and give the value under `params: { name: "${{ … }}" }`: it is bound, never spliced.',
      );
    }
    if (task.engine === 'postgres') {
      if (task.mount === undefined) {
        issue(
          ['engine'],
          'is postgres, which needs the mount whose database runs the SQL',
          'Add `mount: <postgres mount>`.',
        );
      }
      for (const [name, input] of Object.entries(task.inputs ?? {})) {
        if (typeof input === 'string' || 'task' in input) {
          issue(
            ['inputs', name],
            'is not a query or a table of the database, which is all SQL run by PostgreSQL can see',
            'Use `{ query: …, mount: … }` or `{ table: …, mount: … }` of the same mount, or run the task with the default engine (duckdb).',
          );
        } else if (task.mount !== undefined && input.mount !== task.mount) {
          issue(
            ['inputs', name, 'mount'],
            `is ${input.mount}, but the SQL runs on the database of mount ${task.mount}`,
            `Use mount ${task.mount}, or run the task with the default engine (duckdb), which joins any mounts.`,
          );
        }
      }
    } else if (task.mount !== undefined) {
      issue(['mount'], 'applies only with engine: postgres', 'Remove mount, or add `engine: postgres`.');
    }
    const output = task.output;
    if (!output) return;
    const table = output.mode !== undefined || output.key !== undefined || !namesFile(output.to);
    if (!table) {
      if (sqlFileFormat(output.to) === undefined) {
        issue(
          ['output', 'to'],
          `names a file of an unknown format: ${output.to}`,
          `End the path with one of .${SQL_FILE_FORMATS.join(', .')}, or name a table (a key without extension) of a postgres mount.`,
        );
      }
      return;
    }
    if (namesFile(output.to)) {
      issue(
        ['output', 'to'],
        'names a file, but mode and key apply to a table of a postgres mount',
        'Name a table (a key without extension), or remove mode and key to write a file.',
      );
    }
    if (output.mode === 'merge' && output.key === undefined) {
      issue(
        ['output', 'mode'],
        'is merge, which needs key: the columns that identify a row',
        'Add `key: [<column>, …]` to output.',
      );
    }
    if (output.key !== undefined && output.mode !== 'merge') {
      issue(['output', 'key'], 'applies only to mode merge', 'Set `mode: merge`, or remove key.');
    }
  });

export type SqlTaskFile = z.input<typeof SqlTaskSchema>;
export type ParsedSqlTask = z.output<typeof SqlTaskSchema>;
export type SqlInput = z.output<typeof SqlInputSchema>;
export type SqlOutput = z.output<typeof SqlOutputSchema>;
