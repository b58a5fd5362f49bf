/**
 * Object-arrival triggers: every new object under a prefix of an S3-compatible bucket, and
 * every overwrite with new content (a new ETag), creates one run with params `bucket`,
 * `key` and `etag` (without quotes). The bucket is listed every `poll` ms (default 5 s).
 *
 * Invariants
 * - The dedupe key `<trigger>:s3:<key>:<etag>` makes one run per object version, across
 *   restarts, redeliveries and schedulers, whatever this module remembers.
 * - Each poll lists the whole prefix (ListObjectsV2, 1000 keys a page): a listing after a
 *   start key would miss overwrites and keys that sort before it, so the prefix is what
 *   keeps a listing small. Between polls, the key → ETag map of the last listing says
 *   what is new; it is kept in memory only.
 * - So that a restart neither re-emits a whole bucket nor misses what arrived while down,
 *   the cursor keeps `mark`, the newest LastModified (server clock) of an object handled,
 *   and `recent`, the objects handled whose LastModified is within RESTART_WINDOW_MS of
 *   `mark` (at most RECENT_LIMIT). After a restart an object counts as handled if it is in
 *   `recent` or older than `mark - RESTART_WINDOW_MS`; the window covers uploads that
 *   became visible long after their LastModified (S3 stamps the start of an upload). An
 *   upload still invisible after the window, across a restart, would be missed.
 * - The cursor moves only after `emit` returned: a crash in between re-emits, and the
 *   dedupe key absorbs it. Keys ending in `/` (folder markers) are ignored.
 */
import type { _Object, S3ClientConfig } from '@aws-sdk/client-s3';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { BatonError } from '../../core/errors.js';
import type { LongTimer } from '../../engine/long-timer.js';
import { setLongTimeout } from '../../engine/long-timer.js';
import type { SourceContext, TriggerEvent, TriggerSource } from '../trigger-service.js';

/** An `s3` trigger's config, as normalized from YAML (see define/trigger-schema.ts). */
export interface S3TriggerConfig {
  readonly bucket: string;
  /** Only keys starting with this. Default: the whole bucket. */
  readonly prefix?: string;
  /** Endpoint URL of an S3-compatible service (MinIO, R2, …). Default: AWS. */
  readonly endpoint?: string;
  /** Default us-east-1. */
  readonly region?: string;
  /** Address buckets as `<endpoint>/<bucket>` rather than `<bucket>.<endpoint>`. */
  readonly forcePathStyle?: boolean;
  /** Names of the environment variables holding the keys; without them, the SDK's default chain. */
  readonly accessKeyIdEnv?: string;
  readonly secretAccessKeyEnv?: string;
  /** Poll period in ms. Default 5000. */
  readonly poll?: number;
}

const DEFAULT_POLL_MS = 5000;
/** How far before the newest object handled a restart still looks for unhandled ones. */
const RESTART_WINDOW_MS = 60 * 60 * 1000;
/** Objects handled within the window that the cursor remembers. */
const RECENT_LIMIT = 10_000;
/** Events per `emit` call (one transaction each). */
const EMIT_BATCH = 100;
/** After `emit` refused an object (trigger paused, params refused), it is offered again after this long. */
const REFUSED_BACKOFF_MS = 30_000;

interface S3Cursor {
  readonly v: 1;
  /** Newest LastModified (ms) of an object handled, or null before the first. */
  readonly mark: number | null;
  /** `[key, etag, lastModified]` of objects handled within the window before `mark`, oldest first. */
  readonly recent: readonly (readonly [string, string, number])[];
}

interface ListedObject {
  readonly key: string;
  /** Empty while the object is being overwritten (listed without its ETag). */
  readonly etag: string;
  readonly modified: number;
  readonly size: number;
}

export async function createSource(context: SourceContext, env: NodeJS.ProcessEnv): Promise<TriggerSource> {
  const source = new S3Source(context, env);
  await source.start();
  return source;
}

function isS3Cursor(value: unknown): value is S3Cursor {
  const c = value as Partial<S3Cursor> | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    c.v === 1 &&
    (c.mark === null || typeof c.mark === 'number') &&
    Array.isArray(c.recent)
  );
}

