/**
 * The schema of baton.yaml (config.ts says what each key means), and its parsing with the
 * flow loader's positions and wording: every problem names file, line, column and key
 * path, an unknown key gets "did you mean", and all problems are reported at once. Kept
 * apart so that the YAML parser and the schema library load only when the file exists.
 */
import { z } from 'zod';
import { PROBLEMS_LIMIT, type Problem } from '../core/errors.js';
import { LIMITS } from '../core/limits.js';
import { parseYaml, toPlain, yamlLimitMessage } from '../define/yaml-document.js';
import { durationSchema, intRange, parseWith } from '../define/flow-schema.js';
import { positiveDurationSchema, positiveInt } from '../define/flow-schema-parts.js';
import { Reporter } from '../define/load-yaml.js';
import { BYTE_SIZE_FORMS, parseByteSize } from '../core/byte-size.js';
import { MOUNT_NAME } from '../core/data-path.js';
import { INTERNAL_MOUNT } from '../data/mount.js';

/** A duration (`10s`, or whole ms) from 1 ms to `max` ms: a zero timeout would mean none. */
function durationUpTo(max: number) {
  const error = `must be a duration from 1ms to ${max / 1000}s, like 10s or 1500`;
  return durationSchema.refine((ms) => ms >= 1 && ms <= max, { error });
}

/** A size in bytes: a number, or a string with a unit (core/byte-size.ts). */
const byteSizeSchema = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const bytes = parseByteSize(value);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `must be ${BYTE_SIZE_FORMS}` });
    return z.NEVER;
  }
  return bytes;
});

/** The name of an environment variable (credentials and URLs are read from the environment, never from baton.yaml). */
const envNameSchema = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be the name of an environment variable, like WAREHOUSE_URL' });

const httpUrlSchema = z.string().refine(
  (text) => {
    try {
      const url = new URL(text);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      return false;
    }
  },
  { error: 'must be an http:// or https:// URL' },
);

const mountSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('local'), path: z.string().min(1, { error: 'must name a folder' }) }),
  z.strictObject({
    kind: z.literal('s3'),
    bucket: z.string().min(3, { error: 'must be a bucket name (3 to 63 characters)' }).max(63),
    prefix: z
      .string()
      .refine((p) => !p.startsWith('/') && !p.endsWith('/') && !p.split('/').some((s) => s === '..' || s === '.'), {
        error: 'must be a key prefix without a leading or trailing / and without . or .. segments',
      })
      .optional(),
    endpoint: httpUrlSchema.optional(),
    region: z.string().min(1).optional(),
    path_style: z.boolean().optional(),
    access_key_id_env: envNameSchema.optional(),
    secret_access_key_env: envNameSchema.optional(),
    ttl: durationSchema.optional(),
  }),
  z.strictObject({
    kind: z.literal('http'),
    url: httpUrlSchema,
    headers_env: z.record(z.string().min(1), envNameSchema).optional(),
    ttl: durationSchema.optional(),
  }),
  z.strictObject({
    kind: z.literal('postgres'),
    url_env: envNameSchema,
    schema: z.string().min(1).optional(),
    queries: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/), z.string().min(1)).optional(),
  }),
]);

export const ConfigFileSchema = z.strictObject({
  database: z.string().optional(),
  concurrency: intRange(1, LIMITS.concurrency.max).optional(),
  pool_size: intRange(1, 1000).optional(),
  pools: z.record(z.string(), positiveInt).optional(),
  lease: positiveDurationSchema.optional(),
  kill_grace: durationSchema.optional(),
  limits: z
    .strictObject({
      output_bytes: intRange(1, LIMITS.output_bytes.max).optional(),
      payload_bytes: intRange(1, LIMITS.payload_bytes.max).optional(),
      params_bytes: intRange(1, LIMITS.params_bytes.max).optional(),
      log_bytes: intRange(1, LIMITS.log_bytes.max).optional(),
      // Below 1 KiB a truncation marker would not fit beside what it marks.
      log_line_bytes: intRange(1024, LIMITS.log_line_bytes.max).optional(),
      error_bytes: intRange(1024, LIMITS.error_bytes.max).optional(),
      subflow_depth: intRange(1, LIMITS.subflow_depth.max).optional(),
      child_runs_per_run: intRange(1, LIMITS.child_runs_per_run.max).optional(),
      http_body_bytes: intRange(1, LIMITS.http_body_bytes.max).optional(),
      http_header_timeout_ms: durationUpTo(LIMITS.http_header_timeout_ms.max).optional(),
      http_body_timeout_ms: durationUpTo(LIMITS.http_body_timeout_ms.max).optional(),
      http_idle_timeout_ms: durationUpTo(LIMITS.http_idle_timeout_ms.max).optional(),
      http_connections: intRange(1, LIMITS.http_connections.max).optional(),
    })
    .optional(),
  data: z
    .strictObject({
      mounts: z
        .record(
          z
            .string()
            .regex(MOUNT_NAME, { error: 'a mount name starts with a letter and has only letters, digits, _ and -' })
            .refine((name) => name !== INTERNAL_MOUNT, {
              error: `the mount name ${INTERNAL_MOUNT} is Baton's own (its folder .baton/data); choose another`,
            }),
          mountSchema,
        )
        .optional(),
      payloads: z
        .string()
        .refine((text) => text.startsWith('data://'), { error: 'must be a data:// folder, like data://lake/_payloads' })
        .optional(),
      cache: z.strictObject({ dir: z.string().min(1).optional(), max_size: byteSizeSchema.optional() }).optional(),
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
  // The flow loader's parser: nesting and aliases bounded, duplicate keys found in linear time.
  const parsed0 = parseYaml(text);
  const { lines } = parsed0;
  const at = (offset: number) => {
    const pos = lines.linePos(offset);
    return { file, line: pos.line, column: pos.col };
  };
  if (parsed0.over || !parsed0.doc) {
    const over = parsed0.over;
    const { message, hint } = over
      ? yamlLimitMessage(over)
      : { message: 'the document could not be read', hint: 'Fix the YAML syntax.' };
    return {
      ok: false,
      problems: [{ code: 'CONFIG_INVALID', message, hint, ...(over ? { location: at(over.offset) } : {}) }],
    };
  }
  const report = new Reporter(file, parsed0.doc, lines);
  for (const duplicate of parsed0.duplicates) {
    report.add('CONFIG_INVALID', duplicate.path, 'duplicate key', 'Remove one of the two keys.', 'key');
  }
  for (const error of parsed0.errors) {
    // The library's message ends with " at line N, column M:" and a code frame; the position is ours.
    const what = error.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? error.message;
    report.problems.push({
      code: 'CONFIG_INVALID',
      message: `YAML syntax error: ${what}`,
      hint: 'Fix the YAML syntax at this position.',
      location: at(error.offset),
    });
  }
  // After a syntax error the tree is a guess; schema messages about it would mislead.
  if (parsed0.errors.length > 0) return { ok: false, problems: report.sorted() };
  const raw: unknown = toPlain(parsed0) ?? {};
  const parsed = parseWith(ConfigFileSchema, raw, [], 'baton.yaml');
  // Located one by one: only as many as an error lists (a file of 200,000 unknown keys).
  if (!parsed.ok) report.addAll(parsed.problems.slice(0, PROBLEMS_LIMIT), 'CONFIG_INVALID');
  if (report.problems.length > 0 || !parsed.ok) return { ok: false, problems: report.sorted() };
  return { ok: true, data: parsed.data };
}
