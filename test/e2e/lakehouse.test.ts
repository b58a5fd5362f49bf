/**
 * examples/lakehouse, run for real through the CLI on the Vega project's public flight data:
 * a copy of the example in a temp folder whose `source` mount still reads the repository's
 * vega-datasets, a PostgreSQL database of its own as the warehouse, and the lake first as a
 * folder, then as a bucket of an S3-protocol server (s3rver) — the same flows, another
 * baton.yaml. The outputs, the checks (the warn check finds the source's two duplicated
 * flights) and the warehouse table are asserted; so is the `asset` trigger of daily_summary
 * when this build of Baton knows that trigger kind.
 */
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../store/pg-helpers.js';
import type { TestS3 } from '../data/s3rver.js';
import { startS3 } from '../data/s3rver.js';
import type { RunJson, Sandbox, ShowJson, ValidateJson } from './cli-helpers.js';
import {
  REPO_ROOT,
  baton,
  createSandbox,
  describeResult,
  parseJson,
  startBaton,
  taskOf,
  useTempDirs,
  waitFor,
} from './cli-helpers.js';
import { freePort } from '../helpers/ports.js';

const temp = useTempDirs();

const EXAMPLE = join(REPO_ROOT, 'examples', 'lakehouse');
const SOURCE_LINE = 'source: { kind: local, path: ../../node_modules/vega-datasets/data }';
const LAKE_LINE = 'lake: { kind: local, path: lake }';
const VEGA_DATA = join(REPO_ROOT, 'node_modules', 'vega-datasets', 'data');

/** The flights that flights-20k.json lists twice (same date, origin and destination). */
const DUPLICATES = ['2001-02-18 20:40:00 PHX SAN', '2001-03-28 17:26:00 DFW AUS'];

/** One check result of `baton asset show --json`. */
interface CheckJson {
  readonly name: string;
  readonly severity: string;
  readonly passed: boolean;
  readonly failingCount: number;
  readonly sample: readonly Record<string, unknown>[];
}

/** The parts of `baton asset show <key> --json` read here. */
interface AssetShowJson {
  readonly asset: { readonly key: string; readonly latestVersion: string | null };
  readonly versions: readonly { readonly location: string; readonly rowCount: number | null }[];
  readonly upstream: readonly { readonly key: string; readonly versionRead: string | null; readonly stale: boolean }[];
  readonly checks: readonly CheckJson[];
}

/** One entry of `baton data ls --json`. */
interface LsEntry {
  readonly key: string;
  readonly size: number;
}

/**
 * A copy of the example in a temp folder, its `source` mount pointed at the repository's
 * data, the lake mount replaced by `lake` when given (YAML lines under `mounts:`).
 */
function copyExample(lake?: string): Sandbox {
  const dir = temp.mkdir('baton-lakehouse-');
  // A developer's own runs of the example (lake/, .baton/) stay behind.
  cpSync(EXAMPLE, dir, {
    recursive: true,
    filter: (src) => !/[/\\](lake|\.baton)$/.test(src.slice(EXAMPLE.length)),
  });
  const configFile = join(dir, 'baton.yaml');
  let config = readFileSync(configFile, 'utf8');
  expect(config).toContain(SOURCE_LINE);
  config = config.replace(SOURCE_LINE, `source: { kind: local, path: ${JSON.stringify(VEGA_DATA)} }`);
  if (lake !== undefined) {
    expect(config).toContain(LAKE_LINE);
    config = config.replace(LAKE_LINE, lake);
  }
  writeFileSync(configFile, config);
  return createSandbox(dir);
}

/**
 * Whether this build knows the `asset` trigger kind. When it does not, daily_summary's
 * trigger is cut from the copy (after checking that it is the only problem), so that the
 * flow still runs by hand.
 */
async function assetTriggerKnown(sandbox: Sandbox): Promise<boolean> {
  const result = await sandbox.run(['validate', 'flows/daily_summary.yaml', '--json']);
  const report = parseJson<ValidateJson>(result);
  if (report.ok) return true;
  const problems = report.files.flatMap((f) => f.problems);
  expect(problems.map((p) => p.message).join('\n'), describeResult(result)).toMatch(
    /^triggers\.on_flights\.kind: must be one of .*, got "asset"$/,
  );
  const file = sandbox.path('flows/daily_summary.yaml');
  const text = readFileSync(file, 'utf8');
  const cut = text.replace(/\ntriggers:\n(?: {2}.*\n)+/, '\n');
  expect(cut).not.toContain('triggers:');
  writeFileSync(file, cut);
  return false;
}