/** Keys from the environment variables the trigger names, or undefined for the SDK's default chain. */
function credentialsFrom(
  context: SourceContext,
  config: S3TriggerConfig,
  env: NodeJS.ProcessEnv,
): S3ClientConfig['credentials'] {
  const { trigger } = context;
  const idVar = config.accessKeyIdEnv;
  const secretVar = config.secretAccessKeyEnv;
  if (idVar === undefined && secretVar === undefined) return undefined;
  if (idVar === undefined || secretVar === undefined) {
    const given = idVar === undefined ? 'secret_access_key_env' : 'access_key_id_env';
    throw new BatonError('DEF_INVALID', `trigger ${trigger.id}: ${given} is set but not its pair`, {
      hint: 'Set both access_key_id_env and secret_access_key_env, or neither to use the AWS default credential chain.',
      location: { file: trigger.sourcePath, path: `triggers.${trigger.name}` },
    });
  }
  const missing = [
    [idVar, 'access_key_id_env'],
    [secretVar, 'secret_access_key_env'],
  ].filter(([name]) => !env[name as string]);
  if (missing.length > 0) {
    throw new BatonError(
      'CONFIG_INVALID',
      `trigger ${trigger.id}: environment variable${missing.length > 1 ? 's' : ''} ${missing.map(([name, key]) => `${name} (${key})`).join(' and ')} ${missing.length > 1 ? 'are' : 'is'} not set`,
      { hint: 'Export the variable in the environment of the process that runs the triggers.' },
    );
  }
  return { accessKeyId: env[idVar] as string, secretAccessKey: env[secretVar] as string };
}

class S3Source implements TriggerSource {
  private readonly config: S3TriggerConfig;
  private readonly client: S3Client;
  private readonly prefix: string;
  private readonly pollMs: number;
  /** Key → ETag of the objects handled, as of the last listing. */
  private readonly known = new Map<string, string>();
  /** Set until the first listing after a start with a cursor. */
  private restoring = false;
  private mark: number | null = null;
  private recent = new Map<string, { readonly etag: string; readonly modified: number }>();
  private readonly refusedUntil = new Map<string, number>();
  /** The cursor as stored (what `setCursor` expects). */
  private stored: unknown = null;
  private dirty = false;
  private timer: LongTimer | undefined;
  private stopped = false;
  private running: Promise<void> | null = null;
  private readonly abort = new AbortController();
  private reported: string | null = null;

  constructor(
    private readonly context: SourceContext,
    env: NodeJS.ProcessEnv,
  ) {
    this.config = context.trigger.spec.config as unknown as S3TriggerConfig;
    const credentials = credentialsFrom(context, this.config, env);
    this.client = new S3Client({
      region: this.config.region ?? 'us-east-1',
      ...(this.config.endpoint !== undefined ? { endpoint: this.config.endpoint } : {}),
      forcePathStyle: this.config.forcePathStyle ?? false,
      ...(credentials !== undefined ? { credentials } : {}),
    });
    this.prefix = this.config.prefix ?? '';
    this.pollMs = this.config.poll ?? DEFAULT_POLL_MS;
  }

  async start(): Promise<void> {
    this.stored = await this.context.cursor();
    if (isS3Cursor(this.stored)) {
      this.mark = this.stored.mark;
      for (const [key, etag, modified] of this.stored.recent) this.recent.set(key, { etag, modified });
      this.restoring = true;
    } else if (this.stored !== null) {
      this.context.diagnostic('its cursor is not an s3 cursor; starting afresh (the dedupe key prevents duplicates)');
    }
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.abort.abort();
    await this.running;
    this.client.destroy();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    // `poll` is a setting of up to 366 days, beyond what setTimeout holds.
    this.timer = setLongTimeout(() => {
      this.running = this.pollOnce().finally(() => {
        this.running = null;
        this.schedule(this.pollMs);
      });
    }, ms);
  }

  private async pollOnce(): Promise<void> {
    try {
      try {
        await this.takeNewObjects();
      } finally {
        // Also when stopping: what was emitted is remembered (the store closes after sources stop).
        await this.save();
      }
      this.reported = null;
    } catch (error) {
      if (this.stopped) return;
      const message = `listing s3://${this.config.bucket}/${this.prefix} failed: ${(error as Error).message}`;
      if (message !== this.reported) this.context.diagnostic(message);
      this.reported = message;
    }
  }

