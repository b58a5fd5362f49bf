/**
 * Project configuration: defaults < `baton.yaml` < environment < flags, merged and
 * validated once. The project root is the nearest folder, from the working directory up,
 * that holds `baton.yaml` or a `flows/` folder (see `findProjectDir`).
 *
 * baton.yaml keys
 * - `database`: SQLite file path, relative to the project root, or a `postgres://` URL.
 *   Default `.baton/baton.db`. Env `BATON_DATABASE`; `BATON_DATABASE_URL` (a PostgreSQL URL)
 *   takes precedence over both. Any other `scheme:` is refused (DATABASE_URL_INVALID), so
 *   that a mistyped URL never becomes a SQLite file named after it (password and all).
 * - `pool_size`: PostgreSQL connections per process. Default 10. Env `BATON_POOL_SIZE`.
 * - `concurrency`: attempt bodies running at once per process. Default 32. Env `BATON_CONCURRENCY`.
 * - `pools`: pool name → slots, shared by every flow of the project.
 * - `lease`: how long a run stays owned without a heartbeat. Default `15s`.
 * - `kill_grace`: time between SIGTERM and SIGKILL when stopping a shell task. Default `2s`.
 * - `limits.output_bytes`: largest task output (JSON bytes). Default 262144.
 * - `limits.params_bytes`: largest params payload of a run (JSON bytes). Default 65536.
 * - `limits.log_bytes`: log kept per attempt. Default 1048576.
 * - `limits.log_line_bytes`: longest line of a shell task's output kept in its log. Default 65536.
 * - `limits.error_bytes`: largest message, hint, stack and details of a recorded failure,
 *   each. Default 65536.
 * - `limits.subflow_depth`, `limits.child_runs_per_run`: how deep child runs nest, and how
 *   many one run starts (docs/operations.md#limits).
 * - `limits.http_*`: what a webhook listener accepts: body size, header, body and idle
 *   timeouts, connections (docs/triggers.md#webhooks).
 * - `data.mounts.<name>`: a mount of the data namespace (`data://<name>/...`): kind `local`
 *   (a folder), `s3` (a bucket or prefix), `http` (read-only, under a URL) or `postgres`
 *   (tables and named queries); see data/mount.ts for each kind's keys.
 * - `data.cache.dir`: the cache of remote reads. Default `.baton/cache`.
 * - `data.cache.max_size`: most bytes it keeps (`10GiB`, `500MB`). Default 10 GiB.
 * - `data.payloads`: the folder (a data path) where outputs over `limits.output_bytes` are
 *   stored by reference. Default `data://baton/payloads`, in `.baton/data`.
 * - `limits.payload_bytes`: largest output stored by reference. Default 256 MiB.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { BatonError } from '../core/errors.js';
import type { EnvVarName } from '../core/env-vars.js';
import { LIMITS } from '../core/limits.js';
import { redactUrl } from '../core/redact-url.js';
import { readInputFile } from '../define/input-file.js';
import { suggest } from '../define/suggest.js';
import type { ConfigFile } from './config-schema.js';
import type { HttpLimits } from '../triggers/webhook-server.js';
import { INTERNAL_MOUNT, INTERNAL_MOUNT_FOLDER, type MountConfig } from '../data/mount.js';
import { parseDataPath, type DataPath } from '../core/data-path.js';

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
  /** Largest output kept in a run's history; larger ones are stored by reference. */
  readonly outputLimitBytes: number;
  /** Largest output stored by reference. */
  readonly payloadLimitBytes: number;
  readonly paramsLimitBytes: number;
  readonly logLimitBytes: number;
  /** Largest line of a shell task's stdout or stderr kept in its log, in bytes. */
  readonly logLineLimitBytes: number;
  /** Largest message, hint, stack and details (JSON) of a recorded failure, each in bytes. */
  readonly errorLimitBytes: number;
  /** Deepest nesting of child runs (a top-level run is at depth 0). */
  readonly subflowDepth: number;
  /** Most child runs one run starts. */
  readonly childRunsPerRun: number;
  /** What every webhook listener accepts. */
  readonly http: HttpLimits;
  /** The data namespace: its mounts and the cache of remote reads (docs/data.md). */
  readonly data: DataConfig;
}

