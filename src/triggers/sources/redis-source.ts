/**
 * Redis Streams trigger: a consumer in the consumer group `group` of `stream` (the group is
 * created with MKSTREAM if missing, at the start of the stream), reading up to `batch`
 * entries at a time (default 1) with XREADGROUP ... BLOCK. Each read becomes one run whose
 * `messages` param lists the entries in id order: `{ data, stream, id, time }`. An entry
 * with one field gives that field's value as `data`; an entry with several gives an object
 * of them; a value that is JSON is parsed, any other stays text. The URL is `url`, else
 * `BATON_REDIS_URL`, else redis://127.0.0.1:6379.
 *
 * Exactly one run per entry: the dedupe key is `<trigger>:redis:<stream>:<entry id>` (a
 * batch: `<first id>..<last id>`), and an entry is XACKed only after its run is committed.
 * An entry read but not acknowledged stays in the group's pending list under its consumer.
 * Each source has its own consumer name (`<host>:<pid>:<random>`) and, on start and then
 * every 10 s, takes over pending entries: its own (left by a failed connection), those of
 * consumers of this host whose process is gone (at once: a `baton dev` restarted after a
 * crash continues where it stopped), and those idle for 60 s under any other consumer
 * (another host that died). A consumer acknowledges one batch before reading the next, so
 * the entries pending under a consumer are the batch it was handling; they are taken over
 * and handled together, one consumer at a time, so that the batch comes back whole and
 * its key finds the run already made for it.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';
import { crashPointsFromEnv } from '../../engine/crash-points.js';
import type { EngineFaults } from '../../engine/engine.js';
import type { SourceContext, TriggerSource } from '../trigger-service.js';
import type { ReceivedMessage } from './stream-delivery.js';
import {
  batchEvent,
  brokerUrl,
  decodePayload,
  deliver,
  rangeKey,
  redactUrl,
  superviseSessions,
} from './stream-delivery.js';

export interface RedisSourceOptions {
  readonly url: string;
  readonly stream: string;
  readonly group: string;
  /** Entries read together into one run. Default 1. */
  readonly batch?: number;
  /** Entries pending this long under a consumer of another host are taken over. Default 60 s. */
  readonly claimIdleMs?: number;
  /** How often pending entries of other consumers are looked at. Default 10 s. */
  readonly claimEveryMs?: number;
  /** How long one XREADGROUP blocks. Default 1 s. */
  readonly blockMs?: number;
  readonly faults?: EngineFaults;
}

/** Bounds for the pages of pending entries read in one take-over. */
const MAX_PENDING_PAGES = 1000;
const PENDING_PAGE = 1000;

type Entry = readonly [id: string, fields: readonly string[] | null];

export async function createSource(context: SourceContext, env: NodeJS.ProcessEnv): Promise<TriggerSource> {
  const c = context.trigger.spec.config;
  const faults = crashPointsFromEnv(env);
  return startRedisSource(context, {
    url: brokerUrl(c, env, 'BATON_REDIS_URL', 'redis://127.0.0.1:6379'),
    stream: c.stream as string,
    group: c.group as string,
    ...(typeof c.batch === 'number' ? { batch: c.batch } : {}),
    ...(faults ? { faults } : {}),
  });
}

/** Starts consuming; connection failures are retried in the background with backoff. */
export async function startRedisSource(context: SourceContext, o: RedisSourceOptions): Promise<TriggerSource> {
  const consumer = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  return superviseSessions(context, (signal) => new RedisSession(context, o, consumer, signal).run());
}

class RedisSession {
  private readonly redis: Redis;
  private readonly batch: number;
  private readonly prefix: string;

  constructor(
    private readonly context: SourceContext,
    private readonly o: RedisSourceOptions,
    private readonly consumer: string,
    private readonly signal: AbortSignal,
  ) {
    this.batch = o.batch ?? 1;
    this.prefix = `${context.trigger.id}:redis:${o.stream}`;
    this.redis = new Redis(o.url, {
      lazyConnect: true,
      // No reconnecting inside the client: a lost connection ends the session, and the
      // session loop reconnects with backoff and takes over what was pending.
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      connectTimeout: 5000,
      protocol: 2,
      connectionName: `baton:${context.trigger.id}`,
    });
  }

  async run(): Promise<void> {
    let lastError: Error | undefined;
    this.redis.on('error', (error: Error) => (lastError = error));
    try {
      try {
        await this.redis.connect();
        await this.createGroup();
      } catch (error) {
        throw new Error(`Redis ${redactUrl(this.o.url)}: ${(lastError ?? (error as Error)).message}`, { cause: error });
      }
      let lastTakeOver = -Infinity;
      // Bounded by stop(); each turn blocks at most `blockMs`.
      while (!this.signal.aborted) {
        if (Date.now() - lastTakeOver >= (this.o.claimEveryMs ?? 10_000)) {
          await this.takeOver();
          lastTakeOver = Date.now();
        }
        const reply = await this.redis.call(
          'XREADGROUP',
          'GROUP',
          this.o.group,
          this.consumer,
          'COUNT',
          this.batch,
          'BLOCK',
          this.o.blockMs ?? 1000,
          'STREAMS',
          this.o.stream,
          '>',
        );
        const entries = entriesOf(reply);
        if (entries.length > 0) await this.handle(entries, false);
      }
    } finally {
      this.redis.disconnect();
    }
  }

  private async createGroup(): Promise<void> {
    try {
      await this.redis.call('XGROUP', 'CREATE', this.o.stream, this.o.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!/BUSYGROUP/.test((error as Error).message)) throw error;
    }
  }

