/**
 * The schema of the task keys that shape a flow rather than run something: `map`,
 * `choice`, `race`, the object form of `trigger_rule`, `on_failure`, and the bodies the
 * engine carries out itself (`sleep`, `wait_until`, `wait_for_event`, `approval`,
 * `subflow`) plus `run`, a shell command line. Each body form turns its parsed keys into
 * the normalized `config` of its kind here, so that the loader only picks the form.
 *
 * Counts and references (at least one rule, two branches, k against the upstream tasks)
 * are checked on the normalized structure (flow-structure.ts), for YAML and TypeScript
 * alike; these schemas check shapes only, so that no problem is reported twice.
 */
import { z } from 'zod';
import { TRIGGER_RULES, type TriggerRule } from '../core/states.js';
import { hasTemplate, parseTemplateString } from './expression.js';
import { readDuration } from '../core/duration.js';
import {
  NAME_RULE,
  durationIssue,
  durationMs,
  isValidName,
  positiveDurationSchema,
  positiveInt,
} from './flow-schema-parts.js';

/** Trigger rules written as a name; `k_of_n` needs its count and is written as an object. */
export const NAMED_TRIGGER_RULES = TRIGGER_RULES.filter((r) => r !== 'k_of_n') as Exclude<TriggerRule, 'k_of_n'>[];

export const NamedTriggerRuleSchema = z.enum(NAMED_TRIGGER_RULES as [string, ...string[]]);

export const QuorumFileSchema = z.strictObject({
  k_of_n: positiveInt,
  cancel_rest: z.boolean().optional(),
});

export const K_OF_N_HINT =
  'Write the object form with the count, e.g. `trigger_rule: { k_of_n: 2, cancel_rest: true }`.';

export const MAP_ITEM_FAILURE = ['fail', 'continue'] as const;
export const BRANCH_MODES = ['first', 'all'] as const;

export const MapFileSchema = z.strictObject({
  // Whether it is one expression is checked with the structure, for both front ends.
  over: z.string(),
  max_parallel: positiveInt.optional(),
  batch: positiveInt.optional(),
  on_item_failure: z.enum(MAP_ITEM_FAILURE).optional(),
});

export const ChoiceFileSchema = z.strictObject({
  mode: z.enum(BRANCH_MODES).optional(),
  rules: z.array(z.strictObject({ when: z.string(), then: z.array(z.string()) })).optional(),
  otherwise: z.array(z.string()).optional(),
});

export const RaceFileSchema = z.strictObject({
  branches: z.array(z.string()),
  mode: z.enum(BRANCH_MODES).optional(),
  priority: z.array(z.string()).optional(),
});

/** Keys a handler (`on_failure:`) takes besides those of a task body. */
export const HandlerKeysSchema = z.strictObject({
  recover: z.boolean().optional(),
  on: z.array(z.string().min(1)).optional(),
  id: z.string().optional(),
});

export type ParsedMap = z.output<typeof MapFileSchema>;
export type ParsedChoice = z.output<typeof ChoiceFileSchema>;
export type ParsedRace = z.output<typeof RaceFileSchema>;
export type ParsedQuorum = z.output<typeof QuorumFileSchema>;
export type ParsedHandlerKeys = z.output<typeof HandlerKeysSchema>;

/** True for a string that is exactly one `${{ }}` (parse errors are reported by the expression checks). */
export function isSingleExpression(value: string): boolean {
  if (!hasTemplate(value)) return false;
  try {
    return parseTemplateString(value).raw;
  } catch {
    return true;
  }
}

const expressionOr = (error: string) =>
  z.custom<string>((v) => typeof v === 'string' && isSingleExpression(v), { error });

const SLEEP_RULE = 'must be a duration like 10m, 2h, 1d, or one ${{ }} expression that yields milliseconds';
const UNTIL_RULE =
  'must be an instant: an ISO 8601 date-time such as 2024-06-01T12:00:00Z, epoch milliseconds, or one ${{ }} expression';
const EVENT_RULE = 'must be an event name: letters, digits, _ . and -';

/**
 * `sleep:` a duration (to ms; 0 goes on at once) or one expression kept as written, whose
 * value is bounded the same way when it renders. Not a union, so that a duration over the
 * limit is reported as such rather than as neither form.
 */
const SleepSchema = z
  .custom<string | number>((v) => typeof v === 'string' || typeof v === 'number', { error: SLEEP_RULE })
  .transform((v, ctx) => {
    if (typeof v === 'string' && isSingleExpression(v)) return v;
    const read = readDuration(v, 'non_negative', { wholeNumbers: true });
    if (read.ok) return read.ms;
    ctx.addIssue(durationIssue(read, v, SLEEP_RULE));
    return z.NEVER;
  });

const instantText = z.custom<string>((v) => typeof v === 'string' && !hasTemplate(v) && !Number.isNaN(Date.parse(v)), {
  error: UNTIL_RULE,
});
const epochMs = z.custom<number>((v) => typeof v === 'number' && Number.isInteger(v) && v >= 0, {
  error: UNTIL_RULE,
});
const UntilSchema = z.union([expressionOr(UNTIL_RULE), instantText, epochMs], { error: UNTIL_RULE });

const WaitForEventSchema = z.strictObject({
  event: z.string().regex(/^[A-Za-z0-9_.-]+$/, { error: EVENT_RULE }),
  match: z.string().optional(),
  timeout: positiveDurationSchema.optional(),
});

const ApprovalSchema = z
  .strictObject({
    message: z.string().optional(),
    timeout: positiveDurationSchema.optional(),
    approvers: z.array(z.string().min(1)).optional(),
  })
  .nullable();

