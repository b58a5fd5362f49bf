/**
 * `baton assets` and `baton asset show <key>`: the assets tasks produced, with their latest
 * version, producer and whether they are stale; one asset's versions, producing runs,
 * lineage and the checks of its latest version. `baton asset materialize <key>` starts a
 * run of the asset's producing task and its upstream. All go through the application
 * layer (app/assets.ts) and print JSON with --json.
 */
import type { AssetDetail } from '../../app/assets.js';
import type { ProjectAssets } from '../../app/assets.js';
import { materializeAsset } from '../../app/assets.js';
import { openRuntime } from '../../app/runtime.js';
import type { AssetSummary } from '../../store/ports/assets.js';
import type { CliContext } from '../context.js';
import { runJson, table, time } from '../render.js';
import { renderChecks, shortVersion as short } from '../render-assets.js';

interface JsonFlag {
  readonly json?: boolean;
}

async function withAssets(ctx: CliContext, fn: (assets: ProjectAssets) => Promise<number>): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  try {
    return await fn(rt.assets);
  } finally {
    await rt.close();
  }
}

export function assetsCommand(ctx: CliContext, o: JsonFlag & { readonly limit?: number }): Promise<number> {
  return withAssets(ctx, async (assets) => {
    const list = await assets.list(o.limit === undefined ? {} : { limit: o.limit });
    if (o.json) ctx.stdout(JSON.stringify(list));
    else if (list.length === 0) ctx.stdout('no assets yet: declare them under produces: on a task (docs/data.md)');
    else ctx.stdout(renderAssets(list));
    return 0;
  });
}

export function assetShowCommand(
  ctx: CliContext,
  key: string,
  o: JsonFlag & { readonly limit?: number },
): Promise<number> {
  return withAssets(ctx, async (assets) => {
    const detail = await assets.show(key, o.limit === undefined ? {} : { limit: o.limit });
    ctx.stdout(o.json ? JSON.stringify(detail) : renderAssetDetail(detail));
    return 0;
  });
}

/**
 * Starts a run of the task that produces `key` and of its upstream; prints the run id (or
 * the run as JSON), or with --wait follows it to its end and exits as `baton run` does.
 */
export async function assetMaterializeCommand(
  ctx: CliContext,
  key: string,
  o: JsonFlag & { readonly wait?: boolean; readonly quiet?: boolean },
): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  try {
    const started = await materializeAsset(rt, key);
    if (!o.json)
      ctx.stderr(`baton: run ${started.run.id} of ${started.flow} materializes ${key} (task ${started.task})`);
    if (o.wait) {
      const { awaitQueuedRun } = await import('./execute.js');
      return await awaitQueuedRun(ctx, rt, started.run.id, o);
    }
    ctx.stdout(o.json ? JSON.stringify(runJson(started.run), null, 2) : started.run.id);
    return 0;
  } finally {
    await rt.close();
  }
}

export function renderAssets(list: readonly AssetSummary[]): string {
  return table(
    ['ASSET', 'VERSION', 'MATERIALIZED', 'PRODUCER', 'STALE'],
    list.map((a) => [a.key, short(a.latestVersion), time(a.latestAt), `${a.flow}/${a.taskId}`, a.stale ? 'stale' : '']),
  );
}

export function renderAssetDetail(d: AssetDetail): string {
  const a = d.asset;
  const latest = d.versions[0];
  const lines = [
    `asset ${a.key}${a.stale ? '  (stale: an upstream asset changed since it was made)' : ''}`,
    `  latest version  ${a.latestVersion}`,
    `  produced by     ${a.flow}/${a.taskId}, run ${a.runId}, ${time(a.latestAt)}`,
  ];
  if (latest) {
    lines.push(`  location        ${latest.location}`);
    if (latest.rowCount !== null) lines.push(`  rows            ${latest.rowCount}`);
    if (latest.schema) lines.push(`  schema          ${latest.schema.map((c) => `${c.name} ${c.type}`).join(', ')}`);
  }
  lines.push('', 'checks of the latest version:');
  lines.push(d.checks.length === 0 ? '  (none declared)' : renderChecks(d.checks));
  lines.push('', 'upstream:');
  lines.push(
    d.upstream.length === 0
      ? '  (none)'
      : table(
          ['ASSET', 'VERSION READ', 'LATEST', 'CHANGED'],
          d.upstream.map((u) => [u.key, short(u.versionRead), short(u.latestVersion), u.stale ? 'yes' : '']),
        ),
  );
  lines.push('', 'downstream:');
  lines.push(
    d.downstream.length === 0
      ? '  (none)'
      : table(
          ['ASSET', 'READ VERSION', 'STALE'],
          d.downstream.map((u) => [u.key, short(u.versionRead), u.stale ? 'stale' : '']),
        ),
  );
  lines.push('', 'versions:');
  lines.push(
    table(
      ['VERSION', 'MATERIALIZED', 'RUN', 'TASK', 'ATTEMPT', 'ROWS'],
      d.versions.map((v) => [
        short(v.version),
        time(v.at),
        v.runId,
        `${v.flow}/${v.taskId}`,
        String(v.attempt),
        v.rowCount === null ? '-' : String(v.rowCount),
      ]),
    ),
  );
  return lines.join('\n');
}
