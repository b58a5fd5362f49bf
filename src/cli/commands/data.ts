/**
 * `baton data mounts|ls|cat|cp|stat|rm` and `baton data cache stats|pin|unpin|evict|clear`:
 * the data namespace from the command line. Paths are `data://<mount>/<key>`; `cp` also
 * takes a file of this machine on either side. Nothing printed holds a credential: mounts
 * show where they point, never the variables' values.
 */
import type { ProjectData } from '../../app/data.js';
import type { Runtime } from '../../app/runtime.js';
import { openRuntime } from '../../app/runtime.js';
import { formatByteSize } from '../../core/byte-size.js';
import type { ObjectInfo } from '../../data/mount.js';
import type { DataObjectRecord } from '../../store/store.js';
import type { CliContext } from '../context.js';
import { table, time } from '../render.js';

interface JsonFlag {
  readonly json?: boolean;
}

async function withData(ctx: CliContext, fn: (data: ProjectData, rt: Runtime) => Promise<number>): Promise<number> {
  const rt = await openRuntime(ctx.runtime);
  try {
    return await fn(rt.data, rt);
  } finally {
    await rt.close();
  }
}

export function mountsCommand(ctx: CliContext, o: JsonFlag): Promise<number> {
  return withData(ctx, async (data) => {
    const mounts = data.mounts();
    if (o.json) ctx.stdout(JSON.stringify(mounts));
    else if (mounts.length === 0) ctx.stdout('no mounts: add them under data.mounts in baton.yaml (docs/data.md)');
    else
      ctx.stdout(
        table(
          ['MOUNT', 'KIND', 'TARGET'],
          mounts.map((m) => [`data://${m.name}/`, m.kind, m.target]),
        ),
      );
    return 0;
  });
}

export function lsCommand(
  ctx: CliContext,
  path: string,
  o: JsonFlag & { readonly recursive?: boolean; readonly limit?: number },
): Promise<number> {
  return withData(ctx, async (data) => {
    const entries = await data.list(path, { recursive: o.recursive === true, limit: o.limit ?? 1000 });
    if (o.json) {
      ctx.stdout(JSON.stringify(entries));
      return 0;
    }
    const { mount } = data.namespace.resolve(path);
    ctx.stdout(
      table(
        ['SIZE', 'MODIFIED', 'PATH'],
        entries.map((e) => [
          e.folder ? '-' : formatByteSize(e.size),
          e.modifiedAt !== undefined ? time(e.modifiedAt) : '',
          `data://${mount}/${e.key}${e.folder ? '/' : ''}`,
        ]),
      ),
    );
    return 0;
  });
}

export function catCommand(ctx: CliContext, path: string): Promise<number> {
  return withData(ctx, async (data) => {
    const { body } = await data.namespace.read(path);
    if (ctx.stdoutStream) {
      for await (const chunk of body) {
        if (!ctx.stdoutStream.write(chunk as Buffer)) {
          await new Promise<void>((resolve) => ctx.stdoutStream?.once('drain', () => resolve()));
        }
      }
    } else {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(chunk as Buffer);
      ctx.stdout(Buffer.concat(chunks).toString('utf8').replace(/\n$/, ''));
    }
    return 0;
  });
}

export function cpCommand(ctx: CliContext, from: string, to: string, o: JsonFlag): Promise<number> {
  return withData(ctx, async (data) => {
    const written = await data.copy(from, to);
    if (o.json) ctx.stdout(JSON.stringify({ from, to, ...written }));
    else ctx.stdout(`copied ${from} → ${to} (${formatByteSize(written.size)})`);
    return 0;
  });
}

export function statCommand(ctx: CliContext, path: string, o: JsonFlag): Promise<number> {
  return withData(ctx, async (data) => {
    const { info, metadata } = await data.stat(path);
    if (o.json) {
      ctx.stdout(JSON.stringify({ path, exists: info !== null, object: info, metadata }));
      return info ? 0 : 4;
    }
    if (!info) {
      ctx.stderr(
        `error: DATA_NOT_FOUND: ${path} does not exist${metadata ? ' (Baton last saw it ' + time(metadata.writtenAt ?? metadata.lastReadAt ?? 0) + ')' : ''}`,
      );
      return 4;
    }
    ctx.stdout(renderStat(path, info, metadata));
    return 0;
  });
}