/** `data:` of baton.yaml, resolved. */
export interface DataConfig {
  /** Mount name → its configuration. */
  readonly mounts: Readonly<Record<string, MountConfig>>;
  /** The cache's folder, absolute. Default `.baton/cache` under the project root. */
  readonly cacheDir: string;
  /** Most bytes the cache keeps. Default 10 GiB. */
  readonly cacheMaxBytes: number;
  /** The folder outputs over `outputLimitBytes` are stored in. Default `data://baton/payloads`. */
  readonly payloads: DataPath;
}

export interface ConfigOverrides {
  /** `--db`: a PostgreSQL URL or a SQLite file; a relative path is relative to `databaseBase`. */
  readonly database?: string;
  /** The folder a relative `database` flag is relative to (the working directory); default the project root. */
  readonly databaseBase?: string;
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

function envNumber(env: NodeJS.ProcessEnv, name: EnvVarName, max: number): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new BatonError(
      'CONFIG_INVALID',
      `environment variable ${name}: "${text}" is not an integer from 1 to ${max}`,
    );
  }
  return n;
}

/** Where a database setting came from, as messages name it. */
export type DatabaseSource = '--db' | 'BATON_DATABASE_URL' | 'BATON_DATABASE' | 'baton.yaml database';

/** A database setting, parsed: the PostgreSQL store at a URL, or the SQLite store in a file. */
export type DatabaseSetting =
  { readonly kind: 'postgres'; readonly url: string } | { readonly kind: 'sqlite'; readonly path: string };

const POSTGRES_URL = /^postgres(ql)?:\/\//i;
/** A Windows drive path (`C:\data\baton.db`), which looks like a one-letter scheme. */
const DRIVE_PATH = /^[A-Za-z]:[\\/]/;
/** Anything that starts like a URL: `scheme:`. */
const URL_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
/** Schemes people write for PostgreSQL that the driver does not take. */
const PG_ALIASES = new Set(['pg', 'psql', 'pgsql', 'postgre', 'postgis']);
/** A URL that lost its colon (`postgres//user:pw@host/db`): a path only by accident. */
const SCHEME_WITHOUT_COLON = /^([A-Za-z][A-Za-z0-9+.-]*)\/\/[^/]*@/;

/**
 * Parses a database setting: a `postgres://` or `postgresql://` URL, or a path (relative
 * to `baseDir`). Anything else that looks like a URL is refused with DATABASE_URL_INVALID,
 * and `BATON_DATABASE_URL` takes a URL only. Messages show the value through `redactUrl`.
 * Example: `parseDatabaseSetting('postgress://u:pw@h/db', '--db', '/p')` throws
 * `--db: postgress://u:***@h/db is not a PostgreSQL URL: unknown scheme "postgress:" (did you mean postgres://u:***@h/db?)`.
 */