async function json<T>(sandbox: Sandbox, args: readonly string[], env: Record<string, string>): Promise<T> {
  const result = await sandbox.run([...args, '--json'], { env, timeoutMs: 60_000 });
  expect(result.code, describeResult(result)).toBe(0);
  return parseJson<T>(result);
}

async function runFlow(sandbox: Sandbox, flow: string, env: Record<string, string>): Promise<ShowJson> {
  const run = await json<ShowJson>(sandbox, ['run', flow], env);
  expect(run, JSON.stringify(run.tasks)).toMatchObject({ flow, state: 'succeeded' });
  return run;
}

/** `SELECT` on the warehouse database. */
async function query(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

/**
 * Runs ingest_flights then daily_summary in `sandbox` and checks what the README promises:
 * the runs, the lake's objects (as `baton data ls` lists them), the checks of flights_clean,
 * the warehouse table and daily_delays.
 */
async function runPipeline(sandbox: Sandbox, env: Record<string, string>, warehouseUrl: string): Promise<void> {
  const ingest = await runFlow(sandbox, 'ingest_flights', env);
  expect(ingest.tasks.map((t) => [t.id, t.state]).sort()).toEqual([
    ['clean_join', 'succeeded'],
    ['ingest_airports', 'succeeded'],
    ['ingest_flights', 'succeeded'],
    ['state_delays', 'succeeded'],
  ]);
  expect(taskOf(ingest, 'ingest_airports').output).toMatchObject({ rows: 3376, format: 'parquet' });
  expect(taskOf(ingest, 'clean_join').output).toMatchObject({
    path: 'data://lake/curated/flights.parquet',
    rows: 20_000,
  });

  const shown = await json<AssetShowJson>(sandbox, ['asset', 'show', 'flights_clean'], env);
  expect(shown.versions[0]).toMatchObject({ location: 'data://lake/curated/flights.parquet', rowCount: 20_000 });
  expect(shown.checks.map((c) => [c.name, c.severity, c.passed, c.failingCount])).toEqual([
    ['not_null(date,origin,destination)', 'error', true, 0],
    ['range(distance)', 'error', true, 0],
    ['row_count', 'error', true, 0],
    ['references(origin)', 'error', true, 0],
    ['references(destination)', 'error', true, 0],
    // Both rows of each of the two duplicated flights fail the check: 4 rows, 2 flights.
    ['unique(date,origin,destination)', 'warn', false, 4],
  ]);
  const unique = shown.checks.find((c) => c.name === 'unique(date,origin,destination)');
  const keys = (unique?.sample ?? []).map((r) => `${String(r.date)} ${String(r.origin)} ${String(r.destination)}`);
  expect([...new Set(keys)].sort()).toEqual(DUPLICATES);
  expect(shown.upstream.map((u) => [u.key, u.stale])).toEqual([
    ['airports', false],
    ['flights_raw', false],
  ]);

  // One row per origin state; every flight of the sample leaves from an airport with a state.
  const [table] = await query(
    warehouseUrl,
    'SELECT count(*)::int AS states, sum(flights)::int AS flights FROM state_delays',
  );
  expect(table).toEqual({ states: 51, flights: 20_000 });
  const [texas] = await query(warehouseUrl, "SELECT flights::int AS flights FROM state_delays WHERE state = 'TX'");
  expect(texas?.flights).toBeGreaterThan(1000);

  const daily = await runFlow(sandbox, 'daily_summary', env);
  expect(taskOf(daily, 'daily').output).toMatchObject({ path: 'data://lake/marts/daily.parquet', rows: 90 });
  const delays = await json<AssetShowJson>(sandbox, ['asset', 'show', 'daily_delays'], env);
  expect(
    delays.checks.every((c) => c.passed),
    JSON.stringify(delays.checks),
  ).toBe(true);
  expect(delays.upstream).toEqual([
    {
      key: 'flights_clean',
      versionRead: shown.asset.latestVersion,
      latestVersion: shown.asset.latestVersion,
      stale: false,
    },
  ]);

  const listed = await json<LsEntry[]>(sandbox, ['data', 'ls', 'data://lake/', '-r'], env);
  expect(listed.map((e) => e.key)).toEqual([
    'curated/flights.parquet',
    'marts/daily.parquet',
    'raw/airports.parquet',
    'raw/flights.parquet',
  ]);
  for (const entry of listed) expect(entry.size).toBeGreaterThan(1000);
}

describe('examples/lakehouse', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startS3();
  }, 30_000);
  afterAll(async () => {
    await s3?.stop();
  });

  it('ingests, cleans, checks and publishes the flights with the lake in a folder', async () => {
    const sandbox = copyExample();
    const warehouse = await createTestDatabase();
    try {
      const env = { WAREHOUSE_URL: warehouse.url };
      const triggerKnown = await assetTriggerKnown(sandbox);
      await runPipeline(sandbox, env, warehouse.url);
      for (const file of [
        'raw/airports.parquet',
        'raw/flights.parquet',
        'curated/flights.parquet',
        'marts/daily.parquet',
      ]) {
        expect(existsSync(sandbox.path(join('lake', file))), file).toBe(true);
      }
      if (triggerKnown) await expectAssetTrigger(sandbox, env);
    } finally {
      await warehouse.drop();
    }
  }, 180_000);

  it('runs the same flows with the lake in an S3 bucket, a change of baton.yaml only', async () => {
    const bucket = await s3.bucket('lakehouse');
    const lake = [
      'lake:',
      '      kind: s3',
      `      bucket: ${bucket}`,
      `      endpoint: ${s3.endpoint}`,
      '      path_style: true',
      '      access_key_id_env: LAKE_KEY_ID',
      '      secret_access_key_env: LAKE_SECRET',
    ].join('\n');
    const sandbox = copyExample(lake);
    await assetTriggerKnown(sandbox);
    const warehouse = await createTestDatabase();
    try {
      const env = { WAREHOUSE_URL: warehouse.url, LAKE_KEY_ID: 'S3RVER', LAKE_SECRET: 'S3RVER' };
      await runPipeline(sandbox, env, warehouse.url);
      // The objects are in the bucket, and nothing went to a folder of the project.
      const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: bucket }));
      expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual([
        'curated/flights.parquet',
        'marts/daily.parquet',
        'raw/airports.parquet',
        'raw/flights.parquet',
      ]);
      expect(existsSync(sandbox.path('lake'))).toBe(false);
    } finally {
      await warehouse.drop();
    }
  }, 180_000);
});