  /**
   * Handles this consumer's pending entries, then, one consumer at a time, those of
   * consumers that are gone or stale: they are claimed into this consumer's pending list and
   * handled before the next consumer's.
   */
  private async takeOver(): Promise<void> {
    await this.drainOwnPending();
    const host = hostname();
    for (const c of await this.consumers()) {
      if (c.name === this.consumer || this.signal.aborted) continue;
      const dead = c.host === host && c.pid !== null && !isAlive(c.pid);
      if (c.pending > 0) {
        const minIdle = dead ? 0 : (this.o.claimIdleMs ?? 60_000);
        const claimed = await this.claimFrom(c.name, minIdle);
        if (claimed > 0) {
          this.context.diagnostic(
            `took over ${claimed} pending entr${claimed === 1 ? 'y' : 'ies'} of ${dead ? 'stopped' : 'idle'} consumer ${c.name}`,
          );
          await this.drainOwnPending();
        }
      }
      if (dead && (await this.pendingOf(c.name)) === 0) {
        await this.redis.call('XGROUP', 'DELCONSUMER', this.o.stream, this.o.group, c.name);
      }
    }
  }

  /** Claims the entries pending under `name` for at least `minIdle` ms; returns how many. */
  private async claimFrom(name: string, minIdle: number): Promise<number> {
    let claimed = 0;
    let start = '-';
    for (let page = 0; page < MAX_PENDING_PAGES && !this.signal.aborted; page++) {
      const rows = (await this.redis.call(
        'XPENDING',
        this.o.stream,
        this.o.group,
        'IDLE',
        minIdle,
        start,
        '+',
        PENDING_PAGE,
        name,
      )) as [string, string, number, number][];
      if (rows.length === 0) break;
      const ids = rows.map((r) => r[0]);
      await this.redis.call('XCLAIM', this.o.stream, this.o.group, this.consumer, minIdle, ...ids, 'JUSTID');
      claimed += ids.length;
      if (rows.length < PENDING_PAGE) break;
      start = `(${ids[ids.length - 1]}`;
    }
    return claimed;
  }

  private async pendingOf(name: string): Promise<number> {
    const rows = (await this.redis.call('XPENDING', this.o.stream, this.o.group, '-', '+', 1, name)) as unknown[];
    return rows.length;
  }

  /** Handles the entries pending under this consumer, oldest first. */
  private async drainOwnPending(): Promise<void> {
    let after = '0';
    for (let page = 0; page < MAX_PENDING_PAGES && !this.signal.aborted; page++) {
      const reply = await this.redis.call(
        'XREADGROUP',
        'GROUP',
        this.o.group,
        this.consumer,
        'COUNT',
        this.batch,
        'STREAMS',
        this.o.stream,
        after,
      );
      const entries = entriesOf(reply);
      if (entries.length === 0) return;
      await this.handle(entries, true);
      after = (entries[entries.length - 1] as Entry)[0];
    }
  }

  private async handle(entries: readonly Entry[], redelivered: boolean): Promise<void> {
    // Entries trimmed from the stream while pending come back without fields: nothing to run.
    const gone = entries.filter(([, fields]) => fields === null).map(([id]) => id);
    if (gone.length > 0) {
      this.context.diagnostic(`pending entries ${gone.join(', ')} were trimmed from ${this.o.stream}; acknowledged`);
      await this.redis.call('XACK', this.o.stream, this.o.group, ...gone);
    }
    const present = entries.filter(([, fields]) => fields !== null);
    if (present.length === 0) return;
    const messages = present.map(([id, fields]) => received(this.o.stream, id, fields ?? [], redelivered));
    const disposition = await deliver(
      { context: this.context, faults: this.o.faults, signal: this.signal },
      messages,
      (m) => batchEvent(this.prefix, m, rangeKey, 'entry'),
    );
    // A released batch stays pending under this consumer and is read again at the next take-over.
    if (disposition === 'ack') await this.redis.call('XACK', this.o.stream, this.o.group, ...present.map(([id]) => id));
  }

  private async consumers(): Promise<{ name: string; pending: number; host: string; pid: number | null }[]> {
    const rows = (await this.redis.call('XINFO', 'CONSUMERS', this.o.stream, this.o.group)) as unknown[][];
    return rows.map((row) => {
      const info = new Map<string, unknown>();
      for (let i = 0; i + 1 < row.length; i += 2) info.set(String(row[i]), row[i + 1]);
      const name = String(info.get('name'));
      // Names this module gives: <host>:<pid>:<random>; other names are never "gone", only idle.
      const parts = name.split(':');
      const pid = parts.length >= 3 ? Number(parts[parts.length - 2]) : NaN;
      return {
        name,
        pending: Number(info.get('pending') ?? 0),
        host: parts.slice(0, -2).join(':'),
        pid: Number.isSafeInteger(pid) && pid > 0 ? pid : null,
      };
    });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The entries of an XREADGROUP reply on one stream (RESP2 shape), or none after a timeout. */
function entriesOf(reply: unknown): Entry[] {
  if (!Array.isArray(reply)) return [];
  const [first] = reply as unknown[][];
  const entries = first?.[1];
  return Array.isArray(entries) ? (entries as Entry[]) : [];
}

function received(stream: string, id: string, fields: readonly string[], redelivered: boolean): ReceivedMessage {
  const values: Record<string, unknown> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) values[fields[i] as string] = decodePayload(fields[i + 1] as string);
  const names = Object.keys(values);
  return {
    identity: id,
    redelivered,
    param: {
      data: names.length === 1 ? values[names[0] as string] : values,
      stream,
      id,
      time: new Date(Number(id.split('-')[0])).toISOString(),
    },
  };
}