export function parseDatabaseSetting(text: string, source: DatabaseSource, baseDir: string): DatabaseSetting {
  const value = text.trim();
  const shown = redactUrl(value);
  const refuse = (why: string, hint?: string): never => {
    throw new BatonError('DATABASE_URL_INVALID', `${source}: ${why}`, {
      ...(hint ? { hint } : {}),
      details: { source },
    });
  };
  if (value === '') refuse('is empty; give a postgres:// URL or the path of a SQLite file');
  if (POSTGRES_URL.test(value)) {
    if (!isParsableUrl(value)) {
      refuse(
        `${shown} is not a valid PostgreSQL URL`,
        'Write it as postgres://user:password@host:5432/database, with special characters of the user and password percent-encoded (@ as %40, / as %2F, : as %3A).',
      );
    }
    return { kind: 'postgres', url: value };
  }
  const scheme = DRIVE_PATH.test(value) ? undefined : (URL_SCHEME.exec(value) ?? SCHEME_WITHOUT_COLON.exec(value));
  if (scheme) {
    const name = scheme[1] ?? '';
    const lower = name.toLowerCase();
    // A near miss of postgres gets the corrected URL; any other scheme (sqlite:, file:) was
    // most likely meant as a file, which is named by its path alone.
    const nearPostgres = PG_ALIASES.has(lower) || suggest(lower, ['postgres', 'postgresql']) !== undefined;
    const guess = redactUrl(`postgres://${value.replace(/^[A-Za-z][A-Za-z0-9+.-]*:?\/*/, '')}`);
    const why =
      lower === 'postgres' || lower === 'postgresql'
        ? value[name.length] === ':'
          ? `"${name}:" must be followed by "//"`
          : `"${name}//" lacks the colon of "${name}://"`
        : `unknown scheme "${name}:"`;
    refuse(
      `${shown} is not a PostgreSQL URL: ${why}` +
        (nearPostgres ? ` (did you mean ${guess}?)` : '; a SQLite file is named by its path, without a scheme'),
      'Baton takes a postgres:// (or postgresql://) URL for the PostgreSQL store, or the path of a SQLite file, without a scheme.',
    );
  }
  if (source === 'BATON_DATABASE_URL') {
    refuse(
      `${shown} is not a PostgreSQL URL`,
      'BATON_DATABASE_URL takes a postgres:// URL, such as postgres://user@host:5432/database; name a SQLite file with BATON_DATABASE or --db instead.',
    );
  }
  return { kind: 'sqlite', path: resolve(baseDir, value) };
}

/** Whether the PostgreSQL driver can parse `url` (it retries an empty host, `user@/db`, the same way). */
function isParsableUrl(url: string): boolean {
  for (const candidate of [url, url.replace('@/', '@localhost/')]) {
    try {
      new URL(candidate);
      return true;
    } catch {
      // Tried again below with a host, as the driver does; false when neither parses.
    }
  }
  return false;
}

