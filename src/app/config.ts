/**
 * Project configuration: defaults < `baton.yaml` < environment < flags, merged and
 * validated once. The project root is the nearest folder, from the working directory up,
 * that holds `baton.yaml` or a `flows/` folder (see `findProjectDir`).
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
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { BatonError } from '../core/errors.js';
import type { EnvVarName } from '../core/env-vars.js';
import type { ConfigFile } from './config-schema.js';

export interface BatonConfig {
  readonly projectDir: string;
  /** Present when the project has a baton.yaml. */
  readonly configFile: string | null;
  /** What made `projectDir` a project (see `findProjectDir`). */
  readonly projectMarker: ProjectLocation['marker'];
  /** True when the store was named (flag, environment or baton.yaml), not the default file. */
  readonly databaseNamed: boolean;
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

/** Where a command's project is, and what made it one. */
export interface ProjectLocation {
  readonly dir: string;
  readonly configFile: string | null;
  /**
   * `config`: a baton.yaml; `flows`: a flows/ folder; `store`: only an embedded store
   * (`.baton/`) in the working directory; `none`: no project (the working directory
   * stands in for one, but commands that would create a store there refuse).
   */
  readonly marker: 'config' | 'flows' | 'store' | 'none';
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Finds the project from `cwd` upward: the nearest folder that holds `baton.yaml` or a
 * `flows/` folder. A `.baton/` store counts only in `cwd` itself, so that a stray store
 * in a parent (a temp or home folder) never captures unrelated work.
 */
export function findProjectDir(cwd: string): ProjectLocation {
  const start = resolve(cwd);
  let dir = start;
  for (;;) {
    const candidate = join(dir, CONFIG_FILE);
    if (existsSync(candidate)) return { dir, configFile: candidate, marker: 'config' };
    if (isDirectory(join(dir, 'flows'))) return { dir, configFile: null, marker: 'flows' };
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return { dir: start, configFile: null, marker: isDirectory(join(start, '.baton')) ? 'store' : 'none' };
}

function envNumber(env: NodeJS.ProcessEnv, name: EnvVarName): number | undefined {
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
  const { dir, configFile, marker } = findProjectDir(cwd);
  let file: ConfigFile = {};
  if (configFile) {
    const { parseConfigText } = await import('./config-schema.js');
    let text: string;
    try {
      text = readFileSync(configFile, 'utf8');
    } catch (error) {
      throw new BatonError('CONFIG_INVALID', `cannot read ${configFile}: ${(error as Error).message}`, {
        cause: error,
        hint: 'Check that baton.yaml is a readable file.',
        location: { file: configFile },
      });
    }
    const parsed = parseConfigText(text, configFile);
    if (!parsed.ok) {
      const n = parsed.problems.length;
      const first = parsed.problems[0];
      throw new BatonError('CONFIG_INVALID', `${n} problem${n === 1 ? '' : 's'} in ${configFile}`, {
        problems: parsed.problems,
        ...(first?.hint ? { hint: first.hint } : {}),
        ...(first?.location ? { location: first.location } : {}),
      });
    }
    file = parsed.data;
  }
  const named = flags.database ?? env.BATON_DATABASE_URL ?? env.BATON_DATABASE ?? file.database;
  const database = named ?? '.baton/baton.db';
  const isUrl = /^postgres(ql)?:\/\//.test(database);
  return {
    projectDir: dir,
    configFile,
    projectMarker: marker,
    databaseNamed: named !== undefined && named !== '',
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
