/**
 * The schema of baton.yaml (config.ts says what each key means), and its parsing with the
 * flow loader's positions and wording: every problem names file, line, column and key
 * path, an unknown key gets "did you mean", and all problems are reported at once. Kept
 * apart so that the YAML parser and the schema library load only when the file exists.
 */
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import type { Problem } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import { durationSchema, intRange, parseWith } from '../define/flow-schema.js';
import { positiveInt } from '../define/flow-schema-parts.js';
import { Reporter } from '../define/load-yaml.js';

export const ConfigFileSchema = z.strictObject({
  database: z.string().optional(),
  concurrency: intRange(1, 10_000).optional(),
  pool_size: intRange(1, 1000).optional(),
  pools: z.record(z.string(), positiveInt).optional(),
  lease: durationSchema.optional(),
  kill_grace: durationSchema.optional(),
  limits: z
    .strictObject({
      output_bytes: intRange(1, LIMITS.output_bytes.max).optional(),
      params_bytes: intRange(1, LIMITS.params_bytes.max).optional(),
      log_bytes: intRange(1, LIMITS.log_bytes.max).optional(),
    })
    .optional(),
});

export type ConfigFile = z.output<typeof ConfigFileSchema>;

export type ConfigParse =
  { readonly ok: true; readonly data: ConfigFile } | { readonly ok: false; readonly problems: readonly Problem[] };

/**
 * Parses the text of baton.yaml; `file` is the path named in problems. An empty file is
 * an empty configuration.
 * Example: `parseConfigText('concurency: 4\n', 'baton.yaml')` → one problem at 1:1,
 * `concurency: unknown key (did you mean "concurrency"?)`.
 */
export function parseConfigText(text: string, file: string): ConfigParse {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  const report = new Reporter(file, doc, lines);
  let syntax = false;
  for (const error of doc.errors) {
    const path = error.code === 'DUPLICATE_KEY' ? report.pathOfKeyAt(error.pos[0]) : undefined;
    if (path) {
      report.add('CONFIG_INVALID', path, 'duplicate key', 'Remove one of the two keys.', 'key');
      continue;
    }
    syntax = true;
    const pos = lines.linePos(error.pos[0]);
    // The library's message ends with " at line N, column M:" and a code frame; the position is ours.
    const what = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? error.message;
    report.problems.push({
      code: 'CONFIG_INVALID',
      message: `YAML syntax error: ${what}`,
      hint: 'Fix the YAML syntax at this position.',
      location: { file, line: pos.line, column: pos.col },
    });
  }
  // After a syntax error the tree is a guess; schema messages about it would mislead.
  if (syntax) return { ok: false, problems: report.sorted() };
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (error) {
    report.add('CONFIG_INVALID', [], `cannot read the document: ${(error as Error).message}`, 'Simplify it.');
    return { ok: false, problems: report.sorted() };
  }
  const parsed = parseWith(ConfigFileSchema, raw, [], 'baton.yaml');
  if (!parsed.ok) report.addAll(parsed.problems, 'CONFIG_INVALID');
  if (report.problems.length > 0 || !parsed.ok) return { ok: false, problems: report.sorted() };
  return { ok: true, data: parsed.data };
}