/** Merges and validates the configuration; the schema library loads only if baton.yaml exists. */
export async function loadConfig(
  cwd: string,
  env: NodeJS.ProcessEnv,
  flags: ConfigOverrides = {},
): Promise<BatonConfig> {
  const location = findProjectDir(cwd);
  const { configFile } = location;
  let file: ConfigFile = {};
  if (configFile) {
    const { parseConfigText } = await import('./config-schema.js');
    // A FIFO or a device named baton.yaml is refused before a byte is read (no hang).
    const text = readInputFile(configFile, { limit: 'input_file_bytes', what: 'baton.yaml', code: 'CONFIG_INVALID' });
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
  return resolveConfig(location, file, env, flags);
}

/**
 * The configuration of a project from its parsed baton.yaml (`{}` when it has none), the
 * environment and the flags: the one place that fills in defaults. A program that embeds
 * Baton without a project calls it with an empty file and environment.
 */
export function resolveConfig(
  location: ProjectLocation,
  file: ConfigFile,
  env: NodeJS.ProcessEnv,
  flags: ConfigOverrides = {},
): BatonConfig {
  const { dir, configFile, marker } = location;
  // Every named setting is checked, not only the one that wins: a typo is reported where it is.
  const given: [DatabaseSource, string | undefined][] = [
    ['--db', flags.database],
    ['BATON_DATABASE_URL', env.BATON_DATABASE_URL || undefined],
    ['BATON_DATABASE', env.BATON_DATABASE || undefined],
    ['baton.yaml database', file.database],
  ];
  const settings = given.flatMap(([source, text]) =>
    text === undefined
      ? []
      : [
          withLocation(source, configFile, () =>
            parseDatabaseSetting(text, source, source === '--db' ? (flags.databaseBase ?? dir) : dir),
          ),
        ],
  );
  const database = settings[0] ?? { kind: 'sqlite', path: join(dir, '.baton', 'baton.db') };
  return {
    projectDir: dir,
    configFile,
    projectMarker: marker,
    databaseNamed: settings.length > 0,
    databasePath: database.kind === 'sqlite' ? database.path : '',
    databaseUrl: database.kind === 'postgres' ? database.url : null,
    poolSize: envNumber(env, 'BATON_POOL_SIZE', 1000) ?? file.pool_size ?? 10,
    concurrency:
      flags.concurrency ?? envNumber(env, 'BATON_CONCURRENCY', LIMITS.concurrency.max) ?? file.concurrency ?? 32,
    pools: file.pools ?? {},
    leaseMs: file.lease ?? 15_000,
    killGraceMs: file.kill_grace ?? 2000,
    outputLimitBytes: file.limits?.output_bytes ?? 256 * 1024,
    payloadLimitBytes: file.limits?.payload_bytes ?? LIMITS.payload_bytes.default,
    paramsLimitBytes: file.limits?.params_bytes ?? 64 * 1024,
    logLimitBytes: file.limits?.log_bytes ?? 1024 * 1024,
    logLineLimitBytes: file.limits?.log_line_bytes ?? LIMITS.log_line_bytes.default,
    errorLimitBytes: file.limits?.error_bytes ?? LIMITS.error_bytes.default,
    subflowDepth: file.limits?.subflow_depth ?? LIMITS.subflow_depth.default,
    childRunsPerRun: file.limits?.child_runs_per_run ?? LIMITS.child_runs_per_run.default,
    http: {
      bodyBytes: file.limits?.http_body_bytes ?? LIMITS.http_body_bytes.default,
      headerTimeoutMs: file.limits?.http_header_timeout_ms ?? LIMITS.http_header_timeout_ms.default,
      bodyTimeoutMs: file.limits?.http_body_timeout_ms ?? LIMITS.http_body_timeout_ms.default,
      idleTimeoutMs: file.limits?.http_idle_timeout_ms ?? LIMITS.http_idle_timeout_ms.default,
      connections: file.limits?.http_connections ?? LIMITS.http_connections.default,
    },
    data: {
      // The internal mount first; the schema keeps its name out of baton.yaml. Zod's optional
      // keys read `T | undefined` where MountConfig's are absent-or-T: the parser gives the latter.
      mounts: {
        [INTERNAL_MOUNT]: { kind: 'local', path: INTERNAL_MOUNT_FOLDER },
        ...((file.data?.mounts ?? {}) as Readonly<Record<string, MountConfig>>),
      },
      payloads: payloadsFolder(file.data?.payloads, configFile),
      cacheDir: resolve(dir, file.data?.cache?.dir ?? join('.baton', 'cache')),
      cacheMaxBytes: file.data?.cache?.max_size ?? DEFAULT_CACHE_BYTES,
    },
  };
}

/** `data.payloads`, parsed (its mount is checked when the first payload is written). */
function payloadsFolder(text: string | undefined, configFile: string | null): DataPath {
  if (text === undefined) return { mount: INTERNAL_MOUNT, key: 'payloads' };
  try {
    return parseDataPath(text, 'data.payloads');
  } catch (error) {
    if (!(error instanceof BatonError) || !configFile) throw error;
    throw new BatonError(error.code, error.message, {
      hint: error.hint,
      location: { file: configFile, path: 'data.payloads' },
    });
  }
}

/** The cache's size when baton.yaml does not set one. */
const DEFAULT_CACHE_BYTES = 10 * 1024 ** 3;

/** Runs `parse`, pointing a refusal of baton.yaml's own setting at the file. */
function withLocation(
  source: DatabaseSource,
  configFile: string | null,
  parse: () => DatabaseSetting,
): DatabaseSetting {
  try {
    return parse();
  } catch (error) {
    if (source !== 'baton.yaml database' || !configFile || !(error instanceof BatonError)) throw error;
    throw new BatonError(error.code, error.message, {
      hint: error.hint,
      details: error.details,
      location: { file: configFile, path: 'database' },
    });
  }
}
