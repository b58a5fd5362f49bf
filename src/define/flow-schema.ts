/**
 * The schema of a flow file (YAML or JSON), in zod. It owns the raw shape users write —
 * snake_case keys, durations as text — and the TypeScript types of that shape, which are
 * inferred from the schemas here and written nowhere else. It also turns zod issues into
 * plain problems (path, message, hint) so that every message reads the same way.
 *
 * Tasks are checked one by one (task-check.ts) against the keys every task has
 * (`TaskBaseSchema`) and the keys of its kind (`TASK_KIND_SCHEMAS`, one entry per kind).
 * Kinds added later register an entry; the loader then accepts their keys and puts them,
 * camelCased, in `config`. Checks that span several keys or tasks, and positions in the
 * source, are the loader's (load-yaml.ts) and the structure's (flow-structure.ts).
 */
import { z } from 'zod';
import type { ErrorCode } from '../core/errors.js';
import { OVERLAP_POLICIES } from '../core/trigger-spec.js';
import { DATA_SCHEME, parseDataPath } from '../core/data-path.js';
import {
  DURATION_FORMS,
  checkName,
  durationSchema,
  intRange,
  nameSchema,
  positiveDurationSchema,
  positiveInt,
} from './flow-schema-parts.js';
import { ConsumesSchema, ProducesSchema } from './asset-schema.js';
import { TRIGGER_KINDS, TriggerFileSchema } from './trigger-schema.js';
import { SqlTaskSchema } from './sql-schema.js';
import { suggest } from './suggest.js';

/** A key path into the raw document, e.g. `['tasks', 'extract', 'depends_on', 0]`. */
export type KeyPath = readonly (string | number)[];

export {
  DURATION_FORMS,
  NAME_MAX_LENGTH,
  NAME_PATTERN,
  checkName,
  durationMs,
  durationSchema,
  intRange,
  isValidName,
  nameSchema,
  positiveDurationSchema,
} from './flow-schema-parts.js';
export const RetryFileSchema = z.strictObject({
  max_attempts: intRange(1, 100).optional(),
  backoff: durationSchema.optional(),
  max_backoff: durationSchema.optional(),
  jitter: z.enum(['full', 'none']).optional(),
  retry_on: z.array(z.string()).optional(),
  never_retry_on: z.array(z.string()).optional(),
  count_lost: z.boolean().optional(),
});

export const PARAM_TYPES = ['string', 'number', 'integer', 'boolean', 'object', 'array'] as const;

export const ParamFileSchema = z.strictObject({
  type: z.enum(PARAM_TYPES),
  // Any YAML value; whether it fits `type` is checked by checkParamSpec.
  default: z.unknown().optional(),
  enum: z.array(z.unknown()).min(1).optional(),
  description: z.string().optional(),
});

export const DefaultsFileSchema = z.strictObject({
  retry: RetryFileSchema.optional(),
  timeout: positiveDurationSchema.optional(),
  pool: z.string().min(1).optional(),
});

/**
 * Keys every task that runs something has, whatever its kind. `trigger_rule` (a name or
 * `{ k_of_n }`) and the keys that shape the flow (`group`, `map`, `on_failure`, …) are
 * checked with the task (task-check.ts). Unknown keys are found there too.
 */
export const TaskBaseSchema = z.object({
  kind: z.string(),
  description: z.string().optional(),
  depends_on: z.array(z.string()).optional(),
  retry: RetryFileSchema.optional(),
  timeout: positiveDurationSchema.optional(),
  pool: z.string().min(1).optional(),
  labels: z.array(z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'labels are letters, digits and _ . : -')).optional(),
  with: z.record(z.string(), z.unknown()).optional(),
  produces: ProducesSchema.optional(),
  consumes: ConsumesSchema.optional(),
  cache: z.literal('inputs', { error: 'must be `inputs` (reuse the output of a run that read the same)' }).optional(),
});

const COMMAND_RULE = 'must be a non-empty list of strings (argv), or a string when shell is set';