  private async list(): Promise<ListedObject[]> {
    const out: ListedObject[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.config.bucket,
          ...(this.prefix !== '' ? { Prefix: this.prefix } : {}),
          ...(token !== undefined ? { ContinuationToken: token } : {}),
        }),
        { abortSignal: this.abort.signal },
      );
      for (const o of page.Contents ?? []) {
        const listed = toListed(o);
        if (listed) out.push(listed);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined && !this.stopped);
    return out;
  }

  private async takeNewObjects(): Promise<void> {
    const objects = await this.list();
    if (this.stopped) return;
    const now = this.context.now();
    const present = new Set<string>();
    const fresh: ListedObject[] = [];
    for (const o of objects) {
      present.add(o.key);
      // Being overwritten: still known as it was, so that its next version is an overwrite.
      if (o.etag === '') continue;
      if (this.known.get(o.key) === o.etag) continue;
      if (this.restoring && this.handledBeforeRestart(o)) {
        this.known.set(o.key, o.etag);
        continue;
      }
      if ((this.refusedUntil.get(o.key) ?? 0) > now) continue;
      fresh.push(o);
    }
    this.restoring = false;
    for (const key of this.known.keys()) if (!present.has(key)) this.known.delete(key);
    for (const key of this.refusedUntil.keys()) if (!present.has(key)) this.refusedUntil.delete(key);
    // Oldest first, so that runs are created in arrival order.
    fresh.sort((a, b) => a.modified - b.modified || (a.key < b.key ? -1 : 1));
    for (let i = 0; i < fresh.length && !this.stopped; i += EMIT_BATCH) {
      await this.emit(fresh.slice(i, i + EMIT_BATCH), now);
    }
  }

  private handledBeforeRestart(o: ListedObject): boolean {
    if (this.recent.get(o.key)?.etag === o.etag) return true;
    return this.mark !== null && o.modified < this.mark - RESTART_WINDOW_MS;
  }

  private async emit(batch: readonly ListedObject[], now: number): Promise<void> {
    const { id } = this.context.trigger;
    const { bucket } = this.config;
    const events: TriggerEvent[] = batch.map((o) => ({
      dedupeKey: `${id}:s3:${o.key}:${o.etag}`,
      params: { bucket, key: o.key, etag: o.etag },
      reason: `object s3://${bucket}/${o.key} ${this.known.has(o.key) ? 'overwritten' : 'arrived'} (${o.size} bytes, ETag ${o.etag})`,
    }));
    const results = await this.context.emit(events);
    let refused: string | null = null;
    results.forEach((r, i) => {
      const o = batch[i] as ListedObject;
      if (r.outcome === 'refused') {
        this.refusedUntil.set(o.key, now + REFUSED_BACKOFF_MS);
        refused ??= `object ${o.key} was not turned into a run: ${r.error?.message ?? 'refused'}`;
        return;
      }
      this.refusedUntil.delete(o.key);
      this.known.set(o.key, o.etag);
      this.recent.delete(o.key);
      this.recent.set(o.key, { etag: o.etag, modified: o.modified });
      if (this.mark === null || o.modified > this.mark) this.mark = o.modified;
      this.dirty = true;
    });
    if (refused !== null && refused !== this.reported) this.context.diagnostic(refused);
    this.reported = refused;
  }

  private encode(): S3Cursor {
    const floor = this.mark === null ? -Infinity : this.mark - RESTART_WINDOW_MS;
    for (const [key, r] of this.recent) if (r.modified < floor) this.recent.delete(key);
    const recent = [...this.recent].slice(-RECENT_LIMIT).map(([key, r]) => [key, r.etag, r.modified] as const);
    if (recent.length < this.recent.size)
      this.recent = new Map(recent.map(([k, etag, modified]) => [k, { etag, modified }]));
    return { v: 1, mark: this.mark, recent };
  }

  /** Writes the cursor if anything was handled since it was last written. */
  private async save(): Promise<void> {
    if (!this.dirty) return;
    const next = this.encode();
    let moved = await this.context.setCursor(next, this.stored);
    if (!moved) {
      // Someone else wrote it (an operator, a second process): ours is as good, and dedupe keys guard runs.
      moved = await this.context.setCursor(next, await this.context.cursor());
    }
    if (moved) {
      this.stored = next;
      this.dirty = false;
    }
  }
}

function toListed(o: _Object): ListedObject | null {
  if (o.Key === undefined || o.Key.endsWith('/')) return null;
  const etag = (o.ETag ?? '').replace(/^"|"$/g, '');
  // A listing taken while the object is being overwritten may show it without its ETag: it
  // is not a version yet (the next poll sees the one that was written), but it is there.
  return {
    key: o.Key,
    etag,
    modified: o.LastModified?.getTime() ?? 0,
    size: o.Size ?? 0,
  };
}