/** What a flow file's path ends with, or holds: a subflow names a flow, not its file. */
const FILE_LIKE = /[/\\]|\.(ya?ml|json|[cm]?[jt]s)$/i;

/** A subflow's `flow`: the name of a flow (whether the project has it is checked once loaded). */
const SubflowFlowSchema = z
  .string()
  .refine((value) => !FILE_LIKE.test(value), {
    error: 'must be the name of a flow of the project (the `name:` it declares), not a file path',
    abort: true,
  })
  .refine(isValidName, { error: NAME_RULE });

const SubflowSchema = z.strictObject({
  flow: SubflowFlowSchema,
  // A number would lose digits of a hash (`1e5`), so only text is taken.
  version: z.string({ error: 'must be a string: quote the version, e.g. "3f2a9c"' }).min(1).optional(),
  params: z.record(z.string(), z.unknown()).optional(),
});

const RunSchema = z.strictObject({
  run: z.string().refine((v) => v.trim() !== '', { error: 'must be a command line' }),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().min(1).optional(),
});

/**
 * A task body written under its own key. `keys` are the task keys the body owns (its key
 * first); `toConfig` turns the parsed keys into the kind's normalized config (and `with`,
 * for a subflow's params); `templated` are the paths, relative to the task, that hold
 * `${{ }}` templates.
 */
export interface BodyForm {
  readonly key: string;
  readonly kind: string;
  readonly keys: readonly string[];
  readonly schema: z.ZodType;
  /** Example shown in hints, e.g. `sleep: 10m`. */
  readonly example: string;
  toConfig(parsed: Record<string, unknown>): { config: Record<string, unknown>; with?: Record<string, unknown> };
  templated(task: Record<string, unknown>): readonly (readonly (string | number)[])[];
}

const orNull = <T>(value: T | undefined): T | null => (value === undefined ? null : value);

/** The value of `key` parsed alone, as `schema` sees it. */
function single(key: string, schema: z.ZodType): z.ZodObject {
  return z.object({ [key]: schema });
}

export const BODY_FORMS: ReadonlyMap<string, BodyForm> = new Map<string, BodyForm>(
  (
    [
      {
        key: 'run',
        kind: 'shell',
        keys: ['run', 'env', 'cwd'],
        schema: RunSchema,
        example: 'run: ./load.sh',
        toConfig: (p) => ({
          config: {
            command: p.run,
            // A command line runs through /bin/sh, as a string `command` with `shell: true` does.
            shell: true,
            ...(p.env !== undefined ? { env: p.env } : {}),
            ...(p.cwd !== undefined ? { cwd: p.cwd } : {}),
          },
        }),
        templated: () => [['run'], ['env']],
      },
      {
        key: 'sleep',
        kind: 'sleep',
        keys: ['sleep'],
        schema: single('sleep', SleepSchema),
        example: 'sleep: 10m',
        toConfig: (p) => ({ config: { duration: p.sleep } }),
        templated: () => [['sleep']],
      },
      {
        key: 'wait_until',
        kind: 'wait_until',
        keys: ['wait_until'],
        schema: single('wait_until', UntilSchema),
        example: 'wait_until: "${{ params.release_at }}"',
        toConfig: (p) => ({ config: { until: p.wait_until } }),
        templated: () => [['wait_until']],
      },
      {
        key: 'wait_for_event',
        kind: 'wait_for_event',
        keys: ['wait_for_event'],
        schema: single('wait_for_event', WaitForEventSchema),
        example: 'wait_for_event: { event: payment_received }',
        toConfig: (p) => {
          const w = p.wait_for_event as z.output<typeof WaitForEventSchema>;
          return { config: { event: w.event, match: orNull(w.match), timeoutMs: orNull(w.timeout) } };
        },
        templated: () => [['wait_for_event', 'match']],
      },
      {
        key: 'approval',
        kind: 'approval',
        keys: ['approval'],
        schema: single('approval', ApprovalSchema),
        example: 'approval: { message: "Ship it?" }',
        toConfig: (p) => {
          const a = (p.approval ?? {}) as NonNullable<z.output<typeof ApprovalSchema>>;
          return {
            config: { message: orNull(a.message), timeoutMs: orNull(a.timeout), approvers: a.approvers ?? [] },
          };
        },
        templated: () => [['approval', 'message']],
      },
      {
        key: 'subflow',
        kind: 'subflow',
        keys: ['subflow'],
        schema: single('subflow', SubflowSchema),
        example: 'subflow: { flow: load_region }',
        toConfig: (p) => {
          const s = p.subflow as z.output<typeof SubflowSchema>;
          return { config: { flow: s.flow, version: orNull(s.version) }, with: s.params ?? {} };
        },
        templated: () => [['subflow', 'params']],
      },
    ] satisfies BodyForm[]
  ).map((form) => [form.key, form]),
);

/** How each kind that is written with a key of its own is written, for "remove kind" hints. */
export const KEYED_KINDS: Readonly<Record<string, string>> = {
  ...Object.fromEntries([...BODY_FORMS.values()].filter((f) => f.key !== 'run').map((f) => [f.kind, f.example])),
  map: 'map: { over: "${{ … }}" } beside the task body',
  choice: 'choice: { rules: [{ when: "${{ … }}", then: [task] }] }',
  race: 'race: { branches: [a, b] }',
};

/** Reads a written sleep duration as the model keeps it: ms, or the expression text. */
export function sleepDuration(value: string | number): number | string | undefined {
  if (typeof value === 'string' && isSingleExpression(value)) return value;
  return durationMs(value);
}