export const ShellTaskSchema = z
  .object({
    command: z.custom<readonly string[] | string>(
      (v) =>
        (Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string')) ||
        (typeof v === 'string' && v.trim() !== ''),
      { error: COMMAND_RULE },
    ),
    // true runs the string command with /bin/sh -c; a path names another shell.
    shell: z.union([z.boolean(), z.string().min(1)]).optional(),
    env: z.record(z.string(), z.string()).optional(),
    cwd: z.string().min(1).optional(),
  })
  .superRefine((task, ctx) => {
    const shell = task.shell !== undefined && task.shell !== false;
    if (typeof task.command === 'string' && !shell) {
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message: 'is a string, which runs through a shell, but shell is not set',
        params: {
          hint: 'Add `shell: true` (or a shell path such as /bin/bash), or write command as a list: ["sh", "-c", "..."].',
        },
      });
    } else if (Array.isArray(task.command) && shell) {
      ctx.addIssue({
        code: 'custom',
        path: ['shell'],
        message: 'applies only to a string command, but command is a list',
        params: { hint: 'Remove shell to run the list as argv, or write command as one string.' },
      });
    }
  });

const MODULE_PATTERN = /\.(ts|mts|js|mjs)$/;
const EXPORT_PATTERN = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export const FunctionTaskSchema = z.object({
  // Relative to the flow file; resolved by the executor, not here.
  module: z.string().regex(MODULE_PATTERN, { error: 'must be a path to a .ts, .mts, .js or .mjs file' }),
  export: z.string().regex(EXPORT_PATTERN, { error: 'must be a JavaScript identifier' }).default('default'),
});

export type RetryFile = z.input<typeof RetryFileSchema>;
export type ParamFile = z.input<typeof ParamFileSchema>;
export type DefaultsFile = z.input<typeof DefaultsFileSchema>;
export type TaskBaseFile = z.input<typeof TaskBaseSchema>;
export type ShellTaskFile = TaskBaseFile & z.input<typeof ShellTaskSchema> & { kind: 'shell' };
export type FunctionTaskFile = TaskBaseFile & z.input<typeof FunctionTaskSchema> & { kind: 'function' };
/** A task as written: the base keys, plus the keys of its kind (see ShellTaskFile, FunctionTaskFile). */
export type TaskFile = TaskBaseFile & Record<string, unknown>;
export type ParsedTaskBase = z.output<typeof TaskBaseSchema>;
export type ParsedRetry = z.output<typeof RetryFileSchema>;

/** One kind's keys, and which of them hold `${{ }}` templates checked like `with`. */
export interface TaskKindSchema {
  readonly keys: z.ZodObject;
  readonly templated: readonly string[];
}

/**
 * Kind-specific keys, one entry per kind. The loader accepts a task's keys if they are
 * in `TaskBaseSchema` or in its kind's entry; a key of another kind gets its own message.
 */
export const TASK_KIND_SCHEMAS = new Map<string, TaskKindSchema>([
  ['shell', { keys: ShellTaskSchema, templated: ['command', 'env'] }],
  ['function', { keys: FunctionTaskSchema, templated: [] }],
  // Only params hold templates: the SQL text never does (its values are bound).
  ['sql', { keys: SqlTaskSchema, templated: ['params'] }],
]);

/** Adds (or replaces) the keys of a task kind; `templated` keys get expression checks. */
export function registerTaskKindSchema(
  kind: string,
  keys: z.ZodObject,
  options: { templated?: readonly string[] } = {},
): void {
  TASK_KIND_SCHEMAS.set(kind, { keys, templated: options.templated ?? [] });
}

/** A data path to prefetch: checked whole unless a template makes part of it. */
function prefetchPathSchema() {
  return z.string().superRefine((text, ctx) => {
    if (!text.startsWith(DATA_SCHEME)) {
      ctx.addIssue({ code: 'custom', message: `must be a data path (${DATA_SCHEME}<mount>/<key>)` });
      return;
    }
    if (text.includes('${{')) return;
    try {
      parseDataPath(text);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
    }
  });
}

