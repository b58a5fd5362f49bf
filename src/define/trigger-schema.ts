/**
 * The `triggers:` map of a flow file: one entry per trigger, its `kind` choosing which keys
 * it takes. Normalization turns an entry into a TriggerSpec: camelCase config, durations
 * in ms, instants in ms, defaults filled.
 */
import { Cron } from 'croner';
import { z } from 'zod';
import type { ParamSpec } from '../core/model.js';
import type { TriggerSpec } from '../core/trigger-spec.js';
import { ASSET_KEY_PATTERN } from '../core/asset-spec.js';
import { ASSET_WAIT_POLICIES, CATCHUP_POLICIES } from '../core/trigger-spec.js';
import { durationSchema, intRange, nameSchema, positiveDurationSchema } from './flow-schema-parts.js';

const instant = z
  .string()
  .refine((v) => !Number.isNaN(Date.parse(v)), {
    error: 'must be an ISO 8601 date or instant, e.g. 2024-01-01T00:00:00Z',
  })
  .transform((v) => Date.parse(v));

const zone = z.string().refine(
  (v) => {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: v });
      return true;
    } catch {
      return false;
    }
  },
  { error: 'must be an IANA time zone such as UTC, Europe/Berlin or America/New_York' },
);

const cronExpression = z.string().superRefine((v, ctx) => {
  let next: Date | null;
  try {
    next = new Cron(v, { paused: true }).nextRun(new Date(0));
  } catch {
    ctx.addIssue({
      code: 'custom',
      message:
        'must be a cron expression: 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first, e.g. "0 2 * * *"',
    });
    return;
  }
  if (next === null) {
    ctx.addIssue({
      code: 'custom',
      message: 'never fires: no date matches it (e.g. day 31 of a month that has 30 days)',
    });
  }
});

const params = z.record(z.string(), z.unknown());

const time = {
  catchup: z.enum(CATCHUP_POLICIES).optional(),
  max_catchup: intRange(1, 10_000).optional(),
  start: instant.optional(),
  end: instant.optional(),
  jitter: durationSchema.optional(),
  deadline: positiveDurationSchema.optional(),
  params: params.optional(),
};

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name' });

const assetKey = z.string().regex(ASSET_KEY_PATTERN, {
  error: 'must be an asset key: letters, digits and _ - . / (starting with a letter, digit or _)',
});

export const TriggerFileSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('cron'), cron: cronExpression, timezone: zone.optional(), ...time }),
  z.strictObject({ kind: z.literal('interval'), every: positiveDurationSchema, ...time }),
  z.strictObject({ kind: z.literal('webhook'), secret_env: envName.optional(), params: params.optional() }),
  z.strictObject({
    kind: z.literal('file'),
    path: z.string().min(1),
    glob: z.string().min(1).optional(),
    move_to: z.string().min(1).optional(),
    identity: z.enum(['mtime', 'hash']).optional(),
    poll: positiveDurationSchema.optional(),
    params: params.optional(),
  }),
  z.strictObject({
    kind: z.literal('s3'),
    bucket: z.string().min(3),
    prefix: z.string().optional(),
    endpoint: z.string().url().optional(),
    region: z.string().optional(),
    force_path_style: z.boolean().optional(),
    access_key_id_env: envName.optional(),
    secret_access_key_env: envName.optional(),
    poll: positiveDurationSchema.optional(),
    params: params.optional(),
  }),
  z.strictObject({
    kind: z.literal('nats'),
    url: z.string().optional(),
    stream: z.string().min(1),
    subject: z.string().min(1).optional(),
    durable: z.string().min(1),
    batch: intRange(1, 10_000).optional(),
    params: params.optional(),
  }),
  z.strictObject({
    kind: z.literal('redis'),
    url: z.string().optional(),
    stream: z.string().min(1),
    group: z.string().min(1),
    batch: intRange(1, 10_000).optional(),
    params: params.optional(),
  }),
  z.strictObject({
    kind: z.literal('rabbitmq'),
    url: z.string().optional(),
    queue: z.string().min(1),
    batch: intRange(1, 10_000).optional(),
    params: params.optional(),
  }),
  z.strictObject({
    kind: z.literal('flow'),
    flow: nameSchema,
    states: z
      .array(z.enum(['succeeded', 'failed', 'cancelled']))
      .min(1)
      .optional(),
    params: params.optional(),
  }),
  z.strictObject({
    kind: z.literal('asset'),
    assets: z
      .array(assetKey)
      .min(1, { error: 'must list at least one asset key, e.g. assets: [orders_clean]' })
      .refine((keys) => new Set(keys).size === keys.length, { error: 'must not list an asset twice' }),
    wait_for: z.enum(ASSET_WAIT_POLICIES).optional(),
    min_interval: durationSchema.optional(),
    poll: positiveDurationSchema.optional(),
    params: params.optional(),
  }),
]);

