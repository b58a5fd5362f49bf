/**
 * The schema of baton.yaml (config.ts says what each key means). Kept apart so that the
 * YAML parser and the schema library load only when the file exists.
 */
import { parse } from 'yaml';
import { z } from 'zod';
import { parseDuration } from '../core/duration.js';

export const parseYamlText = (text: string): unknown => parse(text);

const Duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (use e.g. 500ms, 15s, 2m)` });
    return z.NEVER;
  }
  return ms;
});

export const ConfigFileSchema = z.strictObject({
  database: z.string().optional(),
  concurrency: z.number().int().min(1).max(10_000).optional(),
  pool_size: z.number().int().min(1).max(1000).optional(),
  pools: z.record(z.string(), z.number().int().min(1)).optional(),
  lease: Duration.optional(),
  kill_grace: Duration.optional(),
  limits: z
    .strictObject({
      output_bytes: z.number().int().min(1).optional(),
      params_bytes: z.number().int().min(1).optional(),
      log_bytes: z.number().int().min(1).optional(),
    })
    .optional(),
});

export type ConfigFile = z.output<typeof ConfigFileSchema>;