export const FlowFileSchema = z.strictObject({
  name: nameSchema,
  description: z.string().optional(),
  params: z.record(z.string(), ParamFileSchema).optional(),
  defaults: DefaultsFileSchema.optional(),
  timeout: positiveDurationSchema.optional(),
  max_active_runs: positiveInt.optional(),
  overlap: z.enum(OVERLAP_POLICIES).optional(),
  prefetch: z.array(prefetchPathSchema()).optional(),
  triggers: z.record(nameSchema, TriggerFileSchema).optional(),
  pools: z.record(z.string(), positiveInt).optional(),
  groups: z.record(z.string(), z.strictObject({ description: z.string().optional() }).nullable()).optional(),
  // Each task is checked on its own (task-check.ts), so tasks pass through here untouched.
  tasks: z.custom<Record<string, TaskFile> | TaskFile[]>((v) => isRecord(v) || Array.isArray(v), {
    error: 'must be a map from task id to task, or a list of tasks with id',
  }),
});

/** A flow file as written. */
export type FlowFile = z.input<typeof FlowFileSchema>;
/** A flow file after the schema: durations in ms, defaults filled, tasks still raw. */
export type ParsedFlowFile = z.output<typeof FlowFileSchema>;

// --- issues → problems --------------------------------------------------------------

/** A problem found by a schema; `at` says which node the loader should point at. */
export interface SchemaProblem {
  /** DEF_INVALID unless set. */
  readonly code?: ErrorCode;
  readonly path: KeyPath;
  readonly message: string;
  readonly hint: string;
  /** `value`: the node at path; `key`: the key of the last segment; `parent`: the map that lacks the key. */
  readonly at: 'value' | 'key' | 'parent';
}

export type SafeParse<T> =
  { readonly ok: true; readonly data: T } | { readonly ok: false; readonly problems: SchemaProblem[] };