export function rmCommand(ctx: CliContext, path: string, o: JsonFlag): Promise<number> {
  return withData(ctx, async (data) => {
    const removed = await data.remove(path);
    if (o.json) ctx.stdout(JSON.stringify({ path, removed }));
    else ctx.stdout(removed ? `removed ${path}` : `${path} did not exist`);
    return 0;
  });
}

export function cacheStatsCommand(ctx: CliContext, o: JsonFlag): Promise<number> {
  return withData(ctx, async (data, rt) => {
    const stats = await data.cacheStats();
    if (o.json) {
      ctx.stdout(JSON.stringify({ dir: rt.config.data.cacheDir, ...stats }));
      return 0;
    }
    ctx.stdout(
      table(
        ['DIR', 'ENTRIES', 'SIZE', 'LIMIT', 'PINNED'],
        [
          [
            rt.config.data.cacheDir,
            String(stats.entries),
            formatByteSize(stats.bytes),
            formatByteSize(stats.maxBytes),
            String(stats.pinned),
          ],
        ],
      ),
    );
    return 0;
  });
}

export function pinCommand(ctx: CliContext, path: string, o: JsonFlag): Promise<number> {
  return withData(ctx, async (data) => {
    const info = await data.pin(path);
    if (o.json) ctx.stdout(JSON.stringify({ path, pinned: true, size: info.size }));
    else ctx.stdout(`pinned ${path} (${formatByteSize(info.size)})`);
    return 0;
  });
}

export function unpinCommand(ctx: CliContext, path: string, o: JsonFlag): Promise<number> {
  return withData(ctx, async (data) => {
    const unpinned = await data.unpin(path);
    if (o.json) ctx.stdout(JSON.stringify({ path, unpinned }));
    else ctx.stdout(unpinned ? `unpinned ${path}` : `${path} was not pinned`);
    return 0;
  });
}

export function evictCommand(ctx: CliContext, path: string, o: JsonFlag): Promise<number> {
  return withData(ctx, async (data) => {
    const evicted = await data.evict(path);
    if (o.json) ctx.stdout(JSON.stringify({ path, evicted }));
    else ctx.stdout(`evicted ${evicted} cached object${evicted === 1 ? '' : 's'} under ${path}`);
    return 0;
  });
}

export function clearCommand(ctx: CliContext, o: JsonFlag): Promise<number> {
  return withData(ctx, async (data) => {
    const cleared = await data.clearCache();
    if (o.json) ctx.stdout(JSON.stringify({ cleared }));
    else ctx.stdout(`cleared ${cleared} cached object${cleared === 1 ? '' : 's'}`);
    return 0;
  });
}

function renderStat(path: string, info: ObjectInfo, metadata: DataObjectRecord | null): string {
  const rows: [string, string][] = [
    ['path', path],
    ['size', info.folder ? 'folder' : `${formatByteSize(info.size)} (${info.size} bytes)`],
  ];
  if (info.etag) rows.push(['etag', info.etag]);
  if (info.modifiedAt !== undefined) rows.push(['modified', time(info.modifiedAt)]);
  if (info.contentType) rows.push(['content type', info.contentType]);
  if (metadata) {
    if (metadata.sha256) rows.push(['sha256', metadata.sha256]);
    if (metadata.producerRunId) {
      rows.push(['written by', `run ${metadata.producerRunId}, task ${metadata.producerTaskId ?? '-'}`]);
    }
    if (metadata.writtenAt !== null) rows.push(['written', time(metadata.writtenAt)]);
    if (metadata.lastReadAt !== null) rows.push(['last read', time(metadata.lastReadAt)]);
    if (metadata.schema) rows.push(['schema', JSON.stringify(metadata.schema)]);
  } else {
    rows.push(['metadata', 'none: Baton has not read or written it']);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}