export type TriggerFile = z.output<typeof TriggerFileSchema>;

export const TRIGGER_KINDS = [
  'cron',
  'interval',
  'webhook',
  'file',
  's3',
  'nats',
  'redis',
  'rabbitmq',
  'flow',
  'asset',
] as const;

function camel(key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A parsed trigger entry as a TriggerSpec, with defaults filled. */
export function normalizeTrigger(name: string, t: TriggerFile): TriggerSpec {
  const { kind, params: given, ...rest } = t;
  const config: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(rest)) {
    if (value !== undefined) config[camel(key)] = value;
  }
  if (kind === 'cron' || kind === 'interval') {
    const { every, start, end, jitter, deadline, ...others } = config;
    return {
      name,
      kind,
      params: given ?? {},
      config: {
        ...others,
        ...(kind === 'cron' ? { timezone: config.timezone ?? 'UTC' } : { everyMs: every }),
        catchup: config.catchup ?? 'latest',
        maxCatchup: config.maxCatchup ?? 100,
        startAt: start ?? null,
        endAt: end ?? null,
        jitterMs: jitter ?? 0,
        deadlineMs: deadline ?? null,
      },
    };
  }
  if (kind === 'asset') {
    const { minInterval, poll, ...others } = config;
    return {
      name,
      kind,
      params: given ?? {},
      config: { ...others, waitFor: config.waitFor ?? 'all', minIntervalMs: minInterval ?? 0, pollMs: poll ?? 1000 },
    };
  }
  if (kind === 'flow')
    return { name, kind, params: given ?? {}, config: { ...config, states: config.states ?? ['succeeded'] } };
  return { name, kind, params: given ?? {}, config };
}

/**
 * Params that triggers of a flow fill in, declared for the flow when it has such triggers
 * (unless it declares them itself): the data interval of time triggers, the file of file
 * triggers, the object of s3 triggers, the message of stream triggers, the upstream run of
 * flow triggers, the asset versions of asset triggers.
 */
export const TRIGGER_PARAMS: Readonly<Record<string, Readonly<Record<string, ParamSpec>>>> = {
  cron: {
    interval_start: {
      type: 'string',
      default: '',
      description: 'start of the data interval (ISO 8601), set by schedules',
    },
    interval_end: { type: 'string', default: '', description: 'end of the data interval (ISO 8601), set by schedules' },
  },
  interval: {
    interval_start: {
      type: 'string',
      default: '',
      description: 'start of the data interval (ISO 8601), set by schedules',
    },
    interval_end: { type: 'string', default: '', description: 'end of the data interval (ISO 8601), set by schedules' },
  },
  file: { file: { type: 'string', default: '', description: 'path of the file that arrived' } },
  s3: {
    bucket: { type: 'string', default: '', description: 'bucket of the object that arrived' },
    key: { type: 'string', default: '', description: 'key of the object that arrived' },
    etag: { type: 'string', default: '', description: 'ETag of the object that arrived' },
  },
  nats: { messages: { type: 'array', default: [], description: 'the stream messages this run handles' } },
  redis: { messages: { type: 'array', default: [], description: 'the stream messages this run handles' } },
  rabbitmq: { messages: { type: 'array', default: [], description: 'the queue messages this run handles' } },
  flow: {
    upstream_run: { type: 'string', default: '', description: 'id of the run whose end triggered this one' },
    upstream_outputs: { type: 'object', default: {}, description: 'outputs of the upstream run, by task id' },
  },
  asset: {
    upstream_assets: {
      type: 'object',
      default: {},
      description: 'the asset versions that started this run, by key: { version, materialized_at, run_id }',
    },
  },
};

/** The flow's params plus those its triggers fill in. */
export function withTriggerParams(
  params: Readonly<Record<string, ParamSpec>>,
  triggers: readonly TriggerSpec[],
): Record<string, ParamSpec> {
  const out: Record<string, ParamSpec> = { ...params };
  for (const t of triggers) {
    for (const [name, spec] of Object.entries(TRIGGER_PARAMS[t.kind] ?? {})) {
      if (!(name in out)) out[name] = spec;
    }
  }
  return out;
}