/**
 * With `baton dev` running (on a database of its own, so that the runs above do not count),
 * a run of ingest_flights materializes flights_clean, and the trigger starts daily_summary.
 */
async function expectAssetTrigger(sandbox: Sandbox, env: Record<string, string>): Promise<void> {
  const db = sandbox.path('trigger.db');
  const options = { cwd: sandbox.dir, env, timeoutMs: 60_000 };
  const port = String(await freePort());
  const dev = startBaton(['--db', db, 'dev', '--no-webhooks', '--port', port], { ...options, timeoutMs: 120_000 });
  try {
    await waitFor(() => (/baton dev: executing runs and \d+ trigger\(s\)/.test(dev.stderr()) ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: 'baton dev to start',
    });
    const ingest = await baton(['--db', db, 'run', 'ingest_flights', '--enqueue', '--wait', '--json'], options);
    expect(ingest.code, describeResult(ingest)).toBe(0);
    expect(parseJson<ShowJson>(ingest).state).toBe('succeeded');
    const runs = await waitFor(
      async () => {
        const result = await baton(
          ['--db', db, 'runs', '--flow', 'daily_summary', '--state', 'succeeded', '--json'],
          options,
        );
        expect(result.code, describeResult(result)).toBe(0);
        const found = parseJson<RunJson[]>(result);
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: `a daily_summary run started by the asset trigger` },
    );
    expect(runs).toHaveLength(1);
  } finally {
    dev.kill('SIGTERM');
    const result = await dev.done;
    expect(result.code, describeResult(result)).toBe(0);
  }
}
