/**
 * Project configuration: defaults < `baton.yaml` < environment < flags, merged and
 * validated once. The project root is the nearest folder, from the working directory up,
 * that holds `baton.yaml`; without one, the working directory is the root.
 *
 * baton.yaml keys
 * - `database`: SQLite file path, relative to the project root, or a `postgres://` URL.
 *   Default `.baton/baton.db`. Env `BATON_DATABASE`; `BATON_DATABASE_URL` (a PostgreSQL URL)
 *   takes precedence over both.
 * - `pool_size`: PostgreSQL connections per process. Default 10. Env `BATON_POOL_SIZE`.
 * - `concurrency`: attempt bodies running at once per process. Default 32. Env `BATON_CONCURRENCY`.
 * - `pools`: pool name → slots, shared by every flow of the project.
 * - `lease`: how long a run stays owned without a heartbeat. Default `15s`.
 * - `kill_grace`: time between SIGTERM and SIGKILL when stopping a shell task. Default `2s`.
 * - `limits.output_bytes`: largest task output (JSON bytes). Default 262144.
 * - `limits.params_bytes`: largest params payload of a run (JSON bytes). Default 65536.
 * - `limits.log_bytes`: log kept per attempt. Default 1048576.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { BatonError } from '../core/errors.js';
import type { ConfigFile } from './config-schema.js';

export interface BatonConfig {
  readonly projectDir: string;
  /** Present when the project has a baton.yaml. */
  readonly configFile: string | null;
  /** SQLite file (when `databaseUrl` is null). */
  readonly databasePath: string;
  /** PostgreSQL URL, or null for the embedded SQLite store. */
  readonly databaseUrl: string | null;
  readonly poolSize: number;
  readonly concurrency: number;
  readonly pools: Readonly<Record<string, number>>;
  readonly leaseMs: number;
  readonly killGraceMs: number;
  readonly outputLimitBytes: number;
  readonly paramsLimitBytes: number;
  readonly logLimitBytes: number;
}

export interface ConfigOverrides {
  readonly database?: string;
  readonly concurrency?: number;
}

export const CONFIG_FILE = 'baton.yaml';

/** Finds the project root from `cwd` upward. */
export function findProjectDir(cwd: string): { dir: string; configFile: string | null } {
  let dir = resolve(cwd);
  for (;;) {
    const candidate = join(dir, CONFIG_FILE);
    if (existsSync(candidate)) return { dir, configFile: candidate };
    const parent = dirname(dir);
    if (parent === dir) return { dir: resolve(cwd), configFile: null };
    dir = parent;
  }
}

function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new BatonError('CONFIG_INVALID', `environment variable ${name}: "${text}" is not a positive integer`);
  }
  return n;
}

/** Merges and validates the configuration; the schema library loads only if baton.yaml exists. */
export async function loadConfig(
  cwd: string,
  env: NodeJS.ProcessEnv,
  flags: ConfigOverrides = {},
): Promise<BatonConfig> {
  const { dir, configFile } = findProjectDir(cwd);
  let file: ConfigFile = {};
  if (configFile) {
    const { ConfigFileSchema, parseYamlText } = await import('./config-schema.js');
    let raw: unknown;
    try {
      raw = parseYamlText(readFileSync(configFile, 'utf8')) ?? {};
    } catch (error) {
      throw new BatonError('CONFIG_INVALID', `${configFile}: ${(error as Error).message}`, { cause: error });
    }
    const parsed = ConfigFileSchema.safeParse(raw);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((issue) => ({
        code: 'CONFIG_INVALID' as const,
        message: `${issue.path.join('.') || '(top level)'}: ${issue.message}`,
        location: { file: configFile, path: issue.path.join('.') },
      }));
      throw new BatonError('CONFIG_INVALID', `${configFile}: ${problems.map((p) => p.message).join('; ')}`, {
        problems,
      });
    }
    file = parsed.data;
  }
  const database = flags.database ?? env.BATON_DATABASE_URL ?? env.BATON_DATABASE ?? file.database ?? '.baton/baton.db';
  const isUrl = /^postgres(ql)?:\/\//.test(database);
  return {
    projectDir: dir,
    configFile,
    databasePath: isUrl ? '' : isAbsolute(database) ? database : join(dir, database),
    databaseUrl: isUrl ? database : null,
    poolSize: envNumber(env, 'BATON_POOL_SIZE') ?? file.pool_size ?? 10,
    concurrency: flags.concurrency ?? envNumber(env, 'BATON_CONCURRENCY') ?? file.concurrency ?? 32,
    pools: file.pools ?? {},
    leaseMs: file.lease ?? 15_000,
    killGraceMs: file.kill_grace ?? 2000,
    outputLimitBytes: file.limits?.output_bytes ?? 256 * 1024,
    paramsLimitBytes: file.limits?.params_bytes ?? 64 * 1024,
    logLimitBytes: file.limits?.log_bytes ?? 1024 * 1024,
  };
}