/** Formats a key path as users read it: `tasks.extract.depends_on[0]`. */
export function formatPath(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

/** A short rendering of a value for "got …" in messages. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return 'a map';
  return String(value);
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a map',
  record: 'a map',
};

/** The per-parse error map: a "must …" phrase for every issue a schema did not word itself. */
function mustPhrase(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${EXPECTED[issue.expected] ?? `a ${issue.expected}`}`;
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const small = issue.code === 'too_small';
      if (issue.origin === 'array') return `must list ${small ? 'at least' : 'at most'} ${bound} item(s)`;
      if (issue.origin === 'string')
        return small && bound === 1
          ? 'must not be empty'
          : `must be ${small ? 'at least' : 'at most'} ${bound} characters`;
      const strict = issue.inclusive === false;
      return `must be ${small ? (strict ? 'greater than' : 'at least') : strict ? 'less than' : 'at most'} ${bound}`;
    }
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return `must match ${issue.pattern ?? issue.format}`;
    case 'invalid_union':
      // A discriminated union (trigger `kind`) names the accepted values.
      if (issue.path?.[issue.path.length - 1] === 'kind') return `must be one of ${TRIGGER_KINDS.join(', ')}`;
      return 'has the wrong type';
    default:
      return 'is invalid';
  }
}

/** The raw value at a path, or undefined. */
export function valueAt(root: unknown, path: KeyPath): unknown {
  let cur = root;
  for (const part of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[part];
  }
  return cur;
}

/** The object schema a key path leads to, to list the keys it accepts. */
function schemaAt(schema: z.ZodType, path: KeyPath): z.ZodType | undefined {
  let cur: z.ZodType | undefined = schema;
  let i = 0;
  while (cur) {
    if (cur instanceof z.ZodOptional || cur instanceof z.ZodDefault || cur instanceof z.ZodNullable)
      cur = cur.unwrap() as z.ZodType;
    else if (cur instanceof z.ZodPipe) cur = cur.in as z.ZodType;
    else if (i === path.length) return cur;
    else if (cur instanceof z.ZodObject) cur = cur.shape[String(path[i++])] as z.ZodType | undefined;
    else if (cur instanceof z.ZodRecord || cur instanceof z.ZodArray) {
      cur = (cur instanceof z.ZodRecord ? cur.valueType : cur.element) as z.ZodType;
      i++;
    } else return undefined;
  }
  return undefined;
}

/** Keys of the object schema at a path (empty if it is not an object). */
export function keysAt(schema: z.ZodType, path: KeyPath): string[] {
  const s = schemaAt(schema, path);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/**
 * Parses `input` with `schema` and words every issue. `prefix` is where `input` sits in the
 * document; `owner` names what is being checked in "required" messages ("a shell task").
 */
export function parseWith<S extends z.ZodType>(
  schema: S,
  input: unknown,
  prefix: KeyPath = [],
  owner?: string,
): SafeParse<z.output<S>> {
  const result = schema.safeParse(input, { error: (issue) => mustPhrase(issue) });
  if (result.success) return { ok: true, data: result.data };
  const problems: SchemaProblem[] = [];
  // Not push(...): one issue may name 200,000 unknown keys, more arguments than a call takes.
  for (const issue of result.error.issues)
    for (const p of describeIssue(schema, input, issue, prefix, owner)) problems.push(p);
  return { ok: false, problems };
}

function describeIssue(
  schema: z.ZodType,
  input: unknown,
  issue: z.core.$ZodIssue,
  prefix: KeyPath,
  owner: string | undefined,
): SchemaProblem[] {
  const rel = issue.path as KeyPath;
  const path = [...prefix, ...rel];
  if (issue.code === 'unrecognized_keys') {
    const accepted = keysAt(schema, rel);
    return issue.keys.map((key) => unknownKeyProblem([...path, key], accepted));
  }
  const raw = valueAt(input, rel);
  const key = String(rel[rel.length - 1] ?? '');
  const parent = valueAt(input, rel.slice(0, -1));
  if (raw === undefined && rel.length > 0 && parent !== null && typeof parent === 'object' && !(key in parent)) {
    return [
      {
        path,
        message: `required${owner ? ` for ${owner}` : ''} but missing`,
        hint: `Add \`${key}\` to ${formatPath(path.slice(0, -1)) || 'the top level'}.`,
        at: 'parent',
      },
    ];
  }
  const params = (issue as { params?: { hint?: unknown } }).params;
  if (issue.code === 'custom' && typeof params?.hint === 'string') {
    return [{ path, message: issue.message, hint: params.hint, at: 'value' }];
  }
  if (issue.code === 'invalid_value') {
    const accepted = issue.values.map(String);
    const guess = typeof raw === 'string' ? suggest(raw, accepted) : undefined;
    return [
      {
        path,
        message: `${issue.message}, got ${show(raw)}${guess ? ` (did you mean "${guess}"?)` : ''}`,
        hint: `Use one of: ${accepted.join(', ')}.`,
        at: 'value',
      },
    ];
  }
  const hint = issue.message.startsWith('must be a duration')
    ? `Write a duration such as ${DURATION_FORMS}.`
    : issue.message.startsWith('must be ')
      ? `Write ${issue.message.slice('must be '.length)} here.`
      : `Fix the value: it ${issue.message}.`;
  return [{ path, message: `${issue.message}, got ${show(raw)}`, hint, at: 'value' }];
}

/** "unknown key (did you mean …?)" for a key not in `accepted`. */
export function unknownKeyProblem(path: KeyPath, accepted: readonly string[]): SchemaProblem {
  const key = String(path[path.length - 1]);
  const guess = suggest(key, accepted);
  return {
    path,
    message: `unknown key${guess ? ` (did you mean "${guess}"?)` : ''}`,
    hint: guess
      ? `Rename it to "${guess}", or remove it.`
      : `Remove it; keys accepted here: ${accepted.join(', ') || '(none)'}.`,
    at: 'key',
  };
}

// --- names -------------------------------------------------------------------------

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function problem(
  path: KeyPath,
  message: string,
  hint: string,
  at: SchemaProblem['at'] = 'value',
): SchemaProblem {
  return { path, message, hint, at };
}

/** Names used as keys: params and pools (task ids are checked with their tasks). */
export function checkNames(raw: Record<string, unknown>): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  for (const [section, noun] of [
    ['params', 'param'],
    ['pools', 'pool'],
  ] as const) {
    const map = raw[section];
    if (!isRecord(map)) continue;
    for (const name of Object.keys(map)) {
      const bad = checkName(name);
      if (bad) problems.push(problem([section, name], `${noun} name ${bad}`, `Rename the ${noun}.`, 'key'));
    }
  }
  return problems;
}
